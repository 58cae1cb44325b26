/*
 * test_more_operations.c: bulk_write, find-and-modify, distinct, index and namespace listings, a
 * model's sync_indexes and command monitoring through the C API against FerretDB (run under the
 * sanitizers and valgrind with the rest).
 */
#include "harness.h"

#include <string.h>

#define RUN(what, call)                                                                 \
   ({                                                                                   \
      mgconn_op *op_ = NULL;                                                            \
      CHECK ((call) == 0, "%s was refused: %s", what, mgconn_last_error ()->message); \
      const char *r_ = expect_ok (op_, what);                                           \
      mgconn_op_free (op_);                                                             \
      r_;                                                                               \
   })
#define D(j) bson_get_data (j), (j)->len

static void
test_every_new_operation_gives_its_documented_reply (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   mgconn_collection *c;
   recorder rec;
   bson_t *requests = json ("[{\"insertOne\": {\"document\": {\"_id\": 1, \"n\": 1}}}, {\"insertOne\": {\"document\": {\"n\": 2}}},"
                            " {\"replaceOne\": {\"filter\": {\"_id\": 9}, \"replacement\": {\"n\": 9}, \"upsert\": true}},"
                            " {\"updateOne\": {\"filter\": {\"_id\": 1}, \"update\": {\"$inc\": {\"n\": 10}}}},"
                            " {\"deleteOne\": {\"filter\": {\"n\": 2}}}]");
   bson_t *bad = json ("[{\"upsertOne\": {}}]");
   bson_t *by1 = json ("{\"_id\": 1}");
   bson_t *inc = json ("{\"$inc\": {\"n\": 1}}");
   bson_t *after = json ("{\"new\": true}");
   bson_t *key_n = json ("{\"key\": \"n\"}");
   bson_t *indexes = json ("[{\"key\": {\"a\": 1}}]");
   bson_t *drop_a = json ("{\"index\": \"a_1\"}");
   bson_t *empty = json ("{}");
   const char *r;
   mgconn_op *op = NULL;
   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "more_ops", NULL), NULL);
   recorder_attach (&rec, conn);
   CHECK (wait_event (rt, &rec, "open", 0, 10000) >= 0, "no open");
   mgconn_connection_off (conn, NULL, NULL, &rec);
   c = coll_of (conn, "items");

   r = RUN ("bulk_write", mgconn_collection_bulk_write (&op_, c, D (requests), NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"insertedCount\" : 2") && strstr (r, "\"matchedCount\" : 1") &&
          strstr (r, "\"deletedCount\" : 1") && strstr (r, "\"upsertedIds\" : { \"2\" : 9 }"),
          "bulk_write: %s", r);
   CHECK (mgconn_collection_bulk_write (&op, c, D (bad), NULL, 0, NULL, NULL) != 0 &&
          strstr (mgconn_last_error ()->message, "request 0 is not one of insertOne"),
          "a bad request: %s", mgconn_last_error ()->message);
   r = RUN ("find_one_and_update", mgconn_collection_find_one_and_update (&op_, c, D (by1), D (inc), D (after), NULL, NULL));
   CHECK (strstr (r, "\"n\" : 12"), "find_one_and_update: %s", r);
   r = RUN ("find_one_and_replace", mgconn_collection_find_one_and_replace (&op_, c, D (by1), D (empty), NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"n\" : 12"), "find_one_and_replace (before): %s", r);
   r = RUN ("find_one_and_delete", mgconn_collection_find_one_and_delete (&op_, c, D (by1), NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"document\" : { \"_id\" : 1 }"), "find_one_and_delete: %s", r);
   r = RUN ("find_one_and_delete none", mgconn_collection_find_one_and_delete (&op_, c, D (by1), NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"document\" : null"), "nothing to delete: %s", r);
   r = RUN ("distinct", mgconn_collection_distinct (&op_, c, NULL, 0, D (key_n), NULL, NULL));
   CHECK (strstr (r, "\"values\" : [ 9 ]"), "distinct: %s", r);
   CHECK (mgconn_collection_distinct (&op, c, NULL, 0, NULL, 0, NULL, NULL) != 0, "distinct without a key");
   RUN ("create_indexes", mgconn_collection_create_indexes (&op_, c, D (indexes), NULL, 0, NULL, NULL));
   r = RUN ("list_indexes", mgconn_collection_list_indexes (&op_, c, NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"a_1\"") && strstr (r, "\"_id_\""), "list_indexes: %s", r);
   RUN ("drop_indexes a_1", mgconn_collection_drop_indexes (&op_, c, D (drop_a), NULL, NULL));
   r = RUN ("list_indexes after", mgconn_collection_list_indexes (&op_, c, NULL, 0, NULL, NULL));
   CHECK (!strstr (r, "\"a_1\""), "a_1 still there: %s", r);
   r = RUN ("list_collections", mgconn_connection_list_collections (&op_, conn, NULL, 0, NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"name\" : \"items\""), "list_collections: %s", r);
   r = RUN ("list_databases", mgconn_connection_list_databases (&op_, conn, NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"more_ops\""), "list_databases: %s", r);

   for (bson_t **b = (bson_t *[]){requests, bad, by1, inc, after, key_n, indexes, drop_a, empty, NULL}; *b; b++) {
      bson_destroy (*b);
   }
   mgconn_collection_free (c);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   server_cleanup (&s);
}

