/*
 * registry.c: what a connection hands out by name. The model registry (Mongoose's conn.model():
 * one model per name, replaced only with overwriteModels) and use_db's children (a child per
 * database name, kept in a cache when asked, so that use_db("a", use_cache) twice gives the same
 * handle).
 *
 * Both live under the root connection's lock (a child shares its root's lock). The registry holds
 * a reference to each model until its name is deleted or replaced, or the connection's last handle
 * goes; a model keeps its connection and its schema alive. A child holds a reference and a handle
 * on its root for its life; the root's `children` list holds neither (a child unlinks itself when
 * its last handle goes or it is closed).
 */
#include "connection.h"

#include <string.h>

/* ---- the model registry ---- */

static mgconn_model *
find_locked (mgconn_connection *conn, const char *name, size_t *index)
{
   for (size_t i = 0; i < conn->n_models; i++) {
      if (strcmp (conn->models[i]->name, name) == 0) {
         if (index) {
            *index = i;
         }
         return conn->models[i];
      }
   }
   return NULL;
}

static void
remove_locked (mgconn_connection *conn, size_t i)
{
   mgconn_model *m = conn->models[i];
   memmove (&conn->models[i], &conn->models[i + 1], (conn->n_models - i - 1) * sizeof conn->models[0]);
   conn->n_models--;
   mg_model_unref (m); /* the registry's; never the last while the caller holds the connection */
}

static char *
collection_name_for (mgconn_connection *conn, const char *name, const mgconn_schema *schema, const char *explicit)
{
   bson_iter_t it;
   int32_t plural = atomic_load (&conn->rt->set_pluralization);
   if (explicit && *explicit) {
      return bson_strdup (explicit);
   }
   if (bson_iter_init_find (&it, &schema->options, "collection") && BSON_ITER_HOLDS_UTF8 (&it)) {
      return bson_strdup (bson_iter_utf8 (&it, NULL));
   }
   return plural == 0 ? bson_strdup (name) : mg_pluralize (name);
}

int
mgconn_connection_model (mgconn_model **out, mgconn_connection *conn, const char *name, mgconn_schema *schema,
                         const char *collection, mgconn_error *error)
{
   mgconn_connection *root;
   mgconn_model *m;
   size_t index;
   char *coll_name;
   if (!out || !conn || !name || !*name) {
      return mg_fail (error, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_connection_model: %s",
                      !out ? "out is NULL" : !conn ? "conn is NULL" : "the model name is empty");
   }
   *out = NULL;
   root = mg_conn_root (conn);
   pthread_mutex_lock (&root->lock);
   m = find_locked (conn, name, &index);
   if (!schema) {
      if (m) {
         mg_model_hand_out (m);
         *out = m;
      }
      pthread_mutex_unlock (&root->lock);
      return m ? 0 : mg_fail (error, MGCONN_ERR_MISSING_SCHEMA, "Schema hasn't been registered for model \"%s\".", name);
   }
   if (m && m->schema == schema && (!collection || strcmp (collection, m->coll->name) == 0)) {
      mg_model_hand_out (m);
      *out = m;
      pthread_mutex_unlock (&root->lock);
      return 0;
   }
   if (m) {
      if (atomic_load (&conn->rt->set_overwrite_models) != 1) {
         pthread_mutex_unlock (&root->lock);
         return mg_fail (error, MGCONN_ERR_OVERWRITE_MODEL, "Cannot overwrite `%s` model once compiled.", name);
      }
      remove_locked (conn, index); /* replaced, not kept beside the new one */
   }
   coll_name = collection_name_for (conn, name, schema, collection);
   m = bson_malloc0 (sizeof *m);
   atomic_init (&m->refs, 2); /* the registry's and the caller's */
   atomic_init (&m->handles, 1); /* the caller's */
   m->name = bson_strdup (name);
   mg_schema_ref (schema);
   m->schema = schema;
   m->coll = mg_collection_new (conn, coll_name, m);
   mg_list_init (&m->init_waiters);
   bson_free (coll_name);
   conn->models = bson_realloc (conn->models, (conn->n_models + 1) * sizeof conn->models[0]);
   conn->models[conn->n_models++] = m;
   if (mg_conn_connected_locked (root)) {
      mg_model_start_init_locked (m);
   }
   pthread_mutex_unlock (&root->lock);
   *out = m;
   return 0;
}

