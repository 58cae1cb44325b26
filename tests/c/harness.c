/*
 * harness.c: a disposable FerretDB per test, event recording and deadline waits.
 *
 * The server is started directly (fork + exec) with PR_SET_PDEATHSIG, so that a test that crashes
 * never leaves a server behind. Its binary is $MGCONN_FERRETDB, else .deps/bin/ferretdb in the
 * source tree (built by scripts/setup.sh).
 */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <mongoc/mongoc.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MGCONN_SOURCE_DIR
#define MGCONN_SOURCE_DIR "."
#endif

int64_t
now_ms (void)
{
   struct timespec ts;
   clock_gettime (CLOCK_MONOTONIC, &ts);
   return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double
now_us (void)
{
   struct timespec ts;
   clock_gettime (CLOCK_MONOTONIC, &ts);
   return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

static bool
read_line (const char *path, char *buf, size_t size)
{
   FILE *f = fopen (path, "r"); /* NULL: the thread ended between readdir and fopen */
   bool ok = f && fgets (buf, (int) size, f);
   if (f) {
      fclose (f);
   }
   return ok;
}

thread_census
census_threads (void)
{
   thread_census c = {0, 0, 0, 0};
   DIR *d = opendir ("/proc/self/task");
   struct dirent *e;
   CHECK (d, "/proc/self/task: %s", strerror (errno));
   while ((e = readdir (d))) {
      char path[300], comm[32] = "", stat[1024] = "";
      const char *after_name;
      int field = 2, policy = -1; /* the space after ")" starts field 3 */
      snprintf (path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
      if (e->d_name[0] == '.' || !read_line (path, comm, sizeof comm) || strncmp (comm, "mgconn-", 7) != 0) {
         continue;
      }
      c.mgconn++;
      c.timers += strcmp (comm, "mgconn-timer\n") == 0;
      if (strcmp (comm, "mgconn-worker\n") != 0) {
         continue;
      }
      c.workers++;
      snprintf (path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
      if (read_line (path, stat, sizeof stat) && (after_name = strrchr (stat, ')'))) {
         for (const char *p = after_name + 1; *p; p++) { /* proc(5): field 41 is the policy */
            if (*p == ' ' && ++field == 41) {
               policy = atoi (p + 1);
               break;
            }
         }
      }
      c.workers_batch += policy == SCHED_BATCH;
   }
   closedir (d);
   return c;
}

int
mgconn_thread_count (void)
{
   return census_threads ().mgconn;
}

int
wait_mgconn_threads_at_most (int n, int timeout_ms)
{
   int64_t deadline = now_ms () + timeout_ms;
   int seen = mgconn_thread_count ();
   while (seen > n && now_ms () < deadline) {
      struct timespec pause = {0, 10 * 1000 * 1000}; /* polls a condition, with a deadline */
      nanosleep (&pause, NULL);
      seen = mgconn_thread_count ();
   }
   return seen;
}

int
closed_port (void)
{
   struct sockaddr_in a;
   socklen_t len = sizeof a;
   int fd = socket (AF_INET, SOCK_STREAM, 0);
   memset (&a, 0, sizeof a);
   a.sin_family = AF_INET;
   a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
   CHECK (bind (fd, (struct sockaddr *) &a, sizeof a) == 0, "bind: %s", strerror (errno));
   CHECK (getsockname (fd, (struct sockaddr *) &a, &len) == 0, "getsockname");
   close (fd);
   return ntohs (a.sin_port);
}

int
established_to (int port)
{
   FILE *f = fopen ("/proc/net/tcp", "r");
   char line[512];
   int n = 0;
   CHECK (f, "/proc/net/tcp");
   while (fgets (line, sizeof line, f)) {
      unsigned remote_port, state;
      /* sl local_address rem_address st ... ; addresses are HEXIP:HEXPORT */
      if (sscanf (line, " %*d: %*8x:%*4x %*8x:%4x %2x", &remote_port, &state) == 2 && (int) remote_port == port &&
          state == 0x01) {
         n++;
      }
   }
   fclose (f);
   return n;
}

static const char *
ferretdb_path (void)
{
   static char path[512];
   const char *env = getenv ("MGCONN_FERRETDB");
   if (env && *env) {
      return env;
   }
   snprintf (path, sizeof path, "%s/.deps/bin/ferretdb", MGCONN_SOURCE_DIR);
   return path;
}

static bool
answers_ping (int port)
{
   char uri[128];
   mongoc_client_t *c;
   bson_t *cmd = BCON_NEW ("ping", BCON_INT32 (1));
   bson_error_t e;
   bool ok;
   snprintf (uri, sizeof uri, "mongodb://127.0.0.1:%d/?serverSelectionTimeoutMS=300&connectTimeoutMS=300", port);
   c = mongoc_client_new (uri);
   ok = mongoc_client_command_simple (c, "admin", cmd, NULL, NULL, &e);
   mongoc_client_destroy (c);
   bson_destroy (cmd);
   return ok;
}

static bool
log_says_port_taken (const char *log, long from)
{
   char buf[8192];
   FILE *f = fopen (log, "r");
   size_t n = f && fseek (f, from, SEEK_SET) == 0 ? fread (buf, 1, sizeof buf - 1, f) : 0;
   if (f) {
      fclose (f);
   }
   buf[n] = '\0';
   return strstr (buf, "address already in use") != NULL;
}

/* Starts FerretDB on s->port. False when the port was taken in the meantime (closed_port() found it
 * free, but a test running in parallel may pick the same one): the caller picks another. */
static bool
spawn (test_server *s)
{
   char listen[64], sqlite[300], state[300], log[300];
   long log_from;
   pid_t pid;
   snprintf (listen, sizeof listen, "--listen-addr=127.0.0.1:%d", s->port);
   snprintf (sqlite, sizeof sqlite, "--sqlite-url=file:%s/data/", s->dir);
   snprintf (state, sizeof state, "--state-dir=%s", s->dir);
   snprintf (log, sizeof log, "%s/ferretdb.log", s->dir);
   {
      struct stat st;
      log_from = stat (log, &st) == 0 ? (long) st.st_size : 0; /* what this start adds to the log */
   }
   pid = fork ();
   CHECK (pid >= 0, "fork: %s", strerror (errno));
   if (pid == 0) {
      int fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0644);
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      if (fd >= 0) {
         dup2 (fd, 1);
         dup2 (fd, 2);
      }
      if (s->user[0]) {
         char user[96], password[96];
         snprintf (user, sizeof user, "--setup-username=%s", s->user);
         snprintf (password, sizeof password, "--setup-password=%s", s->password);
         execl (ferretdb_path (), "ferretdb", "--handler=sqlite", sqlite, listen, "--telemetry=disable",
                "--debug-addr=-", state, "--log-level=warn", "--test-enable-new-auth", "--setup-database=admin",
                user, password, (char *) NULL);
      } else {
         execl (ferretdb_path (), "ferretdb", "--handler=sqlite", sqlite, listen, "--telemetry=disable",
                "--debug-addr=-", state, "--log-level=warn", (char *) NULL);
      }
      _exit (127);
   }
   s->pid = pid;
   {
      int64_t deadline = now_ms () + 20000;
      int status;
      for (;;) {
         if (waitpid (pid, &status, WNOHANG) != 0) {
            s->pid = 0;
            if (log_says_port_taken (log, log_from)) {
               return false;
            }
            CHECK (false, "FerretDB (%s) exited at start; see %s", ferretdb_path (), log);
         }
         if (answers_ping (s->port)) {
            break;
         }
         CHECK (now_ms () < deadline, "FerretDB did not answer ping on port %d within 20 s", s->port);
         usleep (50 * 1000);
      }
      /* The ping may have been answered by another test's server on a port ours failed to take. */
      usleep (20 * 1000);
      if (waitpid (pid, &status, WNOHANG) != 0) {
         s->pid = 0;
         CHECK (log_says_port_taken (log, log_from), "FerretDB (%s) exited at start; see %s", ferretdb_path (), log);
         return false;
      }
   }
   return true;
}

void
server_start (test_server *s)
{
   server_prepare (s);
   for (int attempt = 1; !spawn (s); attempt++) {
      CHECK (attempt < 5, "FerretDB found its port taken %d times", attempt);
      s->port = closed_port ();
   }
}

void
server_start_with_user (test_server *s, const char *user, const char *password)
{
   server_prepare (s);
   snprintf (s->user, sizeof s->user, "%s", user);
   snprintf (s->password, sizeof s->password, "%s", password);
   for (int attempt = 1; !spawn (s); attempt++) {
      CHECK (attempt < 5, "FerretDB found its port taken %d times", attempt);
      s->port = closed_port ();
   }
}

void
server_prepare (test_server *s)
{
   char tmpl[] = "/tmp/mgconn-ferretdb-XXXXXX";
   char data[300];
   memset (s, 0, sizeof *s);
   CHECK (access (ferretdb_path (), X_OK) == 0, "no FerretDB at %s: run scripts/setup.sh", ferretdb_path ());
   CHECK (mkdtemp (tmpl) != NULL, "mkdtemp");
   snprintf (s->dir, sizeof s->dir, "%s", tmpl);
   snprintf (data, sizeof data, "%s/data", s->dir);
   mkdir (data, 0755);
   s->port = closed_port ();
}

void
server_restart (test_server *s)
{
   CHECK (s->pid == 0, "server_restart: the server is still running");
   CHECK (spawn (s), "port %d was taken by another process while the server was down", s->port);
}

void
server_kill (test_server *s)
{
   if (s->pid > 0) {
      /* SIGKILL first: it ends a SIGSTOPped process too, which must not run again before it dies (a
       * SIGCONT first would let it answer the requests that waited in its sockets). */
      kill (s->pid, SIGKILL);
      kill (s->pid, SIGCONT);
      waitpid (s->pid, NULL, 0);
      s->pid = 0;
   }
}

/* Every thread of the process is stopped ('T' in its stat): a thread running on another core
 * when SIGSTOP was sent may otherwise still answer a request or two. */
static bool
all_threads_stopped (pid_t pid)
{
   char path[64];
   DIR *d;
   struct dirent *e;
   bool all = true;
   snprintf (path, sizeof path, "/proc/%d/task", (int) pid);
   if (!(d = opendir (path))) {
      return true;
   }
   while (all && (e = readdir (d))) {
      char stat_path[400], line[512] = "";
      const char *after;
      if (e->d_name[0] == '.') {
         continue;
      }
      snprintf (stat_path, sizeof stat_path, "%s/%s/stat", path, e->d_name);
      if (read_line (stat_path, line, sizeof line) && (after = strrchr (line, ')')) && after[1] == ' ') {
         all = after[2] == 'T' || after[2] == 't';
      }
   }
   closedir (d);
   return all;
}

void
server_pause (test_server *s)
{
   int64_t deadline = now_ms () + 5000;
   kill (s->pid, SIGSTOP);
   while (!all_threads_stopped (s->pid)) {
      CHECK (now_ms () < deadline, "FerretDB (pid %d) did not stop within 5 s of SIGSTOP", (int) s->pid);
      usleep (1000);
   }
}

void
server_resume (test_server *s)
{
   kill (s->pid, SIGCONT);
}

static int
rm_entry (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
   (void) sb;
   (void) flag;
   (void) ftw;
   return remove (path);
}

void
server_cleanup (test_server *s)
{
   server_kill (s);
   if (s->dir[0]) {
      nftw (s->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
      s->dir[0] = '\0';
   }
}

const char *
server_uri (const test_server *s, const char *db, const char *extra)
{
   static char buf[512];
   snprintf (buf, sizeof buf, "mongodb://127.0.0.1:%d/%s%s%s", s->port, db ? db : "", extra ? "?" : "",
             extra ? extra : "");
   return buf;
}

/* ---- events ---- */

static void
record (mgconn_connection *conn, const mgconn_event *ev, void *ud)
{
   recorder *r = ud;
   (void) conn;
   if (r->n < REC_MAX) {
      snprintf (r->names[r->n], sizeof r->names[r->n], "%s", mgconn_event_name (ev));
      r->at_ms[r->n] = now_ms ();
      mgconn_error_init (&r->errors[r->n]);
      if (mgconn_event_error (ev)) {
         mgconn_error_copy (&r->errors[r->n], mgconn_event_error (ev));
      }
      r->n++;
   }
}

void
recorder_attach (recorder *r, mgconn_connection *conn)
{
   memset (r, 0, sizeof *r);
   CHECK (mgconn_connection_on (conn, NULL, record, r) == 0, "mgconn_connection_on");
}

void
recorder_reset (recorder *r)
{
   for (int i = 0; i < r->n; i++) {
      mgconn_error_cleanup (&r->errors[i]);
   }
   r->n = 0;
}

const char *
recorder_sequence (const recorder *r)
{
   static char buf[REC_MAX * 24];
   buf[0] = '\0';
   for (int i = 0; i < r->n; i++) {
      strcat (buf, i ? "," : "");
      strcat (buf, r->names[i]);
   }
   return buf;
}

int
recorder_find (const recorder *r, const char *name, int from)
{
   for (int i = from; i < r->n; i++) {
      if (strcmp (r->names[i], name) == 0) {
         return i;
      }
   }
   return -1;
}

int
wait_event (mgconn_runtime *rt, recorder *r, const char *name, int from, int timeout_ms)
{
   int64_t deadline = now_ms () + timeout_ms;
   int i;
   while ((i = recorder_find (r, name, from)) < 0 && now_ms () < deadline) {
      mgconn_runtime_dispatch (rt, 0);
      if ((i = recorder_find (r, name, from)) >= 0) {
         break;
      }
      {
         fd_set fds;
         struct timeval tv = {0, 20 * 1000};
         FD_ZERO (&fds);
         FD_SET (mgconn_runtime_fd (rt), &fds);
         select (mgconn_runtime_fd (rt) + 1, &fds, NULL, NULL, &tv);
      }
   }
   return i;
}

/* ---- helpers ---- */

mgconn_runtime *
runtime_new (void)
{
   mgconn_runtime *rt = NULL;
   mgconn_error e;
   mgconn_error_init (&e);
   CHECK (mgconn_runtime_new (&rt, NULL, 0, &e) == 0, "runtime: %s", e.message);
   return rt;
}

mgconn_connection *
conn_new (mgconn_runtime *rt, const char *uri, const char *opts_json)
{
   mgconn_connection *conn = NULL;
   mgconn_error e;
   bson_error_t be;
   bson_t *opts = opts_json ? bson_new_from_json ((const uint8_t *) opts_json, -1, &be) : NULL;
   CHECK (!opts_json || opts, "bad test JSON %s: %s", opts_json, be.message);
   mgconn_error_init (&e);
   CHECK (mgconn_connection_new (&conn, rt, uri, opts ? bson_get_data (opts) : NULL, opts ? opts->len : 0, &e) == 0,
          "connection refused: %s", e.message);
   if (opts) {
      bson_destroy (opts);
   }
   return conn;
}

mgconn_collection *
coll_of (mgconn_connection *conn, const char *name)
{
   mgconn_collection *c = NULL;
   mgconn_error e;
   mgconn_error_init (&e);
   CHECK (mgconn_connection_collection (&c, conn, name, &e) == 0, "collection %s: %s", name, e.message);
   return c;
}

const char *
expect_ok (mgconn_op *op, const char *what)
{
   static char buf[65536];
   const uint8_t *data;
   size_t len;
   bson_t reply;
   char *json;
   int32_t status = mgconn_op_wait (op, 10000);
   CHECK (status == MGCONN_OP_SUCCEEDED, "%s %s: %s", what, status == MGCONN_OP_PENDING ? "did not finish" : "failed",
          mgconn_op_error (op) ? mgconn_op_error (op)->message : "");
   mgconn_op_reply (op, &data, &len);
   bson_init_static (&reply, data, len);
   json = bson_as_relaxed_extended_json (&reply, NULL);
   snprintf (buf, sizeof buf, "%s", json);
   bson_free (json);
   return buf;
}

int32_t
ping (mgconn_connection *conn, int timeout_ms, mgconn_error *err_out)
{
   bson_t *cmd = BCON_NEW ("ping", BCON_INT32 (1));
   mgconn_op *op = NULL;
   int32_t status;
   CHECK (mgconn_run_command (&op, conn, "admin", bson_get_data (cmd), cmd->len, NULL, NULL) == 0, "run_command");
   bson_destroy (cmd);
   status = mgconn_op_wait (op, timeout_ms);
   if (err_out && mgconn_op_error (op)) {
      mgconn_error_copy (err_out, mgconn_op_error (op));
   }
   mgconn_op_free (op);
   return status;
}

void
pump_for (mgconn_runtime *rt, int ms)
{
   int64_t until = now_ms () + ms;
   while (now_ms () < until) {
      fd_set fds;
      int64_t left = until - now_ms ();
      struct timeval tv = {0, (suseconds_t) ((left > 20 ? 20 : left < 0 ? 0 : left) * 1000)};
      mgconn_runtime_dispatch (rt, 0);
      FD_ZERO (&fds);
      FD_SET (mgconn_runtime_fd (rt), &fds);
      select (mgconn_runtime_fd (rt) + 1, &fds, NULL, NULL, &tv);
   }
   mgconn_runtime_dispatch (rt, 0);
}

const char *
expect_failure (mgconn_op *op, int32_t category, const char *what)
{
   static char buf[MGCONN_ERROR_MESSAGE_SIZE];
   int32_t status = mgconn_op_wait (op, 15000);
   CHECK (status == MGCONN_OP_FAILED, "%s %s", what, status == MGCONN_OP_PENDING ? "did not finish" : "succeeded");
   CHECK (mgconn_op_error (op)->category == category, "%s failed as %s, not %s: %s", what,
          mgconn_error_category_name (mgconn_op_error (op)->category), mgconn_error_category_name (category),
          mgconn_op_error (op)->message);
   snprintf (buf, sizeof buf, "%s", mgconn_op_error (op)->message);
   return buf;
}

bson_t *
json (const char *text)
{
   bson_error_t be;
   bson_t *b = bson_new_from_json ((const uint8_t *) text, -1, &be);
   CHECK (b, "bad test JSON %s: %s", text, be.message);
   return b;
}

int
run_tests (int argc, char **argv, const test_case *tests)
{
   int ran = 0;
   signal (SIGPIPE, SIG_IGN);
   mgconn_init (); /* libmongoc, and mgconn's log handler for the harness's own clients too */
   for (const test_case *t = tests; t->name; t++) {
      if (argc > 1 && strcmp (argv[1], t->name) != 0) {
         continue;
      }
      fprintf (stderr, "-- %s\n", t->name);
      t->fn ();
      ran++;
   }
   CHECK (ran > 0, "no test named %s", argc > 1 ? argv[1] : "(any)");
   mgconn_shutdown ();
   return 0;
}
