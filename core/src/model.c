/*
 * model.c: models, and each model's init on every open of its connection: autoCreate (create,
 * with capped and collation), then autoIndex (createIndexes). The registry that hands models out
 * by name is registry.c.
 *
 * A model's init state and its init waiters are guarded by the root connection's
 * lock (a use_db child shares its root's lock). A model's operations wait in the root's queue
 * while create_pending is set (mg_conn_pump_locked skips them), so that a capped collection exists
 * before the first insert lands, as the Mongoose guide describes.
 */
#include "connection.h"
#include "ops.h"

#include <string.h>

void
mg_model_ref (mgconn_model *m)
{
   atomic_fetch_add (&m->refs, 1);
}

void
mg_model_unref (mgconn_model *m)
{
   if (m && atomic_fetch_sub (&m->refs, 1) == 1) {
      mg_collection_unref (m->coll);
      mgconn_schema_free (m->schema);
      mgconn_error_cleanup (&m->init_error);
      mg_listeners_cleanup (&m->listeners);
      bson_free (m->name);
      bson_free (m);
   }
}

int
mg_model_schema_int (const mgconn_model *m, const char *name)
{
   bson_iter_t it;
   if (!m || !bson_iter_init_find (&it, &m->schema->options, name)) {
      return -1;
   }
   if (BSON_ITER_HOLDS_BOOL (&it)) {
      return bson_iter_bool (&it) ? 1 : 0;
   }
   return BSON_ITER_HOLDS_NUMBER (&it) ? (int) bson_iter_as_int64 (&it) : -1;
}

/* ---- init ---- */

/* The create command's options from the schema: capped (size or {size, max}) and collation. */
static void
create_options (const mgconn_schema *s, bson_t *out)
{
   bson_iter_t it, sub;
   if (bson_iter_init_find (&it, &s->options, "capped")) {
      BSON_APPEND_BOOL (out, "capped", true);
      if (BSON_ITER_HOLDS_DOCUMENT (&it)) {
         bson_iter_recurse (&it, &sub);
         while (bson_iter_next (&sub)) {
            if (strcmp (bson_iter_key (&sub), "size") == 0 || strcmp (bson_iter_key (&sub), "max") == 0) {
               BSON_APPEND_INT64 (out, bson_iter_key (&sub), bson_iter_as_int64 (&sub));
            }
         }
      } else {
         BSON_APPEND_INT64 (out, "size", bson_iter_as_int64 (&it));
      }
   }
   if (bson_iter_init_find (&it, &s->options, "collation")) {
      bson_append_value (out, "collation", -1, bson_iter_value (&it));
   }
}

static bool
exec_init (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mgconn_model *m = op->model;
   mgconn_connection *root = op->conn;
   mongoc_database_t *db = mongoc_client_get_database (client, op->db);
   bson_error_t be;
   bool ok = true;

   /* args: {"create": bool, "index": bool}, decided at submission. */
   bson_iter_t it;
   bool create = bson_iter_init_find (&it, &op->args, "create") && bson_iter_bool (&it);
   bool index = bson_iter_init_find (&it, &op->args, "index") && bson_iter_bool (&it);

   if (create) {
      bson_t opts = BSON_INITIALIZER;
      mongoc_collection_t *coll;
      create_options (m->schema, &opts);
      coll = mongoc_database_create_collection (db, op->collection, &opts, &be);
      if (coll) {
         mongoc_collection_destroy (coll);
         BSON_APPEND_BOOL (reply, "created", true);
      } else if (be.code == 48) { /* NamespaceExists: made by an earlier open, or by someone else */
         BSON_APPEND_BOOL (reply, "created", false);
      } else {
         mg_error_from_driver (error, &be, NULL);
         ok = false;
      }
      bson_destroy (&opts);
   }
   /* The model's operations may go now (even when create failed: they report their own errors). */
   pthread_mutex_lock (&root->lock);
   if (m->init_cycle == op->init_cycle) {
      m->create_pending = false;
      mg_conn_pump_locked (root);
   }
   pthread_mutex_unlock (&root->lock);

   if (ok && index && !bson_empty (&m->schema->indexes)) {
      bson_t cmd = BSON_INITIALIZER, server_reply, named = BSON_INITIALIZER;
      mg_named_indexes (&m->schema->indexes, &named); /* the schema's are checked: never fails */
      BSON_APPEND_UTF8 (&cmd, "createIndexes", op->collection);
      BSON_APPEND_ARRAY (&cmd, "indexes", &named);
      if (!mongoc_database_write_command_with_opts (db, &cmd, NULL, &server_reply, &be)) {
         mg_error_from_driver (error, &be, &server_reply);
         ok = false;
      } else {
         BSON_APPEND_BOOL (reply, "indexed", true);
      }
      bson_destroy (&server_reply);
      bson_destroy (&named);
      bson_destroy (&cmd);
   }
   mongoc_database_destroy (db);
   return ok;
}

