/*
 * connection.c: a connection's life — open, connected, lost, back, closed — and the events that
 * tell the host about it.
 *
 * The state machine runs under conn->lock, driven from four places:
 *   the host          open (here), close and free      (close.c)
 *   libmongoc         topology up/down                 (monitor.c -> mg_conn_topology_locked)
 *   the timer thread  the initial connect timed out    (connect_timeout)
 *   workers           pool made or not, credentials    (pool.c)
 *                     checked, pool destroyed
 * Events are queued in the order the state changes, and reach listeners at the next dispatch.
 * The pool itself, its phases and its jobs are pool.c's; operations waiting for the state to
 * allow them are buffer.c's.
 *
 * References (conn->refs; the connection is freed when the last one goes, mg_conn_unref):
 *   the host's handle          from mgconn_connection_new or use_db to mgconn_connection_free
 *   the pool                   from the open job until the teardown has destroyed it (pool.c);
 *                              libmongoc's monitoring callbacks run under it (destroying the pool
 *                              joins their threads)
 *   a queued or running job    the warm-up and the credentials check (pool.c), the reconnect
 *                              probe (monitor.c)
 *   an armed timer             the connect timer (here), the close's grace (close.c)
 *   an op, a cursor            each holds its root (op.c, cursor.c)
 *   a collection handle        collection.c
 *   a queued delivery          an event, for the connection and each child it reaches (event.c);
 *                              a command-monitoring event (command_monitor.c)
 *   a use_db child             holds its root (registry.c)
 *   a walk of rt->connections  for the length of the walk (close.c), taken only from a count that
 *                              is not yet zero (mg_conn_ref_unless_dying)
 * Apart from these, conn->handles counts the host's handles: when the last goes, the connection
 * is let go (close.c), though references may keep its memory a while longer.
 */
#include "connection.h"
#include "pool.h"

#include <string.h>
#include <sys/socket.h>
#include <time.h>

static atomic_llong next_connection_id;

static void connect_timeout (mg_timer *t);

void
mg_conn_ref (mgconn_connection *conn)
{
   atomic_fetch_add (&conn->refs, 1);
}

bool
mg_conn_ref_unless_dying (mgconn_connection *conn)
{
   return mg_ref_unless_zero (&conn->refs);
}

void
mg_conn_unref (mgconn_connection *conn)
{
   if (!conn || atomic_fetch_sub (&conn->refs, 1) != 1) {
      return;
   }
   if (conn->rt) {
      pthread_mutex_lock (&conn->rt->lock);
      if (mg_link_linked (&conn->rt_link)) {
         mg_link_unlink (&conn->rt_link);
      }
      pthread_mutex_unlock (&conn->rt->lock);
   }
   if (conn->has_opts) {
      mg_options_cleanup (&conn->opts);
   }
   if (conn->parent) {
      mg_conn_unref (conn->parent);
   }
   bson_free (conn->child_db);
   bson_free (conn->models);
   bson_destroy (&conn->servers);
   bson_destroy (&conn->server_errors);
   mgconn_error_cleanup (&conn->last_monitor_error);
   mgconn_error_cleanup (&conn->open_error);
   mg_listeners_cleanup (&conn->listeners);
   mg_conn_clear_polled (conn);
   pthread_mutex_destroy (&conn->lock);
   bson_free (conn);
}

/* ---- state ---- */

/* Setting the state it already has emits nothing (behaviour §1). */
static bool
set_state_locked (mgconn_connection *conn, int32_t state)
{
   if (atomic_load (&conn->ready_state) == state) {
      return false;
   }
   atomic_store (&conn->ready_state, state);
   return true;
}

static void
start_init (mgconn_model *m, const mgconn_error *unused)
{
   (void) unused;
   mg_model_start_init_locked (m);
}

