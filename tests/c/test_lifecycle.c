/*
 * test_lifecycle.c: a connection's life against a real FerretDB — open, initial failure, loss and
 * recovery, close — and the rule that no call makes the host thread wait for the network.
 */
#include "harness.h"
#include "connection.h" /* white box: a connection's count, for the dying-connection test */

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static bool
reason_lists_server (const mgconn_error *e, const char *hostport, char *type_out, size_t type_size)
{
   const uint8_t *data;
   size_t len;
   bson_t reason;
   bson_iter_t it, servers, server, field;
   mgconn_error_reason (e, &data, &len);
   if (!bson_init_static (&reason, data, len) || !bson_iter_init_find (&it, &reason, "servers") ||
       !bson_iter_recurse (&it, &servers) || !bson_iter_find (&servers, hostport) ||
       !bson_iter_recurse (&servers, &server)) {
      return false;
   }
   if (bson_iter_find (&server, "type") && BSON_ITER_HOLDS_UTF8 (&server)) {
      bson_strncpy (type_out, bson_iter_utf8 (&server, NULL), type_size);
   }
   bson_iter_recurse (&servers, &field);
   return bson_iter_find (&field, "error") && BSON_ITER_HOLDS_UTF8 (&field);
}

static void
record_post (void *userdata)
{
   int *slot = userdata;
   slot[1] = slot[1] * 10 + slot[0]; /* slot[1] accumulates the order of runs: 1, 12, 123 */
}

static void
record_drop (void *userdata)
{
   ((int *) userdata)[2]++;
}

/* A host's posted callbacks wake the fd, run in order one unit of dispatch each, and the ones the
 * runtime never ran are dropped (their userdata released) when it is freed. */
static void
test_posted_callbacks_wake_the_fd_and_run_in_order (void)
{
   mgconn_runtime *rt = runtime_new ();
   int slots[4][3] = {{1, 0, 0}, {2, 0, 0}, {3, 0, 0}, {4, 0, 0}};
   int order = 0;
   struct pollfd p = {mgconn_runtime_fd (rt), POLLIN, 0};
   CHECK (poll (&p, 1, 0) == 0, "the fd is readable with nothing to dispatch");
   for (int i = 0; i < 3; i++) {
      slots[i][1] = 0;
      CHECK (mgconn_runtime_post (rt, record_post, record_drop, slots[i]) == 0, "post %d refused", i);
   }
   CHECK (poll (&p, 1, 0) == 1, "the fd is not readable after a post");
   CHECK (mgconn_runtime_dispatch (rt, 1) == 1, "dispatch(1) did not run exactly one");
   CHECK (slots[0][1] == 1 && slots[1][1] == 0, "the first post did not run first");
   CHECK (mgconn_runtime_dispatch (rt, 0) == 2, "dispatch did not run the other two");
   order = slots[0][1] * 100 + slots[1][1] * 10 + slots[2][1];
   CHECK (order == 123, "posts ran out of order: %d", order);
   CHECK (poll (&p, 1, 0) == 0, "the fd stays readable after dispatch ran everything");
   CHECK (mgconn_runtime_post (rt, NULL, NULL, NULL) == -MGCONN_ERR_INVALID_ARGUMENT, "a NULL callback accepted");
   CHECK (mgconn_runtime_post (rt, record_post, record_drop, slots[3]) == 0, "the last post refused");
   mgconn_runtime_free (rt);
   CHECK (slots[3][1] == 0 && slots[3][2] == 1, "an unrun post was run or not dropped at runtime free");
   CHECK (slots[0][2] == 0, "a post that ran was dropped too");
}

/* A callback that dispatches (a blocking wait inside a listener does) runs what is due next, in the
 * runtime's one order, and the outer dispatch goes on after it: a, then b inside a, then c. */
static struct {
   mgconn_runtime *rt;
   char log[8];
   int nested_ran;
} nest;

static void
nest_log (void *letter)
{
   strncat (nest.log, letter, sizeof nest.log - strlen (nest.log) - 1);
}

static void
nest_outer (void *letter)
{
   nest_log (letter);
   nest.nested_ran = mgconn_runtime_dispatch (nest.rt, 1);
   nest_log ("A");
}

static void
test_a_dispatch_inside_a_callback_runs_what_is_due_next (void)
{
   int outer;
   memset (&nest, 0, sizeof nest);
   nest.rt = runtime_new ();
   CHECK (mgconn_runtime_post (nest.rt, nest_outer, NULL, "a") == 0, "post a refused");
   CHECK (mgconn_runtime_post (nest.rt, nest_log, NULL, "b") == 0, "post b refused");
   CHECK (mgconn_runtime_post (nest.rt, nest_log, NULL, "c") == 0, "post c refused");
   outer = mgconn_runtime_dispatch (nest.rt, 0);
   CHECK (nest.nested_ran == 1, "the dispatch inside a callback ran %d callbacks, not the one due next", nest.nested_ran);
   CHECK (strcmp (nest.log, "abAc") == 0, "callbacks ran in the order %s, not abAc", nest.log);
   CHECK (outer == 2, "the outer dispatch ran %d callbacks, not the two it had left", outer);
   mgconn_runtime_free (nest.rt);
}

