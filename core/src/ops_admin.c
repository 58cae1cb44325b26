/*
 * ops_admin.c: counts, and the index and namespace operations: count_documents,
 * estimated_document_count, create_indexes, list_indexes, drop_indexes, a model's sync_indexes,
 * drop, create_collection, drop_database, list_collections and list_databases. Each is one mg_op_kind (its spelling in both
 * hosts, its exec on a worker, its re-send rule, documented in docs/guide.md "What survives an
 * outage") and one public entry point that checks its input on the host thread; all are buffered
 * like every other operation.
 */
#include "connection.h"
#include "ops.h"
#include "session.h"

#include <string.h>

/* Every document of a cursor into `reply[field]` (an array); false with error set on failure. */
static bool
drain (mongoc_cursor_t *cursor, bson_t *reply, const char *field, mgconn_error *error)
{
   bson_t array;
   const bson_t *doc;
   bson_error_t be;
   const bson_t *server_reply = NULL;
   uint32_t i = 0;
   bson_append_array_unsafe_begin (reply, field, -1, &array);
   while (mongoc_cursor_next (cursor, &doc)) {
      char buf[16];
      const char *key;
      size_t len = bson_uint32_to_string (i++, &key, buf, sizeof buf);
      bson_append_document (&array, key, (int) len, doc);
   }
   bson_append_array_end (reply, &array);
   if (mongoc_cursor_error_document (cursor, &be, &server_reply)) {
      bson_reinit (reply);
      mg_error_from_driver (error, &be, server_reply);
      return false;
   }
   return true;
}

/* ---- indexes ---- */

static bool
exec_list_indexes (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, op->db, op->collection);
   mongoc_cursor_t *cursor = mongoc_collection_find_indexes_with_opts (coll, &op->opts);
   bool ok = drain (cursor, reply, "indexes", error);
   if (!ok && error->code == 26) { /* NamespaceNotFound: a collection that is not there has none */
      bson_t empty = BSON_INITIALIZER;
      mgconn_error_cleanup (error);
      BSON_APPEND_ARRAY (reply, "indexes", &empty);
      bson_destroy (&empty);
      ok = true;
   }
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (coll);
   return ok;
}

static const mg_op_kind list_indexes_kind = {"list_indexes", "listIndexes", exec_list_indexes, true, false,
                                             .idempotent = mg_resend_always, .driver_retry = 2};

int
mgconn_collection_list_indexes (mgconn_op **out, mgconn_collection *collection, const uint8_t *opts, size_t opts_len,
                                mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {.coll = collection, .opts = opts, .opts_len = opts_len};
   return mg_op_start (out, NULL, &list_indexes_kind, &in, cb, userdata);
}

static bool
exec_drop_indexes (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mongoc_database_t *db = mongoc_client_get_database (client, op->db);
   bson_t cmd = BSON_INITIALIZER, server_reply;
   bson_error_t be;
   bson_iter_t it;
   bool ok;
   BSON_APPEND_UTF8 (&cmd, "dropIndexes", op->collection);
   if (!bson_iter_init_find (&it, &op->opts, "index")) {
      BSON_APPEND_UTF8 (&cmd, "index", "*");
   }
   bson_concat (&cmd, &op->opts);
   ok = mongoc_database_write_command_with_opts (db, &cmd, NULL, &server_reply, &be);
   if (!ok && op->resent > 0 && be.code == 27) { /* IndexNotFound after a re-send: the first attempt dropped it */
      ok = true;
   }
   if (!ok) {
      mg_driver_failed (error, &be, &server_reply, reply);
   }
   bson_destroy (&server_reply);
   bson_destroy (&cmd);
   mongoc_database_destroy (db);
   return ok;
}

/* Dropping what is gone is a no-op (IndexNotFound after a re-send counts as done). */
static const mg_op_kind drop_indexes_kind = {"drop_indexes", "dropIndexes", exec_drop_indexes, true, false,
                                             .idempotent = mg_resend_always, .writes = true};

int
mgconn_collection_drop_indexes (mgconn_op **out, mgconn_collection *collection, const uint8_t *opts, size_t opts_len,
                                mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {.coll = collection, .opts = opts, .opts_len = opts_len};
   mgconn_op *op;
   bson_iter_t it;
   int rc = mg_op_build (&op, NULL, &drop_indexes_kind, &in, cb, userdata);
   if (rc) {
      return rc;
   }
   if (bson_iter_init_find (&it, &op->opts, "index") &&
       !((BSON_ITER_HOLDS_UTF8 (&it) && *bson_iter_utf8 (&it, NULL)) || BSON_ITER_HOLDS_DOCUMENT (&it))) {
      mg_op_unref (op);
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT,
                      "drop_indexes: the option \"index\" must be an index name or its keys document");
   }
   return mg_op_submit (op, out);
}

