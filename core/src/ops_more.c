/*
 * ops_more.c: the operations beyond single-document CRUD: bulk_write, find_one_and_update /
 * _replace / _delete (findAndModify) and distinct (the index and namespace ones are in
 * ops_admin.c). Each is one mg_op_kind (its spelling in both hosts, its exec on a worker, and its
 * re-send rule, documented in docs/guide.md "What survives an outage") and one public entry point
 * that checks its input on the host thread; all are buffered like every other operation.
 */
#include "connection.h"
#include "doc_keys.h"
#include "ops.h"
#include "session.h"

#include <string.h>

/* ---- shared by the kinds below ---- */

static void
append_index_doc (bson_t *array, uint32_t i, const bson_t *doc)
{
   char buf[16];
   const char *key;
   size_t len = bson_uint32_to_string (i, &key, buf, sizeof buf);
   bson_append_document (array, key, (int) len, doc);
}

/* ---- bulk_write ---- */

/* requests: a BSON array of Mongoose's shapes, the form both hosts map onto:
 * {"insertOne": {"document": d}}, {"updateOne" | "updateMany": {"filter", "update", "upsert",
 * "arrayFilters", "collation", "hint"}}, {"replaceOne": {"filter", "replacement", "upsert"}},
 * {"deleteOne" | "deleteMany": {"filter", "collation", "hint"}}. Checked on the host thread; an
 * insert's document gets its ObjectId `_id` there, so the reply can name it. */

static const char *const bulk_names[] = {"insertOne", "updateOne", "updateMany", "replaceOne", "deleteOne",
                                         "deleteMany"};

static int
bulk_kind_of (const char *key)
{
   for (int i = 0; i < 6; i++) {
      if (strcmp (key, bulk_names[i]) == 0) {
         return i;
      }
   }
   return -1;
}

static bool
sub_doc (const bson_t *parent, const char *key, bson_t *out)
{
   bson_iter_t it;
   uint32_t len;
   const uint8_t *data;
   if (!bson_iter_init_find (&it, parent, key)) {
      return false;
   }
   if (BSON_ITER_HOLDS_DOCUMENT (&it)) {
      bson_iter_document (&it, &len, &data);
   } else if (BSON_ITER_HOLDS_ARRAY (&it) && strcmp (key, "update") == 0) {
      bson_iter_array (&it, &len, &data); /* an update pipeline: libmongoc takes it as is */
   } else {
      return false;
   }
   return bson_init_static (out, data, len);
}

/* The request's options other than the named documents, for libmongoc's *_with_opts. */
static void
request_opts (const bson_t *body, bson_t *opts)
{
   bson_copy_to_excluding_noinit (body, opts, "filter", "update", "replacement", "document", NULL);
}

