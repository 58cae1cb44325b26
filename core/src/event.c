/*
 * event.c: connection events, from the state machine to the host's listeners.
 *
 * An event is queued under conn->lock (so events keep the order of the state changes) and runs at
 * the next dispatch on the host thread. Listeners live in conn->listeners (listeners.h: host thread
 * only; a listener may add or remove listeners while it runs, and each registration is released
 * once it is gone and no call of it runs). A host that cannot hand C a callback (a libffi or ctypes binding)
 * asks for events to be kept instead: dispatch then also appends each event to a ring on the
 * connection, read with mgconn_connection_next_event(); the ring too is touched only on the host
 * thread.
 */
#include "connection.h"

#include <string.h>

/* One event for a connection and, when it is a root's, for each of its use_db children: one delivery
 * that dispatch runs once per connection (each run is one unit of poll's `max`), the connection
 * first, then the children in order. The children are taken (referenced) when the event is queued,
 * so queueing costs no allocation per child and a frame's poll(max) bounds the fan-out too. */
typedef struct {
   mg_delivery d;
   mgconn_connection *conn; /* a reference */
   int32_t state;           /* the readyState as the event was queued: what its listeners see */
   int64_t seq;             /* the root's event_seq when it was queued (one count per family) */
   struct mgconn_event ev;
   mgconn_error error;
   mgconn_connection **children; /* references; delivered after conn, in order */
   size_t n_children;
   size_t next;    /* 0: conn's turn; i > 0: children[i - 1]'s (host thread only) */
   int running;    /* runs in progress (a listener may dispatch, running the next unit) */
} mg_event_item;

static const char *const event_names[] = {
   NULL, "connecting", "connected", "open", "disconnecting", "disconnected", "close", "reconnected", "error",
};
#define MG_EVENT_MAX 8

const char *
mgconn_event_type_name (int32_t type)
{
   return type >= 1 && type <= MG_EVENT_MAX ? event_names[type] : NULL;
}

static int32_t
event_type_from_name (const char *name)
{
   for (int32_t i = 1; i <= MG_EVENT_MAX; i++) {
      if (strcmp (event_names[i], name) == 0) {
         return i;
      }
   }
   return -1;
}

int32_t
mgconn_event_type_of (const mgconn_event *event)
{
   return event ? event->type : 0;
}

const char *
mgconn_event_name (const mgconn_event *event)
{
   return event ? mgconn_event_type_name (event->type) : NULL;
}

const mgconn_error *
mgconn_event_error (const mgconn_event *event)
{
   return event ? event->error : NULL;
}

static void
item_free (mg_event_item *item)
{
   for (size_t i = item->next > 0 ? item->next - 1 : 0; i < item->n_children; i++) {
      mg_conn_unref (item->children[i]); /* children whose turn never came (teardown) */
   }
   bson_free (item->children);
   mgconn_error_cleanup (&item->error);
   mg_conn_unref (item->conn);
   bson_free (item);
}

/* Appends to the ring; when it is full the oldest event makes room (a poller that fell behind loses
 * old history, never the newest state). */
static void
keep_polled (mgconn_connection *conn, const struct mgconn_event *ev)
{
   mg_polled_event *slot;
   if (conn->polled_cap == 0) {
      return;
   }
   if (conn->polled_len == conn->polled_cap) {
      mgconn_error_cleanup (&conn->polled[conn->polled_head].error);
      conn->polled_head = (conn->polled_head + 1) % conn->polled_cap;
      conn->polled_len--;
   }
   slot = &conn->polled[(conn->polled_head + conn->polled_len) % conn->polled_cap];
   slot->type = ev->type;
   mgconn_error_init (&slot->error);
   if (ev->error) {
      mgconn_error_copy (&slot->error, ev->error);
   }
   conn->polled_len++;
}

void
mg_conn_clear_polled (mgconn_connection *conn)
{
   for (int32_t i = 0; i < conn->polled_len; i++) {
      mgconn_error_cleanup (&conn->polled[(conn->polled_head + i) % conn->polled_cap].error);
   }
   bson_free (conn->polled);
   conn->polled = NULL;
   conn->polled_cap = conn->polled_head = conn->polled_len = 0;
}

