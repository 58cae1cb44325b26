/*
 * handles.c: the handle types of `mgconn.core` and the runtime of each lua_State.
 *
 * Callbacks (op completions, events, log lines) run inside mgconn_runtime_dispatch(), which only
 * core.poll() and op:wait() call. They run on the Lua thread that called them (`current`): a
 * coroutine calling poll is the running thread, the only one Lua lets C call into at that moment.
 */
#include "lmgconn.h"

#include <limits.h>
#include <poll.h>
#include <string.h>
#include <time.h>

static lm_rt *
rt_of (lua_State *L)
{
   lm_rt *r;
   lua_getfield (L, LUA_REGISTRYINDEX, "mgconn.runtime_instance");
   r = lua_touserdata (L, -1);
   lua_pop (L, 1);
   return r;
}

mgconn_runtime *
lm_runtime (lua_State *L)
{
   return rt_of (L)->rt;
}

static int
traceback (lua_State *L)
{
   luaL_traceback (L, L, lua_tostring (L, 1), 1);
   return 1;
}

void
lm_pcall (lua_State *L, int nargs)
{
   int base = lua_gettop (L) - nargs;
   lua_pushcfunction (L, traceback);
   lua_insert (L, base);
   if (lua_pcall (L, nargs, 0, base) != LUA_OK) {
      /* mgconn.onError's handler, or stderr; dispatch goes on either way */
      lua_getfield (L, LUA_REGISTRYINDEX, "mgconn.on_error");
      if (lua_isfunction (L, -1)) {
         lua_pushvalue (L, -2);
         if (lua_pcall (L, 1, 0, 0) != LUA_OK) {
            fprintf (stderr, "mgconn: error in the onError handler: %s\n", lua_tostring (L, -1));
            lua_pop (L, 1);
         }
      } else {
         fprintf (stderr, "mgconn: error in a callback: %s\n", lua_tostring (L, -2));
         lua_pop (L, 1);
      }
      lua_pop (L, 1);
   }
   lua_remove (L, base);
}

static int
dispatch_on (lua_State *L, int max)
{
   lm_rt *r = rt_of (L);
   lua_State *outer = r->current;
   int n;
   r->current = L;
   n = mgconn_runtime_dispatch (r->rt, max);
   r->current = outer;
   return n;
}

/* ---- boxes ---- */

static lm_box *
new_box (lua_State *L, void *handle, const char *mt, int parent_idx)
{
   lm_box *b;
   parent_idx = parent_idx ? lua_absindex (L, parent_idx) : 0;
   b = lua_newuserdatauv (L, sizeof *b, 1);
   b->handle = handle;
   b->owned = 1;
   b->dispatcher = 0;
   luaL_setmetatable (L, mt);
   if (parent_idx) { /* the child keeps its parent alive */
      lua_pushvalue (L, parent_idx);
      lua_setiuservalue (L, -2, 1);
   }
   return b;
}

static void *
check (lua_State *L, int idx, const char *mt)
{
   lm_box *b = luaL_checkudata (L, idx, mt);
   if (!b->handle) {
      luaL_argerror (L, idx, "the object was closed");
   }
   return b->handle;
}

static void
opt_doc (lua_State *L, int idx, bson_t *out, const char *what, const uint8_t **data, size_t *len)
{
   bson_init (out);
   *data = NULL;
   *len = 0;
   if (lua_isnoneornil (L, idx)) {
      return;
   }
   if (!lm_encode (L, idx, out, what, 0)) {
      bson_destroy (out);
      lua_error (L); /* options are the programmer's: misuse raises */
   }
   *data = bson_get_data (out);
   *len = out->len;
}

static int
raise_last (lua_State *L)
{
   const mgconn_error *e = mgconn_last_error ();
   lm_push_error (L, e);
   return lua_error (L);
}

lm_box *
lm_new_box (lua_State *L, void *handle, const char *mt, int parent_idx)
{
   return new_box (L, handle, mt, parent_idx);
}

void *
lm_check (lua_State *L, int idx, const char *mt)
{
   return check (L, idx, mt);
}

void
lm_opt_doc (lua_State *L, int idx, bson_t *out, const char *what, const uint8_t **data, size_t *len)
{
   opt_doc (L, idx, out, what, data, len);
}

int
lm_raise_last (lua_State *L)
{
   return raise_last (L);
}

/* ---- ops ---- */

typedef struct {
   mgconn_op *op;
   int cb_ref;   /* the completion function, called with the op */
   int self_ref; /* keeps the op userdata alive until it finishes */
   int cursor_kind;
   lm_rt *rt;
} lm_op;

void
lm_op_done (mgconn_op *op, void *userdata)
{
   lm_op *o = userdata;
   lua_State *L = o->rt->current;
   (void) op;
   if (!L) {
      return;
   }
   if (o->cb_ref != LUA_NOREF) {
      lua_rawgeti (L, LUA_REGISTRYINDEX, o->cb_ref);
      lua_rawgeti (L, LUA_REGISTRYINDEX, o->self_ref);
      luaL_unref (L, LUA_REGISTRYINDEX, o->cb_ref);
      o->cb_ref = LUA_NOREF;
      lm_pcall (L, 1);
   }
   luaL_unref (L, LUA_REGISTRYINDEX, o->self_ref);
   o->self_ref = LUA_NOREF;
}

