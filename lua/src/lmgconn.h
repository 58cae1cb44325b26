/*
 * lmgconn.h: the shared parts of the Lua module `mgconn.core` (the C half of `require "mgconn"`).
 *
 * Threads: everything runs on the thread that owns the lua_State. libmgconn calls back only from
 * mgconn_runtime_dispatch(), which this module calls from mgconn.poll() and blocking waits, so
 * callbacks run Lua directly; every call into Lua is a protected call with a traceback.
 *
 * Lifetimes: each lua_State has its own runtime (a userdata in the registry, freed by __gc when the
 * state closes; Lua runs finalizers in reverse order of creation, so it goes after the handles made
 * from it). Handles are boxed pointers, one locked metatable per type, and keep their parent alive
 * through their uservalue.
 */
#ifndef LMGCONN_H
#define LMGCONN_H

#include <bson/bson.h>

#include "compat.h" /* lua.h and lauxlib.h, with the 5.4 API on 5.1-5.3 and LuaJIT */

#include "mgconn.h"

#define LM_RUNTIME "mgconn.Runtime"
#define LM_CONNECTION "mgconn.Connection"
#define LM_COLLECTION "mgconn.Collection"
#define LM_SCHEMA "mgconn.Schema"
#define LM_MODEL "mgconn.Model"
#define LM_OP "mgconn.Op"
#define LM_CURSOR "mgconn.Cursor"
/* typed values: plain tables with these metatables (created by mgconn.lua, looked up here) */
#define LM_ARRAY "mgconn.array"
#define LM_ORDERED "mgconn.ordered"
#define LM_NULL "mgconn.null"

/* The state's runtime; its host data (mgconn_runtime_host_data) points back at this. */
typedef struct {
   mgconn_runtime *rt;
   lua_State *current; /* the thread dispatching right now */
} lm_rt;

typedef struct {
   void *handle;     /* the libmgconn handle, or NULL once freed */
   int owned;        /* 0 for a handle borrowed from its parent (a model's collection) */
   int dispatcher;   /* it set the handle's dispatcher (onEvent / onIndex): its __gc clears it. Other
                        boxes of the same handle (a cached use_db child, a model asked for again)
                        leave it alone */
} lm_box;

/* the runtime of this lua_State */
mgconn_runtime *lm_runtime (lua_State *L);

/* codec.c */
/* Encodes the value at `idx` (a table) into `out`. On failure returns 0 and pushes an error message
 * naming the key path ("doc.items[3].owner"). */
int lm_encode (lua_State *L, int idx, bson_t *out, const char *root, int as_array);
/* Pushes a BSON document (or array) as a table. */
void lm_decode (lua_State *L, const uint8_t *data, size_t len, int as_array);
/* Pushes an error table {category, message, code, codeName, labels, reason} with its metatable. */
void lm_push_error (lua_State *L, const mgconn_error *e);

/* handles.c */
void lm_open_handles (lua_State *L);
/* For the other types' files (session.c): a boxed handle with metatable `mt` that keeps the value
 * at `parent_idx` (0: none) alive; the handle of the box at `idx`, raising when it was freed; an
 * optional document argument (nil: NULL data), raising on a bad one; the last error, raised. */
lm_box *lm_new_box (lua_State *L, void *handle, const char *mt, int parent_idx);
void *lm_check (lua_State *L, int idx, const char *mt);
void lm_opt_doc (lua_State *L, int idx, bson_t *out, const char *what, const uint8_t **data, size_t *len);
int lm_raise_last (lua_State *L);
/* A new op userdata on the stack, completed by the function at `cb_idx` (0: none), for the
 * `mgconn_op **` and userdata (lm_op_done's) of a libmgconn call; then lm_started with its result,
 * which raises when the call refused. */
mgconn_op **lm_new_op (lua_State *L, int cb_idx, void **userdata);
void lm_started (lua_State *L, int rc);
/* Registers a handle type: its methods, and its finalizer (also its __close). */
void lm_new_type (lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc);

/* listeners.c: the methods native:listen / unlisten / listening of connections and models */
int lm_conn_listen (lua_State *L);
int lm_conn_unlisten (lua_State *L);
int lm_conn_listening (lua_State *L);
int lm_model_listen (lua_State *L);
int lm_model_unlisten (lua_State *L);
int lm_model_listening (lua_State *L);

/* session.c */
#define LM_SESSION "mgconn.Session"
int lm_conn_start_session (lua_State *L);
void lm_open_session (lua_State *L);
/* An op userdata for a started op; `cb_idx` (0 for none) is a function called with the op. */
void lm_push_op (lua_State *L, mgconn_op *op, int cb_ref);
void lm_op_done (mgconn_op *op, void *userdata);
/* Calls the function on the stack top with nargs arguments, protected, with a traceback; errors go
 * to the handler set with mgconn.onError (default: stderr). Pops the function and arguments. */
void lm_pcall (lua_State *L, int nargs);

#endif