/* ---- collections and databases ---- */

static bool
exec_list_collections (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mongoc_database_t *db = mongoc_client_get_database (client, op->db);
   bson_t opts = BSON_INITIALIZER;
   mongoc_cursor_t *cursor;
   bool ok;
   if (!bson_empty (&op->args)) {
      BSON_APPEND_DOCUMENT (&opts, "filter", &op->args);
   }
   bson_concat (&opts, &op->opts);
   cursor = mongoc_database_find_collections_with_opts (db, &opts);
   ok = drain (cursor, reply, "collections", error);
   mongoc_cursor_destroy (cursor);
   bson_destroy (&opts);
   mongoc_database_destroy (db);
   return ok;
}

static const mg_op_kind list_collections_kind = {"list_collections", "listCollections", exec_list_collections, true,
                                                 false, .idempotent = mg_resend_always, .driver_retry = 2};

int
mgconn_connection_list_collections (mgconn_op **out, mgconn_connection *conn, const uint8_t *filter,
                                    size_t filter_len, const uint8_t *opts, size_t opts_len, mgconn_op_cb cb,
                                    void *userdata)
{
   mg_op_input in = {.a_name = "the filter", .a = filter, .a_len = filter_len, .a_optional = true, .opts = opts,
                     .opts_len = opts_len};
   return mg_op_start (out, conn, &list_collections_kind, &in, cb, userdata);
}

static bool
exec_list_databases (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   bson_t cmd = BSON_INITIALIZER, server_reply;
   bson_error_t be;
   bool ok;
   BSON_APPEND_INT32 (&cmd, "listDatabases", 1);
   bson_concat (&cmd, &op->opts); /* filter, nameOnly */
   ok = mongoc_client_read_command_with_opts (client, "admin", &cmd, NULL, NULL, &server_reply, &be);
   if (ok) {
      bson_copy_to_excluding_noinit (&server_reply, reply, "ok", "$clusterTime", "operationTime", NULL);
   } else {
      mg_driver_failed (error, &be, &server_reply, reply);
   }
   bson_destroy (&server_reply);
   bson_destroy (&cmd);
   return ok;
}

static const mg_op_kind list_databases_kind = {"list_databases", "listDatabases", exec_list_databases, true, false,
                                               .idempotent = mg_resend_always, .driver_retry = 2};

int
mgconn_connection_list_databases (mgconn_op **out, mgconn_connection *conn, const uint8_t *opts, size_t opts_len,
                                  mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {.opts = opts, .opts_len = opts_len};
   return mg_op_start (out, conn, &list_databases_kind, &in, cb, userdata);
}

/* ---- a model's syncIndexes ---- */

static bool
name_in (const bson_t *models, const char *name)
{
   bson_iter_t it, n;
   bson_iter_init (&it, models);
   while (bson_iter_next (&it)) {
      if (bson_iter_recurse (&it, &n) && bson_iter_find (&n, "name") && BSON_ITER_HOLDS_UTF8 (&n) &&
          strcmp (bson_iter_utf8 (&n, NULL), name) == 0) {
         return true;
      }
   }
   return false;
}

/* args: the schema's index models, named. Creates them, then drops every other index but _id_.
 * Reply: {"dropped": [names]}. */
