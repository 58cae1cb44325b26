/*
 * test_outage.c: work in flight when the server dies. Operations already sent when the server is
 * killed are sent again after it is back when that is safe, each within its bufferTimeoutMS from
 * issue; a write that is not safe to send again fails as OutcomeUnknown, never as a bare network
 * error; writes to one document keep their issue order.
 *
 * "In flight" is made certain, not hoped for: the server is SIGSTOPped, the operations are issued
 * (their requests sit unread in the stopped server's sockets), then it is SIGKILLed, so none of them
 * was applied and each one's fate is known.
 */
#include "harness.h"

#include <string.h>

static mgconn_op *
start_op (mgconn_collection *c, const char *what, const char *a_json, const char *b_json, const char *opts_json)
{
   bson_t *a = a_json ? json (a_json) : NULL, *b = b_json ? json (b_json) : NULL, *o = opts_json ? json (opts_json) : NULL;
   const uint8_t *od = o ? bson_get_data (o) : NULL;
   size_t ol = o ? o->len : 0;
   mgconn_op *op = NULL;
   int rc = -1;
   if (strcmp (what, "insert_one") == 0) {
      rc = mgconn_collection_insert_one (&op, c, bson_get_data (a), a->len, od, ol, NULL, NULL);
   } else if (strcmp (what, "insert_many") == 0) {
      rc = mgconn_collection_insert_many (&op, c, bson_get_data (a), a->len, od, ol, NULL, NULL);
   } else if (strcmp (what, "find_one") == 0) {
      rc = mgconn_collection_find_one (&op, c, bson_get_data (a), a->len, od, ol, NULL, NULL);
   } else if (strcmp (what, "update_one") == 0) {
      rc = mgconn_collection_update_one (&op, c, bson_get_data (a), a->len, bson_get_data (b), b->len, od, ol, NULL,
                                         NULL);
   } else if (strcmp (what, "replace_one") == 0) {
      rc = mgconn_collection_replace_one (&op, c, bson_get_data (a), a->len, bson_get_data (b), b->len, od, ol, NULL,
                                          NULL);
   } else if (strcmp (what, "delete_many") == 0) {
      rc = mgconn_collection_delete_many (&op, c, bson_get_data (a), a->len, od, ol, NULL, NULL);
   } else if (strcmp (what, "count") == 0) {
      rc = mgconn_collection_count_documents (&op, c, bson_get_data (a), a->len, od, ol, NULL, NULL);
   }
   CHECK (rc == 0, "%s was refused: %s", what, mgconn_last_error ()->message);
   if (a) {
      bson_destroy (a);
   }
   if (b) {
      bson_destroy (b);
   }
   if (o) {
      bson_destroy (o);
   }
   return op;
}

/* The reply's int32 (or int64) field, or -1. */
static int64_t
reply_int (mgconn_op *op, const char *path)
{
   const uint8_t *data;
   size_t len;
   bson_t reply;
   bson_iter_t it;
   mgconn_op_reply (op, &data, &len);
   bson_init_static (&reply, data, len);
   if (bson_iter_init (&it, &reply) && bson_iter_find_descendant (&it, path, &it) &&
       (BSON_ITER_HOLDS_INT32 (&it) || BSON_ITER_HOLDS_INT64 (&it) || BSON_ITER_HOLDS_DOUBLE (&it))) {
      return bson_iter_as_int64 (&it);
   }
   return -1;
}

static void
run_ok (mgconn_op *op, const char *what)
{
   expect_ok (op, what);
   mgconn_op_free (op);
}

static int64_t
count_of (mgconn_collection *c, const char *filter)
{
   mgconn_op *op = start_op (c, "count", filter, NULL, NULL);
   int64_t n;
   expect_ok (op, "count");
   n = reply_int (op, "count");
   mgconn_op_free (op);
   return n;
}

typedef struct {
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   mgconn_collection *c;
   recorder r;
   unsigned known_ports[64]; /* the clients' ports of the server's connections when it was stopped */
   int n_known;
   int new_with_request; /* of those holding a request at the kill, connections opened after the stop */
} fixture;

/* A server, a connection that notices a loss within half a second, and a collection that exists
 * (FerretDB cannot restart after a SIGKILL in the middle of creating a database's file). */
