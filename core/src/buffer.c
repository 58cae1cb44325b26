/*
 * buffer.c: where an operation waits for its connection, when it goes out, and what happens when
 * the connection fails under it.
 *
 * The queue
 *   conn->waiting holds a root connection's WAITING ops in issue order (op->seq, given at
 *   submission). An op waits there while the connection is not up (buffered: before the first
 *   open, during an outage), while maxPoolSize ops are in flight, while its model's autoCreate runs,
 *   while maxOpenCursors queries and open cursors exist (a query only: below), while an earlier
 *   write on the same document or an earlier op of the same session is in flight (below), and
 *   while sessions hold the pool's clients (session.h: under its buffer deadline). The pump moves ops from
 *   the front to the workers; nothing else does. Ops on one document go in issue order: the pump
 *   holds back an op that shares a key with a running or held-back op (doc_keys.c).
 *
 * Re-sending
 *   A worker's op whose connection failed before its reply (fault_of: a network error, no server
 *   to be had, "not primary", the server shutting down) goes back into the queue in its issue
 *   place, ahead of everything issued after it, when running it again is safe: nothing was sent
 *   (the failure was in server selection or in connecting), or the kind says the op is idempotent
 *   (resend_rules.c; the list is in docs/guide.md). It then runs after the reconnect, still under
 *   its bufferTimeoutMS counted from issue. A write that may have reached the server and is not
 *   sent again is marked outcome_unknown: whatever ends it is reported as MGCONN_ERR_OUTCOME_UNKNOWN
 *   (op.c), never as a bare network error. Where libmongoc retries by itself (retryable writes and
 *   reads on replica sets and sharded clusters), its one retry is the only one: mgconn does not add
 *   a second. resendInterrupted: false (connection option, or per operation) turns re-sending off.
 *
 * Threads and locks
 *   Everything here runs under the root connection's lock: submission on the host thread, the pump
 *   and the after-run decision on workers (and on whichever thread changed the connection's
 *   state), buffer deadlines on the timer thread (buffer_timeout takes the lock itself). The pump
 *   also takes rt->lock to queue jobs (conn->lock -> rt->lock, as internal.h orders). Nothing here
 *   calls libmongoc or host code.
 *
 * Ownership
 *   conn->waiting and conn->running link ops without owning them: the host's submission reference
 *   (the delivery's) keeps an op alive until it finishes. The pump takes a reference for the worker
 *   (dropped by op_job_run); an armed buffer timer holds one (dropped when it fires or is disarmed).
 */
#include "connection.h"
#include "doc_keys.h"
#include "pool.h"
#include "session.h"

#include <string.h>

static atomic_llong next_op_seq;

/* An op whose attempts reached a server and lost the connection this many times is not sent
 * again. A server that drops the connection on this one request while it answers everything else
 * (monitoring keeps the connection up) would otherwise have it sent back to back until its
 * bufferTimeoutMS. Attempts that never reached a server (a refused connect in the moment before
 * monitoring sees a killed server go, a failed handshake) do not count: they cost the server
 * nothing, and an outage can fail several of them in a row; the buffer deadline bounds them. */
#define MG_RESEND_LIMIT 5

/* ---- cursor slots ---- */

/* maxOpenCursors: a query takes a slot when the pump starts it. A reply that leaves no server cursor
 * (done, or a failure) gives it back at the op's finish (op.c); otherwise the op keeps it until
 * mgconn_op_cursor hands it to the cursor, which gives it back once exhausted or freed (cursor.c).
 * The count is the root's, under its lock. */

int32_t
mg_conn_max_open_cursors (const mgconn_connection *root)
{
   return root->has_opts && root->opts.max_open_cursors >= 0 ? root->opts.max_open_cursors
                                                             : MG_DEFAULT_MAX_OPEN_CURSORS;
}

static bool
cursor_slot_free_locked (const mgconn_connection *conn)
{
   int32_t cap = mg_conn_max_open_cursors (conn);
   return cap == 0 || conn->cursor_slots < cap;
}

void
mg_op_release_cursor_slot_locked (mgconn_op *op)
{
   if (op->cursor_slot) {
      op->cursor_slot = false;
      op->conn->cursor_slots--;
   }
}

void
mg_conn_release_cursor_slot (mgconn_connection *root)
{
   pthread_mutex_lock (&root->lock);
   root->cursor_slots--;
   mg_conn_pump_locked (root);
   pthread_mutex_unlock (&root->lock);
}

/* ---- the pump ---- */