static void
test_open_emits_connecting_connected_open_in_order (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   recorder r;
   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "lifecycle", NULL), NULL);
   CHECK (mgconn_connection_ready_state (conn) == MGCONN_STATE_CONNECTING, "state %d right after create",
          mgconn_connection_ready_state (conn));
   recorder_attach (&r, conn); /* attached after the create call: must still see `connecting` */
   CHECK (wait_event (rt, &r, "open", 0, 10000) >= 0, "no open within 10 s; saw %s", recorder_sequence (&r));
   CHECK (strcmp (recorder_sequence (&r), "connecting,connected,open") == 0, "events were %s",
          recorder_sequence (&r));
   CHECK (mgconn_connection_ready_state (conn) == MGCONN_STATE_CONNECTED, "state %d after open",
          mgconn_connection_ready_state (conn));
   CHECK (strcmp (mgconn_connection_name (conn), "lifecycle") == 0, "name %s", mgconn_connection_name (conn));
   CHECK (strcmp (mgconn_connection_host (conn), "127.0.0.1") == 0 && mgconn_connection_port (conn) == s.port,
          "host %s port %d", mgconn_connection_host (conn), mgconn_connection_port (conn));
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   recorder_reset (&r);
   server_cleanup (&s);
}

static void
test_initial_failure_on_closed_port_reports_server_selection_error (void)
{
   mgconn_runtime *rt = runtime_new ();
   int port = closed_port ();
   char uri[128], hostport[64], type[32] = "";
   mgconn_connection *conn;
   recorder r;
   int64_t t0 = now_ms (), took;
   int i;
   snprintf (uri, sizeof uri, "mongodb://127.0.0.1:%d/x", port);
   snprintf (hostport, sizeof hostport, "127.0.0.1:%d", port);
   conn = conn_new (rt, uri, "{\"serverSelectionTimeoutMS\": 1000}");
   recorder_attach (&r, conn);
   i = wait_event (rt, &r, "error", 0, 5000);
   took = now_ms () - t0;
   CHECK (i >= 0, "no error event within 5 s; saw %s", recorder_sequence (&r));
   CHECK (strcmp (recorder_sequence (&r), "connecting,disconnected,error") == 0, "events were %s",
          recorder_sequence (&r));
   CHECK (r.errors[i].category == MGCONN_ERR_SERVER_SELECTION, "category %s",
          mgconn_error_category_name (r.errors[i].category));
   CHECK (strstr (r.errors[i].message, "No suitable servers found") && strstr (r.errors[i].message, hostport),
          "message does not name the server: %s", r.errors[i].message);
   CHECK (reason_lists_server (&r.errors[i], hostport, type, sizeof type), "reason.servers lacks %s with its error",
          hostport);
   CHECK (strcmp (type, "Unknown") == 0, "server type %s", type);
   CHECK (took >= 900 && took < 1000 + 1500, "error after %lld ms (timeout 1000 ms)", (long long) took);
   fprintf (stderr, "   initial failure reported after %lld ms (serverSelectionTimeoutMS=1000)\n", (long long) took);
   CHECK (mgconn_connection_ready_state (conn) == MGCONN_STATE_DISCONNECTED, "state %d",
          mgconn_connection_ready_state (conn));
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   recorder_reset (&r);
}

static void
test_server_killed_and_restarted_emits_disconnected_then_reconnected (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   recorder r;
   int64_t killed, restarted;
   int i_down, i_conn, i_re, i_open;
   mgconn_error e;
   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "lifecycle", NULL), "{\"heartbeatFrequencyMS\": 500}");
   recorder_attach (&r, conn);
   CHECK (wait_event (rt, &r, "open", 0, 10000) >= 0, "no open; saw %s", recorder_sequence (&r));

   killed = now_ms ();
   server_kill (&s);
   i_down = wait_event (rt, &r, "disconnected", 0, 5000);
   CHECK (i_down >= 0, "no disconnected within 5 s of SIGKILL; saw %s", recorder_sequence (&r));
   CHECK (r.errors[i_down].category != 0, "disconnected carries no monitoring error");
   fprintf (stderr, "   loss detected %lld ms after SIGKILL (heartbeatFrequencyMS=500): %s\n",
            (long long) (r.at_ms[i_down] - killed), r.errors[i_down].message);

   server_restart (&s);
   restarted = now_ms (); /* the server answers ping from here on */
   i_open = wait_event (rt, &r, "open", i_down, 10000);
   CHECK (i_open >= 0, "no open after restart; saw %s", recorder_sequence (&r));
   i_conn = recorder_find (&r, "connected", i_down);
   i_re = recorder_find (&r, "reconnected", i_down);
   CHECK (i_conn == i_down + 1 && i_re == i_down + 2 && i_open == i_down + 3, "after the restart: %s",
          recorder_sequence (&r));
   fprintf (stderr, "   recovery detected %lld ms after the restart answered ping\n",
            (long long) (r.at_ms[i_conn] - restarted));
   mgconn_error_init (&e);
   CHECK (ping (conn, 5000, &e) == MGCONN_OP_SUCCEEDED, "ping after restart failed: %s", e.message);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   recorder_reset (&r);
   server_cleanup (&s);
}