/* The core's table of operations, as a host without its own uses it: every name listed resolves in
 * both spellings, and a call by name reaches that operation. */
static void
test_operations_by_name_reach_their_operation (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   mgconn_collection *c;
   bson_t *doc = json ("{\"_id\": 7, \"n\": 1}");
   bson_t *by7 = json ("{\"_id\": 7}");
   bson_t *inc = json ("{\"$inc\": {\"n\": 41}}");
   bson_t *docs = json ("[{\"n\": 5}]");
   const char *r;
   mgconn_op *op = NULL;
   size_t listed = 0;
   for (const char *snake; (snake = mgconn_operation_name (listed, 0)); listed++) {
      const char *camel = mgconn_operation_name (listed, 1);
      CHECK (camel && mgconn_operation_flags (snake) >= 0 && mgconn_operation_flags (snake) == mgconn_operation_flags (camel),
             "%s and %s differ", snake, camel);
      CHECK (!(mgconn_operation_flags (snake) & MGCONN_OPERATION_TAKES_SECOND) || mgconn_operation_document (snake, 2),
             "%s takes a second document without a name for it", snake);
   }
   CHECK (listed >= 22, "the table lists %zu operations", listed);
   CHECK ((mgconn_operation_flags ("watch") & MGCONN_OPERATION_RETURNS_CURSOR) &&
             !(mgconn_operation_flags ("watch") & MGCONN_OPERATION_FIRST_REQUIRED),
          "watch: a cursor, its pipeline optional");
   CHECK (mgconn_operation_flags ("find") & MGCONN_OPERATION_RETURNS_CURSOR, "find returns no cursor");
   CHECK (!(mgconn_operation_flags ("findOne") & MGCONN_OPERATION_RETURNS_CURSOR), "findOne returns a cursor");
   CHECK (strcmp (mgconn_operation_document ("replace_one", 2), "replacement") == 0, "replace_one's second");
   CHECK (mgconn_operation_flags ("upsertOne") == -MGCONN_ERR_INVALID_ARGUMENT &&
          strstr (mgconn_last_error ()->message, "no collection operation named \"upsertOne\""),
          "an unknown name: %s", mgconn_last_error ()->message);

   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "by_name", NULL), NULL);
   c = coll_of (conn, "items");
   RUN ("insertOne", mgconn_collection_call (&op_, c, "insertOne", D (doc), NULL, 0, NULL, 0, NULL, NULL));
   RUN ("insert_many", mgconn_collection_call (&op_, c, "insert_many", D (docs), NULL, 0, NULL, 0, NULL, NULL));
   RUN ("updateOne", mgconn_collection_call (&op_, c, "updateOne", D (by7), D (inc), NULL, 0, NULL, NULL));
   r = RUN ("find_one", mgconn_collection_call (&op_, c, "find_one", D (by7), NULL, 0, NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"n\" : 42"), "find_one after updateOne: %s", r);
   r = RUN ("countDocuments", mgconn_collection_call (&op_, c, "countDocuments", NULL, 0, NULL, 0, NULL, 0, NULL, NULL));
   CHECK (strstr (r, "2"), "countDocuments: %s", r);
   CHECK (mgconn_collection_call (&op, c, "update_one", D (by7), NULL, 0, NULL, 0, NULL, NULL) != 0 &&
          strstr (mgconn_last_error ()->message, "update"),
          "update_one without its update: %s", mgconn_last_error ()->message);
   CHECK (mgconn_collection_call (&op, c, "upsertOne", D (by7), NULL, 0, NULL, 0, NULL, NULL) ==
             -MGCONN_ERR_INVALID_ARGUMENT && op == NULL,
          "an unknown name was started");
   RUN ("drop", mgconn_collection_call (&op_, c, "drop", NULL, 0, NULL, 0, NULL, 0, NULL, NULL));
   r = RUN ("count after drop", mgconn_collection_call (&op_, c, "count_documents", NULL, 0, NULL, 0, NULL, 0, NULL, NULL));
   CHECK (strstr (r, "0"), "countDocuments after drop: %s", r);

   for (bson_t **b = (bson_t *[]){doc, by7, inc, docs, NULL}; *b; b++) {
      bson_destroy (*b);
   }
   mgconn_collection_free (c);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   server_cleanup (&s);
}

