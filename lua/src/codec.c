/*
 * codec.c: Lua values <-> BSON, in C.
 *
 *   integer (by range)      <-> int32 / int64     float <-> double       boolean <-> bool
 *     (Lua 5.1, 5.2, LuaJIT: an integral number within +-2^53 is an integer, the rest a double;
 *      an int64 beyond 2^53 decodes as mgconn.Int64, its exact decimal text in `value`)
 *   string                  <-> string (must be UTF-8 as a value; keys must be valid UTF-8)
 *   table (string keys)     <-> document          table marked by mgconn.array, or a sequence
 *                                                  1..n                   <-> array
 *   mgconn.ordered{k, v, ...}  -> document in that key order
 *   mgconn.null             <-> null              ObjectId, Int64, Decimal128, Binary, Regex, Timestamp,
 *                                                 MinKey, MaxKey, Date   <-> their BSON types
 *
 * A value that cannot be encoded (a function, a cycle, a table with both array and hash parts, a
 * non-UTF-8 key) fails the conversion with a message naming the key path; nothing is sent.
 */
#include "lmgconn.h"
#include "../../core/src/utf8.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 100

/* The key path is a stack of frames (a key or an index), formatted only when a value fails: doing it
 * for every key cost more than encoding the value (callgrind: five snprintf calls per insert). */
typedef struct {
   const char *key; /* NULL: an array index */
   lua_Integer len_or_index;
} path_frame;

typedef struct {
   lua_State *L;
   const char *root;
   path_frame frames[MAX_DEPTH + 2];
   int nframes;
   int depth;
   int failed;
   char message[640]; /* kept here, not on the Lua stack, which the encoder's loops own */
} enc;

static void
push_key (enc *e, const char *k, size_t klen, size_t *mark)
{
   *mark = (size_t) e->nframes;
   if (e->nframes < MAX_DEPTH + 2) {
      e->frames[e->nframes].key = k;
      e->frames[e->nframes].len_or_index = (lua_Integer) klen;
   }
   e->nframes++;
}

static void
push_index (enc *e, lua_Integer i, size_t *mark)
{
   *mark = (size_t) e->nframes;
   if (e->nframes < MAX_DEPTH + 2) {
      e->frames[e->nframes].key = NULL;
      e->frames[e->nframes].len_or_index = i;
   }
   e->nframes++;
}

static void
pop_path (enc *e, size_t mark)
{
   e->nframes = (int) mark;
}

static int
fail (enc *e, const char *what)
{
   if (!e->failed) {
      char path[512];
      size_t len = (size_t) snprintf (path, sizeof path, "%s", e->root);
      for (int i = 0; i < e->nframes && i < MAX_DEPTH + 2 && len < sizeof path; i++) {
         const path_frame *f = &e->frames[i];
         int n = f->key ? snprintf (path + len, sizeof path - len, ".%.*s", (int) f->len_or_index, f->key)
                        : snprintf (path + len, sizeof path - len, "[%lld]", (long long) f->len_or_index);
         len = n > 0 ? len + (size_t) n : len;
      }
      snprintf (e->message, sizeof e->message, "%s at %s", what, path);
      e->failed = 1;
   }
   return 0;
}

/* The metatable named `name` (in the registry) is the metatable of the value at idx. */
static int
has_mt (lua_State *L, int idx, const char *name)
{
   int r;
   if (!lua_getmetatable (L, idx)) {
      return 0;
   }
   luaL_getmetatable (L, name);
   r = lua_rawequal (L, -1, -2);
   lua_pop (L, 2);
   return r;
}

static const char *
field_string (lua_State *L, int idx, const char *name, size_t *len)
{
   const char *s;
   lua_getfield (L, idx, name);
   s = lua_type (L, -1) == LUA_TSTRING ? lua_tolstring (L, -1, len) : NULL;
   lua_pop (L, 1); /* the string stays alive: the table holds it */
   return s;
}

