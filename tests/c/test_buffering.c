/*
 * test_buffering.c: operations issued while the connection is not there wait for it — before the
 * first open and during an outage — each with its own deadline, and fail clearly when it passes.
 */
#include "harness.h"

#include <string.h>

static mgconn_op *
insert (mgconn_collection *c, const char *doc_json)
{
   bson_t *doc = json (doc_json);
   mgconn_op *op = NULL;
   CHECK (mgconn_collection_insert_one (&op, c, bson_get_data (doc), doc->len, NULL, 0, NULL, NULL) == 0, "insert");
   bson_destroy (doc);
   return op;
}

static void
test_buffered_insert_runs_after_server_starts (void)
{
   test_server s;
   mgconn_runtime *rt = runtime_new ();
   mgconn_connection *conn;
   mgconn_collection *c;
   mgconn_op *ins, *find;
   recorder r;
   int i_conn;
   int64_t done_at;
   server_prepare (&s); /* a port nothing listens on yet */
   conn = conn_new (rt, server_uri (&s, "buffering", NULL), "{\"heartbeatFrequencyMS\": 500}");
   recorder_attach (&r, conn);
   c = coll_of (conn, "players");
   ins = insert (c, "{\"_id\": 1, \"name\": \"ada\"}");
   pump_for (rt, 1000);
   CHECK (mgconn_op_status (ins) == MGCONN_OP_PENDING, "the insert did not wait for the server");
   server_restart (&s); /* the server starts 1 s later */
   expect_ok (ins, "buffered insert");
   done_at = now_ms ();
   i_conn = recorder_find (&r, "connected", 0);
   CHECK (i_conn >= 0, "no connected event");
   fprintf (stderr, "   buffered insert finished %lld ms after `connected` was dispatched\n",
            (long long) (done_at - r.at_ms[i_conn]));
   recorder_reset (&r);
   CHECK (mgconn_collection_find (&find, c, NULL, 0, NULL, 0, NULL, NULL) == 0, "find");
   CHECK (strstr (expect_ok (find, "find"), "\"name\" : \"ada\""), "the buffered insert is not in the collection");
   mgconn_op_free (ins);
   mgconn_op_free (find);
   mgconn_collection_free (c);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   server_cleanup (&s);
}

static void
test_buffer_timeout_fails_with_the_exact_message_at_its_deadline (void)
{
   char uri[128];
   mgconn_runtime *rt = runtime_new ();
   mgconn_connection *conn;
   mgconn_collection *c;
   mgconn_op *op = NULL;
   bson_t *filter = json ("{\"name\": \"x\"}");
   int64_t t0, took;
   snprintf (uri, sizeof uri, "mongodb://127.0.0.1:%d/x", closed_port ());
   conn = conn_new (rt, uri, "{\"bufferTimeoutMS\": 300}");
   c = coll_of (conn, "users");
   t0 = now_ms ();
   CHECK (mgconn_collection_find_one (&op, c, bson_get_data (filter), filter->len, NULL, 0, NULL, NULL) == 0, "find_one");
   CHECK (strcmp (expect_failure (op, MGCONN_ERR_BUFFER_TIMEOUT, "find_one"),
                  "Operation `users.find_one()` buffering timed out after 300ms") == 0,
          "message: %s", mgconn_op_error (op)->message);
   took = now_ms () - t0;
   fprintf (stderr, "   buffer timeout reported after %lld ms (bufferTimeoutMS=300)\n", (long long) took);
   CHECK (took >= 290 && took < 800, "timed out after %lld ms", (long long) took);
   mgconn_op_free (op);
   mgconn_collection_free (c);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   bson_destroy (filter);

   /* Lua and Node spell the method in camelCase. */
   {
      bson_t *opts = json ("{\"methodCase\": \"camel\"}");
      mgconn_error e;
      mgconn_error_init (&e);
      CHECK (mgconn_runtime_new (&rt, bson_get_data (opts), opts->len, &e) == 0, "runtime: %s", e.message);
      bson_destroy (opts);
      conn = conn_new (rt, uri, "{\"bufferTimeoutMS\": 100}");
      c = coll_of (conn, "users");
      filter = json ("{}");
      mgconn_collection_find_one (&op, c, bson_get_data (filter), filter->len, NULL, 0, NULL, NULL);
      CHECK (strcmp (expect_failure (op, MGCONN_ERR_BUFFER_TIMEOUT, "findOne"),
                     "Operation `users.findOne()` buffering timed out after 100ms") == 0,
             "message: %s", mgconn_op_error (op)->message);
      mgconn_op_free (op);
      mgconn_collection_free (c);
      mgconn_connection_free (conn);
      mgconn_runtime_free (rt);
      bson_destroy (filter);
   }
}

