/*
 * ops.c: the collection and database operations. Each public function checks its input on the host
 * thread (nothing is queued when the input is bad) and submits an op; each exec function runs on a
 * worker with a pooled client and turns libmongoc's answer into a reply or an mgconn_error.
 * Queries and their cursors are in cursor.c.
 */
#include "connection.h"
#include "input_check.h"

#include <string.h>

/* ---- input ---- */

static int
borrow_doc (bson_t *doc, const uint8_t *data, size_t len, const char *what, bool optional, bool stored)
{
   char path[256];
   const char *holds;
   if (!data) {
      if (optional) {
         bson_init (doc);
         return 0;
      }
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "%s is NULL", what);
   }
   if (!bson_init_static (doc, data, len)) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "%s is not a valid BSON document", what);
   }
   /* A string that is not UTF-8 would reach the server and fail there, or be stored and break every
    * reader; an empty key the server refuses to store (libmongoc is told not to look again). */
   mg_input_verdict verdict = mg_input_check (doc, stored, path, sizeof path);
   if (verdict == MG_INPUT_OK) {
      return 0;
   }
   holds = what[strlen (what) - 1] == 's' ? "hold" : "holds"; /* "the documents hold" */
   switch (verdict) {
   case MG_INPUT_CORRUPT:
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "%s is not a valid BSON document", what);
   case MG_INPUT_TOO_DEEP:
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "%s is nested more than %d documents deep", what,
                      MG_INPUT_MAX_DEPTH);
   case MG_INPUT_BAD_UTF8:
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "%s %s a string that is not valid UTF-8 at %s", what, holds,
                      path);
   case MG_INPUT_EMPTY_KEY:
   case MG_INPUT_OK:
   default:
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "%s %s an empty key, which cannot be stored, at %s", what,
                      holds, path);
   }
}

int
mg_op_build (mgconn_op **built, mgconn_connection *conn, const mg_op_kind *kind, const mg_op_input *in,
             mgconn_op_cb cb, void *userdata)
{
   bson_t a, b, o;
   mgconn_connection *root;
   const char *collection = in->coll ? in->coll->name : in->collection;
   char *db;
   int rc;
   *built = NULL;
   if (in->coll) {
      conn = in->coll->conn;
   }
   if (!conn) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "%s: the %s is NULL", kind->snake,
                      in->coll || in->a_name ? "collection" : "connection");
   }
   if (collection != NULL && !*collection) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "%s: the collection name is empty", kind->snake);
   }
   if ((rc = borrow_doc (&a, in->a, in->a_len, in->a_name ? in->a_name : "the input", in->a_optional || !in->a_name,
                        in->a_stored)) ||
       (rc = borrow_doc (&b, in->b, in->b_len, in->b_name ? in->b_name : "the input", !in->b_name, false)) ||
       (rc = borrow_doc (&o, in->opts, in->opts_len, "the options document", true, false))) {
      return rc;
   }
   /* A use_db child's operations run on its root's pool, in the child's database. A root's take
    * the database the connection has when they run (mg_conn_pump_locked): an operation issued
    * before open_uri() goes to the database that open names. */
   root = mg_conn_root (conn);
   db = conn->parent ? bson_strdup (conn->child_db) : NULL;
   *built = mg_op_new (root, kind, db, collection, cb, userdata);
   bson_free (db);
   (*built)->via_detached = conn->detached;
   if (in->coll && in->coll->model) {
      mg_model_ref (in->coll->model);
      (*built)->model = in->coll->model;
   }
   if (!in->a_copied_by_caller) {
      bson_concat (&(*built)->args, &a);
   }
   bson_concat (&(*built)->args2, &b);
   {
      /* mgconn's own per-operation option, not the server's: taken out of what is sent */
      bson_iter_t it;
      if (bson_iter_init_find_case (&it, &o, "resendInterrupted")) {
         if (!BSON_ITER_HOLDS_BOOL (&it)) {
            mg_op_unref (*built);
            *built = NULL;
            return mg_fail (NULL, MGCONN_ERR_OPTION, "%s: the option \"resendInterrupted\" must be true or false",
                            kind->snake);
         }
         (*built)->resend = bson_iter_bool (&it);
         bson_copy_to_excluding_noinit (&o, &(*built)->opts, bson_iter_key (&it), NULL);
      } else {
         bson_concat (&(*built)->opts, &o);
      }
   }
   return 0;
}

/* ---- which operations may be sent again after their connection failed before the reply ----
 *
 * buffer.c asks only when the op may have reached the server; the rule for each kind, and why, is
 * in docs/guide.md ("What survives an outage"). */

bool
mg_resend_always (const mgconn_op *op, const char **why_not)
{
   (void) op;
   (void) why_not;
   return true;
}

/* Update operators for which applying the update twice leaves what applying it once does. */
static const char *const idempotent_operators[] = {
   "$set", "$unset", "$setOnInsert", "$min", "$max", "$currentDate", "$rename", "$addToSet", "$pull", "$pullAll",
};