void
mg_conn_fail_ops_closed_locked (mgconn_connection *conn, bool running_too)
{
   mgconn_error e;
   mgconn_error_init (&e);
   mg_error_set (&e, MGCONN_ERR_CONNECTION_CLOSED, "Connection %lld was closed before the operation could run",
                 (long long) conn->id);
   mg_op_fail_all_locked (&conn->waiting, &e);
   mg_registry_for_each_model_locked (conn, mg_model_fail_waiters_locked, &e);
   if (running_too) {
      mg_error_set (&e, MGCONN_ERR_CONNECTION_CLOSED, "Connection %lld was closed while the operation was in flight",
                    (long long) conn->id);
      mg_op_fail_all_locked (&conn->running, &e);
   }
   mgconn_error_cleanup (&e);
}

/* The open waiters (mgconn_connection_when_open) learn this cycle's outcome: open (error NULL),
 * the first open's failure, or a close. */
static void
finish_open_waiters_locked (mgconn_connection *conn, const mgconn_error *error)
{
   mg_link *it, *tmp;
   MG_LIST_FOREACH_SAFE (it, tmp, &conn->open_waiters)
   {
      mg_op_finish_locked (MG_CONTAINER_OF (it, mgconn_op, conn_link), error == NULL, NULL, (mgconn_error *) error);
   }
}

void
mg_conn_fail_open_waiters_closed_locked (mgconn_connection *conn)
{
   mgconn_error e;
   if (mg_list_empty (&conn->open_waiters)) {
      return;
   }
   mgconn_error_init (&e);
   mg_error_set (&e, MGCONN_ERR_CONNECTION_CLOSED, "Connection %lld was closed before it opened",
                 (long long) conn->id);
   finish_open_waiters_locked (conn, &e);
   mgconn_error_cleanup (&e);
}

void
mg_conn_disarm_connect_timer_locked (mgconn_connection *conn)
{
   if (conn->connect_timer_armed && mg_timer_disarm (&conn->rt->timers, &conn->connect_timer)) {
      conn->connect_timer_armed = false;
      atomic_fetch_sub (&conn->refs, 1); /* the timer's reference; the caller holds another */
   }
}

bool
mg_conn_connected_locked (const mgconn_connection *conn)
{
   return conn->pool_phase == MG_POOL_READY && conn->up && !conn->failed && !conn->close_wanted;
}

void
mg_conn_begin_close_locked (mgconn_connection *conn)
{
   if (atomic_load (&conn->ready_state) == MGCONN_STATE_CONNECTED) {
      set_state_locked (conn, MGCONN_STATE_DISCONNECTING);
      mg_conn_emit_locked (conn, MGCONN_EVENT_DISCONNECTING, NULL);
   }
   if (conn->pool_phase == MG_POOL_NONE || (conn->pool_phase == MG_POOL_CLOSING && conn->teardown_queued)) {
      mg_conn_finish_close_locked (conn); /* no pool, or one already idle and on its way out */
   } else {
      mg_pool_close_locked (conn);
   }
}

void
mg_conn_finish_close_locked (mgconn_connection *conn)
{
   mg_link *it, *tmp;
   if (set_state_locked (conn, MGCONN_STATE_DISCONNECTED)) {
      mg_conn_emit_locked (conn, MGCONN_EVENT_DISCONNECTED, NULL);
   }
   mg_conn_emit_locked (conn, MGCONN_EVENT_CLOSE, NULL);
   conn->closed = true;
   conn->close_wanted = false;
   mg_conn_fail_open_waiters_closed_locked (conn);
   mg_conn_stop_probe_locked (conn);
   if (conn->close_grace_armed && mg_timer_disarm (&conn->rt->timers, &conn->close_grace_timer)) {
      conn->close_grace_armed = false;
      atomic_fetch_sub (&conn->refs, 1); /* the timer's reference; the caller holds another */
   }
   MG_LIST_FOREACH_SAFE (it, tmp, &conn->close_ops)
   {
      mg_op_finish_locked (MG_CONTAINER_OF (it, mgconn_op, conn_link), true, NULL, NULL);
   }
}

/* The topology has a writable server (and, with credentials, they were accepted): connected, then
 * models' init, then open. conn->lock held. */