static bool
exec_bulk_write (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, op->db, op->collection);
   bson_t bulk_opts;
   mongoc_bulk_operation_t *bulk =
      mongoc_collection_create_bulk_operation_with_opts (coll, mg_op_driver_opts (op, &bulk_opts));
   bson_t server_reply, ids, upserted;
   bson_error_t be;
   bson_iter_t it, u;
   bool ok = true;
   bson_destroy (&bulk_opts); /* parsed into the bulk operation */
   bson_append_document_begin (reply, "insertedIds", -1, &ids);
   bson_iter_init (&it, &op->args);
   for (uint32_t i = 0; ok && bson_iter_next (&it); i++) {
      bson_t req, body, filter, doc, opts = BSON_INITIALIZER;
      bson_iter_t first, id;
      uint32_t len;
      const uint8_t *data;
      char buf[16];
      const char *key;
      bson_iter_document (&it, &len, &data);
      bson_init_static (&req, data, len);
      bson_iter_init (&first, &req);
      bson_iter_next (&first);
      int kind = bulk_kind_of (bson_iter_key (&first));
      bson_iter_document (&first, &len, &data);
      bson_init_static (&body, data, len);
      request_opts (&body, &opts);
      switch (kind) {
      case 0:
         sub_doc (&body, "document", &doc);
         ok = mongoc_bulk_operation_insert_with_opts (bulk, &doc, NULL, &be);
         bson_iter_init_find (&id, &doc, "_id");
         bson_uint32_to_string (i, &key, buf, sizeof buf);
         bson_append_value (&ids, key, -1, bson_iter_value (&id));
         break;
      case 1:
      case 2:
         sub_doc (&body, "filter", &filter);
         sub_doc (&body, "update", &doc);
         ok = kind == 1 ? mongoc_bulk_operation_update_one_with_opts (bulk, &filter, &doc, &opts, &be)
                        : mongoc_bulk_operation_update_many_with_opts (bulk, &filter, &doc, &opts, &be);
         break;
      case 3:
         sub_doc (&body, "filter", &filter);
         sub_doc (&body, "replacement", &doc);
         ok = mongoc_bulk_operation_replace_one_with_opts (bulk, &filter, &doc, &opts, &be);
         break;
      default:
         sub_doc (&body, "filter", &filter);
         ok = kind == 4 ? mongoc_bulk_operation_remove_one_with_opts (bulk, &filter, &opts, &be)
                        : mongoc_bulk_operation_remove_many_with_opts (bulk, &filter, &opts, &be);
      }
      bson_destroy (&opts);
   }
   bson_append_document_end (reply, &ids);
   if (!ok) { /* a request libmongoc refused before sending (checked again here: nothing was sent) */
      bson_reinit (reply);
      mg_error_from_driver (error, &be, NULL);
      mongoc_bulk_operation_destroy (bulk);
      mongoc_collection_destroy (coll);
      return false;
   }
   ok = mongoc_bulk_operation_execute (bulk, &server_reply, &be) != 0;
   if (ok) {
      bson_iter_t f;
      BSON_APPEND_INT32 (reply, "insertedCount", bson_iter_init_find (&f, &server_reply, "nInserted") ? bson_iter_as_int64 (&f) : 0);
      BSON_APPEND_INT32 (reply, "matchedCount", bson_iter_init_find (&f, &server_reply, "nMatched") ? bson_iter_as_int64 (&f) : 0);
      BSON_APPEND_INT32 (reply, "modifiedCount", bson_iter_init_find (&f, &server_reply, "nModified") ? bson_iter_as_int64 (&f) : 0);
      BSON_APPEND_INT32 (reply, "deletedCount", bson_iter_init_find (&f, &server_reply, "nRemoved") ? bson_iter_as_int64 (&f) : 0);
      BSON_APPEND_INT32 (reply, "upsertedCount", bson_iter_init_find (&f, &server_reply, "nUpserted") ? bson_iter_as_int64 (&f) : 0);
      /* {"<index>": id} for each upsert, as Mongoose's upsertedIds and PyMongo's upserted_ids */
      bson_append_document_begin (reply, "upsertedIds", -1, &upserted);
      if (bson_iter_init_find (&f, &server_reply, "upserted") && bson_iter_recurse (&f, &u)) {
         while (bson_iter_next (&u)) {
            bson_iter_t e, idx, id;
            char buf[16];
            const char *key;
            if (bson_iter_recurse (&u, &e) && bson_iter_find (&e, "index") && bson_iter_recurse (&u, &id) &&
                bson_iter_find (&id, "_id")) {
               idx = e;
               bson_uint32_to_string ((uint32_t) bson_iter_as_int64 (&idx), &key, buf, sizeof buf);
               bson_append_value (&upserted, key, -1, bson_iter_value (&id));
            }
         }
      }
      bson_append_document_end (reply, &upserted);
   } else {
      bson_reinit (reply);
      mg_driver_failed (error, &be, &server_reply, reply);
   }
   bson_destroy (&server_reply);
   mongoc_bulk_operation_destroy (bulk);
   mongoc_collection_destroy (coll);
   return ok;
}

/* Never sent again once it may have reached the server: which of its requests ran is unknown, and
 * a write's outcome is then OutcomeUnknown (buffer.c). */
static const mg_op_kind bulk_write_kind = {"bulk_write", "bulkWrite", exec_bulk_write, true, true,
                                           .idempotent = NULL, .writes = true, .takes_session = true};