static bool
update_is_idempotent (const bson_t *update, const char **why_not)
{
   static _Thread_local char why[96];
   bson_iter_t it;
   if (bson_iter_init (&it, update) && bson_iter_next (&it) && strcmp (bson_iter_key (&it), "0") == 0) {
      *why_not = "an update pipeline is not idempotent";
      return false;
   }
   bson_iter_init (&it, update);
   while (bson_iter_next (&it)) {
      const char *key = bson_iter_key (&it);
      bool known = false;
      for (size_t i = 0; i < sizeof idempotent_operators / sizeof idempotent_operators[0]; i++) {
         known = known || strcmp (key, idempotent_operators[i]) == 0;
      }
      if (!known) {
         bson_snprintf (why, sizeof why, "`%.40s` is not idempotent", key);
         *why_not = why;
         return false;
      }
   }
   return true;
}

bool
mg_update_is_idempotent (const bson_t *update, const char **why_not)
{
   return update_is_idempotent (update, why_not);
}

/* update_one, replace_one and delete_one act on the first match: only a filter that names one
 * `_id` makes running them twice act on the same document. */
static bool
pins_one_document (const mgconn_op *op, const char **why_not)
{
   bson_iter_t id;
   if (!mg_filter_pins_id (&op->args, &id)) {
      *why_not = "its filter does not name one `_id`, so a second run could act on another document";
      return false;
   }
   return true;
}

static bool
update_one_idempotent (const mgconn_op *op, const char **why_not)
{
   return pins_one_document (op, why_not) && update_is_idempotent (&op->args2, why_not);
}

static bool
update_many_idempotent (const mgconn_op *op, const char **why_not)
{
   return update_is_idempotent (&op->args2, why_not);
}

/* Commands that only read: sent again like a find. Any other command may write. */
static bool
read_only_command (const bson_t *command)
{
   static const char *const reads[] = {"ping", "hello", "isMaster", "ismaster", "buildInfo", "buildinfo",
                                       "listCollections", "listIndexes", "listDatabases", "count", "distinct",
                                       "dbStats", "collStats", "serverStatus", "connectionStatus", "getParameter",
                                       "find"};
   bson_iter_t it;
   if (!bson_iter_init (&it, command) || !bson_iter_next (&it)) {
      return false;
   }
   for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
      if (strcmp (bson_iter_key (&it), reads[i]) == 0) {
         return true;
      }
   }
   return false;
}

static bool
run_command_idempotent (const mgconn_op *op, const char **why_not)
{
   if (op->writes) {
      *why_not = "a command other than a read (ping, find, count, listCollections, ...) may not be idempotent";
      return false;
   }
   return true;
}

/* Keys for per-document order (buffer.c): the `_id` a filter pins, and a document's `_id`. */
static void
add_filter_key (mgconn_op *op, const bson_t *filter)
{
   bson_iter_t id;
   if (mg_filter_pins_id (filter, &id)) {
      mg_op_add_doc_key (op, bson_iter_value (&id));
   }
}

static void
add_document_key (mgconn_op *op, const bson_t *doc)
{
   bson_iter_t id;
   if (bson_iter_init_find (&id, doc, "_id")) {
      mg_op_add_doc_key (op, bson_iter_value (&id));
   }
}

static void append_array_index (bson_t *array, uint32_t i, const bson_value_t *value);

static int
start (mgconn_op **out, mgconn_connection *conn, const mg_op_kind *kind, const mg_op_input *in, mgconn_op_cb cb,
       void *userdata)
{
   mgconn_op *op;
   int rc = mg_op_build (&op, conn, kind, in, cb, userdata);
   return rc ? rc : mg_op_submit (op, out);
}

/* A model's write is checked against the types its schema declares (mg_schema_check_*). A refused
 * one fails through its delivery, as every result reaches the host (Mongoose rejects the promise
 * with a ValidationError), and nothing is sent. `what` is 'd' for documents (an array of them when
 * the op's args are an array), 'r' for a replacement, 'u' for an update. */
static int
submit_checked (mgconn_op *op, mgconn_op **out, char what)
{
   char why[512];
   bool ok = true;
   uint32_t index = 0;
   if (op->model) {
      const mgconn_schema *s = op->model->schema;
      if (what == 'u') {
         ok = mg_schema_check_update (s, &op->args2, why, sizeof why);
      } else if (what == 'r') {
         ok = mg_schema_check_document (s, &op->args2, why, sizeof why);
      } else if (op->kind->args_array) {
         bson_iter_t it;
         bson_iter_init (&it, &op->args);
         while (ok && bson_iter_next (&it)) {
            bson_t doc;
            uint32_t len;
            const uint8_t *data;
            bson_iter_document (&it, &len, &data);
            ok = !bson_init_static (&doc, data, len) || mg_schema_check_document (s, &doc, why, sizeof why);
            index += ok ? 1 : 0;
         }
      } else {
         ok = mg_schema_check_document (s, &op->args, why, sizeof why);
      }
   }
   if (ok) {
      return mg_op_submit (op, out);
   }
   mgconn_error e;
   mgconn_error_init (&e);
   if (op->kind->args_array) {
      mg_error_set (&e, MGCONN_ERR_VALIDATION, "Cannot run `%s.%s()`: %s validation failed: document %u: %s; nothing "
                    "was sent", op->collection, mg_op_method_name (op), op->model->name, index, why);
   } else {
      mg_error_set (&e, MGCONN_ERR_VALIDATION, "Cannot run `%s.%s()`: %s validation failed: %s; nothing was sent",
                    op->collection, mg_op_method_name (op), op->model->name, why);
   }
   if (out) {
      mg_op_ref (op);
      *out = op;
   }
   pthread_mutex_lock (&op->conn->lock);
   mg_op_fail_locked (op, &e); /* the delivery keeps the op's own reference */
   pthread_mutex_unlock (&op->conn->lock);
   mgconn_error_cleanup (&e);
   return 0;
}

