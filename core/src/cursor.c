/*
 * cursor.c: queries (find, find_one, aggregate) and their cursors, batch by batch.
 *
 * A query runs as a command on a server chosen first, and its getMore commands go to that same
 * server: the cursor keeps (server id, cursor id, namespace), never a pooled client, so a cursor
 * that a script reads slowly holds no connection and no worker between batches (what it still holds
 * is the server's own: see mgconn_cursor_free). Every batch is a
 * reply of its own ({"batch": [...], "done": bool}): results are never gathered all at once.
 *
 * Ownership and threads: at the struct, in cursor.h. A change stream is a cursor too: its batches
 * and its resuming are change_stream.c's.
 */
#include "connection.h"
#include "change_stream.h"
#include "cursor.h"
#include "doc_keys.h"
#include "ops.h"
#include "session.h"

#include <string.h>


static void kill_on_server (mgconn_cursor *cursor);

static void
give_back_slot (mgconn_cursor *c)
{
   if (c->slot) {
      c->slot = false;
      mg_conn_release_cursor_slot (c->conn);
   }
}

static void
cursor_unref (mgconn_cursor *c)
{
   if (c && atomic_fetch_sub (&c->refs, 1) == 1) {
      give_back_slot (c);
      mg_session_unref (c->session);
      mg_change_stream_free (c->stream);
      mg_conn_unref (c->conn);
      bson_free (c->db);
      bson_free (c->collection);
      bson_free (c);
   }
}

void
mg_batch_reply (const bson_t *server_reply, bson_t *reply, int64_t *id_out)
{
   bson_iter_t it;
   *id_out = 0;
   if (bson_iter_init (&it, server_reply) && bson_iter_find_descendant (&it, "cursor.id", &it)) {
      *id_out = bson_iter_as_int64 (&it);
   }
   if ((bson_iter_init (&it, server_reply) && bson_iter_find_descendant (&it, "cursor.firstBatch", &it)) ||
       (bson_iter_init (&it, server_reply) && bson_iter_find_descendant (&it, "cursor.nextBatch", &it))) {
      bson_append_value (reply, "batch", -1, bson_iter_value (&it));
   } else {
      bson_t empty;
      bson_append_array_unsafe_begin (reply, "batch", -1, &empty);
      bson_append_array_end (reply, &empty);
   }
   BSON_APPEND_BOOL (reply, "done", *id_out == 0);
}

bool
mg_run_on_server (mongoc_client_t *client, const char *db, const bson_t *cmd, const mongoc_read_prefs_t *prefs,
               uint32_t server_id, const mgconn_op *op, bson_t *server_reply, bson_error_t *be)
{
   bson_t opts = BSON_INITIALIZER;
   bool ok;
   if (!op->session) {
      return mongoc_client_command_simple_with_server_id (client, db, cmd, prefs, server_id, server_reply, be);
   }
   BSON_APPEND_INT32 (&opts, "serverId", (int32_t) server_id);
   bson_concat (&opts, mg_op_session_opts (op));
   ok = mongoc_client_command_with_opts (client, db, cmd, prefs, &opts, server_reply, be);
   bson_destroy (&opts);
   return ok;
}

bool
mg_run_on_selected_server (mgconn_op *op, mongoc_client_t *client, const bson_t *cmd, bool for_writes,
                        bson_t *server_reply, mgconn_error *error)
{
   bson_error_t be;
   const mongoc_read_prefs_t *prefs = for_writes ? NULL : mongoc_client_get_read_prefs (client);
   mongoc_server_description_t *sd = mongoc_client_select_server (client, for_writes, prefs, &be);
   bool ok;
   bson_init (server_reply);
   if (!sd) {
      mg_error_from_driver (error, &be, NULL);
      return false;
   }
   op->server_id = mongoc_server_description_id (sd);
   mongoc_server_description_destroy (sd);
   bson_destroy (server_reply);
   ok = mg_run_on_server (client, op->db, cmd, prefs, op->server_id, op, server_reply, &be);
   if (!ok) {
      mg_error_from_driver (error, &be, server_reply);
   }
   return ok;
}

/* {find, filter, ...opts}; find_one adds limit 1 and a single batch. */
static void
find_command (const mgconn_op *op, bool one, bson_t *cmd)
{
   BSON_APPEND_UTF8 (cmd, "find", op->collection);
   BSON_APPEND_DOCUMENT (cmd, "filter", &op->args);
   bson_concat (cmd, &op->opts);
   if (one) {
      BSON_APPEND_INT64 (cmd, "limit", 1);
      BSON_APPEND_BOOL (cmd, "singleBatch", true);
   }
}