void
mg_conn_up_locked (mgconn_connection *conn)
{
   bool again = conn->ever_connected;
   mg_conn_disarm_connect_timer_locked (conn);
   if (set_state_locked (conn, MGCONN_STATE_CONNECTED)) {
      mg_conn_emit_locked (conn, MGCONN_EVENT_CONNECTED, NULL);
      if (again) {
         mg_conn_emit_locked (conn, MGCONN_EVENT_RECONNECTED, NULL);
      }
   }
   conn->ever_connected = true;
   mg_pool_warm_locked (conn);
   if (!again && !conn->close_wanted) {
      mg_registry_for_each_model_locked (conn, start_init, NULL); /* every open: autoCreate, then autoIndex */
   }
   mg_conn_emit_locked (conn, MGCONN_EVENT_OPEN, NULL);
   finish_open_waiters_locked (conn, NULL);
   if (conn->close_wanted) { /* close() was called while connecting: it waited for this */
      mg_conn_begin_close_locked (conn);
      return;
   }
   mg_conn_pump_locked (conn);
}

/* The first open fails (no pool to be had, server selection, authentication): disconnected, error, and every buffered
 * operation fails with the cause at once. No automatic retry, as in Mongoose: the user opens again.
 * conn->lock held. */
void
mg_conn_open_failed_locked (mgconn_connection *conn, const mgconn_error *e)
{
   mg_conn_disarm_connect_timer_locked (conn);
   if (conn->failed) {
      return; /* this cycle has had its outcome (a close while connecting) */
   }
   conn->failed = true;
   if (set_state_locked (conn, MGCONN_STATE_DISCONNECTED)) {
      mg_conn_emit_locked (conn, MGCONN_EVENT_DISCONNECTED, NULL);
   }
   mg_conn_emit_locked (conn, MGCONN_EVENT_ERROR, e);
   mgconn_error_copy (&conn->open_error, e);
   finish_open_waiters_locked (conn, e);
   mg_conn_fail_buffered_locked (conn, e);
   mg_pool_close_locked (conn);
}

void
mg_conn_topology_locked (mgconn_connection *conn, bool up)
{
   /* Monitoring of a pool that is being given up (closing, failed first connect) tells nothing. */
   if (conn->pool_phase != MG_POOL_READY || conn->failed || up == conn->up) {
      return;
   }
   if (conn->close_wanted && atomic_load (&conn->ready_state) != MGCONN_STATE_CONNECTING) {
      return;
   }
   conn->up = up;
   if (up) {
      if (!conn->ever_connected && mongoc_uri_get_username (conn->opts.uri) && !conn->auth_verified) {
         mg_pool_check_credentials_locked (conn);
         return; /* the check continues (pool.c) */
      }
      mg_conn_up_locked (conn);
   } else if (!conn->ever_connected) {
      /* still connecting (its credentials being checked): the check or the connect timer decides */
   } else if (set_state_locked (conn, MGCONN_STATE_DISCONNECTED)) {
      mg_conn_emit_locked (conn, MGCONN_EVENT_DISCONNECTED,
                           conn->last_monitor_error.category ? &conn->last_monitor_error : NULL);
      mg_conn_arm_buffer_timers_locked (conn);
      mg_conn_start_probe_locked (conn);
   }
}