/* The document with an ObjectId `_id` first when it has none, so the id is known before sending
 * (and a re-sent insert can be recognised). Returns true when the caller gave the `_id`. */
static bool
with_id (const bson_t *doc, bson_t *out)
{
   bson_iter_t it;
   bool given = bson_iter_init_find (&it, doc, "_id");
   if (!given) {
      bson_oid_t oid;
      bson_oid_init (&oid, NULL);
      BSON_APPEND_OID (out, "_id", &oid);
   }
   bson_concat (out, doc);
   return given;
}

/* Before re-sending an insert: the `_id`s of `docs` (an array) already stored, in `found` (an array
 * of values). A stored `_id` means the first attempt landed. False when the lookup failed. */
static bool
stored_ids (mgconn_op *op, mongoc_client_t *client, const bson_t *docs, bson_t *found, mgconn_error *error)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, op->db, op->collection);
   bson_t filter = BSON_INITIALIZER, id_doc, in, *opts = BCON_NEW ("projection", "{", "_id", BCON_INT32 (1), "}");
   bson_iter_t it, id;
   const bson_t *doc;
   bson_error_t be;
   mongoc_cursor_t *cursor;
   uint32_t i = 0, n = 0;
   bool ok;
   bson_append_document_begin (&filter, "_id", -1, &id_doc);
   bson_append_array_unsafe_begin (&id_doc, "$in", -1, &in);
   bson_iter_init (&it, docs);
   while (bson_iter_next (&it)) {
      bson_iter_t d;
      if (bson_iter_recurse (&it, &d) && bson_iter_find (&d, "_id")) {
         append_array_index (&in, i++, bson_iter_value (&d));
      }
   }
   bson_append_array_end (&id_doc, &in);
   bson_append_document_end (&filter, &id_doc);
   cursor = mongoc_collection_find_with_opts (coll, &filter, opts, NULL);
   while (mongoc_cursor_next (cursor, &doc)) {
      if (bson_iter_init_find (&id, doc, "_id")) {
         append_array_index (found, n++, bson_iter_value (&id));
      }
   }
   ok = !mongoc_cursor_error (cursor, &be);
   if (!ok) {
      mg_error_from_driver (error, &be, NULL);
   }
   mongoc_cursor_destroy (cursor);
   bson_destroy (opts);
   bson_destroy (&filter);
   mongoc_collection_destroy (coll);
   return ok;
}

static bool
id_in (const bson_t *ids, const bson_value_t *v)
{
   bson_iter_t it;
   bson_iter_init (&it, ids);
   while (bson_iter_next (&it)) {
      const bson_value_t *w = bson_iter_value (&it);
      if (w->value_type == v->value_type) {
         bson_t a = BSON_INITIALIZER, b = BSON_INITIALIZER;
         bool same;
         bson_append_value (&a, "", 0, v);
         bson_append_value (&b, "", 0, w);
         same = bson_equal (&a, &b);
         bson_destroy (&a);
         bson_destroy (&b);
         if (same) {
            return true;
         }
      } else if ((v->value_type == BSON_TYPE_INT32 || v->value_type == BSON_TYPE_INT64 || v->value_type == BSON_TYPE_DOUBLE) &&
                 (w->value_type == BSON_TYPE_INT32 || w->value_type == BSON_TYPE_INT64 || w->value_type == BSON_TYPE_DOUBLE)) {
         double x = v->value_type == BSON_TYPE_INT32 ? v->value.v_int32 : v->value_type == BSON_TYPE_INT64 ? (double) v->value.v_int64 : v->value.v_double;
         double y = w->value_type == BSON_TYPE_INT32 ? w->value.v_int32 : w->value_type == BSON_TYPE_INT64 ? (double) w->value.v_int64 : w->value.v_double;
         if (x == y) {
            return true;
         }
      }
   }
   return false;
}

static void
append_array_index (bson_t *array, uint32_t i, const bson_value_t *value)
{
   char buf[16];
   const char *key;
   size_t len = bson_uint32_to_string (i, &key, buf, sizeof buf);
   bson_append_value (array, key, (int) len, value);
}

bool
mg_driver_failed (mgconn_error *error, const bson_error_t *be, const bson_t *server_reply, bson_t *reply)
{
   mg_error_from_driver (error, be, server_reply);
   if (server_reply && !bson_empty (server_reply)) {
      bson_concat (reply, server_reply);
   }
   return false;
}

/* ---- run_command ---- */