static void
fixture_open (fixture *f, const char *opts_json)
{
   mgconn_op *create;
   server_start (&f->s);
   f->rt = runtime_new ();
   f->conn = conn_new (f->rt, server_uri (&f->s, "outage", NULL), opts_json);
   recorder_attach (&f->r, f->conn);
   CHECK (wait_event (f->rt, &f->r, "open", 0, 10000) >= 0, "no open");
   f->c = coll_of (f->conn, "saves");
   mgconn_connection_create_collection (&create, f->conn, "saves", NULL, 0, NULL, NULL);
   expect_ok (create, "create");
   mgconn_op_free (create);
   {
      /* Every pooled client the test's operations can get has a live socket: a request then goes
       * out at once rather than waiting for a connection to the stopped server (which would fail
       * before sending, and be sent again whatever it is). */
      mgconn_op *warm[10];
      for (int i = 0; i < 10; i++) {
         warm[i] = start_op (f->c, "count", "{}", NULL, NULL);
      }
      for (int i = 0; i < 10; i++) {
         run_ok (warm[i], "warm-up count");
      }
   }
}

static void
fixture_close (fixture *f)
{
   mgconn_collection_free (f->c);
   mgconn_connection_free (f->conn);
   mgconn_runtime_free (f->rt);
   server_cleanup (&f->s);
}

/* Calls `fn` with (client's port, unread bytes) for each of the server's ESTABLISHED connections. */
static void
each_server_connection (int port, void (*fn) (void *, unsigned, unsigned), void *ud)
{
   FILE *f = fopen ("/proc/net/tcp", "r");
   char line[512];
   CHECK (f, "/proc/net/tcp");
   while (fgets (line, sizeof line, f)) {
      unsigned local_port, remote_port, state, rx;
      if (sscanf (line, " %*d: %*8x:%4x %*8x:%4x %2x %*8x:%8x", &local_port, &remote_port, &state, &rx) == 4 &&
          (int) local_port == port && state == 0x01) {
         fn (ud, remote_port, rx);
      }
   }
   fclose (f);
}

static void
remember_port (void *ud, unsigned client_port, unsigned rx)
{
   fixture *f = ud;
   (void) rx;
   if (f->n_known < 64) {
      f->known_ports[f->n_known++] = client_port;
   }
}

static void
count_new_with_request (void *ud, unsigned client_port, unsigned rx)
{
   fixture *f = ud;
   bool known = false;
   for (int i = 0; i < f->n_known; i++) {
      known = known || f->known_ports[i] == client_port;
   }
   f->new_with_request += !known && rx > 0;
}

static void
count_with_request (void *ud, unsigned client_port, unsigned rx)
{
   (void) client_port;
   *(int *) ud += rx > 0;
}

/* The stopped server's connections that hold unread bytes: requests that reached it. */
static int
requests_waiting (int port)
{
   int n = 0;
   each_server_connection (port, count_with_request, &n);
   return n;
}

/* SIGSTOP, remembering which connections the server had: a request held on a connection opened
 * after this is one still in its connection's handshake (libmongoc's hello), not yet sent. */
static void
pause_server (fixture *f)
{
   f->n_known = 0;
   each_server_connection (f->s.port, remember_port, f);
   CHECK (f->n_known < 64, "too many connections to remember");
   server_pause (&f->s);
}

/* The server was stopped and `n_ops` operations issued: waits until as many of its connections
 * hold unread requests, then kills it. The fixtures that use this set heartbeatFrequencyMS far
 * beyond the test's length, so that no monitor's hello is counted as an operation (recovery after
 * the restart does not wait for a heartbeat: the reconnect probe finds the server). A request
 * held on a connection opened after the stop is a handshake, and its operation was not sent: that
 * is said on stderr, since a test that expects that operation to fail as in flight then fails. */
static void
kill_with_requests_in_flight (fixture *f, int n_ops)
{
   int64_t deadline = now_ms () + 1000; /* within the shortest bufferTimeoutMS of these tests */
   pump_for (f->rt, 200);
   while (requests_waiting (f->s.port) < n_ops && now_ms () < deadline) {
      pump_for (f->rt, 20);
   }
   f->new_with_request = 0;
   each_server_connection (f->s.port, count_new_with_request, f);
   if (requests_waiting (f->s.port) < n_ops || f->new_with_request > 0) {
      fprintf (stderr,
               "   %d connections of the stopped server hold a request, for %d operations; %d of them were "
               "opened after it stopped (a handshake: that operation was not sent)\n",
               requests_waiting (f->s.port), n_ops, f->new_with_request);
   }
   server_kill (&f->s); /* SIGKILL while stopped: the requests it holds are never read */
}