static lua_Integer
field_integer (lua_State *L, int idx, const char *name, int *ok)
{
   lua_Integer v;
   lua_getfield (L, idx, name);
   *ok = lua_isinteger (L, -1);
   v = *ok ? lua_tointeger (L, -1) : 0;
   lua_pop (L, 1);
   return v;
}

/* An Int64's value: a Lua integer where Lua has integers; elsewhere (5.1, 5.2, LuaJIT) the exact
 * decimal text, which mgconn.Int64 made canonical ("-12", no sign on 0, no leading zeros). */
static int
int64_field (lua_State *L, int idx, int64_t *out)
{
#if LM_INTEGERS
   int ok;
   *out = (int64_t) field_integer (L, idx, "value", &ok);
   return ok;
#else
   size_t len;
   char *end;
   const char *s = field_string (L, idx, "value", &len);
   if (!s || len == 0 || len > 20) {
      return 0;
   }
   errno = 0;
   *out = (int64_t) strtoll (s, &end, 10);
   return errno == 0 && end == s + len;
#endif
}

static int encode_table (enc *e, int idx, bson_t *out, int as_array);

/* Array, document, or neither (-1, with the error set): a sequence 1..n with no other key is an
 * array; string keys only is a document; anything else is refused. Empty tables are documents. */
static int
table_kind (enc *e, int idx, lua_Integer *n_out)
{
   lua_State *L = e->L;
   lua_Integer n = 0, max = 0;
   int strings = 0, others = 0;
   lua_pushnil (L);
   while (lua_next (L, idx)) {
      lua_pop (L, 1);
      if (lua_type (L, -1) == LUA_TSTRING) {
         strings++;
      } else if (lua_isinteger (L, -1) && lua_tointeger (L, -1) >= 1) {
         n++;
         max = lua_tointeger (L, -1) > max ? lua_tointeger (L, -1) : max;
      } else {
         others++;
      }
   }
   *n_out = max;
   if (others || (n && strings) || (n && max != n)) {
      fail (e, others ? "a table key that is neither a string nor a positive integer"
                      : n && strings ? "a table with both array and hash parts (mark arrays with mgconn.array)"
                                     : "an array with holes (use mgconn.null for missing values)");
      return -1;
   }
   return n > 0 ? 1 : 0;
}

/* table_kind without its pre-pass for documents, the common case: a table whose first key is a string
 * is taken for a document, and encode_table checks each further key as it encodes it. The pre-pass is
 * a second walk of the whole table, and for a Lua host inserting the driver benchmark's large document
 * it cost as much as the encoding itself (perf: table_kind 19 % of the samples, encode_table 38 %). */
static int
plain_kind (enc *e, int idx, lua_Integer *n_out)
{
   lua_State *L = e->L;
   int first_is_string;
   *n_out = 0;
   lua_pushnil (L);
   if (!lua_next (L, idx)) {
      return 0; /* empty: a document */
   }
   first_is_string = lua_type (L, -2) == LUA_TSTRING;
   lua_pop (L, 2);
   return first_is_string ? 0 : table_kind (e, idx, n_out);
}