static const mg_op_kind init_kind = {"init", "init", exec_init, false, false, .idempotent = NULL};
static const mg_op_kind init_wait_kind = {"init", "init", NULL, true, false, .idempotent = NULL};

/* The init op's delivery (host thread): finish the waiters, then tell the model's listeners. */
static void
init_done (mgconn_op *op, void *unused)
{
   mgconn_model *m = op->model;
   mgconn_connection *root = op->conn;
   struct mgconn_event ev = {MGCONN_EVENT_INDEX, NULL};
   bool cancelled = !op->ok && op->error.category == MGCONN_ERR_CONNECTION_CLOSED;
   mg_link *it, *tmp;
   (void) unused;

   pthread_mutex_lock (&root->lock);
   if (m->init_cycle == op->init_cycle) {
      m->create_pending = false;
      m->init_finished = true;
      mgconn_error_cleanup (&m->init_error);
      if (!op->ok) {
         mgconn_error_copy (&m->init_error, &op->error);
      }
      MG_LIST_FOREACH_SAFE (it, tmp, &m->init_waiters)
      {
         mgconn_op *w = MG_CONTAINER_OF (it, mgconn_op, conn_link);
         mg_op_finish_locked (w, op->ok, NULL, op->ok ? NULL : &op->error);
      }
      mg_conn_pump_locked (root);
   }
   pthread_mutex_unlock (&root->lock);

   if (!cancelled) { /* close() cancels an init quietly: it is not an index failure */
      size_t n = mg_listeners_begin (&m->listeners);
      ev.error = op->ok ? NULL : &op->error;
      for (size_t i = 0; i < n; i++) {
         mg_listener l;
         if (mg_listeners_take (&m->listeners, i, MGCONN_EVENT_INDEX, &l)) {
            ((mgconn_model_event_cb) l.cb) (m, &ev, l.userdata);
         }
      }
      mg_listeners_end (&m->listeners);
   }
}

void
mg_model_start_init_locked (mgconn_model *m)
{
   mgconn_connection *conn = m->coll->conn;
   mgconn_connection *root = mg_conn_root (conn);
   bool create, index;
   mgconn_op *op;
   if (m->init_cycle == root->open_cycle) {
      return; /* already started in this open */
   }
   create = mg_effective_auto (m, root, true);
   index = mg_effective_auto (m, root, false);
   m->init_cycle = root->open_cycle;
   m->init_finished = false;
   mgconn_error_cleanup (&m->init_error);
   m->create_pending = create;
   op = mg_op_new (root, &init_kind, conn->parent ? conn->child_db : root->opts.db_name, m->coll->name, init_done,
                   NULL);
   mg_model_ref (m);
   op->model = m;
   op->is_init = true;
   op->init_cycle = m->init_cycle;
   BSON_APPEND_BOOL (&op->args, "create", create);
   BSON_APPEND_BOOL (&op->args, "index", index);
   op->debug = mg_effective_debug (op);
   op->phase = MG_OP_WAITING;
   mg_list_push_back (&root->waiting, &op->conn_link);
   mg_conn_pump_locked (root);
}

void
mg_model_fail_waiters_locked (mgconn_model *m, const mgconn_error *error)
{
   mg_link *it, *tmp;
   MG_LIST_FOREACH_SAFE (it, tmp, &m->init_waiters)
   {
      mg_op_fail_locked (MG_CONTAINER_OF (it, mgconn_op, conn_link), error);
   }
   m->create_pending = false;
}

