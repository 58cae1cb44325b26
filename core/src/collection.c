/*
 * collection.c: collection handles, raw (conn.collection(name)) or a model's. A handle keeps its
 * connection alive; a model's handle is owned by the model and points back to it, so that its
 * operations use the schema's options and wait for the model's autoCreate.
 */
#include "connection.h"

#include <string.h>

mgconn_collection *
mg_collection_new (mgconn_connection *conn, const char *name, mgconn_model *model)
{
   mgconn_collection *c = bson_malloc0 (sizeof *c);
   atomic_init (&c->refs, 1);
   mg_conn_ref (conn);
   c->conn = conn;
   c->name = bson_strdup (name);
   c->model = model;
   return c;
}

void
mg_collection_unref (mgconn_collection *c)
{
   if (c && atomic_fetch_sub (&c->refs, 1) == 1) {
      mg_conn_unref (c->conn);
      bson_free (c->name);
      bson_free (c);
   }
}

int
mgconn_connection_collection (mgconn_collection **out, mgconn_connection *conn, const char *name,
                              mgconn_error *error)
{
   if (!out || !conn || !name) {
      return mg_fail (error, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_connection_collection: a NULL argument");
   }
   *out = NULL;
   if (!*name || strchr (name, '\0') != name + strlen (name) || strchr (name, '$')) {
      return mg_fail (error, MGCONN_ERR_INVALID_ARGUMENT, "Invalid collection name \"%s\": it must be non-empty and "
                                                          "contain no '$'", name);
   }
   *out = mg_collection_new (conn, name, NULL);
   return 0;
}

void
mgconn_collection_free (mgconn_collection *c)
{
   mg_collection_unref (c);
}

const char *
mgconn_collection_name (const mgconn_collection *c)
{
   return c ? c->name : NULL;
}

mgconn_connection *
mgconn_collection_connection (const mgconn_collection *c)
{
   return c ? c->conn : NULL;
}