static void
test_in_flight_work_is_sent_again_after_the_restart (void)
{
   fixture f;
   mgconn_op *ins, *many, *find, *set, *inc, *repl, *del;
   const char *msg;
   fixture_open (&f, "{\"heartbeatFrequencyMS\": 600000, \"bufferTimeoutMS\": 30000, \"minPoolSize\": 10}");
   run_ok (start_op (f.c, "insert_one", "{\"_id\": \"counter\", \"n\": 0}", NULL, NULL), "seed");
   run_ok (start_op (f.c, "insert_one", "{\"_id\": \"gone\"}", NULL, NULL), "seed");
   run_ok (start_op (f.c, "insert_one", "{\"_id\": \"named\"}", NULL, NULL), "seed");

   pause_server (&f);
   ins = start_op (f.c, "insert_one", "{\"name\": \"ada\"}", NULL, NULL); /* its _id is made by mgconn */
   many = start_op (f.c, "insert_many", "{\"0\": {\"_id\": \"m1\"}, \"1\": {\"_id\": \"m2\"}}", NULL, NULL);
   find = start_op (f.c, "find_one", "{\"_id\": \"counter\"}", NULL, NULL);
   set = start_op (f.c, "update_one", "{\"_id\": \"named\"}", "{\"$set\": {\"name\": \"c\"}}", NULL);
   inc = start_op (f.c, "update_one", "{\"_id\": \"counter\"}", "{\"$inc\": {\"n\": 1}}", NULL);
   repl = start_op (f.c, "replace_one", "{\"_id\": \"hero\"}", "{\"_id\": \"hero\", \"seq\": 1}", "{\"upsert\": true}");
   del = start_op (f.c, "delete_many", "{\"_id\": \"gone\"}", NULL, NULL);
   kill_with_requests_in_flight (&f, 7);
   CHECK (mgconn_op_status (ins) == MGCONN_OP_PENDING, "the insert did not wait for the server to come back");
   server_restart (&f.s);

   expect_ok (ins, "the insert in flight at the kill");
   expect_ok (many, "the insert_many in flight at the kill");
   expect_ok (find, "the find_one in flight at the kill");
   expect_ok (set, "the $set in flight at the kill");
   expect_ok (repl, "the replace_one in flight at the kill");
   expect_ok (del, "the delete_many in flight at the kill");
   CHECK (mgconn_op_resent (ins) >= 1 && reply_int (ins, "resent") == mgconn_op_resent (ins),
          "the insert's reply does not say it was re-sent (resent %d)", mgconn_op_resent (ins));
   CHECK (mgconn_op_resent (find) >= 1, "the find_one was not re-sent");
   msg = expect_failure (inc, MGCONN_ERR_OUTCOME_UNKNOWN, "the $inc in flight at the kill");
   CHECK (strstr (msg, "may or may not have been applied") && strstr (msg, "not sent again") &&
             strstr (msg, "`$inc` is not idempotent"),
          "message: %s", msg);
   CHECK (mgconn_op_resent (inc) == 0, "the $inc was re-sent");
   fprintf (stderr, "   $inc: %s\n", msg);

   CHECK (count_of (f.c, "{\"name\": \"ada\"}") == 1, "the re-sent insert is not stored exactly once");
   CHECK (count_of (f.c, "{\"_id\": {\"$in\": [\"m1\", \"m2\"]}}") == 2, "insert_many's documents are not stored");
   CHECK (count_of (f.c, "{\"_id\": \"counter\", \"n\": 0}") == 1, "the $inc was applied: it was sent again");
   CHECK (count_of (f.c, "{\"_id\": \"named\", \"name\": \"c\"}") == 1, "the $set was not applied");
   CHECK (count_of (f.c, "{\"_id\": \"hero\", \"seq\": 1}") == 1, "the replace_one is not stored");
   CHECK (count_of (f.c, "{\"_id\": \"gone\"}") == 0, "the delete_many did not run");
   mgconn_op_free (ins);
   mgconn_op_free (many);
   mgconn_op_free (find);
   mgconn_op_free (set);
   mgconn_op_free (inc);
   mgconn_op_free (repl);
   mgconn_op_free (del);
   fixture_close (&f);
}

/* A single-document write whose filter does not name one _id could act on another document when
 * run twice; an update pipeline is not idempotent: both fail as OutcomeUnknown. (Under the
 * sanitizers a request may still be in its connection's handshake at the kill, not sent, and then
 * rightly sent again: tests/python/test_outage.py pins the same rule with a scripted server.) */
