/*
 * handles.c: Connection, Collection, Schema and Model: thin types over libmgconn's handles.
 *
 * Ownership: each object owns its libmgconn handle and frees it in dealloc, and holds the Python
 * objects whose handles its own depends on (a Connection its Runtime, a Collection its owner, a
 * Model its Connection). Event listeners are the core's registrations (listeners.c), released by
 * the handle's free.
 */
#include "ext.h"

#include <string.h>

/* Encodes an optional dict (None or absent: NULL data). */
static int
opt_doc (ext_state *st, PyObject *obj, bson_t *out, const char *what, const uint8_t **data, size_t *len)
{
   bson_init (out);
   *data = NULL;
   *len = 0;
   if (!obj || obj == Py_None) {
      return 0;
   }
   if (ext_encode_document (st, obj, out, what) < 0) {
      return -1;
   }
   *data = bson_get_data (out);
   *len = out->len;
   return 0;
}

/* Starts an op through `start` and wraps it; the OpObject is held until it finishes. */
typedef int (*starter) (mgconn_op **out, void *ctx, mgconn_op_cb cb, void *userdata);

static PyObject *
start_op (ext_state *st, RuntimeObject *rt, PyObject *callback, int cursor_kind, starter start, void *ctx)
{
   mgconn_op *op = NULL;
   PyObject *o = ext_op_new (st, rt, NULL, callback, cursor_kind);
   if (!o) {
      return NULL;
   }
   if (start (&op, ctx, ext_op_done, o) != 0) {
      Py_DECREF (o);
      return ext_raise_last (st);
   }
   ((OpObject *) o)->op = op;
   Py_INCREF (o);
   return o;
}

/* ---- Connection ---- */

static ConnectionObject *
wrap_connection (ext_state *st, RuntimeObject *rt, mgconn_connection *conn)
{
   ConnectionObject *self = PyObject_GC_New (ConnectionObject, st->connection_type);
   if (!self) {
      mgconn_connection_free (conn);
      return NULL;
   }
   self->conn = conn;
   Py_INCREF (rt);
   self->runtime = rt;
   self->on_command = NULL;
   PyObject_GC_Track (self);
   return self;
}

static PyObject *
Connection_new (PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
   static char *kwlist[] = {"runtime", "uri", "options", NULL};
   ext_state *st = ext_state_of_type (type);
   PyObject *rt, *options = Py_None;
   const char *uri = NULL;
   bson_t opts;
   const uint8_t *data;
   size_t len;
   mgconn_connection *conn = NULL;
   int rc;
   if (!PyArg_ParseTupleAndKeywords (args, kwargs, "O!|zO", kwlist, st->runtime_type, &rt, &uri, &options) ||
       ext_runtime_check ((RuntimeObject *) rt) < 0) {
      return NULL;
   }
   if (opt_doc (st, options, &opts, "options", &data, &len) < 0) {
      bson_destroy (&opts);
      return NULL;
   }
   rc = mgconn_connection_new (&conn, ((RuntimeObject *) rt)->rt, uri, data, len, NULL);
   bson_destroy (&opts);
   if (rc != 0) {
      return ext_raise_last (st);
   }
   return (PyObject *) wrap_connection (st, (RuntimeObject *) rt, conn);
}

static void
Connection_dealloc (ConnectionObject *self)
{
   PyTypeObject *tp = Py_TYPE (self);
   PyObject_GC_UnTrack (self);
   if (self->conn && !ext_runtime_foreign (self->runtime)) {
      mgconn_connection_free (self->conn); /* releases the listeners: each drops its callback */
   }
   Py_CLEAR (self->on_command);
   Py_CLEAR (self->runtime);
   tp->tp_free (self);
   Py_DECREF (tp);
}

static int
Connection_traverse (ConnectionObject *self, visitproc visit, void *arg)
{
   Py_VISIT (Py_TYPE (self));
   if (self->conn) {
      int rc = ext_connection_traverse_listeners (self->conn, visit, arg);
      if (rc) {
         return rc;
      }
   }
   Py_VISIT (self->on_command);
   Py_VISIT (self->runtime);
   return 0;
}

static int
Connection_clear (ConnectionObject *self)
{
   if (self->conn) {
      ext_connection_unlisten_all (self->conn);
   }
   Py_CLEAR (self->on_command);
   return 0;
}

/* on(event, callback, once=False): one core registration; the core keeps the list and the order. */
static PyObject *
Connection_on (ConnectionObject *self, PyObject *args)
{
   const char *event;
   PyObject *callback;
   int once = 0;
   if (!PyArg_ParseTuple (args, "sO|p", &event, &callback, &once) || ext_runtime_check (self->runtime) < 0 ||
       ext_connection_listen (ext_state_of_type (Py_TYPE (self)), self->conn, event, callback, once) < 0) {
      return NULL;
   }
   Py_RETURN_NONE;
}

