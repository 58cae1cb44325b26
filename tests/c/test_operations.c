/*
 * test_operations.c: every collection operation against FerretDB, BSON in and BSON out; cursors
 * that stream; server errors that keep their code; oversized documents refused before sending;
 * the debug line; and maxPoolSize as a cap on operations in flight.
 */
#include "harness.h"

#include <string.h>
#include <sys/resource.h>

typedef struct {
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   mgconn_collection *c;
} fixture;

static void
setup (fixture *f, const char *db, const char *opts_json)
{
   recorder r;
   server_start (&f->s);
   f->rt = runtime_new ();
   f->conn = conn_new (f->rt, server_uri (&f->s, db, NULL), opts_json);
   recorder_attach (&r, f->conn);
   CHECK (wait_event (f->rt, &r, "open", 0, 10000) >= 0, "no open");
   mgconn_connection_off (f->conn, NULL, NULL, &r); /* the recorder goes out of scope */
   f->c = coll_of (f->conn, "items");
}

static void
teardown (fixture *f)
{
   mgconn_collection_free (f->c);
   mgconn_connection_free (f->conn);
   mgconn_runtime_free (f->rt);
   server_cleanup (&f->s);
}

/* Runs an op built by `start` with JSON arguments and returns its reply as JSON. */
#define RUN(f, what, call)                                       \
   ({                                                            \
      mgconn_op *op_ = NULL;                                     \
      CHECK ((call) == 0, "%s was refused: %s", what, mgconn_last_error ()->message); \
      const char *r_ = expect_ok (op_, what);                    \
      mgconn_op_free (op_);                                      \
      r_;                                                        \
   })
#define D(j) bson_get_data (j), (j)->len