static int
encode_value (enc *e, bson_t *b, const char *key, int klen, int idx)
{
   lua_State *L = e->L;
   idx = lua_absindex (L, idx);
   switch (lua_type (L, idx)) {
   case LUA_TBOOLEAN:
      bson_append_bool (b, key, klen, lua_toboolean (L, idx));
      return 1;
   case LUA_TNUMBER:
      if (lua_isinteger (L, idx)) {
         lua_Integer v = lua_tointeger (L, idx);
         if (v >= INT32_MIN && v <= INT32_MAX) {
            bson_append_int32 (b, key, klen, (int32_t) v);
         } else {
            bson_append_int64 (b, key, klen, (int64_t) v);
         }
      } else {
         bson_append_double (b, key, klen, lua_tonumber (L, idx));
      }
      return 1;
   case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring (L, idx, &len);
      if (!mg_utf8_valid (s, len, true)) {
         return fail (e, "a string that is not valid UTF-8 (use mgconn.Binary for bytes)");
      }
      bson_append_utf8 (b, key, klen, s, (int) len);
      return 1;
   }
   case LUA_TTABLE: {
      size_t len;
      const char *s;
      int ok1, ok2;
      if (has_mt (L, idx, LM_NULL)) {
         bson_append_null (b, key, klen);
      } else if (has_mt (L, idx, "mgconn.ObjectId")) {
         s = field_string (L, idx, "bytes", &len);
         if (!s || len != 12) {
            return fail (e, "an ObjectId without its 12 bytes");
         }
         bson_oid_t oid;
         bson_oid_init_from_data (&oid, (const uint8_t *) s);
         bson_append_oid (b, key, klen, &oid);
      } else if (has_mt (L, idx, "mgconn.Int64")) {
         int64_t v;
         if (!int64_field (L, idx, &v)) {
            return fail (e, "an Int64 without an integer value");
         }
         bson_append_int64 (b, key, klen, v);
      } else if (has_mt (L, idx, "mgconn.Decimal128")) {
         bson_decimal128_t d;
         s = field_string (L, idx, "value", &len);
         if (!s || !bson_decimal128_from_string (s, &d)) {
            return fail (e, "a Decimal128 that is not a decimal number");
         }
         bson_append_decimal128 (b, key, klen, &d);
      } else if (has_mt (L, idx, "mgconn.Binary")) {
         s = field_string (L, idx, "data", &len);
         lua_Integer sub = field_integer (L, idx, "subtype", &ok1);
         if (!s || !ok1 || sub < 0 || sub > 255) {
            return fail (e, "a Binary needs string data and a subtype 0..255");
         }
         bson_append_binary (b, key, klen, (bson_subtype_t) sub, (const uint8_t *) s, (uint32_t) len);
      } else if (has_mt (L, idx, "mgconn.Regex")) {
         const char *flags = field_string (L, idx, "flags", &len);
         s = field_string (L, idx, "pattern", &len);
         if (!s) {
            return fail (e, "a Regex needs a pattern");
         }
         bson_append_regex (b, key, klen, s, flags ? flags : "");
      } else if (has_mt (L, idx, "mgconn.Timestamp")) {
         lua_Integer t = field_integer (L, idx, "t", &ok1), i = field_integer (L, idx, "i", &ok2);
         if (!ok1 || !ok2 || t < 0 || t > UINT32_MAX || i < 0 || i > UINT32_MAX) {
            return fail (e, "a Timestamp needs unsigned 32-bit t and i");
         }
         bson_append_timestamp (b, key, klen, (uint32_t) t, (uint32_t) i);
      } else if (has_mt (L, idx, "mgconn.Date")) {
         lua_Integer ms = field_integer (L, idx, "ms", &ok1);
         if (!ok1) {
            return fail (e, "a Date needs integer milliseconds");
         }
         bson_append_date_time (b, key, klen, (int64_t) ms);
      } else if (has_mt (L, idx, "mgconn.MinKey")) {
         bson_append_minkey (b, key, klen);
      } else if (has_mt (L, idx, "mgconn.MaxKey")) {
         bson_append_maxkey (b, key, klen);
      } else {
         bson_t child;
         lua_Integer n;
         int kind = has_mt (L, idx, LM_ARRAY) ? 1 : has_mt (L, idx, LM_ORDERED) ? 2 : plain_kind (e, idx, &n);
         if (kind < 0) {
            return 0;
         }
         if (kind == 1) {
            bson_append_array_unsafe_begin (b, key, klen, &child);
         } else {
            bson_append_document_begin (b, key, klen, &child);
         }
         ok1 = encode_table (e, idx, &child, kind);
         if (kind == 1) {
            bson_append_array_end (b, &child);
         } else {
            bson_append_document_end (b, &child);
         }
         return ok1;
      }
      return 1;
   }
   case LUA_TNIL:
      return fail (e, "nil (use mgconn.null for a null value)");
   default: {
      char what[64];
      snprintf (what, sizeof what, "a %s cannot be stored", luaL_typename (L, idx));
      return fail (e, what);
   }
   }
}