/* Pushes a new op userdata; returns it for starting. `cb_idx` (0: none) is the completion function. */
static lm_op *
new_op (lua_State *L, int cb_idx, int cursor_kind)
{
   lm_op *o;
   cb_idx = cb_idx ? lua_absindex (L, cb_idx) : 0;
   o = lua_newuserdatauv (L, sizeof *o, 0);
   memset (o, 0, sizeof *o);
   o->rt = rt_of (L);
   o->cursor_kind = cursor_kind;
   luaL_setmetatable (L, LM_OP);
   if (cb_idx && lua_isfunction (L, cb_idx)) {
      lua_pushvalue (L, cb_idx);
      o->cb_ref = luaL_ref (L, LUA_REGISTRYINDEX);
   } else {
      o->cb_ref = LUA_NOREF;
   }
   lua_pushvalue (L, -1);
   o->self_ref = luaL_ref (L, LUA_REGISTRYINDEX);
   return o;
}

static void
started (lua_State *L, lm_op *o, int rc)
{
   if (rc != 0) { /* bad input: nothing started */
      luaL_unref (L, LUA_REGISTRYINDEX, o->self_ref);
      luaL_unref (L, LUA_REGISTRYINDEX, o->cb_ref);
      o->self_ref = o->cb_ref = LUA_NOREF;
      raise_last (L);
   }
}

mgconn_op **
lm_new_op (lua_State *L, int cb_idx, void **userdata)
{
   lm_op *o = new_op (L, cb_idx, 0);
   *userdata = o;
   return &o->op;
}

void
lm_started (lua_State *L, int rc)
{
   started (L, luaL_checkudata (L, -1, LM_OP), rc);
}

static int
op_gc (lua_State *L)
{
   lm_op *o = luaL_checkudata (L, 1, LM_OP);
   if (o->op) {
      mgconn_op_free (o->op);
      o->op = NULL;
   }
   return 0;
}

static int
op_status (lua_State *L)
{
   lm_op *o = luaL_checkudata (L, 1, LM_OP);
   lua_pushinteger (L, o->op ? mgconn_op_status (o->op) : 2);
   return 1;
}

static int
op_reply (lua_State *L)
{
   lm_op *o = luaL_checkudata (L, 1, LM_OP);
   const uint8_t *data;
   size_t len;
   mgconn_op_reply (o->op, &data, &len);
   lm_decode (L, data, len, 0);
   return 1;
}

static int
op_error (lua_State *L)
{
   lm_op *o = luaL_checkudata (L, 1, LM_OP);
   const mgconn_error *e = o->op ? mgconn_op_error (o->op) : NULL;
   if (!e) {
      lua_pushnil (L);
   } else {
      lm_push_error (L, e);
   }
   return 1;
}

static int
op_cancel (lua_State *L)
{
   lm_op *o = luaL_checkudata (L, 1, LM_OP);
   lua_pushboolean (L, o->op && mgconn_op_cancel (o->op) == 0);
   return 1;
}

/* op:wait(timeout_s) blocks, dispatching meanwhile; returns the status. */
static int
op_wait (lua_State *L)
{
   lm_op *o = luaL_checkudata (L, 1, LM_OP);
   double timeout = luaL_optnumber (L, 2, -1);
   struct timespec t0, now;
   clock_gettime (CLOCK_MONOTONIC, &t0);
   while (mgconn_op_status (o->op) == MGCONN_OP_PENDING) {
      struct pollfd p = {mgconn_runtime_fd (o->rt->rt), POLLIN, 0};
      double left;
      dispatch_on (L, 0);
      if (mgconn_op_status (o->op) != MGCONN_OP_PENDING) {
         break;
      }
      clock_gettime (CLOCK_MONOTONIC, &now);
      left = timeout < 0 ? -1 : timeout * 1000 - ((now.tv_sec - t0.tv_sec) * 1e3 + (now.tv_nsec - t0.tv_nsec) / 1e6);
      if (timeout >= 0 && left <= 0) {
         break;
      }
      /* until the fd says there is work (the completion makes it readable) or the deadline: one
       * sleep, not one per slice */
      poll (&p, 1, timeout < 0 ? -1 : left >= INT_MAX ? INT_MAX : (int) left + 1);
   }
   lua_pushinteger (L, mgconn_op_status (o->op));
   return 1;
}

static int
op_cursor (lua_State *L)
{
   lm_op *o = luaL_checkudata (L, 1, LM_OP);
   mgconn_cursor *c = NULL;
   if (!o->cursor_kind || mgconn_op_cursor (&c, o->op) != 0) {
      lua_pushnil (L);
      return 1;
   }
   new_box (L, c, LM_CURSOR, 0);
   return 1;
}

/* ---- cursors ---- */

static int
cursor_gc (lua_State *L)
{
   lm_box *b = luaL_checkudata (L, 1, LM_CURSOR);
   if (b->handle) {
      mgconn_cursor_free (b->handle);
      b->handle = NULL;
   }
   return 0;
}

static int
cursor_next (lua_State *L)
{
   mgconn_cursor *c = check (L, 1, LM_CURSOR);
   lm_op *o = new_op (L, 2, 0);
   started (L, o, mgconn_cursor_next (&o->op, c, lm_op_done, o));
   return 1;
}

