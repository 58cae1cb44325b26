/*
 * ops.c: the operations themselves. Each public function checks its input on the host thread
 * (nothing is sent when the input is bad), builds an op, and submits it; each exec function runs
 * on a worker with a pooled client and turns the driver's answer into a reply document or an
 * mgconn_error.
 */
#include "connection.h"

#include <string.h>

static int
borrow_doc (bson_t *doc, const uint8_t *data, size_t len, const char *what, bool optional)
{
   if (!data) {
      if (optional) {
         bson_init (doc);
         return 0;
      }
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "%s is NULL", what);
   }
   if (!bson_init_static (doc, data, len) || !bson_validate (doc, BSON_VALIDATE_NONE, NULL)) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "%s is not a valid BSON document", what);
   }
   return 0;
}

static char *
db_of (mgconn_connection *conn)
{
   char *db;
   pthread_mutex_lock (&conn->lock);
   db = bson_strdup (conn->has_opts ? conn->opts.db_name : "test");
   pthread_mutex_unlock (&conn->lock);
   return db;
}

/* ---- run_command ---- */

static bool
exec_run_command (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   bson_error_t be;
   bson_destroy (reply);
   if (mongoc_client_command_with_opts (client, op->db, &op->args, NULL, &op->opts, reply, &be)) {
      return true;
   }
   mg_error_from_driver (error, &be, reply);
   return false;
}

static const mg_op_kind run_command_kind = {"run_command", "runCommand", exec_run_command, true};

int
mgconn_run_command (mgconn_op **out, mgconn_connection *conn, const char *db, const uint8_t *command,
                    size_t command_len, mgconn_op_cb cb, void *userdata)
{
   bson_t cmd;
   mgconn_op *op;
   char *dbname;
   int rc;
   if (!conn) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_run_command: conn is NULL");
   }
   if ((rc = borrow_doc (&cmd, command, command_len, "the command", false)) != 0) {
      return rc;
   }
   if (bson_empty (&cmd)) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "the command is an empty document");
   }
   dbname = db ? bson_strdup (db) : db_of (conn);
   op = mg_op_new (conn, &run_command_kind, dbname, NULL, cb, userdata);
   bson_free (dbname);
   bson_concat (&op->args, &cmd);
   return mg_op_submit (op, out);
}

/* ---- insert_one ---- */

static bool
exec_insert_one (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, op->db, op->collection);
   bson_t server_reply;
   bson_error_t be;
   bson_iter_t id;
   bool ok = mongoc_collection_insert_one (coll, &op->args, &op->opts, &server_reply, &be);
   if (ok) {
      bson_iter_init_find (&id, &op->args, "_id");
      bson_append_value (reply, "insertedId", -1, bson_iter_value (&id));
   } else {
      mg_error_from_driver (error, &be, &server_reply);
   }
   bson_destroy (&server_reply);
   mongoc_collection_destroy (coll);
   return ok;
}

static const mg_op_kind insert_one_kind = {"insert_one", "insertOne", exec_insert_one, true};

/* The document with an ObjectId `_id` first when it has none, so the id is known before sending. */
static void
with_id (const bson_t *doc, bson_t *out)
{
   bson_iter_t it;
   if (bson_iter_init_find (&it, doc, "_id")) {
      bson_concat (out, doc);
      return;
   }
   {
      bson_oid_t oid;
      bson_oid_init (&oid, NULL);
      BSON_APPEND_OID (out, "_id", &oid);
      bson_concat (out, doc);
   }
}

static int
check_collection_name (const char *collection)
{
   if (!collection || !*collection) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "the collection name is %s", collection ? "empty" : "NULL");
   }
   return 0;
}

int
mgconn_collection_insert_one (mgconn_op **out, mgconn_connection *conn, const char *collection,
                              const uint8_t *document, size_t document_len, const uint8_t *opts, size_t opts_len,
                              mgconn_op_cb cb, void *userdata)
{
   bson_t doc, o;
   mgconn_op *op;
   char *db;
   int rc;
   if (!conn) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_collection_insert_one: conn is NULL");
   }
   if ((rc = check_collection_name (collection)) != 0 ||
       (rc = borrow_doc (&doc, document, document_len, "the document", false)) != 0 ||
       (rc = borrow_doc (&o, opts, opts_len, "the options", true)) != 0) {
      return rc;
   }
   db = db_of (conn);
   op = mg_op_new (conn, &insert_one_kind, db, collection, cb, userdata);
   bson_free (db);
   with_id (&doc, &op->args);
   bson_concat (&op->opts, &o);
   return mg_op_submit (op, out);
}

/* ---- find ---- */

static bool
exec_find (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, op->db, op->collection);
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (coll, &op->args, &op->opts, NULL);
   const bson_t *doc, *err_doc = NULL;
   bson_error_t be;
   bson_t docs;
   uint32_t i = 0;
   bool ok;

   bson_append_array_begin (reply, "documents", -1, &docs);
   while (mongoc_cursor_next (cursor, &doc)) {
      char buf[16];
      const char *key;
      size_t klen = bson_uint32_to_string (i++, &key, buf, sizeof buf);
      bson_append_document (&docs, key, (int) klen, doc);
   }
   bson_append_array_end (reply, &docs);
   ok = !mongoc_cursor_error_document (cursor, &be, &err_doc);
   if (!ok) {
      mg_error_from_driver (error, &be, err_doc);
   }
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (coll);
   return ok;
}

static const mg_op_kind find_kind = {"find", "find", exec_find, true};

int
mgconn_collection_find (mgconn_op **out, mgconn_connection *conn, const char *collection, const uint8_t *filter,
                        size_t filter_len, const uint8_t *opts, size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   bson_t f, o;
   mgconn_op *op;
   char *db;
   int rc;
   if (!conn) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_collection_find: conn is NULL");
   }
   if ((rc = check_collection_name (collection)) != 0 ||
       (rc = borrow_doc (&f, filter, filter_len, "the filter", true)) != 0 ||
       (rc = borrow_doc (&o, opts, opts_len, "the options", true)) != 0) {
      return rc;
   }
   db = db_of (conn);
   op = mg_op_new (conn, &find_kind, db, collection, cb, userdata);
   bson_free (db);
   bson_concat (&op->args, &f);
   bson_concat (&op->opts, &o);
   return mg_op_submit (op, out);
}