static int
check_request (const bson_t *req, uint32_t i, bson_t *out)
{
   bson_iter_t it;
   bson_t body, part;
   int kind;
   uint32_t len;
   const uint8_t *data;
   if (!bson_iter_init (&it, req) || !bson_iter_next (&it) || (kind = bulk_kind_of (bson_iter_key (&it))) < 0) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT,
                      "bulk_write: request %u is not one of insertOne, updateOne, updateMany, replaceOne, deleteOne, "
                      "deleteMany",
                      i);
   }
   if (!BSON_ITER_HOLDS_DOCUMENT (&it)) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "bulk_write: request %u (%s) is not a document", i,
                      bulk_names[kind]);
   }
   bson_iter_document (&it, &len, &data);
   bson_init_static (&body, data, len);
   if (kind == 0) {
      bson_t with = BSON_INITIALIZER, inner = BSON_INITIALIZER;
      bson_iter_t id;
      if (!sub_doc (&body, "document", &part)) {
         return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "bulk_write: request %u (insertOne) has no document", i);
      }
      if (!bson_iter_init_find (&id, &part, "_id")) {
         bson_oid_t oid;
         bson_oid_init (&oid, NULL);
         BSON_APPEND_OID (&inner, "_id", &oid);
      }
      bson_concat (&inner, &part);
      BSON_APPEND_DOCUMENT (&with, "document", &inner);
      BSON_APPEND_DOCUMENT (out, "insertOne", &with);
      bson_destroy (&inner);
      bson_destroy (&with);
      return 0;
   }
   if (!sub_doc (&body, "filter", &part)) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "bulk_write: request %u (%s) has no filter", i,
                      bulk_names[kind]);
   }
   if ((kind == 1 || kind == 2) && !sub_doc (&body, "update", &part)) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "bulk_write: request %u (%s) has no update", i,
                      bulk_names[kind]);
   }
   if (kind == 3 && !sub_doc (&body, "replacement", &part)) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "bulk_write: request %u (replaceOne) has no replacement", i);
   }
   bson_concat (out, req);
   return 0;
}

int
mgconn_collection_bulk_write (mgconn_op **out, mgconn_collection *collection, const uint8_t *requests,
                              size_t requests_len, const uint8_t *opts, size_t opts_len, mgconn_op_cb cb,
                              void *userdata)
{
   mg_op_input in = {.coll = collection, .a_name = "the requests", .a = requests, .a_len = requests_len,
                     .opts = opts, .opts_len = opts_len};
   mgconn_op *op;
   bson_t checked = BSON_INITIALIZER;
   bson_iter_t it;
   uint32_t i = 0;
   int rc = mg_op_build (&op, NULL, &bulk_write_kind, &in, cb, userdata);
   if (rc) {
      bson_destroy (&checked);
      return rc;
   }
   bson_iter_init (&it, &op->args);
   while (bson_iter_next (&it)) {
      bson_t req, one = BSON_INITIALIZER;
      uint32_t len;
      const uint8_t *data;
      if (!BSON_ITER_HOLDS_DOCUMENT (&it)) {
         rc = mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "bulk_write: request %u is not a document", i);
      } else {
         bson_iter_document (&it, &len, &data);
         bson_init_static (&req, data, len);
         rc = check_request (&req, i, &one);
      }
      if (rc) {
         bson_destroy (&one);
         bson_destroy (&checked);
         mg_op_unref (op);
         return rc;
      }
      op->largest_doc = one.len > op->largest_doc ? one.len : op->largest_doc;
      append_index_doc (&checked, i++, &one);
      bson_destroy (&one);
   }
   if (i == 0) {
      bson_destroy (&checked);
      mg_op_unref (op);
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "bulk_write: the requests are empty");
   }
   bson_destroy (&op->args);
   bson_steal (&op->args, &checked);
   return mg_op_submit (op, out);
}

/* ---- find_one_and_update / _replace / _delete ---- */

