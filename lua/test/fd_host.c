/*
 * fd_host.c: a host that dispatches only when mgconn.fd() is readable (epoll), as an engine that
 * sleeps in its own event loop does. Everything that completes must wake it, including results that
 * the Lua layer knows at once: asPromise on an open connection, an insert refused for a bad value.
 *
 *   fd_host URI
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <time.h>

static const char *script =
   "local mgconn = require 'mgconn'\n"
   "got = {}\n"
   "local conn = mgconn.createConnection(MGCONN_URI)\n"
   "conn:on('open', function()\n"
   "  got.open = true\n"
   "  conn:asPromise(function(err, c) got.promise = (c == conn) end)\n"
   "  conn:collection('x'):insertOne({ f = print }, function(err) got.refused = err and err.category end)\n"
   "end)\n"
   "FD = mgconn.fd()\n"
   "function step() return mgconn.poll() end\n"
   "function finished() return got.promise == true and got.refused == 'Type' end\n"
   "function state() return string.format('open=%s promise=%s refused=%s', tostring(got.open),\n"
   "                                      tostring(got.promise), tostring(got.refused)) end\n";

static double
now_s (void)
{
   struct timespec ts;
   clock_gettime (CLOCK_MONOTONIC, &ts);
   return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
call_bool (lua_State *L, const char *fn)
{
   int v;
   lua_getglobal (L, fn);
   if (lua_pcall (L, 0, 1, 0) != LUA_OK) {
      fprintf (stderr, "fd_host: %s: %s\n", fn, lua_tostring (L, -1));
      lua_pop (L, 1);
      return -1;
   }
   v = lua_toboolean (L, -1);
   lua_pop (L, 1);
   return v;
}

int
main (int argc, char **argv)
{
   lua_State *L;
   int ep, fd, wakeups = 0, ok;
   struct epoll_event ev = {.events = EPOLLIN};
   double deadline;
   if (argc < 2) {
      return 2;
   }
   L = luaL_newstate ();
   luaL_openlibs (L);
   lua_pushstring (L, argv[1]);
   lua_setglobal (L, "MGCONN_URI");
   if (luaL_dostring (L, script) != LUA_OK) {
      fprintf (stderr, "fd_host: %s\n", lua_tostring (L, -1));
      return 1;
   }
   lua_getglobal (L, "FD");
   fd = (int) lua_tointeger (L, -1);
   lua_pop (L, 1);
   ep = epoll_create1 (0);
   ev.data.fd = fd;
   epoll_ctl (ep, EPOLL_CTL_ADD, fd, &ev);

   deadline = now_s () + 10;
   while (!(ok = call_bool (L, "finished") == 1) && now_s () < deadline) {
      struct epoll_event out;
      if (epoll_wait (ep, &out, 1, 100) == 1) { /* poll only when the fd says there is work */
         wakeups++;
         if (call_bool (L, "step") < 0) {
            break;
         }
      }
   }
   lua_getglobal (L, "state");
   lua_pcall (L, 0, 1, 0);
   printf ("fd_host: %s after %d wake-ups: %s\n", ok ? "every callback ran" : "FAILED, callbacks missing", wakeups,
           lua_tostring (L, -1));
   lua_close (L);
   return ok ? 0 : 1;
}