static void
start_open_locked (mgconn_connection *conn, mg_options *opts)
{
   const char *line, *nl;
   if (conn->close_wanted) {
      /* A close still waiting for operations in flight (open_uri() right after close()): it is
       * completed now, as a forced one, so that it resolves and no operation of the old cycle
       * outlives it unresolved. */
      mg_conn_fail_ops_closed_locked (conn, true);
      mg_conn_finish_close_locked (conn);
   }
   if (conn->has_opts) {
      mg_options_cleanup (&conn->opts);
   }
   conn->opts = *opts;
   conn->has_opts = true;
   conn->up = conn->ever_connected = conn->failed = conn->closed = conn->close_wanted = false;
   conn->auth_verified = false;
   conn->open_cycle++;
   conn->open_started_us = mg_now_us ();
   bson_reinit (&conn->servers);
   bson_reinit (&conn->server_errors);
   mgconn_error_cleanup (&conn->last_monitor_error);
   mgconn_error_cleanup (&conn->open_error);
   conn->topology_type[0] = '\0';

   for (line = conn->opts.warnings->str; *line; line = nl + 1) {
      nl = strchr (line, '\n');
      mg_log (conn->rt, MGCONN_LOG_WARNING, "mgconn", "%.*s", (int) (nl - line), line);
   }

   set_state_locked (conn, MGCONN_STATE_CONNECTING);
   mg_conn_emit_locked (conn, MGCONN_EVENT_CONNECTING, NULL);

   /* The timer holds one reference while armed. A timer still armed from the cycle a close ended
    * is moved, keeping its reference; one being fired right now drops its own (connect_timeout sees
    * itself re-armed and does nothing). */
   conn->connect_timer_armed = true;
   if (!mg_timer_arm (&conn->rt->timers, &conn->connect_timer,
                      conn->open_started_us + (int64_t) conn->opts.server_selection_timeout_ms * 1000,
                      connect_timeout)) {
      mg_conn_ref (conn);
   }

   if (conn->pool_phase == MG_POOL_NONE) {
      mg_pool_open_locked (conn);
   } else {
      /* The old pool is still being made or destroyed: once it is gone, a new one is made. */
      conn->reopen_wanted = true;
   }
}

static void
connect_timeout (mg_timer *t)
{
   mgconn_connection *conn = MG_CONTAINER_OF (t, mgconn_connection, connect_timer);
   pthread_mutex_lock (&conn->lock);
   /* Armed again: an open re-armed it while this fire waited for the lock, and this fire belongs
    * to an open cycle that is over. */
   if (!mg_timer_is_armed (&conn->rt->timers, t)) {
      conn->connect_timer_armed = false;
      if (!conn->ever_connected && !conn->failed && atomic_load (&conn->ready_state) == MGCONN_STATE_CONNECTING) {
         mgconn_error e;
         mgconn_error_init (&e);
         mg_conn_server_selection_error_locked (conn, &e);
         mg_conn_open_failed_locked (conn, &e);
         mgconn_error_cleanup (&e);
      }
   }
   pthread_mutex_unlock (&conn->lock);
   mg_conn_unref (conn); /* the timer's reference */
}

/* ---- public ---- */

static int
parse_opts_doc (const uint8_t *opts, size_t opts_len, bson_t *doc, mgconn_error *error)
{
   if (!opts) {
      bson_init (doc);
      return 0;
   }
   if (!bson_init_static (doc, opts, opts_len) || !bson_validate (doc, BSON_VALIDATE_NONE, NULL)) {
      return mg_fail (error, MGCONN_ERR_INVALID_ARGUMENT, "connection options are not a valid BSON document");
   }
   return 0;
}

mgconn_connection *
mg_conn_alloc (mgconn_runtime *rt)
{
   mgconn_connection *conn = BSON_ALIGNED_ALLOC0 (mgconn_connection); /* embeds bson_t: 128-byte aligned */
   atomic_init (&conn->refs, 1);
   atomic_init (&conn->handles, 1);
   conn->rt = rt;
   conn->id = atomic_fetch_add (&next_connection_id, 1);
   pthread_mutex_init (&conn->lock, NULL); /* a use_db child's is unused: it takes its root's */
   atomic_init (&conn->ready_state, MGCONN_STATE_UNINITIALIZED);
   atomic_init (&conn->host_state, MGCONN_STATE_UNINITIALIZED);
   mg_list_init (&conn->waiting);
   mg_list_init (&conn->sessions);
   mg_list_init (&conn->holding_sessions);
   mg_list_init (&conn->running);
   mg_list_init (&conn->close_ops);
   mg_list_init (&conn->open_waiters);
   mg_list_init (&conn->rt_link);
   mg_list_init (&conn->children);
   mg_list_init (&conn->child_link);
   bson_init (&conn->servers);
   bson_init (&conn->server_errors);
   return conn;
}

