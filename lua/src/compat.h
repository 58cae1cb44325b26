/*
 * compat.h: the Lua 5.4 C API that the module is written against, on Lua 5.1 (and LuaJIT, which has
 * 5.1's API), 5.2 and 5.3. Each shim is the smallest mapping onto the older API; on 5.4 this file
 * adds nothing but LM_INTEGERS.
 *
 *   LM_INTEGERS   1 where Lua numbers have an integer subtype (5.3 and later), 0 where every number
 *                 is a double (5.1, 5.2, LuaJIT): there lua_isinteger is "an integral number a double
 *                 holds exactly" (|n| <= 2^53), which is how the codec maps integral doubles to
 *                 int32/int64, and int64 values beyond 2^53 travel as mgconn.Int64 (codec.c).
 *
 * Userdata with one user value: 5.4 has lua_newuserdatauv; 5.3 one user value of any type; 5.1 and
 * 5.2 only a table (5.1's environment), so there the value is kept at index 1 of a table.
 *
 * Shims are static functions with an lmc_ prefix behind macros of the 5.4 names, so a module built
 * against 5.1's headers loads in LuaJIT too (it calls only 5.1 API functions, which LuaJIT exports).
 */
#ifndef LMGCONN_COMPAT_H
#define LMGCONN_COMPAT_H

#include <lauxlib.h>
#include <lua.h>

#include <math.h>

#if LUA_VERSION_NUM >= 503
#define LM_INTEGERS 1
#else
#define LM_INTEGERS 0
#endif

#ifndef LUA_OK
#define LUA_OK 0
#endif

/* The exact range of integers a double holds: beyond it, integral doubles are not integers. */
#define LM_EXACT_DOUBLE_MAX 9007199254740992.0 /* 2^53 */

#if LUA_VERSION_NUM < 503
static inline int
lmc_isinteger (lua_State *L, int idx)
{
   lua_Number n;
   if (lua_type (L, idx) != LUA_TNUMBER) {
      return 0;
   }
   n = lua_tonumber (L, idx);
   return n == floor (n) && fabs (n) <= LM_EXACT_DOUBLE_MAX;
}
#define lua_isinteger(L, i) lmc_isinteger ((L), (i))

/* lua_getfield returns the value's type from 5.3 on; the comma keeps the call and then reads it.
 * (A macro does not expand its own name in its body, so the inner call is the real function.) */
#define lua_getfield(L, i, k) (lua_getfield ((L), (i), (k)), lua_type ((L), -1))
#define lua_rawgeti(L, i, n) (lua_rawgeti ((L), (i), (n)), lua_type ((L), -1))

static inline void
lmc_setiuservalue (lua_State *L, int idx, int n)
{
   (void) n; /* the module keeps one user value */
   idx = idx < 0 && idx > LUA_REGISTRYINDEX ? lua_gettop (L) + idx + 1 : idx;
   lua_createtable (L, 1, 0);
   lua_insert (L, -2);
   lua_rawseti (L, -2, 1);
#if LUA_VERSION_NUM == 501
   lua_setfenv (L, idx);
#else
   lua_setuservalue (L, idx);
#endif
}
#define lua_setiuservalue(L, i, n) lmc_setiuservalue ((L), (i), (n))
#endif

#if LUA_VERSION_NUM < 504
#define lua_newuserdatauv(L, size, nuv) lua_newuserdata ((L), (size))
#if LUA_VERSION_NUM == 503
#define lua_setiuservalue(L, i, n) lua_setuservalue ((L), (i))
#endif
#endif

#if LUA_VERSION_NUM == 501
static inline int
lmc_absindex (lua_State *L, int idx)
{
   return idx < 0 && idx > LUA_REGISTRYINDEX ? lua_gettop (L) + idx + 1 : idx;
}
#define lua_absindex(L, i) lmc_absindex ((L), (i))

#define lua_rawlen(L, i) lua_objlen ((L), (i))

static inline void
lmc_setfuncs (lua_State *L, const luaL_Reg *l, int nup)
{
   luaL_checkstack (L, nup + 1, "too many upvalues");
   for (; l->name; l++) {
      int i;
      for (i = 0; i < nup; i++) {
         lua_pushvalue (L, -nup);
      }
      lua_pushcclosure (L, l->func, nup);
      lua_setfield (L, -(nup + 2), l->name);
   }
   lua_pop (L, nup);
}
#define luaL_setfuncs(L, l, n) lmc_setfuncs ((L), (l), (n))
#undef luaL_newlib /* LuaJIT has it, over its own luaL_setfuncs */
#define luaL_newlib(L, l) (lua_newtable (L), luaL_setfuncs ((L), (l), 0))

static inline void
lmc_setmetatable (lua_State *L, const char *name)
{
   luaL_getmetatable (L, name);
   lua_setmetatable (L, -2);
}
#define luaL_setmetatable(L, name) lmc_setmetatable ((L), (name))

static inline void
lmc_rawgetp (lua_State *L, int idx, const void *p)
{
   idx = lmc_absindex (L, idx);
   lua_pushlightuserdata (L, (void *) p);
   lua_rawget (L, idx);
}
#define lua_rawgetp(L, i, p) (lmc_rawgetp ((L), (i), (p)), lua_type ((L), -1))

static inline void
lmc_rawsetp (lua_State *L, int idx, const void *p)
{
   idx = lmc_absindex (L, idx);
   lua_pushlightuserdata (L, (void *) p);
   lua_insert (L, -2);
   lua_rawset (L, idx);
}
#define lua_rawsetp(L, i, p) lmc_rawsetp ((L), (i), (p))

/* debug.traceback(msg, level), as 5.2's luaL_traceback gives it (only ever called with L1 == L) */
static inline void
lmc_traceback (lua_State *L, lua_State *L1, const char *msg, int level)
{
   (void) L1;
   lua_getfield (L, LUA_GLOBALSINDEX, "debug");
   if (lua_type (L, -1) == LUA_TTABLE) {
      lua_getfield (L, -1, "traceback");
      lua_remove (L, -2);
      if (lua_type (L, -1) == LUA_TFUNCTION) {
         lua_pushstring (L, msg);
         lua_pushinteger (L, level + 1);
         if (lua_pcall (L, 2, 1, 0) == 0) {
            return;
         }
      }
   }
   lua_pop (L, 1);
   lua_pushstring (L, msg);
}
#define luaL_traceback(L, L1, msg, level) lmc_traceback ((L), (L1), (msg), (level))

/* package.loaded[name] = open(name), then the module on the stack (5.2's luaL_requiref) */
static inline void
lmc_requiref (lua_State *L, const char *name, lua_CFunction open, int global)
{
   (void) global;
   lua_pushcfunction (L, open);
   lua_pushstring (L, name);
   lua_call (L, 1, 1);
   lua_getfield (L, LUA_REGISTRYINDEX, "_LOADED");
   lua_pushvalue (L, -2);
   lua_setfield (L, -2, name);
   lua_pop (L, 1);
}
#define luaL_requiref(L, name, open, g) lmc_requiref ((L), (name), (open), (g))

static inline void *
lmc_testudata (lua_State *L, int idx, const char *name)
{
   void *p = lua_touserdata (L, idx);
   int same;
   if (!p || !lua_getmetatable (L, idx)) {
      return NULL;
   }
   luaL_getmetatable (L, name);
   same = lua_rawequal (L, -1, -2);
   lua_pop (L, 2);
   return same ? p : NULL;
}
#define luaL_testudata(L, i, name) lmc_testudata ((L), (i), (name))
#endif

#endif
