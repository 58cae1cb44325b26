/*
 * test_hostile.c: a hostile server (tests/hostile/hostile_server.py) answers a handshake or an
 * operation with a crafted reply; the process survives (this program runs in the plain and the
 * ASan+UBSan builds), the operation fails with an error that says what was wrong, memory stays
 * bounded (VmHWM), and once the server behaves again the same connection works.
 */
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MGCONN_SOURCE_DIR
#define MGCONN_SOURCE_DIR "."
#endif

typedef struct {
   pid_t pid;
   int stdin_fd; /* closing it stops the server */
   int port;
   char control[64];
} hostile_server;

static void
control (hostile_server *h, const char *mode)
{
   FILE *f = fopen (h->control, "w");
   CHECK (f && fputs (mode, f) >= 0 && fclose (f) == 0, "could not write %s", h->control);
}

static void
hostile_start (hostile_server *h, const char *scenario, const char *on, const char *mode)
{
   int in[2], out[2];
   char line[32] = {0};
   int fd;
   snprintf (h->control, sizeof h->control, "/tmp/mgconn-hostile-XXXXXX");
   fd = mkstemp (h->control);
   CHECK (fd >= 0, "mkstemp");
   close (fd);
   control (h, mode);
   CHECK (pipe (in) == 0 && pipe (out) == 0, "pipe");
   h->pid = fork ();
   CHECK (h->pid >= 0, "fork");
   if (h->pid == 0) {
      dup2 (in[0], 0);
      dup2 (out[1], 1);
      close (in[1]);
      close (out[0]);
      execlp ("python3", "python3", MGCONN_SOURCE_DIR "/tests/hostile/hostile_server.py", "--scenario", scenario,
              "--on", on, "--control", h->control, (char *) NULL);
      _exit (127);
   }
   close (in[0]);
   close (out[1]);
   h->stdin_fd = in[1];
   for (size_t n = 0; n + 1 < sizeof line;) {
      ssize_t r = read (out[0], line + n, 1);
      CHECK (r == 1, "the hostile server did not start");
      if (line[n] == '\n') {
         break;
      }
      n++;
   }
   close (out[0]);
   h->port = atoi (line);
   CHECK (h->port > 0, "the hostile server printed no port: %s", line);
}

static void
hostile_stop (hostile_server *h)
{
   close (h->stdin_fd);
   kill (h->pid, SIGKILL);
   waitpid (h->pid, NULL, 0);
   unlink (h->control);
}

/* The process's peak resident set, in kB. */
static long
vm_hwm_kb (void)
{
   char line[128];
   long kb = -1;
   FILE *f = fopen ("/proc/self/status", "r");
   while (f && fgets (line, sizeof line, f)) {
      if (strncmp (line, "VmHWM:", 6) == 0) {
         kb = atol (line + 6);
      }
   }
   if (f) {
      fclose (f);
   }
   return kb;
}

/* Peak memory may grow this much while the server misbehaves (the driver's own buffers, ASan's
 * quarantine); a driver that believed a 1.75 GB claim and buffered the 300 MB that follow is far
 * over it. */
#define HWM_GROWTH_LIMIT_KB (96 * 1024)

static mgconn_op *
insert (mgconn_collection *items, int n)
{
   mgconn_op *op = NULL;
   bson_t *doc = BCON_NEW ("n", BCON_INT32 (n));
   CHECK (mgconn_collection_insert_one (&op, items, bson_get_data (doc), doc->len, NULL, 0, NULL, NULL) == 0,
          "insert_one refused");
   bson_destroy (doc);
   return op;
}

static const char *OPTS = "{\"serverSelectionTimeoutMS\": 2500, \"socketTimeoutMS\": 1500, "
                          "\"connectTimeoutMS\": 1500, \"heartbeatFrequencyMS\": 500}";

/* The server misbehaves on an insert: that insert fails saying `expect`, the next one succeeds. */
static void
op_case (const char *scenario, int32_t category, const char *expect)
{
   hostile_server h;
   mgconn_runtime *rt = runtime_new ();
   mgconn_connection *conn;
   mgconn_collection *items;
   mgconn_op *op;
   mgconn_error err;
   long before;
   const char *msg;

   hostile_start (&h, scenario, "insert", "behave");
   conn = conn_new (rt, server_uri (&(test_server){.port = h.port}, "hostile", NULL), OPTS);
   mgconn_error_init (&err);
   CHECK (ping (conn, 10000, &err) == MGCONN_OP_SUCCEEDED, "the healthy server did not answer: %s", err.message);
   items = coll_of (conn, "items");
   before = vm_hwm_kb ();

   control (&h, "hostile");
   op = insert (items, 1);
   msg = expect_failure (op, category, scenario);
   printf ("  %s: %s\n", scenario, msg);
   CHECK (strstr (msg, expect), "%s: the error does not say \"%s\": %s", scenario, expect, msg);
   mgconn_op_free (op);

   control (&h, "behave");
   op = insert (items, 2);
   expect_ok (op, "the insert once the server behaves again");
   mgconn_op_free (op);
   printf ("  %s: peak memory %ld kB, grew by %ld kB\n", scenario, vm_hwm_kb (), vm_hwm_kb () - before);
   CHECK (vm_hwm_kb () - before < HWM_GROWTH_LIMIT_KB, "%s: peak memory grew by %ld kB", scenario,
          vm_hwm_kb () - before);

   mgconn_error_cleanup (&err);
   mgconn_collection_free (items);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   hostile_stop (&h);
}