/* kind: 0 document (string keys, any order), 1 array (1..n), 2 ordered {k1, v1, k2, v2, ...} */
static int
encode_table (enc *e, int idx, bson_t *out, int kind)
{
   lua_State *L = e->L;
   size_t mark;
   idx = lua_absindex (L, idx);
   if (++e->depth > MAX_DEPTH) {
      return fail (e, "nesting deeper than 100 levels (a table that contains itself?)");
   }
   luaL_checkstack (L, 8, "mgconn encode");
   if (kind == 1) {
      lua_Integer n = (lua_Integer) lua_rawlen (L, idx);
      for (lua_Integer i = 1; i <= n; i++) {
         char buf[16];
         const char *k;
         size_t klen = bson_uint32_to_string ((uint32_t) (i - 1), &k, buf, sizeof buf);
         push_index (e, i, &mark);
         lua_rawgeti (L, idx, i);
         if (lua_isnil (L, -1)) {
            lua_pop (L, 1);
            lua_getfield (L, LUA_REGISTRYINDEX, LM_NULL "_value");
         }
         if (!encode_value (e, out, k, (int) klen, -1)) {
            lua_pop (L, 1);
            return 0;
         }
         lua_pop (L, 1);
         pop_path (e, mark);
      }
   } else if (kind == 2) {
      lua_Integer n = (lua_Integer) lua_rawlen (L, idx);
      for (lua_Integer i = 1; i + 1 <= n; i += 2) {
         size_t klen;
         const char *k;
         lua_rawgeti (L, idx, i);
         k = lua_type (L, -1) == LUA_TSTRING ? lua_tolstring (L, -1, &klen) : NULL;
         if (!k) {
            lua_pop (L, 1);
            return fail (e, "an ordered document whose keys are not all strings");
         }
         push_key (e, k, klen, &mark);
         lua_rawgeti (L, idx, i + 1);
         if (!encode_value (e, out, k, (int) klen, -1)) {
            lua_pop (L, 2);
            return 0;
         }
         lua_pop (L, 2);
         pop_path (e, mark);
      }
   } else {
      lua_pushnil (L);
      while (lua_next (L, idx)) {
         size_t klen;
         const char *k;
         if (lua_type (L, -2) != LUA_TSTRING) { /* plain_kind saw only the first key: table_kind's words */
            int positive = lua_isinteger (L, -2) && lua_tointeger (L, -2) >= 1;
            lua_pop (L, 2);
            return fail (e, positive ? "a table with both array and hash parts (mark arrays with mgconn.array)"
                                     : "a table key that is neither a string nor a positive integer");
         }
         k = lua_tolstring (L, -2, &klen);
         push_key (e, k, klen, &mark);
         if (!mg_utf8_valid (k, klen, false)) {
            lua_pop (L, 2);
            return fail (e, "a key that is not valid UTF-8");
         }
         if (!encode_value (e, out, k, (int) klen, -1)) {
            lua_pop (L, 2);
            return 0;
         }
         lua_pop (L, 1);
         pop_path (e, mark);
      }
   }
   e->depth--;
   return 1;
}

int
lm_encode (lua_State *L, int idx, bson_t *out, const char *root, int as_array)
{
   enc e;
   lua_Integer n;
   int kind;
   e.L = L;
   e.depth = 0;
   e.failed = 0;
   e.nframes = 0;
   e.root = root;
   idx = lua_absindex (L, idx);
   if (lua_type (L, idx) != LUA_TTABLE) {
      lua_pushfstring (L, "%s must be a table, not a %s", root, luaL_typename (L, idx));
      return 0;
   }
   if (as_array || has_mt (L, idx, LM_ARRAY)) {
      kind = 1;
   } else if (has_mt (L, idx, LM_ORDERED)) {
      kind = 2;
   } else if ((kind = plain_kind (&e, idx, &n)) < 0) {
      lua_pushstring (L, e.message);
      return 0;
   } else if (kind == 1) {
      lua_pushfstring (L, "%s must be a document (a table with string keys), not an array", root);
      return 0;
   }
   if (!encode_table (&e, idx, out, kind)) {
      lua_pushstring (L, e.message); /* the one value a failure leaves on the stack */
      return 0;
   }
   return 1;
}

