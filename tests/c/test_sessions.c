/*
 * test_sessions.c: sessions and transactions through the C API against FerretDB, which has
 * sessions and no transactions (scripted replica-set replies for transactions that succeed are in
 * tests/python/test_transactions.py). Run under the sanitizers and valgrind with the rest.
 */
#include "harness.h"

#include <string.h>

#define D(j) bson_get_data (j), (j)->len

static bson_t *
in_session (mgconn_session *s, const char *extra_json)
{
   bson_t *o = json (extra_json ? extra_json : "{}");
   BSON_APPEND_INT64 (o, "session", mgconn_session_id (s));
   return o;
}

/* A session's operations run, in order, and its client goes back to the pool when it ends: with
 * maxPoolSize 1 an operation outside it runs only once it has. */
static void
test_operations_in_a_session_run_and_give_the_client_back (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   mgconn_collection *c;
   mgconn_session *session = NULL;
   mgconn_op *ops[20], *outside = NULL, *op = NULL;
   bson_t *o, *doc = json ("{\"_id\": 1, \"n\": 0}"), *by1 = json ("{\"_id\": 1}"), *any = json ("{\"n\": {\"$gte\": 0}}");
   const char *r;
   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "sessions", "maxPoolSize=1"), NULL);
   c = coll_of (conn, "items");
   CHECK (mgconn_connection_start_session (&session, conn, NULL, 0) == 0, "start_session: %s",
          mgconn_last_error ()->message);
   o = in_session (session, NULL);
   CHECK (mgconn_collection_insert_one (&ops[0], c, D (doc), D (o), NULL, NULL) == 0, "insert in the session: %s",
          mgconn_last_error ()->message);
   for (int i = 1; i < 20; i++) { /* by a filter that pins no _id: only the session orders them */
      char text[96];
      bson_t *set;
      snprintf (text, sizeof text, "{\"$inc\": {\"n\": 1}, \"$set\": {\"last\": %d}}", i);
      set = json (text);
      CHECK (mgconn_collection_update_many (&ops[i], c, D (any), D (set), D (o), NULL, NULL) == 0, "update %d", i);
      bson_destroy (set);
   }
   CHECK (mgconn_collection_find_one (&op, c, D (by1), D (o), NULL, NULL) == 0, "find_one in the session");
   for (int i = 0; i < 20; i++) {
      expect_ok (ops[i], "an op of the session");
      mgconn_op_free (ops[i]);
   }
   r = expect_ok (op, "find_one in the session");
   CHECK (strstr (r, "\"n\" : 19") && strstr (r, "\"last\" : 19"), "the session's find_one did not see its 19 updates in order: %s", r);
   mgconn_op_free (op);

   /* The session holds the pool's one client: an op outside it waits until the session ends. */
   CHECK (mgconn_collection_count_documents (&outside, c, NULL, 0, NULL, 0, NULL, NULL) == 0, "count outside");
   pump_for (rt, 300);
   CHECK (mgconn_op_status (outside) == MGCONN_OP_PENDING, "an op ran on a client the session holds");
   mgconn_session_free (session);
   r = expect_ok (outside, "count outside, after the session ended");
   CHECK (strstr (r, "\"count\" : 1"), "count: %s", r);
   mgconn_op_free (outside);

   /* An ended session is no longer found. */
   CHECK (mgconn_collection_find_one (&op, c, D (by1), D (o), NULL, NULL) == -MGCONN_ERR_INVALID_ARGUMENT &&
             strstr (mgconn_last_error ()->message, "no session"),
          "an op named an ended session: %s", mgconn_last_error ()->message);

   for (bson_t **b = (bson_t *[]){o, doc, by1, any, NULL}; *b; b++) {
      bson_destroy (*b);
   }
   mgconn_collection_free (c);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   server_cleanup (&s);
}

/* FerretDB has no transactions: the first operation of one fails as NotSupported, naming the
 * limitation, nothing is written, and the session goes on outside a transaction. */
