/*
 * op_input.c: what every operation does on the host thread before anything is queued: its input
 * checked (a bad document fails at the call, naming the problem, and nothing is sent), the op
 * built from it, a model's write checked against its schema, and the op submitted.
 */
#include "connection.h"
#include "input_check.h"
#include "ops.h"
#include "session.h"

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
      /* mgconn's own per-operation options, not the server's: taken out of what is sent */
      bson_iter_t it;
      const char *resend_key = "resendInterrupted";
      if (bson_iter_init_find_case (&it, &o, "resendInterrupted")) {
         if (!BSON_ITER_HOLDS_BOOL (&it)) {
            mg_op_unref (*built);
            *built = NULL;
            return mg_fail (NULL, MGCONN_ERR_OPTION, "%s: the option \"resendInterrupted\" must be true or false",
                            kind->snake);
         }
         (*built)->resend = bson_iter_bool (&it);
         resend_key = bson_iter_key (&it);
      }
      if ((rc = mg_session_attach (*built, &o)) != 0) {
         mg_op_unref (*built);
         *built = NULL;
         return rc;
      }
      if ((*built)->resend >= 0 || (*built)->session) {
         bson_copy_to_excluding_noinit (&o, &(*built)->opts, resend_key, "session", NULL);
      } else {
         bson_concat (&(*built)->opts, &o);
      }
   }
   return 0;
}

int
mg_op_start (mgconn_op **out, mgconn_connection *conn, const mg_op_kind *kind, const mg_op_input *in, mgconn_op_cb cb,
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
int
mg_op_submit_checked (mgconn_op *op, mgconn_op **out, char what)
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

bool
mg_driver_failed (mgconn_error *error, const bson_error_t *be, const bson_t *server_reply, bson_t *reply)
{
   mg_error_from_driver (error, be, server_reply);
   if (server_reply && !bson_empty (server_reply)) {
      bson_concat (reply, server_reply);
   }
   return false;
}

void
mg_append_array_value (bson_t *array, uint32_t i, const bson_value_t *value)
{
   char buf[16];
   const char *key;
   size_t len = bson_uint32_to_string (i, &key, buf, sizeof buf);
   bson_append_value (array, key, (int) len, value);
}
