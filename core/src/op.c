/*
 * op.c: an operation's life: submitted, buffered or queued, run by a worker, finished, delivered.
 *
 * Exactly one party finishes an op, under conn->lock: the worker that ran it, a buffer timeout,
 * close(), a failed first connect, or cancel. Whoever moves phase to MG_OP_FINISHED queues the
 * delivery; the others see FINISHED and leave it alone (a worker whose op was failed by a forced
 * close discards its result).
 *
 * References: one for the delivery (dropped after the callback has run), one for the host's
 * handle when `out` was given, one for a worker while the op is queued or running, and one for the
 * buffer timer while it is armed. Callbacks run only in the delivery, on the host thread.
 */
#include "connection.h"

#include <string.h>

static void op_job_run (mg_job *job);
static void op_delivery_run (mg_delivery *d);
static void op_delivery_drop (mg_delivery *d);

void
mg_op_ref (mgconn_op *op)
{
   atomic_fetch_add (&op->refs, 1);
}

void
mg_op_unref (mgconn_op *op)
{
   if (!op || atomic_fetch_sub (&op->refs, 1) != 1) {
      return;
   }
   mg_op_release_cursor (op);
   bson_destroy (&op->args);
   bson_destroy (&op->args2);
   bson_destroy (&op->opts);
   bson_destroy (&op->reply);
   mgconn_error_cleanup (&op->error);
   bson_free (op->db);
   bson_free (op->collection);
   mg_model_unref (op->model);
   if (op->conn) {
      mg_conn_unref (op->conn);
   }
   bson_free (op);
}

mgconn_op *
mg_op_new (mgconn_connection *conn, const mg_op_kind *kind, const char *db, const char *collection, mgconn_op_cb cb,
           void *userdata)
{
   mgconn_op *op = BSON_ALIGNED_ALLOC0 (mgconn_op); /* embeds bson_t: 128-byte aligned */
   atomic_init (&op->refs, 1);
   op->rt = conn ? conn->rt : NULL;
   if (conn) {
      mg_conn_ref (conn);
   }
   op->conn = conn;
   op->kind = kind;
   op->db = db ? bson_strdup (db) : NULL;
   op->collection = collection ? bson_strdup (collection) : NULL;
   bson_init (&op->args);
   bson_init (&op->args2);
   bson_init (&op->opts);
   bson_init (&op->reply);
   op->cb = cb;
   op->userdata = userdata;
   op->phase = MG_OP_NEW;
   op->job.run = op_job_run;
   op->delivery.run = op_delivery_run;
   op->delivery.drop = op_delivery_drop;
   mg_list_init (&op->conn_link);
   op->submitted_us = mg_now_us ();
   return op;
}

const char *
mg_op_method_name (const mgconn_op *op)
{
   return op->rt && op->rt->camel_case ? op->kind->camel : op->kind->snake;
}

/* "users" for messages: the collection, or the database for database-level ops. */
static const char *
target_name (const mgconn_op *op)
{
   return op->collection ? op->collection : op->db ? op->db : op->conn && op->conn->has_opts ? op->conn->opts.db_name : "db";
}

void
mg_op_disarm_buffer_timer_locked (mgconn_op *op)
{
   if (op->buffer_timer_armed && mg_timer_disarm (&op->rt->timers, &op->buffer_timer)) {
      op->buffer_timer_armed = false;
      atomic_fetch_sub (&op->refs, 1); /* the timer's reference; never the last (the caller's is live) */
   }
}

void
mg_op_finish_locked (mgconn_op *op, bool ok, bson_t *reply, mgconn_error *error)
{
   if (op->phase == MG_OP_FINISHED) {
      return;
   }
   op->phase = MG_OP_FINISHED;
   mg_op_disarm_buffer_timer_locked (op);
   if (mg_link_linked (&op->conn_link)) {
      mg_link_unlink (&op->conn_link);
   }
   op->ok = ok;
   if (reply) {
      bson_destroy (&op->reply);
      bson_steal (&op->reply, reply);
      bson_init (reply);
   }
   if (error) {
      mgconn_error_copy (&op->error, error);
   }
   mg_runtime_deliver (op->rt, &op->delivery);
}

void
mg_op_fail_locked (mgconn_op *op, const mgconn_error *error)
{
   mg_op_finish_locked (op, false, NULL, (mgconn_error *) error);
}

/* ---- buffering ---- */

