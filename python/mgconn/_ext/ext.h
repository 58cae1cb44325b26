/*
 * ext.h: the shared parts of the `mgconn._mgconn` extension module.
 *
 * The extension is thin: handle types over libmgconn's C API and BSON conversion in C. Everything a
 * user touches (futures, events, models, cursors, results, errors) is Python, in the package.
 *
 * Threads: every function here runs on a Python thread holding the GIL. libmgconn calls back only
 * from mgconn_runtime_dispatch(), which these functions call with the GIL held, so callbacks can
 * call Python directly. The GIL is released only around the poll() of a blocking wait.
 *
 * State: no C globals. Types and the Python classes the codec needs (ObjectId, ..., the error
 * factory) live in the module state, found through the defining class (PEP 489, PEP 573).
 */
#ifndef MGCONN_EXT_H
#define MGCONN_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "compat.h" /* what 3.9 and 3.10 lack */
#include <bson/bson.h>

#include "mgconn.h"

#define EXT_KEY_CACHE_SIZE 2048 /* slots: sets of EXT_KEY_CACHE_WAYS */
#define EXT_KEY_CACHE_WAYS 2

enum { /* ext_state.attr_names */
   EXT_ATTR_BINARY, EXT_ATTR_BID, EXT_ATTR_SUBTYPE, EXT_ATTR_DATA, EXT_ATTR_PATTERN, EXT_ATTR_FLAGS,
   EXT_ATTR_TIME, EXT_ATTR_INC, EXT_ATTR_BYTES, EXT_ATTR_COUNT
};
#define EXT_ATTR_NAMES {"binary", "bid", "subtype", "data", "pattern", "flags", "time", "inc", "bytes"}
#define EXT_KEY_CACHE_MAX_LEN 64 /* longer keys are rare and not worth a slot */

typedef struct {
   PyTypeObject *runtime_type;
   PyTypeObject *connection_type;
   PyTypeObject *collection_type;
   PyTypeObject *schema_type;
   PyTypeObject *model_type;
   PyTypeObject *op_type;
   PyTypeObject *cursor_type;
   PyTypeObject *session_type;
   /* Python classes from mgconn.types and mgconn.errors, set by _mgconn._setup() */
   PyObject *ObjectId, *Int64, *Decimal128, *Binary, *Regex, *Timestamp, *MinKey, *MaxKey;
   PyObject *uuid_UUID, *datetime_datetime, *utc;
   PyObject *fromtimestamp; /* datetime.fromtimestamp, looked up once */
   void *datetime_capi;     /* PyDateTime_CAPI from its capsule: dates from and to fields, in C */
   PyObject *make_error; /* (category, message, code, code_name, labels, reason) -> exception */
   /* The attribute names the encoder reads from mgconn.types values, interned by _setup(): a name
    * made from a C string on every read was a tenth of encoding the "full" document (perf). */
   PyObject *attr_names[EXT_ATTR_COUNT];
   PyObject *int64_args; /* a 1-tuple reused to make Int64 values (codec.c, new_int64); item NULL between */
   /* Decoded keys, reused: the documents of one collection repeat the same keys, and a reused str
    * keeps its cached hash, which saves decoding, allocating and hashing each key again (callgrind:
    * those were a fifth of decoding a flat document). Two-way set-associative (a document's 150 keys
    * no longer evict each other), sets chosen by a hash of the key's bytes, least recently used
    * replaced; touched only with the GIL held. */
   PyObject *key_cache[EXT_KEY_CACHE_SIZE];
   /* Per set of the key cache: how many keys the last document beginning with a key of that set
    * had, so that the next one's dict is made that size at once (codec.c, new_dict). */
   uint16_t size_hints[EXT_KEY_CACHE_SIZE / EXT_KEY_CACHE_WAYS];
} ext_state;

extern PyModuleDef ext_module_def;

ext_state *ext_state_of_type (PyTypeObject *type);
ext_state *ext_state_of_module (PyObject *module);

/* ---- objects ---- */
typedef struct {
   PyObject_HEAD
   mgconn_runtime *rt;
   PyObject *log_handler; /* or NULL */
   unsigned forks;        /* ext_forks when it was made: another value means it is the parent's */
   long pid;              /* the process that made it, for the message */
   Py_ssize_t pending;    /* started ops whose completion has not run yet (the exit flush waits on it) */
} RuntimeObject;

typedef struct {
   PyObject_HEAD
   mgconn_connection *conn;
   RuntimeObject *runtime;
   PyObject *on_command; /* callable (event dict), or NULL: command monitoring */
} ConnectionObject;

typedef struct {
   PyObject_HEAD
   mgconn_collection *coll;   /* owned, or borrowed from `model` */
   PyObject *owner;           /* the ConnectionObject or ModelObject that keeps it valid */
   RuntimeObject *runtime;
} CollectionObject;