static bool
exec_run_command (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   bson_error_t be;
   bson_t server_reply;
   bool ok = mongoc_client_command_with_opts (client, op->db, &op->args, NULL, &op->opts, &server_reply, &be);
   if (ok) {
      bson_concat (reply, &server_reply);
   } else {
      mg_driver_failed (error, &be, &server_reply, reply);
   }
   bson_destroy (&server_reply);
   return ok;
}

static const mg_op_kind run_command_kind = {"run_command", "runCommand", exec_run_command, true, false,
                                            .idempotent = run_command_idempotent};

int
mgconn_run_command (mgconn_op **out, mgconn_connection *conn, const char *db, const uint8_t *command,
                    size_t command_len, mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {.a_name = "the command", .a = command, .a_len = command_len};
   mgconn_op *op;
   int rc = mg_op_build (&op, conn, &run_command_kind, &in, cb, userdata);
   if (rc) {
      return rc;
   }
   if (bson_empty (&op->args)) {
      mg_op_unref (op);
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "the command is an empty document");
   }
   if (db) {
      bson_free (op->db);
      op->db = bson_strdup (db); /* an explicit database, kept as given */
   }
   op->writes = !read_only_command (&op->args);
   return mg_op_submit (op, out);
}

/* ---- inserts ---- */

/* The options an insert hands libmongoc: the caller's, and, unless the caller chose otherwise,
 * "validate": false: mg_op_build checked the documents for what libmongoc would (empty keys), so
 * libmongoc need not walk them again. Kept out of op->opts so that debug lines show what was given. */
static void
insert_opts (const mgconn_op *op, bson_t *out)
{
   bson_iter_t it;
   bson_init (out);
   bson_concat (out, &op->opts);
   if (!bson_iter_init_find (&it, &op->opts, "validate")) {
      BSON_APPEND_BOOL (out, "validate", false);
   }
}

static bool
exec_insert_one (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, op->db, op->collection);
   bson_t server_reply;
   bson_error_t be;
   bson_iter_t id;
   bool ok, landed = false;
   if (op->resent > 0) {
      /* Sent again after a fault: its `_id` already stored means the first attempt landed. */
      bson_t one = BSON_INITIALIZER, found = BSON_INITIALIZER;
      BSON_APPEND_DOCUMENT (&one, "0", &op->args);
      if (!stored_ids (op, client, &one, &found, error)) {
         bson_destroy (&one);
         bson_destroy (&found);
         mongoc_collection_destroy (coll);
         return false;
      }
      landed = !bson_empty (&found);
      bson_destroy (&one);
      bson_destroy (&found);
   }
   if (landed) {
      ok = true;
      bson_init (&server_reply);
   } else {
      bson_t opts;
      insert_opts (op, &opts);
      ok = mongoc_collection_insert_one (coll, &op->args, &opts, &server_reply, &be);
      bson_destroy (&opts);
      if (!ok && op->resent > 0 && be.code == MONGOC_ERROR_DUPLICATE_KEY) {
         /* The first attempt was still being applied when the lookup above ran (its reply was lost,
          * or timed out, while the server went on): a duplicate `_id` now stored is that attempt. */
         bson_t one = BSON_INITIALIZER, found = BSON_INITIALIZER;
         mgconn_error lookup;
         mgconn_error_init (&lookup);
         BSON_APPEND_DOCUMENT (&one, "0", &op->args);
         if (stored_ids (op, client, &one, &found, &lookup) && !bson_empty (&found)) {
            ok = true;
            bson_reinit (&server_reply);
         }
         mgconn_error_cleanup (&lookup);
         bson_destroy (&one);
         bson_destroy (&found);
      }
   }
   if (ok) {
      bson_iter_init_find (&id, &op->args, "_id");
      bson_append_value (reply, "insertedId", -1, bson_iter_value (&id));
   } else {
      mg_driver_failed (error, &be, &server_reply, reply);
   }
   bson_destroy (&server_reply);
   mongoc_collection_destroy (coll);
   return ok;
}

static const mg_op_kind insert_one_kind = {"insert_one", "insertOne", exec_insert_one, true, false,
                                           .idempotent = mg_resend_always, .writes = true, .driver_retry = 1};

int
mgconn_collection_insert_one (mgconn_op **out, mgconn_collection *collection,
                              const uint8_t *document, size_t document_len, const uint8_t *opts, size_t opts_len,
                              mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {.coll = collection, .a_name = "the document", .a = document, .a_len = document_len,
                     .a_copied_by_caller = true, .a_stored = true, .opts = opts, .opts_len = opts_len};
   mgconn_op *op;
   bson_t doc;
   bool given;
   int rc = mg_op_build (&op, NULL, &insert_one_kind, &in, cb, userdata);
   if (rc) {
      return rc;
   }
   bson_init_static (&doc, document, document_len); /* checked by mg_op_build */
   given = with_id (&doc, &op->args);               /* the one copy, `_id` first */
   op->largest_doc = op->args.len;
   if (given) {
      add_document_key (op, &op->args); /* a `_id` mgconn made names no document of another op */
   }
   return submit_checked (op, out, 'd');
}

