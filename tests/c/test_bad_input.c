/*
 * test_bad_input.c: the bad-input catalogue, C part. Each case is refused with a clear error
 * naming the problem (never the password), and loses nothing: an insert in flight on the same
 * connection succeeds, and a new insert and find work after it. One server for all cases.
 */
#include "harness.h"

#include <string.h>

#define SECRET "Pa55w0rdNeverShown"

static test_server server;
static mgconn_runtime *rt;
static mgconn_connection *conn;
static mgconn_collection *items;

/* The returned code must be -category and the thread's last error must mention `text`. */
static void
refused (const char *what, int rc, int32_t category, const char *text)
{
   const mgconn_error *e = mgconn_last_error ();
   CHECK (rc == -category, "%s: returned %d, expected -%s", what, rc, mgconn_error_category_name (category));
   CHECK (strstr (e->message, text), "%s: the message does not say \"%s\": %s", what, text, e->message);
   CHECK (!strstr (e->message, SECRET), "%s: the password is in the message", what);
   fprintf (stderr, "   %-44s %s\n", what, e->message);
}

/* Everything still works: the op started before the case succeeded; a new insert and find work. */
static void
goes_on (mgconn_op *before, const char *what)
{
   bson_t *doc = BCON_NEW ("after", what);
   mgconn_op *ins = NULL, *find = NULL;
   expect_ok (before, what);
   mgconn_op_free (before);
   CHECK (mgconn_collection_insert_one (&ins, items, bson_get_data (doc), doc->len, NULL, 0, NULL, NULL) == 0, "%s",
          what);
   expect_ok (ins, what);
   CHECK (mgconn_collection_find_one (&find, items, bson_get_data (doc), doc->len, NULL, 0, NULL, NULL) == 0, "%s",
          what);
   CHECK (strstr (expect_ok (find, what), what), "%s: the new document was not found", what);
   mgconn_op_free (ins);
   mgconn_op_free (find);
   bson_destroy (doc);
}

static void
ignore_event (mgconn_connection *c, const mgconn_event *event, void *userdata)
{
   (void) c, (void) event, (void) userdata;
}

static mgconn_op *
in_flight (const char *what)
{
   bson_t *doc = BCON_NEW ("before", what);
   mgconn_op *op = NULL;
   CHECK (mgconn_collection_insert_one (&op, items, bson_get_data (doc), doc->len, NULL, 0, NULL, NULL) == 0, "%s",
          what);
   bson_destroy (doc);
   return op;
}

static void
test_every_bad_input_is_refused_clearly_and_loses_nothing (void)
{
   mgconn_op *before, *op = NULL, *pending = NULL;
   mgconn_connection *other = NULL;
   mgconn_cursor *cursor = NULL;
   mgconn_runtime *bad_rt = NULL;
   uint8_t small[8], garbage[5] = {5, 0, 0, 0, 1};
   bson_t *doc = BCON_NEW ("name", "ada");
   bson_t *bad_utf8 = bson_new ();
   bson_t *not_docs = bson_new ();
   bson_t *empty_key = BCON_NEW ("player", "{", "name", "x", "", BCON_INT32 (1), "}");
   bson_t *empty_key_in_one = BCON_NEW ("0", "{", "ok", BCON_INT32 (1), "}", "1", "{", "", "y", "}");
   bson_t *empty_key_filter = BCON_NEW ("", "nothing has this key");
   bson_t *deep = bson_new ();
   bson_t *bad_workers = BCON_NEW ("workers", BCON_INT32 (0));
   char uri[256];
   int cases = 0;

   server_start (&server);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&server, "bad_input", NULL), NULL);
   items = coll_of (conn, "items");
   CHECK (ping (conn, 10000, NULL) == MGCONN_OP_SUCCEEDED, "no ping");
   {
      bson_t inner, tags; /* {ok: 1, player: {name: "x", tags: ["a", "bad\xff"]}}: the error names the path */
      BSON_APPEND_INT32 (bad_utf8, "ok", 1);
      bson_append_document_begin (bad_utf8, "player", 6, &inner);
      BSON_APPEND_UTF8 (&inner, "name", "x");
      bson_append_array_unsafe_begin (&inner, "tags", 4, &tags);
      BSON_APPEND_UTF8 (&tags, "0", "a");
      bson_append_utf8 (&tags, "1", 1, "bad\xff", 4);
      bson_append_array_end (&inner, &tags);
      bson_append_document_end (bad_utf8, &inner);
   }
   BSON_APPEND_INT32 (not_docs, "0", 7);
   {
      /* {a: {a: {... 600 deep}}}: more deeply nested than libbson reads */
      bson_t levels[601];
      bson_init (&levels[0]);
      for (int i = 0; i < 600; i++) {
         bson_append_document_begin (&levels[i], "a", 1, &levels[i + 1]);
      }
      for (int i = 600; i > 0; i--) {
         bson_append_document_end (&levels[i - 1], &levels[i]);
      }
      bson_concat (deep, &levels[0]);
      bson_destroy (&levels[0]);
   }