static bool
exec_sync_indexes (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mongoc_database_t *db = mongoc_client_get_database (client, op->db);
   mongoc_collection_t *coll = mongoc_client_get_collection (client, op->db, op->collection);
   bson_t listed = BSON_INITIALIZER, dropped, server_reply;
   bson_error_t be;
   bson_iter_t it, f;
   uint32_t n = 0;
   bool ok = true;
   if (!bson_empty (&op->args)) {
      bson_t cmd = BSON_INITIALIZER;
      BSON_APPEND_UTF8 (&cmd, "createIndexes", op->collection);
      BSON_APPEND_ARRAY (&cmd, "indexes", &op->args);
      ok = mongoc_database_write_command_with_opts (db, &cmd, NULL, &server_reply, &be);
      if (!ok) {
         mg_driver_failed (error, &be, &server_reply, reply);
      }
      bson_destroy (&server_reply);
      bson_destroy (&cmd);
   }
   if (ok) {
      mongoc_cursor_t *cursor = mongoc_collection_find_indexes_with_opts (coll, NULL);
      ok = drain (cursor, &listed, "indexes", error);
      mongoc_cursor_destroy (cursor);
   }
   bson_append_array_unsafe_begin (reply, "dropped", -1, &dropped);
   if (ok && bson_iter_init_find (&f, &listed, "indexes") && bson_iter_recurse (&f, &it)) {
      while (ok && bson_iter_next (&it)) {
         bson_iter_t name;
         const char *s;
         bson_t cmd = BSON_INITIALIZER;
         if (!bson_iter_recurse (&it, &name) || !bson_iter_find (&name, "name") || !BSON_ITER_HOLDS_UTF8 (&name)) {
            bson_destroy (&cmd);
            continue;
         }
         s = bson_iter_utf8 (&name, NULL);
         if (strcmp (s, "_id_") == 0 || name_in (&op->args, s)) {
            bson_destroy (&cmd);
            continue;
         }
         BSON_APPEND_UTF8 (&cmd, "dropIndexes", op->collection);
         BSON_APPEND_UTF8 (&cmd, "index", s);
         ok = mongoc_database_write_command_with_opts (db, &cmd, NULL, &server_reply, &be) ||
              be.code == 27; /* IndexNotFound: gone already */
         if (ok) {
            char buf[16];
            const char *key;
            size_t len = bson_uint32_to_string (n++, &key, buf, sizeof buf);
            bson_append_value (&dropped, key, (int) len, bson_iter_value (&name));
         }
         bson_destroy (&server_reply);
         bson_destroy (&cmd);
      }
   }
   bson_append_array_end (reply, &dropped);
   if (!ok && !error->category) {
      bson_reinit (reply);
      mg_error_from_driver (error, &be, NULL);
   }
   bson_destroy (&listed);
   mongoc_collection_destroy (coll);
   mongoc_database_destroy (db);
   return ok;
}

/* Creating what exists and dropping what is gone are no-ops: running it again converges. */
static const mg_op_kind sync_indexes_kind = {"sync_indexes", "syncIndexes", exec_sync_indexes, true, true,
                                             .idempotent = mg_resend_always, .writes = true};

int
mgconn_model_sync_indexes (mgconn_op **out, mgconn_model *model, mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {.coll = model ? model->coll : NULL};
   mgconn_op *op;
   bson_t named = BSON_INITIALIZER;
   int rc;
   if (!model) {
      bson_destroy (&named);
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "sync_indexes: the model is NULL");
   }
   if ((rc = mg_op_build (&op, NULL, &sync_indexes_kind, &in, cb, userdata)) != 0) {
      bson_destroy (&named);
      return rc;
   }
   if (!bson_empty (&model->schema->indexes)) {
      mg_named_indexes (&model->schema->indexes, &named); /* the schema's are checked: never fails */
   }
   bson_destroy (&op->args);
   bson_steal (&op->args, &named);
   return mg_op_submit (op, out);
}

/* ---- counts ---- */

static bool
run_count (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error, bool estimated)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, op->db, op->collection);
   bson_t server_reply, storage;
   bson_error_t be;
   const bson_t *opts = mg_op_driver_opts (op, &storage);
   int64_t n = estimated ? mongoc_collection_estimated_document_count (coll, opts, NULL, &server_reply, &be)
                         : mongoc_collection_count_documents (coll, &op->args, opts, NULL, &server_reply, &be);
   bson_destroy (&storage);
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
                                                false, .idempotent = mg_resend_always, .driver_retry = 2, .takes_session = true};
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
   return mg_op_start (out, NULL, &count_documents_kind, &in, cb, userdata);
}

int
mgconn_collection_estimated_document_count (mgconn_op **out, mgconn_collection *collection,
                                            const uint8_t *opts, size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {.coll = collection, .opts = opts, .opts_len = opts_len};
   return mg_op_start (out, NULL, &estimated_count_kind, &in, cb, userdata);
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
            mg_append_array_value (&names, i++, bson_iter_value (&name));
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
   return mg_op_start (out, NULL, &drop_kind, &in, cb, userdata);
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
   return mg_op_start (out, conn, &mg_create_collection_kind, &in, cb, userdata);
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
   return mg_op_start (out, conn, &drop_database_kind, &in, cb, userdata);
}