static PyObject *
Connection_off (ConnectionObject *self, PyObject *args)
{
   const char *event;
   PyObject *callback;
   if (!PyArg_ParseTuple (args, "sO", &event, &callback) || ext_runtime_check (self->runtime) < 0) {
      return NULL;
   }
   ext_connection_unlisten (self->conn, event, callback);
   Py_RETURN_NONE;
}

/* Read from the parent's object too (a fork's child registers them again on its remade one). */
static PyObject *
Connection_listeners (ConnectionObject *self, PyObject *unused)
{
   (void) unused;
   return ext_connection_listeners (self->conn);
}

static void
command_trampoline (mgconn_connection *conn, const uint8_t *event, size_t len, void *userdata)
{
   ConnectionObject *self = userdata;
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   PyObject *doc, *r;
   (void) conn;
   if (!self->on_command || !(doc = ext_decode_document (st, event, len, 0))) {
      if (PyErr_Occurred ()) {
         ext_report_callback_error ("command listener", NULL);
      }
      return;
   }
   r = PyObject_CallOneArg (self->on_command, doc);
   if (!r) {
      ext_report_callback_error ("command listener", self->on_command);
   }
   Py_XDECREF (r);
   Py_DECREF (doc);
}

/* set_command_listener(callable or None): callable(event dict) for every command event. */
static PyObject *
Connection_set_command_listener (ConnectionObject *self, PyObject *callback)
{
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   bool on = callback != Py_None;
   if (mgconn_connection_on_command (self->conn, on ? command_trampoline : NULL, self) != 0) {
      return ext_raise_last (st);
   }
   Py_XSETREF (self->on_command, on ? Py_NewRef (callback) : NULL);
   Py_RETURN_NONE;
}

static PyObject *
Connection_open (ConnectionObject *self, PyObject *args)
{
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   const char *uri;
   PyObject *options = Py_None;
   bson_t opts;
   const uint8_t *data;
   size_t len;
   int rc;
   if (ext_runtime_check (self->runtime) < 0 || !PyArg_ParseTuple (args, "s|O", &uri, &options) ||
       opt_doc (st, options, &opts, "options", &data, &len) < 0) {
      return NULL;
   }
   rc = mgconn_connection_open (self->conn, uri, data, len, NULL);
   bson_destroy (&opts);
   if (rc != 0) {
      return ext_raise_last (st);
   }
   Py_RETURN_NONE;
}

typedef struct {
   mgconn_connection *conn;
   int32_t force;
   const char *name;
   const char *db;
   const uint8_t *data;
   size_t len;
} conn_ctx;

static int
start_close (mgconn_op **out, void *ctx, mgconn_op_cb cb, void *ud)
{
   conn_ctx *c = ctx;
   return mgconn_connection_close (out, c->conn, c->force, cb, ud);
}

static int
start_when_open (mgconn_op **out, void *ctx, mgconn_op_cb cb, void *ud)
{
   conn_ctx *c = ctx;
   return mgconn_connection_when_open (out, c->conn, cb, ud);
}

static int
start_run_command (mgconn_op **out, void *ctx, mgconn_op_cb cb, void *ud)
{
   conn_ctx *c = ctx;
   return mgconn_run_command (out, c->conn, c->db, c->data, c->len, cb, ud);
}

static int
start_create_collection (mgconn_op **out, void *ctx, mgconn_op_cb cb, void *ud)
{
   conn_ctx *c = ctx;
   return mgconn_connection_create_collection (out, c->conn, c->name, c->data, c->len, cb, ud);
}

static int
start_drop_database (mgconn_op **out, void *ctx, mgconn_op_cb cb, void *ud)
{
   conn_ctx *c = ctx;
   return mgconn_connection_drop_database (out, c->conn, cb, ud);
}

static PyObject *
Connection_close (ConnectionObject *self, PyObject *args)
{
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   int force = 0;
   PyObject *callback = Py_None;
   conn_ctx c = {self->conn, 0, NULL, NULL, NULL, 0};
   if (!PyArg_ParseTuple (args, "|pO", &force, &callback)) {
      return NULL;
   }
   c.force = force;
   return start_op (st, self->runtime, callback, 0, start_close, &c);
}

static PyObject *
Connection_when_open (ConnectionObject *self, PyObject *args)
{
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   PyObject *callback = Py_None;
   conn_ctx c = {self->conn, 0, NULL, NULL, NULL, 0};
   if (!PyArg_ParseTuple (args, "|O", &callback)) {
      return NULL;
   }
   return start_op (st, self->runtime, callback, 0, start_when_open, &c);
}

static PyObject *
Connection_run_command (ConnectionObject *self, PyObject *args)
{
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   PyObject *command, *callback = Py_None, *r;
   const char *db = NULL;
   bson_t cmd = BSON_INITIALIZER;
   conn_ctx c = {self->conn, 0, NULL, NULL, NULL, 0};
   if (!PyArg_ParseTuple (args, "O|zO", &command, &db, &callback)) {
      return NULL;
   }
   if (ext_encode_document (st, command, &cmd, "command") < 0) {
      bson_destroy (&cmd);
      return NULL;
   }
   c.db = db;
   c.data = bson_get_data (&cmd);
   c.len = cmd.len;
   r = start_op (st, self->runtime, callback, 0, start_run_command, &c);
   bson_destroy (&cmd);
   return r;
}