int
mgconn_model_init (mgconn_op **out, mgconn_model *m, mgconn_op_cb cb, void *userdata)
{
   mgconn_connection *root;
   mgconn_op *op;
   if (!m) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_model_init: model is NULL");
   }
   root = mg_conn_root (m->coll->conn);
   op = mg_op_new (root, &init_wait_kind, NULL, m->coll->name, cb, userdata);
   mg_model_ref (m);
   op->model = m;
   if (out) {
      mg_op_ref (op);
      *out = op;
   }
   pthread_mutex_lock (&root->lock);
   op->phase = MG_OP_WAITING;
   if (m->init_cycle == root->open_cycle && m->init_finished && root->open_cycle > 0) {
      mg_op_finish_locked (op, m->init_error.category == 0, NULL, m->init_error.category ? &m->init_error : NULL);
   } else if (root->closed || root->host_released || m->coll->conn->detached) {
      mgconn_error e;
      mgconn_error_init (&e);
      mg_error_set (&e, MGCONN_ERR_CONNECTION_CLOSED, "Cannot run `%s.%s()`: the connection is closed", m->coll->name,
                    mg_op_method_name (op));
      mg_op_finish_locked (op, false, NULL, &e);
      mgconn_error_cleanup (&e);
   } else {
      mg_list_push_back (&m->init_waiters, &op->conn_link);
      mg_op_arm_buffer_timer_locked (op);
   }
   pthread_mutex_unlock (&root->lock);
   return 0;
}

void
mgconn_model_free (mgconn_model *m)
{
   if (m && atomic_fetch_sub (&m->handles, 1) == 1) {
      mg_listeners_remove_all (&m->listeners); /* the host's last handle: nobody hears them now */
   }
   mg_model_unref (m);
}

/* A handle for the host (registry.c hands models out): counted, so that the last one's free ends
 * the listeners while the model itself may live on (its ops, the registry). */
void
mg_model_hand_out (mgconn_model *m)
{
   mg_model_ref (m);
   atomic_fetch_add (&m->handles, 1);
}

const char *
mgconn_model_name (const mgconn_model *m)
{
   return m ? m->name : NULL;
}

mgconn_collection *
mgconn_model_collection (const mgconn_model *m)
{
   return m ? m->coll : NULL;
}

mgconn_schema *
mgconn_model_schema (const mgconn_model *m)
{
   return m ? m->schema : NULL;
}

mgconn_connection *
mgconn_model_connection (const mgconn_model *m)
{
   return m ? m->coll->conn : NULL;
}

int
mgconn_model_listen (mgconn_model *m, const char *name, int32_t flags, mgconn_release_cb release,
                     mgconn_model_event_cb cb, void *userdata)
{
   if (!m || !cb || !name || strcmp (name, "index") != 0 || (flags & ~MGCONN_LISTEN_ONCE)) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_model_listen: %s",
                      !m || !cb ? "a NULL argument"
                      : (flags & ~MGCONN_LISTEN_ONCE) ? "unknown flags"
                                                      : "a model's only event is \"index\"");
   }
   mg_listeners_add (&m->listeners, MGCONN_EVENT_INDEX, flags, (mg_listener_fn) cb, userdata, release);
   return 0;
}

int
mgconn_model_on (mgconn_model *m, const char *name, mgconn_model_event_cb cb, void *userdata)
{
   return mgconn_model_listen (m, name, 0, NULL, cb, userdata);
}

int
mgconn_model_off (mgconn_model *m, const char *name, mgconn_model_event_cb cb, void *userdata)
{
   (void) name;
   if (m && mg_listeners_remove (&m->listeners, MGCONN_EVENT_INDEX, (mg_listener_fn) cb, userdata)) {
      return 0;
   }
   return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "no such model listener");
}

int
mgconn_model_visit_listeners (const mgconn_model *m, mgconn_model_event_cb cb, mgconn_listener_visit_cb visit,
                              void *userdata)
{
   if (!m || !visit) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_model_visit_listeners: a NULL argument");
   }
   return mg_listeners_visit (&m->listeners, (mg_listener_fn) cb, visit, userdata);
}