static void
test_crud_round_trip_with_pymongo_shaped_results (void)
{
   fixture f;
   bson_t *a = json ("{\"name\": \"ada\", \"level\": 3}");
   bson_t *many = json ("[{\"name\": \"bob\", \"level\": 1}, {\"name\": \"cy\", \"level\": 2}, {\"name\": \"di\", \"level\": 2}]");
   bson_t *by_level2 = json ("{\"level\": 2}");
   bson_t *set_x = json ("{\"$set\": {\"x\": true}}");
   bson_t *ada = json ("{\"name\": \"ada\"}");
   bson_t *replacement = json ("{\"name\": \"ada\", \"level\": 9}");
   bson_t *upsert = json ("{\"upsert\": true}");
   bson_t *eve = json ("{\"name\": \"eve\"}");
   bson_t *sorted = json ("{\"sort\": {\"name\": 1}, \"projection\": {\"_id\": 0, \"name\": 1}}");
   bson_t *pipeline = json ("[{\"$match\": {\"level\": 2}}, {\"$group\": {\"_id\": \"$level\", \"n\": {\"$sum\": 1}}}]");
   bson_t *empty = json ("{}");
   const char *r;
   setup (&f, "crud", NULL);

   r = RUN (&f, "insert_one", mgconn_collection_insert_one (&op_, f.c, D (a), NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"insertedId\" : { \"$oid\""), "insert_one: %s", r);
   r = RUN (&f, "insert_many", mgconn_collection_insert_many (&op_, f.c, D (many), NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"insertedIds\" : [ { \"$oid\""), "insert_many: %s", r);
   r = RUN (&f, "count_documents", mgconn_collection_count_documents (&op_, f.c, D (by_level2), NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"count\" : 2"), "count_documents: %s", r);
   r = RUN (&f, "estimated_document_count", mgconn_collection_estimated_document_count (&op_, f.c, NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"count\" : 4"), "estimated_document_count: %s", r);
   r = RUN (&f, "update_many", mgconn_collection_update_many (&op_, f.c, D (by_level2), D (set_x), NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"matchedCount\" : 2") && strstr (r, "\"modifiedCount\" : 2"), "update_many: %s", r);
   r = RUN (&f, "update_one upsert", mgconn_collection_update_one (&op_, f.c, D (eve), D (set_x), D (upsert), NULL, NULL));
   CHECK (strstr (r, "\"upsertedId\""), "upsert: %s", r);
   r = RUN (&f, "replace_one", mgconn_collection_replace_one (&op_, f.c, D (ada), D (replacement), NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"modifiedCount\" : 1"), "replace_one: %s", r);
   r = RUN (&f, "find_one", mgconn_collection_find_one (&op_, f.c, D (ada), NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"level\" : 9"), "find_one after replace: %s", r);
   r = RUN (&f, "find_one missing", mgconn_collection_find_one (&op_, f.c, D (replacement), NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"document\" : { \"name\" : \"ada\"") || strstr (r, "\"document\" : {"), "%s", r);
   r = RUN (&f, "find sorted", mgconn_collection_find (&op_, f.c, D (empty), D (sorted), NULL, NULL));
   CHECK (strstr (r, "[ { \"name\" : \"ada\" }, { \"name\" : \"bob\" }, { \"name\" : \"cy\" }, { \"name\" : \"di\" }, "
                     "{ \"name\" : \"eve\" } ]") && strstr (r, "\"done\" : true"),
          "find: %s", r);
   r = RUN (&f, "aggregate", mgconn_collection_aggregate (&op_, f.c, D (pipeline), NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"n\" : 2"), "aggregate: %s", r);
   r = RUN (&f, "delete_one", mgconn_collection_delete_one (&op_, f.c, D (eve), NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"deletedCount\" : 1"), "delete_one: %s", r);
   r = RUN (&f, "delete_many", mgconn_collection_delete_many (&op_, f.c, D (by_level2), NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"deletedCount\" : 2"), "delete_many: %s", r);
   r = RUN (&f, "drop", mgconn_collection_drop (&op_, f.c, NULL, NULL));
   r = RUN (&f, "drop again (absent is fine)", mgconn_collection_drop (&op_, f.c, NULL, NULL));
   r = RUN (&f, "count after drop", mgconn_collection_count_documents (&op_, f.c, NULL, 0, NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"count\" : 0"), "count after drop: %s", r);
   r = RUN (&f, "create_collection", mgconn_connection_create_collection (&op_, f.conn, "made", NULL, 0, NULL, NULL));
   {
      mgconn_op *op = NULL;
      mgconn_connection_create_collection (&op, f.conn, "made", NULL, 0, NULL, NULL);
      expect_failure (op, MGCONN_ERR_OPERATION, "create_collection twice");
      CHECK (mgconn_op_error (op)->code == 48 && strcmp (mgconn_op_error (op)->code_name, "NamespaceExists") == 0,
             "code %d (%s)", mgconn_op_error (op)->code, mgconn_op_error (op)->code_name);
      mgconn_op_free (op);
   }
   r = RUN (&f, "drop_database", mgconn_connection_drop_database (&op_, f.conn, NULL, NULL));
   bson_t *list = json ("{\"listCollections\": 1}");
   r = RUN (&f, "listCollections", mgconn_run_command (&op_, f.conn, NULL, D (list), NULL, NULL));
   CHECK (strstr (r, "\"firstBatch\" : [ ]"), "the database was not dropped: %s", r);
   bson_destroy (list);
   for (bson_t **b = (bson_t *[]){a, many, by_level2, set_x, ada, replacement, upsert, eve, sorted, pipeline, empty, NULL}; *b; b++) {
      bson_destroy (*b);
   }
   teardown (&f);
}