void
mg_conn_pump_locked (mgconn_connection *conn)
{
   mgconn_runtime *rt = conn->rt;
   if (mg_conn_connected_locked (conn) && !mg_list_empty (&conn->waiting)) {
      mg_link *it, *tmp;
      mg_key_set busy; /* the documents of running ops, and of ops held back in this pass */
      mg_key_set_init (&busy);
      for (it = conn->running.next; it != &conn->running; it = it->next) {
         mg_key_set_add_op (&busy, MG_CONTAINER_OF (it, mgconn_op, conn_link));
      }
      pthread_mutex_lock (&rt->lock);
      MG_LIST_FOREACH_SAFE (it, tmp, &conn->waiting)
      {
         mgconn_op *op = MG_CONTAINER_OF (it, mgconn_op, conn_link);
         struct mgconn_session *s = op->session;
         bool reserve = s && !s->holds_client && mg_session_op_needs_client (op);
         /* maxPoolSize clients: those of running ops, plus those sessions hold (an op on its
          * session's client takes none). */
         if ((!s || reserve) &&
             conn->in_flight - conn->session_ops_running + conn->session_clients >= conn->opts.max_pool_size) {
            if (conn->session_clients == 0 && conn->session_ops_running == 0) {
               break; /* no op behind it could go either */
            }
            /* Sessions hold clients until they end, which may be never: this wait has the op's
             * buffer deadline, and its timeout says why. */
            op->waits_for_session_client = true;
            mg_op_arm_buffer_timer_locked (op);
            mg_key_set_add_op (&busy, op);
            continue;
         }
         if (op->kind->opens_cursor && !cursor_slot_free_locked (conn)) {
            /* Waits for a cursor to be exhausted, closed or freed, under its buffer deadline;
             * later queries wait behind it, every other op goes on. */
            op->waits_for_cursor_slot = true;
            mg_op_arm_buffer_timer_locked (op);
            continue;
         }
         if ((op->model && op->model->create_pending && !op->is_init) || mg_key_set_meets (&busy, op)) {
            /* Waits (for its model's autoCreate, or for an earlier write on its document); ops on
             * other documents go on, and later ones on its document wait behind it. */
            mg_key_set_add_op (&busy, op);
            continue;
         }
         mg_key_set_add_op (&busy, op);
         mg_link_unlink (&op->conn_link);
         mg_op_disarm_buffer_timer_locked (op);
         if (!op->db) {
            op->db = bson_strdup (conn->opts.db_name); /* the database of the open it runs in */
         }
         op->phase = MG_OP_RUNNING;
         if (op->kind->opens_cursor) { /* counted with no limit too: stats() shows them */
            op->cursor_slot = true;
            conn->cursor_slots++;
         }
         op->waits_for_cursor_slot = false;
         op->waits_for_session_client = false;
         if (s) {
            op->on_session_client = true;
            conn->session_ops_running++;
            if (reserve) { /* its first op takes the client the session keeps (session.c) */
               s->holds_client = true;
               conn->session_clients++;
               mg_list_push_back (&conn->holding_sessions, &s->holding_link);
               mg_session_ref (s); /* the holding's */
            }
         }
         mg_list_push_back (&conn->running, &op->conn_link);
         conn->in_flight++;
         conn->peak_in_flight = conn->in_flight > conn->peak_in_flight ? conn->in_flight : conn->peak_in_flight;
         mg_op_ref (op); /* the worker's */
         mg_runtime_push_job_locked (rt, &op->job);
      }
      pthread_mutex_unlock (&rt->lock);
      mg_key_set_cleanup (&busy);
   }
   mg_pool_teardown_if_idle_locked (conn);
}

/* ---- deadlines ---- */

void
mg_op_disarm_buffer_timer_locked (mgconn_op *op)
{
   if (op->buffer_timer_armed && mg_timer_disarm (&op->rt->timers, &op->buffer_timer)) {
      op->buffer_timer_armed = false;
      atomic_fetch_sub (&op->refs, 1); /* the timer's reference; never the last (the caller's is live) */
   }
}

static int64_t
buffer_deadline_us (const mgconn_op *op)
{
   return op->submitted_us + (int64_t) mg_effective_buffer_timeout_ms (op) * 1000;
}