static int
cursor_done (lua_State *L)
{
   lm_box *b = luaL_checkudata (L, 1, LM_CURSOR);
   lua_pushboolean (L, !b->handle || mgconn_cursor_done (b->handle));
   return 1;
}

/* ---- connections ---- */

static void
push_connection (lua_State *L, mgconn_connection *conn, int parent_idx)
{
   new_box (L, conn, LM_CONNECTION, parent_idx);
}

static int
core_connection (lua_State *L)
{
   const char *uri = luaL_optstring (L, 1, NULL);
   bson_t opts;
   const uint8_t *data;
   size_t len;
   mgconn_connection *conn = NULL;
   int rc;
   opt_doc (L, 2, &opts, "options", &data, &len);
   rc = mgconn_connection_new (&conn, lm_runtime (L), uri, data, len, NULL);
   bson_destroy (&opts);
   if (rc != 0) {
      return raise_last (L);
   }
   push_connection (L, conn, 0);
   return 1;
}

static int
conn_gc (lua_State *L)
{
   lm_box *b = luaL_checkudata (L, 1, LM_CONNECTION);
   if (b->handle) {
      if (b->dispatcher) {
         lua_getfield (L, LUA_REGISTRYINDEX, "mgconn.listeners");
         lua_pushnil (L);
         lua_rawsetp (L, -2, b->handle);
         lua_pop (L, 1);
      }
      if (lua_getfield (L, LUA_REGISTRYINDEX, "mgconn.command_listeners") == LUA_TTABLE) {
         lua_pushnil (L);
         lua_rawsetp (L, -2, b->handle);
      }
      lua_pop (L, 1);
      mgconn_connection_free (b->handle); /* no event reaches Lua for it after this */
      b->handle = NULL;
   }
   return 0;
}

static int
conn_on_event (lua_State *L)
{
   mgconn_connection *c = check (L, 1, LM_CONNECTION);
   luaL_checktype (L, 2, LUA_TFUNCTION);
   lua_getfield (L, LUA_REGISTRYINDEX, "mgconn.listeners");
   lua_pushvalue (L, 2);
   lua_rawsetp (L, -2, c);
   ((lm_box *) lua_touserdata (L, 1))->dispatcher = 1;
   return 0;
}

/* Command monitoring: the event's table to the function in "mgconn.command_listeners" (by handle). */
static void
command_trampoline (mgconn_connection *conn, const uint8_t *event, size_t len, void *userdata)
{
   lm_rt *r = userdata;
   lua_State *L = r->current;
   if (!L) {
      return;
   }
   lua_getfield (L, LUA_REGISTRYINDEX, "mgconn.command_listeners");
   if (!lua_istable (L, -1)) {
      lua_pop (L, 1);
      return;
   }
   lua_rawgetp (L, -1, conn);
   lua_remove (L, -2);
   if (!lua_isfunction (L, -1)) {
      lua_pop (L, 1);
      return;
   }
   lm_decode (L, event, len, 0);
   lm_pcall (L, 1);
}

/* conn:onCommand(fn or nil): fn(event) for every command event */
static int
conn_on_command (lua_State *L)
{
   mgconn_connection *c = check (L, 1, LM_CONNECTION);
   int on = !lua_isnoneornil (L, 2);
   if (on) {
      luaL_checktype (L, 2, LUA_TFUNCTION);
   }
   if (mgconn_connection_on_command (c, on ? command_trampoline : NULL, rt_of (L)) != 0) {
      return raise_last (L);
   }
   if (lua_getfield (L, LUA_REGISTRYINDEX, "mgconn.command_listeners") != LUA_TTABLE) {
      lua_pop (L, 1);
      lua_newtable (L);
      lua_pushvalue (L, -1);
      lua_setfield (L, LUA_REGISTRYINDEX, "mgconn.command_listeners");
   }
   lua_pushvalue (L, 2);
   lua_rawsetp (L, -2, c);
   return 0;
}

static int
conn_info (lua_State *L)
{
   mgconn_connection *c = check (L, 1, LM_CONNECTION);
   lua_pushinteger (L, mgconn_connection_ready_state (c));
   lua_pushstring (L, mgconn_connection_name (c));
   lua_pushstring (L, mgconn_connection_host (c));
   lua_pushinteger (L, mgconn_connection_port (c));
   lua_pushinteger (L, mgconn_connection_id (c));
   return 5;
}

static int
conn_open (lua_State *L)
{
   mgconn_connection *c = check (L, 1, LM_CONNECTION);
   const char *uri = luaL_checkstring (L, 2);
   bson_t opts;
   const uint8_t *data;
   size_t len;
   int rc;
   opt_doc (L, 3, &opts, "options", &data, &len);
   rc = mgconn_connection_open (c, uri, data, len, NULL);
   bson_destroy (&opts);
   if (rc != 0) {
      return raise_last (L);
   }
   return 0;
}

static int
conn_when_open (lua_State *L)
{
   mgconn_connection *c = check (L, 1, LM_CONNECTION);
   lm_op *o = new_op (L, 2, 0);
   started (L, o, mgconn_connection_when_open (&o->op, c, lm_op_done, o));
   return 1;
}