static PyObject *
Connection_create_collection (ConnectionObject *self, PyObject *args)
{
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   PyObject *options = Py_None, *callback = Py_None, *r;
   const char *name;
   bson_t opts;
   conn_ctx c = {self->conn, 0, NULL, NULL, NULL, 0};
   if (!PyArg_ParseTuple (args, "s|OO", &name, &options, &callback) ||
       opt_doc (st, options, &opts, "options", &c.data, &c.len) < 0) {
      return NULL;
   }
   c.name = name;
   r = start_op (st, self->runtime, callback, 0, start_create_collection, &c);
   bson_destroy (&opts);
   return r;
}

static PyObject *
Connection_drop_database (ConnectionObject *self, PyObject *args)
{
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   PyObject *callback = Py_None;
   conn_ctx c = {self->conn, 0, NULL, NULL, NULL, 0};
   if (!PyArg_ParseTuple (args, "|O", &callback)) {
      return NULL;
   }
   return start_op (st, self->runtime, callback, 0, start_drop_database, &c);
}

typedef struct {
   mgconn_connection *conn;
   bool databases;
   const uint8_t *filter, *opts;
   size_t filter_len, opts_len;
} list_ctx;

static int
start_list (mgconn_op **out, void *ctx, mgconn_op_cb cb, void *ud)
{
   list_ctx *c = ctx;
   return c->databases ? mgconn_connection_list_databases (out, c->conn, c->opts, c->opts_len, cb, ud)
                       : mgconn_connection_list_collections (out, c->conn, c->filter, c->filter_len, c->opts,
                                                             c->opts_len, cb, ud);
}

/* list(what, filter=None, options=None, callback=None): what is "collections" or "databases"
 * (a database listing takes its filter among the options). */
static PyObject *
Connection_list (ConnectionObject *self, PyObject *args)
{
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   PyObject *filter = Py_None, *options = Py_None, *callback = Py_None, *r = NULL;
   const char *what;
   bson_t f = BSON_INITIALIZER, o = BSON_INITIALIZER;
   list_ctx c = {self->conn, false, NULL, NULL, 0, 0};
   if (!PyArg_ParseTuple (args, "s|OOO", &what, &filter, &options, &callback)) {
      return NULL;
   }
   c.databases = strcmp (what, "databases") == 0;
   if (opt_doc (st, filter, &f, "filter", &c.filter, &c.filter_len) == 0 &&
       opt_doc (st, options, &o, "options", &c.opts, &c.opts_len) == 0) {
      r = start_op (st, self->runtime, callback, 0, start_list, &c);
   }
   bson_destroy (&f);
   bson_destroy (&o);
   return r;
}

static int
start_watch (mgconn_op **out, void *ctx, mgconn_op_cb cb, void *ud)
{
   list_ctx *c = ctx; /* filter: the pipeline */
   return mgconn_connection_watch (out, c->conn, c->filter, c->filter_len, c->opts, c->opts_len, cb, ud);
}

/* watch(pipeline=None, options=None, callback=None): the database's change stream (an Op whose
 * cursor is taken as a find's). */
static PyObject *
Connection_watch (ConnectionObject *self, PyObject *args)
{
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   PyObject *pipeline = Py_None, *options = Py_None, *callback = Py_None, *r = NULL;
   bson_t p = BSON_INITIALIZER, o = BSON_INITIALIZER;
   list_ctx c = {self->conn, false, NULL, NULL, 0, 0};
   if (!PyArg_ParseTuple (args, "|OOO", &pipeline, &options, &callback) || ext_runtime_check (self->runtime) < 0) {
      return NULL;
   }
   if (pipeline != Py_None) {
      if (ext_encode_array (st, pipeline, &p, "pipeline") < 0) {
         goto done;
      }
      c.filter = bson_get_data (&p);
      c.filter_len = p.len;
   }
   if (opt_doc (st, options, &o, "options", &c.opts, &c.opts_len) == 0) {
      r = start_op (st, self->runtime, callback, 1, start_watch, &c);
   }
done:
   bson_destroy (&p);
   bson_destroy (&o);
   return r;
}

static CollectionObject *
wrap_collection (ext_state *st, mgconn_collection *coll, PyObject *owner, RuntimeObject *rt)
{
   CollectionObject *co = PyObject_GC_New (CollectionObject, st->collection_type);
   if (!co) {
      return NULL;
   }
   co->coll = coll;
   co->owner = Py_NewRef (owner);
   Py_INCREF (rt);
   co->runtime = rt;
   PyObject_GC_Track (co);
   return co;
}