static void
test_duplicate_key_is_its_own_category_with_code_and_name (void)
{
   fixture f;
   bson_t *index = json ("[{\"key\": {\"email\": 1}, \"unique\": true}]");
   bson_t *doc = json ("{\"email\": \"a@b.c\"}");
   mgconn_op *op = NULL;
   const char *r;
   setup (&f, "dup", NULL);
   r = RUN (&f, "create_indexes", mgconn_collection_create_indexes (&op_, f.c, D (index), NULL, 0, NULL, NULL));
   CHECK (strstr (r, "\"names\" : [ \"email_1\" ]"), "create_indexes: %s", r);
   RUN (&f, "first insert", mgconn_collection_insert_one (&op_, f.c, D (doc), NULL, 0, NULL, NULL));
   mgconn_collection_insert_one (&op, f.c, D (doc), NULL, 0, NULL, NULL);
   expect_failure (op, MGCONN_ERR_DUPLICATE_KEY, "second insert");
   CHECK (mgconn_op_error (op)->code == 11000, "code %d", mgconn_op_error (op)->code);
   CHECK (strcmp (mgconn_op_error (op)->code_name, "DuplicateKey") == 0, "codeName \"%s\"", mgconn_op_error (op)->code_name);
   fprintf (stderr, "   duplicate key: code %d, codeName \"%s\": %s\n", mgconn_op_error (op)->code,
            mgconn_op_error (op)->code_name, mgconn_op_error (op)->message);
   mgconn_op_free (op);
   /* The connection goes on. */
   RUN (&f, "count", mgconn_collection_count_documents (&op_, f.c, NULL, 0, NULL, 0, NULL, NULL));
   bson_destroy (index);
   bson_destroy (doc);
   teardown (&f);
}

static void
test_document_over_max_bson_size_is_refused_before_sending (void)
{
   fixture f;
   size_t big = 17 * 1024 * 1024;
   char *blob = bson_malloc (big + 1);
   bson_t *doc = bson_new ();
   mgconn_op *op = NULL;
   memset (blob, 'x', big);
   blob[big] = '\0';
   BSON_APPEND_UTF8 (doc, "blob", blob);
   setup (&f, "big", NULL);
   mgconn_collection_insert_one (&op, f.c, D (doc), NULL, 0, NULL, NULL);
   fprintf (stderr, "   %s\n", expect_failure (op, MGCONN_ERR_DOCUMENT_TOO_LARGE, "17 MiB insert"));
   CHECK (strstr (mgconn_op_error (op)->message, "maxBsonObjectSize"), "%s", mgconn_op_error (op)->message);
   mgconn_op_free (op);
   RUN (&f, "count", mgconn_collection_count_documents (&op_, f.c, NULL, 0, NULL, 0, NULL, NULL));
   bson_free (blob);
   bson_destroy (doc);
   teardown (&f);
}

static size_t
batch_length (mgconn_op *op, size_t *bytes)
{
   const uint8_t *data;
   size_t len;
   bson_t reply;
   bson_iter_t it;
   mgconn_op_reply (op, &data, &len);
   *bytes = len;
   bson_init_static (&reply, data, len);
   CHECK (bson_iter_init_find (&it, &reply, "batch"), "no batch in the reply");
   {
      bson_t arr;
      uint32_t alen;
      const uint8_t *adata;
      bson_iter_array (&it, &alen, &adata);
      bson_init_static (&arr, adata, alen);
      return bson_count_keys (&arr);
   }
}