static void
test_close_emits_disconnecting_disconnected_close_and_later_ops_fail (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   mgconn_op *close_op = NULL, *op = NULL;
   recorder r;
   bson_t *doc = BCON_NEW ("a", BCON_INT32 (1));
   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "lifecycle", NULL), NULL);
   recorder_attach (&r, conn);
   CHECK (wait_event (rt, &r, "open", 0, 10000) >= 0, "no open; saw %s", recorder_sequence (&r));
   CHECK (mgconn_connection_close (&close_op, conn, 0, NULL, NULL) == 0, "close");
   CHECK (mgconn_op_wait (close_op, 10000) == MGCONN_OP_SUCCEEDED, "close did not finish");
   mgconn_runtime_dispatch (rt, 0);
   CHECK (strcmp (recorder_sequence (&r), "connecting,connected,open,disconnecting,disconnected,close") == 0,
          "events were %s", recorder_sequence (&r));
   CHECK (mgconn_connection_ready_state (conn) == MGCONN_STATE_DISCONNECTED, "state %d",
          mgconn_connection_ready_state (conn));

   mgconn_collection *things = coll_of (conn, "things");
   CHECK (mgconn_collection_insert_one (&op, things, bson_get_data (doc), doc->len, NULL, 0, NULL, NULL) == 0,
          "insert after close was refused at the call instead of failing as an operation");
   mgconn_collection_free (things);
   CHECK (mgconn_op_wait (op, 2000) == MGCONN_OP_FAILED, "insert after close did not fail");
   CHECK (mgconn_op_error (op)->category == MGCONN_ERR_CONNECTION_CLOSED, "category %s: %s",
          mgconn_error_category_name (mgconn_op_error (op)->category), mgconn_op_error (op)->message);
   mgconn_op_free (op);

   /* A second close does nothing: no second `close` event. */
   mgconn_op_free (close_op);
   CHECK (mgconn_connection_close (&close_op, conn, 0, NULL, NULL) == 0, "second close");
   CHECK (mgconn_op_wait (close_op, 2000) == MGCONN_OP_SUCCEEDED, "second close did not finish");
   mgconn_runtime_dispatch (rt, 0);
   CHECK (recorder_find (&r, "close", recorder_find (&r, "close", 0) + 1) < 0, "close emitted twice: %s",
          recorder_sequence (&r));
   mgconn_op_free (close_op);
   bson_destroy (doc);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   recorder_reset (&r);
   server_cleanup (&s);
}

/* close() while connecting ends the attempt at once (it used to wait for the outcome: up to
 * serverSelectionTimeoutMS, 30 s by default, for a server that does not answer), and waiting for
 * the open of a closed connection fails at once instead of waiting forever. */
static void
test_close_while_connecting_ends_the_attempt_at_once (void)
{
   mgconn_runtime *rt = runtime_new ();
   char uri[128];
   mgconn_connection *conn;
   mgconn_op *close_op = NULL, *before = NULL, *after = NULL;
   recorder r;
   int64_t t0;
   snprintf (uri, sizeof uri, "mongodb://127.0.0.1:%d/x", closed_port ()); /* default options: 30 s */
   conn = conn_new (rt, uri, NULL);
   recorder_attach (&r, conn);
   CHECK (mgconn_connection_when_open (&before, conn, NULL, NULL) == 0, "when_open");
   CHECK (mgconn_op_wait (before, 200) == MGCONN_OP_PENDING, "when_open finished while still connecting");
   t0 = now_ms ();
   CHECK (mgconn_connection_close (&close_op, conn, 0, NULL, NULL) == 0, "close");
   CHECK (mgconn_op_wait (close_op, 5000) == MGCONN_OP_SUCCEEDED, "close did not finish within 5 s");
   fprintf (stderr, "   close while connecting finished after %lld ms\n", (long long) (now_ms () - t0));
   CHECK (now_ms () - t0 < 1000, "close while connecting took %lld ms", (long long) (now_ms () - t0));
   expect_failure (before, MGCONN_ERR_CONNECTION_CLOSED, "waiting for open, then closed");
   t0 = now_ms ();
   CHECK (mgconn_connection_when_open (&after, conn, NULL, NULL) == 0, "when_open after close");
   CHECK (mgconn_op_wait (after, 1000) == MGCONN_OP_FAILED, "waiting for the open of a closed connection did not fail");
   CHECK (mgconn_op_error (after)->category == MGCONN_ERR_CONNECTION_CLOSED, "category %s",
          mgconn_error_category_name (mgconn_op_error (after)->category));
   CHECK (now_ms () - t0 < 200, "it failed after %lld ms", (long long) (now_ms () - t0));
   mgconn_runtime_dispatch (rt, 0);
   CHECK (strcmp (recorder_sequence (&r), "connecting,disconnected,close") == 0, "events were %s",
          recorder_sequence (&r));
   CHECK (mgconn_connection_ready_state (conn) == MGCONN_STATE_DISCONNECTED, "state %d",
          mgconn_connection_ready_state (conn));
   mgconn_op_free (before);
   mgconn_op_free (after);
   mgconn_op_free (close_op);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   recorder_reset (&r);
}

