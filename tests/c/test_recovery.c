/*
 * test_recovery.c: through an outage, the host notices the server's return within a second, and a
 * hung server on one connection never delays another.
 */
#include "harness.h"

#include <dirent.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int
cmp_double (const void *a, const void *b)
{
   double x = *(const double *) a, y = *(const double *) b;
   return x < y ? -1 : x > y;
}

static double
p99 (double *v, int n)
{
   qsort (v, (size_t) n, sizeof *v, cmp_double);
   return v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
}

/* One ping on `conn`, waited for (5 s); returns its latency in ms, failing the test on an error. */
static double
timed_ping (mgconn_connection *conn, const char *what)
{
   mgconn_error e;
   double t = now_us ();
   int32_t status;
   mgconn_error_init (&e);
   status = ping (conn, 5000, &e);
   CHECK (status == MGCONN_OP_SUCCEEDED, "%s: ping %s: %s", what, status == MGCONN_OP_PENDING ? "still pending after 5 s" : "failed",
          e.message);
   mgconn_error_cleanup (&e);
   return (now_us () - t) / 1000.0;
}

#define ROUNDS 8
#define PER_ROUND 50
#define HUNG_OPS 24 /* more than the 8 workers a runtime starts with */

/* Hangs A's server and puts HUNG_OPS finds in flight on A, each held by a worker in the driver. */
static void
hang_a (test_server *sa, mgconn_runtime *rt, mgconn_connection *a, mgconn_op **hung)
{
   uint8_t buf[256];
   int64_t deadline = now_ms () + 5000;
   int32_t in_flight = 0;
   bson_iter_t it;
   bson_t st;
   mgconn_collection *c = coll_of (a, "c");
   server_pause (sa);
   for (int i = 0; i < HUNG_OPS; i++) {
      CHECK (mgconn_collection_find (&hung[i], c, NULL, 0, NULL, 0, NULL, NULL) == 0, "find on A");
   }
   mgconn_collection_free (c);
   while (now_ms () < deadline) {
      int len = mgconn_connection_stats (a, buf, sizeof buf);
      CHECK (len > 0, "stats");
      bson_init_static (&st, buf, (size_t) len);
      in_flight = bson_iter_init_find (&it, &st, "inFlight") ? bson_iter_int32 (&it) : -1;
      if (in_flight == HUNG_OPS) {
         break;
      }
      pump_for (rt, 10);
   }
   CHECK (in_flight == HUNG_OPS, "%d of A's %d operations in flight", in_flight, HUNG_OPS);
   pump_for (rt, 100); /* they have reached the hung server */
   for (int i = 0; i < HUNG_OPS; i++) {
      CHECK (mgconn_op_status (hung[i]) == MGCONN_OP_PENDING, "A's find %d finished although its server hangs: %s", i,
             mgconn_op_error (hung[i]) ? mgconn_op_error (hung[i])->message : "succeeded");
   }
}

/* Connection A's server hangs (SIGSTOP) with more operations in flight than the runtime has
 * workers at start; connection B, on another server, keeps its latency: its p99 stays within 2x of
 * its baseline, measured in the same run, in rounds that alternate with A's hangs (so that a drift
 * of the shared machine falls on both). Then a plain close() of A while its server hangs resolves
 * within its bound (the 1 s grace for operations in flight), failing them with ConnectionClosed. */