/* opts as the server's findAndModify takes them: "new" (true: the document after the change),
 * "fields" (a projection), "sort", "upsert", plus collation, hint, maxTimeMS, comment.
 * Reply: {"document": the document, or null when nothing matched}. */
static bool
exec_find_and_modify (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mongoc_database_t *db = mongoc_client_get_database (client, op->db);
   bson_t cmd = BSON_INITIALIZER, server_reply;
   bson_error_t be;
   bson_iter_t it;
   bool ok;
   BSON_APPEND_UTF8 (&cmd, "findAndModify", op->collection);
   BSON_APPEND_DOCUMENT (&cmd, "query", &op->args);
   if (strcmp (op->kind->snake, "find_one_and_delete") == 0) {
      BSON_APPEND_BOOL (&cmd, "remove", true);
   } else if (bson_iter_init (&it, &op->args2) && bson_iter_next (&it) && strcmp (bson_iter_key (&it), "0") == 0) {
      BSON_APPEND_ARRAY (&cmd, "update", &op->args2); /* an update pipeline */
   } else {
      BSON_APPEND_DOCUMENT (&cmd, "update", &op->args2);
   }
   bson_concat (&cmd, &op->opts);
   ok = mongoc_database_write_command_with_opts (db, &cmd, mg_op_session_opts (op), &server_reply, &be);
   if (ok) {
      if (bson_iter_init_find (&it, &server_reply, "value") && BSON_ITER_HOLDS_DOCUMENT (&it)) {
         bson_append_value (reply, "document", -1, bson_iter_value (&it));
      } else {
         BSON_APPEND_NULL (reply, "document");
      }
   } else {
      mg_driver_failed (error, &be, &server_reply, reply);
   }
   bson_destroy (&server_reply);
   bson_destroy (&cmd);
   mongoc_database_destroy (db);
   return ok;
}

static bool
returns_after (const mgconn_op *op)
{
   bson_iter_t it;
   return bson_iter_init_find (&it, &op->opts, "new") && bson_iter_as_bool (&it);
}

/* A second run gives the same answer only when it acts on the same document (one `_id` in the
 * filter), changes it no further (idempotent operators, or a replacement) and returns the document
 * after the change: the document before it would be the first run's result. */
static bool
find_one_and_update_idempotent (const mgconn_op *op, const char **why_not)
{
   bson_iter_t id;
   if (!returns_after (op)) {
      *why_not = "it returns the document before the change, which a second run would not see";
      return false;
   }
   if (!mg_filter_pins_id (&op->args, &id)) {
      *why_not = "its filter does not name one `_id`, so a second run could act on another document";
      return false;
   }
   return strcmp (op->kind->snake, "find_one_and_replace") == 0 || mg_update_is_idempotent (&op->args2, why_not);
}

static bool
find_one_and_delete_idempotent (const mgconn_op *op, const char **why_not)
{
   (void) op;
   *why_not = "a second run would find the document gone and return nothing, or delete another one";
   return false;
}

static const mg_op_kind find_one_and_update_kind = {"find_one_and_update", "findOneAndUpdate", exec_find_and_modify,
                                                    true, false, .idempotent = find_one_and_update_idempotent,
                                                    .writes = true, .takes_session = true};
static const mg_op_kind find_one_and_replace_kind = {"find_one_and_replace", "findOneAndReplace",
                                                     exec_find_and_modify, true, false,
                                                     .idempotent = find_one_and_update_idempotent, .writes = true, .takes_session = true};
static const mg_op_kind find_one_and_delete_kind = {"find_one_and_delete", "findOneAndDelete", exec_find_and_modify,
                                                    true, false, .idempotent = find_one_and_delete_idempotent,
                                                    .writes = true, .takes_session = true};

