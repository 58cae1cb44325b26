/*
 * module.c: the `mgconn._mgconn` module (PEP 489 multi-phase init, state in the module), and the
 * Runtime, Op and Cursor types.
 *
 * Lifetimes: a started op holds a reference to its OpObject until its completion has run (the
 * callback may be the only other owner); Connection, Collection, Model, Op and Cursor objects hold
 * their Runtime, so a runtime is freed only after everything made from it.
 */
#include "ext.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

ext_state *
ext_state_of_module (PyObject *module)
{
   return (ext_state *) PyModule_GetState (module);
}

ext_state *
ext_state_of_type (PyTypeObject *type)
{
   PyObject *module = PyType_GetModuleByDef (type, &ext_module_def);
   return module ? ext_state_of_module (module) : NULL;
}

/* Hands the exception set on this thread to sys.unraisablehook (with the UnraisableHookArgs the hook
 * requires), naming the callback that raised; the caller's dispatch goes on. */
static void
write_unraisable (const char *what, PyObject *callback)
{
#if PY_VERSION_HEX >= 0x030D0000
   PyErr_FormatUnraisable ("Exception ignored in %s %R", what, callback);
#else
   (void) what; /* before 3.13 the hook's message is fixed: "Exception ignored in: <callback>" */
   PyErr_WriteUnraisable (callback ? callback : Py_None);
#endif
}

void
ext_report_callback_error (const char *where, PyObject *callback)
{
   /* A listener that raises is reported the host's usual way and never breaks dispatch. */
   char what[64];
   PyOS_snprintf (what, sizeof what, "an mgconn %s callback", where);
   write_unraisable (what, callback);
}

void
ext_report_listener_error (const char *event, PyObject *callback)
{
   char what[64];
   PyOS_snprintf (what, sizeof what, "an mgconn '%s' listener", event);
   write_unraisable (what, callback);
}

/* ---- fork ---- */

/* How many times this process was forked into (counted in the child). Process-wide by nature, so the
 * one C global of the extension; an integer compare per call, cheaper than getpid(). */
static atomic_uint ext_forks;

static void
count_fork_in_child (void)
{
   atomic_fetch_add (&ext_forks, 1);
}

static void
install_fork_counter (void)
{
   (void) pthread_atfork (NULL, NULL, count_fork_in_child);
}

int
ext_runtime_foreign (const RuntimeObject *rt)
{
   return rt && rt->forks != atomic_load_explicit (&ext_forks, memory_order_relaxed);
}

int
ext_runtime_check (const RuntimeObject *rt)
{
   if (!ext_runtime_foreign (rt)) {
      return 0;
   }
   PyErr_Format (PyExc_RuntimeError,
                 "this mgconn object was made in process %ld before os.fork() and cannot be used in this "
                 "process (%ld): its operations ran in the parent. mgconn's connections, models and "
                 "collections are remade in the child; use those, or make new ones after the fork",
                 rt->pid, (long) getpid ());
   return -1;
}

/* ---- Op ---- */

void
ext_op_done (mgconn_op *op, void *userdata)
{
   OpObject *o = userdata;
   (void) op;
   if (o->counted) {
      o->counted = 0;
      o->runtime->pending--;
   }
   if (o->callback && o->callback != Py_None) {
      PyObject *r = PyObject_CallOneArg (o->callback, (PyObject *) o);
      if (!r) {
         ext_report_callback_error ("operation", o->callback);
      }
      Py_XDECREF (r);
   }
   Py_CLEAR (o->callback); /* break the cycle a callback that refers to the op would make */
   Py_DECREF (o);          /* the reference held while the op ran */
}

PyObject *
ext_op_new (ext_state *st, RuntimeObject *rt, mgconn_op *op, PyObject *callback, int cursor_kind)
{
   OpObject *o;
   if (ext_runtime_check (rt) < 0) {
      return NULL;
   }
   o = PyObject_GC_New (OpObject, st->op_type);
   if (!o) {
      return NULL;
   }
   o->op = op;
   Py_INCREF (rt);
   o->runtime = rt;
   o->callback = callback && callback != Py_None ? Py_NewRef (callback) : NULL;
   o->cursor_kind = cursor_kind;
   o->counted = 1; /* until ext_op_done, or dealloc when the op never started */
   rt->pending++;
   PyObject_GC_Track (o);
   return (PyObject *) o;
}