static bool
exec_find (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   bson_t cmd = BSON_INITIALIZER, server_reply;
   bool ok;
   find_command (op, false, &cmd);
   ok = mg_run_on_selected_server (op, client, &cmd, false, &server_reply, error);
   if (ok) {
      mg_batch_reply (&server_reply, reply, &op->cursor_id);
   }
   bson_destroy (&server_reply);
   bson_destroy (&cmd);
   return ok;
}

static bool
exec_find_one (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   bson_t cmd = BSON_INITIALIZER, server_reply;
   bson_iter_t it;
   bool ok;
   find_command (op, true, &cmd);
   ok = mg_run_on_selected_server (op, client, &cmd, false, &server_reply, error);
   if (ok) {
      if (bson_iter_init (&it, &server_reply) && bson_iter_find_descendant (&it, "cursor.firstBatch.0", &it)) {
         bson_append_value (reply, "document", -1, bson_iter_value (&it));
      } else {
         BSON_APPEND_NULL (reply, "document");
      }
   }
   bson_destroy (&server_reply);
   bson_destroy (&cmd);
   return ok;
}

static bool
pipeline_writes (const bson_t *pipeline)
{
   bson_iter_t it, stage;
   const char *last = NULL;
   bson_iter_init (&it, pipeline);
   while (bson_iter_next (&it)) {
      if (bson_iter_recurse (&it, &stage) && bson_iter_next (&stage)) {
         last = bson_iter_key (&stage);
      }
   }
   return last && (strcmp (last, "$out") == 0 || strcmp (last, "$merge") == 0);
}

static bool
exec_aggregate (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   bson_t cmd = BSON_INITIALIZER, server_reply, cursor_opts;
   bson_iter_t it;
   bool ok;
   BSON_APPEND_UTF8 (&cmd, "aggregate", op->collection);
   BSON_APPEND_ARRAY (&cmd, "pipeline", &op->args);
   bson_copy_to_excluding_noinit (&op->opts, &cmd, "batchSize", "cursor", NULL);
   bson_append_document_begin (&cmd, "cursor", -1, &cursor_opts);
   if (bson_iter_init_find (&it, &op->opts, "batchSize")) {
      bson_append_value (&cursor_opts, "batchSize", -1, bson_iter_value (&it));
   }
   bson_append_document_end (&cmd, &cursor_opts);
   ok = mg_run_on_selected_server (op, client, &cmd, pipeline_writes (&op->args), &server_reply, error);
   if (ok) {
      mg_batch_reply (&server_reply, reply, &op->cursor_id);
   }
   bson_destroy (&server_reply);
   bson_destroy (&cmd);
   return ok;
}

static bool
exec_get_more (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mgconn_cursor *c = op->cursor;
   bson_t cmd = BSON_INITIALIZER, server_reply;
   bson_error_t be;
   bool ok;
   BSON_APPEND_INT64 (&cmd, "getMore", c->id);
   BSON_APPEND_UTF8 (&cmd, "collection", c->collection);
   if (c->batch_size > 0) {
      BSON_APPEND_INT32 (&cmd, "batchSize", c->batch_size);
   }
   ok = mg_run_on_server (client, c->db, &cmd, NULL, c->server_id, op, &server_reply, &be);
   if (ok) {
      mg_batch_reply (&server_reply, reply, &op->cursor_id);
   } else {
      mg_error_from_driver (error, &be, &server_reply);
   }
   bson_destroy (&server_reply);
   bson_destroy (&cmd);
   return ok;
}

void
mg_kill_server_cursor (mongoc_client_t *client, const char *db, const char *collection, int64_t id,
                       uint32_t server_id)
{
   bson_t cmd = BSON_INITIALIZER, ids, server_reply;
   bson_error_t be;
   BSON_APPEND_UTF8 (&cmd, "killCursors", collection);
   bson_append_array_unsafe_begin (&cmd, "cursors", -1, &ids);
   BSON_APPEND_INT64 (&ids, "0", id);
   bson_append_array_end (&cmd, &ids);
   mongoc_client_command_simple_with_server_id (client, db, &cmd, NULL, server_id, &server_reply, &be);
   bson_destroy (&server_reply);
   bson_destroy (&cmd);
}

static bool
exec_kill_cursor (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   (void) reply;
   (void) error;
   mg_kill_server_cursor (client, op->db, op->collection, op->cursor_id, op->server_id);
   return true;
}

static bool
aggregate_idempotent (const mgconn_op *op, const char **why_not)
{
   if (op->writes) {
      *why_not = "an aggregation that writes ($out, $merge) is not sent again";
      return false;
   }
   return true;
}

