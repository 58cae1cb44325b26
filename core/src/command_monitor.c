/*
 * command_monitor.c: command monitoring (the APM command events PyMongo's CommandListener and
 * tracing hooks consume): started, succeeded and failed for every command a connection's pool
 * sends, each as one BSON document handed to the host's listener.
 *
 * Thread rule: the libmongoc callbacks run on the worker thread that sends the command. They read
 * one atomic flag (no listener: nothing is copied), copy the event into BSON and queue it for the
 * host (mg_runtime_deliver); the listener runs on the host thread at dispatch, in order with
 * completions, and never once the host has freed the connection. A queued event holds a reference
 * on the connection until it has run or been dropped.
 *
 * Redaction: a sensitive command (redact.c: authentication, user management, a hello carrying
 * speculativeAuthenticate) is reported with empty command and reply documents, as PyMongo does;
 * its name, database, ids and duration stay.
 */
#include "connection.h"

#include <string.h>

typedef struct {
   mg_delivery d;
   mgconn_connection *conn; /* a reference */
   bson_t event;
} mg_command_item;

static void
item_free (mg_command_item *item)
{
   mg_conn_unref (item->conn);
   bson_destroy (&item->event);
   bson_free (item);
}

static void
item_run (mg_delivery *d)
{
   mg_command_item *item = MG_CONTAINER_OF (d, mg_command_item, d);
   mgconn_connection *conn = item->conn;
   bool released;
   pthread_mutex_lock (&conn->lock);
   released = conn->host_released;
   pthread_mutex_unlock (&conn->lock);
   if (!released && conn->command_cb) {
      conn->command_cb (conn, bson_get_data (&item->event), item->event.len, conn->command_userdata);
   }
   item_free (item);
}

static void
item_drop (mg_delivery *d)
{
   item_free (MG_CONTAINER_OF (d, mg_command_item, d));
}

/* The fields every event has, into a new item; NULL when nobody listens. */
static mg_command_item *
item_new (mgconn_connection *conn, const char *type, const char *name, const char *db, int64_t request_id,
          int64_t operation_id, const mongoc_host_list_t *host)
{
   mg_command_item *item;
   /* a pool being torn down may still send (endSessions) after the last reference went */
   if (!atomic_load (&conn->command_monitoring) || !mg_conn_ref_unless_dying (conn)) {
      return NULL;
   }
   item = bson_malloc0 (sizeof *item);
   item->d.run = item_run;
   item->d.drop = item_drop;
   item->conn = conn;
   bson_init (&item->event);
   BSON_APPEND_UTF8 (&item->event, "type", type);
   BSON_APPEND_UTF8 (&item->event, "commandName", name);
   BSON_APPEND_UTF8 (&item->event, "databaseName", db ? db : "");
   BSON_APPEND_INT64 (&item->event, "requestId", request_id);
   BSON_APPEND_INT64 (&item->event, "operationId", operation_id);
   BSON_APPEND_UTF8 (&item->event, "serverAddress", host ? host->host_and_port : "");
   return item;
}

static void
post (mg_command_item *item)
{
   mg_runtime_deliver (item->conn->rt, &item->d);
}

/* A reply of a command whose name is sensitive, or of a hello that answered an authentication step. */
static bool
reply_is_sensitive (const char *name, const bson_t *reply)
{
   bool if_speculative = false;
   if (mg_command_name_is_sensitive (name, &if_speculative)) {
      return true;
   }
   return if_speculative && bson_has_field (reply, "speculativeAuthenticate");
}

static void
append_redacted (bson_t *event, const char *key, const bson_t *doc, bool sensitive)
{
   bson_t empty = BSON_INITIALIZER;
   BSON_APPEND_DOCUMENT (event, key, sensitive || !doc ? &empty : doc);
   bson_destroy (&empty);
}

static void
on_started (const mongoc_apm_command_started_t *e)
{
   mgconn_connection *conn = mongoc_apm_command_started_get_context (e);
   const bson_t *command = mongoc_apm_command_started_get_command (e);
   mg_command_item *item = item_new (conn, "started", mongoc_apm_command_started_get_command_name (e),
                                     mongoc_apm_command_started_get_database_name (e),
                                     mongoc_apm_command_started_get_request_id (e),
                                     mongoc_apm_command_started_get_operation_id (e),
                                     mongoc_apm_command_started_get_host (e));
   if (item) {
      append_redacted (&item->event, "command", command, mg_command_is_sensitive (command));
      post (item);
   }
}

void
mg_command_monitor_succeeded (const mongoc_apm_command_succeeded_t *e)
{
   mgconn_connection *conn = mongoc_apm_command_succeeded_get_context (e);
   const char *name = mongoc_apm_command_succeeded_get_command_name (e);
   const bson_t *reply = mongoc_apm_command_succeeded_get_reply (e);
   mg_command_item *item = item_new (conn, "succeeded", name, mongoc_apm_command_succeeded_get_database_name (e),
                                     mongoc_apm_command_succeeded_get_request_id (e),
                                     mongoc_apm_command_succeeded_get_operation_id (e),
                                     mongoc_apm_command_succeeded_get_host (e));
   if (item) {
      BSON_APPEND_INT64 (&item->event, "durationMicros", mongoc_apm_command_succeeded_get_duration (e));
      append_redacted (&item->event, "reply", reply, reply_is_sensitive (name, reply));
      post (item);
   }
}

static void
on_failed (const mongoc_apm_command_failed_t *e)
{
   mgconn_connection *conn = mongoc_apm_command_failed_get_context (e);
   const char *name = mongoc_apm_command_failed_get_command_name (e);
   const bson_t *reply = mongoc_apm_command_failed_get_reply (e);
   mg_command_item *item = item_new (conn, "failed", name, mongoc_apm_command_failed_get_database_name (e),
                                     mongoc_apm_command_failed_get_request_id (e),
                                     mongoc_apm_command_failed_get_operation_id (e),
                                     mongoc_apm_command_failed_get_host (e));
   bson_error_t be;
   if (item) {
      bool sensitive = reply_is_sensitive (name, reply);
      mongoc_apm_command_failed_get_error (e, &be);
      BSON_APPEND_INT64 (&item->event, "durationMicros", mongoc_apm_command_failed_get_duration (e));
      append_redacted (&item->event, "reply", reply, sensitive);
      BSON_APPEND_INT32 (&item->event, "code", (int32_t) be.code);
      /* the driver's message names the server and the failure; a sensitive command's is left out */
      BSON_APPEND_UTF8 (&item->event, "failure", sensitive ? "" : be.message);
      post (item);
   }
}

void
mg_command_monitor_set_callbacks (mongoc_apm_callbacks_t *cbs)
{
   mongoc_apm_set_command_started_cb (cbs, on_started);
   mongoc_apm_set_command_failed_cb (cbs, on_failed);
   /* succeeded is shared with reply_check.c: monitor.c calls both */
}

int
mgconn_connection_on_command (mgconn_connection *conn, mgconn_command_cb cb, void *userdata)
{
   if (!conn) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_connection_on_command: conn is NULL");
   }
   /* the pool and its commands are the root's: a child's own listener would outlive its handle */
   if (conn->parent) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT,
                      "command monitoring is set on the connection itself, not on a use_db child (the "
                      "child's commands go through its connection's pool and reach that listener)");
   }
   conn->command_cb = cb;
   conn->command_userdata = userdata;
   atomic_store (&conn->command_monitoring, cb != NULL);
   return 0;
}
