/*
 * listeners.c: the host's side of the core's listeners (core/src/listeners.h) for Connection and
 * Model: each Python callback is one core registration, and the core keeps the list, once and the
 * order. This file only turns an event into a Python call.
 *
 * Ownership: a registration's userdata is an ext_listener holding a reference to the callback; the
 * core's release (host thread, GIL held: off, a once listener's call, the free of the handle) drops
 * it. A garbage collector pass visits those callbacks through the core (ext_listeners_traverse).
 */
#include "ext.h"

#include <string.h>

typedef struct {
   PyObject *callback;
   ext_state *st; /* for the error types; the module outlives its objects */
   int32_t type;  /* the event it listens to (MGCONN_EVENT_*): off names it */
} ext_listener;

static void
release_listener (void *userdata)
{
   ext_listener *l = userdata;
   Py_DECREF (l->callback);
   PyMem_Free (l);
}

/* The listener's call: cb() for a plain event, cb(error_or_None) for one that carries an error (a
 * model's index, error, disconnected). A raising listener is reported and the next one runs. */
static void
call_listener (ext_listener *l, const char *event, const mgconn_error *error, bool pass_error)
{
   PyObject *err = Py_None, *r;
   if (error) {
      if (!(err = ext_error_object (l->st, error))) {
         ext_report_listener_error (event, l->callback);
         return;
      }
   } else {
      Py_INCREF (err);
   }
   r = pass_error || error ? PyObject_CallOneArg (l->callback, err) : PyObject_CallNoArgs (l->callback);
   if (!r) {
      ext_report_listener_error (event, l->callback);
   }
   Py_XDECREF (r);
   Py_DECREF (err);
}

static void
connection_trampoline (mgconn_connection *conn, const mgconn_event *ev, void *userdata)
{
   int32_t type = mgconn_event_type_of (ev);
   (void) conn;
   call_listener (userdata, mgconn_event_name (ev), mgconn_event_error (ev),
                  type == MGCONN_EVENT_ERROR || type == MGCONN_EVENT_DISCONNECTED);
}

static void
model_trampoline (mgconn_model *model, const mgconn_event *ev, void *userdata)
{
   (void) model;
   call_listener (userdata, "index", mgconn_event_error (ev), true);
}

static int32_t type_of (const char *event);

static ext_listener *
new_listener (ext_state *st, const char *event, PyObject *callback)
{
   ext_listener *l;
   if (!PyCallable_Check (callback)) {
      PyErr_Format (PyExc_TypeError, "the listener for '%s' must be callable, not %s", event,
                    Py_TYPE (callback)->tp_name);
      return NULL;
   }
   if (!(l = PyMem_Malloc (sizeof *l))) {
      PyErr_NoMemory ();
      return NULL;
   }
   l->callback = Py_NewRef (callback);
   l->st = st;
   l->type = type_of (event);
   return l;
}

int
ext_connection_listen (ext_state *st, mgconn_connection *conn, const char *event, PyObject *callback, bool once)
{
   ext_listener *l = new_listener (st, event, callback);
   if (!l) {
      return -1;
   }
   if (mgconn_connection_listen (conn, event, once ? MGCONN_LISTEN_ONCE : 0, release_listener, connection_trampoline,
                                 l) != 0) {
      release_listener (l);
      ext_raise_last (st);
      return -1;
   }
   return 0;
}

int
ext_model_listen (ext_state *st, mgconn_model *model, PyObject *callback, bool once)
{
   ext_listener *l = new_listener (st, "index", callback);
   if (!l) {
      return -1;
   }
   if (mgconn_model_listen (model, "index", once ? MGCONN_LISTEN_ONCE : 0, release_listener, model_trampoline, l) !=
       0) {
      release_listener (l);
      ext_raise_last (st);
      return -1;
   }
   return 0;
}

/* ---- finding registrations through the core ---- */