static int
start_find_and_modify (mgconn_op **out, const mg_op_kind *kind, mgconn_collection *collection, const uint8_t *filter,
                       size_t filter_len, const char *b_name, const uint8_t *b, size_t b_len, const uint8_t *opts,
                       size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {.coll = collection, .a_name = "the filter", .a = filter, .a_len = filter_len, .a_optional = true,
                     .b_name = b_name, .b = b, .b_len = b_len, .opts = opts, .opts_len = opts_len};
   mgconn_op *op;
   bson_iter_t id;
   int rc = mg_op_build (&op, NULL, kind, &in, cb, userdata);
   if (rc) {
      return rc;
   }
   op->largest_doc = op->args2.len;
   if (mg_filter_pins_id (&op->args, &id)) {
      mg_op_add_doc_key (op, bson_iter_value (&id));
   }
   return mg_op_submit (op, out);
}

int
mgconn_collection_find_one_and_update (mgconn_op **out, mgconn_collection *collection, const uint8_t *filter,
                                       size_t filter_len, const uint8_t *update, size_t update_len,
                                       const uint8_t *opts, size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   return start_find_and_modify (out, &find_one_and_update_kind, collection, filter, filter_len, "the update", update,
                                 update_len, opts, opts_len, cb, userdata);
}

int
mgconn_collection_find_one_and_replace (mgconn_op **out, mgconn_collection *collection, const uint8_t *filter,
                                        size_t filter_len, const uint8_t *replacement, size_t replacement_len,
                                        const uint8_t *opts, size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   return start_find_and_modify (out, &find_one_and_replace_kind, collection, filter, filter_len, "the replacement",
                                 replacement, replacement_len, opts, opts_len, cb, userdata);
}

int
mgconn_collection_find_one_and_delete (mgconn_op **out, mgconn_collection *collection, const uint8_t *filter,
                                       size_t filter_len, const uint8_t *opts, size_t opts_len, mgconn_op_cb cb,
                                       void *userdata)
{
   return start_find_and_modify (out, &find_one_and_delete_kind, collection, filter, filter_len, NULL, NULL, 0, opts,
                                 opts_len, cb, userdata);
}

/* ---- distinct ---- */

static bool
exec_distinct (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mongoc_database_t *db = mongoc_client_get_database (client, op->db);
   bson_t cmd = BSON_INITIALIZER, server_reply;
   bson_error_t be;
   bson_iter_t it;
   bool ok;
   BSON_APPEND_UTF8 (&cmd, "distinct", op->collection);
   bson_concat (&cmd, &op->opts); /* "key", and collation, maxTimeMS, comment */
   BSON_APPEND_DOCUMENT (&cmd, "query", &op->args);
   ok = mongoc_database_read_command_with_opts (db, &cmd, NULL, mg_op_session_opts (op), &server_reply, &be);
   if (ok && bson_iter_init_find (&it, &server_reply, "values") && BSON_ITER_HOLDS_ARRAY (&it)) {
      bson_append_value (reply, "values", -1, bson_iter_value (&it));
   } else if (ok) {
      bson_t empty = BSON_INITIALIZER;
      BSON_APPEND_ARRAY (reply, "values", &empty);
      bson_destroy (&empty);
   } else {
      mg_driver_failed (error, &be, &server_reply, reply);
   }
   bson_destroy (&server_reply);
   bson_destroy (&cmd);
   mongoc_database_destroy (db);
   return ok;
}

static const mg_op_kind distinct_kind = {"distinct", "distinct", exec_distinct, true, false,
                                         .idempotent = mg_resend_always, .driver_retry = 2, .takes_session = true};

int
mgconn_collection_distinct (mgconn_op **out, mgconn_collection *collection, const uint8_t *filter, size_t filter_len,
                            const uint8_t *opts, size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {.coll = collection, .a_name = "the filter", .a = filter, .a_len = filter_len, .a_optional = true,
                     .opts = opts, .opts_len = opts_len};
   mgconn_op *op;
   bson_iter_t it;
   int rc = mg_op_build (&op, NULL, &distinct_kind, &in, cb, userdata);
   if (rc) {
      return rc;
   }
   if (!bson_iter_init_find (&it, &op->opts, "key") || !BSON_ITER_HOLDS_UTF8 (&it) || !*bson_iter_utf8 (&it, NULL)) {
      mg_op_unref (op);
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "distinct: the field name (option \"key\") must be a non-empty string");
   }
   return mg_op_submit (op, out);
}