static void
test_a_hung_server_never_delays_another_connection (void)
{
   test_server sa, sb;
   mgconn_runtime *rt;
   mgconn_connection *a, *b;
   mgconn_op *hung[HUNG_OPS], *close_op = NULL;
   recorder ra, rb;
   double base[ROUNDS * PER_ROUND], during[ROUNDS * PER_ROUND], base_p99, during_p99;
   int nb = 0, nd = 0;
   int64_t t0, took;
   server_start (&sa);
   server_start (&sb);
   rt = runtime_new ();
   a = conn_new (rt, server_uri (&sa, "iso", NULL), NULL); /* default options: no socketTimeoutMS */
   b = conn_new (rt, server_uri (&sb, "iso", NULL), NULL);
   recorder_attach (&ra, a);
   recorder_attach (&rb, b);
   CHECK (wait_event (rt, &ra, "open", 0, 10000) >= 0, "A did not open");
   CHECK (wait_event (rt, &rb, "open", 0, 10000) >= 0, "B did not open");
   for (int i = 0; i < 20; i++) {
      timed_ping (b, "warm-up"); /* B's pooled client is connected before measuring */
   }
   /* A tail of a 0.1 ms operation is at the mercy of whatever else the machine runs: a measurement
    * whose ratio is over 2x is taken again, up to three times, and each is printed. A connection
    * starved by the other never passes (its ping waits until A's server comes back). */
   for (int attempt = 1; attempt <= 3; attempt++) {
      nb = nd = 0;
      for (int round = 0; round < ROUNDS; round++) {
         for (int i = 0; i < PER_ROUND; i++) {
            base[nb++] = timed_ping (b, "baseline");
         }
         hang_a (&sa, rt, a, hung);
         for (int i = 0; i < PER_ROUND; i++) {
            during[nd++] = timed_ping (b, "with A's server hung");
         }
         server_resume (&sa);
         for (int i = 0; i < HUNG_OPS; i++) {
            expect_ok (hung[i], "A's find once its server runs again");
            mgconn_op_free (hung[i]);
         }
         pump_for (rt, 300); /* A's server catches up (it competes with B's for the CPU meanwhile) */
      }
      base_p99 = p99 (base, nb);
      during_p99 = p99 (during, nd);
      fprintf (stderr,
               "   attempt %d: B's ping p99 %.3f ms alone, %.3f ms while A's server hangs with %d operations "
               "(%.2fx); median %.3f / %.3f ms\n",
               attempt, base_p99, during_p99, HUNG_OPS, during_p99 / base_p99, base[nb / 2], during[nd / 2]);
      if (during_p99 <= 2 * base_p99) {
         break;
      }
   }
   CHECK (during_p99 <= 2 * base_p99, "B's p99 went from %.3f ms to %.3f ms while A's server hung", base_p99,
          during_p99);

   hang_a (&sa, rt, a, hung);
   t0 = now_ms ();
   CHECK (mgconn_connection_close (&close_op, a, 0, NULL, NULL) == 0, "close A");
   CHECK (mgconn_op_wait (close_op, 5000) == MGCONN_OP_SUCCEEDED, "close() of A did not resolve within 5 s");
   took = now_ms () - t0;
   fprintf (stderr, "   close() of A resolved after %lld ms (bound: 1000 ms grace for operations in flight)\n",
            (long long) took);
   CHECK (took >= 900 && took < 1500, "close() of A resolved after %lld ms", (long long) took);
   for (int i = 0; i < HUNG_OPS; i++) {
      expect_failure (hung[i], MGCONN_ERR_CONNECTION_CLOSED, "A's find in flight at close()");
      mgconn_op_free (hung[i]);
   }
   CHECK (ping (b, 5000, NULL) == MGCONN_OP_SUCCEEDED, "B after A's close");
   mgconn_op_free (close_op);
   server_resume (&sa); /* the stuck workers return and A's pool goes */
   mgconn_connection_free (a);
   mgconn_connection_free (b);
   mgconn_runtime_free (rt);
   recorder_reset (&ra);
   recorder_reset (&rb);
   server_cleanup (&sa);
   server_cleanup (&sb);
}

#define KILLS 4

/* With the default heartbeatFrequencyMS (10 s), a server killed and started again on the same port
 * is reported `reconnected` within 1 s of answering again, and the operation buffered meanwhile
 * runs then. */
static void
test_reconnected_within_a_second_of_the_server_answering (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   recorder r;
   int64_t delays[KILLS];
   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "back", NULL), NULL);
   recorder_attach (&r, conn);
   CHECK (wait_event (rt, &r, "open", 0, 10000) >= 0, "no open");
   for (int k = 0; k < KILLS; k++) {
      mgconn_op *probe = NULL, *buffered = NULL;
      bson_t *cmd = BCON_NEW ("ping", BCON_INT32 (1));
      int from = r.n, i_down, i_re;
      int64_t answered;
      server_kill (&s);
      /* An operation meets the dead socket: that is how the loss is seen before a heartbeat. */
      CHECK (mgconn_run_command (&probe, conn, "admin", bson_get_data (cmd), cmd->len, NULL, NULL) == 0, "ping");
      i_down = wait_event (rt, &r, "disconnected", from, 15000);
      CHECK (i_down >= 0, "kill %d: no disconnected; saw %s", k + 1, recorder_sequence (&r));
      CHECK (mgconn_run_command (&buffered, conn, "admin", bson_get_data (cmd), cmd->len, NULL, NULL) == 0, "ping");
      pump_for (rt, 1500 + 500 * k); /* down for a while: several probes fail */
      CHECK (mgconn_op_status (buffered) == MGCONN_OP_PENDING, "kill %d: the buffered ping finished while down", k + 1);
      server_restart (&s);
      answered = now_ms (); /* the harness saw it answer ping (it polls every 50 ms) */
      i_re = wait_event (rt, &r, "reconnected", i_down, 15000);
      CHECK (i_re >= 0, "kill %d: no reconnected within 15 s; saw %s", k + 1, recorder_sequence (&r));
      delays[k] = r.at_ms[i_re] - answered;
      expect_ok (buffered, "the ping buffered while the server was down");
      mgconn_op_wait (probe, 10000);
      mgconn_op_free (probe);
      mgconn_op_free (buffered);
      bson_destroy (cmd);
      if (r.n > REC_MAX - 8) {
         recorder_reset (&r);
      }
   }
   fprintf (stderr, "   server answers -> reconnected (ms, heartbeatFrequencyMS 10000):");
   for (int k = 0; k < KILLS; k++) {
      fprintf (stderr, " %lld", (long long) delays[k]);
   }
   fprintf (stderr, "\n");
   for (int k = 0; k < KILLS; k++) {
      CHECK (delays[k] <= 1000, "kill %d: reconnected %lld ms after the server answered", k + 1, (long long) delays[k]);
   }
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   recorder_reset (&r);
   server_cleanup (&s);
}

