/*
 * connection.c: a connection's life — open, connected, lost, back, closed — and the events that
 * tell the host about it.
 *
 * The state machine runs under conn->lock, driven from four places:
 *   the host          open, close, free               (connection.c)
 *   libmongoc         topology up/down                (monitor.c -> mg_conn_topology_locked)
 *   the timer thread  the initial connect timed out   (connect_timeout)
 *   workers           pool created, pool destroyed    (open_job_run, teardown_job_run)
 * Events are queued in the order the state changes, and reach listeners at the next dispatch.
 *
 * The pool: created by a worker (creating it may resolve DNS for mongodb+srv), destroyed by a
 * worker once no operation runs on it (destroying joins libmongoc's monitor threads). While
 * pool_phase is MG_POOL_READY, conn->pool stays valid for every op counted in in_flight.
 */
#include "connection.h"

#include <string.h>
#include <sys/socket.h>
#include <time.h>

static atomic_llong next_connection_id;

static void open_job_run (mg_job *job);
static void warm_job_run (mg_job *job);
static void auth_job_run (mg_job *job);
static void teardown_job_run (mg_job *job);
static void teardown_thread (void *arg);
static void connect_timeout (mg_timer *t);
static void finish_close_locked (mgconn_connection *conn);

void
mg_conn_ref (mgconn_connection *conn)
{
   atomic_fetch_add (&conn->refs, 1);
}

/* Counts that reach zero stay at zero: a count found on a list may belong to an object on its way
 * out (see rt->connections, and use_db's cache of children). */
static bool
increment_unless_zero (atomic_int *count)
{
   int n = atomic_load (count);
   while (n > 0) {
      if (atomic_compare_exchange_weak (count, &n, n + 1)) {
         return true;
      }
   }
   return false;
}

bool
mg_conn_ref_unless_dying (mgconn_connection *conn)
{
   return increment_unless_zero (&conn->refs);
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
   bson_free (conn->listeners);
   mg_conn_clear_polled (conn);
   pthread_mutex_destroy (&conn->lock);
   bson_free (conn);
}