static void
test_unsafe_writes_fail_as_outcome_unknown (void)
{
   fixture f;
   mgconn_op *by_name, *pipeline;
   const char *msg;
   fixture_open (&f, "{\"heartbeatFrequencyMS\": 600000, \"bufferTimeoutMS\": 30000, \"minPoolSize\": 10}");
   pause_server (&f);
   by_name = start_op (f.c, "update_one", "{\"name\": \"x\"}", "{\"$set\": {\"a\": 1}}", NULL);
   pipeline = start_op (f.c, "update_one", "{\"_id\": 1}", "{\"0\": {\"$set\": {\"a\": 1}}}", NULL);
   kill_with_requests_in_flight (&f, 2);
   server_restart (&f.s);
   msg = expect_failure (by_name, MGCONN_ERR_OUTCOME_UNKNOWN, "update_one by name");
   CHECK (strstr (msg, "does not name one `_id`"), "message: %s", msg);
   msg = expect_failure (pipeline, MGCONN_ERR_OUTCOME_UNKNOWN, "pipeline update");
   CHECK (strstr (msg, "pipeline"), "message: %s", msg);
   mgconn_op_free (by_name);
   mgconn_op_free (pipeline);
   fixture_close (&f);
}

/* resendInterrupted: false: nothing is sent again; a write says its outcome is unknown, a read
 * reports the network error. Per operation, the option turns it back on. */
static void
test_resend_interrupted_false_sends_nothing_again (void)
{
   fixture f;
   mgconn_op *ins, *find, *forced;
   const char *msg;
   fixture_open (&f, "{\"heartbeatFrequencyMS\": 600000, \"bufferTimeoutMS\": 30000, \"resendInterrupted\": false, \"minPoolSize\": 10}");
   pause_server (&f);
   ins = start_op (f.c, "insert_one", "{\"_id\": \"x\"}", NULL, NULL);
   find = start_op (f.c, "find_one", "{}", NULL, NULL);
   forced = start_op (f.c, "insert_one", "{\"_id\": \"y\"}", NULL, "{\"resendInterrupted\": true}");
   kill_with_requests_in_flight (&f, 3);
   server_restart (&f.s);
   msg = expect_failure (ins, MGCONN_ERR_OUTCOME_UNKNOWN, "insert with re-sending off");
   CHECK (strstr (msg, "resendInterrupted: false"), "message: %s", msg);
   expect_failure (find, MGCONN_ERR_NETWORK, "find_one with re-sending off");
   expect_ok (forced, "insert with resendInterrupted: true as its own option");
   CHECK (count_of (f.c, "{\"_id\": \"x\"}") == 0 && count_of (f.c, "{\"_id\": \"y\"}") == 1,
          "x was sent again, or y was not");
   mgconn_op_free (ins);
   mgconn_op_free (find);
   mgconn_op_free (forced);
   fixture_close (&f);
}

/* A re-queued operation keeps the deadline it had from its issue: the server stays away past it. */
static void
test_resent_work_keeps_its_buffer_deadline_from_issue (void)
{
   fixture f;
   mgconn_op *find, *ins;
   int64_t t0, took;
   const char *msg;
   fixture_open (&f, "{\"heartbeatFrequencyMS\": 600000, \"bufferTimeoutMS\": 1500, \"minPoolSize\": 10, "
                   "\"serverSelectionTimeoutMS\": 1000}");
   pause_server (&f);
   t0 = now_ms ();
   find = start_op (f.c, "find_one", "{}", NULL, NULL);
   ins = start_op (f.c, "insert_one", "{\"_id\": \"late\"}", NULL, NULL);
   kill_with_requests_in_flight (&f, 2);
   if (mgconn_op_wait (find, 20000) != MGCONN_OP_FAILED) {
      uint8_t stats[256];
      mgconn_connection_stats (f.conn, stats, sizeof stats);
      bson_t st;
      bson_init_static (&st, stats, (size_t) ((int32_t *) stats)[0]);
      char *j = bson_as_relaxed_extended_json (&st, NULL);
      CHECK (false, "the find_one did not fail while the server was away (status %d, resent %d, %s)",
             mgconn_op_status (find), mgconn_op_resent (find), j);
   }
   took = now_ms () - t0;
   /* BufferTimeout; or, when libmongoc had already taken it into its own server selection before it
    * could be sent, that selection's error (serverSelectionTimeoutMS is 1000 here) */
   CHECK (mgconn_op_error (find)->category == MGCONN_ERR_BUFFER_TIMEOUT ||
             mgconn_op_error (find)->category == MGCONN_ERR_SERVER_SELECTION,
          "find_one: [%s] %s",
          mgconn_error_category_name (mgconn_op_error (find)->category), mgconn_op_error (find)->message);
   fprintf (stderr, "   re-queued find_one timed out %lld ms after its issue (bufferTimeoutMS=1500)\n", (long long) took);
   CHECK (took >= 1400 && took < 2500, "timed out %lld ms after issue", (long long) took);
   msg = expect_failure (ins, MGCONN_ERR_OUTCOME_UNKNOWN, "re-queued insert past its deadline");
   CHECK (strstr (msg, "buffering timed out after 1500ms"), "message: %s", msg);
   mgconn_op_free (find);
   mgconn_op_free (ins);
   fixture_close (&f);
}