static int
conn_close (lua_State *L)
{
   mgconn_connection *c = check (L, 1, LM_CONNECTION);
   int force = lua_toboolean (L, 2);
   lm_op *o = new_op (L, 3, 0);
   started (L, o, mgconn_connection_close (&o->op, c, force, lm_op_done, o));
   return 1;
}

static int
conn_run_command (lua_State *L)
{
   mgconn_connection *c = check (L, 1, LM_CONNECTION);
   bson_t cmd = BSON_INITIALIZER;
   lm_op *o;
   int rc;
   if (!lm_encode (L, 2, &cmd, "command", 0)) {
      bson_destroy (&cmd);
      return lua_error (L);
   }
   o = new_op (L, 4, 0);
   rc = mgconn_run_command (&o->op, c, luaL_optstring (L, 3, NULL), bson_get_data (&cmd), cmd.len, lm_op_done, o);
   bson_destroy (&cmd);
   started (L, o, rc);
   return 1;
}

static int
conn_create_collection (lua_State *L)
{
   mgconn_connection *c = check (L, 1, LM_CONNECTION);
   const char *name = luaL_checkstring (L, 2);
   bson_t opts;
   const uint8_t *data;
   size_t len;
   lm_op *o;
   int rc;
   opt_doc (L, 3, &opts, "options", &data, &len);
   o = new_op (L, 4, 0);
   rc = mgconn_connection_create_collection (&o->op, c, name, data, len, lm_op_done, o);
   bson_destroy (&opts);
   started (L, o, rc);
   return 1;
}

static int
conn_drop_database (lua_State *L)
{
   mgconn_connection *c = check (L, 1, LM_CONNECTION);
   lm_op *o = new_op (L, 2, 0);
   started (L, o, mgconn_connection_drop_database (&o->op, c, lm_op_done, o));
   return 1;
}

/* conn:list("collections" | "databases", filter, options, done) -> op (a database listing takes
 * its filter among the options) */
static int
conn_list (lua_State *L)
{
   mgconn_connection *c = check (L, 1, LM_CONNECTION);
   int databases = strcmp (luaL_checkstring (L, 2), "databases") == 0;
   bson_t filter, opts;
   const uint8_t *fd, *od;
   size_t fl, ol;
   lm_op *o;
   int rc;
   opt_doc (L, 3, &filter, "filter", &fd, &fl);
   opt_doc (L, 4, &opts, "options", &od, &ol);
   o = new_op (L, 5, 0);
   rc = databases ? mgconn_connection_list_databases (&o->op, c, od, ol, lm_op_done, o)
                  : mgconn_connection_list_collections (&o->op, c, fd, fl, od, ol, lm_op_done, o);
   bson_destroy (&filter);
   bson_destroy (&opts);
   started (L, o, rc);
   return 1;
}

/* conn:watch(pipeline, options, done) -> op (the database's change stream), or nil, message when a
 * value cannot be converted (as coll:call) */
static int
conn_watch (lua_State *L)
{
   mgconn_connection *c = check (L, 1, LM_CONNECTION);
   bson_t pipeline = BSON_INITIALIZER, opts = BSON_INITIALIZER;
   bool has_p = !lua_isnil (L, 2), has_o = !lua_isnil (L, 3);
   lm_op *o;
   int rc;
   if ((has_p && !lm_encode (L, 2, &pipeline, "pipeline", 1)) || (has_o && !lm_encode (L, 3, &opts, "options", 0))) {
      bson_destroy (&pipeline);
      bson_destroy (&opts);
      lua_pushnil (L);
      lua_insert (L, -2);
      return 2; /* nil, message */
   }
   o = new_op (L, 4, 1);
   rc = mgconn_connection_watch (&o->op, c, has_p ? bson_get_data (&pipeline) : NULL, pipeline.len,
                                 has_o ? bson_get_data (&opts) : NULL, opts.len, lm_op_done, o);
   bson_destroy (&pipeline);
   bson_destroy (&opts);
   started (L, o, rc);
   return 1;
}

static int
conn_collection (lua_State *L)
{
   mgconn_connection *c = check (L, 1, LM_CONNECTION);
   mgconn_collection *coll = NULL;
   if (mgconn_connection_collection (&coll, c, luaL_checkstring (L, 2), NULL) != 0) {
      return raise_last (L);
   }
   new_box (L, coll, LM_COLLECTION, 1);
   return 1;
}

static int
conn_use_db (lua_State *L)
{
   mgconn_connection *c = check (L, 1, LM_CONNECTION);
   mgconn_connection *child = NULL;
   if (mgconn_connection_use_db (&child, c, luaL_checkstring (L, 2), lua_toboolean (L, 3), NULL) != 0) {
      return raise_last (L);
   }
   push_connection (L, child, 1);
   return 1;
}

static int
conn_model (lua_State *L)
{
   mgconn_connection *c = check (L, 1, LM_CONNECTION);
   const char *name = luaL_checkstring (L, 2);
   mgconn_schema *schema = lua_isnoneornil (L, 3) ? NULL : check (L, 3, LM_SCHEMA);
   mgconn_model *m = NULL;
   if (mgconn_connection_model (&m, c, name, schema, luaL_optstring (L, 4, NULL), NULL) != 0) {
      return raise_last (L);
   }
   new_box (L, m, LM_MODEL, 1);
   return 1;
}