/* FerretDB has no change streams: a watch of a collection or of the database fails as NotSupported,
 * naming the limitation, and the connection goes on. */
static void
test_watch_on_a_server_without_change_streams (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   mgconn_collection *c;
   mgconn_op *op = NULL;
   const char *r;
   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "streams", NULL), NULL);
   c = coll_of (conn, "items");
   CHECK (mgconn_collection_call (&op, c, "watch", NULL, 0, NULL, 0, NULL, 0, NULL, NULL) == 0, "watch refused");
   r = expect_failure (op, MGCONN_ERR_NOT_SUPPORTED, "a collection's watch");
   CHECK (strstr (r, "does not support change streams") && strstr (r, "items.watch()"), "the message: %s", r);
   mgconn_op_free (op);
   CHECK (mgconn_connection_watch (&op, conn, NULL, 0, NULL, 0, NULL, NULL) == 0, "the database's watch refused");
   expect_failure (op, MGCONN_ERR_NOT_SUPPORTED, "the database's watch");
   mgconn_op_free (op);
   r = RUN ("count after", mgconn_collection_count_documents (&op_, c, NULL, 0, NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"count\" : 0"), "count: %s", r);
   mgconn_collection_free (c);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   server_cleanup (&s);
}

typedef struct {
   int started, succeeded, failed;
   char last[64];
} command_count;

static void
count_command (mgconn_connection *conn, const uint8_t *event, size_t len, void *userdata)
{
   command_count *n = userdata;
   bson_t doc;
   bson_iter_t it;
   (void) conn;
   CHECK (bson_init_static (&doc, event, len) && bson_iter_init_find (&it, &doc, "type"), "an event without a type");
   if (strcmp (bson_iter_utf8 (&it, NULL), "started") == 0) {
      n->started++;
   } else if (strcmp (bson_iter_utf8 (&it, NULL), "succeeded") == 0) {
      n->succeeded++;
   } else {
      n->failed++;
   }
   if (bson_iter_init_find (&it, &doc, "commandName")) {
      bson_strncpy (n->last, bson_iter_utf8 (&it, NULL), sizeof n->last);
   }
}

static void
test_command_events_reach_the_host_and_stop_at_free (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   command_count n = {0};
   bson_t *bogus = json ("{\"noSuchCommand\": 1}");
   mgconn_op *op = NULL;
   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "monitored", NULL), NULL);
   CHECK (mgconn_connection_on_command (conn, count_command, &n) == 0, "on_command refused");
   CHECK (ping (conn, 10000, NULL) == MGCONN_OP_SUCCEEDED, "no ping");
   CHECK (n.started >= 1 && n.succeeded >= 1 && strcmp (n.last, "ping") == 0, "ping: %d started, %d succeeded, %s",
          n.started, n.succeeded, n.last);
   mgconn_run_command (&op, conn, NULL, D (bogus), NULL, NULL);
   expect_failure (op, MGCONN_ERR_OPERATION, "noSuchCommand");
   mgconn_op_free (op);
   CHECK (n.failed == 1 && strcmp (n.last, "noSuchCommand") == 0, "failed: %d (%s)", n.failed, n.last);
   mgconn_run_command (&op, conn, NULL, D (bogus), NULL, NULL); /* its events are queued, then dropped */
   mgconn_connection_free (conn);
   {
      int before = n.started + n.succeeded + n.failed;
      pump_for (rt, 200);
      CHECK (n.started + n.succeeded + n.failed == before, "an event after the connection was freed");
   }
   mgconn_op_free (op);
   bson_destroy (bogus);
   mgconn_runtime_free (rt);
   server_cleanup (&s);
}

static const test_case tests[] = {
   {"replies", test_every_new_operation_gives_its_documented_reply},
   {"command_events", test_command_events_reach_the_host_and_stop_at_free},
   {"by_name", test_operations_by_name_reach_their_operation},
   {"watch_not_supported", test_watch_on_a_server_without_change_streams},
   {NULL, NULL},
};

int
main (int argc, char **argv)
{
   return run_tests (argc, argv, tests);
}