static void
test_failed_initial_connect_fails_buffered_operations_at_once (void)
{
   char uri[128];
   mgconn_runtime *rt = runtime_new ();
   mgconn_connection *conn;
   mgconn_collection *c;
   mgconn_op *op;
   int64_t t0 = now_ms (), took;
   const char *msg;
   snprintf (uri, sizeof uri, "mongodb://127.0.0.1:%d/x", closed_port ());
   conn = conn_new (rt, uri, "{\"serverSelectionTimeoutMS\": 500, \"bufferTimeoutMS\": 10000}");
   c = coll_of (conn, "players");
   op = insert (c, "{\"a\": 1}");
   msg = expect_failure (op, MGCONN_ERR_SERVER_SELECTION, "buffered insert");
   took = now_ms () - t0;
   CHECK (strstr (msg, "players.insert_one()") && strstr (msg, "initial connection failed") &&
             strstr (msg, "No suitable servers"),
          "message: %s", msg);
   CHECK (took < 2000, "failed after %lld ms, not at the connect failure (500 ms)", (long long) took);
   {
      const uint8_t *data;
      size_t len;
      mgconn_error_reason (mgconn_op_error (op), &data, &len);
      CHECK (len > 20, "the operation's error has no reason from the connect error");
   }
   fprintf (stderr, "   buffered insert failed %lld ms after it was issued (connect failed at 500 ms)\n",
            (long long) took);
   mgconn_op_free (op);
   mgconn_collection_free (c);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
}

static void
test_buffer_commands_false_fails_at_once_with_the_exact_message (void)
{
   test_server s;
   mgconn_runtime *rt = runtime_new ();
   mgconn_connection *conn;
   mgconn_collection *c;
   mgconn_op *op;
   recorder r;
   server_prepare (&s);
   conn = conn_new (rt, server_uri (&s, "nobuffer", NULL),
                    "{\"bufferCommands\": false, \"heartbeatFrequencyMS\": 500}");
   recorder_attach (&r, conn);
   c = coll_of (conn, "users");
   op = insert (c, "{\"a\": 1}");
   CHECK (strcmp (expect_failure (op, MGCONN_ERR_NOT_CONNECTED, "insert"),
                  "Cannot call `users.insert_one()` before initial connection is complete if `bufferCommands = "
                  "false`. Make sure you `await mgconn.connect()` if you have `bufferCommands = false`.") == 0,
          "message: %s", mgconn_op_error (op)->message);
   mgconn_op_free (op);
   server_restart (&s);
   CHECK (wait_event (rt, &r, "open", 0, 10000) >= 0, "no open");
   op = insert (c, "{\"a\": 2}");
   expect_ok (op, "insert once connected");
   mgconn_op_free (op);
   server_kill (&s);
   CHECK (wait_event (rt, &r, "disconnected", 0, 5000) >= 0, "no disconnected");
   op = insert (c, "{\"a\": 3}");
   CHECK (strcmp (expect_failure (op, MGCONN_ERR_NOT_CONNECTED, "insert during outage"),
                  "Cannot call `users.insert_one()` while the connection is down if `bufferCommands = false`.") == 0,
          "message: %s", mgconn_op_error (op)->message);
   mgconn_op_free (op);
   mgconn_collection_free (c);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   recorder_reset (&r);
   server_cleanup (&s);
}

/* bufferTimeoutMS from the schema beats the connection's, which beats the runtime's; read again
 * for each operation. */