static bool
exec_insert_many (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, op->db, op->collection);
   uint32_t n = bson_count_keys (&op->args), i = 0;
   const bson_t **docs = bson_malloc0 (sizeof (bson_t *) * (n ? n : 1));
   bson_t *aligned = bson_aligned_alloc0 (BSON_ALIGNOF (bson_t), sizeof (bson_t) * (n ? n : 1));
   bson_iter_t it;
   bson_t server_reply, ids, found = BSON_INITIALIZER, opts;
   bson_error_t be;
   bool ok;
   uint32_t sent = 0;
   insert_opts (op, &opts);

   /* Sent again after a fault: documents whose `_id` is stored landed with the first attempt; the
    * others are inserted now, in their order. */
   if (op->resent > 0 && !stored_ids (op, client, &op->args, &found, error)) {
      bson_destroy (&found);
      bson_destroy (&opts);
      bson_free (aligned);
      bson_free (docs);
      mongoc_collection_destroy (coll);
      return false;
   }
   bson_iter_init (&it, &op->args);
   while (bson_iter_next (&it) && i < n) {
      uint32_t len;
      const uint8_t *data;
      bson_iter_t id;
      bson_iter_document (&it, &len, &data);
      bson_init_static (&aligned[i], data, len);
      i++;
      if (!bson_empty (&found) && bson_iter_init_find (&id, &aligned[i - 1], "_id") &&
          id_in (&found, bson_iter_value (&id))) {
         continue;
      }
      docs[sent++] = &aligned[i - 1];
   }
   if (sent == 0) {
      ok = true;
      bson_init (&server_reply);
   } else {
      ok = mongoc_collection_insert_many (coll, docs, sent, &opts, &server_reply, &be);
      if (!ok && op->resent > 0 && be.code == MONGOC_ERROR_DUPLICATE_KEY) {
         /* As for insert_one: the first attempt was still being applied when the lookup ran. The
          * documents now stored are that attempt's; the rest (an unordered insert, or an ordered
          * one stopped at the duplicate) are inserted once more. */
         mgconn_error lookup;
         uint32_t left = 0;
         mgconn_error_init (&lookup);
         bson_reinit (&found);
         if (stored_ids (op, client, &op->args, &found, &lookup)) {
            for (uint32_t k = 0; k < i; k++) {
               bson_iter_t id;
               if (!(bson_iter_init_find (&id, &aligned[k], "_id") && id_in (&found, bson_iter_value (&id)))) {
                  docs[left++] = &aligned[k];
               }
            }
            bson_destroy (&server_reply);
            if (left == 0) {
               ok = true;
               bson_init (&server_reply);
            } else {
               ok = mongoc_collection_insert_many (coll, docs, left, &opts, &server_reply, &be);
            }
         }
         mgconn_error_cleanup (&lookup);
      }
   }
   bson_destroy (&found);
   bson_destroy (&opts);
   if (ok) {
      bson_append_array_unsafe_begin (reply, "insertedIds", -1, &ids);
      for (uint32_t k = 0; k < i; k++) {
         bson_iter_t id;
         bson_iter_init_find (&id, &aligned[k], "_id");
         append_array_index (&ids, k, bson_iter_value (&id));
      }
      bson_append_array_end (reply, &ids);
   } else {
      mg_driver_failed (error, &be, &server_reply, reply);
   }
   bson_destroy (&server_reply);
   bson_free (aligned);
   bson_free (docs);
   mongoc_collection_destroy (coll);
   return ok;
}

static const mg_op_kind insert_many_kind = {"insert_many", "insertMany", exec_insert_many, true, true,
                                            .idempotent = mg_resend_always, .writes = true, .driver_retry = 1};

int
mgconn_collection_insert_many (mgconn_op **out, mgconn_collection *collection,
                               const uint8_t *documents, size_t documents_len, const uint8_t *opts, size_t opts_len,
                               mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {.coll = collection, .a_name = "the documents", .a = documents, .a_len = documents_len,
                     .a_copied_by_caller = true, .a_stored = true, .opts = opts, .opts_len = opts_len};
   mgconn_op *op;
   bson_t given;
   bson_iter_t it;
   uint32_t i = 0;
   int rc = mg_op_build (&op, NULL, &insert_many_kind, &in, cb, userdata);
   if (rc) {
      return rc;
   }
   /* One copy of each document, `_id` first, straight from the caller's (checked) array into the
    * op's. */
   bson_init_static (&given, documents, documents_len);
   bson_iter_init (&it, &given);
   while (bson_iter_next (&it)) {
      uint32_t len;
      const uint8_t *data;
      bson_t doc, one;
      char buf[16];
      const char *key;
      if (!BSON_ITER_HOLDS_DOCUMENT (&it)) {
         mg_op_unref (op);
         return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "insert_many: element %u of the documents is not a document",
                         i);
      }
      bson_iter_document (&it, &len, &data);
      bson_init_static (&doc, data, len);
      bson_uint32_to_string (i++, &key, buf, sizeof buf);
      bson_append_document_begin (&op->args, key, -1, &one);
      if (with_id (&doc, &one)) {
         add_document_key (op, &doc);
      }
      op->largest_doc = one.len > op->largest_doc ? one.len : op->largest_doc;
      bson_append_document_end (&op->args, &one);
   }
   if (i == 0) {
      mg_op_unref (op);
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "insert_many: the documents are empty");
   }
   return submit_checked (op, out, 'd');
}