typedef struct {
   int32_t type;        /* -1: any */
   PyObject *callback;  /* NULL: any */
   ext_listener *found; /* the first match */
   PyObject *list;      /* or, when set, every registration as (name, callback, once) */
   visitproc visit;     /* or, when set, a GC pass */
   void *visit_arg;
} finder;

static int
find_one (int32_t type, int32_t flags, void *listener_userdata, void *userdata)
{
   finder *f = userdata;
   ext_listener *l = listener_userdata;
   if (f->visit) {
      return f->visit (l->callback, f->visit_arg);
   }
   if (f->list) {
      PyObject *item = Py_BuildValue ("(zOO)", mgconn_event_type_name (type), l->callback,
                                      (flags & MGCONN_LISTEN_ONCE) ? Py_True : Py_False);
      int rc = item ? PyList_Append (f->list, item) : -1;
      Py_XDECREF (item);
      return rc;
   }
   if ((f->type < 0 || type == f->type) && (!f->callback || l->callback == f->callback)) {
      f->found = l;
      return 1;
   }
   return 0;
}

static int32_t
type_of (const char *event)
{
   for (int32_t t = 1; mgconn_event_type_name (t); t++) {
      if (strcmp (mgconn_event_type_name (t), event) == 0) {
         return t;
      }
   }
   return MGCONN_EVENT_INDEX;
}

void
ext_connection_unlisten (mgconn_connection *conn, const char *event, PyObject *callback)
{
   finder f = {type_of (event), callback, NULL, NULL, NULL, NULL};
   mgconn_connection_visit_listeners (conn, connection_trampoline, find_one, &f);
   if (f.found) { /* Node's removeListener: the first one registered with this callback */
      mgconn_connection_off (conn, event, connection_trampoline, f.found);
   }
}

void
ext_model_unlisten (mgconn_model *model, PyObject *callback)
{
   finder f = {-1, callback, NULL, NULL, NULL, NULL};
   mgconn_model_visit_listeners (model, model_trampoline, find_one, &f);
   if (f.found) {
      mgconn_model_off (model, "index", model_trampoline, f.found);
   }
}

void
ext_connection_unlisten_all (mgconn_connection *conn)
{
   finder f = {-1, NULL, NULL, NULL, NULL, NULL};
   while ((f.found = NULL, mgconn_connection_visit_listeners (conn, connection_trampoline, find_one, &f), f.found)) {
      mgconn_connection_off (conn, mgconn_event_type_name (f.found->type), connection_trampoline, f.found);
   }
}

void
ext_model_unlisten_all (mgconn_model *model)
{
   finder f = {-1, NULL, NULL, NULL, NULL, NULL};
   while ((f.found = NULL, mgconn_model_visit_listeners (model, model_trampoline, find_one, &f), f.found)) {
      mgconn_model_off (model, "index", model_trampoline, f.found);
   }
}

PyObject *
ext_connection_listeners (mgconn_connection *conn)
{
   finder f = {-1, NULL, NULL, PyList_New (0), NULL, NULL};
   if (f.list && mgconn_connection_visit_listeners (conn, connection_trampoline, find_one, &f) != 0) {
      Py_CLEAR (f.list);
   }
   return f.list;
}

PyObject *
ext_model_listeners (mgconn_model *model)
{
   finder f = {-1, NULL, NULL, PyList_New (0), NULL, NULL};
   if (f.list && mgconn_model_visit_listeners (model, model_trampoline, find_one, &f) != 0) {
      Py_CLEAR (f.list);
   }
   return f.list;
}

int
ext_connection_traverse_listeners (mgconn_connection *conn, visitproc visit, void *arg)
{
   finder f = {-1, NULL, NULL, NULL, visit, arg};
   return mgconn_connection_visit_listeners (conn, connection_trampoline, find_one, &f);
}

int
ext_model_traverse_listeners (mgconn_model *model, visitproc visit, void *arg)
{
   finder f = {-1, NULL, NULL, NULL, visit, arg};
   return mgconn_model_visit_listeners (model, model_trampoline, find_one, &f);
}