static void
test_buffer_settings_precedence_schema_connection_runtime (void)
{
   char uri[128];
   mgconn_runtime *rt = runtime_new ();
   mgconn_connection *plain, *with_opt;
   mgconn_collection *c1, *c2;
   mgconn_schema *schema;
   mgconn_model *model;
   mgconn_op *op;
   bson_t *set = json ("{\"bufferTimeoutMS\": 200}");
   bson_t *schema_opts = json ("{\"bufferTimeoutMS\": 150, \"autoCreate\": false}");
   snprintf (uri, sizeof uri, "mongodb://127.0.0.1:%d/x", closed_port ());
   CHECK (mgconn_runtime_set (rt, bson_get_data (set), set->len, NULL) == 0, "set");
   plain = conn_new (rt, uri, NULL);
   with_opt = conn_new (rt, uri, "{\"bufferTimeoutMS\": 400}");
   c1 = coll_of (plain, "a");
   c2 = coll_of (with_opt, "b");
   op = insert (c1, "{}");
   CHECK (strstr (expect_failure (op, MGCONN_ERR_BUFFER_TIMEOUT, "runtime setting"), "after 200ms"), "%s",
          mgconn_op_error (op)->message);
   mgconn_op_free (op);
   op = insert (c2, "{}");
   CHECK (strstr (expect_failure (op, MGCONN_ERR_BUFFER_TIMEOUT, "connection option"), "after 400ms"), "%s",
          mgconn_op_error (op)->message);
   mgconn_op_free (op);
   CHECK (mgconn_schema_new (&schema, NULL, 0, bson_get_data (schema_opts), schema_opts->len, NULL) == 0, "schema");
   CHECK (mgconn_connection_model (&model, with_opt, "Thing", schema, NULL, NULL) == 0, "model");
   op = insert (mgconn_model_collection (model), "{}");
   CHECK (strstr (expect_failure (op, MGCONN_ERR_BUFFER_TIMEOUT, "schema option"), "`things.insert_one()` buffering timed out after 150ms"),
          "%s", mgconn_op_error (op)->message);
   mgconn_op_free (op);
   /* Read again per operation: a new runtime value applies to the next op. */
   bson_destroy (set);
   set = json ("{\"bufferTimeoutMS\": 120}");
   mgconn_runtime_set (rt, bson_get_data (set), set->len, NULL);
   op = insert (c1, "{}");
   CHECK (strstr (expect_failure (op, MGCONN_ERR_BUFFER_TIMEOUT, "changed setting"), "after 120ms"), "%s",
          mgconn_op_error (op)->message);
   mgconn_op_free (op);
   mgconn_model_free (model);
   mgconn_schema_free (schema);
   mgconn_collection_free (c1);
   mgconn_collection_free (c2);
   mgconn_connection_free (plain);
   mgconn_connection_free (with_opt);
   mgconn_runtime_free (rt);
   bson_destroy (set);
   bson_destroy (schema_opts);
}

static void
test_close_fails_buffered_operations_with_connection_closed (void)
{
   char uri[128];
   mgconn_runtime *rt = runtime_new ();
   mgconn_connection *conn;
   mgconn_collection *c;
   mgconn_op *op, *close_op;
   snprintf (uri, sizeof uri, "mongodb://127.0.0.1:%d/x", closed_port ());
   conn = conn_new (rt, uri, "{\"serverSelectionTimeoutMS\": 5000}");
   c = coll_of (conn, "users");
   op = insert (c, "{}");
   pump_for (rt, 50);
   CHECK (mgconn_connection_close (&close_op, conn, 0, NULL, NULL) == 0, "close");
   expect_failure (op, MGCONN_ERR_CONNECTION_CLOSED, "buffered insert at close");
   expect_ok (close_op, "close while connecting");
   mgconn_op_free (op);
   mgconn_op_free (close_op);
   mgconn_collection_free (c);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
}

/* 1,000 inserts with unique ids while the server is killed and restarted: each one resolves, and
 * the collection holds every acknowledged insert once. */