int
mgconn_connection_new (mgconn_connection **out,
                       mgconn_runtime *rt,
                       const char *uri,
                       const uint8_t *opts,
                       size_t opts_len,
                       mgconn_error *error)
{
   mgconn_connection *conn;
   mg_options parsed;
   bson_t doc;
   int rc;

   if (!out || !rt) {
      return mg_fail (error, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_connection_new: %s is NULL", out ? "rt" : "out");
   }
   *out = NULL;
   if ((rc = parse_opts_doc (opts, opts_len, &doc, error)) != 0) {
      return rc;
   }
   if (uri && (rc = mg_options_parse (&parsed, uri, &doc, error)) != 0) {
      return rc;
   }
   conn = mg_conn_alloc (rt);
   mg_conn_probe_init (conn);
   conn->max_bson_size = 16 * 1024 * 1024;
   conn->opts.buffer_commands = conn->opts.auto_index = conn->opts.auto_create = conn->opts.debug = -1;
   conn->opts.resend_interrupted = -1;
   conn->opts.buffer_timeout_ms = conn->opts.max_open_cursors = -1;
   mg_pool_init (conn);

   pthread_mutex_lock (&rt->lock);
   if (rt->released) {
      pthread_mutex_unlock (&rt->lock);
      if (uri) {
         mg_options_cleanup (&parsed);
      }
      mg_conn_unref (conn);
      return mg_fail (error, MGCONN_ERR_INVALID_ARGUMENT, "the runtime is being freed");
   }
   mg_list_push_back (&rt->connections, &conn->rt_link);
   pthread_mutex_unlock (&rt->lock);

   if (uri) {
      pthread_mutex_lock (&conn->lock);
      start_open_locked (conn, &parsed);
      mg_conn_sync_host_state_locked (conn);
      pthread_mutex_unlock (&conn->lock);
   }
   *out = conn;
   return 0;
}

int
mgconn_connection_open (mgconn_connection *conn, const char *uri, const uint8_t *opts, size_t opts_len,
                        mgconn_error *error)
{
   mg_options parsed;
   bson_t doc;
   int rc;
   bool in_use;

   if (!conn || !uri) {
      return mg_fail (error, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_connection_open: %s is NULL", conn ? "uri" : "conn");
   }
   if (conn->parent) {
      return mg_fail (error, MGCONN_ERR_INVALID_ARGUMENT,
                      "a use_db connection uses its parent's pool: open the parent instead");
   }
   if ((rc = parse_opts_doc (opts, opts_len, &doc, error)) != 0) {
      return rc;
   }
   pthread_mutex_lock (&conn->lock);
   /* In use: opening, open, or down after a loss (monitoring still looks for the server). */
   in_use = conn->has_opts && !conn->failed && !conn->closed && !conn->close_wanted;
   if (in_use) {
      bool same = strcmp (uri, conn->opts.uri_text) == 0;
      char *theirs = mg_redact (uri);
      rc = same ? 0
                : mg_fail (error, MGCONN_ERR_INVALID_ARGUMENT,
                           "Connection %lld is already open to \"%s\": close it before opening \"%s\"",
                           (long long) conn->id, conn->opts.uri_redacted, theirs);
      bson_free (theirs);
      pthread_mutex_unlock (&conn->lock);
      return rc;
   }
   pthread_mutex_unlock (&conn->lock);

   if ((rc = mg_options_parse (&parsed, uri, &doc, error)) != 0) {
      return rc;
   }
   pthread_mutex_lock (&conn->lock);
   start_open_locked (conn, &parsed);
   mg_conn_sync_host_state_locked (conn);
   pthread_mutex_unlock (&conn->lock);
   return 0;
}

static const mg_op_kind when_open_kind = {"when_open", "whenOpen", NULL, false, false, .idempotent = NULL};

int
mgconn_connection_when_open (mgconn_op **out, mgconn_connection *conn, mgconn_op_cb cb, void *userdata)
{
   mgconn_connection *root;
   mgconn_op *op;
   if (!conn) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_connection_when_open: conn is NULL");
   }
   root = mg_conn_root (conn);
   op = mg_op_new (root, &when_open_kind, NULL, NULL, cb, userdata);
   if (out) {
      mg_op_ref (op);
      *out = op;
   }
   pthread_mutex_lock (&root->lock);
   op->phase = MG_OP_WAITING;
   mg_list_push_back (&root->open_waiters, &op->conn_link);
   if (conn->detached || root->host_released || root->closed || root->close_wanted) {
      /* Closed, or being closed: it will not open unless it is opened again. */
      mgconn_error e;
      mgconn_error_init (&e);
      mg_error_set (&e, MGCONN_ERR_CONNECTION_CLOSED, "Connection %lld is closed: it opens again only with open_uri()",
                    (long long) conn->id);
      mg_op_fail_locked (op, &e);
      mgconn_error_cleanup (&e);
   } else if (root->failed && root->open_error.category) {
      mg_op_fail_locked (op, &root->open_error);
   } else if (root->ever_connected) {
      mg_op_finish_locked (op, true, NULL, NULL); /* this cycle has had its open */
   }
   /* else: uninitialized or connecting; the cycle's outcome finishes it */
   pthread_mutex_unlock (&root->lock);
   return 0;
}

int32_t
mgconn_connection_ready_state (const mgconn_connection *conn)
{
   if (!conn) {
      return MGCONN_STATE_DISCONNECTED;
   }
   if (conn->emitting > 0) { /* inside its listeners: the state the event reports */
      return conn->emitting_state;
   }
   if (conn->detached) {
      return MGCONN_STATE_DISCONNECTED;
   }
   /* A use_db child has its root's state: a family's events are the root's. (A child of its own could
    * miss the events queued before it was made and not yet dispatched.) */
   return atomic_load (&mg_conn_root ((mgconn_connection *) conn)->host_state);
}

const char *
mgconn_connection_name (const mgconn_connection *conn)
{
   if (conn && conn->parent) {
      return conn->child_db;
   }
   return conn && conn->has_opts ? conn->opts.db_name : "";
}

const char *
mgconn_connection_host (const mgconn_connection *conn)
{
   const mgconn_connection *root = conn ? mg_conn_root ((mgconn_connection *) conn) : NULL;
   return root && root->has_opts ? root->opts.first_host : "";
}

int32_t
mgconn_connection_port (const mgconn_connection *conn)
{
   const mgconn_connection *root = conn ? mg_conn_root ((mgconn_connection *) conn) : NULL;
   return root && root->has_opts ? root->opts.first_port : 0;
}

int64_t
mgconn_connection_id (const mgconn_connection *conn)
{
   return conn ? conn->id : -1;
}

mgconn_runtime *
mgconn_connection_runtime (const mgconn_connection *conn)
{
   return conn ? conn->rt : NULL;
}

int
mgconn_connection_stats (const mgconn_connection *conn, uint8_t *buf, size_t size)
{
   mgconn_connection *root = conn ? mg_conn_root ((mgconn_connection *) conn) : NULL;
   bson_t b = BSON_INITIALIZER;
   int32_t waiting = 0;
   mg_link *it;
   int rc;
   if (!root || !buf) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_connection_stats: a NULL argument");
   }
   pthread_mutex_lock (&root->lock);
   for (it = root->waiting.next; it != &root->waiting; it = it->next) {
      waiting++;
   }
   BSON_APPEND_INT32 (&b, "inFlight", root->in_flight);
   BSON_APPEND_INT32 (&b, "waiting", waiting);
   BSON_APPEND_INT32 (&b, "peakInFlight", root->peak_in_flight);
   BSON_APPEND_INT32 (&b, "maxPoolSize", root->has_opts ? root->opts.max_pool_size : 0);
   BSON_APPEND_INT32 (&b, "openCursors", root->cursor_slots);
   BSON_APPEND_INT32 (&b, "maxOpenCursors", mg_conn_max_open_cursors (root));
   pthread_mutex_unlock (&root->lock);
   if (b.len > size) {
      rc = mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_connection_stats: the buffer is too small");
   } else {
      memcpy (buf, bson_get_data (&b), b.len);
      rc = (int) b.len;
   }
   bson_destroy (&b);
   return rc;
}
