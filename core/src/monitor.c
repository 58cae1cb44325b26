/*
 * monitor.c: libmongoc's monitoring callbacks, turned into "up" and "down" for the state machine.
 *
 * Thread rule: these run on libmongoc's threads (a monitor thread per server, or whichever thread
 * ran an operation that hit a network error) while libmongoc holds its topology lock. They may only
 * read the event, copy what they need and take conn->lock; calling libmongoc's pool or client
 * functions here deadlocks, and host code never runs here.
 *
 * Up means: the topology has a writable server (standalone, primary or mongos), the same rule for
 * every topology. The callbacks fire on changes that are not edges too (an error text changing):
 * mg_conn_topology_locked keeps only the edges.
 *
 * Reconnect probing. libmongoc's monitors look at a server that is down every heartbeatFrequencyMS
 * (10 s by default), and sooner only while some thread waits in server selection on the pool. mgconn
 * never sends work into a pool that is down (operations wait in its own buffer), so nothing would
 * hurry them: a server back after 3 s was seen at 10 s. So while a connection is down after a loss
 * (whatever brought it down: the server gone, or one socket's network error on a server that still
 * answers), a probe runs every MG_PROBE_INTERVAL_MS (500 ms, libmongoc's minHeartbeatFrequencyMS):
 * on a worker, a throwaway single-threaded client asks the seeds for a writable server (connect and
 * hello bounded by min(connectTimeoutMS, 1000 ms), no credentials needed). When one answers, the
 * probe runs a server selection on the pool, which makes the pool's monitors scan at once; their
 * topology change is what makes the connection up again (`connected`, `reconnected`), as always.
 * That selection counts as in flight, so the pool is not destroyed under it. The probe holds a
 * reference on the connection from its start until it stops (the connection is up, closing, or
 * given up); between two probes the reference is the probe timer's.
 */
#include "connection.h"

#include <string.h>

/* {"host:port": {type, error}} for every seed and every server monitoring has seen, with the last
 * known type ("Unknown" for a server that never answered: libmongoc's get_servers leaves those out)
 * and the last heartbeat error. Built when an error needs it, since heartbeat failures and topology
 * changes arrive in either order. */
static void
append_server_locked (const mgconn_connection *conn, bson_t *out, const char *hp)
{
   bson_iter_t it;
   bson_t server;
   if (bson_iter_init_find (&it, out, hp)) { /* exact key: bson_has_field reads dots as a path */
      return;
   }
   bson_append_document_begin (out, hp, -1, &server);
   BSON_APPEND_UTF8 (&server, "type",
                     bson_iter_init_find (&it, &conn->servers, hp) ? bson_iter_utf8 (&it, NULL) : "Unknown");
   if (bson_iter_init_find (&it, &conn->server_errors, hp) && BSON_ITER_HOLDS_UTF8 (&it)) {
      BSON_APPEND_UTF8 (&server, "error", bson_iter_utf8 (&it, NULL));
   } else {
      BSON_APPEND_NULL (&server, "error");
   }
   bson_append_document_end (out, &server);
}

static void
servers_reason_locked (const mgconn_connection *conn, bson_t *out)
{
   bson_iter_t it;
   for (const mongoc_host_list_t *h = mongoc_uri_get_hosts (conn->opts.uri); h; h = h->next) {
      append_server_locked (conn, out, h->host_and_port);
   }
   if (bson_iter_init (&it, &conn->servers)) {
      while (bson_iter_next (&it)) {
         append_server_locked (conn, out, bson_iter_key (&it));
      }
   }
   if (bson_iter_init (&it, &conn->server_errors)) {
      while (bson_iter_next (&it)) {
         append_server_locked (conn, out, bson_iter_key (&it));
      }
   }
}

/* The `disconnected` of a loss carries the last monitoring error. An operation that fails on the
 * network marks its server unknown before any heartbeat has failed: then the cause is that failure,
 * said as such (a heartbeat error that follows replaces it). A new loss never reports an old cause. */
static void
note_loss_cause_locked (mgconn_connection *conn, bool up)
{
   if (up && !conn->up) {
      mgconn_error_cleanup (&conn->last_monitor_error);
      mgconn_error_init (&conn->last_monitor_error);
   } else if (!up && conn->up && conn->last_monitor_error.category == 0) {
      mg_error_set (&conn->last_monitor_error, MGCONN_ERR_NETWORK,
                    "Lost the connection to \"%s\": the server stopped answering an operation "
                    "(no writable server is known now)",
                    conn->opts.uri_redacted);
   }
}