static void
test_outage_mid_run_loses_no_acknowledged_insert (void)
{
   enum { N = 1000 };
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   mgconn_collection *c;
   mgconn_op *ops[N];
   recorder r;
   int acked = 0, network = 0, other = 0, found = 0, found_unacked = 0;
   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "outage", NULL), "{\"heartbeatFrequencyMS\": 500, \"bufferTimeoutMS\": 20000}");
   recorder_attach (&r, conn);
   CHECK (wait_event (rt, &r, "open", 0, 10000) >= 0, "no open");
   c = coll_of (conn, "writes");
   {
      /* The collection exists first, as with a model's autoCreate: FerretDB cannot restart after a
       * SIGKILL in the middle of creating a database's SQLite file. */
      mgconn_op *create;
      mgconn_connection_create_collection (&create, conn, "writes", NULL, 0, NULL, NULL);
      expect_ok (create, "create");
      mgconn_op_free (create);
   }
   for (int i = 0; i < N; i++) {
      char doc[64];
      snprintf (doc, sizeof doc, "{\"_id\": %d}", i);
      ops[i] = insert (c, doc);
      mgconn_runtime_dispatch (rt, 0);
      if (i == 300) {
         mgconn_op_wait (ops[100], 10000); /* inserts are flowing */
         server_kill (&s);
      }
      if (i > 300 && i < 700) {
         pump_for (rt, 2); /* the server stays down for about a second while inserts go on */
      }
      if (i == 700) {
         server_restart (&s);
      }
   }
   for (int i = 0; i < N; i++) {
      int32_t st = mgconn_op_wait (ops[i], 30000);
      CHECK (st != MGCONN_OP_PENDING, "insert %d never resolved", i);
      if (st == MGCONN_OP_SUCCEEDED) {
         acked++;
      } else if (mgconn_op_error (ops[i])->category == MGCONN_ERR_NETWORK) {
         network++;
      } else {
         other++;
         fprintf (stderr, "   insert %d: [%s] %s\n", i, mgconn_error_category_name (mgconn_op_error (ops[i])->category),
                  mgconn_op_error (ops[i])->message);
      }
   }
   {
      bson_t *opts = json ("{\"batchSize\": 2000}");
      mgconn_op *find;
      const uint8_t *data;
      size_t len;
      bson_t reply;
      bson_iter_t it, batch;
      CHECK (mgconn_collection_find (&find, c, NULL, 0, bson_get_data (opts), opts->len, NULL, NULL) == 0, "find");
      expect_ok (find, "find all");
      mgconn_op_reply (find, &data, &len);
      bson_init_static (&reply, data, len);
      bson_iter_init_find (&it, &reply, "batch");
      bson_iter_recurse (&it, &batch);
      while (bson_iter_next (&batch)) {
         bson_iter_t id;
         bson_iter_recurse (&batch, &id);
         bson_iter_find (&id, "_id");
         int k = bson_iter_int32 (&id);
         found++;
         if (mgconn_op_status (ops[k]) != MGCONN_OP_SUCCEEDED) {
            found_unacked++;
            CHECK (mgconn_op_error (ops[k])->category == MGCONN_ERR_NETWORK,
                   "insert %d failed as %s but is in the collection", k,
                   mgconn_error_category_name (mgconn_op_error (ops[k])->category));
         }
      }
      mgconn_op_free (find);
      bson_destroy (opts);
   }
   fprintf (stderr,
            "   %d inserts: %d acknowledged, %d failed with a network error (in flight at the kill), %d other; "
            "found %d (%d of them unacknowledged network failures)\n",
            N, acked, network, other, found, found_unacked);
   CHECK (other == 0, "%d inserts failed with something else than a network error", other);
   CHECK (found - found_unacked == acked, "acknowledged %d but found %d of them", acked, found - found_unacked);
   /* Inserts in flight at the kill are sent again after the restart: every one is acknowledged
    * and stored once. */
   CHECK (acked == N && network == 0 && found == N, "%d of %d acknowledged, %d network failures, %d stored", acked, N,
          network, found);
   for (int i = 0; i < N; i++) {
      mgconn_op_free (ops[i]);
   }
   mgconn_collection_free (c);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   recorder_reset (&r);
   server_cleanup (&s);
}

static const test_case tests[] = {
   {"after_server_starts", test_buffered_insert_runs_after_server_starts},
   {"timeout_message", test_buffer_timeout_fails_with_the_exact_message_at_its_deadline},
   {"failed_connect", test_failed_initial_connect_fails_buffered_operations_at_once},
   {"buffer_commands_false", test_buffer_commands_false_fails_at_once_with_the_exact_message},
   {"precedence", test_buffer_settings_precedence_schema_connection_runtime},
   {"close_fails_buffered", test_close_fails_buffered_operations_with_connection_closed},
   {"outage_mid_run", test_outage_mid_run_loses_no_acknowledged_insert},
   {NULL, NULL},
};

int
main (int argc, char **argv)
{
   return run_tests (argc, argv, tests);
}