static int
conn_delete_model (lua_State *L)
{
   if (mgconn_connection_delete_model (check (L, 1, LM_CONNECTION), luaL_checkstring (L, 2)) != 0) {
      return raise_last (L);
   }
   return 0;
}

static int
conn_model_names (lua_State *L)
{
   mgconn_connection *c = check (L, 1, LM_CONNECTION);
   lua_newtable (L);
   for (int32_t i = 0; i < mgconn_connection_model_count (c); i++) {
      lua_pushstring (L, mgconn_connection_model_name (c, i));
      lua_rawseti (L, -2, i + 1);
   }
   return 1;
}

static int
conn_stats (lua_State *L)
{
   uint8_t buf[256];
   int len = mgconn_connection_stats (check (L, 1, LM_CONNECTION), buf, sizeof buf);
   lm_decode (L, buf, (size_t) (len > 0 ? len : 0), 0);
   return 1;
}

/* ---- collections, schemas, models ---- */

static int
coll_gc (lua_State *L)
{
   lm_box *b = luaL_checkudata (L, 1, LM_COLLECTION);
   if (b->handle && b->owned) {
      mgconn_collection_free (b->handle);
   }
   b->handle = NULL;
   return 0;
}

static int
coll_name (lua_State *L)
{
   lua_pushstring (L, mgconn_collection_name (check (L, 1, LM_COLLECTION)));
   return 1;
}

/* coll:call(name, a, b, options, done) -> op, or nil, message when a value cannot be converted (the
 * caller turns that into a failed op: a bad value fails that one operation). */
static int
coll_call (lua_State *L)
{
   mgconn_collection *c = check (L, 1, LM_COLLECTION);
   const char *name = luaL_checkstring (L, 2);
   const char *first, *second;
   int flags = mgconn_operation_flags (name), is_array;
   bson_t a = BSON_INITIALIZER, b = BSON_INITIALIZER, o = BSON_INITIALIZER;
   bool has_a, has_o;
   lm_op *op;
   int rc;
   luaL_argcheck (L, flags >= 0, 2, "no such collection operation");
   first = mgconn_operation_document (name, 1);
   second = mgconn_operation_document (name, 2);
   is_array = (flags & MGCONN_OPERATION_FIRST_IS_ARRAY) != 0;
   has_a = first && !lua_isnil (L, 3);
   has_o = !lua_isnil (L, 5);
   if ((has_a && !lm_encode (L, 3, &a, is_array ? "documents" : second ? "filter" : "doc", is_array)) ||
       (second && !lm_encode (L, 4, &b, second, 0)) || (has_o && !lm_encode (L, 5, &o, "options", 0))) {
      bson_destroy (&a);
      bson_destroy (&b);
      bson_destroy (&o);
      lua_pushnil (L);
      lua_insert (L, -2);
      return 2; /* nil, message */
   }
   op = new_op (L, 6, (flags & MGCONN_OPERATION_RETURNS_CURSOR) != 0);
   rc = mgconn_collection_call (&op->op, c, name, has_a ? bson_get_data (&a) : NULL, a.len,
                                second ? bson_get_data (&b) : NULL, b.len, has_o ? bson_get_data (&o) : NULL, o.len,
                                lm_op_done, op);
   bson_destroy (&a);
   bson_destroy (&b);
   bson_destroy (&o);
   started (L, op, rc);
   return 1;
}

static int
core_schema (lua_State *L)
{
   bson_t def, opts;
   const uint8_t *dd, *od;
   size_t dl, ol;
   mgconn_schema *s = NULL;
   int rc;
   opt_doc (L, 1, &def, "definition", &dd, &dl);
   opt_doc (L, 2, &opts, "options", &od, &ol);
   rc = mgconn_schema_new (&s, dd, dl, od, ol, NULL);
   bson_destroy (&def);
   bson_destroy (&opts);
   if (rc != 0) {
      return raise_last (L);
   }
   new_box (L, s, LM_SCHEMA, 0);
   return 1;
}

static int
schema_gc (lua_State *L)
{
   lm_box *b = luaL_checkudata (L, 1, LM_SCHEMA);
   if (b->handle) {
      mgconn_schema_free (b->handle);
      b->handle = NULL;
   }
   return 0;
}

static int
schema_index (lua_State *L)
{
   mgconn_schema *s = check (L, 1, LM_SCHEMA);
   bson_t keys = BSON_INITIALIZER, opts;
   const uint8_t *od;
   size_t ol;
   int rc;
   if (!lm_encode (L, 2, &keys, "keys", 0)) {
      bson_destroy (&keys);
      return lua_error (L);
   }
   opt_doc (L, 3, &opts, "options", &od, &ol);
   rc = mgconn_schema_index (s, bson_get_data (&keys), keys.len, od, ol, NULL);
   bson_destroy (&keys);
   bson_destroy (&opts);
   if (rc != 0) {
      return raise_last (L);
   }
   return 0;
}