/* Queries are sent again after a fault (buffer.c); a getMore is not: its cursor lived on the server
 * that failed. */
static const mg_op_kind find_kind = {"find", "find", exec_find, true, false, .idempotent = mg_resend_always,
                                     .opens_cursor = true, .takes_session = true};
static const mg_op_kind find_one_kind = {"find_one", "findOne", exec_find_one, true, false,
                                         .idempotent = mg_resend_always, .takes_session = true};
static const mg_op_kind aggregate_kind = {"aggregate", "aggregate", exec_aggregate, true, true,
                                          .idempotent = aggregate_idempotent, .opens_cursor = true, .takes_session = true};
static const mg_op_kind get_more_kind = {"next", "next", exec_get_more, true, false, .idempotent = NULL, .takes_session = true};
static const mg_op_kind kill_cursor_kind = {"close", "close", exec_kill_cursor, false, false, .idempotent = NULL};

static int
start_query (mgconn_op **out, const mg_op_kind *kind, mgconn_collection *collection, const char *a_name,
             const uint8_t *a, size_t a_len, const uint8_t *opts, size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {.coll = collection, .a_name = a_name, .a = a, .a_len = a_len, .a_optional = true,
                     .opts = opts, .opts_len = opts_len};
   mgconn_op *op;
   int rc;
   if (!collection) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "%s: the collection is NULL", kind->snake);
   }
   rc = mg_op_build (&op, NULL, kind, &in, cb, userdata);
   if (rc) {
      return rc;
   }
   op->writes = kind == &aggregate_kind && pipeline_writes (&op->args); /* a write: its outcome matters */
   return mg_op_submit (op, out);
}

int
mgconn_collection_find (mgconn_op **out, mgconn_collection *collection, const uint8_t *filter,
                        size_t filter_len, const uint8_t *opts, size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   return start_query (out, &find_kind, collection, "the filter", filter, filter_len, opts, opts_len, cb,
                       userdata);
}

int
mgconn_collection_find_one (mgconn_op **out, mgconn_collection *collection, const uint8_t *filter,
                            size_t filter_len, const uint8_t *opts, size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   return start_query (out, &find_one_kind, collection, "the filter", filter, filter_len, opts, opts_len, cb,
                       userdata);
}

int
mgconn_collection_aggregate (mgconn_op **out, mgconn_collection *collection,
                             const uint8_t *pipeline, size_t pipeline_len, const uint8_t *opts, size_t opts_len,
                             mgconn_op_cb cb, void *userdata)
{
   if (!pipeline) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "aggregate: the pipeline is NULL");
   }
   return start_query (out, &aggregate_kind, collection, "the pipeline", pipeline, pipeline_len, opts,
                       opts_len, cb, userdata);
}

int
mgconn_op_cursor (mgconn_cursor **out, mgconn_op *op)
{
   mgconn_cursor *c;
   bson_iter_t it;
   if (!out || !op) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_op_cursor: a NULL argument");
   }
   *out = NULL;
   if (!op->delivered || !op->ok ||
       (op->kind != &find_kind && op->kind != &aggregate_kind && op->kind != &mg_watch_kind) || op->cursor_taken ||
       op->cursor_id == 0) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT,
                      "the op has no open cursor (not a succeeded find or aggregate, already taken, or done)");
   }
   c = bson_malloc0 (sizeof *c);
   atomic_init (&c->refs, 1);
   mg_conn_ref (op->conn);
   c->conn = op->conn;
   c->db = bson_strdup (op->db);
   /* a database's change stream: its getMores name the server's own namespace */
   c->collection = bson_strdup (op->collection ? op->collection : "$cmd.aggregate");
   if (op->kind == &mg_watch_kind) {
      c->stream = mg_change_stream_from_op (op);
   }
   c->id = op->cursor_id;
   c->server_id = op->server_id;
   if (op->session) {
      mg_session_ref (op->session);
      c->session = op->session;
      c->session_txn = op->session_txn;
   }
   if (bson_iter_init_find (&it, &op->opts, "batchSize") && BSON_ITER_HOLDS_NUMBER (&it)) {
      c->batch_size = (int32_t) bson_iter_as_int64 (&it);
   }
   pthread_mutex_lock (&op->conn->lock);
   c->slot = op->cursor_slot; /* the query's slot is the cursor's now */
   op->cursor_slot = false;
   pthread_mutex_unlock (&op->conn->lock);
   op->cursor_taken = true;
   *out = c;
   return 0;
}

/* The getMore's delivery: record what the server said about the cursor, then the user's callback. */
typedef struct {
   mgconn_op_cb cb;
   void *userdata;
} next_wrap;

