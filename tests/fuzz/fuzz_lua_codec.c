/*
 * fuzz_lua_codec.c: libFuzzer target for the Lua converters (lua/src/codec.c): BSON bytes decoded
 * into Lua values, then those values encoded back to BSON and decoded again.
 *
 * Input: any bytes; those that form a BSON document (as libmongoc hands replies over) are decoded.
 * Every document must decode without a crash, and what it decodes to must encode (or be refused
 * with a message) and decode again.
 */
#include "lmgconn.h"

#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>

int luaopen_mgconn (lua_State *L);

static lua_State *L;
static unsigned long decoded, reencoded, refused;

static void
print_counts (void)
{
   fprintf (stderr, "fuzz_lua_codec: %lu documents decoded, %lu encoded back, %lu refused by the encoder\n", decoded,
            reencoded, refused);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
   (void) argc, (void) argv;
   L = luaL_newstate ();
   luaL_openlibs (L);
   luaL_requiref (L, "mgconn", luaopen_mgconn, 1); /* registers the typed values' metatables */
   lua_pop (L, 1);
   atexit (print_counts);
   return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
   bson_t doc, out;
   int top = lua_gettop (L);
   if (!bson_init_static (&doc, data, size) || !bson_validate (&doc, BSON_VALIDATE_NONE, NULL)) {
      return 0;
   }
   lm_decode (L, data, size, 0);
   if (lua_istable (L, -1)) {
      decoded++;
      bson_init (&out);
      if (lm_encode (L, lua_gettop (L), &out, "doc", 0)) {
         lm_decode (L, bson_get_data (&out), out.len, 0);
         if (!lua_istable (L, -1)) {
            abort (); /* our own encoding did not decode */
         }
         reencoded++;
      } else if (!lua_isstring (L, -1)) {
         abort (); /* a refusal without a message */
      } else {
         if (getenv ("MGCONN_FUZZ_SHOW_REFUSALS") && refused < 20) {
            fprintf (stderr, "refused: %s\n", lua_tostring (L, -1));
         }
         refused++;
      }
      bson_destroy (&out);
   }
   lua_settop (L, top);
   lua_gc (L, LUA_GCSTEP, 0);
   return 0;
}