/* when_open (asPromise) on an open connection and on a failed one answers at once. */
static void
test_when_open_answers_at_once_once_the_outcome_is_known (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn, *bad;
   mgconn_op *op = NULL;
   recorder r, rb;
   char uri[128];
   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "whenopen", NULL), NULL);
   recorder_attach (&r, conn);
   CHECK (mgconn_connection_when_open (&op, conn, NULL, NULL) == 0, "when_open");
   CHECK (mgconn_op_wait (op, 10000) == MGCONN_OP_SUCCEEDED, "when_open did not succeed with the open");
   CHECK (recorder_find (&r, "open", 0) >= 0, "when_open succeeded before the open event: %s", recorder_sequence (&r));
   mgconn_op_free (op);
   CHECK (mgconn_connection_when_open (&op, conn, NULL, NULL) == 0, "when_open");
   CHECK (mgconn_op_wait (op, 100) == MGCONN_OP_SUCCEEDED, "when_open on an open connection did not succeed at once");
   mgconn_op_free (op);

   snprintf (uri, sizeof uri, "mongodb://127.0.0.1:%d/x", closed_port ());
   bad = conn_new (rt, uri, "{\"serverSelectionTimeoutMS\": 300}");
   recorder_attach (&rb, bad);
   CHECK (wait_event (rt, &rb, "error", 0, 5000) >= 0, "no error event");
   CHECK (mgconn_connection_when_open (&op, bad, NULL, NULL) == 0, "when_open");
   CHECK (mgconn_op_wait (op, 100) == MGCONN_OP_FAILED, "when_open on a failed open did not fail at once");
   CHECK (mgconn_op_error (op)->category == MGCONN_ERR_SERVER_SELECTION, "category %s",
          mgconn_error_category_name (mgconn_op_error (op)->category));
   mgconn_op_free (op);
   mgconn_connection_free (bad);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   recorder_reset (&r);
   recorder_reset (&rb);
   server_cleanup (&s);
}

static void
frozen (int sig)
{
   static const char msg[] = "CHECK failed: the host thread did not come back within 20 s (frozen)\n";
   (void) sig;
   (void) !write (2, msg, sizeof msg - 1);
   _exit (1);
}

/* close() then open_uri() without waiting, twice: each close resolves, the connection opens and
 * works, and the next operation returns at once (the connect timer armed twice used to corrupt the
 * timer list, and the next arm spun the host thread forever). */
static void
test_close_then_open_without_waiting_twice_keeps_the_host_going (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   mgconn_op *closes[2] = {NULL, NULL}, *ins = NULL;
   bson_t *doc = BCON_NEW ("a", BCON_INT32 (1));
   recorder r;
   double t;
   server_start (&s);
   signal (SIGALRM, frozen);
   alarm (20);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "reopen", NULL), NULL);
   recorder_attach (&r, conn);
   for (int i = 0; i < 2; i++) {
      mgconn_error e;
      mgconn_error_init (&e);
      CHECK (mgconn_connection_close (&closes[i], conn, 0, NULL, NULL) == 0, "close");
      CHECK (mgconn_connection_open (conn, server_uri (&s, "reopen", NULL), NULL, 0, &e) == 0, "open: %s", e.message);
   }
   mgconn_collection *c = coll_of (conn, "c");
   t = now_us ();
   CHECK (mgconn_collection_insert_one (&ins, c, bson_get_data (doc), doc->len, NULL, 0, NULL, NULL) == 0, "insert");
   t = now_us () - t;
   CHECK (t < 1000000, "insert_one took %.1f ms on the host thread", t / 1000); /* a spin never returns */
   mgconn_collection_free (c);
   expect_ok (ins, "the insert after two close/open_uri");
   for (int i = 0; i < 2; i++) {
      CHECK (mgconn_op_wait (closes[i], 5000) == MGCONN_OP_SUCCEEDED, "close %d did not resolve", i + 1);
      mgconn_op_free (closes[i]);
   }
   CHECK (mgconn_connection_ready_state (conn) == MGCONN_STATE_CONNECTED, "state %d",
          mgconn_connection_ready_state (conn));
   alarm (0);
   mgconn_op_free (ins);
   bson_destroy (doc);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   recorder_reset (&r);
   server_cleanup (&s);
}

static void
test_insert_then_find_round_trip (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   mgconn_op *ins = NULL, *find = NULL;
   bson_t *doc = BCON_NEW ("name", "ada", "score", BCON_INT32 (10));
   bson_t *filter = BCON_NEW ("name", "ada");
   const uint8_t *data;
   size_t len;
   bson_t reply;
   bson_iter_t it;
   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "roundtrip", NULL), NULL);
   mgconn_collection *players = coll_of (conn, "players");
   /* Issued before the connection is open: it waits for it. */
   CHECK (mgconn_collection_insert_one (&ins, players, bson_get_data (doc), doc->len, NULL, 0, NULL, NULL) == 0,
          "insert");
   CHECK (mgconn_op_wait (ins, 10000) == MGCONN_OP_SUCCEEDED, "insert failed: %s",
          mgconn_op_error (ins) ? mgconn_op_error (ins)->message : "timeout");
   mgconn_op_reply (ins, &data, &len);
   CHECK (bson_init_static (&reply, data, len) && bson_iter_init_find (&it, &reply, "insertedId") &&
             BSON_ITER_HOLDS_OID (&it),
          "insert reply has no ObjectId insertedId");
   CHECK (mgconn_collection_find (&find, players, bson_get_data (filter), filter->len, NULL, 0, NULL, NULL) == 0,
          "find");
   CHECK (mgconn_op_wait (find, 10000) == MGCONN_OP_SUCCEEDED, "find failed");
   mgconn_op_reply (find, &data, &len);
   bson_init_static (&reply, data, len);
   CHECK (bson_iter_init (&it, &reply) && bson_iter_find_descendant (&it, "batch.0.score", &it) &&
             bson_iter_int32 (&it) == 10,
          "find did not return the inserted document: %s", bson_as_relaxed_extended_json (&reply, NULL));
   mgconn_op_free (ins);
   mgconn_op_free (find);
   mgconn_collection_free (players);
   bson_destroy (doc);
   bson_destroy (filter);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   server_cleanup (&s);
}