/* Shuts down every TCP socket of this process connected to 127.0.0.1:port (the pool's and the
 * monitor's): a network error on sockets while the server itself goes on answering. */
static int
break_sockets_to (int port)
{
   DIR *d = opendir ("/proc/self/fd");
   struct dirent *e;
   int n = 0;
   CHECK (d, "/proc/self/fd");
   while ((e = readdir (d))) {
      char path[300], link[64];
      unsigned long inode;
      ssize_t len;
      FILE *f;
      char line[512];
      snprintf (path, sizeof path, "/proc/self/fd/%s", e->d_name);
      len = readlink (path, link, sizeof link - 1);
      if (len <= 0) {
         continue;
      }
      link[len] = '\0';
      if (sscanf (link, "socket:[%lu]", &inode) != 1 || !(f = fopen ("/proc/net/tcp", "r"))) {
         continue;
      }
      while (fgets (line, sizeof line, f)) {
         unsigned remote_port, state;
         unsigned long ino;
         if (sscanf (line, " %*d: %*8x:%*4x %*8x:%4x %2x %*x:%*x %*x:%*x %*x %*u %*d %lu", &remote_port, &state, &ino) ==
                3 &&
             ino == inode && (int) remote_port == port) {
            shutdown (atoi (e->d_name), SHUT_RDWR);
            n++;
         }
      }
      fclose (f);
   }
   closedir (d);
   return n;
}

/* One operation's network error while the server still answers: the connection is down only
 * until a probe finds the server, not for a heartbeat (10 s). */
static void
test_a_socket_error_on_a_live_server_is_checked_at_once (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   recorder r;
   mgconn_op *op = NULL;
   bson_t *cmd = BCON_NEW ("ping", BCON_INT32 (1));
   int i_down, i_re, broken;
   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "sock", NULL), NULL);
   recorder_attach (&r, conn);
   CHECK (wait_event (rt, &r, "open", 0, 10000) >= 0, "no open");
   CHECK (ping (conn, 5000, NULL) == MGCONN_OP_SUCCEEDED, "ping");
   broken = break_sockets_to (s.port);
   CHECK (broken >= 1, "no socket to the server was found");
   CHECK (mgconn_run_command (&op, conn, "admin", bson_get_data (cmd), cmd->len, NULL, NULL) == 0, "ping");
   mgconn_op_wait (op, 10000);
   i_down = wait_event (rt, &r, "disconnected", 0, 5000);
   CHECK (i_down >= 0, "the socket error did not bring the connection down; saw %s", recorder_sequence (&r));
   i_re = wait_event (rt, &r, "reconnected", i_down, 15000);
   CHECK (i_re >= 0, "no reconnected; saw %s", recorder_sequence (&r));
   fprintf (stderr, "   %d socket(s) broken: down for %lld ms (heartbeatFrequencyMS 10000)\n", broken,
            (long long) (r.at_ms[i_re] - r.at_ms[i_down]));
   CHECK (r.at_ms[i_re] - r.at_ms[i_down] <= 1000, "down for %lld ms although the server answered",
          (long long) (r.at_ms[i_re] - r.at_ms[i_down]));
   CHECK (ping (conn, 5000, NULL) == MGCONN_OP_SUCCEEDED, "ping after");
   mgconn_op_free (op);
   bson_destroy (cmd);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   recorder_reset (&r);
   server_cleanup (&s);
}

static const test_case tests[] = {
   {"isolation", test_a_hung_server_never_delays_another_connection},
   {"reconnect_fast", test_reconnected_within_a_second_of_the_server_answering},
   {"socket_error", test_a_socket_error_on_a_live_server_is_checked_at_once},
   {NULL, NULL},
};

int
main (int argc, char **argv)
{
   return run_tests (argc, argv, tests);
}
