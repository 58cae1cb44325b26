/*
 * two_states.c: two Lua states in one process each use mgconn; closing one (its runtime with it)
 * leaves the other working.
 *
 *   two_states URI
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>

static const char *script =
   "local mgconn = require 'mgconn'\n"
   "local conn = mgconn.createConnection(MGCONN_URI)\n"
   "assert(conn:asPromise():wait(10), 'no open')\n"
   "local res, err = conn:runCommand({ ping = 1 }):wait(10)\n"
   "assert(res and res.ok == 1, tostring(err))\n"
   "CONN = conn\n";

static const char *again =
   "local res, err = CONN:runCommand({ ping = 1 }):wait(10)\n"
   "assert(res and res.ok == 1, tostring(err))\n";

static lua_State *
state (const char *uri)
{
   lua_State *L = luaL_newstate ();
   luaL_openlibs (L);
   lua_pushstring (L, uri);
   lua_setglobal (L, "MGCONN_URI");
   if (luaL_dostring (L, script) != LUA_OK) {
      fprintf (stderr, "two_states: %s\n", lua_tostring (L, -1));
      return NULL;
   }
   return L;
}

int
main (int argc, char **argv)
{
   lua_State *a, *b;
   if (argc < 2) {
      return 2;
   }
   a = state (argv[1]);
   b = state (argv[1]);
   if (!a || !b) {
      return 1;
   }
   lua_close (a); /* finalizes a's handles, then a's runtime: b's runtime is its own */
   if (luaL_dostring (b, again) != LUA_OK) {
      fprintf (stderr, "two_states: after closing the first state: %s\n", lua_tostring (b, -1));
      return 1;
   }
   lua_close (b);
   printf ("two_states: two lua_States used mgconn; closing one left the other working\n");
   return 0;
}