/* ---- updates, replace, deletes ---- */

typedef bool (*update_fn) (mongoc_collection_t *, const bson_t *, const bson_t *, const bson_t *, bson_t *,
                           bson_error_t *);
typedef bool (*delete_fn) (mongoc_collection_t *, const bson_t *, const bson_t *, bson_t *, bson_error_t *);

/* update_*, replace_one and delete_*: the same shape around one libmongoc call (an update takes
 * args2, the update or replacement; a delete does not). */
static bool
run_write (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error, update_fn update,
           delete_fn del)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, op->db, op->collection);
   bson_t server_reply;
   bson_error_t be;
   bool ok = update ? update (coll, &op->args, &op->args2, &op->opts, &server_reply, &be)
                    : del (coll, &op->args, &op->opts, &server_reply, &be);
   if (ok) {
      bson_concat (reply, &server_reply);
   } else {
      mg_driver_failed (error, &be, &server_reply, reply);
   }
   bson_destroy (&server_reply);
   mongoc_collection_destroy (coll);
   return ok;
}

static bool
exec_update_one (mgconn_op *op, mongoc_client_t *c, bson_t *r, mgconn_error *e)
{
   return run_write (op, c, r, e, mongoc_collection_update_one, NULL);
}
static bool
exec_update_many (mgconn_op *op, mongoc_client_t *c, bson_t *r, mgconn_error *e)
{
   return run_write (op, c, r, e, mongoc_collection_update_many, NULL);
}
static bool
exec_replace_one (mgconn_op *op, mongoc_client_t *c, bson_t *r, mgconn_error *e)
{
   return run_write (op, c, r, e, mongoc_collection_replace_one, NULL);
}

static const mg_op_kind update_one_kind = {"update_one", "updateOne", exec_update_one, true, false,
                                           .idempotent = update_one_idempotent, .writes = true, .driver_retry = 1};
static const mg_op_kind update_many_kind = {"update_many", "updateMany", exec_update_many, true, false,
                                            .idempotent = update_many_idempotent, .writes = true};
static const mg_op_kind replace_one_kind = {"replace_one", "replaceOne", exec_replace_one, true, false,
                                            .idempotent = pins_one_document, .writes = true, .driver_retry = 1};

static int
start_update (mgconn_op **out, mgconn_connection *conn, const mg_op_kind *kind, mgconn_collection *collection,
              const uint8_t *filter, size_t filter_len, const char *b_name, const uint8_t *b, size_t b_len,
              const uint8_t *opts, size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {.coll = collection, .a_name = "the filter", .a = filter, .a_len = filter_len,
                     .b_name = b_name, .b = b, .b_len = b_len, .opts = opts, .opts_len = opts_len};
   mgconn_op *op;
   int rc = mg_op_build (&op, conn, kind, &in, cb, userdata);
   if (rc) {
      return rc;
   }
   op->largest_doc = op->args2.len;
   add_filter_key (op, &op->args);
   if (kind == &replace_one_kind) {
      add_document_key (op, &op->args2);
   }
   return submit_checked (op, out, kind == &replace_one_kind ? 'r' : 'u');
}

int
mgconn_collection_update_one (mgconn_op **out, mgconn_collection *collection, const uint8_t *filter,
                              size_t filter_len, const uint8_t *update, size_t update_len, const uint8_t *opts,
                              size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   return start_update (out, NULL, &update_one_kind, collection, filter, filter_len, "the update", update, update_len,
                        opts, opts_len, cb, userdata);
}

int
mgconn_collection_update_many (mgconn_op **out, mgconn_collection *collection,
                               const uint8_t *filter, size_t filter_len, const uint8_t *update, size_t update_len,
                               const uint8_t *opts, size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   return start_update (out, NULL, &update_many_kind, collection, filter, filter_len, "the update", update,
                        update_len, opts, opts_len, cb, userdata);
}

int
mgconn_collection_replace_one (mgconn_op **out, mgconn_collection *collection,
                               const uint8_t *filter, size_t filter_len, const uint8_t *replacement,
                               size_t replacement_len, const uint8_t *opts, size_t opts_len, mgconn_op_cb cb,
                               void *userdata)
{
   return start_update (out, NULL, &replace_one_kind, collection, filter, filter_len, "the replacement", replacement,
                        replacement_len, opts, opts_len, cb, userdata);
}

static bool
exec_delete_one (mgconn_op *op, mongoc_client_t *c, bson_t *r, mgconn_error *e)
{
   return run_write (op, c, r, e, NULL, mongoc_collection_delete_one);
}
static bool
exec_delete_many (mgconn_op *op, mongoc_client_t *c, bson_t *r, mgconn_error *e)
{
   return run_write (op, c, r, e, NULL, mongoc_collection_delete_many);
}

static const mg_op_kind delete_one_kind = {"delete_one", "deleteOne", exec_delete_one, true, false,
                                           .idempotent = pins_one_document, .writes = true, .driver_retry = 1};