static void
Op_dealloc (OpObject *self)
{
   PyTypeObject *tp = Py_TYPE (self);
   PyObject_GC_UnTrack (self);
   if (self->counted) {
      self->runtime->pending--;
   }
   if (self->op && !ext_runtime_foreign (self->runtime)) {
      mgconn_op_free (self->op);
   }
   Py_CLEAR (self->callback);
   Py_CLEAR (self->runtime);
   tp->tp_free (self);
   Py_DECREF (tp);
}

static int
Op_traverse (OpObject *self, visitproc visit, void *arg)
{
   Py_VISIT (Py_TYPE (self));
   Py_VISIT (self->callback);
   Py_VISIT (self->runtime);
   return 0;
}

static int
Op_clear (OpObject *self)
{
   Py_CLEAR (self->callback);
   return 0;
}

/* Blocks until the op finishes and its callback has returned, or `timeout` (seconds; None: no limit)
 * passes, running dispatch
 * meanwhile so that every other completion and event still happens. The GIL is released only while
 * waiting in poll(). Returns the status. */
static PyObject *
Op_wait (OpObject *self, PyObject *args)
{
   PyObject *timeout_obj = Py_None;
   double timeout = -1;
   struct timespec t0, now;
   mgconn_runtime *rt = self->runtime->rt;
   if (!PyArg_ParseTuple (args, "|O", &timeout_obj) || ext_runtime_check (self->runtime) < 0) {
      return NULL;
   }
   if (timeout_obj != Py_None && (timeout = PyFloat_AsDouble (timeout_obj)) < 0 && PyErr_Occurred ()) {
      return NULL;
   }
   clock_gettime (CLOCK_MONOTONIC, &t0);
   for (;;) {
      struct pollfd p = {mgconn_runtime_fd (rt), POLLIN, 0};
      double left_ms;
      int slice;
      mgconn_runtime_dispatch (rt, 0);
      /* Done means the completion has run, not only that the status is set: the status is set just
       * before the callback, and when another thread's dispatch is running that callback (which may
       * let this thread take the GIL halfway through) the Future it completes is not done yet. */
      if (mgconn_op_status (self->op) != MGCONN_OP_PENDING && !self->callback) {
         break;
      }
      if (PyErr_CheckSignals () < 0) {
         return NULL;
      }
      clock_gettime (CLOCK_MONOTONIC, &now);
      left_ms = timeout < 0 ? 100 : timeout * 1000 - ((now.tv_sec - t0.tv_sec) * 1e3 + (now.tv_nsec - t0.tv_nsec) / 1e6);
      if (left_ms <= 0) {
         break;
      }
      slice = left_ms > 100 ? 100 : (int) left_ms + 1;
      Py_BEGIN_ALLOW_THREADS
      poll (&p, 1, slice);
      Py_END_ALLOW_THREADS
   }
   return PyLong_FromLong (mgconn_op_status (self->op));
}

static PyObject *
Op_reply_naive (OpObject *self, PyObject *unused)
{
   const uint8_t *data;
   size_t len;
   (void) unused;
   mgconn_op_reply (self->op, &data, &len);
   return ext_decode_document_naive (ext_state_of_type (Py_TYPE (self)), data, len);
}

static PyObject *
Op_reply (OpObject *self, PyObject *unused)
{
   const uint8_t *data;
   size_t len;
   (void) unused;
   mgconn_op_reply (self->op, &data, &len);
   return ext_decode_document (ext_state_of_type (Py_TYPE (self)), data, len, 0);
}

static PyObject *
Op_error (OpObject *self, PyObject *unused)
{
   const mgconn_error *e = mgconn_op_error (self->op);
   (void) unused;
   if (!e) {
      Py_RETURN_NONE;
   }
   return ext_error_object (ext_state_of_type (Py_TYPE (self)), e);
}

static PyObject *
Op_cancel (OpObject *self, PyObject *unused)
{
   (void) unused;
   if (ext_runtime_check (self->runtime) < 0) {
      return NULL;
   }
   return PyBool_FromLong (mgconn_op_cancel (self->op) == 0);
}