/* ---- decoding ---- */

static void
push_typed (lua_State *L, const char *mt)
{
   lua_createtable (L, 0, 2);
   luaL_setmetatable (L, mt);
}

static void decode_iter (lua_State *L, bson_iter_t *it, int as_array, int depth);

#if !LM_INTEGERS
/* Without integers, an int64 a double holds exactly is a number, and one beyond 2^53 an
 * mgconn.Int64 with its exact decimal text, which encodes back to the same int64. */
static void
push_int64 (lua_State *L, int64_t v)
{
   char text[24];
   if (v >= -(int64_t) LM_EXACT_DOUBLE_MAX && v <= (int64_t) LM_EXACT_DOUBLE_MAX) {
      lua_pushnumber (L, (lua_Number) v);
      return;
   }
   snprintf (text, sizeof text, "%lld", (long long) v);
   push_typed (L, "mgconn.Int64");
   lua_pushstring (L, text);
   lua_setfield (L, -2, "value");
}
#endif

static void
decode_value (lua_State *L, bson_iter_t *it, int depth)
{
   uint32_t len;
   const uint8_t *data;
   switch (bson_iter_type (it)) {
   case BSON_TYPE_DOUBLE:
      lua_pushnumber (L, bson_iter_double (it));
      break;
   case BSON_TYPE_UTF8: {
      const char *s = bson_iter_utf8 (it, &len);
      lua_pushlstring (L, s, len);
      break;
   }
   case BSON_TYPE_DOCUMENT:
   case BSON_TYPE_ARRAY: {
      bson_iter_t child;
      if (depth > 200 || !bson_iter_recurse (it, &child)) {
         lua_pushnil (L);
         break;
      }
      decode_iter (L, &child, BSON_ITER_HOLDS_ARRAY (it), depth + 1);
      break;
   }
   case BSON_TYPE_BINARY: {
      bson_subtype_t sub;
      bson_iter_binary (it, &sub, &len, &data);
      push_typed (L, "mgconn.Binary");
      lua_pushlstring (L, (const char *) data, len);
      lua_setfield (L, -2, "data");
      lua_pushinteger (L, sub);
      lua_setfield (L, -2, "subtype");
      break;
   }
   case BSON_TYPE_OID:
      push_typed (L, "mgconn.ObjectId");
      lua_pushlstring (L, (const char *) bson_iter_oid (it)->bytes, 12);
      lua_setfield (L, -2, "bytes");
      break;
   case BSON_TYPE_BOOL:
      lua_pushboolean (L, bson_iter_bool (it));
      break;
   case BSON_TYPE_DATE_TIME:
      push_typed (L, "mgconn.Date");
      lua_pushinteger (L, bson_iter_date_time (it));
      lua_setfield (L, -2, "ms");
      break;
   case BSON_TYPE_REGEX: {
      const char *flags;
      const char *pattern = bson_iter_regex (it, &flags);
      push_typed (L, "mgconn.Regex");
      lua_pushstring (L, pattern);
      lua_setfield (L, -2, "pattern");
      lua_pushstring (L, flags ? flags : "");
      lua_setfield (L, -2, "flags");
      break;
   }
   case BSON_TYPE_INT32:
      lua_pushinteger (L, bson_iter_int32 (it));
      break;
   case BSON_TYPE_INT64:
#if LM_INTEGERS
      lua_pushinteger (L, bson_iter_int64 (it)); /* Lua integers are 64-bit */
#else
      push_int64 (L, bson_iter_int64 (it));
#endif
      break;
   case BSON_TYPE_TIMESTAMP: {
      uint32_t t, i;
      bson_iter_timestamp (it, &t, &i);
      push_typed (L, "mgconn.Timestamp");
      lua_pushinteger (L, t);
      lua_setfield (L, -2, "t");
      lua_pushinteger (L, i);
      lua_setfield (L, -2, "i");
      break;
   }
   case BSON_TYPE_DECIMAL128: {
      bson_decimal128_t d;
      char s[BSON_DECIMAL128_STRING];
      bson_iter_decimal128 (it, &d);
      bson_decimal128_to_string (&d, s);
      push_typed (L, "mgconn.Decimal128");
      lua_pushstring (L, s);
      lua_setfield (L, -2, "value");
      break;
   }
   case BSON_TYPE_MINKEY:
      lua_getfield (L, LUA_REGISTRYINDEX, "mgconn.MinKey_value");
      break;
   case BSON_TYPE_MAXKEY:
      lua_getfield (L, LUA_REGISTRYINDEX, "mgconn.MaxKey_value");
      break;
   case BSON_TYPE_CODE:
      lua_pushstring (L, bson_iter_code (it, &len));
      break;
   case BSON_TYPE_SYMBOL:
      lua_pushstring (L, bson_iter_symbol (it, &len));
      break;
   case BSON_TYPE_NULL:
   case BSON_TYPE_UNDEFINED:
   default:
      lua_getfield (L, LUA_REGISTRYINDEX, LM_NULL "_value");
   }
}