static void
buffer_timeout (mg_timer *t)
{
   mgconn_op *op = MG_CONTAINER_OF (t, mgconn_op, buffer_timer);
   mgconn_connection *conn = op->conn;
   pthread_mutex_lock (&conn->lock);
   op->buffer_timer_armed = false;
   if (op->phase == MG_OP_WAITING) {
      mgconn_error e;
      long long waited = (long long) ((t->deadline_us - op->submitted_us) / 1000);
      mgconn_error_init (&e);
      if (op->waits_for_cursor_slot && mg_conn_connected_locked (conn)) {
         mg_error_set (&e, MGCONN_ERR_BUFFER_TIMEOUT,
                       "Operation `%s.%s()` waited %lldms for a cursor to close: %d queries and open cursors "
                       "on this connection are at maxOpenCursors (%d). Read cursors to their end, close() "
                       "(or drop) the ones no longer read, or raise maxOpenCursors",
                       mg_op_target_name (op), mg_op_method_name (op), waited, conn->cursor_slots,
                       mg_conn_max_open_cursors (conn));
      } else if (op->waits_for_session_client && mg_conn_connected_locked (conn)) {
         mg_error_set (&e, MGCONN_ERR_BUFFER_TIMEOUT,
                       "Operation `%s.%s()` waited %lldms for a client of the pool: sessions hold %d of its "
                       "maxPoolSize (%d) clients until they end. End sessions when done (%s), or raise maxPoolSize",
                       mg_op_target_name (op), mg_op_method_name (op), waited, conn->session_clients,
                       conn->opts.max_pool_size, op->rt->camel_case ? "endSession()" : "end_session()");
      } else {
         mg_error_set (&e, MGCONN_ERR_BUFFER_TIMEOUT, "Operation `%s.%s()` buffering timed out after %lldms",
                       mg_op_target_name (op), mg_op_method_name (op), waited);
      }
      mg_op_fail_locked (op, &e); /* a re-queued write becomes OutcomeUnknown there (op.c) */
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
   mg_timer_arm (&op->rt->timers, &op->buffer_timer, buffer_deadline_us (op), buffer_timeout);
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
                    mg_op_target_name (op), mg_op_method_name (op), cause->message);
      mg_op_fail_locked (op, &e);
      mgconn_error_cleanup (&e);
   }
}

/* ---- submission ---- */

/* Runs on the host thread. The op never finishes here synchronously in the caller's sight: even an
 * immediate failure reaches the host through its delivery, like every other result. */
int
mg_op_submit (mgconn_op *op, mgconn_op **out)
{
   mgconn_connection *conn = op->conn; /* the root */
   if (out) {
      mg_op_ref (op);
      *out = op;
   }
   op->debug = mg_effective_debug (op);
   op->seq = atomic_fetch_add (&next_op_seq, 1);
   mg_handoff_begin (conn->rt); /* the worker for it is woken after the unlock */
   pthread_mutex_lock (&conn->lock);
   op->phase = MG_OP_WAITING;
   mg_list_push_back (&conn->waiting, &op->conn_link);
   if (conn->host_released || conn->closed || conn->close_wanted || op->via_detached ||
       (op->model && op->model->coll->conn->detached)) {
      mg_op_fail_fmt_locked (op, MGCONN_ERR_CONNECTION_CLOSED, "Cannot run `%s.%s()`: the connection is %s", "closed");
   } else if (op->largest_doc > (uint32_t) conn->max_bson_size) {
      char detail[96];
      bson_snprintf (detail, sizeof detail, "%u bytes, over the server's maxBsonObjectSize of %d bytes",
                     op->largest_doc, conn->max_bson_size);
      mg_op_fail_fmt_locked (op, MGCONN_ERR_DOCUMENT_TOO_LARGE,
                             "Cannot run `%s.%s()`: a document is %s; nothing was sent", detail);
   } else if (mg_conn_connected_locked (conn)) {
      mg_conn_pump_locked (conn);
   } else if (op->kind->buffered && mg_effective_buffer_commands (op) == 0) {
      if (conn->ever_connected) {
         mg_op_fail_fmt_locked (op, MGCONN_ERR_NOT_CONNECTED,
                                "Cannot call `%s.%s()` while the connection is down if `bufferCommands = false`.%s", "");
      } else {
         mg_op_fail_fmt_locked (op, MGCONN_ERR_NOT_CONNECTED,
                                "Cannot call `%s.%s()` before initial connection is complete if `bufferCommands = "
                                "false`. Make sure you `await mgconn.connect()` if you have `bufferCommands = false`.%s",
                                "");
      }
   } else {
      /* Buffered: before the first open (also on a connection not opened yet, as for Mongoose's
       * models defined before connect()) and during an outage. */
      mg_op_arm_buffer_timer_locked (op);
   }
   pthread_mutex_unlock (&conn->lock);
   mg_handoff_end (conn->rt, false);
   return 0;
}