static void
test_cursor_over_10000_documents_streams_in_batches (void)
{
   fixture f;
   bson_t *opts = json ("{\"batchSize\": 500}");
   mgconn_op *op = NULL;
   mgconn_cursor *cursor = NULL;
   size_t total = 0, batches = 0, bytes, largest = 0;
   setup (&f, "stream", NULL);
   for (int k = 0; k < 10; k++) {
      bson_t *docs = bson_new ();
      for (int i = 0; i < 1000; i++) {
         char key[16];
         bson_t d;
         snprintf (key, sizeof key, "%d", i);
         bson_append_document_begin (docs, key, -1, &d);
         BSON_APPEND_INT32 (&d, "n", k * 1000 + i);
         BSON_APPEND_UTF8 (&d, "pad", "0123456789012345678901234567890123456789");
         bson_append_document_end (docs, &d);
      }
      RUN (&f, "insert_many", mgconn_collection_insert_many (&op_, f.c, D (docs), NULL, 0, NULL, NULL));
      bson_destroy (docs);
   }
   struct rusage ru;
   getrusage (RUSAGE_SELF, &ru);
   long rss_before = ru.ru_maxrss;
   mgconn_collection_find (&op, f.c, NULL, 0, D (opts), NULL, NULL);
   expect_ok (op, "find");
   total += batch_length (op, &bytes);
   largest = bytes;
   batches++;
   CHECK (mgconn_op_cursor (&cursor, op) == 0, "no cursor: %s", mgconn_last_error ()->message);
   mgconn_op_free (op);
   while (!mgconn_cursor_done (cursor)) {
      CHECK (mgconn_cursor_next (&op, cursor, NULL, NULL) == 0, "next");
      expect_ok (op, "getMore");
      size_t n = batch_length (op, &bytes);
      CHECK (n <= 500, "a batch of %zu documents (batchSize 500)", n);
      largest = bytes > largest ? bytes : largest;
      total += n;
      batches++;
      mgconn_op_free (op);
   }
   getrusage (RUSAGE_SELF, &ru);
   fprintf (stderr, "   10000 documents in %zu batches; the largest reply held %zu bytes; peak RSS grew by %ld KiB\n",
            batches, largest, ru.ru_maxrss - rss_before);
   CHECK (total == 10000, "the cursor returned %zu documents", total);
   CHECK (batches >= 20, "only %zu batches", batches);
   CHECK (largest < 64 * 1024, "a reply of %zu bytes: results were gathered, not streamed", largest);
   /* A finished cursor answers at once. */
   CHECK (mgconn_cursor_next (&op, cursor, NULL, NULL) == 0, "next after done");
   CHECK (strstr (expect_ok (op, "next after done"), "\"done\" : true") && batch_length (op, &bytes) == 0,
          "not an empty, done batch");
   mgconn_op_free (op);
   mgconn_cursor_free (cursor);
   bson_destroy (opts);
   teardown (&f);
}

typedef struct {
   char lines[8192];
} log_capture;

static void
capture (int32_t level, const char *domain, const char *message, void *ud)
{
   log_capture *c = ud;
   if (level == MGCONN_LOG_DEBUG && strcmp (domain, "debug") == 0) {
      strncat (c->lines, message, sizeof c->lines - strlen (c->lines) - 2);
      strcat (c->lines, "\n");
   }
}

static void
test_debug_prints_one_line_per_operation_in_mongoose_format (void)
{
   fixture f;
   log_capture cap;
   bson_t *on = json ("{\"debug\": true}");
   bson_t *filter = json ("{\"name\": \"x\"}");
   bson_t *docs = json ("[{\"a\": 1}, {\"b\": 2.5}]");
   memset (&cap, 0, sizeof cap);
   setup (&f, "debug", NULL);
   mgconn_runtime_set_log_handler (f.rt, capture, &cap);
   mgconn_runtime_set (f.rt, D (on), NULL);
   RUN (&f, "find_one", mgconn_collection_find_one (&op_, f.c, D (filter), NULL, 0, NULL, NULL));
   RUN (&f, "insert_many", mgconn_collection_insert_many (&op_, f.c, D (docs), NULL, 0, NULL, NULL));
   mgconn_runtime_dispatch (f.rt, 0);
   fprintf (stderr, "%s", cap.lines);
   CHECK (strstr (cap.lines, "mgconn: items.find_one({\"name\": \"x\"}, {})\n"), "debug lines:\n%s", cap.lines);
   CHECK (strstr (cap.lines, "mgconn: items.insert_many([{\"_id\": ObjectId(\""), "debug lines:\n%s", cap.lines);
   CHECK (strstr (cap.lines, "\"b\": 2.5}], {})"), "debug lines:\n%s", cap.lines);
   bson_destroy (on);
   bson_destroy (filter);
   bson_destroy (docs);
   teardown (&f);
}