/* 200 saves of one entity buffered before the server is there, released at connect with the
 * default pool: they run one after another in issue order, while saves of other entities still run
 * side by side. */
static void
test_writes_to_one_document_keep_their_order (void)
{
   enum { N = 200, OTHERS = 40 };
   test_server s;
   mgconn_runtime *rt = runtime_new ();
   mgconn_connection *conn;
   mgconn_collection *c;
   mgconn_op *saves[N], *others[OTHERS];
   uint8_t stats[256];
   bson_t st;
   bson_iter_t it;
   int failed = 0;
   server_prepare (&s);
   conn = conn_new (rt, server_uri (&s, "order", NULL), "{\"heartbeatFrequencyMS\": 500, \"bufferTimeoutMS\": 30000}");
   c = coll_of (conn, "entities");
   for (int i = 0; i < N; i++) {
      char doc[96];
      snprintf (doc, sizeof doc, "{\"_id\": \"hero\", \"seq\": %d}", i + 1);
      saves[i] = start_op (c, "replace_one", "{\"_id\": \"hero\"}", doc, "{\"upsert\": true}");
      if (i < OTHERS) {
         snprintf (doc, sizeof doc, "{\"_id\": \"npc%d\", \"seq\": 1}", i);
         others[i] = start_op (c, "insert_one", doc, NULL, NULL);
      }
   }
   server_restart (&s);
   for (int i = 0; i < N; i++) {
      if (mgconn_op_wait (saves[i], 30000) != MGCONN_OP_SUCCEEDED) {
         failed++;
         fprintf (stderr, "   save %d: %s\n", i + 1, mgconn_op_error (saves[i]) ? mgconn_op_error (saves[i])->message : "pending");
      }
   }
   for (int i = 0; i < OTHERS; i++) {
      expect_ok (others[i], "insert of another entity");
   }
   {
      mgconn_op *find = start_op (c, "find_one", "{\"_id\": \"hero\"}", NULL, NULL);
      expect_ok (find, "find the hero");
      fprintf (stderr, "   stored seq %lld of %d; %d saves failed\n", (long long) reply_int (find, "document.seq"), N,
               failed);
      CHECK (failed == 0, "%d saves failed", failed);
      CHECK (reply_int (find, "document.seq") == N, "stored seq %lld, not the last save (%d)",
             (long long) reply_int (find, "document.seq"), N);
      mgconn_op_free (find);
   }
   CHECK (mgconn_connection_stats (conn, stats, sizeof stats) > 0, "stats");
   bson_init_static (&st, stats, (size_t) ((int32_t *) stats)[0]);
   CHECK (bson_iter_init_find (&it, &st, "peakInFlight") && bson_iter_int32 (&it) > 1,
          "saves of other entities did not run side by side (peakInFlight %d)", bson_iter_int32 (&it));
   for (int i = 0; i < N; i++) {
      mgconn_op_free (saves[i]);
   }
   for (int i = 0; i < OTHERS; i++) {
      mgconn_op_free (others[i]);
   }
   mgconn_collection_free (c);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   server_cleanup (&s);
}

static const test_case tests[] = {
   {"resent_after_restart", test_in_flight_work_is_sent_again_after_the_restart},
   {"unsafe_writes", test_unsafe_writes_fail_as_outcome_unknown},
   {"resend_off", test_resend_interrupted_false_sends_nothing_again},
   {"deadline_from_issue", test_resent_work_keeps_its_buffer_deadline_from_issue},
   {"document_order", test_writes_to_one_document_keep_their_order},
   {NULL, NULL},
};

int
main (int argc, char **argv)
{
   return run_tests (argc, argv, tests);
}
