/*
 * ops.c: run_command and the single-collection writes: inserts, updates, replacements, deletes.
 * Each public function checks its input on the host thread (op_input.c: nothing is queued when
 * the input is bad) and submits an op; each exec function runs on a worker with a pooled client
 * and turns libmongoc's answer into a reply or an mgconn_error. Queries and their cursors are in
 * cursor.c; counts, indexes and namespaces in ops_admin.c; bulk_write, findAndModify and distinct
 * in ops_more.c.
 */
#include "connection.h"
#include "ops.h"
#include "session.h"

#include <string.h>

/* ---- run_command ---- */

static bool
exec_run_command (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   bson_error_t be;
   bson_t server_reply, opts;
   bool ok = mongoc_client_command_with_opts (client, op->db, &op->args, NULL, mg_op_driver_opts (op, &opts),
                                              &server_reply, &be);
   if (ok) {
      bson_concat (reply, &server_reply);
   } else {
      mg_driver_failed (error, &be, &server_reply, reply);
   }
   bson_destroy (&server_reply);
   bson_destroy (&opts);
   return ok;
}

static const mg_op_kind run_command_kind = {"run_command", "runCommand", exec_run_command, true, false,
                                            .idempotent = mg_resend_run_command, .takes_session = true};

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
   op->writes = !mg_command_is_read_only (&op->args);
   return mg_op_submit (op, out);
}

/* ---- inserts ---- */

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

/* The options an insert hands libmongoc: the caller's, and, unless the caller chose otherwise,
 * "validate": false: mg_op_build checked the documents for what libmongoc would (empty keys), so
 * libmongoc need not walk them again. Kept out of op->opts so that debug lines show what was given. */
static void
insert_opts (const mgconn_op *op, bson_t *out)
{
   bson_iter_t it;
   bson_init (out);
   bson_concat (out, &op->opts);
   bson_concat (out, mg_op_session_opts (op));
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
      if (!mg_insert_stored_ids (op, client, &one, &found, error)) {
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
         if (mg_insert_stored_ids (op, client, &one, &found, &lookup) && !bson_empty (&found)) {
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
                                           .idempotent = mg_resend_always, .writes = true, .driver_retry = 1, .takes_session = true};

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
      mg_op_add_document_key (op, &op->args); /* a `_id` mgconn made names no document of another op */
   }
   return mg_op_submit_checked (op, out, 'd');
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
   if (op->resent > 0 && !mg_insert_stored_ids (op, client, &op->args, &found, error)) {
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
          mg_ids_contain (&found, bson_iter_value (&id))) {
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
         if (mg_insert_stored_ids (op, client, &op->args, &found, &lookup)) {
            for (uint32_t k = 0; k < i; k++) {
               bson_iter_t id;
               if (!(bson_iter_init_find (&id, &aligned[k], "_id") && mg_ids_contain (&found, bson_iter_value (&id)))) {
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
         mg_append_array_value (&ids, k, bson_iter_value (&id));
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
                                            .idempotent = mg_resend_always, .writes = true, .driver_retry = 1, .takes_session = true};

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
         mg_op_add_document_key (op, &doc);
      }
      op->largest_doc = one.len > op->largest_doc ? one.len : op->largest_doc;
      bson_append_document_end (&op->args, &one);
   }
   if (i == 0) {
      mg_op_unref (op);
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "insert_many: the documents are empty");
   }
   return mg_op_submit_checked (op, out, 'd');
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
   bson_t server_reply, storage;
   bson_error_t be;
   const bson_t *opts = mg_op_driver_opts (op, &storage);
   bool ok = update ? update (coll, &op->args, &op->args2, opts, &server_reply, &be)
                    : del (coll, &op->args, opts, &server_reply, &be);
   bson_destroy (&storage);
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
                                           .idempotent = mg_resend_update_one, .writes = true, .driver_retry = 1, .takes_session = true};
static const mg_op_kind update_many_kind = {"update_many", "updateMany", exec_update_many, true, false,
                                            .idempotent = mg_resend_update_many, .writes = true, .takes_session = true};
static const mg_op_kind replace_one_kind = {"replace_one", "replaceOne", exec_replace_one, true, false,
                                            .idempotent = mg_resend_pins_one_document, .writes = true, .driver_retry = 1, .takes_session = true};

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
   mg_op_add_filter_key (op, &op->args);
   if (kind == &replace_one_kind) {
      mg_op_add_document_key (op, &op->args2);
   }
   return mg_op_submit_checked (op, out, kind == &replace_one_kind ? 'r' : 'u');
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
                                           .idempotent = mg_resend_pins_one_document, .writes = true, .driver_retry = 1, .takes_session = true};
static const mg_op_kind delete_many_kind = {"delete_many", "deleteMany", exec_delete_many, true, false,
                                            .idempotent = mg_resend_always, .writes = true, .takes_session = true};

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
   mg_op_add_filter_key (op, &op->args);
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