static const mg_op_kind delete_many_kind = {"delete_many", "deleteMany", exec_delete_many, true, false,
                                            .idempotent = mg_resend_always, .writes = true};

static int
start_delete (mgconn_op **out, const mg_op_kind *kind, mgconn_collection *collection, const uint8_t *filter,
              size_t filter_len, const uint8_t *opts, size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {.coll = collection, .a_name = "the filter", .a = filter, .a_len = filter_len,
                     .opts = opts, .opts_len = opts_len};
   mgconn_op *op;
   int rc = mg_op_build (&op, NULL, kind, &in, cb, userdata);
   if (rc) {
      return rc;
   }
   add_filter_key (op, &op->args);
   return mg_op_submit (op, out);
}

int
mgconn_collection_delete_one (mgconn_op **out, mgconn_collection *collection, const uint8_t *filter,
                              size_t filter_len, const uint8_t *opts, size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   return start_delete (out, &delete_one_kind, collection, filter, filter_len, opts, opts_len, cb, userdata);
}

int
mgconn_collection_delete_many (mgconn_op **out, mgconn_collection *collection,
                               const uint8_t *filter, size_t filter_len, const uint8_t *opts, size_t opts_len,
                               mgconn_op_cb cb, void *userdata)
{
   return start_delete (out, &delete_many_kind, collection, filter, filter_len, opts, opts_len, cb, userdata);
}

/* ---- counts ---- */

static bool
run_count (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error, bool estimated)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, op->db, op->collection);
   bson_t server_reply;
   bson_error_t be;
   int64_t n = estimated ? mongoc_collection_estimated_document_count (coll, &op->opts, NULL, &server_reply, &be)
                         : mongoc_collection_count_documents (coll, &op->args, &op->opts, NULL, &server_reply, &be);
   bool ok = n >= 0;
   if (ok) {
      BSON_APPEND_INT64 (reply, "count", n);
   } else {
      mg_driver_failed (error, &be, &server_reply, reply);
   }
   bson_destroy (&server_reply);
   mongoc_collection_destroy (coll);
   return ok;
}

static bool
exec_count_documents (mgconn_op *op, mongoc_client_t *c, bson_t *r, mgconn_error *e)
{
   return run_count (op, c, r, e, false);
}
static bool
exec_estimated_count (mgconn_op *op, mongoc_client_t *c, bson_t *r, mgconn_error *e)
{
   return run_count (op, c, r, e, true);
}

static const mg_op_kind count_documents_kind = {"count_documents", "countDocuments", exec_count_documents, true,
                                                false, .idempotent = mg_resend_always, .driver_retry = 2};
static const mg_op_kind estimated_count_kind = {"estimated_document_count", "estimatedDocumentCount",
                                                exec_estimated_count, true, false, .idempotent = mg_resend_always,
                                                .driver_retry = 2};

int
mgconn_collection_count_documents (mgconn_op **out, mgconn_collection *collection,
                                   const uint8_t *filter, size_t filter_len, const uint8_t *opts, size_t opts_len,
                                   mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {.coll = collection, .a_name = "the filter", .a = filter, .a_len = filter_len,
                     .a_optional = true, .opts = opts, .opts_len = opts_len};
   return start (out, NULL, &count_documents_kind, &in, cb, userdata);
}

int
mgconn_collection_estimated_document_count (mgconn_op **out, mgconn_collection *collection,
                                            const uint8_t *opts, size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {.coll = collection, .opts = opts, .opts_len = opts_len};
   return start (out, NULL, &estimated_count_kind, &in, cb, userdata);
}

/* ---- indexes, collections, databases ---- */

static bool
exec_create_indexes (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mongoc_database_t *db = mongoc_client_get_database (client, op->db);
   bson_t cmd = BSON_INITIALIZER, server_reply, names;
   bson_error_t be;
   bson_iter_t it, name;
   uint32_t i = 0;
   bool ok;
   BSON_APPEND_UTF8 (&cmd, "createIndexes", op->collection);
   BSON_APPEND_ARRAY (&cmd, "indexes", &op->args);
   ok = mongoc_database_write_command_with_opts (db, &cmd, &op->opts, &server_reply, &be);
   if (ok) {
      bson_concat (reply, &server_reply);
      bson_append_array_unsafe_begin (reply, "names", -1, &names);
      bson_iter_init (&it, &op->args);
      while (bson_iter_next (&it)) {
         if (bson_iter_recurse (&it, &name) && bson_iter_find (&name, "name")) {
            append_array_index (&names, i++, bson_iter_value (&name));
         }
      }
      bson_append_array_end (reply, &names);
   } else {
      mg_driver_failed (error, &be, &server_reply, reply);
   }
   bson_destroy (&server_reply);
   bson_destroy (&cmd);
   mongoc_database_destroy (db);
   return ok;
}

/* Creating an index that exists already succeeds: idempotent. */
static const mg_op_kind create_indexes_kind = {"create_indexes", "createIndexes", exec_create_indexes, true, true,
                                               .idempotent = mg_resend_always, .writes = true};

/* Index models with a "name" made from their keys where they have none ("name_1_score_-1").
 * Used by create_indexes and by a model's autoIndex. */