/* White box. A connection whose count has just reached zero stays on the runtime's list until its
 * last unref takes the runtime's lock to unlink it. A walk of that list (disconnect-all here, and
 * mgconn_runtime_free) must leave it to that unref: bringing it back to life made the connection be
 * freed twice when a pool's teardown thread dropped the last reference during mgconn_runtime_free.
 * The count is set to zero by hand to stand for that moment. */
static void
test_walks_of_the_runtime_leave_a_dying_connection_alone (void)
{
   mgconn_runtime *rt = runtime_new ();
   mgconn_connection *dying, *other;
   mgconn_op *all = NULL;
   char uri[128];
   int refs;
   snprintf (uri, sizeof uri, "mongodb://127.0.0.1:%d/x", closed_port ());
   int64_t deadline = now_ms () + 10000;
   dying = conn_new (rt, uri, "{\"serverSelectionTimeoutMS\": 100}");
   CHECK (mgconn_connection_close (&all, dying, 0, NULL, NULL) == 0, "close");
   CHECK (mgconn_op_wait (all, 10000) != MGCONN_OP_PENDING, "the close did not finish");
   mgconn_op_free (all);
   while (atomic_load (&dying->refs) > 1 && now_ms () < deadline) {
      pump_for (rt, 5); /* until nothing but the handle holds it: its pool's teardown is over */
   }
   CHECK (atomic_load (&dying->refs) == 1, "the closed connection is still held %d times", atomic_load (&dying->refs));
   other = conn_new (rt, uri, "{\"serverSelectionTimeoutMS\": 100}");
   refs = atomic_exchange (&dying->refs, 0); /* the moment after its last unref's decrement */
   CHECK (mgconn_runtime_disconnect (&all, rt, NULL, NULL) == 0, "%s", mgconn_last_error ()->message);
   CHECK (mgconn_op_wait (all, 10000) == MGCONN_OP_SUCCEEDED, "disconnect-all did not finish");
   CHECK (atomic_load (&dying->refs) == 0, "the walk took a reference on a dying connection (count %d)",
          atomic_load (&dying->refs));
   CHECK (mgconn_connection_ready_state (other) == MGCONN_STATE_DISCONNECTED, "the other connection was not closed");
   atomic_store (&dying->refs, refs); /* back to life by the test's hand only, to be freed as usual */
   mgconn_op_free (all);
   mgconn_connection_free (dying);
   mgconn_connection_free (other);
   mgconn_runtime_free (rt);
}

static void
test_connecting_twice_same_uri_is_a_no_op_other_uri_is_refused (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   mgconn_error e;
   recorder r;
   char other[128];
   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "twice", NULL), NULL);
   recorder_attach (&r, conn);
   CHECK (wait_event (rt, &r, "open", 0, 10000) >= 0, "no open");
   mgconn_error_init (&e);
   CHECK (mgconn_connection_open (conn, server_uri (&s, "twice", NULL), NULL, 0, &e) == 0, "same URI: %s", e.message);
   snprintf (other, sizeof other, "mongodb://127.0.0.1:%d/other", closed_port ());
   CHECK (mgconn_connection_open (conn, other, NULL, 0, &e) == -MGCONN_ERR_INVALID_ARGUMENT, "other URI accepted");
   CHECK (strstr (e.message, "already open"), "message: %s", e.message);
   mgconn_runtime_dispatch (rt, 0);
   CHECK (mgconn_connection_ready_state (conn) == MGCONN_STATE_CONNECTED && r.n == 3,
          "the open connection was disturbed: state %d, events %s", mgconn_connection_ready_state (conn),
          recorder_sequence (&r));
   CHECK (ping (conn, 5000, NULL) == MGCONN_OP_SUCCEEDED, "ping after refused re-open");
   mgconn_error_cleanup (&e);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   recorder_reset (&r);
   server_cleanup (&s);
}

