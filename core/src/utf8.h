/*
 * utf8.h: UTF-8 validation with an ASCII fast path, shared by the core's input checks and the Lua
 * converters (which include it by path). libbson's bson_utf8_validate walks every byte through a
 * per-character decoder; profiles of document encoding showed it as the largest single cost, while
 * almost every key and most values are plain ASCII, checked here eight bytes at a time.
 */
#ifndef MG_UTF8_H
#define MG_UTF8_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static inline bool
mg_utf8_valid (const char *s, size_t len, bool allow_nul)
{
   size_t i = 0;
   while (i + 8 <= len) {
      uint64_t w;
      memcpy (&w, s + i, 8);
      if (w & UINT64_C (0x8080808080808080)) {
         break; /* a non-ASCII byte in this word: the full decoder takes over from here */
      }
      if (!allow_nul && ((w - UINT64_C (0x0101010101010101)) & ~w & UINT64_C (0x8080808080808080))) {
         return false; /* a NUL byte */
      }
      i += 8;
   }
   for (; i < len; i++) {
      unsigned char c = (unsigned char) s[i];
      if (c >= 0x80) {
         return bson_utf8_validate (s + i, len - i, allow_nul); /* i is on a character boundary */
      }
      if (c == 0 && !allow_nul) {
         return false;
      }
   }
   return true;
}

#endif