/* ---- after a run: finished, or back in the queue ---- */

typedef enum {
   FAULT_NONE,      /* not the connection's failure: the answer stands */
   FAULT_NOT_SENT,  /* the connection failed before the op could reach a server */
   FAULT_IN_FLIGHT, /* it failed after the op may have reached the server, before the reply */
   FAULT_BAD_REPLY  /* the server answered, with a reply that cannot be read (a hostile or broken
                       peer): sending the op again would only get the same answer, so it is not,
                       and a write's outcome is unknown */
} fault_kind;

static bool
server_domain (uint32_t domain)
{
   return domain == MONGOC_ERROR_SERVER || domain == MONGOC_ERROR_WRITE_CONCERN || domain == MONGOC_ERROR_QUERY ||
          domain == MONGOC_ERROR_COLLECTION || domain == MONGOC_ERROR_COMMAND;
}

static fault_kind
fault_of (const mgconn_error *e)
{
   if (e->domain == MONGOC_ERROR_PROTOCOL && e->code == MONGOC_ERROR_PROTOCOL_INVALID_REPLY) {
      return FAULT_BAD_REPLY; /* the driver's "invalid reply", "malformed server message", and reply_check.c's */
   }
   if (e->domain == MONGOC_ERROR_SERVER_SELECTION ||
       (e->domain == MONGOC_ERROR_STREAM &&
        (e->code == MONGOC_ERROR_STREAM_CONNECT || e->code == MONGOC_ERROR_STREAM_NAME_RESOLUTION))) {
      return FAULT_NOT_SENT;
   }
   /* A new pooled socket whose handshake failed: libmongoc says so in its one format for a command it
    * could not send or read back (`Failed to send "hello" command ...`), naming the handshake's
    * command, which is never the operation's own: the operation was not sent. */
   if (e->domain == MONGOC_ERROR_STREAM &&
       (strncmp (e->message, "Failed to send \"hello\" command", 30) == 0 ||
        strncmp (e->message, "Failed to send \"isMaster\" command", 33) == 0)) {
      return FAULT_NOT_SENT;
   }
   if (server_domain (e->domain)) {
      switch (e->code) {
      case 10107: /* NotWritablePrimary */
      case 13435: /* NotPrimaryNoSecondaryOk */
      case 13436: /* NotPrimaryOrSecondary */
         return FAULT_NOT_SENT; /* refused before running: nothing was applied */
      case 6:     /* HostUnreachable */
      case 7:     /* HostNotFound */
      case 89:    /* NetworkTimeout */
      case 91:    /* ShutdownInProgress */
      case 189:   /* PrimarySteppedDown */
      case 9001:  /* SocketException */
      case 11600: /* InterruptedAtShutdown */
      case 11602: /* InterruptedDueToReplStateChange */
         return FAULT_IN_FLIGHT;
      default:
         break;
      }
   }
   return e->category == MGCONN_ERR_NETWORK ? FAULT_IN_FLIGHT : FAULT_NONE;
}

/* libmongoc's own retry applied to this op: a retryable write or read on a topology with sessions. */
static bool
driver_retried_locked (const mgconn_op *op)
{
   const mgconn_connection *conn = op->conn;
   const char *t = conn->topology_type;
   if (!op->kind->driver_retry || !conn->has_opts ||
       !(strncmp (t, "ReplicaSet", 10) == 0 || strcmp (t, "Sharded") == 0 || strcmp (t, "LoadBalanced") == 0)) {
      return false;
   }
   return mongoc_uri_get_option_as_bool (conn->opts.uri,
                                         op->kind->driver_retry == 1 ? MONGOC_URI_RETRYWRITES : MONGOC_URI_RETRYREADS,
                                         true);
}

static bool
resend_enabled (const mgconn_op *op)
{
   if (op->resend >= 0) {
      return op->resend != 0;
   }
   return !op->conn->has_opts || op->conn->opts.resend_interrupted != 0;
}

/* Back into the waiting queue in its issue place: before every op issued after it. */
static void
requeue_locked (mgconn_op *op)
{
   mgconn_connection *conn = op->conn;
   mg_link *it;
   mg_link_unlink (&op->conn_link);
   for (it = conn->waiting.next; it != &conn->waiting; it = it->next) {
      if (MG_CONTAINER_OF (it, mgconn_op, conn_link)->seq > op->seq) {
         break;
      }
   }
   /* insert before `it` */
   op->conn_link.next = it;
   op->conn_link.prev = it->prev;
   it->prev->next = &op->conn_link;
   it->prev = &op->conn_link;
   op->phase = MG_OP_WAITING;
   mg_op_release_cursor_slot_locked (op); /* taken again when it is sent again */
   op->resent++;
   mg_op_arm_buffer_timer_locked (op);
}