static int
model_gc (lua_State *L)
{
   lm_box *b = luaL_checkudata (L, 1, LM_MODEL);
   if (b->handle) {
      if (b->dispatcher) {
         lua_getfield (L, LUA_REGISTRYINDEX, "mgconn.listeners");
         lua_pushnil (L);
         lua_rawsetp (L, -2, b->handle);
         lua_pop (L, 1);
      }
      mgconn_model_free (b->handle);
      b->handle = NULL;
   }
   return 0;
}

static int
model_collection (lua_State *L)
{
   mgconn_model *m = check (L, 1, LM_MODEL);
   lm_box *b = new_box (L, mgconn_model_collection (m), LM_COLLECTION, 1);
   b->owned = 0; /* the model's */
   return 1;
}

static int
model_name (lua_State *L)
{
   lua_pushstring (L, mgconn_model_name (check (L, 1, LM_MODEL)));
   return 1;
}

static int
model_init (lua_State *L)
{
   mgconn_model *m = check (L, 1, LM_MODEL);
   lm_op *o = new_op (L, 2, 0);
   started (L, o, mgconn_model_init (&o->op, m, lm_op_done, o));
   return 1;
}

static int
model_sync_indexes (lua_State *L)
{
   mgconn_model *m = check (L, 1, LM_MODEL);
   lm_op *o = new_op (L, 2, 0);
   started (L, o, mgconn_model_sync_indexes (&o->op, m, lm_op_done, o));
   return 1;
}

static int
model_on_index (lua_State *L)
{
   mgconn_model *m = check (L, 1, LM_MODEL);
   luaL_checktype (L, 2, LUA_TFUNCTION);
   lua_getfield (L, LUA_REGISTRYINDEX, "mgconn.listeners");
   lua_pushvalue (L, 2);
   lua_rawsetp (L, -2, m);
   ((lm_box *) lua_touserdata (L, 1))->dispatcher = 1;
   return 0;
}

/* ---- module functions ---- */

static void
log_trampoline (int32_t level, const char *domain, const char *message, void *userdata)
{
   lm_rt *r = userdata;
   lua_State *L = r->current;
   if (!L) {
      return;
   }
   lua_getfield (L, LUA_REGISTRYINDEX, "mgconn.log_handler");
   if (!lua_isfunction (L, -1)) {
      lua_pop (L, 1);
      if (level == MGCONN_LOG_DEBUG && strcmp (domain, "debug") == 0) {
         fprintf (stderr, "%s\n", message); /* already "mgconn: coll.method(...)", as Python prints it */
      } else if (level == MGCONN_LOG_DEBUG) {
         /* the driver's socket warnings in an outage: for a log handler that asks, not for stderr */
      } else {
         fprintf (stderr, "mgconn [%s]: %s\n", domain, message);
      }
      return;
   }
   lua_pushinteger (L, level);
   lua_pushstring (L, domain);
   lua_pushstring (L, message);
   lm_pcall (L, 3);
}

static int
core_poll (lua_State *L)
{
   lua_pushinteger (L, dispatch_on (L, (int) luaL_optinteger (L, 1, 0)));
   return 1;
}

/* core.wait(ms): blocks until poll() has work or `ms` pass, a negative `ms` for no limit (for
 * scripts and tests; a game calls poll() once per frame instead). Returns true when there is work;
 * a signal ends the wait early (false), so that the interpreter's own handler gets to run. */
static int
core_wait (lua_State *L)
{
   struct pollfd p = {mgconn_runtime_fd (lm_runtime (L)), POLLIN, 0};
   lua_Integer ms = luaL_optinteger (L, 1, 0);
   lua_pushboolean (L, poll (&p, 1, ms < 0 ? -1 : ms > INT_MAX ? INT_MAX : (int) ms) > 0);
   return 1;
}

/* core.now(): a monotonic clock in milliseconds, for deadlines. */
static int
core_now (lua_State *L)
{
   struct timespec ts;
   clock_gettime (CLOCK_MONOTONIC, &ts);
   lua_pushnumber (L, (lua_Number) ts.tv_sec * 1e3 + (lua_Number) ts.tv_nsec / 1e6);
   return 1;
}

static int
core_fd (lua_State *L)
{
   lua_pushinteger (L, mgconn_runtime_fd (lm_runtime (L)));
   return 1;
}

static int
core_set (lua_State *L)
{
   bson_t doc = BSON_INITIALIZER;
   if (!lm_encode (L, 1, &doc, "settings", 0)) {
      bson_destroy (&doc);
      return lua_error (L);
   }
   if (mgconn_runtime_set (lm_runtime (L), bson_get_data (&doc), doc.len, NULL) != 0) {
      bson_destroy (&doc);
      return raise_last (L);
   }
   bson_destroy (&doc);
   return 0;
}

static int
core_get (lua_State *L)
{
   int32_t v;
   if (mgconn_runtime_get (lm_runtime (L), luaL_checkstring (L, 1), &v) != 0) {
      return raise_last (L);
   }
   if (v < 0) {
      lua_pushnil (L);
   } else {
      lua_pushinteger (L, v);
   }
   return 1;
}

static int
core_encode (lua_State *L)
{
   bson_t doc = BSON_INITIALIZER;
   if (!lm_encode (L, 1, &doc, "doc", 0)) {
      bson_destroy (&doc);
      lua_pushnil (L);
      lua_insert (L, -2);
      return 2;
   }
   lua_pushlstring (L, (const char *) bson_get_data (&doc), doc.len);
   bson_destroy (&doc);
   return 1;
}