int
mgconn_connection_delete_model (mgconn_connection *conn, const char *name)
{
   mgconn_connection *root;
   size_t index;
   bool found;
   if (!conn || !name) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_connection_delete_model: a NULL argument");
   }
   root = mg_conn_root (conn);
   pthread_mutex_lock (&root->lock);
   found = find_locked (conn, name, &index) != NULL;
   if (found) {
      remove_locked (conn, index);
   }
   pthread_mutex_unlock (&root->lock);
   return found ? 0 : mg_fail (NULL, MGCONN_ERR_MISSING_SCHEMA, "Schema hasn't been registered for model \"%s\".", name);
}

int32_t
mgconn_connection_model_count (const mgconn_connection *conn)
{
   return conn ? (int32_t) conn->n_models : 0;
}

const char *
mgconn_connection_model_name (const mgconn_connection *conn, int32_t index)
{
   return conn && index >= 0 && (size_t) index < conn->n_models ? conn->models[index]->name : NULL;
}

/* Drops every registry entry (the connection's last handle is gone). Root lock held. */
void
mg_registry_clear_locked (mgconn_connection *conn)
{
   while (conn->n_models > 0) {
      remove_locked (conn, conn->n_models - 1);
   }
   bson_free (conn->models);
   conn->models = NULL;
}

/* Every model of the connection and of its use_db children. Root lock held. */
void
mg_registry_for_each_model_locked (mgconn_connection *root, void (*fn) (mgconn_model *, const mgconn_error *),
                                   const mgconn_error *arg)
{
   mg_link *it;
   for (size_t i = 0; i < root->n_models; i++) {
      fn (root->models[i], arg);
   }
   for (it = root->children.next; it != &root->children; it = it->next) {
      mgconn_connection *child = MG_CONTAINER_OF (it, mgconn_connection, child_link);
      for (size_t i = 0; i < child->n_models; i++) {
         fn (child->models[i], arg);
      }
   }
}

/* ---- use_db ---- */

int
mgconn_connection_use_db (mgconn_connection **out, mgconn_connection *conn, const char *name, int32_t use_cache,
                          mgconn_error *error)
{
   mgconn_connection *root, *child = NULL;
   mg_link *it;
   if (!out || !conn || !name || !*name || strpbrk (name, "/\\. \"$")) {
      return mg_fail (error, MGCONN_ERR_INVALID_ARGUMENT, "use_db: %s",
                      !out || !conn ? "a NULL argument"
                                    : "the database name must be non-empty, without / \\ . space \" or $");
   }
   *out = NULL;
   root = mg_conn_root (conn);
   pthread_mutex_lock (&root->lock);
   if (use_cache) {
      for (it = root->children.next; it != &root->children; it = it->next) {
         mgconn_connection *c = MG_CONTAINER_OF (it, mgconn_connection, child_link);
         if (!c->cached || strcmp (c->child_db, name) != 0) {
            continue;
         }
         /* Its last handle may be being dropped on another host thread, which then unlinks it: a
          * count of zero is not brought back (the caller gets a new child instead). */
         if (mg_ref_unless_zero (&c->handles)) {
            child = c;
            mg_conn_ref (child);
            break;
         }
      }
   }
   if (!child) {
      child = mg_conn_alloc (root->rt);
      child->parent = root;
      mg_conn_ref (root);
      atomic_fetch_add (&root->handles, 1); /* the child keeps its parent open */
      child->child_db = bson_strdup (name);
      child->cached = use_cache != 0;
      mg_list_push_back (&root->children, &child->child_link);
   }
   pthread_mutex_unlock (&root->lock);
   *out = child;
   return 0;
}