/* Every public call made while the server is down returns within a small bound. */
static void
test_no_call_waits_for_the_network_while_the_server_is_down (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn, *conn2;
   recorder r;
   double worst = 0, t;
   const char *worst_call = "";
   bson_t *doc = BCON_NEW ("x", BCON_INT32 (1));
   mgconn_op *ops[200];
   int n = 0;
#define TIMED(label, expr)               \
   do {                                  \
      t = now_us ();                     \
      expr;                              \
      t = now_us () - t;                 \
      if (t > worst) {                   \
         worst = t;                      \
         worst_call = label;             \
      }                                  \
   } while (0)

   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "down", NULL), "{\"heartbeatFrequencyMS\": 500, \"bufferTimeoutMS\": 2000}");
   recorder_attach (&r, conn);
   CHECK (wait_event (rt, &r, "open", 0, 10000) >= 0, "no open");
   server_kill (&s);
   CHECK (wait_event (rt, &r, "disconnected", 0, 5000) >= 0, "no disconnected");

   mgconn_collection *c = coll_of (conn, "c");
   for (int i = 0; i < 50; i++) {
      TIMED ("insert_one", mgconn_collection_insert_one (&ops[n++], c, bson_get_data (doc), doc->len, NULL, 0, NULL,
                                                         NULL));
      TIMED ("find", mgconn_collection_find (&ops[n++], c, NULL, 0, NULL, 0, NULL, NULL));
      TIMED ("dispatch", mgconn_runtime_dispatch (rt, 0));
      TIMED ("ready_state", mgconn_connection_ready_state (conn));
   }
   {
      char uri[128];
      snprintf (uri, sizeof uri, "mongodb://127.0.0.1:%d/x", closed_port ());
      TIMED ("connection_new", conn2 = conn_new (rt, uri, "{\"serverSelectionTimeoutMS\": 500}"));
   }
   TIMED ("close", mgconn_connection_close (&ops[n++], conn2, 0, NULL, NULL));
   TIMED ("close(force)", mgconn_connection_close (&ops[n++], conn, 1, NULL, NULL));
   for (int i = 0; i < n; i++) {
      CHECK (mgconn_op_wait (ops[i], 10000) != MGCONN_OP_PENDING, "op %d never finished", i);
      mgconn_op_free (ops[i]);
   }
   mgconn_collection_free (c);
   TIMED ("connection_free", mgconn_connection_free (conn2));
   TIMED ("connection_free", mgconn_connection_free (conn));
   fprintf (stderr, "   longest call on the host thread while the server was down: %.0f us (%s)\n", worst, worst_call);
   CHECK (worst < 50 * 1000, "%s took %.1f ms on the host thread", worst_call, worst / 1000);
   bson_destroy (doc);
   mgconn_runtime_free (rt);
   recorder_reset (&r);
   server_cleanup (&s);
}

/* A server that hangs (SIGSTOP) holds an operation in flight; close(force) fails it at once and
 * closes without waiting for it. */
static void
test_close_force_fails_operations_in_flight_at_once (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   mgconn_op *find = NULL, *close_op = NULL;
   recorder r;
   int64_t t0;
   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "force", NULL), NULL);
   recorder_attach (&r, conn);
   CHECK (wait_event (rt, &r, "open", 0, 10000) >= 0, "no open");
   server_pause (&s);
   mgconn_collection *c = coll_of (conn, "c");
   CHECK (mgconn_collection_find (&find, c, NULL, 0, NULL, 0, NULL, NULL) == 0, "find");
   mgconn_collection_free (c);
   CHECK (mgconn_op_wait (find, 300) == MGCONN_OP_PENDING, "the find finished although the server hangs");
   t0 = now_ms ();
   CHECK (mgconn_connection_close (&close_op, conn, 1, NULL, NULL) == 0, "close(force)");
   CHECK (mgconn_op_wait (find, 2000) == MGCONN_OP_FAILED, "the in-flight find did not fail");
   CHECK (mgconn_op_error (find)->category == MGCONN_ERR_CONNECTION_CLOSED, "category %s: %s",
          mgconn_error_category_name (mgconn_op_error (find)->category), mgconn_op_error (find)->message);
   CHECK (mgconn_op_wait (close_op, 2000) == MGCONN_OP_SUCCEEDED, "close(force) waited for the hung server");
   CHECK (now_ms () - t0 < 1000, "close(force) took %lld ms", (long long) (now_ms () - t0));
   mgconn_runtime_dispatch (rt, 0);
   CHECK (strcmp (recorder_sequence (&r), "connecting,connected,open,disconnecting,disconnected,close") == 0,
          "events were %s", recorder_sequence (&r));
   server_resume (&s); /* lets the stuck worker return so the pool can be destroyed */
   mgconn_op_free (find);
   mgconn_op_free (close_op);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   recorder_reset (&r);
   server_cleanup (&s);
}

/* A game must be able to quit while the server hangs: runtime_free gives up on stuck workers. */
static void
test_runtime_free_returns_although_a_worker_is_stuck_on_a_hung_server (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   mgconn_op *find = NULL;
   recorder r;
   int64_t t0;
   int threads;
   server_start (&s);
   CHECK (mgconn_thread_count () == 0, "threads of an earlier runtime are running");
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "hung", NULL), NULL);
   recorder_attach (&r, conn);
   CHECK (wait_event (rt, &r, "open", 0, 10000) >= 0, "no open");
   server_pause (&s);
   mgconn_collection *c = coll_of (conn, "c");
   CHECK (mgconn_collection_find (&find, c, NULL, 0, NULL, 0, NULL, NULL) == 0, "find");
   mgconn_collection_free (c);
   CHECK (mgconn_op_wait (find, 300) == MGCONN_OP_PENDING, "the find finished although the server hangs");
   mgconn_op_free (find);
   mgconn_connection_free (conn);
   t0 = now_ms ();
   mgconn_runtime_free (rt);
   fprintf (stderr, "   runtime_free returned after %lld ms\n", (long long) (now_ms () - t0));
   CHECK (now_ms () - t0 < 10000, "runtime_free took %lld ms", (long long) (now_ms () - t0));
   threads = mgconn_thread_count ();
   CHECK (threads >= 1, "no mgconn thread was left running, yet runtime_free said it left one behind");
   fprintf (stderr, "   %d mgconn thread(s) left running\n", threads);
   recorder_reset (&r);
   /* The worker left behind ends as soon as the server goes away: no thread lives on forever. Waiting
    * for it also keeps the process from exiting while that thread is still inside the driver. */
   server_cleanup (&s);
   t0 = now_ms ();
   threads = wait_mgconn_threads_at_most (0, 20000);
   fprintf (stderr, "   the last one ended %lld ms later\n", (long long) (now_ms () - t0));
   CHECK (threads == 0, "%d mgconn thread(s) still running 20 s after the hung server went away", threads);
}