static void
test_max_pool_size_caps_operations_in_flight (void)
{
   fixture f;
   enum { N = 50 };
   mgconn_op *ops[N];
   uint8_t buf[256];
   bson_t stats;
   bson_iter_t it;
   bson_t *docs = bson_new ();
   setup (&f, "pool", "{\"maxPoolSize\": 2}");
   for (int i = 0; i < 300; i++) {
      char key[16];
      bson_t d;
      snprintf (key, sizeof key, "%d", i);
      bson_append_document_begin (docs, key, -1, &d);
      BSON_APPEND_UTF8 (&d, "pad", "a fairly long string so that each insert takes a while on the server side");
      bson_append_document_end (docs, &d);
   }
   for (int i = 0; i < N; i++) {
      CHECK (mgconn_collection_insert_many (&ops[i], f.c, D (docs), NULL, 0, NULL, NULL) == 0, "insert_many");
   }
   int len = mgconn_connection_stats (f.conn, buf, sizeof buf);
   CHECK (len > 0 && bson_init_static (&stats, buf, (size_t) len), "stats");
   /* However many have finished while they were being issued (a slow build issues slowly), no more
    * than maxPoolSize are on the wire; the rest wait in mgconn's buffer. */
   bson_iter_init_find (&it, &stats, "inFlight");
   CHECK (bson_iter_int32 (&it) <= 2, "%d in flight right after issuing %d ops with maxPoolSize 2",
          bson_iter_int32 (&it), N);
   for (int i = 0; i < N; i++) {
      expect_ok (ops[i], "insert_many");
      mgconn_op_free (ops[i]);
   }
   len = mgconn_connection_stats (f.conn, buf, sizeof buf);
   bson_init_static (&stats, buf, (size_t) len);
   bson_iter_init_find (&it, &stats, "peakInFlight");
   fprintf (stderr, "   %d concurrent insert_many of 300 documents with maxPoolSize=2: peak in flight %d\n", N,
            bson_iter_int32 (&it));
   CHECK (bson_iter_int32 (&it) == 2, "peak in flight %d with maxPoolSize 2", bson_iter_int32 (&it));
   bson_destroy (docs);
   teardown (&f);
}

/* minPoolSize connects that many clients after the connection opens, before any operation. */
static void
test_min_pool_size_keeps_clients_connected (void)
{
   fixture plain, warm;
   int64_t deadline;
   int before, after;
   setup (&plain, "cold", NULL);
   pump_for (plain.rt, 300);
   before = established_to (plain.s.port);
   setup (&warm, "warm", "{\"minPoolSize\": 3}");
   deadline = now_ms () + 5000;
   while ((after = established_to (warm.s.port)) < before + 3 && now_ms () < deadline) {
      pump_for (warm.rt, 20);
   }
   fprintf (stderr, "   connections to the server with no operation issued: %d without minPoolSize, %d with "
                    "minPoolSize=3\n", before, after);
   CHECK (after >= before + 3, "minPoolSize=3 gave %d connections, %d without it", after, before);
   /* They are kept, not closed once warmed. */
   pump_for (warm.rt, 500);
   CHECK (established_to (warm.s.port) >= before + 3, "the warm connections were closed again");
   teardown (&plain);
   teardown (&warm);
}

static const test_case tests[] = {
   {"min_pool_size", test_min_pool_size_keeps_clients_connected},
   {"crud", test_crud_round_trip_with_pymongo_shaped_results},
   {"duplicate_key", test_duplicate_key_is_its_own_category_with_code_and_name},
   {"too_large", test_document_over_max_bson_size_is_refused_before_sending},
   {"cursor_streams", test_cursor_over_10000_documents_streams_in_batches},
   {"debug_line", test_debug_prints_one_line_per_operation_in_mongoose_format},
   {"max_pool_size", test_max_pool_size_caps_operations_in_flight},
   {NULL, NULL},
};

int
main (int argc, char **argv)
{
   return run_tests (argc, argv, tests);
}
