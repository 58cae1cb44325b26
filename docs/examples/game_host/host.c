/*
 * host.c: a game-loop host that embeds Lua 5.4 and mgconn, as an engine would.
 *
 *   game_host SCRIPT URI [FRAMES] [MAX_FRAME_MS]
 *
 * It runs a 60 Hz loop: each frame calls mgconn.poll() once (completions and events run there), then
 * the script's frame(n). It times the work of every frame — what a frame spends in mgconn and the
 * script, the time the database must never take — and sleeps the rest of the 16.7 ms. At the end it
 * calls the script's finish() (which waits for outstanding saves) and prints the worst and the 99th
 * percentile frame work. With MAX_FRAME_MS it fails when a frame took longer: a frame that waited
 * for the database.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
now_ms (void)
{
   struct timespec ts;
   clock_gettime (CLOCK_MONOTONIC, &ts);
   return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp (const void *a, const void *b)
{
   double x = *(const double *) a, y = *(const double *) b;
   return x < y ? -1 : x > y;
}

/* Calls global function `name` with an integer argument (or none), protected, with a traceback. */
static int
call (lua_State *L, const char *name, int with_arg, lua_Integer arg, int nresults)
{
   lua_getglobal (L, "debug");
   lua_getfield (L, -1, "traceback");
   lua_remove (L, -2);
   lua_getglobal (L, name);
   if (!lua_isfunction (L, -1)) {
      lua_pop (L, 2);
      return 0;
   }
   if (with_arg) {
      lua_pushinteger (L, arg);
   }
   if (lua_pcall (L, with_arg, nresults, -2 - with_arg) != LUA_OK) {
      fprintf (stderr, "game_host: %s: %s\n", name, lua_tostring (L, -1));
      lua_pop (L, 2);
      return -1;
   }
   lua_remove (L, -1 - nresults);
   return 1;
}

int
main (int argc, char **argv)
{
   const double frame_ms = 1000.0 / 60.0;
   lua_State *L;
   int frames, ok = 1;
   double *work, next, max_ms;
   if (argc < 3) {
      fprintf (stderr, "usage: %s SCRIPT URI [FRAMES] [MAX_FRAME_MS]\n", argv[0]);
      return 2;
   }
   frames = argc > 3 ? atoi (argv[3]) : 600;
   max_ms = argc > 4 ? atof (argv[4]) : 0;
   work = calloc ((size_t) frames, sizeof *work);

   L = luaL_newstate ();
   luaL_openlibs (L); /* package.path / cpath come from LUA_PATH / LUA_CPATH */
   lua_pushstring (L, argv[2]);
   lua_setglobal (L, "MGCONN_URI");
   if (luaL_dofile (L, argv[1]) != LUA_OK) {
      fprintf (stderr, "game_host: %s\n", lua_tostring (L, -1));
      return 1;
   }
   lua_getglobal (L, "require");
   lua_pushstring (L, "mgconn");
   lua_call (L, 1, 1);
   lua_setglobal (L, "__mgconn");
   luaL_dostring (L, "function __poll() return __mgconn.poll() end");

   next = now_ms ();
   for (int n = 1; n <= frames; n++) {
      double t0 = now_ms ();
      if (call (L, "__poll", 0, 0, 0) < 0 || call (L, "frame", 1, n, 0) < 0) {
         ok = 0;
      }
      work[n - 1] = now_ms () - t0;
      next += frame_ms;
      {
         double left = next - now_ms ();
         if (left > 0) {
            struct timespec ts = {(time_t) (left / 1000), (long) (((long long) (left * 1e6)) % 1000000000LL)};
            nanosleep (&ts, NULL);
         }
      }
   }
   if (call (L, "finish", 0, 0, 1) > 0) {
      ok = ok && lua_toboolean (L, -1);
      lua_pop (L, 1);
   }
   qsort (work, (size_t) frames, sizeof *work, cmp);
   printf ("frames: %d at 60 Hz; frame work (poll + script): worst %.3f ms, p99 %.3f ms, median %.3f ms\n", frames,
           work[frames - 1], work[(int) (frames * 0.99) - (frames >= 100 ? 1 : 0)], work[frames / 2]);
   if (max_ms > 0 && work[frames - 1] > max_ms) {
      printf ("a frame took %.3f ms, over %.3f ms: it waited\n", work[frames - 1], max_ms);
      ok = 0;
   }
   lua_close (L);
   free (work);
   return ok ? 0 : 1;
}
