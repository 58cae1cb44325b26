/*
 * debug.c: the line printed for each operation as it is sent when debug is on, in Mongoose's
 * format with the host's method spelling:
 *
 *   mgconn: users.find_one({"name": "x"}, {})
 *
 * Values print as compact JSON; BSON types JSON lacks print as their shell constructors
 * (ObjectId("..."), new Date("...")), as Mongoose prints them. Passwords are masked by mg_log.
 */
#include "connection.h"

#include <math.h>
#include <string.h>

static void print_doc (mg_strbuf_t *out, const bson_t *doc, bool array, int depth);

static void
print_string (mg_strbuf_t *out, const char *s, uint32_t len)
{
   mg_strbuf_append_c (out, '"');
   for (uint32_t i = 0; i < len; i++) {
      unsigned char c = (unsigned char) s[i];
      switch (c) {
      case '"':
         mg_strbuf_append (out, "\\\"");
         break;
      case '\\':
         mg_strbuf_append (out, "\\\\");
         break;
      case '\n':
         mg_strbuf_append (out, "\\n");
         break;
      default:
         if (c < 0x20) {
            mg_strbuf_append_printf (out, "\\u%04x", c);
         } else {
            mg_strbuf_append_c (out, (char) c);
         }
      }
   }
   mg_strbuf_append_c (out, '"');
}

static void
print_value (mg_strbuf_t *out, const bson_iter_t *it, int depth)
{
   uint32_t len;
   const uint8_t *data;
   bson_t child;
   char oid[25];
   switch (bson_iter_type (it)) {
   case BSON_TYPE_UTF8: {
      const char *s = bson_iter_utf8 (it, &len);
      print_string (out, s, len);
      break;
   }
   case BSON_TYPE_INT32:
      mg_strbuf_append_printf (out, "%d", bson_iter_int32 (it));
      break;
   case BSON_TYPE_INT64:
      mg_strbuf_append_printf (out, "%lld", (long long) bson_iter_int64 (it));
      break;
   case BSON_TYPE_DOUBLE: {
      double d = bson_iter_double (it);
      if (isfinite (d) && fabs (d) < 1e15 && d == (double) (int64_t) d) { /* the range first: no UB */
         mg_strbuf_append_printf (out, "%.1f", d);
      } else {
         mg_strbuf_append_printf (out, "%.17g", d);
      }
      break;
   }
   case BSON_TYPE_BOOL:
      mg_strbuf_append (out, bson_iter_bool (it) ? "true" : "false");
      break;
   case BSON_TYPE_NULL:
   case BSON_TYPE_UNDEFINED:
      mg_strbuf_append (out, "null");
      break;
   case BSON_TYPE_OID:
      bson_oid_to_string (bson_iter_oid (it), oid);
      mg_strbuf_append_printf (out, "ObjectId(\"%s\")", oid);
      break;
   case BSON_TYPE_DATE_TIME: {
      int64_t ms = bson_iter_date_time (it);
      time_t secs = (time_t) (ms / 1000);
      struct tm tm;
      char buf[32];
      gmtime_r (&secs, &tm);
      strftime (buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
      mg_strbuf_append_printf (out, "new Date(\"%s.%03dZ\")", buf, (int) ((ms % 1000 + 1000) % 1000));
      break;
   }
   case BSON_TYPE_DOCUMENT:
   case BSON_TYPE_ARRAY:
      if (depth > 32) {
         mg_strbuf_append (out, "...");
         break;
      }
      if (bson_iter_type (it) == BSON_TYPE_DOCUMENT) {
         bson_iter_document (it, &len, &data);
      } else {
         bson_iter_array (it, &len, &data);
      }
      if (bson_init_static (&child, data, len)) {
         print_doc (out, &child, bson_iter_type (it) == BSON_TYPE_ARRAY, depth + 1);
      }
      break;
   default: {
      /* Rarer types: their canonical extended JSON. */
      bson_t one = BSON_INITIALIZER;
      char *json;
      bson_append_value (&one, "v", 1, bson_iter_value ((bson_iter_t *) it));
      json = bson_as_canonical_extended_json (&one, NULL);
      /* "{ "v" : X }" -> X */
      if (json && strlen (json) > 10) {
         mg_strbuf_append_printf (out, "%.*s", (int) (strlen (json) - 10), json + 8);
      }
      bson_free (json);
      bson_destroy (&one);
   }
   }
}

static void
print_doc (mg_strbuf_t *out, const bson_t *doc, bool array, int depth)
{
   bson_iter_t it;
   bool first = true;
   mg_strbuf_append_c (out, array ? '[' : '{');
   if (bson_iter_init (&it, doc)) {
      while (bson_iter_next (&it)) {
         if (!first) {
            mg_strbuf_append (out, ", ");
         }
         first = false;
         if (!array) {
            print_string (out, bson_iter_key (&it), bson_iter_key_len (&it));
            mg_strbuf_append (out, ": ");
         }
         print_value (out, &it, depth);
      }
   }
   mg_strbuf_append_c (out, array ? ']' : '}');
}

char *
mg_debug_line (const mgconn_op *op)
{
   mg_strbuf_t *out = mg_strbuf_new (NULL);
   mg_strbuf_append_printf (out, "mgconn: %s.%s(", op->collection ? op->collection : op->db,
                              mg_op_method_name (op));
   if (op->cursor) {
      mg_strbuf_append_printf (out, "%lld", (long long) op->cursor_id);
   } else if (mg_command_is_sensitive (&op->args)) {
      /* credentials or an authentication exchange: the command's name only (redact.c) */
      bson_iter_t it;
      bson_iter_init (&it, &op->args);
      bson_iter_next (&it);
      mg_strbuf_append (out, "{");
      print_string (out, bson_iter_key (&it), (uint32_t) strlen (bson_iter_key (&it)));
      mg_strbuf_append (out, ": \"[redacted]\"}");
   } else {
      print_doc (out, &op->args, op->kind->args_array, 0);
      if (!bson_empty (&op->args2)) {
         mg_strbuf_append (out, ", ");
         print_doc (out, &op->args2, false, 0);
      }
      mg_strbuf_append (out, ", ");
      print_doc (out, &op->opts, false, 0);
   }
   mg_strbuf_append_c (out, ')');
   return mg_strbuf_free (out, false);
}