static void
test_a_server_without_transactions_says_so (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   mgconn_collection *c;
   mgconn_session *session = NULL;
   mgconn_op *op = NULL;
   bson_t *o, *doc = json ("{\"_id\": 2}"), *empty = json ("{}");
   const char *r;
   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "sessions", NULL), NULL);
   c = coll_of (conn, "txn");
   CHECK (mgconn_connection_start_session (&session, conn, NULL, 0) == 0, "start_session");
   o = in_session (session, NULL);
   CHECK (mgconn_session_start_transaction (session, NULL, 0) == 0, "start_transaction: %s",
          mgconn_last_error ()->message);
   CHECK (mgconn_session_in_transaction (session), "not in a transaction");
   CHECK (mgconn_session_start_transaction (session, NULL, 0) == -MGCONN_ERR_INVALID_ARGUMENT &&
             strstr (mgconn_last_error ()->message, "already in progress"),
          "a second transaction: %s", mgconn_last_error ()->message);
   mgconn_collection_insert_one (&op, c, D (doc), D (o), NULL, NULL);
   r = expect_failure (op, MGCONN_ERR_NOT_SUPPORTED, "insert in a transaction on FerretDB");
   CHECK (strstr (r, "does not support transactions") && strstr (r, "txn.insert_one()"), "the message: %s", r);
   mgconn_op_free (op);
   mgconn_session_abort_transaction (&op, session, NULL, NULL);
   mgconn_op_wait (op, 10000); /* what the server says to an abort it cannot do does not matter here */
   mgconn_op_free (op);
   CHECK (!mgconn_session_in_transaction (session), "still in a transaction after abort");
   CHECK (mgconn_session_abort_transaction (&op, session, NULL, NULL) == -MGCONN_ERR_INVALID_ARGUMENT,
          "an abort without a transaction");

   r = expect_ok ((mgconn_collection_count_documents (&op, c, D (empty), D (o), NULL, NULL), op), "count in the session");
   CHECK (strstr (r, "\"count\" : 0"), "the refused insert was written: %s", r);
   mgconn_op_free (op);
   expect_ok ((mgconn_collection_insert_one (&op, c, D (doc), D (o), NULL, NULL), op), "insert after the transaction");
   mgconn_op_free (op);

   /* Options checked at the call. */
   {
      bson_t *bad = json ("{\"maxCommitTimeMS\": \"soon\"}");
      CHECK (mgconn_session_start_transaction (session, D (bad)) == -MGCONN_ERR_OPTION &&
                strstr (mgconn_last_error ()->message, "maxCommitTimeMS"),
             "a bad transaction option: %s", mgconn_last_error ()->message);
      bson_destroy (bad);
      bad = json ("{\"causalConsistency\": 1}");
      mgconn_session *other = NULL;
      CHECK (mgconn_connection_start_session (&other, conn, D (bad)) == -MGCONN_ERR_OPTION && !other,
             "a bad session option: %s", mgconn_last_error ()->message);
      bson_destroy (bad);
   }
   /* An operation that does not run in sessions refuses one. */
   {
      bson_t *keys = json ("[{\"key\": {\"a\": 1}}]");
      CHECK (mgconn_collection_create_indexes (&op, c, D (keys), D (o), NULL, NULL) == -MGCONN_ERR_INVALID_ARGUMENT &&
                strstr (mgconn_last_error ()->message, "does not run in a session"),
             "create_indexes in a session: %s", mgconn_last_error ()->message);
      bson_destroy (keys);
   }
   mgconn_session_free (session);
   bson_destroy (o);
   bson_destroy (doc);
   bson_destroy (empty);
   mgconn_collection_free (c);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   server_cleanup (&s);
}

/* A session still holding its client when its connection closes: the close gives it back, and
 * freeing the session afterwards is safe. */
static void
test_close_with_a_live_session (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   mgconn_collection *c;
   mgconn_session *session = NULL;
   mgconn_op *op = NULL;
   bson_t *o, *doc = json ("{\"k\": 1}");
   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "sessions", NULL), NULL);
   c = coll_of (conn, "close");
   mgconn_connection_start_session (&session, conn, NULL, 0);
   o = in_session (session, NULL);
   expect_ok ((mgconn_collection_insert_one (&op, c, D (doc), D (o), NULL, NULL), op), "insert in the session");
   mgconn_op_free (op);
   expect_ok ((mgconn_connection_close (&op, conn, 0, NULL, NULL), op), "close");
   mgconn_op_free (op);
   mgconn_session_free (session);
   bson_destroy (o);
   bson_destroy (doc);
   mgconn_collection_free (c);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   server_cleanup (&s);
}

static const test_case tests[] = {
   {"in_session", test_operations_in_a_session_run_and_give_the_client_back},
   {"no_transactions", test_a_server_without_transactions_says_so},
   {"close_with_session", test_close_with_a_live_session},
   {NULL, NULL},
};

int
main (int argc, char **argv)
{
   return run_tests (argc, argv, tests);
}