#define CASE(what, call, category, text)              \
   do {                                                \
      before = in_flight (what);                       \
      refused (what, (call), category, text);          \
      goes_on (before, what);                          \
      cases++;                                         \
   } while (0)

   CASE ("NULL collection", mgconn_collection_insert_one (NULL, NULL, bson_get_data (doc), doc->len, NULL, 0, NULL, NULL),
         MGCONN_ERR_INVALID_ARGUMENT, "NULL");
   CASE ("NULL document", mgconn_collection_insert_one (NULL, items, NULL, 0, NULL, 0, NULL, NULL),
         MGCONN_ERR_INVALID_ARGUMENT, "document");
   CASE ("truncated BSON", mgconn_collection_insert_one (NULL, items, bson_get_data (doc), doc->len - 3, NULL, 0, NULL, NULL),
         MGCONN_ERR_INVALID_ARGUMENT, "not a valid BSON document");
   CASE ("garbage BSON", mgconn_collection_insert_one (NULL, items, garbage, sizeof garbage, NULL, 0, NULL, NULL),
         MGCONN_ERR_INVALID_ARGUMENT, "not a valid BSON document");
   CASE ("invalid UTF-8 in a string",
         mgconn_collection_insert_one (NULL, items, bson_get_data (bad_utf8), bad_utf8->len, NULL, 0, NULL, NULL),
         MGCONN_ERR_INVALID_ARGUMENT, "not valid UTF-8 at player.tags.1");
   CASE ("an empty key in a document to insert",
         mgconn_collection_insert_one (NULL, items, bson_get_data (empty_key), empty_key->len, NULL, 0, NULL, NULL),
         MGCONN_ERR_INVALID_ARGUMENT, "empty key, which cannot be stored, at player.\"\"");
   CASE ("an empty key in one of insert_many's documents",
         mgconn_collection_insert_many (NULL, items, bson_get_data (empty_key_in_one), empty_key_in_one->len, NULL, 0,
                                        NULL, NULL),
         MGCONN_ERR_INVALID_ARGUMENT, "documents hold an empty key, which cannot be stored, at 1.\"\"");
   CASE ("a document nested 600 deep",
         mgconn_collection_insert_one (NULL, items, bson_get_data (deep), deep->len, NULL, 0, NULL, NULL),
         MGCONN_ERR_INVALID_ARGUMENT, "nested more than 500 documents deep");
   CASE ("options that are not BSON",
         mgconn_collection_find_one (NULL, items, bson_get_data (doc), doc->len, garbage, sizeof garbage, NULL, NULL),
         MGCONN_ERR_INVALID_ARGUMENT, "BSON");
   CASE ("insert_many of non-documents",
         mgconn_collection_insert_many (NULL, items, bson_get_data (not_docs), not_docs->len, NULL, 0, NULL, NULL),
         MGCONN_ERR_INVALID_ARGUMENT, "document");
   CASE ("stats into a buffer too small", mgconn_connection_stats (conn, small, sizeof small),
         MGCONN_ERR_INVALID_ARGUMENT, "too small");
   CASE ("unknown event name", mgconn_connection_on (conn, "conected", ignore_event, NULL), MGCONN_ERR_INVALID_ARGUMENT,
         "conected");
   snprintf (uri, sizeof uri, "mongodb://127.0.0.1:%d/elsewhere", server.port);
   CASE ("open again with another URI", mgconn_connection_open (conn, uri, NULL, 0, NULL), MGCONN_ERR_INVALID_ARGUMENT,
         "already open");
   CHECK (mgconn_connection_ready_state (conn) == MGCONN_STATE_CONNECTED, "the refused open changed the state");
   CASE ("malformed URI with a password",
         mgconn_connection_new (&other, rt, "mongodb://ada:" SECRET "@127.0.0.1:99999/x", NULL, 0, NULL),
         MGCONN_ERR_OPTION, "Invalid connection string");
   CASE ("runtime with 0 workers", mgconn_runtime_new (&bad_rt, bson_get_data (bad_workers), bad_workers->len, NULL),
         MGCONN_ERR_OPTION, "workers");
   CASE ("unknown constant", mgconn_constant ("MGCONN_NOPE", NULL), MGCONN_ERR_INVALID_ARGUMENT, "MGCONN_NOPE");
   CASE ("queue_events with a negative capacity", mgconn_connection_queue_events (conn, -5),
         MGCONN_ERR_INVALID_ARGUMENT, "capacity");

   /* A cursor taken from an op that has none. */
   before = in_flight ("cursor of an insert");
   CHECK (mgconn_collection_insert_one (&op, items, bson_get_data (doc), doc->len, NULL, 0, NULL, NULL) == 0, "insert");
   expect_ok (op, "insert");
   refused ("cursor of an insert", mgconn_op_cursor (&cursor, op), MGCONN_ERR_INVALID_ARGUMENT, "cursor");
   goes_on (before, "cursor of an insert");
   mgconn_op_free (op);
   cases++;

   /* Cancelling an op that already finished. */
   before = in_flight ("cancel after done");
   CHECK (mgconn_collection_find_one (&pending, items, bson_get_data (doc), doc->len, NULL, 0, NULL, NULL) == 0, "find");
   expect_ok (pending, "find");
   refused ("cancel after done", mgconn_op_cancel (pending), MGCONN_ERR_INVALID_ARGUMENT, "already sent");
   goes_on (before, "cancel after done");
   mgconn_op_free (pending);
   cases++;

   /* An empty key is the server's to judge in a filter: only stored documents are refused it. */
   CHECK (mgconn_collection_find_one (&op, items, bson_get_data (empty_key_filter), empty_key_filter->len, NULL, 0, NULL,
                                      NULL) == 0,
          "a filter with an empty key was refused: %s", mgconn_last_error ()->message);
   expect_ok (op, "a filter with an empty key");
   mgconn_op_free (op);

   fprintf (stderr, "   %d C cases, each followed by a working connection\n", cases);
   bson_destroy (doc);
   bson_destroy (bad_utf8);
   bson_destroy (not_docs);
   bson_destroy (empty_key);
   bson_destroy (empty_key_in_one);
   bson_destroy (empty_key_filter);
   bson_destroy (deep);
   bson_destroy (bad_workers);
   mgconn_collection_free (items);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   server_cleanup (&server);
}

static const test_case tests[] = {
   {"catalogue", test_every_bad_input_is_refused_clearly_and_loses_nothing},
   {NULL, NULL},
};

int
main (int argc, char **argv)
{
   return run_tests (argc, argv, tests);
}