void
mg_conn_read_method_case (mgconn_runtime *rt, const uint8_t *opts, size_t opts_len)
{
   bson_t doc;
   bson_iter_t it;
   rt->camel_case = false;
   if (opts && bson_init_static (&doc, opts, opts_len) && bson_iter_init (&it, &doc)) {
      while (bson_iter_next (&it)) {
         if (strcasecmp (bson_iter_key (&it), "methodCase") == 0 && BSON_ITER_HOLDS_UTF8 (&it)) {
            rt->camel_case = strcmp (bson_iter_utf8 (&it, NULL), "camel") == 0;
         }
      }
   }
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
fail_all_locked (mgconn_connection *conn, mg_list *list, const mgconn_error *error)
{
   mg_link *it, *tmp;
   MG_LIST_FOREACH_SAFE (it, tmp, list)
   {
      mg_op_fail_locked (MG_CONTAINER_OF (it, mgconn_op, conn_link), error);
   }
}

/* Every model of the connection and of its use_db children. Root lock held. */
static void
for_each_model_locked (mgconn_connection *root, void (*fn) (mgconn_model *, const mgconn_error *),
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

static void
start_init (mgconn_model *m, const mgconn_error *unused)
{
   (void) unused;
   mg_model_start_init_locked (m);
}

static void
fail_ops_closed_locked (mgconn_connection *conn, bool running_too)
{
   mgconn_error e;
   mgconn_error_init (&e);
   mg_error_set (&e, MGCONN_ERR_CONNECTION_CLOSED, "Connection %lld was closed before the operation could run",
                 (long long) conn->id);
   fail_all_locked (conn, &conn->waiting, &e);
   for_each_model_locked (conn, mg_model_fail_waiters_locked, &e);
   if (running_too) {
      mg_error_set (&e, MGCONN_ERR_CONNECTION_CLOSED, "Connection %lld was closed while the operation was in flight",
                    (long long) conn->id);
      fail_all_locked (conn, &conn->running, &e);
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

static void
fail_open_waiters_closed_locked (mgconn_connection *conn)
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

static void
disarm_connect_timer_locked (mgconn_connection *conn)
{
   if (conn->connect_timer_armed && mg_timer_disarm (&conn->rt->timers, &conn->connect_timer)) {
      conn->connect_timer_armed = false;
      atomic_fetch_sub (&conn->refs, 1); /* the timer's reference; the caller holds another */
   }
}

/* Stop using the pool: destroy it once no op runs on it. */
static void
start_teardown_locked (mgconn_connection *conn)
{
   if (conn->pool_phase == MG_POOL_READY) {
      conn->pool_phase = MG_POOL_CLOSING;
      mg_conn_pump_locked (conn);
   }
   /* OPENING: the open job sees failed/close_wanted when it finishes and comes back here.
    * CLOSING: already on its way. NONE: nothing to destroy. */
}

bool
mg_conn_connected_locked (const mgconn_connection *conn)
{
   return conn->pool_phase == MG_POOL_READY && conn->up && !conn->failed && !conn->close_wanted;
}

/* Called by the pump (buffer.c) after it has moved what it could to the workers. */
void
mg_conn_teardown_if_idle_locked (mgconn_connection *conn)
{
   mgconn_runtime *rt = conn->rt;
   if (conn->pool_phase == MG_POOL_CLOSING && conn->in_flight == 0 && !conn->teardown_queued) {
      /* Nothing uses the pool any more: for the user the close is done. Destroying the pool can
       * take long (libmongoc ends server sessions first, waiting up to serverSelectionTimeoutMS for
       * a server that may be down), so it happens on a thread of its own, not on a worker. */
      conn->teardown_queued = true;
      if (conn->close_wanted) {
         finish_close_locked (conn);
      }
      /* A thread the process's exit waits for (init.c): the driver is not cleaned up under it. */
      if (!mg_process_thread_start ("mgconn-teardown", teardown_thread, conn)) {
         mg_runtime_push_job (rt, &conn->teardown_job); /* no thread to be had: a worker does it */
      }
   }
}

static void
begin_close_locked (mgconn_connection *conn)
{
   if (atomic_load (&conn->ready_state) == MGCONN_STATE_CONNECTED) {
      set_state_locked (conn, MGCONN_STATE_DISCONNECTING);
      mg_conn_emit_locked (conn, MGCONN_EVENT_DISCONNECTING, NULL);
   }
   if (conn->pool_phase == MG_POOL_NONE || (conn->pool_phase == MG_POOL_CLOSING && conn->teardown_queued)) {
      finish_close_locked (conn); /* no pool, or one already idle and on its way out */
   } else {
      start_teardown_locked (conn);
   }
}

static void
finish_close_locked (mgconn_connection *conn)
{
   mg_link *it, *tmp;
   if (set_state_locked (conn, MGCONN_STATE_DISCONNECTED)) {
      mg_conn_emit_locked (conn, MGCONN_EVENT_DISCONNECTED, NULL);
   }
   mg_conn_emit_locked (conn, MGCONN_EVENT_CLOSE, NULL);
   conn->closed = true;
   conn->close_wanted = false;
   fail_open_waiters_closed_locked (conn);
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
static void
become_up_locked (mgconn_connection *conn)
{
   bool again = conn->ever_connected;
   disarm_connect_timer_locked (conn);
   if (set_state_locked (conn, MGCONN_STATE_CONNECTED)) {
      mg_conn_emit_locked (conn, MGCONN_EVENT_CONNECTED, NULL);
      if (again) {
         mg_conn_emit_locked (conn, MGCONN_EVENT_RECONNECTED, NULL);
      }
   }
   conn->ever_connected = true;
   if (conn->opts.min_pool_size > 0 && !conn->warm_queued && !conn->close_wanted) {
      conn->warm_queued = true;
      mg_conn_ref (conn);
      mg_runtime_push_job (conn->rt, &conn->warm_job);
   }
   if (!again && !conn->close_wanted) {
      for_each_model_locked (conn, start_init, NULL); /* every open: autoCreate, then autoIndex */
   }
   mg_conn_emit_locked (conn, MGCONN_EVENT_OPEN, NULL);
   finish_open_waiters_locked (conn, NULL);
   if (conn->close_wanted) { /* close() was called while connecting: it waited for this */
      begin_close_locked (conn);
      return;
   }
   mg_conn_pump_locked (conn);
}

/* The first open fails (server selection, authentication): disconnected, error, and every buffered
 * operation fails with the cause at once. No automatic retry, as in Mongoose: the user opens again.
 * conn->lock held. */
static void
fail_first_open_locked (mgconn_connection *conn, const mgconn_error *e)
{
   disarm_connect_timer_locked (conn);
   conn->failed = true;
   if (set_state_locked (conn, MGCONN_STATE_DISCONNECTED)) {
      mg_conn_emit_locked (conn, MGCONN_EVENT_DISCONNECTED, NULL);
   }
   mg_conn_emit_locked (conn, MGCONN_EVENT_ERROR, e);
   mgconn_error_copy (&conn->open_error, e);
   finish_open_waiters_locked (conn, e);
   mg_conn_fail_buffered_locked (conn, e);
   start_teardown_locked (conn);
}

/* Monitoring connects without credentials, so a wrong password would only show on the first
 * operation; with credentials, one pooled client authenticates (a ping) before the first
 * `connected`, and a refusal fails the open with an AuthenticationError, as Mongoose's connect()
 * does. Runs on a worker. */
static void
auth_job_run (mg_job *job)
{
   mgconn_connection *conn = MG_CONTAINER_OF (job, mgconn_connection, auth_job);
   mongoc_client_pool_t *pool;
   mongoc_client_t *client;
   bson_t *ping = BCON_NEW ("ping", BCON_INT32 (1));
   bson_error_t be;
   bool ok;

   pthread_mutex_lock (&conn->lock);
   pool = conn->pool_phase == MG_POOL_READY && !conn->failed ? conn->pool : NULL;
   if (pool) {
      conn->in_flight++; /* the teardown waits for it like for an operation */
   }
   pthread_mutex_unlock (&conn->lock);
   if (pool) {
      client = mongoc_client_pool_pop (pool);
      ok = mongoc_client_command_simple (client, "admin", ping, NULL, NULL, &be);
      mongoc_client_pool_push (pool, client);
      pthread_mutex_lock (&conn->lock);
      conn->in_flight--;
      conn->auth_queued = false;
      /* Monitoring may have seen the refusal first and called the server down: a refusal fails the
       * open whatever the topology says now; an acceptance waits for it to be up. */
      if (!conn->failed && !conn->ever_connected && conn->pool_phase == MG_POOL_READY) {
         if (ok) {
            conn->auth_verified = true;
            if (conn->up) {
               become_up_locked (conn);
            }
         } else if (be.domain == MONGOC_ERROR_CLIENT && be.code == MONGOC_ERROR_CLIENT_AUTHENTICATE) {
            mgconn_error e;
            mgconn_error_init (&e);
            mg_error_from_driver (&e, &be, NULL);
            e.category = MGCONN_ERR_AUTHENTICATION;
            fail_first_open_locked (conn, &e);
            mgconn_error_cleanup (&e);
         } else {
            conn->up = false; /* a network failure: the next writable topology checks again */
         }
      }
      mg_conn_pump_locked (conn);
      pthread_mutex_unlock (&conn->lock);
   } else {
      pthread_mutex_lock (&conn->lock);
      conn->auth_queued = false;
      pthread_mutex_unlock (&conn->lock);
   }
   bson_destroy (ping);
   mg_conn_unref (conn);
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
         if (!conn->auth_queued) {
            conn->auth_queued = true;
            mg_conn_ref (conn);
            mg_runtime_push_job (conn->rt, &conn->auth_job);
         }
         return; /* auth_job_run continues */
      }
      become_up_locked (conn);
   } else if (!conn->ever_connected) {
      /* still connecting (its credentials being checked): the check or the connect timer decides */
   } else if (set_state_locked (conn, MGCONN_STATE_DISCONNECTED)) {
      mg_conn_emit_locked (conn, MGCONN_EVENT_DISCONNECTED,
                           conn->last_monitor_error.category ? &conn->last_monitor_error : NULL);
      mg_conn_arm_buffer_timers_locked (conn);
      mg_conn_start_probe_locked (conn);
   }
}

/* ---- open ---- */

/* A pool for the current open cycle. conn->lock held, no pool. */
static void
push_open_job_locked (mgconn_connection *conn)
{
   conn->pool_phase = MG_POOL_OPENING;
   conn->pool_cycle = conn->open_cycle;
   mg_conn_ref (conn); /* the open job's, handed on to the pool */
   pthread_mutex_lock (&conn->rt->lock);
   conn->rt->pools_alive++;
   mg_runtime_push_job_locked (conn->rt, &conn->open_job);
   pthread_mutex_unlock (&conn->rt->lock);
}

static void
start_open_locked (mgconn_connection *conn, mg_options *opts)
{
   const char *line, *nl;
   if (conn->close_wanted) {
      /* A close still waiting for operations in flight (open_uri() right after close()): it is
       * completed now, as a forced one, so that it resolves and no operation of the old cycle
       * outlives it unresolved. */
      fail_ops_closed_locked (conn, true);
      finish_close_locked (conn);
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
      push_open_job_locked (conn);
   } else {
      /* The old pool is still being made or destroyed: once it is gone, a new one is made. */
      conn->reopen_wanted = true;
   }
}

static void
open_job_run (mg_job *job)
{
   mgconn_connection *conn = MG_CONTAINER_OF (job, mgconn_connection, open_job);
   mongoc_uri_t *uri;
   mongoc_client_pool_t *pool;
   mongoc_client_t *client;
   bson_error_t be;
   int32_t max_pool, family;
   bool give_up, unresolved = false; /* a seed has no address in the asked family */

   pthread_mutex_lock (&conn->lock);
   uri = mongoc_uri_copy (conn->opts.uri);
   max_pool = conn->opts.max_pool_size;
   family = conn->opts.family;
   pthread_mutex_unlock (&conn->lock);

   if (family && !mg_uri_restrict_family (uri, family, be.message, sizeof be.message)) {
      unresolved = true;
      pool = NULL; /* the open fails below, naming the host and the family */
   } else {
      pool = mongoc_client_pool_new_with_error (uri, &be);
   }
   mongoc_uri_destroy (uri);
   if (pool) {
      mongoc_client_pool_set_error_api (pool, MONGOC_ERROR_API_VERSION_2);
      mongoc_client_pool_max_size (pool, (uint32_t) max_pool);
      mg_conn_set_monitoring (pool, conn);
   }

   pthread_mutex_lock (&conn->lock);
   if (!pool) {
      mgconn_error e;
      mgconn_error_init (&e);
      if (unresolved) {
         mg_error_set (&e, MGCONN_ERR_SERVER_SELECTION, "%s%s", be.message,
                       strstr (be.message, "localhost") && family == 6
                          ? ". Hint: \"localhost\" may have no IPv6 address, or the server may listen on IPv4 only: "
                            "try 127.0.0.1 instead, or family=4"
                          : "");
      } else {
         mg_error_set (&e, MGCONN_ERR_OPTION, "Could not start a client pool for \"%s\": %s",
                       conn->opts.uri_redacted, be.message);
      }
      conn->pool_phase = MG_POOL_NONE;
      if (conn->pool_cycle != conn->open_cycle) {
         /* Made for a cycle that a close ended: the new cycle gets a pool of its own. */
         if (conn->reopen_wanted && !conn->host_released) {
            conn->reopen_wanted = false;
            push_open_job_locked (conn);
         }
      } else {
         disarm_connect_timer_locked (conn);
         if (!conn->failed) {
            conn->failed = true;
            set_state_locked (conn, MGCONN_STATE_DISCONNECTED);
            mg_conn_emit_locked (conn, MGCONN_EVENT_DISCONNECTED, NULL);
            mg_conn_emit_locked (conn, MGCONN_EVENT_ERROR, &e);
            mgconn_error_copy (&conn->open_error, &e);
            finish_open_waiters_locked (conn, &e);
            mg_conn_fail_buffered_locked (conn, &e);
         }
         if (conn->close_wanted) {
            finish_close_locked (conn);
         }
      }
      mgconn_error_cleanup (&e);
      pthread_mutex_unlock (&conn->lock);
      {
         mgconn_runtime *rt = conn->rt;
         mg_conn_unref (conn);
         mg_runtime_pool_gone (rt);
      }
      return;
   }
   conn->pool = pool;
   conn->pool_phase = MG_POOL_READY;
   give_up = conn->failed || conn->host_released || conn->pool_cycle != conn->open_cycle;
   if (!give_up) {
      conn->in_flight++; /* the warm-up below uses the pool: keep teardown away until it is done */
   }
   if (give_up) {
      start_teardown_locked (conn);
   }
   pthread_mutex_unlock (&conn->lock);
   if (give_up) {
      return;
   }

   /* libmongoc starts monitoring at the first pop; topology callbacks may run right here. */
   client = mongoc_client_pool_pop (pool);
   mongoc_client_pool_push (pool, client);

   pthread_mutex_lock (&conn->lock);
   conn->in_flight--;
   mg_conn_pump_locked (conn);
   pthread_mutex_unlock (&conn->lock);
}

static void teardown (mgconn_connection *conn);

/* minPoolSize, mgconn's own (libmongoc 1.23's is deprecated and destroys idle clients instead):
 * after each connect, borrow that many clients, give each a live socket with a ping, and return
 * them to the pool, where they stay connected for the operations that follow. They count as
 * operations in flight meanwhile, so maxPoolSize still holds. */
static void
warm_job_run (mg_job *job)
{
   mgconn_connection *conn = MG_CONTAINER_OF (job, mgconn_connection, warm_job);
   mongoc_client_pool_t *pool = NULL;
   mongoc_client_t **clients;
   bson_t *ping = BCON_NEW ("ping", BCON_INT32 (1));
   int32_t n = 0;

   pthread_mutex_lock (&conn->lock);
   if (mg_conn_connected_locked (conn)) {
      n = conn->opts.min_pool_size;
      if (n > conn->opts.max_pool_size - conn->in_flight) {
         n = conn->opts.max_pool_size - conn->in_flight;
      }
      n = n < 0 ? 0 : n;
      conn->in_flight += n;
      pool = conn->pool;
   }
   pthread_mutex_unlock (&conn->lock);

   clients = bson_malloc0 (sizeof *clients * (size_t) (n > 0 ? n : 1));
   for (int32_t i = 0; i < n; i++) {
      clients[i] = mongoc_client_pool_pop (pool);
   }
   for (int32_t i = 0; i < n; i++) {
      bson_error_t be;
      mongoc_client_command_simple (clients[i], "admin", ping, NULL, NULL, &be); /* failures: the pool copes */
   }
   for (int32_t i = 0; i < n; i++) {
      mongoc_client_pool_push (pool, clients[i]);
   }
   bson_free (clients);
   bson_destroy (ping);

   pthread_mutex_lock (&conn->lock);
   conn->in_flight -= n;
   conn->warm_queued = false;
   mg_conn_pump_locked (conn);
   pthread_mutex_unlock (&conn->lock);
   mg_conn_unref (conn);
}

static void
teardown_job_run (mg_job *job)
{
   teardown (MG_CONTAINER_OF (job, mgconn_connection, teardown_job));
}

static void
teardown_thread (void *arg)
{
   teardown (arg);
}

static void
teardown (mgconn_connection *conn)
{
   mongoc_client_pool_t *pool;

   pthread_mutex_lock (&conn->lock);
   pool = conn->pool;
   pthread_mutex_unlock (&conn->lock);

   mongoc_client_pool_destroy (pool); /* joins the monitor threads: their callbacks are ignored */

   pthread_mutex_lock (&conn->lock);
   conn->pool = NULL;
   conn->pool_phase = MG_POOL_NONE;
   conn->teardown_queued = false;
   conn->up = false;
   mg_conn_stop_probe_locked (conn);
   if (conn->close_wanted) {
      finish_close_locked (conn);
   }
   if (conn->reopen_wanted && !conn->host_released) {
      conn->reopen_wanted = false;
      push_open_job_locked (conn);
   }
   pthread_mutex_unlock (&conn->lock);

   {
      mgconn_runtime *rt = conn->rt;
            mg_conn_unref (conn);    /* the pool's reference */
      mg_runtime_pool_gone (rt); /* last: it may free the runtime */
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
         fail_first_open_locked (conn, &e);
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
   conn = BSON_ALIGNED_ALLOC0 (mgconn_connection); /* embeds bson_t: 128-byte aligned */
   atomic_init (&conn->refs, 1);
   conn->rt = rt;
   conn->id = atomic_fetch_add (&next_connection_id, 1);
   pthread_mutex_init (&conn->lock, NULL);
   atomic_init (&conn->ready_state, MGCONN_STATE_UNINITIALIZED);
   atomic_init (&conn->host_state, MGCONN_STATE_UNINITIALIZED);
   mg_list_init (&conn->waiting);
   mg_list_init (&conn->running);
   mg_list_init (&conn->close_ops);
   mg_list_init (&conn->open_waiters);
   mg_list_init (&conn->rt_link);
   mg_conn_probe_init (conn);
   bson_init (&conn->servers);
   bson_init (&conn->server_errors);
   mg_list_init (&conn->children);
   mg_list_init (&conn->child_link);
   atomic_init (&conn->handles, 1);
   conn->max_bson_size = 16 * 1024 * 1024;
   conn->opts.buffer_commands = conn->opts.auto_index = conn->opts.auto_create = conn->opts.debug = -1;
   conn->opts.resend_interrupted = -1;
   conn->opts.buffer_timeout_ms = conn->opts.max_open_cursors = -1;
   conn->open_job.run = open_job_run;
   conn->teardown_job.run = teardown_job_run;
   conn->warm_job.run = warm_job_run;
   conn->auth_job.run = auth_job_run;

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

static const mg_op_kind close_kind = {"close", "close", NULL, false, false, .idempotent = NULL};

/* The close's grace is over: what is still in flight fails with ConnectionClosed and the close
 * finishes, as a forced one would; the workers' results are discarded when they return (a hung
 * server can hold them for socketTimeoutMS). */
static void
close_grace_over (mg_timer *t)
{
   mgconn_connection *conn = MG_CONTAINER_OF (t, mgconn_connection, close_grace_timer);
   pthread_mutex_lock (&conn->lock);
   if (!mg_timer_is_armed (&conn->rt->timers, t)) {
      conn->close_grace_armed = false;
      if (conn->close_wanted && conn->close_grace_cycle == conn->open_cycle) {
         mgconn_error e;
         mgconn_error_init (&e);
         mg_error_set (&e, MGCONN_ERR_CONNECTION_CLOSED,
                       "Connection %lld was closed while the operation was in flight (close() waits %dms for "
                       "operations in flight)",
                       (long long) conn->id, MG_CLOSE_GRACE_MS);
         fail_all_locked (conn, &conn->running, &e);
         mgconn_error_cleanup (&e);
         conn->failed = true;
         finish_close_locked (conn);
      }
   }
   pthread_mutex_unlock (&conn->lock);
   mg_conn_unref (conn); /* the timer's */
}

static void
arm_close_grace_locked (mgconn_connection *conn)
{
   conn->close_grace_armed = true;
   conn->close_grace_cycle = conn->open_cycle;
   if (!mg_timer_arm (&conn->rt->timers, &conn->close_grace_timer, mg_now_us () + MG_CLOSE_GRACE_MS * 1000,
                      close_grace_over)) {
      mg_conn_ref (conn); /* the timer's */
   }
}

/* Closing a use_db child detaches it: it hears no more events, its operations fail as closed, and
 * the pool, which belongs to the parent, goes on. The child hears its own `close`. */
static int
close_child (mgconn_op **out, mgconn_connection *child, mgconn_op_cb cb, void *userdata)
{
   mgconn_connection *root = child->parent;
   mgconn_op *op = mg_op_new (root, &close_kind, NULL, NULL, cb, userdata);
   if (out) {
      mg_op_ref (op);
      *out = op;
   }
   pthread_mutex_lock (&root->lock);
   op->phase = MG_OP_WAITING;
   if (!child->detached) {
      mgconn_error e;
      mgconn_error_init (&e);
      mg_error_set (&e, MGCONN_ERR_CONNECTION_CLOSED, "the use_db connection \"%s\" was closed", child->child_db);
      for (size_t i = 0; i < child->n_models; i++) {
         mg_model_fail_waiters_locked (child->models[i], &e);
      }
      mgconn_error_cleanup (&e);
      mg_conn_emit_one_locked (child, MGCONN_EVENT_CLOSE, NULL);
      child->detached = true;
      if (mg_link_linked (&child->child_link)) {
         mg_link_unlink (&child->child_link);
      }
   }
   mg_op_finish_locked (op, true, NULL, NULL);
   pthread_mutex_unlock (&root->lock);
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
         if (increment_unless_zero (&c->handles)) {
            child = c;
            mg_conn_ref (child);
            break;
         }
      }
   }
   if (!child) {
      child = BSON_ALIGNED_ALLOC0 (mgconn_connection); /* embeds bson_t: 128-byte aligned */
      atomic_init (&child->refs, 1);
      atomic_init (&child->handles, 1);
      atomic_init (&child->ready_state, MGCONN_STATE_UNINITIALIZED);
      child->rt = root->rt;
      child->id = atomic_fetch_add (&next_connection_id, 1);
      child->parent = root;
      mg_conn_ref (root);
      atomic_fetch_add (&root->handles, 1); /* the child keeps its parent open */
      child->child_db = bson_strdup (name);
      child->cached = use_cache != 0;
      mg_list_init (&child->waiting);
      mg_list_init (&child->running);
      mg_list_init (&child->close_ops);
      mg_list_init (&child->open_waiters);
      mg_list_init (&child->rt_link);
      mg_list_init (&child->children);
      bson_init (&child->servers);
      bson_init (&child->server_errors);
      pthread_mutex_init (&child->lock, NULL); /* unused: a child uses its root's lock */
      mg_list_push_back (&root->children, &child->child_link);
   }
   pthread_mutex_unlock (&root->lock);
   *out = child;
   return 0;
}
int
mgconn_connection_close (mgconn_op **out, mgconn_connection *conn, int32_t force, mgconn_op_cb cb, void *userdata)
{
   mgconn_op *op;
   int32_t state;
   if (!conn) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_connection_close: conn is NULL");
   }
   if (conn->parent) {
      return close_child (out, conn, cb, userdata);
   }
   op = mg_op_new (conn, &close_kind, NULL, NULL, cb, userdata);
   if (out) {
      mg_op_ref (op);
      *out = op;
   }
   pthread_mutex_lock (&conn->lock);
   state = atomic_load (&conn->ready_state);
   op->phase = MG_OP_WAITING;
   mg_list_push_back (&conn->close_ops, &op->conn_link);
   if (state == MGCONN_STATE_UNINITIALIZED && !conn->closed) {
      /* Never opened: no events, but it is closed as any other: what waits for it (buffered
       * operations, open waiters) fails now, and new operations fail until open_uri(). */
      conn->closed = true;
      fail_ops_closed_locked (conn, false);
      fail_open_waiters_closed_locked (conn);
      mg_op_finish_locked (op, true, NULL, NULL);
   } else if (state == MGCONN_STATE_UNINITIALIZED || conn->closed) {
      mg_op_finish_locked (op, true, NULL, NULL); /* nothing to close; a second close does nothing */
   } else if (force) {
      /* Nothing is waited for: operations in flight fail now, the close finishes now, and the
       * pool is destroyed in the background once its workers return (a hung server can hold one
       * for as long as socketTimeoutMS, which is unlimited by default). */
      conn->close_wanted = true;
      conn->failed = true; /* monitoring of this pool no longer counts, even while connecting */
      fail_ops_closed_locked (conn, true);
      disarm_connect_timer_locked (conn);
      begin_close_locked (conn);
      if (conn->close_wanted) {
         finish_close_locked (conn);
      }
   } else if (!conn->close_wanted) {
      conn->close_wanted = true;
      fail_ops_closed_locked (conn, false);
      if (state == MGCONN_STATE_CONNECTING && !conn->failed) {
         /* Still connecting: the attempt ends now (it would otherwise go on for up to
          * serverSelectionTimeoutMS). No operation runs yet, so nothing is in flight to wait for;
          * the pool, if it is made, is destroyed in the background. */
         conn->failed = true;
         disarm_connect_timer_locked (conn);
         begin_close_locked (conn);
         if (conn->close_wanted) {
            finish_close_locked (conn);
         }
      } else {
         begin_close_locked (conn);
         if (conn->close_wanted) {
            arm_close_grace_locked (conn); /* operations are in flight: they get a bounded while */
         }
      }
   }
   mg_conn_sync_host_state_locked (conn);
   pthread_mutex_unlock (&conn->lock);
   return 0;
}

/* The host gives the connection up: no more events, and the pool goes away in the background. */
static void
abandon_locked (mgconn_connection *conn)
{
   conn->host_released = true;
   conn->reopen_wanted = false;
   fail_ops_closed_locked (conn, true);
   fail_open_waiters_closed_locked (conn);
   mg_conn_stop_probe_locked (conn);
   disarm_connect_timer_locked (conn);
   if (conn->has_opts && !conn->closed) {
      conn->close_wanted = true;
      conn->failed = true;
      start_teardown_locked (conn);
   }
}

/* A handle is dropped. The last one lets the connection go: a root closes in the background, a
 * child detaches and lets go of its parent. The registry's models are released either way. */
static void
release_handle (mgconn_connection *conn)
{
   mgconn_connection *root = mg_conn_root (conn);
   bool last = atomic_fetch_sub (&conn->handles, 1) == 1;
   if (last) {
      pthread_mutex_lock (&root->lock);
      if (conn->parent) {
         conn->detached = true;
         conn->host_released = true;
         if (mg_link_linked (&conn->child_link)) {
            mg_link_unlink (&conn->child_link);
         }
      } else {
         abandon_locked (conn);
      }
      mg_registry_clear_locked (conn);
      pthread_mutex_unlock (&root->lock);
      if (conn->parent) {
         release_handle (conn->parent);
      }
   }
}

void
mgconn_connection_free (mgconn_connection *conn)
{
   if (!conn) {
      return;
   }
   release_handle (conn);
   mg_conn_unref (conn);
}

void
mg_conn_close_all_for_runtime_free (mgconn_runtime *rt)
{
   mg_list conns;
   mg_link *it;
   mg_list_init (&conns);
   pthread_mutex_lock (&rt->lock);
   rt->released = true;
   /* Take every connection off the runtime: handles still held after this are only for freeing.
    * A dying one stays listed for its last unref to unlink (it must not be brought back to life:
    * a teardown thread's final unref raced this walk once, and the connection was freed twice). */
   it = rt->connections.next;
   while (it != &rt->connections) {
      mg_link *next = it->next;
      if (mg_conn_ref_unless_dying (MG_CONTAINER_OF (it, mgconn_connection, rt_link))) {
         mg_link_unlink (it);
         mg_list_push_back (&conns, it);
      }
      it = next;
   }
   pthread_mutex_unlock (&rt->lock);

   while ((it = mg_list_pop_front (&conns)) != NULL) {
      mgconn_connection *conn = MG_CONTAINER_OF (it, mgconn_connection, rt_link);
      pthread_mutex_lock (&conn->lock);
      abandon_locked (conn);
      pthread_mutex_unlock (&conn->lock);
      conn->rt_link.next = conn->rt_link.prev = &conn->rt_link;
      mg_conn_unref (conn);
   }

   /* Bounded: a worker stuck on a hung server (no socketTimeoutMS) would hold its pool forever,
    * and a game must still be able to quit. The runtime then leaves those threads behind. */
   {
      struct timespec until;
      clock_gettime (CLOCK_REALTIME, &until);
      until.tv_sec += MG_RUNTIME_FREE_WAIT_S;
      pthread_mutex_lock (&rt->lock);
      while (rt->pools_alive > 0) {
         if (pthread_cond_timedwait (&rt->idle_cond, &rt->lock, &until) != 0) {
            break;
         }
      }
      pthread_mutex_unlock (&rt->lock);
   }
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

/* ---- disconnect all ---- */

typedef struct {
   mgconn_op *all; /* finished when `left` reaches 0 (host thread only) */
   int left;
} disconnect_state;

static const mg_op_kind disconnect_kind = {"disconnect", "disconnect", NULL, false, false, .idempotent = NULL};

static void
one_closed (mgconn_op *op, void *ud)
{
   disconnect_state *st = ud;
   (void) op;
   if (--st->left == 0) {
      mg_op_finish_locked (st->all, true, NULL, NULL); /* no connection: only the host touches it */
      mg_op_unref (st->all);
      bson_free (st);
   }
}

int
mgconn_runtime_disconnect (mgconn_op **out, mgconn_runtime *rt, mgconn_op_cb cb, void *userdata)
{
   disconnect_state *st;
   mgconn_connection **conns = NULL;
   size_t n = 0;
   mg_link *it;
   if (!rt) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_runtime_disconnect: rt is NULL");
   }
   st = bson_malloc0 (sizeof *st);
   st->all = mg_op_new (NULL, &disconnect_kind, NULL, NULL, cb, userdata);
   st->all->rt = rt;
   if (out) {
      mg_op_ref (st->all);
      *out = st->all;
   }
   pthread_mutex_lock (&rt->lock);
   for (it = rt->connections.next; it != &rt->connections; it = it->next) {
      mgconn_connection *conn = MG_CONTAINER_OF (it, mgconn_connection, rt_link);
      if (mg_conn_ref_unless_dying (conn)) { /* a dying one is closed already */
         conns = bson_realloc (conns, (n + 1) * sizeof *conns);
         conns[n++] = conn;
      }
   }
   pthread_mutex_unlock (&rt->lock);
   st->left = (int) n + 1; /* +1: this call's own, released below, so that none finishes it early */
   for (size_t i = 0; i < n; i++) {
      mgconn_connection_close (NULL, conns[i], 0, one_closed, st);
      mg_conn_unref (conns[i]);
   }
   bson_free (conns);
   mg_op_ref (st->all);
   one_closed (NULL, st);
   return 0;
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