/* mgconn's threads are named, so a host's debugger or `top -H` tells them apart, and its workers are
 * SCHED_BATCH, so that waking one never preempts the host thread. */
static void
test_threads_are_named_and_workers_never_preempt_the_host (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   recorder r;
   thread_census c;
   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "names", NULL), NULL);
   recorder_attach (&r, conn);
   CHECK (wait_event (rt, &r, "open", 0, 10000) >= 0, "no open");
   /* Workers start in the background (the runtime's spawner) and name themselves once running: a
    * slow start (ASan) can still be on its way at "open". */
   int64_t deadline = now_ms () + 10000;
   c = census_threads ();
   while (c.workers < 8 && now_ms () < deadline) {
      struct timespec pause = {0, 10 * 1000 * 1000}; /* polls a condition, with a deadline */
      nanosleep (&pause, NULL);
      c = census_threads ();
   }
   CHECK (c.workers >= 8, "%d threads named mgconn-worker (8 workers and the driver's monitor)", c.workers);
   CHECK (c.workers_batch == c.workers, "%d of %d mgconn-worker threads run SCHED_BATCH", c.workers_batch, c.workers);
   CHECK (c.timers == 1, "%d threads named mgconn-timer", c.timers);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   recorder_reset (&r);
   server_cleanup (&s);
}

/* A host without callbacks (libffi, ctypes) polls: the kept events arrive in order, with their
 * errors, and a ring that is too small keeps the newest. */
static void
test_events_can_be_polled_instead_of_listened_to (void)
{
   mgconn_runtime *rt = runtime_new ();
   char uri[128];
   mgconn_connection *conn, *small;
   mgconn_error err;
   int32_t seen[8], small_seen[8];
   recorder r;
   int n = 0, n_small = 0;
   int64_t deadline = now_ms () + 5000;
   snprintf (uri, sizeof uri, "mongodb://127.0.0.1:%d/x", closed_port ());
   conn = conn_new (rt, uri, "{\"serverSelectionTimeoutMS\": 300}");
   small = conn_new (rt, uri, "{\"serverSelectionTimeoutMS\": 300}");
   CHECK (mgconn_connection_queue_events (conn, -1) == -MGCONN_ERR_INVALID_ARGUMENT, "negative capacity accepted");
   CHECK (mgconn_connection_queue_events (conn, 16) == 0, "%s", mgconn_last_error ()->message);
   CHECK (mgconn_connection_queue_events (small, 2) == 0, "%s", mgconn_last_error ()->message);
   recorder_attach (&r, small); /* both ways at once: the listener tells when the last event came */
   mgconn_error_init (&err);
   while (n < 3 && now_ms () < deadline) {
      int32_t type;
      mgconn_runtime_dispatch (rt, 0);
      while (n < 8 && (type = mgconn_connection_next_event (conn, &err)) != 0) {
         seen[n++] = type;
         if (type == MGCONN_EVENT_ERROR) {
            CHECK (err.category == MGCONN_ERR_SERVER_SELECTION, "the error event's error is %s: %s",
                   mgconn_error_category_name (err.category), err.message);
         } else {
            CHECK (err.category == 0, "event %d carries an error: %s", type, err.message);
         }
      }
      usleep (2000);
   }
   CHECK (n == 3 && seen[0] == MGCONN_EVENT_CONNECTING && seen[1] == MGCONN_EVENT_DISCONNECTED &&
             seen[2] == MGCONN_EVENT_ERROR,
          "polled %d events, first %s", n, n ? mgconn_event_type_name (seen[0]) : "none");
   CHECK (wait_event (rt, &r, "error", 0, 5000) >= 0, "second connection: no error event; saw %s",
          recorder_sequence (&r));
   while (n_small < 8 && (small_seen[n_small] = mgconn_connection_next_event (small, NULL)) != 0) {
      n_small++;
   }
   CHECK (n_small == 2 && small_seen[0] == MGCONN_EVENT_DISCONNECTED && small_seen[1] == MGCONN_EVENT_ERROR,
          "a ring of 2 kept %d events", n_small);
   CHECK (mgconn_connection_next_event (conn, NULL) == 0, "an event twice");
   mgconn_error_cleanup (&err);
   recorder_reset (&r);
   mgconn_connection_free (small);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
}

static void
count_completion (mgconn_op *op, void *userdata)
{
   (void) op;
   (*(int *) userdata)++;
}

/* With nothing left to run, the fd reads not ready after a dispatch, within `ms` (a wake-up written
 * just after the dispatch that ran its completion is read back by the next one). */
