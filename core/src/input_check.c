/*
 * input_check.c: one walk over each document a host hands to an operation, on the host thread before
 * anything is queued. It does in one pass what used to take three: libbson's structural check
 * (bson_validate), a UTF-8 walk of our own, and libmongoc's own check of inserted documents (empty
 * keys, done again on the worker). For a 2.5 MB document those were 2.2 + 3.1 + 2.0 ms; this walk
 * costs about the UTF-8 walk alone. Inserts then tell libmongoc not to check again ("validate": false).
 *
 * The structure is checked the way bson_validate checks it: libbson's iterator refuses an element
 * that does not fit (and says so in err_off, the field bson_validate reads too), and each embedded
 * document or scope is opened with its own length checks. libbson's BSON_VALIDATE_UTF8 would check
 * strings too, but through a per-character decoder; mg_utf8_valid has an ASCII fast path.
 */
#include "input_check.h"
#include "utf8.h"

#include <stdio.h>

typedef struct {
   bool stored;
   bool want_path;
   char *path;
   size_t size;
} walk;

static mg_input_verdict walk_doc (walk *w, bson_iter_t *it, size_t used, int depth);

/* Appends `key` to the path (the path is only built on a second walk, after a failure: building it
 * for every key was a tenth of the host thread's cost of inserting a large document). */
static size_t
path_push (walk *w, size_t used, const char *key)
{
   int n;
   if (!w->want_path) {
      return 0;
   }
   n = snprintf (w->path + used, w->size - used, "%s%s", used ? "." : "", *key ? key : "\"\"");
   return used + (n > 0 && (size_t) n < w->size - used ? (size_t) n : 0);
}

static mg_input_verdict
walk_child (walk *w, const uint8_t *data, uint32_t len, size_t used, int depth)
{
   bson_iter_t child;
   if (depth >= MG_INPUT_MAX_DEPTH) {
      return MG_INPUT_TOO_DEEP;
   }
   if (!bson_iter_init_from_data (&child, data, len)) {
      return MG_INPUT_CORRUPT;
   }
   return walk_doc (w, &child, used, depth + 1);
}

static mg_input_verdict
walk_doc (walk *w, bson_iter_t *it, size_t used, int depth)
{
   while (bson_iter_next (it)) {
      const char *key = bson_iter_key (it);
      uint32_t key_len = bson_iter_key_len (it), len = 0;
      const char *str = NULL;
      size_t next = path_push (w, used, key);
      mg_input_verdict v = MG_INPUT_OK;
      if (!mg_utf8_valid (key, key_len, false)) {
         return MG_INPUT_BAD_UTF8;
      }
      if (key_len == 0 && w->stored) {
         return MG_INPUT_EMPTY_KEY;
      }
      switch (bson_iter_type (it)) {
      case BSON_TYPE_UTF8:
         str = bson_iter_utf8 (it, &len);
         break;
      case BSON_TYPE_SYMBOL:
         str = bson_iter_symbol (it, &len);
         break;
      case BSON_TYPE_CODE:
         str = bson_iter_code (it, &len);
         break;
      case BSON_TYPE_DOCUMENT:
      case BSON_TYPE_ARRAY: {
         const uint8_t *data;
         if (BSON_ITER_HOLDS_DOCUMENT (it)) {
            bson_iter_document (it, &len, &data);
         } else {
            bson_iter_array (it, &len, &data);
         }
         v = walk_child (w, data, len, next, depth);
         break;
      }
      case BSON_TYPE_CODEWSCOPE: {
         /* the scope is JavaScript's: only its structure and strings are ours to check */
         const uint8_t *scope;
         uint32_t scope_len;
         walk inner = *w;
         str = bson_iter_codewscope (it, &len, &scope_len, &scope);
         inner.stored = false;
         v = walk_child (&inner, scope, scope_len, next, depth);
         break;
      }
      default:
         break;
      }
      if (v != MG_INPUT_OK) {
         return v;
      }
      if (str && !mg_utf8_valid (str, len, true)) {
         return MG_INPUT_BAD_UTF8;
      }
      if (w->want_path) {
         w->path[used] = '\0';
      }
   }
   /* bson_iter_next stops at the end, or at an element that does not fit, which it marks here */
   return it->err_off ? MG_INPUT_CORRUPT : MG_INPUT_OK;
}

static mg_input_verdict
walk_top (const bson_t *doc, bool stored, char *path, size_t size)
{
   walk w = {stored, path != NULL, path, size};
   bson_iter_t it;
   if (path) {
      path[0] = '\0';
   }
   if (!bson_iter_init (&it, doc)) {
      return MG_INPUT_CORRUPT;
   }
   return walk_doc (&w, &it, 0, 0);
}

mg_input_verdict
mg_input_check (const bson_t *doc, bool stored, char *path, size_t size)
{
   mg_input_verdict v = walk_top (doc, stored, NULL, 0);
   if ((v == MG_INPUT_BAD_UTF8 || v == MG_INPUT_EMPTY_KEY) && path) {
      walk_top (doc, stored, path, size);
   }
   return v;
}
