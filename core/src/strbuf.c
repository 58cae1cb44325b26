/* strbuf.c: mgconn's growable string (see strbuf.h). */
#include "strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for len more bytes and the NUL, growing to a power of two as bson_string_t did. */
static void
reserve (mg_strbuf_t *s, size_t more)
{
   size_t need = (size_t) s->len + more + 1;
   if (need <= s->alloc) {
      return;
   }
   if (need > UINT32_MAX) {
      fprintf (stderr, "mgconn: string of %zu bytes is too long\n", need);
      abort ();
   }
   size_t alloc = s->alloc ? s->alloc : 16;
   while (alloc < need) {
      alloc = alloc > UINT32_MAX / 2 ? UINT32_MAX : alloc * 2;
   }
   s->str = bson_realloc (s->str, alloc);
   s->alloc = (uint32_t) alloc;
}

mg_strbuf_t *
mg_strbuf_new (const char *str)
{
   mg_strbuf_t *s = bson_malloc0 (sizeof *s);
   reserve (s, str ? strlen (str) : 0);
   s->str[0] = '\0';
   if (str) {
      mg_strbuf_append (s, str);
   }
   return s;
}

char *
mg_strbuf_free (mg_strbuf_t *s, bool free_segment)
{
   if (!s) {
      return NULL;
   }
   char *str = s->str;
   if (free_segment) {
      bson_free (str);
      str = NULL;
   }
   bson_free (s);
   return str;
}

void
mg_strbuf_append (mg_strbuf_t *s, const char *str)
{
   size_t n = strlen (str);
   reserve (s, n);
   memcpy (s->str + s->len, str, n + 1);
   s->len += (uint32_t) n;
}

void
mg_strbuf_append_c (mg_strbuf_t *s, char c)
{
   reserve (s, 1);
   s->str[s->len++] = c;
   s->str[s->len] = '\0';
}

void
mg_strbuf_append_printf (mg_strbuf_t *s, const char *fmt, ...)
{
   va_list ap, again;
   va_start (ap, fmt);
   va_copy (again, ap);
   int n = vsnprintf (NULL, 0, fmt, ap);
   va_end (ap);
   if (n > 0) {
      reserve (s, (size_t) n);
      vsnprintf (s->str + s->len, (size_t) n + 1, fmt, again);
      s->len += (uint32_t) n;
   }
   va_end (again);
}