static bool
fd_settles_unreadable (mgconn_runtime *rt, int ms)
{
   struct pollfd p = {mgconn_runtime_fd (rt), POLLIN, 0};
   int64_t until = now_ms () + ms;
   for (;;) {
      mgconn_runtime_dispatch (rt, 0);
      p.revents = 0;
      if (poll (&p, 1, 0) == 0) {
         return true;
      }
      if (now_ms () >= until) {
         return false;
      }
      poll (NULL, 0, 1);
   }
}

/* A host that sleeps on the fd with no timeout of its own, dispatching only when it reads ready (an
 * epoll game server), gets every completion: the fd is readable whenever something is due, also when
 * the host dispatches one at a time or between wake-ups (as op:wait() does), while workers deliver.
 * And it does not stay readable with nothing to run: a wake-up for nothing is the exception. */
static void
test_a_host_sleeping_on_the_fd_gets_every_completion_and_no_empty_wake_ups (void)
{
   enum { ROUNDS = 120, MAX_BATCH = 6 };
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   mgconn_collection *things;
   recorder r;
   bson_t *doc = BCON_NEW ("a", BCON_INT32 (1));
   struct pollfd p;
   int submitted = 0, completed = 0, wakes = 0, empty_wakes = 0;
   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "fd_host", NULL), NULL);
   recorder_attach (&r, conn);
   CHECK (wait_event (rt, &r, "open", 0, 10000) >= 0, "no open; saw %s", recorder_sequence (&r));
   things = coll_of (conn, "things");
   p.fd = mgconn_runtime_fd (rt);
   p.events = POLLIN;
   for (int round = 0; round < ROUNDS; round++) {
      int batch = round % 2 ? MAX_BATCH : 1;
      for (int i = 0; i < batch; i++) {
         mgconn_op *op = NULL;
         CHECK (mgconn_collection_insert_one (&op, things, bson_get_data (doc), doc->len, NULL, 0, count_completion,
                                              &completed) == 0, "insert refused");
         mgconn_op_free (op); /* the runtime keeps it until its callback has run */
         submitted++;
      }
      if (round % 3 == 0) {
         mgconn_runtime_dispatch (rt, 0); /* before the fd says so, as a blocking wait does */
      }
      if (round % 5 == 4) {
         /* A host that dispatches every turn of its loop without looking at the fd (a game's
          * frame): it often runs a completion whose wake-up is still being written. */
         while (completed < submitted) {
            mgconn_runtime_dispatch (rt, 0);
            sched_yield (); /* the rest of the frame (and valgrind's other threads a turn) */
         }
         CHECK (fd_settles_unreadable (rt, 2000), "the fd stays readable with nothing to dispatch (round %d)", round);
      }
      while (completed < submitted) {
         int ran;
         p.revents = 0;
         CHECK (poll (&p, 1, 10000) == 1, "the fd stayed unreadable for 10 s with %d of %d operations due or running "
                "(round %d)", submitted - completed, submitted, round);
         ran = mgconn_runtime_dispatch (rt, round % 4 == 1 ? 1 : 0);
         wakes++;
         empty_wakes += ran == 0;
      }
   }
   CHECK (empty_wakes * 20 <= wakes, "%d of %d wake-ups of the fd found nothing to dispatch", empty_wakes, wakes);
   CHECK (fd_settles_unreadable (rt, 2000), "the fd stays readable with nothing to dispatch");
   mgconn_collection_free (things);
   bson_destroy (doc);
   recorder_reset (&r);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   server_cleanup (&s);
}

static const test_case tests[] = {
   {"polled_events", test_events_can_be_polled_instead_of_listened_to},
   {"free_with_hung_server", test_runtime_free_returns_although_a_worker_is_stuck_on_a_hung_server},
   {"dying_connection", test_walks_of_the_runtime_leave_a_dying_connection_alone},
   {"thread_names", test_threads_are_named_and_workers_never_preempt_the_host},
   {"close_force", test_close_force_fails_operations_in_flight_at_once},
   {"open_order", test_open_emits_connecting_connected_open_in_order},
   {"initial_failure", test_initial_failure_on_closed_port_reports_server_selection_error},
   {"kill_restart", test_server_killed_and_restarted_emits_disconnected_then_reconnected},
   {"close_sequence", test_close_emits_disconnecting_disconnected_close_and_later_ops_fail},
   {"close_while_connecting", test_close_while_connecting_ends_the_attempt_at_once},
   {"when_open", test_when_open_answers_at_once_once_the_outcome_is_known},
   {"close_open_twice", test_close_then_open_without_waiting_twice_keeps_the_host_going},
   {"insert_find", test_insert_then_find_round_trip},
   {"posted_callbacks", test_posted_callbacks_wake_the_fd_and_run_in_order},
   {"nested_dispatch", test_a_dispatch_inside_a_callback_runs_what_is_due_next},
   {"fd_host", test_a_host_sleeping_on_the_fd_gets_every_completion_and_no_empty_wake_ups},
   {"connect_twice", test_connecting_twice_same_uri_is_a_no_op_other_uri_is_refused},
   {"host_never_blocks", test_no_call_waits_for_the_network_while_the_server_is_down},
   {NULL, NULL},
};

int
main (int argc, char **argv)
{
   return run_tests (argc, argv, tests);
}