int
mgconn_connection_queue_events (mgconn_connection *conn, int32_t capacity)
{
   if (!conn) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_connection_queue_events: conn is NULL");
   }
   if (capacity < 0 || capacity > 65536) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT,
                      "mgconn_connection_queue_events: capacity must be 0..65536, got %d", (int) capacity);
   }
   mg_conn_clear_polled (conn);
   if (capacity > 0) {
      conn->polled = bson_malloc0 (sizeof (mg_polled_event) * (size_t) capacity);
      conn->polled_cap = capacity;
   }
   return 0;
}

int32_t
mgconn_connection_next_event (mgconn_connection *conn, mgconn_error *error)
{
   mg_polled_event *slot;
   if (!conn || conn->polled_len == 0) {
      return 0;
   }
   slot = &conn->polled[conn->polled_head];
   if (error) {
      mgconn_error_copy (error, &slot->error);
   }
   mgconn_error_cleanup (&slot->error);
   conn->polled_head = (conn->polled_head + 1) % conn->polled_cap;
   conn->polled_len--;
   return slot->type;
}

/* readyState once the host has heard of an event of this type. */
static int32_t
state_after (int32_t type)
{
   switch (type) {
   case MGCONN_EVENT_CONNECTING: return MGCONN_STATE_CONNECTING;
   case MGCONN_EVENT_CONNECTED:
   case MGCONN_EVENT_OPEN:
   case MGCONN_EVENT_RECONNECTED: return MGCONN_STATE_CONNECTED;
   case MGCONN_EVENT_DISCONNECTING: return MGCONN_STATE_DISCONNECTING;
   default: return MGCONN_STATE_DISCONNECTED; /* disconnected, close, error */
   }
}

void
mg_conn_sync_host_state_locked (mgconn_connection *conn)
{
   conn = mg_conn_root (conn); /* a use_db child reads its root's (mgconn_connection_ready_state) */
   conn->host_seq = conn->event_seq;
   atomic_store (&conn->host_state, atomic_load (&conn->ready_state));
}

static void
deliver_to (mgconn_connection *conn, const mg_event_item *item)
{
   bool released;
   size_t n;

   pthread_mutex_lock (&mg_conn_root (conn)->lock);
   released = conn->host_released;
   if (!conn->parent && item->seq > conn->host_seq) { /* children read their root's */
      conn->host_seq = item->seq;
      atomic_store (&conn->host_state, state_after (item->ev.type));
   }
   pthread_mutex_unlock (&mg_conn_root (conn)->lock);
   if (!released) {
      int32_t outer_state = conn->emitting_state;
      keep_polled (conn, &item->ev);
      conn->emitting++;
      /* A `disconnecting` listener reads 3 even when the close has gone further meanwhile. */
      conn->emitting_state = item->state;
      n = mg_listeners_begin (&conn->listeners); /* one added by a listener hears the next event */
      for (size_t i = 0; i < n; i++) {
         mg_listener l;
         if (mg_listeners_take (&conn->listeners, i, item->ev.type, &l)) {
            ((mgconn_event_cb) l.cb) (conn, &item->ev, l.userdata);
         }
      }
      conn->emitting_state = outer_state;
      conn->emitting--;
      mg_listeners_end (&conn->listeners);
   }
}

static void
item_run (mg_delivery *d)
{
   mg_event_item *item = MG_CONTAINER_OF (d, mg_event_item, d);
   size_t turn = item->next++;
   mgconn_connection *target = turn == 0 ? item->conn : item->children[turn - 1];
   bool last = item->next > item->n_children;
   if (!last) {
      mg_runtime_deliver_again (item->conn->rt, d); /* before the listeners: a nested dispatch goes on */
   }
   item->running++;
   deliver_to (target, item);
   item->running--;
   if (turn > 0) {
      mg_conn_unref (target);
   }
   if (item->next > item->n_children && item->running == 0) {
      item->n_children = 0; /* every child reference is released by now */
      item_free (item);
   }
}