typedef struct {
   PyObject_HEAD
   mgconn_schema *schema;
} SchemaObject;

typedef struct {
   PyObject_HEAD
   mgconn_model *model;
   ConnectionObject *connection;
} ModelObject;

typedef struct {
   PyObject_HEAD
   mgconn_op *op;
   RuntimeObject *runtime;
   PyObject *callback; /* called with the op when it finishes, or NULL */
   int cursor_kind;    /* 1 for find/aggregate: mgconn_op_cursor may be taken */
   int counted;        /* counted in runtime->pending until its completion runs */
} OpObject;

typedef struct {
   PyObject_HEAD
   mgconn_cursor *cursor;
   RuntimeObject *runtime;
} CursorObject;

typedef struct {
   PyObject_HEAD
   mgconn_session *session;
   ConnectionObject *connection; /* keeps the connection's handle alive while the session lives */
} SessionObject;

/* Connection.start_session(options=None) -> Session (session.c). */
PyObject *ext_session_start (ConnectionObject *conn, PyObject *args);

/* ---- the codec (codec.c) ---- */
/* Python mapping -> BSON document. On failure: a Python TypeError/ValueError/OverflowError naming
 * the key path ("doc.items[3].owner"), and -1. `root` names the argument in paths ("doc"). */
int ext_encode_document (ext_state *st, PyObject *obj, bson_t *out, const char *root);
/* A list or tuple -> a BSON array document. */
int ext_encode_array (ext_state *st, PyObject *obj, bson_t *out, const char *root);
/* BSON document -> dict (or list when as_array). */
PyObject *ext_decode_document (ext_state *st, const uint8_t *data, size_t len, int as_array);
/* The same with datetimes naive (in UTC), for tz_aware=False. */
PyObject *ext_decode_document_naive (ext_state *st, const uint8_t *data, size_t len);
/* The Python exception object for an mgconn_error (mgconn.errors via make_error). */
PyObject *ext_error_object (ext_state *st, const mgconn_error *e);
/* Raises the error of the last failed mgconn call on this thread. Returns NULL. */
PyObject *ext_raise_last (ext_state *st);

/* ---- ops (module.c) ---- */
/* Wraps a started op; `callback` (may be NULL or None) is called with the Op when it finishes. */
PyObject *ext_op_new (ext_state *st, RuntimeObject *rt, mgconn_op *op, PyObject *callback, int cursor_kind);
/* The trampoline every op is started with: userdata is the OpObject, held until it finishes. */
void ext_op_done (mgconn_op *op, void *userdata);
/* Reports an exception raised by a Python callback to sys.unraisablehook; dispatch goes on. */
void ext_report_callback_error (const char *where, PyObject *callback);
/* A raising event listener: "Exception ignored in an mgconn 'open' listener". */
void ext_report_listener_error (const char *event, PyObject *callback);

/* ---- listeners (listeners.c): each Python callback one core registration ---- */
/* TypeError for a callback that is not callable, ValueError for an unknown event; -1 then. */
int ext_connection_listen (ext_state *st, mgconn_connection *conn, const char *event, PyObject *callback, bool once);
int ext_model_listen (ext_state *st, mgconn_model *model, PyObject *callback, bool once);
/* Removes the first registration of `callback` for `event` (nothing when there is none). */
void ext_connection_unlisten (mgconn_connection *conn, const char *event, PyObject *callback);
void ext_model_unlisten (mgconn_model *model, PyObject *callback);
/* tp_clear: every registration this module made. */
void ext_connection_unlisten_all (mgconn_connection *conn);
void ext_model_unlisten_all (mgconn_model *model);
/* [(event, callback, once)], in order: a fork's child registers them again on the remade handle. */
PyObject *ext_connection_listeners (mgconn_connection *conn);
PyObject *ext_model_listeners (mgconn_model *model);
/* tp_traverse: visits each registered callback. */
int ext_connection_traverse_listeners (mgconn_connection *conn, visitproc visit, void *arg);
int ext_model_traverse_listeners (mgconn_model *model, visitproc visit, void *arg);

/* ---- fork (module.c) ----
 * A runtime made before os.fork() is the parent's in the child: its worker threads do not exist there
 * and a lock one of them held stays locked, so calling into it could hang. Every entry point that
 * would reach such a runtime refuses at once (ext_runtime_check), and deallocation leaks its handles
 * instead of freeing them (ext_runtime_foreign). The Python layer makes a new runtime in the child. */
int ext_runtime_foreign (const RuntimeObject *rt);
/* 0, or -1 with a RuntimeError that says what happened and what to do. */
int ext_runtime_check (const RuntimeObject *rt);

/* ---- type specs (handles.c, module.c) ---- */
extern PyType_Spec ext_runtime_spec, ext_connection_spec, ext_collection_spec, ext_schema_spec, ext_model_spec,
   ext_op_spec, ext_cursor_spec, ext_session_spec;

#endif
