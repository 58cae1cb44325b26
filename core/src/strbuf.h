/*
 * strbuf.h: a growable NUL-terminated string for building messages, debug lines and JSON.
 *
 * It keeps the shape and meaning of libbson's bson_string_t, which libbson 2.0 removed: the
 * fields str (always NUL-terminated), len (bytes before the NUL) and alloc (bytes allocated), and
 * functions taking the same arguments. Allocation failure aborts, as libbson's bson_malloc does.
 * One owner at a time; no locking.
 */
#ifndef MG_STRBUF_H
#define MG_STRBUF_H

#include <bson/bson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
   char *str;
   uint32_t len;
   uint32_t alloc;
} mg_strbuf_t;

/* A new string holding a copy of str (NULL: empty). */
mg_strbuf_t *mg_strbuf_new (const char *str);
/* Frees s; with free_segment false, returns its text for the caller to bson_free(), else NULL. */
char *mg_strbuf_free (mg_strbuf_t *s, bool free_segment);
void mg_strbuf_append (mg_strbuf_t *s, const char *str);
void mg_strbuf_append_c (mg_strbuf_t *s, char c);
void mg_strbuf_append_printf (mg_strbuf_t *s, const char *fmt, ...) BSON_GNUC_PRINTF (2, 3);

#endif