static void
item_drop (mg_delivery *d)
{
   item_free (MG_CONTAINER_OF (d, mg_event_item, d));
}

static mg_event_item *
new_item_locked (mgconn_connection *conn, int32_t type, const mgconn_error *error)
{
   mg_event_item *item = bson_malloc0 (sizeof *item);
   item->d.run = item_run;
   item->d.drop = item_drop;
   mg_conn_ref (conn);
   item->conn = conn;
   /* Numbered by the root, whether the event is the root's (and so its children's) or one child's: a
    * connection's host_seq always compares with numbers of one count. */
   item->seq = ++mg_conn_root (conn)->event_seq;
   item->ev.type = type;
   item->state = conn->detached ? MGCONN_STATE_DISCONNECTED : atomic_load (&mg_conn_root (conn)->ready_state);
   if (error) {
      mgconn_error_copy (&item->error, error);
      item->ev.error = &item->error;
   }
   return item;
}

void
mg_conn_emit_one_locked (mgconn_connection *conn, int32_t type, const mgconn_error *error)
{
   mg_runtime_deliver (conn->rt, &new_item_locked (conn, type, error)->d);
}

int
mgconn_connection_listen (mgconn_connection *conn, const char *name, int32_t flags, mgconn_release_cb release, mgconn_event_cb cb, void *userdata)
{
   int32_t type = 0;
   if (!conn || !cb) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_connection_listen: %s is NULL", conn ? "cb" : "conn");
   }
   if (name && (type = event_type_from_name (name)) < 0) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT,
                      "Unknown event \"%s\": the events are connecting, connected, open, disconnecting, "
                      "disconnected, close, reconnected, error",
                      name);
   }
   if (flags & ~MGCONN_LISTEN_ONCE) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_connection_listen: unknown flags %d", (int) flags);
   }
   mg_listeners_add (&conn->listeners, type, flags, (mg_listener_fn) cb, userdata, release);
   return 0;
}

int
mgconn_connection_on (mgconn_connection *conn, const char *name, mgconn_event_cb cb, void *userdata)
{
   return mgconn_connection_listen (conn, name, 0, NULL, cb, userdata);
}

int
mgconn_connection_off (mgconn_connection *conn, const char *name, mgconn_event_cb cb, void *userdata)
{
   int32_t type = 0;
   if (!conn) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_connection_off: conn is NULL");
   }
   if (name && (type = event_type_from_name (name)) < 0) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "Unknown event \"%s\"", name);
   }
   if (mg_listeners_remove (&conn->listeners, type, (mg_listener_fn) cb, userdata)) {
      return 0;
   }
   return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "no such listener for \"%s\"", name ? name : "(all)");
}

int
mgconn_connection_visit_listeners (const mgconn_connection *conn, mgconn_event_cb cb, mgconn_listener_visit_cb visit,
                                   void *userdata)
{
   if (!conn || !visit) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_connection_visit_listeners: a NULL argument");
   }
   return mg_listeners_visit (&conn->listeners, (mg_listener_fn) cb, visit, userdata);
}

/* A root's events reach each of its use_db children once, in the same order. */
void
mg_conn_emit_locked (mgconn_connection *conn, int32_t type, const mgconn_error *error)
{
   mg_event_item *item = new_item_locked (conn, type, error);
   size_t n = 0, cap = 0;
   mg_link *it;
   for (it = conn->children.next; it != &conn->children; it = it->next) {
      mgconn_connection *child = MG_CONTAINER_OF (it, mgconn_connection, child_link);
      if (child->detached) {
         continue;
      }
      if (n == cap) {
         cap = cap ? cap * 2 : 16;
         item->children = bson_realloc (item->children, cap * sizeof *item->children);
      }
      mg_conn_ref (child);
      item->children[n++] = child;
   }
   item->n_children = n;
   mg_runtime_deliver_units (conn->rt, &item->d, 1 + n);
}
