/*
 * close.c: how a connection ends. close() (plain: operations in flight get MG_CLOSE_GRACE_MS to
 * finish; forced: nothing is waited for), the close of a use_db child (it detaches; the pool is its
 * root's), the host dropping its last handle, and every connection of a runtime at once
 * (mgconn_runtime_disconnect, mgconn_runtime_free).
 *
 * The state changes themselves (disconnecting, disconnected, close) are the state machine's
 * (connection.c: mg_conn_begin_close_locked, mg_conn_finish_close_locked); this file decides when.
 * conn->lock is the root's lock throughout.
 */
#include "connection.h"
#include "pool.h"

#include <string.h>
#include <time.h>

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
         mg_op_fail_all_locked (&conn->running, &e);
         mgconn_error_cleanup (&e);
         conn->failed = true;
         mg_conn_finish_close_locked (conn);
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
      mg_conn_fail_ops_closed_locked (conn, false);
      mg_conn_fail_open_waiters_closed_locked (conn);
      mg_op_finish_locked (op, true, NULL, NULL);
   } else if (state == MGCONN_STATE_UNINITIALIZED || conn->closed) {
      mg_op_finish_locked (op, true, NULL, NULL); /* nothing to close; a second close does nothing */
   } else if (force) {
      /* Nothing is waited for: operations in flight fail now, the close finishes now, and the
       * pool is destroyed in the background once its workers return (a hung server can hold one
       * for as long as socketTimeoutMS, which is unlimited by default). */
      conn->close_wanted = true;
      conn->failed = true; /* monitoring of this pool no longer counts, even while connecting */
      mg_conn_fail_ops_closed_locked (conn, true);
      mg_conn_disarm_connect_timer_locked (conn);
      mg_conn_begin_close_locked (conn);
      if (conn->close_wanted) {
         mg_conn_finish_close_locked (conn);
      }
   } else if (!conn->close_wanted) {
      conn->close_wanted = true;
      mg_conn_fail_ops_closed_locked (conn, false);
      if (state == MGCONN_STATE_CONNECTING && !conn->failed) {
         /* Still connecting: the attempt ends now (it would otherwise go on for up to
          * serverSelectionTimeoutMS). No operation runs yet, so nothing is in flight to wait for;
          * the pool, if it is made, is destroyed in the background. */
         conn->failed = true;
         mg_conn_disarm_connect_timer_locked (conn);
         mg_conn_begin_close_locked (conn);
         if (conn->close_wanted) {
            mg_conn_finish_close_locked (conn);
         }
      } else {
         mg_conn_begin_close_locked (conn);
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
   mg_conn_fail_ops_closed_locked (conn, true);
   mg_conn_fail_open_waiters_closed_locked (conn);
   mg_conn_stop_probe_locked (conn);
   mg_conn_disarm_connect_timer_locked (conn);
   if (conn->has_opts && !conn->closed) {
      conn->close_wanted = true;
      conn->failed = true;
      mg_pool_close_locked (conn);
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
      mg_listeners_remove_all (&conn->listeners); /* host thread: the host's callbacks go back to it */
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