void
mg_buffer_outcome_unknown (mgconn_op *op, const mgconn_error *final, const char *why, mgconn_error *out)
{
   mgconn_error e;
   char then[MGCONN_ERROR_MESSAGE_SIZE];
   mgconn_error_init (&e);
   mgconn_error_copy (&e, &op->fault); /* code, domain and labels of the fault */
   then[0] = '\0';
   if (!why && final && strcmp (final->message, op->fault.message) != 0) {
      bson_snprintf (then, sizeof then, "then: %s", final->message);
   }
   mg_error_set (&e, MGCONN_ERR_OUTCOME_UNKNOWN,
                 "Operation `%s.%s()` may or may not have been applied: its connection failed before the reply "
                 "(%s), and it was not sent again%s%s%s",
                 mg_op_target_name (op), mg_op_method_name (op), op->fault.message,
                 op->resent ? " after its last attempt" : "", why || then[0] ? ": " : "", why ? why : then);
   mgconn_error_copy (out, &e);
   mgconn_error_cleanup (&e);
}

void
mg_buffer_after_run_locked (mgconn_op *op, bool ok, bson_t *reply, mgconn_error *error)
{
   mgconn_connection *conn = op->conn;
   fault_kind fault;
   bool driver, safe, writes = op->kind->writes || op->writes;
   const char *why = NULL;
   char why_buf[160];

   if (ok) {
      mg_op_finish_locked (op, true, reply, NULL);
      return;
   }
   fault = fault_of (error);
   if (fault == FAULT_NONE) {
      if (server_domain (error->domain)) {
         op->outcome_unknown = false; /* a server answered this attempt: its answer is the outcome */
      }
      mg_op_finish_locked (op, false, reply, error);
      return;
   }
   driver = driver_retried_locked (op);
   if (fault == FAULT_BAD_REPLY) {
      safe = false;
      why = "the server's reply could not be read";
   } else if (driver) {
      /* libmongoc sent it again itself and reports its second attempt: the first may have landed. */
      fault = FAULT_IN_FLIGHT;
      safe = false;
      why = op->kind->driver_retry == 1 ? "libmongoc's retryable write (retryWrites) was its one retry"
                                        : "libmongoc's retryable read (retryReads) was its one retry";
   } else if (!op->kind->idempotent) {
      safe = false;
      why = "this operation cannot be sent again";
   } else if (fault == FAULT_NOT_SENT) {
      safe = true; /* nothing reached a server */
   } else {
      safe = op->kind->idempotent (op, &why);
   }
   if (safe && !resend_enabled (op)) {
      safe = false;
      why = "re-sending is turned off (resendInterrupted: false)";
   }
   if (safe && op->session_txn) {
      safe = false;
      why = "an operation in a transaction is not sent again: the transaction is retried as a whole";
   }
   if (safe && !op->kind->buffered) {
      safe = false;
   }
   if (fault != FAULT_NOT_SENT) {
      op->faults_after_sending++;
   }
   if (safe && op->faults_after_sending > MG_RESEND_LIMIT) {
      safe = false;
      bson_snprintf (why_buf, sizeof why_buf,
                     "it was sent again %d times, and each time the connection failed before the reply",
                     MG_RESEND_LIMIT);
      why = why_buf;
   }
   if (safe && mg_now_us () >= buffer_deadline_us (op)) {
      safe = false;
      bson_snprintf (why_buf, sizeof why_buf, "its bufferTimeoutMS (%dms from issue) had passed",
                     mg_effective_buffer_timeout_ms (op));
      why = why_buf;
   }
   if (safe && (conn->close_wanted || conn->host_released || conn->failed || conn->pool_phase != MG_POOL_READY)) {
      safe = false;
      why = "the connection is being closed";
   }
   if ((fault == FAULT_IN_FLIGHT || fault == FAULT_BAD_REPLY) && writes) {
      op->outcome_unknown = true;
      mgconn_error_copy (&op->fault, error);
   }
   if (safe) {
      requeue_locked (op);
      return;
   }
   if (op->outcome_unknown) {
      mgconn_error e;
      mgconn_error_init (&e);
      mg_buffer_outcome_unknown (op, error, why, &e);
      mg_op_finish_locked (op, false, reply, &e);
      mgconn_error_cleanup (&e);
   } else {
      mg_op_finish_locked (op, false, reply, error);
   }
}