/* Once connected, the server misbehaves on every handshake and heartbeat: the connection says it
 * is lost and why (`expect`), and comes back by itself once the server behaves. */
static void
hello_case (const char *scenario, const char *expect)
{
   hostile_server h;
   mgconn_runtime *rt = runtime_new ();
   mgconn_connection *conn;
   mgconn_error err;
   recorder rec;
   long before;
   int lost;
   const char *why = NULL;

   hostile_start (&h, scenario, "hello", "behave");
   conn = conn_new (rt, server_uri (&(test_server){.port = h.port}, "hostile", NULL), OPTS);
   recorder_attach (&rec, conn);
   mgconn_error_init (&err);
   CHECK (ping (conn, 10000, &err) == MGCONN_OP_SUCCEEDED, "the healthy server did not answer: %s", err.message);
   before = vm_hwm_kb ();

   control (&h, "hostile");
   lost = wait_event (rt, &rec, "disconnected", 0, 15000);
   CHECK (lost >= 0, "%s: the connection never said it was lost (%s)", scenario, recorder_sequence (&rec));
   for (int i = 0; i < rec.n && !why; i++) {
      if (strstr (rec.errors[i].message, expect)) {
         why = rec.errors[i].message;
      }
   }
   printf ("  %s: events %s\n", scenario, recorder_sequence (&rec));
   for (int i = 0; i < rec.n; i++) {
      if (rec.errors[i].message[0]) {
         printf ("    %s: %s\n", rec.names[i], rec.errors[i].message);
      }
   }
   CHECK (why, "%s: no event says \"%s\"", scenario, expect);
   printf ("  %s: peak memory %ld kB, grew by %ld kB\n", scenario, vm_hwm_kb (), vm_hwm_kb () - before);
   CHECK (vm_hwm_kb () - before < HWM_GROWTH_LIMIT_KB, "%s: peak memory grew by %ld kB", scenario,
          vm_hwm_kb () - before);

   control (&h, "behave");
   CHECK (wait_event (rt, &rec, "reconnected", lost, 15000) >= 0, "%s: no recovery once the server behaves (%s)",
          scenario, recorder_sequence (&rec));
   mgconn_error_cleanup (&err);
   mgconn_error_init (&err);
   CHECK (ping (conn, 10000, &err) == MGCONN_OP_SUCCEEDED, "%s: a ping after the recovery failed: %s", scenario,
          err.message);

   mgconn_error_cleanup (&err);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   hostile_stop (&h);
}

/* Each case misbehaves on an insert, a write: one whose outcome the client cannot know (an unreadable
 * reply, or none). Unreadable replies are not sent again; a lost reply is (an insert may be), until the
 * re-send limit; either way the error says why, as OutcomeUnknown. */
static void t_op_huge_length (void) { op_case ("huge_length", MGCONN_ERR_OUTCOME_UNKNOWN, "message length"); }
static void t_op_section_overrun (void) { op_case ("section_overrun", MGCONN_ERR_OUTCOME_UNKNOWN, "malformed"); }
static void t_op_truncated (void) { op_case ("truncated", MGCONN_ERR_OUTCOME_UNKNOWN, "socket"); }
static void t_op_corrupt_type (void) { op_case ("corrupt_type", MGCONN_ERR_OUTCOME_UNKNOWN, "invalid reply from server to insert"); }
static void t_op_no_ok (void) { op_case ("no_ok", MGCONN_ERR_OUTCOME_UNKNOWN, "no \"ok\""); }
static void t_op_silence (void) { op_case ("silence", MGCONN_ERR_OUTCOME_UNKNOWN, "timeout"); }
static void t_op_slow_drip (void) { op_case ("slow_drip", MGCONN_ERR_OUTCOME_UNKNOWN, "timeout"); }
static void t_hello_huge_length (void) { hello_case ("huge_length", "message length"); }
static void t_hello_claim_then_flood (void) { hello_case ("claim_then_flood", "message length"); }
static void t_hello_section_overrun (void) { hello_case ("section_overrun", "malformed"); }
static void t_hello_silence (void) { hello_case ("silence", "timeout"); }

static const test_case tests[] = {
   {"op_huge_length", t_op_huge_length},
   {"op_section_overrun", t_op_section_overrun},
   {"op_truncated", t_op_truncated},
   {"op_corrupt_type", t_op_corrupt_type},
   {"op_no_ok", t_op_no_ok},
   {"op_silence", t_op_silence},
   {"op_slow_drip", t_op_slow_drip},
   {"hello_huge_length", t_hello_huge_length},
   {"hello_claim_then_flood", t_hello_claim_then_flood},
   {"hello_section_overrun", t_hello_section_overrun},
   {"hello_silence", t_hello_silence},
   {NULL, NULL},
};

int
main (int argc, char **argv)
{
   return run_tests (argc, argv, tests);
}
