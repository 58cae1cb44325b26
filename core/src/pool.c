/*
 * pool.c: a connection's libmongoc client pool, and the worker jobs that make, check, warm and
 * destroy it. The state machine (connection.c) decides when; this file does the work and reports
 * back to it.
 *
 * Phases (conn->pool_phase, under conn->lock):
 *   NONE -> OPENING    mg_pool_open_locked queues the open job (a worker: creating a pool may
 *                      resolve DNS for mongodb+srv)
 *   OPENING -> READY   the open job made it; monitoring starts at its first pop
 *   READY -> CLOSING   mg_pool_close_locked; the pump (buffer.c) calls mg_pool_teardown_if_idle_locked
 *                      once no operation runs on it
 *   CLOSING -> NONE    the teardown destroyed it (joining libmongoc's monitor threads)
 * While the phase is READY, conn->pool stays valid for every job counted in conn->in_flight: the
 * auth check, the warm-up and the open job's first pop count themselves there as operations do.
 *
 * References: the open job takes one on the connection that the pool then holds until the
 * teardown drops it; the warm and auth jobs each hold one while queued or running. Every pool
 * counts in rt->pools_alive from its open job to the end of its teardown, or to the open job's
 * failure to make it (mg_runtime_pool_gone): that count is what mgconn_runtime_free waits for.
 */
#include "connection.h"
#include "pool.h"
#include "session.h"

#include <string.h>

static void open_job_run (mg_job *job);
static void warm_job_run (mg_job *job);
static void auth_job_run (mg_job *job);
static void teardown_job_run (mg_job *job);
static void teardown_thread (void *arg);
static void teardown (mgconn_connection *conn);

void
mg_pool_init (mgconn_connection *conn)
{
   conn->open_job.run = open_job_run;
   conn->teardown_job.run = teardown_job_run;
   conn->warm_job.run = warm_job_run;
   conn->auth_job.run = auth_job_run;
}

/* A pool for the current open cycle. conn->lock held, no pool. */
void
mg_pool_open_locked (mgconn_connection *conn)
{
   conn->pool_phase = MG_POOL_OPENING;
   conn->pool_cycle = conn->open_cycle;
   mg_conn_ref (conn); /* the open job's, handed on to the pool */
   pthread_mutex_lock (&conn->rt->lock);
   conn->rt->pools_alive++;
   mg_runtime_push_job_locked (conn->rt, &conn->open_job);
   pthread_mutex_unlock (&conn->rt->lock);
}

/* Stop using the pool: destroy it once no op runs on it. */
void
mg_pool_close_locked (mgconn_connection *conn)
{
   if (conn->pool_phase == MG_POOL_READY) {
      conn->pool_phase = MG_POOL_CLOSING;
      mg_conn_pump_locked (conn);
   }
   /* OPENING: the open job sees failed/close_wanted when it finishes and comes back here.
    * CLOSING: already on its way. NONE: nothing to destroy. */
}

/* Called by the pump (buffer.c) after it has moved what it could to the workers. */
void
mg_pool_teardown_if_idle_locked (mgconn_connection *conn)
{
   mgconn_runtime *rt = conn->rt;
   if (conn->pool_phase == MG_POOL_CLOSING && conn->in_flight == 0 && !conn->teardown_queued) {
      /* Nothing uses the pool any more: for the user the close is done. Destroying the pool can
       * take long (libmongoc ends server sessions first, waiting up to serverSelectionTimeoutMS for
       * a server that may be down), so it happens on a thread of its own, not on a worker. */
      conn->teardown_queued = true;
      if (conn->close_wanted) {
         mg_conn_finish_close_locked (conn);
      }
      /* A thread the process's exit waits for (init.c): the driver is not cleaned up under it. */
      if (!mg_process_thread_start ("mgconn-teardown", teardown_thread, conn)) {
         mg_runtime_push_job (rt, &conn->teardown_job); /* no thread to be had: a worker does it */
      }
   }
}

void
mg_pool_check_credentials_locked (mgconn_connection *conn)
{
   if (!conn->auth_queued) {
      conn->auth_queued = true;
      mg_conn_ref (conn);
      mg_runtime_push_job (conn->rt, &conn->auth_job);
   }
}

void
mg_pool_warm_locked (mgconn_connection *conn)
{
   if (conn->opts.min_pool_size > 0 && !conn->warm_queued && !conn->close_wanted) {
      conn->warm_queued = true;
      mg_conn_ref (conn);
      mg_runtime_push_job (conn->rt, &conn->warm_job);
   }
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
               mg_conn_up_locked (conn);
            }
         } else if (be.domain == MONGOC_ERROR_CLIENT && be.code == MONGOC_ERROR_CLIENT_AUTHENTICATE) {
            mgconn_error e;
            mgconn_error_init (&e);
            mg_error_from_driver (&e, &be, NULL);
            e.category = MGCONN_ERR_AUTHENTICATION;
            mg_conn_open_failed_locked (conn, &e);
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
            mg_pool_open_locked (conn);
         }
      } else {
         mg_conn_open_failed_locked (conn, &e);
         if (conn->close_wanted) {
            mg_conn_finish_close_locked (conn);
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
      mg_pool_close_locked (conn);
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

   mg_sessions_release_clients (conn); /* nothing runs now: the sessions' clients come back */
   mongoc_client_pool_destroy (pool); /* joins the monitor threads: their callbacks are ignored */

   pthread_mutex_lock (&conn->lock);
   conn->pool = NULL;
   conn->pool_phase = MG_POOL_NONE;
   conn->teardown_queued = false;
   conn->up = false;
   mg_conn_stop_probe_locked (conn);
   if (conn->close_wanted) {
      mg_conn_finish_close_locked (conn);
   }
   if (conn->reopen_wanted && !conn->host_released) {
      conn->reopen_wanted = false;
      mg_pool_open_locked (conn);
   }
   pthread_mutex_unlock (&conn->lock);

   {
      mgconn_runtime *rt = conn->rt;
      mg_conn_unref (conn);      /* the pool's reference */
      mg_runtime_pool_gone (rt); /* last: it may free the runtime */
   }
}
