/*
 * session.c: Session, a thin type over libmgconn's mgconn_session (sessions and transactions).
 *
 * Ownership: the object owns its session handle and holds its Connection, whose handle the session
 * needs, until it is deallocated. A session of the parent's runtime (made before os.fork()) is
 * leaked in the child, as every handle of that runtime is.
 */
#include "ext.h"

static PyObject *
bson_or_none (ext_state *st, PyObject *obj, bson_t *out, int *given)
{
   bson_init (out);
   *given = 0;
   if (obj == Py_None) {
      return Py_None;
   }
   if (ext_encode_document (st, obj, out, "options") < 0) {
      return NULL;
   }
   *given = 1;
   return Py_None;
}

PyObject *
ext_session_start (ConnectionObject *conn, PyObject *args)
{
   ext_state *st = ext_state_of_type (Py_TYPE (conn));
   PyObject *options = Py_None;
   bson_t o;
   int given, rc;
   mgconn_session *s = NULL;
   SessionObject *self;
   if (!PyArg_ParseTuple (args, "|O", &options) || ext_runtime_check (conn->runtime) < 0) {
      return NULL;
   }
   if (!bson_or_none (st, options, &o, &given)) {
      bson_destroy (&o);
      return NULL;
   }
   rc = mgconn_connection_start_session (&s, conn->conn, given ? bson_get_data (&o) : NULL, o.len);
   bson_destroy (&o);
   if (rc != 0) {
      return ext_raise_last (st);
   }
   if (!(self = PyObject_GC_New (SessionObject, st->session_type))) {
      mgconn_session_free (s);
      return NULL;
   }
   self->session = s;
   Py_INCREF (conn);
   self->connection = conn;
   PyObject_GC_Track (self);
   return (PyObject *) self;
}

static PyObject *
Session_start_transaction (SessionObject *self, PyObject *args)
{
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   PyObject *options = Py_None;
   bson_t o;
   int given, rc;
   if (!PyArg_ParseTuple (args, "|O", &options) || ext_runtime_check (self->connection->runtime) < 0) {
      return NULL;
   }
   if (!bson_or_none (st, options, &o, &given)) {
      bson_destroy (&o);
      return NULL;
   }
   rc = mgconn_session_start_transaction (self->session, given ? bson_get_data (&o) : NULL, o.len);
   bson_destroy (&o);
   if (rc != 0) {
      return ext_raise_last (st);
   }
   Py_RETURN_NONE;
}

typedef int (*ender) (mgconn_op **, mgconn_session *, mgconn_op_cb, void *);

static PyObject *
finish (SessionObject *self, PyObject *callback, ender end)
{
   ext_state *st = ext_state_of_type (Py_TYPE (self));
   mgconn_op *op = NULL;
   PyObject *o;
   if (ext_runtime_check (self->connection->runtime) < 0) {
      return NULL;
   }
   if (!(o = ext_op_new (st, self->connection->runtime, NULL, callback, 0))) {
      return NULL;
   }
   if (end (&op, self->session, ext_op_done, o) != 0) {
      Py_DECREF (o);
      return ext_raise_last (st);
   }
   ((OpObject *) o)->op = op;
   Py_INCREF (o); /* held until it finishes (ext_op_done) */
   return o;
}

static PyObject *
Session_commit (SessionObject *self, PyObject *callback)
{
   return finish (self, callback, mgconn_session_commit_transaction);
}

static PyObject *
Session_abort (SessionObject *self, PyObject *callback)
{
   return finish (self, callback, mgconn_session_abort_transaction);
}

static PyObject *
Session_get_id (SessionObject *self, void *closure)
{
   (void) closure;
   return PyLong_FromLongLong (mgconn_session_id (self->session));
}

static PyObject *
Session_get_in_transaction (SessionObject *self, void *closure)
{
   (void) closure;
   return PyBool_FromLong (mgconn_session_in_transaction (self->session));
}

static int
Session_traverse (SessionObject *self, visitproc visit, void *arg)
{
   Py_VISIT (Py_TYPE (self));
   Py_VISIT (self->connection);
   return 0;
}

static void
Session_dealloc (SessionObject *self)
{
   PyTypeObject *tp = Py_TYPE (self);
   PyObject_GC_UnTrack (self);
   if (self->session && self->connection && !ext_runtime_foreign (self->connection->runtime)) {
      mgconn_session_free (self->session);
   }
   Py_CLEAR (self->connection);
   tp->tp_free (self);
   Py_DECREF (tp);
}

static PyMethodDef Session_methods[] = {
   {"start_transaction", (PyCFunction) Session_start_transaction, METH_VARARGS, "start_transaction(options=None)"},
   {"commit", (PyCFunction) Session_commit, METH_O, "commit(callback) -> Op"},
   {"abort", (PyCFunction) Session_abort, METH_O, "abort(callback) -> Op"},
   {NULL, NULL, 0, NULL},
};

static PyGetSetDef Session_getset[] = {
   {"id", (getter) Session_get_id, NULL, "the number operations name the session by", NULL},
   {"in_transaction", (getter) Session_get_in_transaction, NULL, "a transaction is in progress", NULL},
   {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Session_slots[] = {
   {Py_tp_dealloc, Session_dealloc}, {Py_tp_traverse, Session_traverse}, {Py_tp_methods, Session_methods},
   {Py_tp_getset, Session_getset},   {Py_tp_doc, "a libmgconn session (Connection.start_session)"},
   {0, NULL},
};

PyType_Spec ext_session_spec = {"mgconn._mgconn.Session", sizeof (SessionObject), 0,
                                Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, Session_slots};