static void
on_topology_changed (const mongoc_apm_topology_changed_t *event)
{
   mgconn_connection *conn = mongoc_apm_topology_changed_get_context (event);
   const mongoc_topology_description_t *td = mongoc_apm_topology_changed_get_new_description (event);
   bool up = mongoc_topology_description_has_writable_server (td);
   size_t n = 0;
   mongoc_server_description_t **sds = mongoc_topology_description_get_servers (td, &n);
   bson_t types = BSON_INITIALIZER;

   for (size_t i = 0; i < n; i++) {
      BSON_APPEND_UTF8 (&types, mongoc_server_description_host (sds[i])->host_and_port,
                        mongoc_server_description_type (sds[i]));
   }
   mongoc_server_descriptions_destroy_all (sds, n);

   pthread_mutex_lock (&conn->lock);
   bson_strncpy (conn->topology_type, mongoc_topology_description_type (td), sizeof conn->topology_type);
   bson_destroy (&conn->servers);
   bson_steal (&conn->servers, &types); /* host:port -> server type */
   note_loss_cause_locked (conn, up);
   mg_conn_topology_locked (conn, up);
   pthread_mutex_unlock (&conn->lock);
}

/* server_errors without `hp`, plus {hp: message} when message is given. */
static void
set_server_error_locked (mgconn_connection *conn, const char *hp, const char *message)
{
   bson_t next = BSON_INITIALIZER;
   bson_copy_to_excluding_noinit (&conn->server_errors, &next, hp, NULL);
   if (message) {
      BSON_APPEND_UTF8 (&next, hp, message);
   }
   bson_destroy (&conn->server_errors);
   bson_steal (&conn->server_errors, &next);
}

static void
on_heartbeat_failed (const mongoc_apm_server_heartbeat_failed_t *event)
{
   mgconn_connection *conn = mongoc_apm_server_heartbeat_failed_get_context (event);
   const mongoc_host_list_t *host = mongoc_apm_server_heartbeat_failed_get_host (event);
   bson_error_t be;
   mongoc_apm_server_heartbeat_failed_get_error (event, &be);
   if (be.domain == 0) {
      return; /* a heartbeat cancelled by pool destruction, not a failure */
   }
   pthread_mutex_lock (&conn->lock);
   set_server_error_locked (conn, host->host_and_port, be.message);
   mg_error_from_driver (&conn->last_monitor_error, &be, NULL);
   pthread_mutex_unlock (&conn->lock);
}

static void
on_heartbeat_succeeded (const mongoc_apm_server_heartbeat_succeeded_t *event)
{
   mgconn_connection *conn = mongoc_apm_server_heartbeat_succeeded_get_context (event);
   const mongoc_host_list_t *host = mongoc_apm_server_heartbeat_succeeded_get_host (event);
   pthread_mutex_lock (&conn->lock);
   set_server_error_locked (conn, host->host_and_port, NULL);
   pthread_mutex_unlock (&conn->lock);
}

/* A command's success goes to the reply check (reply_check.c) and to command monitoring. */
static void
on_command_succeeded (const mongoc_apm_command_succeeded_t *event)
{
   mg_reply_check_on_succeeded (event);
   mg_command_monitor_succeeded (event);
}

void
mg_conn_set_monitoring (mongoc_client_pool_t *pool, mgconn_connection *conn)
{
   mongoc_apm_callbacks_t *cbs = mongoc_apm_callbacks_new ();
   mongoc_apm_set_topology_changed_cb (cbs, on_topology_changed);
   mongoc_apm_set_server_heartbeat_failed_cb (cbs, on_heartbeat_failed);
   mongoc_apm_set_server_heartbeat_succeeded_cb (cbs, on_heartbeat_succeeded);
   mongoc_apm_set_command_succeeded_cb (cbs, on_command_succeeded);
   mg_command_monitor_set_callbacks (cbs); /* command_monitor.c: started and failed */
   /* Once, before the first pop: libmongoc refuses a second call. */
   mongoc_client_pool_set_apm_callbacks (pool, cbs, conn);
   mongoc_apm_callbacks_destroy (cbs);
}

/* The guide's replica-set host-name pitfall: the seeds answered, but the set names its members
 * differently (its configuration says "localhost:27017" while the seed list says 127.0.0.1), and the
 * client can only use the set's names. Then the topology holds members that are not seeds, and none
 * of them could be reached. */
static bool
is_seed (const mgconn_connection *conn, const char *hp)
{
   for (const mongoc_host_list_t *h = mongoc_uri_get_hosts (conn->opts.uri); h; h = h->next) {
      if (strcmp (h->host_and_port, hp) == 0) {
         return true;
      }
   }
   return false;
}

/* Members the set named that are not seeds: from the last topology and from the heartbeat errors
 * (libmongoc may already have dropped an unreachable member from the topology). */
