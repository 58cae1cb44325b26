/*
 * listeners.c: the Lua side of the core's listeners (core/src/listeners.h). Each Lua function given
 * to conn:on / once / model:on is one core registration; the core keeps the list, once and the
 * order, and this file only turns an event into a Lua call.
 *
 * Lifetime: a registration's userdata is the function's identity (lua_topointer), so that off()
 * finds the registration the function made. The function itself is anchored by mgconn.lua in its
 * wrapper object (`_anchors`, by that key), never in the registry: a listener that refers to its
 * connection must not keep the connection from being collected. The registry holds one dispatcher
 * per handle (onEvent / onIndex), which looks the wrapper up weakly and calls the anchored function.
 */
#include "lmgconn.h"

#include <string.h>

static lua_State *
host_state (mgconn_connection *conn)
{
   lm_rt *r = mgconn_runtime_host_data (mgconn_connection_runtime (conn));
   return r ? r->current : NULL;
}

/* Pushes the handle's dispatcher, or returns 0 (the handle's box is gone). */
static int
push_dispatcher (lua_State *L, const void *handle)
{
   lua_getfield (L, LUA_REGISTRYINDEX, "mgconn.listeners");
   lua_rawgetp (L, -1, handle);
   lua_remove (L, -2);
   if (!lua_isfunction (L, -1)) {
      lua_pop (L, 1);
      return 0;
   }
   return 1;
}

static void
push_error_or_nil (lua_State *L, const mgconn_event *ev)
{
   if (mgconn_event_error (ev)) {
      lm_push_error (L, mgconn_event_error (ev));
   } else {
      lua_pushnil (L);
   }
}

static void
conn_trampoline (mgconn_connection *conn, const mgconn_event *ev, void *userdata)
{
   lua_State *L = host_state (conn);
   if (!L || !push_dispatcher (L, conn)) {
      return;
   }
   lua_pushstring (L, mgconn_event_name (ev));
   push_error_or_nil (L, ev);
   lua_pushlightuserdata (L, userdata);
   lm_pcall (L, 3);
}

static void
model_trampoline (mgconn_model *model, const mgconn_event *ev, void *userdata)
{
   lua_State *L = host_state (mgconn_model_connection (model));
   if (!L || !push_dispatcher (L, model)) {
      return;
   }
   push_error_or_nil (L, ev);
   lua_pushlightuserdata (L, userdata);
   lm_pcall (L, 2);
}

/* A refusal of the core (an unknown event) raised as the misuse it is, with the core's message. */
static int
raise_misuse (lua_State *L)
{
   return luaL_error (L, "%s", mgconn_last_error ()->message);
}

/* native:listen(event, fn, once) -> key, the function's registration key (anchor fn under it). */
int
lm_conn_listen (lua_State *L)
{
   mgconn_connection *c = lm_check (L, 1, LM_CONNECTION);
   const char *event = luaL_checkstring (L, 2);
   void *key;
   luaL_checktype (L, 3, LUA_TFUNCTION);
   key = (void *) lua_topointer (L, 3);
   if (mgconn_connection_listen (c, event, lua_toboolean (L, 4) ? MGCONN_LISTEN_ONCE : 0, NULL, conn_trampoline,
                                 key) != 0) {
      return raise_misuse (L);
   }
   lua_pushlightuserdata (L, key);
   return 1;
}

/* native:unlisten(event, fn): the first registration fn made for event (nothing when none). */
int
lm_conn_unlisten (lua_State *L)
{
   mgconn_connection *c = lm_check (L, 1, LM_CONNECTION);
   const char *event = luaL_checkstring (L, 2);
   mgconn_connection_off (c, event, conn_trampoline, (void *) lua_topointer (L, 3));
   return 0;
}

static int
same_key (int32_t type, int32_t flags, void *listener_userdata, void *userdata)
{
   (void) type;
   (void) flags;
   return listener_userdata == userdata;
}

/* native:listening(key) -> whether a registration still uses key (mgconn.lua drops its anchor). */
int
lm_conn_listening (lua_State *L)
{
   mgconn_connection *c = lm_check (L, 1, LM_CONNECTION);
   lua_pushboolean (L, mgconn_connection_visit_listeners (c, conn_trampoline, same_key, lua_touserdata (L, 2)) != 0);
   return 1;
}

/* model:listen(fn, once) -> key; model:unlisten(fn); model:listening(key): the "index" event. */
int
lm_model_listen (lua_State *L)
{
   mgconn_model *m = lm_check (L, 1, LM_MODEL);
   void *key;
   luaL_checktype (L, 2, LUA_TFUNCTION);
   key = (void *) lua_topointer (L, 2);
   if (mgconn_model_listen (m, "index", lua_toboolean (L, 3) ? MGCONN_LISTEN_ONCE : 0, NULL, model_trampoline, key) !=
       0) {
      return raise_misuse (L);
   }
   lua_pushlightuserdata (L, key);
   return 1;
}

int
lm_model_unlisten (lua_State *L)
{
   mgconn_model *m = lm_check (L, 1, LM_MODEL);
   mgconn_model_off (m, "index", model_trampoline, (void *) lua_topointer (L, 2));
   return 0;
}

int
lm_model_listening (lua_State *L)
{
   mgconn_model *m = lm_check (L, 1, LM_MODEL);
   lua_pushboolean (L, mgconn_model_visit_listeners (m, model_trampoline, same_key, lua_touserdata (L, 2)) != 0);
   return 1;
}