static PyObject *
Connection_collection (ConnectionObject *self, PyObject *name)
{
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   mgconn_collection *coll = NULL;
   const char *n = PyUnicode_AsUTF8 (name);
   if (!n || ext_runtime_check (self->runtime) < 0) {
      return NULL;
   }
   if (mgconn_connection_collection (&coll, self->conn, n, NULL) != 0) {
      return ext_raise_last (st);
   }
   return (PyObject *) wrap_collection (st, coll, (PyObject *) self, self->runtime);
}

static PyObject *
Connection_use_db (ConnectionObject *self, PyObject *args)
{
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   const char *name;
   int use_cache = 0;
   mgconn_connection *child = NULL;
   if (!PyArg_ParseTuple (args, "s|p", &name, &use_cache) || ext_runtime_check (self->runtime) < 0) {
      return NULL;
   }
   if (mgconn_connection_use_db (&child, self->conn, name, use_cache, NULL) != 0) {
      return ext_raise_last (st);
   }
   return (PyObject *) wrap_connection (st, self->runtime, child);
}

static PyObject *
Connection_model (ConnectionObject *self, PyObject *args)
{
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   const char *name, *collection = NULL;
   PyObject *schema = Py_None;
   mgconn_model *m = NULL;
   ModelObject *mo;
   if (!PyArg_ParseTuple (args, "s|Oz", &name, &schema, &collection) || ext_runtime_check (self->runtime) < 0) {
      return NULL;
   }
   if (schema != Py_None && !PyObject_TypeCheck (schema, st->schema_type)) {
      PyErr_SetString (PyExc_TypeError, "schema must be an mgconn Schema");
      return NULL;
   }
   if (mgconn_connection_model (&m, self->conn, name, schema == Py_None ? NULL : ((SchemaObject *) schema)->schema,
                                collection, NULL) != 0) {
      return ext_raise_last (st);
   }
   mo = PyObject_GC_New (ModelObject, st->model_type);
   if (!mo) {
      mgconn_model_free (m);
      return NULL;
   }
   mo->model = m;
   Py_INCREF (self);
   mo->connection = self;
   PyObject_GC_Track (mo);
   return (PyObject *) mo;
}

static PyObject *
Connection_delete_model (ConnectionObject *self, PyObject *name)
{
   const char *n = PyUnicode_AsUTF8 (name);
   if (!n || ext_runtime_check (self->runtime) < 0) {
      return NULL;
   }
   if (mgconn_connection_delete_model (self->conn, n) != 0) {
      return ext_raise_last (ext_state_of_type (Py_TYPE (self)));
   }
   Py_RETURN_NONE;
}

static PyObject *
Connection_model_names (ConnectionObject *self, PyObject *unused)
{
   PyObject *list;
   (void) unused;
   if (ext_runtime_check (self->runtime) < 0) {
      return NULL;
   }
   list = PyList_New (0);
   for (int32_t i = 0; list && i < mgconn_connection_model_count (self->conn); i++) {
      PyObject *s = PyUnicode_FromString (mgconn_connection_model_name (self->conn, i));
      if (!s || PyList_Append (list, s) < 0) {
         Py_XDECREF (s);
         Py_CLEAR (list);
         break;
      }
      Py_DECREF (s);
   }
   return list;
}

static PyObject *
Connection_stats (ConnectionObject *self, PyObject *unused)
{
   uint8_t buf[256];
   int len;
   (void) unused;
   if (ext_runtime_check (self->runtime) < 0) {
      return NULL;
   }
   len = mgconn_connection_stats (self->conn, buf, sizeof buf);
   return len > 0 ? ext_decode_document (ext_state_of_type (Py_TYPE (self)), buf, (size_t) len, 0)
                  : ext_raise_last (ext_state_of_type (Py_TYPE (self)));
}

static PyObject *
Connection_get_ready_state (ConnectionObject *self, void *unused)
{
   (void) unused;
   return PyLong_FromLong (mgconn_connection_ready_state (self->conn));
}

static PyObject *
Connection_get_name (ConnectionObject *self, void *unused)
{
   (void) unused;
   return PyUnicode_FromString (mgconn_connection_name (self->conn));
}

static PyObject *
Connection_get_host (ConnectionObject *self, void *unused)
{
   (void) unused;
   return PyUnicode_FromString (mgconn_connection_host (self->conn));
}

static PyObject *
Connection_get_port (ConnectionObject *self, void *unused)
{
   (void) unused;
   return PyLong_FromLong (mgconn_connection_port (self->conn));
}

static PyObject *
Connection_get_id (ConnectionObject *self, void *unused)
{
   (void) unused;
   return PyLong_FromLongLong (mgconn_connection_id (self->conn));
}