static void
append_members_locked (const mgconn_connection *conn, const bson_t *from, mg_strbuf_t *members, bool *reached)
{
   bson_iter_t it;
   if (!bson_iter_init (&it, from)) {
      return;
   }
   while (bson_iter_next (&it)) {
      const char *hp = bson_iter_key (&it);
      if (is_seed (conn, hp) || strstr (members->str, hp)) {
         continue;
      }
      mg_strbuf_append_printf (members, "%s%s", members->len ? ", " : "", hp);
      if (from == &conn->servers && strcmp (bson_iter_utf8 (&it, NULL), "Unknown") != 0) {
         *reached = true;
      }
   }
}

static void
host_name_hint_locked (const mgconn_connection *conn, mg_strbuf_t *msg)
{
   mg_strbuf_t *members, *seeds;
   bool reached = false;
   if (strncmp (conn->topology_type, "ReplicaSet", 10) != 0) {
      return;
   }
   members = mg_strbuf_new (NULL);
   seeds = mg_strbuf_new (NULL);
   for (const mongoc_host_list_t *h = mongoc_uri_get_hosts (conn->opts.uri); h; h = h->next) {
      mg_strbuf_append_printf (seeds, "%s%s", seeds->len ? ", " : "", h->host_and_port);
   }
   append_members_locked (conn, &conn->servers, members, &reached);
   append_members_locked (conn, &conn->server_errors, members, &reached);
   if (members->len && !reached) {
      mg_strbuf_append_printf (msg,
                                 ". Hint: the replica set names its members %s, not as your seed list does (%s), "
                                 "and none of them could be reached: clients connect to the names in the set's "
                                 "configuration, so those names must resolve and be reachable from this machine",
                                 members->str, seeds->str);
   }
   mg_strbuf_free (members, true);
   mg_strbuf_free (seeds, true);
}

void
mg_conn_server_selection_error_locked (mgconn_connection *conn, mgconn_error *e)
{
   mg_strbuf_t *msg = mg_strbuf_new ("No suitable servers found: `serverSelectionTimeoutMS` expired");
   bson_t reason = BSON_INITIALIZER;
   bson_iter_t it;
   bool any = false, localhost = false;
   const mongoc_host_list_t *h;

   if (bson_iter_init (&it, &conn->server_errors)) {
      while (bson_iter_next (&it)) {
         mg_strbuf_append_printf (msg, "%s [%s]", any ? "" : ":", bson_iter_utf8 (&it, NULL));
         any = true;
      }
   }
   if (!any) {
      mg_strbuf_append_printf (msg, ": [no server answered within %dms]", conn->opts.server_selection_timeout_ms);
   }
   for (h = mongoc_uri_get_hosts (conn->opts.uri); h; h = h->next) {
      localhost = localhost || strcmp (h->host, "localhost") == 0;
   }
   host_name_hint_locked (conn, msg);
   if (localhost && conn->opts.family != 4) {
      mg_strbuf_append (msg, ". Hint: \"localhost\" may resolve to the IPv6 address ::1 where the server only "
                               "listens on IPv4: try 127.0.0.1 instead, or family=4");
   }
   mg_error_set (e, MGCONN_ERR_SERVER_SELECTION, "%s", msg->str);
   e->domain = MONGOC_ERROR_SERVER_SELECTION;
   e->code = MONGOC_ERROR_SERVER_SELECTION_FAILURE;
   BSON_APPEND_UTF8 (&reason, "type", conn->topology_type[0] ? conn->topology_type : "Unknown");
   {
      bson_t servers = BSON_INITIALIZER; /* standalone: an open child document cannot be searched */
      servers_reason_locked (conn, &servers);
      BSON_APPEND_DOCUMENT (&reason, "servers", &servers);
      bson_destroy (&servers);
   }
   mg_error_set_reason (e, &reason);
   bson_destroy (&reason);
   mg_strbuf_free (msg, true);
}

/* ---- reconnect probing ---- */

static void probe_job_run (mg_job *job);

static bool
probe_wanted_locked (const mgconn_connection *conn)
{
   return conn->pool_phase == MG_POOL_READY && conn->ever_connected && !conn->up && !conn->failed &&
          !conn->close_wanted && !conn->closed && !conn->host_released;
}

static void
probe_due (mg_timer *t)
{
   mgconn_connection *conn = MG_CONTAINER_OF (t, mgconn_connection, probe_timer);
   bool stop;
   pthread_mutex_lock (&conn->lock);
   stop = !probe_wanted_locked (conn);
   if (stop) {
      conn->probe_active = false;
   } else {
      mg_runtime_push_job (conn->rt, &conn->probe_job); /* the timer's reference goes to the job */
   }
   pthread_mutex_unlock (&conn->lock);
   if (stop) {
      mg_conn_unref (conn);
   }
}

void
mg_conn_probe_init (mgconn_connection *conn)
{
   conn->probe_job.run = probe_job_run;
}