static PyObject *
Op_cursor (OpObject *self, PyObject *unused)
{
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   mgconn_cursor *c = NULL;
   CursorObject *co;
   (void) unused;
   if (!self->cursor_kind || mgconn_op_cursor (&c, self->op) != 0) {
      Py_RETURN_NONE;
   }
   co = PyObject_New (CursorObject, st->cursor_type);
   if (!co) {
      mgconn_cursor_free (c);
      return NULL;
   }
   co->cursor = c;
   Py_INCREF (self->runtime);
   co->runtime = self->runtime;
   return (PyObject *) co;
}

static PyObject *
Op_get_status (OpObject *self, void *unused)
{
   (void) unused;
   return PyLong_FromLong (mgconn_op_status (self->op));
}

static PyMethodDef Op_methods[] = {
   {"wait", (PyCFunction) Op_wait, METH_VARARGS, "wait(timeout=None) -> status: block, dispatching meanwhile"},
   {"reply", (PyCFunction) Op_reply, METH_NOARGS, "the reply document"},
   {"reply_naive", (PyCFunction) Op_reply_naive, METH_NOARGS, "the reply document, datetimes naive (UTC)"},
   {"error", (PyCFunction) Op_error, METH_NOARGS, "the mgconn.errors exception, or None"},
   {"cancel", (PyCFunction) Op_cancel, METH_NOARGS, "cancel if not sent yet; True when cancelled"},
   {"cursor", (PyCFunction) Op_cursor, METH_NOARGS, "the open cursor of a find/aggregate, or None"},
   {NULL, NULL, 0, NULL},
};