/* core.fromjson(text): a document from (extended) JSON, through libbson's reader. */
static int
core_fromjson (lua_State *L)
{
   size_t len;
   const char *s = luaL_checklstring (L, 1, &len);
   bson_error_t e;
   bson_t *doc = bson_new_from_json ((const uint8_t *) s, (ssize_t) len, &e);
   if (!doc) {
      return luaL_error (L, "invalid JSON: %s", e.message);
   }
   lm_decode (L, bson_get_data (doc), doc->len, 0);
   bson_destroy (doc);
   return 1;
}

static int
core_decode (lua_State *L)
{
   size_t len;
   const char *s = luaL_checklstring (L, 1, &len);
   lm_decode (L, (const uint8_t *) s, len, 0);
   return 1;
}

static int
core_disconnect (lua_State *L)
{
   lm_op *o = new_op (L, 1, 0);
   started (L, o, mgconn_runtime_disconnect (&o->op, lm_runtime (L), lm_op_done, o));
   return 1;
}

static int
core_pluralize (lua_State *L)
{
   char buf[512];
   mgconn_pluralize (luaL_checkstring (L, 1), buf, sizeof buf);
   lua_pushstring (L, buf);
   return 1;
}

/* core.post(fn): fn() runs at a later dispatch, in order with completions and events, and the
 * runtime's fd is readable until it has (for results the Lua layer knows at once). */
typedef struct {
   lm_rt *rt;
   int fn_ref;
} lm_post;

static void
post_run (void *userdata)
{
   lm_post *p = userdata;
   lua_State *L = p->rt->current;
   if (L) {
      lua_rawgeti (L, LUA_REGISTRYINDEX, p->fn_ref);
      luaL_unref (L, LUA_REGISTRYINDEX, p->fn_ref);
      lm_pcall (L, 0);
   }
   bson_free (p);
}

static void
post_drop (void *userdata)
{
   bson_free (userdata); /* the runtime goes with its lua_State, and the reference with the registry */
}

static int
core_post (lua_State *L)
{
   lm_post *p;
   luaL_checktype (L, 1, LUA_TFUNCTION);
   p = bson_malloc0 (sizeof *p);
   p->rt = rt_of (L);
   lua_pushvalue (L, 1);
   p->fn_ref = luaL_ref (L, LUA_REGISTRYINDEX);
   if (mgconn_runtime_post (p->rt->rt, post_run, post_drop, p) != 0) {
      luaL_unref (L, LUA_REGISTRYINDEX, p->fn_ref);
      bson_free (p);
      return raise_last (L);
   }
   return 0;
}

static int
rt_gc (lua_State *L)
{
   lm_rt *r = lua_touserdata (L, 1);
   if (r->rt) {
      mgconn_runtime_free (r->rt);
      r->rt = NULL;
   }
   return 0;
}

/* __gc and __close: free the handle, then clear the metatable, so that an object resurrected by a
 * finalizer can no longer reach its methods. */
static int
finalize (lua_State *L)
{
   lua_CFunction free_fn = lua_tocfunction (L, lua_upvalueindex (1));
   lua_settop (L, 1);
   free_fn (L);
   if (lua_getmetatable (L, 1)) {
      lua_pop (L, 1);
      lua_pushnil (L);
      lua_setmetatable (L, 1);
   }
   return 0;
}

void
lm_new_type (lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc)
{
   luaL_newmetatable (L, name);
   lua_newtable (L);
   luaL_setfuncs (L, methods, 0);
   lua_setfield (L, -2, "__index");
   if (gc) {
      lua_pushcfunction (L, gc);
      lua_pushcclosure (L, finalize, 1);
      lua_setfield (L, -2, "__gc");
      lua_pushcfunction (L, gc); /* <close>: free now, keep the metatable (the variable may be read) */
      lua_setfield (L, -2, "__close");
   }
   lua_pushliteral (L, "locked");
   lua_setfield (L, -2, "__metatable");
   lua_pop (L, 1);
}