void
mg_conn_start_probe_locked (mgconn_connection *conn)
{
   if (conn->probe_active || !probe_wanted_locked (conn)) {
      return;
   }
   conn->probe_active = true;
   mg_conn_ref (conn); /* the probe's */
   mg_runtime_push_job (conn->rt, &conn->probe_job);
}

void
mg_conn_stop_probe_locked (mgconn_connection *conn)
{
   if (conn->probe_active && mg_timer_disarm (&conn->rt->timers, &conn->probe_timer)) {
      conn->probe_active = false;
      atomic_fetch_sub (&conn->refs, 1); /* the timer's reference; the caller holds another */
   }
   /* a probe job queued or running sees that it is no longer wanted and stops */
}

/* A writable server answers hello at one of the seeds. A new client each time: a single-threaded
 * client would skip a server that failed for its 5 s cooldown. */
static bool
server_answers (const mongoc_uri_t *pool_uri, int32_t family)
{
   mongoc_uri_t *uri = mongoc_uri_copy (pool_uri);
   mongoc_client_t *client;
   mongoc_server_description_t *sd = NULL;
   bson_error_t be;
   char why[256];
   mg_strbuf_t *lines;
   int32_t timeout_ms = mongoc_uri_get_option_as_int32 (uri, MONGOC_URI_CONNECTTIMEOUTMS, 10000);
   if (family && !mg_uri_restrict_family (uri, family, why, sizeof why)) {
      mongoc_uri_destroy (uri);
      return false;
   }
   if (timeout_ms <= 0 || timeout_ms > 1000) {
      timeout_ms = 1000;
   }
   mongoc_uri_set_option_as_int32 (uri, MONGOC_URI_CONNECTTIMEOUTMS, timeout_ms);
   mongoc_uri_set_option_as_int32 (uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, timeout_ms);
   mongoc_uri_set_option_as_bool (uri, MONGOC_URI_SERVERSELECTIONTRYONCE, true);
   /* The throwaway client's own lines ("Failed connection to ...", twice a second while the server
    * is down) say nothing the connection's events have not said: they are kept off the host's log. */
   lines = mg_strbuf_new ("");
   mg_log_capture_begin (lines);
   client = mongoc_client_new_from_uri_with_error (uri, &be);
   if (client) {
      mongoc_client_set_error_api (client, MONGOC_ERROR_API_VERSION_2);
      sd = mongoc_client_select_server (client, true, NULL, &be);
      mongoc_server_description_destroy (sd);
      mongoc_client_destroy (client);
   }
   mg_log_capture_end ();
   mg_strbuf_free (lines, true);
   mongoc_uri_destroy (uri);
   return sd != NULL;
}

static void
probe_job_run (mg_job *job)
{
   mgconn_connection *conn = MG_CONTAINER_OF (job, mgconn_connection, probe_job);
   mongoc_uri_t *uri = NULL;
   mongoc_client_pool_t *pool = NULL;
   int32_t family = 0;
   int64_t started = mg_now_us ();
   bool go_on;

   pthread_mutex_lock (&conn->lock);
   if (probe_wanted_locked (conn)) {
      uri = mongoc_uri_copy (conn->opts.uri);
      family = conn->opts.family;
   }
   pthread_mutex_unlock (&conn->lock);

   if (uri && server_answers (uri, family)) {
      pthread_mutex_lock (&conn->lock);
      if (probe_wanted_locked (conn)) {
         pool = conn->pool;
         conn->in_flight++; /* the teardown waits for it like for an operation */
      }
      pthread_mutex_unlock (&conn->lock);
      if (pool) {
         mongoc_client_t *client = mongoc_client_pool_pop (pool);
         bson_error_t be;
         /* Returns once the monitors' scan found the server writable (or the selection timed out:
          * the probe goes on). The callbacks run meanwhile, on the monitors' threads. */
         mongoc_server_description_destroy (mongoc_client_select_server (client, true, NULL, &be));
         mongoc_client_pool_push (pool, client);
         pthread_mutex_lock (&conn->lock);
         conn->in_flight--;
         mg_conn_pump_locked (conn);
         pthread_mutex_unlock (&conn->lock);
      }
   }
   if (uri) {
      mongoc_uri_destroy (uri);
   }

   pthread_mutex_lock (&conn->lock);
   go_on = probe_wanted_locked (conn);
   if (go_on) {
      mg_timer_arm (&conn->rt->timers, &conn->probe_timer, started + MG_PROBE_INTERVAL_MS * 1000, probe_due);
   } else {
      conn->probe_active = false;
   }
   pthread_mutex_unlock (&conn->lock);
   if (!go_on) {
      mg_conn_unref (conn); /* the probe's */
   }
}