static void
buffer_timeout (mg_timer *t)
{
   mgconn_op *op = MG_CONTAINER_OF (t, mgconn_op, buffer_timer);
   mgconn_connection *conn = op->conn;
   pthread_mutex_lock (&conn->lock);
   op->buffer_timer_armed = false;
   if (op->phase == MG_OP_WAITING) {
      mgconn_error e;
      mgconn_error_init (&e);
      mg_error_set (&e, MGCONN_ERR_BUFFER_TIMEOUT, "Operation `%s.%s()` buffering timed out after %lldms",
                    target_name (op), mg_op_method_name (op),
                    (long long) ((t->deadline_us - op->submitted_us) / 1000));
      mg_op_fail_locked (op, &e);
      mgconn_error_cleanup (&e);
   }
   pthread_mutex_unlock (&conn->lock);
   mg_op_unref (op); /* the timer's reference */
}

void
mg_op_arm_buffer_timer_locked (mgconn_op *op)
{
   if (op->buffer_timer_armed || !op->kind->buffered) {
      return;
   }
   op->buffer_timer_armed = true;
   mg_op_ref (op);
   mg_timer_arm (&op->rt->timers, &op->buffer_timer,
                 op->submitted_us + (int64_t) mg_effective_buffer_timeout_ms (op) * 1000, buffer_timeout);
}

void
mg_conn_arm_buffer_timers_locked (mgconn_connection *conn)
{
   mg_link *it;
   for (it = conn->waiting.next; it != &conn->waiting; it = it->next) {
      mg_op_arm_buffer_timer_locked (MG_CONTAINER_OF (it, mgconn_op, conn_link));
   }
}

void
mg_conn_fail_buffered_locked (mgconn_connection *conn, const mgconn_error *cause)
{
   mg_link *it, *tmp;
   MG_LIST_FOREACH_SAFE (it, tmp, &conn->waiting)
   {
      mgconn_op *op = MG_CONTAINER_OF (it, mgconn_op, conn_link);
      mgconn_error e;
      mgconn_error_init (&e);
      mgconn_error_copy (&e, cause);
      mg_error_set (&e, cause->category, "Operation `%s.%s()` failed because the initial connection failed: %s",
                    target_name (op), mg_op_method_name (op), cause->message);
      mg_op_fail_locked (op, &e);
      mgconn_error_cleanup (&e);
   }
}

static void
fail_now_locked (mgconn_op *op, int32_t category, const char *fmt, const char *detail)
{
   mgconn_error e;
   mgconn_error_init (&e);
   mg_error_set (&e, category, fmt, target_name (op), mg_op_method_name (op), detail);
   mg_op_fail_locked (op, &e);
   mgconn_error_cleanup (&e);
}

/* Runs on the host thread. The op never finishes here synchronously in the caller's sight: even an
 * immediate failure reaches the host through its delivery, like every other result. */
int
mg_op_submit (mgconn_op *op, mgconn_op **out)
{
   mgconn_connection *conn = op->conn; /* the root */
   int32_t state;
   if (out) {
      mg_op_ref (op);
      *out = op;
   }
   op->debug = mg_effective_debug (op);
   pthread_mutex_lock (&conn->lock);
   state = atomic_load (&conn->ready_state);
   op->phase = MG_OP_WAITING;
   mg_list_push_back (&conn->waiting, &op->conn_link);
   if (conn->host_released || conn->closed || conn->close_wanted || op->via_detached ||
       (op->model && op->model->coll->conn->detached)) {
      fail_now_locked (op, MGCONN_ERR_CONNECTION_CLOSED, "Cannot run `%s.%s()`: the connection is %s", "closed");
   } else if (op->largest_doc > (uint32_t) conn->max_bson_size) {
      char detail[96];
      bson_snprintf (detail, sizeof detail, "%u bytes, over the server's maxBsonObjectSize of %d bytes",
                     op->largest_doc, conn->max_bson_size);
      fail_now_locked (op, MGCONN_ERR_DOCUMENT_TOO_LARGE, "Cannot run `%s.%s()`: a document is %s; nothing was sent",
                       detail);
   } else if (mg_conn_connected_locked (conn)) {
      mg_conn_pump_locked (conn);
   } else if (op->kind->buffered && mg_effective_buffer_commands (op) == 0) {
      if (conn->ever_connected) {
         fail_now_locked (op, MGCONN_ERR_NOT_CONNECTED,
                          "Cannot call `%s.%s()` while the connection is down if `bufferCommands = false`.%s", "");
      } else {
         fail_now_locked (op, MGCONN_ERR_NOT_CONNECTED,
                          "Cannot call `%s.%s()` before initial connection is complete if `bufferCommands = false`. "
                          "Make sure you `await mgconn.connect()` if you have `bufferCommands = false`.%s",
                          "");
      }
   } else {
      /* Buffered: before the first open (also on a connection not opened yet, as for Mongoose's
       * models defined before connect()) and during an outage. */
      (void) state;
      mg_op_arm_buffer_timer_locked (op);
   }
   pthread_mutex_unlock (&conn->lock);
   return 0;
}