int
mg_named_indexes (const bson_t *models, bson_t *out)
{
   bson_iter_t it;
   uint32_t i = 0;
   bson_iter_init (&it, models);
   while (bson_iter_next (&it)) {
      bson_t model, named = BSON_INITIALIZER, keys;
      bson_iter_t k;
      uint32_t len;
      const uint8_t *data;
      char buf[16];
      const char *key;
      if (!BSON_ITER_HOLDS_DOCUMENT (&it)) {
         bson_destroy (&named);
         return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "create_indexes: index %u is not a document", i);
      }
      bson_iter_document (&it, &len, &data);
      bson_init_static (&model, data, len);
      if (!bson_iter_init_find (&k, &model, "key") || !BSON_ITER_HOLDS_DOCUMENT (&k)) {
         bson_destroy (&named);
         return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "create_indexes: index %u has no \"key\" document", i);
      }
      bson_concat (&named, &model);
      if (!bson_iter_init_find (&k, &model, "name")) {
         bson_iter_init_find (&k, &model, "key");
         bson_iter_document (&k, &len, &data);
         bson_init_static (&keys, data, len);
         char *generated = mongoc_collection_keys_to_index_string (&keys);
         BSON_APPEND_UTF8 (&named, "name", generated ? generated : "index");
         bson_free (generated);
      }
      bson_uint32_to_string (i++, &key, buf, sizeof buf);
      BSON_APPEND_DOCUMENT (out, key, &named);
      bson_destroy (&named);
   }
   return i ? 0 : mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "create_indexes: no index given");
}

int
mgconn_collection_create_indexes (mgconn_op **out, mgconn_collection *collection,
                                  const uint8_t *indexes, size_t indexes_len, const uint8_t *opts, size_t opts_len,
                                  mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {.coll = collection, .a_name = "the indexes", .a = indexes, .a_len = indexes_len,
                     .opts = opts, .opts_len = opts_len};
   mgconn_op *op;
   bson_t named = BSON_INITIALIZER;
   int rc = mg_op_build (&op, NULL, &create_indexes_kind, &in, cb, userdata);
   if (rc == 0 && (rc = mg_named_indexes (&op->args, &named)) != 0) {
      mg_op_unref (op);
   }
   if (rc) {
      bson_destroy (&named);
      return rc;
   }
   bson_destroy (&op->args);
   bson_steal (&op->args, &named);
   return mg_op_submit (op, out);
}

static bool
exec_drop (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, op->db, op->collection);
   bson_error_t be;
   bool ok = mongoc_collection_drop_with_opts (coll, &op->opts, &be);
   (void) reply;
   if (!ok && be.code == 26) { /* NamespaceNotFound: dropping what is not there is done */
      ok = true;
   }
   if (!ok) {
      mg_error_from_driver (error, &be, NULL);
   }
   mongoc_collection_destroy (coll);
   return ok;
}

static const mg_op_kind drop_kind = {"drop", "drop", exec_drop, true, false, .idempotent = mg_resend_always,
                                     .writes = true};

int
mgconn_collection_drop (mgconn_op **out, mgconn_collection *collection, mgconn_op_cb cb,
                        void *userdata)
{
   mg_op_input in = {.coll = collection};
   if (!collection) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "drop: the collection name is NULL");
   }
   return start (out, NULL, &drop_kind, &in, cb, userdata);
}

static bool
exec_create_collection (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mongoc_database_t *db = mongoc_client_get_database (client, op->db);
   bson_error_t be;
   mongoc_collection_t *coll = mongoc_database_create_collection (db, op->collection, &op->opts, &be);
   (void) reply;
   if (!coll && op->resent > 0 && be.code == 48) { /* NamespaceExists: the first attempt made it */
      mongoc_database_destroy (db);
      return true;
   }
   if (coll) {
      mongoc_collection_destroy (coll);
   } else {
      mg_error_from_driver (error, &be, NULL);
   }
   mongoc_database_destroy (db);
   return coll != NULL;
}

static const mg_op_kind mg_create_collection_kind = {"create_collection", "createCollection", exec_create_collection,
                                                     true, false, .idempotent = mg_resend_always, .writes = true};

int
mgconn_connection_create_collection (mgconn_op **out, mgconn_connection *conn, const char *name,
                                     const uint8_t *opts, size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {.collection = name, .opts = opts, .opts_len = opts_len};
   if (!name) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "create_collection: the collection name is NULL");
   }
   return start (out, conn, &mg_create_collection_kind, &in, cb, userdata);
}

static bool
exec_drop_database (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mongoc_database_t *db = mongoc_client_get_database (client, op->db);
   bson_error_t be;
   bool ok = mongoc_database_drop_with_opts (db, NULL, &be);
   (void) reply;
   if (!ok) {
      mg_error_from_driver (error, &be, NULL);
   }
   mongoc_database_destroy (db);
   return ok;
}

static const mg_op_kind drop_database_kind = {"drop_database", "dropDatabase", exec_drop_database, true, false,
                                              .idempotent = mg_resend_always, .writes = true};

int
mgconn_connection_drop_database (mgconn_op **out, mgconn_connection *conn, mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {0};
   return start (out, conn, &drop_database_kind, &in, cb, userdata);
}