static PyMethodDef Connection_methods[] = {
   {"on", (PyCFunction) Connection_on, METH_VARARGS, "on(event, callback, once=False)"},
   {"off", (PyCFunction) Connection_off, METH_VARARGS, "off(event, callback): the first registration of it"},
   {"listeners", (PyCFunction) Connection_listeners, METH_NOARGS, "[(event, callback, once)], in order"},
   {"set_command_listener", (PyCFunction) Connection_set_command_listener, METH_O,
    "listener(event dict) for every command event, or None"},
   {"open", (PyCFunction) Connection_open, METH_VARARGS, "open(uri, options=None)"},
   {"close", (PyCFunction) Connection_close, METH_VARARGS, "close(force=False, callback=None) -> Op"},
   {"when_open", (PyCFunction) Connection_when_open, METH_VARARGS,
    "when_open(callback=None) -> Op: finishes with this open's outcome (fails at once when closed)"},
   {"run_command", (PyCFunction) Connection_run_command, METH_VARARGS, "run_command(cmd, db=None, callback=None)"},
   {"create_collection", (PyCFunction) Connection_create_collection, METH_VARARGS,
    "create_collection(name, options=None, callback=None)"},
   {"drop_database", (PyCFunction) Connection_drop_database, METH_VARARGS, "drop_database(callback=None)"},
   {"list", (PyCFunction) Connection_list, METH_VARARGS,
    "list(\"collections\" | \"databases\", filter=None, options=None, callback=None)"},
   {"collection", (PyCFunction) Connection_collection, METH_O, "collection(name) -> Collection"},
   {"use_db", (PyCFunction) Connection_use_db, METH_VARARGS, "use_db(name, use_cache=False) -> Connection"},
   {"start_session", (PyCFunction) ext_session_start, METH_VARARGS, "start_session(options=None) -> Session"},
   {"watch", (PyCFunction) Connection_watch, METH_VARARGS, "watch(pipeline=None, options=None, callback=None) -> Op"},
   {"model", (PyCFunction) Connection_model, METH_VARARGS, "model(name, schema=None, collection=None) -> Model"},
   {"delete_model", (PyCFunction) Connection_delete_model, METH_O, "delete_model(name)"},
   {"model_names", (PyCFunction) Connection_model_names, METH_NOARGS, "registered model names"},
   {"stats", (PyCFunction) Connection_stats, METH_NOARGS, "{inFlight, waiting, peakInFlight, maxPoolSize, openCursors, maxOpenCursors}"},
   {NULL, NULL, 0, NULL},
};