/* ---- running ---- */

static void
op_job_run (mg_job *job)
{
   mgconn_op *op = MG_CONTAINER_OF (job, mgconn_op, job);
   mgconn_connection *conn = op->conn;
   mongoc_client_pool_t *pool;
   mongoc_client_t *client;
   bson_t reply = BSON_INITIALIZER;
   mgconn_error error;
   bool ok = false, still_wanted;

   pthread_mutex_lock (&conn->lock);
   pool = conn->pool;
   still_wanted = op->phase == MG_OP_RUNNING;
   pthread_mutex_unlock (&conn->lock);

   mgconn_error_init (&error);
   if (still_wanted && op->debug) {
      char *line = mg_debug_line (op);
      mg_log (op->rt, MGCONN_LOG_DEBUG, "debug", "%s", line);
      bson_free (line);
   }
   if (still_wanted) {
      client = mongoc_client_pool_pop (pool);
      mg_reply_check_begin ();
      ok = op->kind->exec (op, client, &reply, &error);
      ok = mg_reply_check_end (ok, &error, &reply); /* a reply without a readable ok is an error */
      mongoc_client_pool_push (pool, client);
   }

   pthread_mutex_lock (&conn->lock);
   conn->in_flight--;
   if (op->phase == MG_OP_RUNNING) {
      mg_op_finish_locked (op, ok, &reply, ok ? NULL : &error);
   }
   mg_conn_pump_locked (conn);
   pthread_mutex_unlock (&conn->lock);

   bson_destroy (&reply);
   mgconn_error_cleanup (&error);
   mg_op_unref (op); /* the worker's */
}

static void
op_delivery_run (mg_delivery *d)
{
   mgconn_op *op = MG_CONTAINER_OF (d, mgconn_op, delivery);
   op->status = op->ok ? MGCONN_OP_SUCCEEDED : MGCONN_OP_FAILED;
   op->delivered = true;
   if (op->cb) {
      op->cb (op, op->userdata);
   }
   mg_op_unref (op); /* the delivery's */
}

static void
op_delivery_drop (mg_delivery *d)
{
   mg_op_unref (MG_CONTAINER_OF (d, mgconn_op, delivery));
}

/* ---- public ---- */

void
mgconn_op_free (mgconn_op *op)
{
   mg_op_unref (op); /* a pending op still finishes and runs its callback */
}

int32_t
mgconn_op_status (const mgconn_op *op)
{
   return op ? op->status : MGCONN_OP_FAILED;
}

int32_t
mgconn_op_wait (mgconn_op *op, int32_t timeout_ms)
{
   if (!op) {
      return MGCONN_OP_FAILED;
   }
   mg_runtime_wait_until (op->rt, &op->delivered, timeout_ms < 0 ? -1 : mg_now_us () + (int64_t) timeout_ms * 1000);
   return op->status;
}

int
mgconn_op_cancel (mgconn_op *op)
{
   int rc = 0;
   if (!op) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_op_cancel: op is NULL");
   }
   if (!op->conn) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "this operation cannot be cancelled");
   }
   pthread_mutex_lock (&op->conn->lock);
   if (op->phase == MG_OP_WAITING && op->kind->buffered) {
      fail_now_locked (op, MGCONN_ERR_CANCELLED, "Operation `%s.%s()` was cancelled before it was sent%s", "");
   } else {
      rc = -MGCONN_ERR_INVALID_ARGUMENT;
   }
   pthread_mutex_unlock (&op->conn->lock);
   if (rc) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "the operation was already sent or has finished");
   }
   return 0;
}

int
mgconn_op_reply (const mgconn_op *op, const uint8_t **data, size_t *len)
{
   if (!op || !data || !len) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_op_reply: a NULL argument");
   }
   *data = bson_get_data (&op->reply);
   *len = op->reply.len;
   return 0;
}

const mgconn_error *
mgconn_op_error (const mgconn_op *op)
{
   return op && op->delivered && !op->ok ? &op->error : NULL;
}
