/*
 * op.c: an operation's life: submitted, buffered or queued, run by a worker, finished, delivered.
 *
 * Exactly one party finishes an op, under conn->lock: the worker that ran it (through
 * mg_buffer_after_run_locked, which may instead put it back in the buffer), a buffer timeout,
 * close(), a failed first connect, or cancel. Buffering itself (submission, the pump, deadlines,
 * re-sending) is in buffer.c. Whoever moves phase to MG_OP_FINISHED queues the
 * delivery; the others see FINISHED and leave it alone (a worker whose op was failed by a forced
 * close discards its result).
 *
 * References: one for the delivery (dropped after the callback has run), one for the host's
 * handle when `out` was given, one for a worker while the op is queued or running, and one for the
 * buffer timer while it is armed. Callbacks run only in the delivery, on the host thread.
 */
#include "connection.h"
#include "session.h"

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
   if (op->doc_keys != &op->doc_key1) {
      bson_free (op->doc_keys);
   }
   mgconn_error_cleanup (&op->fault);
   bson_destroy (&op->args);
   bson_destroy (&op->args2);
   bson_destroy (&op->opts);
   bson_destroy (&op->reply);
   mgconn_error_cleanup (&op->error);
   bson_free (op->db);
   bson_free (op->collection);
   mg_model_unref (op->model);
   bson_destroy (&op->session_opts);
   if (op->txn_opts) {
      bson_destroy (op->txn_opts);
   }
   mg_session_unref (op->session);
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
   bson_init (&op->session_opts);
   op->cb = cb;
   op->userdata = userdata;
   op->phase = MG_OP_NEW;
   op->job.run = op_job_run;
   op->delivery.run = op_delivery_run;
   op->delivery.drop = op_delivery_drop;
   mg_list_init (&op->conn_link);
   op->submitted_us = mg_now_us ();
   op->resend = -1;
   return op;
}

const char *
mg_op_method_name (const mgconn_op *op)
{
   return op->rt && op->rt->camel_case ? op->kind->camel : op->kind->snake;
}

/* "users" for messages: the collection, or the database for database-level ops. */
const char *
mg_op_target_name (const mgconn_op *op)
{
   return op->collection ? op->collection : op->db ? op->db : op->conn && op->conn->has_opts ? op->conn->opts.db_name : "db";
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
   if (!ok || op->cursor_id == 0) {
      mg_op_release_cursor_slot_locked (op); /* no server cursor was left open (buffer.c) */
   }
   if (reply) {
      bson_destroy (&op->reply);
      bson_steal (&op->reply, reply);
      bson_init (reply);
   }
   if (ok && op->resent > 0) {
      BSON_APPEND_INT32 (&op->reply, "resent", op->resent); /* results say so (Python, Lua) */
   }
   if (error && !ok && op->outcome_unknown && error->category != MGCONN_ERR_OUTCOME_UNKNOWN) {
      /* An attempt may have landed: whatever ended it later, the caller must not take this failure
       * for "nothing happened" (buffer.c). */
      mg_buffer_outcome_unknown (op, error, NULL, &op->error);
   } else if (error) {
      mgconn_error_copy (&op->error, error);
   }
   mg_runtime_deliver (op->rt, &op->delivery);
}

void
mg_op_fail_locked (mgconn_op *op, const mgconn_error *error)
{
   mg_op_finish_locked (op, false, NULL, (mgconn_error *) error);
}

void
mg_op_fail_all_locked (mg_list *list, const mgconn_error *error)
{
   mg_link *it, *tmp;
   MG_LIST_FOREACH_SAFE (it, tmp, list)
   {
      mg_op_fail_locked (MG_CONTAINER_OF (it, mgconn_op, conn_link), error);
   }
}

void
mg_op_fail_fmt_locked (mgconn_op *op, int32_t category, const char *fmt, const char *detail)
{
   mgconn_error e;
   mgconn_error_init (&e);
   mg_error_set (&e, category, fmt, mg_op_target_name (op), mg_op_method_name (op), detail);
   mg_op_fail_locked (op, &e);
   mgconn_error_cleanup (&e);
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
   if (still_wanted && op->session) {
      /* On the session's own client, which it keeps (session.c). */
      client = NULL;
      if (!mg_session_op_needs_client (op) || mg_session_begin_op (op, pool, &client, &error)) {
         mg_reply_check_begin ();
         ok = op->kind->exec (op, client, &reply, &error);
         ok = mg_reply_check_end (ok, &error, &reply);
         mg_session_after_op (op, ok, &error);
      }
   } else if (still_wanted) {
      client = mongoc_client_pool_pop (pool);
      mg_reply_check_begin ();
      ok = op->kind->exec (op, client, &reply, &error);
      ok = mg_reply_check_end (ok, &error, &reply); /* a reply without a readable ok is an error */
      mongoc_client_pool_push (pool, client);
   }

   mg_handoff_begin (op->rt); /* the host and the next op's worker are woken after the unlock */
   pthread_mutex_lock (&conn->lock);
   conn->in_flight--;
   if (op->on_session_client) {
      op->on_session_client = false;
      conn->session_ops_running--;
   }
   if (op->phase == MG_OP_RUNNING) {
      mg_buffer_after_run_locked (op, ok, &reply, &error); /* finishes it, or buffers it again */
   }
   mg_conn_pump_locked (conn);
   pthread_mutex_unlock (&conn->lock);
   mg_handoff_end (op->rt, true); /* this worker takes the first op the pump queued itself */

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
      mg_op_fail_fmt_locked (op, MGCONN_ERR_CANCELLED, "Operation `%s.%s()` was cancelled before it was sent%s", "");
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

int32_t
mgconn_op_resent (const mgconn_op *op)
{
   return op ? op->resent : 0;
}