static void
next_done (mgconn_op *op, void *ud)
{
   mgconn_cursor *c = op->cursor;
   next_wrap w = *(next_wrap *) ud;
   bson_free (ud);
   c->busy = false;
   if (op->ok) {
      c->id = op->cursor_id;
      if (c->id == 0) {
         give_back_slot (c); /* read to its end: the server has let it go */
      }
   }
   if (c->freed) {
      kill_on_server (c); /* the host's handle is gone: nobody reads the rest */
      give_back_slot (c);
   }
   if (w.cb) {
      w.cb (op, w.userdata);
   }
}

int
mgconn_cursor_next (mgconn_op **out, mgconn_cursor *cursor, mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {0};
   mgconn_op *op;
   next_wrap *w;
   int rc;
   if (!cursor) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_cursor_next: the cursor is NULL");
   }
   if (cursor->busy) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "the cursor is already fetching a batch: wait for it first");
   }
   w = bson_malloc0 (sizeof *w);
   w->cb = cb;
   w->userdata = userdata;
   rc = mg_op_build (&op, cursor->conn, cursor->stream ? &mg_stream_next_kind : &get_more_kind, &in, next_done, w);
   if (rc) {
      bson_free (w);
      return rc;
   }
   bson_free (op->collection);
   op->collection = bson_strdup (cursor->collection);
   atomic_fetch_add (&cursor->refs, 1);
   op->cursor = cursor;
   if (cursor->session) {
      mg_session_ref (cursor->session);
      op->session = cursor->session;
      op->session_txn = cursor->session_txn;
      mg_op_add_key (op, cursor->session->key);
   }
   if (cursor->id == 0) { /* nothing left: an empty, done batch, without asking the server */
      bson_t empty;
      pthread_mutex_lock (&cursor->conn->lock);
      op->phase = MG_OP_WAITING;
      bson_append_array_unsafe_begin (&op->reply, "batch", -1, &empty);
      bson_append_array_end (&op->reply, &empty);
      BSON_APPEND_BOOL (&op->reply, "done", true);
      if (out) {
         mg_op_ref (op);
         *out = op;
      }
      mg_op_finish_locked (op, true, NULL, NULL);
      pthread_mutex_unlock (&cursor->conn->lock);
   } else {
      mg_op_submit (op, out);
   }
   cursor->busy = true;
   return 0;
}

int32_t
mgconn_cursor_done (const mgconn_cursor *cursor)
{
   return !cursor || cursor->id == 0;
}

/* At the op's end (its last reference). A query whose open cursor nobody took would otherwise stay
 * on the server until it times out, its slot with it: it is killed as a dropped cursor is. */
void
mg_op_release_cursor (mgconn_op *op)
{
   mgconn_cursor *untaken;
   cursor_unref (op->cursor);
   op->cursor = NULL;
   if (op->kind->opens_cursor && op->delivered && op->ok && !op->cursor_taken && op->cursor_id != 0 &&
       mgconn_op_cursor (&untaken, op) == 0) {
      mgconn_cursor_free (untaken); /* gives the slot back */
   } else if (op->cursor_slot) {
      op->cursor_slot = false; /* finished, never delivered (the runtime is going away) */
      mg_conn_release_cursor_slot (op->conn);
   }
}

/* killCursors for a cursor the server still has (best effort; host thread). */
static void
kill_on_server (mgconn_cursor *cursor)
{
   if (cursor->id != 0 && mgconn_connection_ready_state (cursor->conn) == MGCONN_STATE_CONNECTED) {
      mg_op_input in = {.collection = cursor->collection};
      /* cursor->conn is the root that ran the query; the db is set below. */
      mgconn_op *op;
      if (mg_op_build (&op, cursor->conn, &kill_cursor_kind, &in, NULL, NULL) == 0) {
         bson_free (op->db);
         op->db = bson_strdup (cursor->db);
         op->cursor_id = cursor->id;
         op->server_id = cursor->server_id;
         mg_op_submit (op, NULL);
      }
      cursor->id = 0;
   }
}

/* A server cursor left open holds what the server keeps per cursor (FerretDB's SQLite backend: one
 * of its 100 database connections) until it times out: a dropped cursor is killed at once, or, when
 * a getMore is in flight, as soon as that getMore has been delivered. */
void
mgconn_cursor_free (mgconn_cursor *cursor)
{
   if (!cursor) {
      return;
   }
   if (cursor->busy) {
      cursor->freed = true;
   } else {
      kill_on_server (cursor);
      give_back_slot (cursor); /* now, not when the last op that read it is freed (a host's GC) */
   }
   cursor_unref (cursor);
}