static PyGetSetDef Connection_getset[] = {
   {"ready_state", (getter) Connection_get_ready_state, NULL,
    "0 disconnected, 1 connected, 2 connecting, 3 disconnecting, 99 uninitialized", NULL},
   {"name", (getter) Connection_get_name, NULL, "the database name", NULL},
   {"host", (getter) Connection_get_host, NULL, "the first host of the URI", NULL},
   {"port", (getter) Connection_get_port, NULL, "the first port of the URI", NULL},
   {"id", (getter) Connection_get_id, NULL, "the connection's number in its runtime", NULL},
   {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Connection_slots[] = {
   {Py_tp_new, Connection_new},         {Py_tp_dealloc, Connection_dealloc}, {Py_tp_traverse, Connection_traverse},
   {Py_tp_clear, Connection_clear},     {Py_tp_methods, Connection_methods}, {Py_tp_getset, Connection_getset},
   {Py_tp_doc, "Connection(runtime, uri=None, options=None)"},
   {0, NULL},
};

PyType_Spec ext_connection_spec = {"mgconn._mgconn.Connection", sizeof (ConnectionObject), 0,
                                   Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, Connection_slots};

/* ---- Collection ---- */

/* The documents of one call, encoded; the operation's shape is the core table's. */
typedef struct {
   mgconn_collection *coll;
   const char *name;
   bson_t *a, *b, *o;
} coll_ctx;

static const uint8_t *
data_or_null (bson_t *b, size_t *len)
{
   *len = b ? b->len : 0;
   return b ? bson_get_data (b) : NULL;
}

static int
start_coll_op (mgconn_op **out, void *ctx, mgconn_op_cb cb, void *ud)
{
   coll_ctx *c = ctx;
   size_t la, lb, lo;
   const uint8_t *a = data_or_null (c->a, &la), *b = data_or_null (c->b, &lb), *o = data_or_null (c->o, &lo);
   return mgconn_collection_call (out, c->coll, c->name, a, la, b, lb, o, lo, cb, ud);
}

/* What ext_encode_document takes as a document. */
static bool
is_mapping (PyObject *obj)
{
   return PyDict_Check (obj) || (PyMapping_Check (obj) && PyObject_HasAttrString (obj, "keys"));
}

/* Collection.call(name, a=None, b=None, options=None, callback=None) -> Op: one entry point for
 * every operation; the Python layer names them. */
static PyObject *
Collection_call (CollectionObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
   /* Vectorcall, parsed by hand: every operation of the Python layer comes through here, and a game
    * host pays for it inside its frame. Keywords are accepted as the signature says. */
   static const char *const names[] = {"name", "a", "b", "options", "callback"};
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   const char *name;
   PyObject *given[5] = {NULL, Py_None, Py_None, Py_None, Py_None};
   bool set[5] = {false, false, false, false, false};
   PyObject *a, *b, *o, *callback, *r = NULL;
   bson_t ba = BSON_INITIALIZER, bb = BSON_INITIALIZER, bo = BSON_INITIALIZER;
   coll_ctx c = {self->coll, NULL, NULL, NULL, NULL};
   int flags;
   const char *first = NULL, *second = NULL;
   int is_array;
   Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE (kwnames) : 0;
   if (nargs > 5) {
      PyErr_Format (PyExc_TypeError, "call() takes at most 5 arguments (%zd given)", nargs);
      return NULL;
   }
   for (Py_ssize_t i = 0; i < nargs; i++) {
      given[i] = args[i];
      set[i] = true;
   }
   for (Py_ssize_t k = 0; k < nkw; k++) {
      const char *kw = PyUnicode_AsUTF8 (PyTuple_GET_ITEM (kwnames, k));
      size_t i = 0;
      if (!kw) {
         return NULL;
      }
      while (i < 5 && strcmp (names[i], kw) != 0) {
         i++;
      }
      if (i == 5) {
         PyErr_Format (PyExc_TypeError, "call() got an unexpected keyword argument '%s'", kw);
         return NULL;
      }
      if (set[i]) {
         PyErr_Format (PyExc_TypeError, "call() got multiple values for argument '%s'", kw);
         return NULL;
      }
      given[i] = args[nargs + k];
      set[i] = true;
   }
   if (!set[0] || !PyUnicode_Check (given[0])) {
      PyErr_SetString (PyExc_TypeError, "call() needs the operation's name as a str");
      return NULL;
   }
   if (!(name = PyUnicode_AsUTF8 (given[0]))) {
      return NULL;
   }
   a = given[1], b = given[2], o = given[3], callback = given[4];
   if ((flags = mgconn_operation_flags (name)) < 0) {
      PyErr_Format (PyExc_ValueError, "no collection operation named %s", name);
      goto done;
   }
   first = mgconn_operation_document (name, 1);
   second = mgconn_operation_document (name, 2);
   c.name = name;
   is_array = flags & MGCONN_OPERATION_FIRST_IS_ARRAY;
   /* None where a document is needed is the caller's mistake of type (PyMongo's TypeError too), named
    * as the method's argument rather than as the NULL the core would see. */
   if ((flags & MGCONN_OPERATION_FIRST_REQUIRED) && a == Py_None) {
      PyErr_Format (PyExc_TypeError, "%s(): the argument '%s' must be a %s, not None", name, first,
                    is_array ? "list" : "dict (or another mapping)");
      goto done;
   }
   if (second && b == Py_None) {
      PyErr_Format (PyExc_TypeError, "%s(): the argument '%s' must be a dict (or another mapping), not None", name,
                    second);
      goto done;
   }
   if (a != Py_None && first && !is_array && !is_mapping (a)) { /* insert_one(42): named as the None case is */
      PyErr_Format (PyExc_TypeError, "%s(): the argument '%s' must be a dict (or another mapping), not %s", name,
                    first, Py_TYPE (a)->tp_name);
      goto done;
   }
   if (b != Py_None && second && !is_mapping (b)) {
      PyErr_Format (PyExc_TypeError, "%s(): the argument '%s' must be a dict (or another mapping), not %s", name,
                    second, Py_TYPE (b)->tp_name);
      goto done;
   }
   if (a != Py_None && first) {
      if ((is_array ? ext_encode_array (st, a, &ba, "documents")
                    : ext_encode_document (st, a, &ba, second ? "filter" : "doc")) < 0) {
         goto done;
      }
      c.a = &ba;
   }
   if (b != Py_None && second) {
      if (ext_encode_document (st, b, &bb, second) < 0) {
         goto done;
      }
      c.b = &bb;
   }
   if (o != Py_None) {
      if (ext_encode_document (st, o, &bo, "options") < 0) {
         goto done;
      }
      c.o = &bo;
   }
   r = start_op (st, self->runtime, callback, (flags & MGCONN_OPERATION_RETURNS_CURSOR) != 0, start_coll_op, &c);
done:
   bson_destroy (&ba);
   bson_destroy (&bb);
   bson_destroy (&bo);
   return r;
}

static void
Collection_dealloc (CollectionObject *self)
{
   PyTypeObject *tp = Py_TYPE (self);
   PyObject_GC_UnTrack (self);
   /* A model's collection is the model's: only raw ones are ours to free. */
   if (self->coll && !ext_runtime_foreign (self->runtime) && !(self->owner && PyObject_TypeCheck (self->owner, ext_state_of_type (tp)->model_type))) {
      mgconn_collection_free (self->coll);
   }
   Py_CLEAR (self->owner);
   Py_CLEAR (self->runtime);
   tp->tp_free (self);
   Py_DECREF (tp);
}

static int
Collection_traverse (CollectionObject *self, visitproc visit, void *arg)
{
   Py_VISIT (Py_TYPE (self));
   Py_VISIT (self->owner);
   Py_VISIT (self->runtime);
   return 0;
}

static PyObject *
Collection_get_name (CollectionObject *self, void *unused)
{
   (void) unused;
   return PyUnicode_FromString (mgconn_collection_name (self->coll));
}

static PyMethodDef Collection_methods[] = {
   {"call", (PyCFunction) (void (*) (void)) Collection_call, METH_FASTCALL | METH_KEYWORDS,
    "call(name, a=None, b=None, options=None, callback=None) -> Op"},
   {NULL, NULL, 0, NULL},
};

static PyGetSetDef Collection_getset[] = {
   {"name", (getter) Collection_get_name, NULL, "the collection name", NULL},
   {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Collection_slots[] = {
   {Py_tp_dealloc, Collection_dealloc}, {Py_tp_traverse, Collection_traverse}, {Py_tp_methods, Collection_methods},
   {Py_tp_getset, Collection_getset},   {Py_tp_doc, "A collection: raw, or a model's."},
   {0, NULL},
};

PyType_Spec ext_collection_spec = {"mgconn._mgconn.Collection", sizeof (CollectionObject), 0,
                                   Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
                                   Collection_slots};

/* ---- Schema ---- */

static PyObject *
Schema_new (PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
   static char *kwlist[] = {"definition", "options", NULL};
   ext_state *st = ext_state_of_type (type);
   PyObject *def = Py_None, *options = Py_None;
   bson_t d, o;
   const uint8_t *dd, *od;
   size_t dl, ol;
   SchemaObject *self;
   int rc;
   if (!PyArg_ParseTupleAndKeywords (args, kwargs, "|OO", kwlist, &def, &options)) {
      return NULL;
   }
   if (opt_doc (st, def, &d, "definition", &dd, &dl) < 0) {
      bson_destroy (&d);
      return NULL;
   }
   if (opt_doc (st, options, &o, "options", &od, &ol) < 0) {
      bson_destroy (&d);
      bson_destroy (&o);
      return NULL;
   }
   self = (SchemaObject *) type->tp_alloc (type, 0);
   rc = self ? mgconn_schema_new (&self->schema, dd, dl, od, ol, NULL) : -1;
   bson_destroy (&d);
   bson_destroy (&o);
   if (!self) {
      return NULL;
   }
   if (rc != 0) {
      Py_DECREF (self);
      return ext_raise_last (st);
   }
   return (PyObject *) self;
}

static void
Schema_dealloc (SchemaObject *self)
{
   PyTypeObject *tp = Py_TYPE (self);
   mgconn_schema_free (self->schema);
   tp->tp_free (self);
   Py_DECREF (tp);
}

static PyObject *
Schema_index (SchemaObject *self, PyObject *args)
{
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   PyObject *keys, *options = Py_None;
   bson_t k = BSON_INITIALIZER, o;
   const uint8_t *od;
   size_t ol;
   int rc;
   if (!PyArg_ParseTuple (args, "O|O", &keys, &options)) {
      return NULL;
   }
   if (ext_encode_document (st, keys, &k, "keys") < 0 || opt_doc (st, options, &o, "options", &od, &ol) < 0) {
      bson_destroy (&k);
      return NULL;
   }
   rc = mgconn_schema_index (self->schema, bson_get_data (&k), k.len, od, ol, NULL);
   bson_destroy (&k);
   bson_destroy (&o);
   if (rc != 0) {
      return ext_raise_last (st);
   }
   Py_RETURN_NONE;
}

static PyObject *
Schema_get_options (SchemaObject *self, void *unused)
{
   const uint8_t *data;
   size_t len;
   (void) unused;
   mgconn_schema_options (self->schema, &data, &len);
   return ext_decode_document (ext_state_of_type (Py_TYPE (self)), data, len, 0);
}

static PyObject *
Schema_get_definition (SchemaObject *self, void *unused)
{
   const uint8_t *data;
   size_t len;
   (void) unused;
   mgconn_schema_definition (self->schema, &data, &len);
   return ext_decode_document (ext_state_of_type (Py_TYPE (self)), data, len, 0);
}

static PyMethodDef Schema_methods[] = {
   {"index", (PyCFunction) Schema_index, METH_VARARGS, "index(keys, options=None)"},
   {NULL, NULL, 0, NULL},
};

static PyGetSetDef Schema_getset[] = {
   {"options", (getter) Schema_get_options, NULL, "the options as given", NULL},
   {"definition", (getter) Schema_get_definition, NULL, "the field definition as given", NULL},
   {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Schema_slots[] = {
   {Py_tp_new, Schema_new},         {Py_tp_dealloc, Schema_dealloc},
   {Py_tp_methods, Schema_methods}, {Py_tp_getset, Schema_getset},
   {Py_tp_doc, "Schema(definition=None, options=None)"},
   {0, NULL},
};

PyType_Spec ext_schema_spec = {"mgconn._mgconn.Schema", sizeof (SchemaObject), 0,
                               Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, Schema_slots};

/* ---- Model ---- */

static void
Model_dealloc (ModelObject *self)
{
   PyTypeObject *tp = Py_TYPE (self);
   PyObject_GC_UnTrack (self);
   if (self->model && !ext_runtime_foreign (self->connection->runtime)) {
      mgconn_model_free (self->model); /* the last handle's free releases the listeners */
   }
   Py_CLEAR (self->connection);
   tp->tp_free (self);
   Py_DECREF (tp);
}

static int
Model_traverse (ModelObject *self, visitproc visit, void *arg)
{
   Py_VISIT (Py_TYPE (self));
   if (self->model) {
      int rc = ext_model_traverse_listeners (self->model, visit, arg);
      if (rc) {
         return rc;
      }
   }
   Py_VISIT (self->connection);
   return 0;
}

static int
Model_clear (ModelObject *self)
{
   if (self->model) {
      ext_model_unlisten_all (self->model);
   }
   return 0;
}

/* on(callback, once=False): the "index" event, one core registration. */
static PyObject *
Model_on (ModelObject *self, PyObject *args)
{
   PyObject *callback;
   int once = 0;
   if (!PyArg_ParseTuple (args, "O|p", &callback, &once) || ext_runtime_check (self->connection->runtime) < 0 ||
       ext_model_listen (ext_state_of_type (Py_TYPE (self)), self->model, callback, once) < 0) {
      return NULL;
   }
   Py_RETURN_NONE;
}

static PyObject *
Model_off (ModelObject *self, PyObject *callback)
{
   if (ext_runtime_check (self->connection->runtime) < 0) {
      return NULL;
   }
   ext_model_unlisten (self->model, callback);
   Py_RETURN_NONE;
}

static PyObject *
Model_listeners (ModelObject *self, PyObject *unused)
{
   (void) unused;
   return ext_model_listeners (self->model);
}

static int
start_init (mgconn_op **out, void *ctx, mgconn_op_cb cb, void *ud)
{
   return mgconn_model_init (out, ctx, cb, ud);
}

static PyObject *
Model_init (ModelObject *self, PyObject *args)
{
   PyObject *callback = Py_None;
   if (!PyArg_ParseTuple (args, "|O", &callback)) {
      return NULL;
   }
   return start_op (ext_state_of_type (Py_TYPE (self)), self->connection->runtime, callback, 0, start_init,
                    self->model);
}

static int
start_sync_indexes (mgconn_op **out, void *ctx, mgconn_op_cb cb, void *ud)
{
   return mgconn_model_sync_indexes (out, ctx, cb, ud);
}

static PyObject *
Model_sync_indexes (ModelObject *self, PyObject *args)
{
   PyObject *callback = Py_None;
   if (!PyArg_ParseTuple (args, "|O", &callback)) {
      return NULL;
   }
   return start_op (ext_state_of_type (Py_TYPE (self)), self->connection->runtime, callback, 0, start_sync_indexes,
                    self->model);
}

static PyObject *
Model_get_collection (ModelObject *self, void *unused)
{
   (void) unused;
   return (PyObject *) wrap_collection (ext_state_of_type (Py_TYPE (self)), mgconn_model_collection (self->model),
                                        (PyObject *) self, self->connection->runtime);
}

static PyObject *
Model_get_name (ModelObject *self, void *unused)
{
   (void) unused;
   return PyUnicode_FromString (mgconn_model_name (self->model));
}

static PyObject *
Model_get_connection (ModelObject *self, void *unused)
{
   (void) unused;
   return Py_NewRef ((PyObject *) self->connection);
}

static PyMethodDef Model_methods[] = {
   {"on", (PyCFunction) Model_on, METH_VARARGS, "on(callback, once=False): the index event"},
   {"off", (PyCFunction) Model_off, METH_O, "off(callback): the first registration of it"},
   {"listeners", (PyCFunction) Model_listeners, METH_NOARGS, "[(\"index\", callback, once)], in order"},
   {"init", (PyCFunction) Model_init, METH_VARARGS, "init(callback=None) -> Op"},
   {"sync_indexes", (PyCFunction) Model_sync_indexes, METH_VARARGS, "sync_indexes(callback=None) -> Op"},
   {NULL, NULL, 0, NULL},
};

static PyGetSetDef Model_getset[] = {
   {"collection", (getter) Model_get_collection, NULL, "the model's Collection", NULL},
   {"name", (getter) Model_get_name, NULL, "the model name", NULL},
   {"connection", (getter) Model_get_connection, NULL, "the Connection it is registered on", NULL},
   {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Model_slots[] = {
   {Py_tp_dealloc, Model_dealloc}, {Py_tp_traverse, Model_traverse}, {Py_tp_clear, Model_clear},
   {Py_tp_methods, Model_methods},
   {Py_tp_getset, Model_getset},   {Py_tp_doc, "A registered model."},
   {0, NULL},
};

PyType_Spec ext_model_spec = {"mgconn._mgconn.Model", sizeof (ModelObject), 0,
                              Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
                              Model_slots};