static PyGetSetDef Op_getset[] = {
   {"status", (getter) Op_get_status, NULL, "0 pending, 1 succeeded, 2 failed", NULL},
   {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Op_slots[] = {
   {Py_tp_dealloc, Op_dealloc},   {Py_tp_traverse, Op_traverse}, {Py_tp_clear, Op_clear},
   {Py_tp_methods, Op_methods},   {Py_tp_getset, Op_getset},     {Py_tp_doc, "An operation of libmgconn."},
   {0, NULL},
};

PyType_Spec ext_op_spec = {"mgconn._mgconn.Op", sizeof (OpObject), 0,
                           Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION, Op_slots};

/* ---- Cursor ---- */

static void
Cursor_dealloc (CursorObject *self)
{
   PyTypeObject *tp = Py_TYPE (self);
   if (self->cursor && !ext_runtime_foreign (self->runtime)) {
      mgconn_cursor_free (self->cursor); /* an unfinished cursor is killed on the server */
   }
   Py_CLEAR (self->runtime);
   tp->tp_free (self);
   Py_DECREF (tp);
}

static PyObject *
Cursor_next (CursorObject *self, PyObject *args)
{
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   PyObject *callback = Py_None, *o;
   mgconn_op *op = NULL;
   if (!PyArg_ParseTuple (args, "|O", &callback)) {
      return NULL;
   }
   if (!self->cursor) {
      PyErr_SetString (PyExc_ValueError, "the cursor is closed");
      return NULL;
   }
   o = ext_op_new (st, self->runtime, NULL, callback, 0);
   if (!o) {
      return NULL;
   }
   if (mgconn_cursor_next (&op, self->cursor, ext_op_done, o) != 0) {
      Py_DECREF (o);
      return ext_raise_last (st);
   }
   ((OpObject *) o)->op = op;
   Py_INCREF (o); /* held until ext_op_done */
   return o;
}

static PyObject *
Cursor_close (CursorObject *self, PyObject *unused)
{
   (void) unused;
   if (self->cursor) {
      if (!ext_runtime_foreign (self->runtime)) {
         mgconn_cursor_free (self->cursor);
      }
      self->cursor = NULL;
   }
   Py_RETURN_NONE;
}

static PyObject *
Cursor_get_done (CursorObject *self, void *unused)
{
   (void) unused;
   return PyBool_FromLong (!self->cursor || mgconn_cursor_done (self->cursor));
}

static PyMethodDef Cursor_methods[] = {
   {"next", (PyCFunction) Cursor_next, METH_VARARGS, "next(callback=None) -> Op with the next batch"},
   {"close", (PyCFunction) Cursor_close, METH_NOARGS, "close (kill) the cursor"},
   {NULL, NULL, 0, NULL},
};

static PyGetSetDef Cursor_getset[] = {
   {"done", (getter) Cursor_get_done, NULL, "no more batches", NULL},
   {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Cursor_slots[] = {
   {Py_tp_dealloc, Cursor_dealloc},
   {Py_tp_methods, Cursor_methods},
   {Py_tp_getset, Cursor_getset},
   {Py_tp_doc, "A server cursor, batch by batch."},
   {0, NULL},
};

PyType_Spec ext_cursor_spec = {"mgconn._mgconn.Cursor", sizeof (CursorObject), 0,
                               Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, Cursor_slots};

/* ---- Runtime ---- */

static PyObject *
Runtime_new (PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
   static char *kwlist[] = {"workers", "method_case", NULL};
   int workers = 8;
   const char *method_case = "snake";
   RuntimeObject *self;
   bson_t *opts;
   mgconn_error e;
   if (!PyArg_ParseTupleAndKeywords (args, kwargs, "|is", kwlist, &workers, &method_case)) {
      return NULL;
   }
   self = (RuntimeObject *) type->tp_alloc (type, 0);
   if (!self) {
      return NULL;
   }
   opts = BCON_NEW ("workers", BCON_INT32 (workers), "methodCase", BCON_UTF8 (method_case));
   mgconn_error_init (&e);
   if (mgconn_runtime_new (&self->rt, bson_get_data (opts), opts->len, &e) != 0) {
      bson_destroy (opts);
      Py_DECREF (self);
      PyErr_SetString (PyExc_ValueError, e.message);
      mgconn_error_cleanup (&e);
      return NULL;
   }
   bson_destroy (opts);
   self->forks = atomic_load (&ext_forks);
   self->pid = (long) getpid ();
   self->pending = 0;
   return (PyObject *) self;
}

static void
Runtime_dealloc (RuntimeObject *self)
{
   PyTypeObject *tp = Py_TYPE (self);
   PyObject_GC_UnTrack (self);
   if (self->rt && !ext_runtime_foreign (self)) { /* the parent's (after a fork): its threads are not here */
      Py_BEGIN_ALLOW_THREADS
      mgconn_runtime_free (self->rt); /* joins threads: no Python runs there */
      Py_END_ALLOW_THREADS
   }
   Py_CLEAR (self->log_handler);
   tp->tp_free (self);
   Py_DECREF (tp);
}

static int
Runtime_traverse (RuntimeObject *self, visitproc visit, void *arg)
{
   Py_VISIT (Py_TYPE (self));
   Py_VISIT (self->log_handler);
   return 0;
}

static int
Runtime_clear (RuntimeObject *self)
{
   Py_CLEAR (self->log_handler);
   return 0;
}

static PyObject *
Runtime_fd (RuntimeObject *self, PyObject *unused)
{
   (void) unused;
   return PyLong_FromLong (mgconn_runtime_fd (self->rt));
}

static PyObject *
Runtime_dispatch (RuntimeObject *self, PyObject *args)
{
   int max = 0;
   if (!PyArg_ParseTuple (args, "|i", &max) || ext_runtime_check (self) < 0) {
      return NULL;
   }
   return PyLong_FromLong (mgconn_runtime_dispatch (self->rt, max));
}

static PyObject *
Runtime_pending (RuntimeObject *self, PyObject *unused)
{
   (void) unused;
   return PyLong_FromSsize_t (self->pending);
}

static PyObject *
Runtime_foreign (RuntimeObject *self, PyObject *unused)
{
   (void) unused;
   return PyBool_FromLong (ext_runtime_foreign (self));
}

static PyObject *
Runtime_set (RuntimeObject *self, PyObject *settings)
{
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   bson_t doc = BSON_INITIALIZER;
   mgconn_error e;
   int rc;
   if (ext_runtime_check (self) < 0 || ext_encode_document (st, settings, &doc, "settings") < 0) {
      bson_destroy (&doc);
      return NULL;
   }
   mgconn_error_init (&e);
   rc = mgconn_runtime_set (self->rt, bson_get_data (&doc), doc.len, &e);
   bson_destroy (&doc);
   mgconn_error_cleanup (&e);
   if (rc != 0) {
      return ext_raise_last (st);
   }
   Py_RETURN_NONE;
}

static PyObject *
Runtime_get (RuntimeObject *self, PyObject *name)
{
   int32_t v;
   const char *n = PyUnicode_AsUTF8 (name);
   if (!n || ext_runtime_check (self) < 0) {
      return NULL;
   }
   if (mgconn_runtime_get (self->rt, n, &v) != 0) {
      return ext_raise_last (ext_state_of_type (Py_TYPE (self)));
   }
   if (v < 0) {
      Py_RETURN_NONE;
   }
   return PyLong_FromLong (v);
}

static void
log_trampoline (int32_t level, const char *domain, const char *message, void *userdata)
{
   RuntimeObject *self = userdata;
   PyObject *r;
   if (!self->log_handler) {
      return;
   }
   r = PyObject_CallFunction (self->log_handler, "iss", (int) level, domain, message);
   if (!r) {
      ext_report_callback_error ("log", self->log_handler);
   }
   Py_XDECREF (r);
}

static PyObject *
Runtime_set_log_handler (RuntimeObject *self, PyObject *handler)
{
   Py_CLEAR (self->log_handler);
   if (handler != Py_None) {
      self->log_handler = Py_NewRef (handler);
      mgconn_runtime_set_log_handler (self->rt, log_trampoline, self);
   } else {
      mgconn_runtime_set_log_handler (self->rt, NULL, NULL);
   }
   Py_RETURN_NONE;
}

static PyObject *
Runtime_disconnect (RuntimeObject *self, PyObject *args)
{
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   PyObject *callback = Py_None, *o;
   mgconn_op *op = NULL;
   if (!PyArg_ParseTuple (args, "|O", &callback)) {
      return NULL;
   }
   o = ext_op_new (st, self, NULL, callback, 0);
   if (!o) {
      return NULL;
   }
   if (mgconn_runtime_disconnect (&op, self->rt, ext_op_done, o) != 0) {
      Py_DECREF (o);
      return ext_raise_last (st);
   }
   ((OpObject *) o)->op = op;
   Py_INCREF (o);
   return o;
}

static PyMethodDef Runtime_methods[] = {
   {"fd", (PyCFunction) Runtime_fd, METH_NOARGS, "the wake-up file descriptor"},
   {"dispatch", (PyCFunction) Runtime_dispatch, METH_VARARGS, "dispatch(max=0) -> n: run due callbacks"},
   {"set", (PyCFunction) Runtime_set, METH_O, "set(settings: dict): runtime-wide settings"},
   {"get", (PyCFunction) Runtime_get, METH_O, "get(name) -> int or None"},
   {"set_log_handler", (PyCFunction) Runtime_set_log_handler, METH_O, "handler(level, domain, message) or None"},
   {"disconnect", (PyCFunction) Runtime_disconnect, METH_VARARGS, "disconnect(callback=None) -> Op"},
   {"pending", (PyCFunction) Runtime_pending, METH_NOARGS, "pending() -> started ops whose completion has not run"},
   {"foreign", (PyCFunction) Runtime_foreign, METH_NOARGS, "foreign() -> made by the parent before a fork"},
   {NULL, NULL, 0, NULL},
};

static PyType_Slot Runtime_slots[] = {
   {Py_tp_new, Runtime_new},       {Py_tp_dealloc, Runtime_dealloc}, {Py_tp_traverse, Runtime_traverse},
   {Py_tp_clear, Runtime_clear},   {Py_tp_methods, Runtime_methods},
   {Py_tp_doc, "Runtime(workers=8, method_case='snake'): worker threads, queues and a wake-up fd."},
   {0, NULL},
};

PyType_Spec ext_runtime_spec = {"mgconn._mgconn.Runtime", sizeof (RuntimeObject), 0,
                                Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, Runtime_slots};

/* ---- the module ---- */

static PyObject *
setup (PyObject *module, PyObject *args, PyObject *kwargs)
{
   static char *kwlist[] = {"ObjectId", "Int64", "Decimal128", "Binary", "Regex", "Timestamp", "MinKey", "MaxKey",
                            "UUID", "datetime", "utc", "make_error", NULL};
   ext_state *st = ext_state_of_module (module);
   PyObject *v[12];
   PyObject **slots[12] = {&st->ObjectId, &st->Int64, &st->Decimal128, &st->Binary, &st->Regex, &st->Timestamp,
                           &st->MinKey, &st->MaxKey, &st->uuid_UUID, &st->datetime_datetime, &st->utc,
                           &st->make_error};
   if (!PyArg_ParseTupleAndKeywords (args, kwargs, "$OOOOOOOOOOOO", kwlist, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                                     &v[6], &v[7], &v[8], &v[9], &v[10], &v[11])) {
      return NULL;
   }
   for (int i = 0; i < 12; i++) {
      Py_XSETREF (*slots[i], Py_NewRef (v[i]));
   }
   if (!st->int64_args && !(st->int64_args = PyTuple_New (1))) {
      return NULL;
   }
   static const char *const attr_names[EXT_ATTR_COUNT] = EXT_ATTR_NAMES;
   for (int i = 0; i < EXT_ATTR_COUNT; i++) {
      Py_XSETREF (st->attr_names[i], PyUnicode_InternFromString (attr_names[i]));
      if (!st->attr_names[i]) {
         return NULL;
      }
   }
   Py_XSETREF (st->fromtimestamp, PyObject_GetAttrString (st->datetime_datetime, "fromtimestamp"));
   st->datetime_capi = PyCapsule_Import ("datetime.datetime_CAPI", 0);
   if (!st->fromtimestamp || !st->datetime_capi) {
      return NULL;
   }
   Py_RETURN_NONE;
}

static PyObject *
encode (PyObject *module, PyObject *obj)
{
   bson_t doc = BSON_INITIALIZER;
   PyObject *r;
   if (ext_encode_document (ext_state_of_module (module), obj, &doc, "doc") < 0) {
      bson_destroy (&doc);
      return NULL;
   }
   r = PyBytes_FromStringAndSize ((const char *) bson_get_data (&doc), doc.len);
   bson_destroy (&doc);
   return r;
}

static PyObject *
decode (PyObject *module, PyObject *data)
{
   char *buf;
   Py_ssize_t len;
   if (PyBytes_AsStringAndSize (data, &buf, &len) < 0) {
      return NULL;
   }
   return ext_decode_document (ext_state_of_module (module), (const uint8_t *) buf, (size_t) len, 0);
}

static PyObject *
pluralize (PyObject *module, PyObject *name)
{
   char buf[512];
   const char *n = PyUnicode_AsUTF8 (name);
   (void) module;
   if (!n) {
      return NULL;
   }
   mgconn_pluralize (n, buf, sizeof buf);
   return PyUnicode_FromString (buf);
}

/* report_unraisable(exc, what, obj): what the Python layer calls in an `except` block for a listener
 * or done-callback that raised. */
static PyObject *
report_unraisable (PyObject *module, PyObject *args)
{
   PyObject *exc, *obj;
   const char *what;
   (void) module;
   if (!PyArg_ParseTuple (args, "OsO", &exc, &what, &obj)) {
      return NULL;
   }
   if (!PyExceptionInstance_Check (exc)) {
      PyErr_SetString (PyExc_TypeError, "report_unraisable: exc must be an exception");
      return NULL;
   }
   PyErr_Restore (Py_NewRef ((PyObject *) Py_TYPE (exc)), Py_NewRef (exc), PyException_GetTraceback (exc));
   write_unraisable (what, obj);
   Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
   {"_setup", (PyCFunction) (void (*) (void)) setup, METH_VARARGS | METH_KEYWORDS, "give the codec its classes"},
   {"encode", (PyCFunction) encode, METH_O, "encode(dict) -> BSON bytes"},
   {"decode", (PyCFunction) decode, METH_O, "decode(BSON bytes) -> dict"},
   {"pluralize", (PyCFunction) pluralize, METH_O, "Mongoose's collection name for a model name"},
   {"report_unraisable", (PyCFunction) report_unraisable, METH_VARARGS,
    "report_unraisable(exc, what, obj): to sys.unraisablehook, as Python reports an error nobody can catch"},
   {NULL, NULL, 0, NULL},
};

static int
module_exec (PyObject *module)
{
   ext_state *st = ext_state_of_module (module);
   struct {
      PyType_Spec *spec;
      PyTypeObject **slot;
   } types[] = {
      {&ext_runtime_spec, &st->runtime_type}, {&ext_connection_spec, &st->connection_type},
      {&ext_collection_spec, &st->collection_type}, {&ext_schema_spec, &st->schema_type},
      {&ext_model_spec, &st->model_type},     {&ext_op_spec, &st->op_type},
      {&ext_cursor_spec, &st->cursor_type},   {&ext_session_spec, &st->session_type},
   };
   static pthread_once_t fork_counter_once = PTHREAD_ONCE_INIT;
   pthread_once (&fork_counter_once, install_fork_counter);
   /* One reference on libmongoc per interpreter; the runtimes take their own. */
   if (mgconn_init () < 0) {
      PyErr_SetString (PyExc_RuntimeError, "mgconn_init failed");
      return -1;
   }
   for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
      *types[i].slot = (PyTypeObject *) PyType_FromModuleAndSpec (module, types[i].spec, NULL);
      if (!*types[i].slot || PyModule_AddType (module, *types[i].slot) < 0) {
         return -1;
      }
   }
   return PyModule_AddStringConstant (module, "core_version", mgconn_version ());
}

static int
module_traverse (PyObject *module, visitproc visit, void *arg)
{
   ext_state *st = ext_state_of_module (module);
   Py_VISIT (st->runtime_type);
   Py_VISIT (st->connection_type);
   Py_VISIT (st->collection_type);
   Py_VISIT (st->schema_type);
   Py_VISIT (st->model_type);
   Py_VISIT (st->op_type);
   Py_VISIT (st->cursor_type);
   Py_VISIT (st->session_type);
   Py_VISIT (st->ObjectId);
   Py_VISIT (st->Int64);
   Py_VISIT (st->Decimal128);
   Py_VISIT (st->Binary);
   Py_VISIT (st->Regex);
   Py_VISIT (st->Timestamp);
   Py_VISIT (st->MinKey);
   Py_VISIT (st->MaxKey);
   Py_VISIT (st->uuid_UUID);
   Py_VISIT (st->datetime_datetime);
   Py_VISIT (st->utc);
   Py_VISIT (st->make_error);
   Py_VISIT (st->fromtimestamp);
   for (size_t i = 0; i < EXT_KEY_CACHE_SIZE; i++) {
      Py_VISIT (st->key_cache[i]);
   }
   for (int i = 0; i < EXT_ATTR_COUNT; i++) {
      Py_VISIT (st->attr_names[i]);
   }
   Py_VISIT (st->int64_args);
   return 0;
}

static int
module_clear (PyObject *module)
{
   ext_state *st = ext_state_of_module (module);
   Py_CLEAR (st->runtime_type);
   Py_CLEAR (st->connection_type);
   Py_CLEAR (st->collection_type);
   Py_CLEAR (st->schema_type);
   Py_CLEAR (st->model_type);
   Py_CLEAR (st->op_type);
   Py_CLEAR (st->cursor_type);
   Py_CLEAR (st->session_type);
   Py_CLEAR (st->ObjectId);
   Py_CLEAR (st->Int64);
   Py_CLEAR (st->Decimal128);
   Py_CLEAR (st->Binary);
   Py_CLEAR (st->Regex);
   Py_CLEAR (st->Timestamp);
   Py_CLEAR (st->MinKey);
   Py_CLEAR (st->MaxKey);
   Py_CLEAR (st->uuid_UUID);
   Py_CLEAR (st->datetime_datetime);
   Py_CLEAR (st->utc);
   Py_CLEAR (st->make_error);
   Py_CLEAR (st->fromtimestamp);
   for (size_t i = 0; i < EXT_KEY_CACHE_SIZE; i++) {
      Py_CLEAR (st->key_cache[i]);
   }
   for (int i = 0; i < EXT_ATTR_COUNT; i++) {
      Py_CLEAR (st->attr_names[i]);
   }
   Py_CLEAR (st->int64_args);
   return 0;
}

static void
module_free (void *module)
{
   module_clear (module);
   mgconn_shutdown ();
}

static PyModuleDef_Slot module_slots[] = {
   {Py_mod_exec, module_exec},
   {0, NULL},
};

PyModuleDef ext_module_def = {
   PyModuleDef_HEAD_INIT, "mgconn._mgconn", "libmgconn for Python: handles and the BSON codec.", sizeof (ext_state),
   module_methods,        module_slots,     module_traverse,                                     module_clear,
   module_free,
};

PyMODINIT_FUNC
PyInit__mgconn (void)
{
   return PyModuleDef_Init (&ext_module_def);
}