/* The table is made at its final size: a first pass over the BSON counts the fields (a few
 * nanoseconds each), which spares Lua's rehash at every doubling, and keys are pushed with the length
 * the BSON already gives. Decoding the driver benchmark's large document (94,355 fields) spent most
 * of its time growing the table before this. */
static void
decode_iter (lua_State *L, bson_iter_t *it, int as_array, int depth)
{
   lua_Integer i = 0;
   bson_iter_t counter = *it;
   int n = 0;
   while (n < INT_MAX && bson_iter_next (&counter)) {
      n++;
   }
   luaL_checkstack (L, 6, "mgconn decode");
   lua_createtable (L, as_array ? n : 0, as_array ? 0 : n);
   if (as_array) {
      luaL_setmetatable (L, LM_ARRAY); /* decoded arrays come back marked */
   }
   while (bson_iter_next (it)) {
      if (as_array) {
         decode_value (L, it, depth);
         lua_rawseti (L, -2, ++i);
      } else {
         lua_pushlstring (L, bson_iter_key (it), bson_iter_key_len (it));
         decode_value (L, it, depth);
         lua_rawset (L, -3);
      }
   }
}

void
lm_decode (lua_State *L, const uint8_t *data, size_t len, int as_array)
{
   bson_t doc;
   bson_iter_t it;
   if (!bson_init_static (&doc, data, len) || !bson_iter_init (&it, &doc)) {
      lua_pushnil (L);
      return;
   }
   decode_iter (L, &it, as_array, 0);
}

void
lm_push_error (lua_State *L, const mgconn_error *e)
{
   const uint8_t *data;
   size_t len;
   lua_createtable (L, 0, 6);
   lua_pushstring (L, mgconn_error_category_name (e->category));
   lua_setfield (L, -2, "category");
   lua_pushstring (L, e->message);
   lua_setfield (L, -2, "message");
   lua_pushinteger (L, e->code);
   lua_setfield (L, -2, "code");
   lua_pushstring (L, e->code_name);
   lua_setfield (L, -2, "codeName");
   mgconn_error_labels (e, &data, &len);
   lm_decode (L, data, len, 1);
   lua_setfield (L, -2, "labels");
   mgconn_error_reason (e, &data, &len);
   lm_decode (L, data, len, 0);
   lua_setfield (L, -2, "reason");
   luaL_setmetatable (L, "mgconn.Error");
}