void
lm_open_handles (lua_State *L)
{
   static const luaL_Reg op_m[] = {{"status", op_status}, {"reply", op_reply}, {"error", op_error},
                                   {"cancel", op_cancel}, {"wait", op_wait},   {"cursor", op_cursor},
                                   {NULL, NULL}};
   static const luaL_Reg cursor_m[] = {{"next", cursor_next}, {"done", cursor_done}, {"close", cursor_gc}, {NULL, NULL}};
   static const luaL_Reg conn_m[] = {
      {"onEvent", conn_on_event},     {"listen", lm_conn_listen}, {"unlisten", lm_conn_unlisten},
      {"listening", lm_conn_listening}, {"onCommand", conn_on_command}, {"info", conn_info},         {"open", conn_open},
      {"close", conn_close},          {"whenOpen", conn_when_open}, {"runCommand", conn_run_command}, {"createCollection", conn_create_collection},
      {"dropDatabase", conn_drop_database}, {"list", conn_list}, {"collection", conn_collection}, {"useDb", conn_use_db},
      {"startSession", lm_conn_start_session}, {"watch", conn_watch},
      {"model", conn_model},          {"deleteModel", conn_delete_model}, {"modelNames", conn_model_names},
      {"stats", conn_stats},          {"free", conn_gc},           {NULL, NULL}};
   static const luaL_Reg coll_m[] = {{"call", coll_call}, {"name", coll_name}, {NULL, NULL}};
   static const luaL_Reg schema_m[] = {{"index", schema_index}, {NULL, NULL}};
   static const luaL_Reg model_m[] = {{"collection", model_collection}, {"name", model_name}, {"init", model_init},
                                      {"syncIndexes", model_sync_indexes},
                                      {"onIndex", model_on_index}, {"listen", lm_model_listen},
                                      {"unlisten", lm_model_unlisten}, {"listening", lm_model_listening},
                                      {NULL, NULL}};
   lm_rt *r;
   mgconn_error e;

   lm_new_type (L, LM_OP, op_m, op_gc);
   lm_new_type (L, LM_CURSOR, cursor_m, cursor_gc);
   lm_new_type (L, LM_CONNECTION, conn_m, conn_gc);
   lm_new_type (L, LM_COLLECTION, coll_m, coll_gc);
   lm_new_type (L, LM_SCHEMA, schema_m, schema_gc);
   lm_new_type (L, LM_MODEL, model_m, model_gc);
   lm_open_session (L);

   /* Required again in the same state (a test runner that clears package.loaded per file): the
    * state keeps its one runtime and listener table. A second runtime would let the first be
    * collected while handles made from it still live, and free it under them. */
   if (lua_getfield (L, LUA_REGISTRYINDEX, "mgconn.runtime_instance") == LUA_TUSERDATA) {
      lua_pop (L, 1);
      return;
   }
   lua_pop (L, 1);

   lua_newtable (L);
   lua_setfield (L, LUA_REGISTRYINDEX, "mgconn.listeners");

   /* This state's runtime: made first, so Lua finalizes it after every handle made from it. */
   r = lua_newuserdatauv (L, sizeof *r, 0);
   memset (r, 0, sizeof *r);
   lua_newtable (L);
   lua_pushcfunction (L, rt_gc);
   lua_setfield (L, -2, "__gc");
   lua_setmetatable (L, -2);
   lua_setfield (L, LUA_REGISTRYINDEX, "mgconn.runtime_instance");
   {
      bson_t *opts = BCON_NEW ("methodCase", "camel");
      mgconn_error_init (&e);
      if (mgconn_runtime_new (&r->rt, bson_get_data (opts), opts->len, &e) != 0) {
         bson_destroy (opts);
         luaL_error (L, "mgconn: %s", e.message);
      }
      bson_destroy (opts);
   }
   mgconn_runtime_set_host_data (r->rt, r);
   mgconn_runtime_set_log_handler (r->rt, log_trampoline, r);
}

__attribute__ ((visibility ("default"))) int luaopen_mgconn_core (lua_State *L);

__attribute__ ((visibility ("default"))) int
luaopen_mgconn_core (lua_State *L)
{
   static const luaL_Reg fns[] = {
      {"connection", core_connection}, {"schema", core_schema}, {"poll", core_poll}, {"fd", core_fd},
      {"wait", core_wait},             {"now", core_now},       {"fromjson", core_fromjson},
      {"set", core_set},               {"get", core_get},       {"encode", core_encode}, {"decode", core_decode},
      {"disconnect", core_disconnect}, {"pluralize", core_pluralize}, {"post", core_post}, {NULL, NULL}};
   /* the metatables of typed values must exist before the codec looks them up */
   const char *typed[] = {LM_ARRAY, LM_ORDERED, LM_NULL, "mgconn.ObjectId", "mgconn.Int64", "mgconn.Decimal128",
                          "mgconn.Binary", "mgconn.Regex", "mgconn.Timestamp", "mgconn.Date", "mgconn.MinKey",
                          "mgconn.MaxKey", "mgconn.Error"};
   for (size_t i = 0; i < sizeof typed / sizeof typed[0]; i++) {
      luaL_newmetatable (L, typed[i]);
      lua_pop (L, 1);
   }
   /* the singletons null, MinKey, MaxKey */
   lua_newtable (L);
   luaL_setmetatable (L, LM_NULL);
   lua_setfield (L, LUA_REGISTRYINDEX, LM_NULL "_value");
   lua_newtable (L);
   luaL_setmetatable (L, "mgconn.MinKey");
   lua_setfield (L, LUA_REGISTRYINDEX, "mgconn.MinKey_value");
   lua_newtable (L);
   luaL_setmetatable (L, "mgconn.MaxKey");
   lua_setfield (L, LUA_REGISTRYINDEX, "mgconn.MaxKey_value");
   lm_open_handles (L);
   luaL_newlib (L, fns);
   lua_pushstring (L, mgconn_version ());
   lua_setfield (L, -2, "version");
   lua_getfield (L, LUA_REGISTRYINDEX, LM_NULL "_value");
   lua_setfield (L, -2, "null");
   lua_getfield (L, LUA_REGISTRYINDEX, "mgconn.MinKey_value");
   lua_setfield (L, -2, "minKey");
   lua_getfield (L, LUA_REGISTRYINDEX, "mgconn.MaxKey_value");
   lua_setfield (L, -2, "maxKey");
   return 1;
}
