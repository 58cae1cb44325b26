/*
 * option_values.c: one option's value checked, with a message that names the option, what it takes
 * and what it got (never a password's value), and the options that need more than one setter of
 * libmongoc's (the OPT_SPECIAL rows of options.c's table: read preference, write concern, tags,
 * mechanism properties, ...).
 */
#include "option_values.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

/* A short description of a BSON value for "got ..." in messages (never the value of `pass`). */
static void
describe_value (const bson_iter_t *it, char *buf, size_t size)
{
   switch (bson_iter_type (it)) {
   case BSON_TYPE_UTF8:
      bson_snprintf (buf, size, "the string \"%s\"", bson_iter_utf8 (it, NULL));
      break;
   case BSON_TYPE_INT32:
   case BSON_TYPE_INT64:
      bson_snprintf (buf, size, "%lld", (long long) bson_iter_as_int64 (it));
      break;
   case BSON_TYPE_DOUBLE:
      bson_snprintf (buf, size, "%g", bson_iter_double (it));
      break;
   case BSON_TYPE_BOOL:
      bson_snprintf (buf, size, "%s", bson_iter_bool (it) ? "true" : "false");
      break;
   case BSON_TYPE_NULL:
      bson_snprintf (buf, size, "null");
      break;
   case BSON_TYPE_DOCUMENT:
      bson_snprintf (buf, size, "a table/document");
      break;
   case BSON_TYPE_ARRAY:
      bson_snprintf (buf, size, "an array");
      break;
   default:
      bson_snprintf (buf, size, "a value of BSON type 0x%02x", (unsigned) bson_iter_type (it));
   }
}

bool
mg_option_get_int (const bson_iter_t *it, int64_t *out)
{
   if (BSON_ITER_HOLDS_INT32 (it) || BSON_ITER_HOLDS_INT64 (it)) {
      *out = bson_iter_as_int64 (it);
      return true;
   }
   if (BSON_ITER_HOLDS_DOUBLE (it)) {
      double d = bson_iter_double (it);
      /* 5000.0 from a script language is the integer 5000. The range check comes first: converting a
       * double outside int64_t's range (or NaN) is undefined behaviour (found by fuzzing). */
      if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == (double) (int64_t) d) {
         *out = (int64_t) d;
         return true;
      }
   }
   return false;
}

int
mg_option_bad_value (mgconn_error *error, const char *name, const bson_iter_t *it, const char *accepted)
{
   char got[160];
   describe_value (it, got, sizeof got);
   if (strcasecmp (name, "pass") == 0 || strcasecmp (name, "tlsCertificateKeyFilePassword") == 0) {
      bson_snprintf (got, sizeof got, "a value of another type");
   }
   return mg_fail (error, MGCONN_ERR_OPTION, "Option \"%s\" must be %s, got %s", name, accepted, got);
}

void
mg_option_warn (mg_options *o, const char *fmt, ...)
{
   va_list ap;
   char *line;
   va_start (ap, fmt);
   line = bson_strdupv_printf (fmt, ap);
   va_end (ap);
   mg_strbuf_append_printf (o->warnings, "%s\n", line);
   bson_free (line);
}

/* The URI's own "w" entry, as the string leaves it next to the write concern. libmongoc has no setter
 * for it (it is neither an int32 nor a string option to mongoc_uri_set_option_*), so the entry is
 * replaced in the URI's options document itself. */
static void
set_uri_w (mongoc_uri_t *uri, int32_t w, const char *w_text)
{
   bson_t *uri_options = (bson_t *) mongoc_uri_get_options (uri);
   bson_t copy = BSON_INITIALIZER;
   bson_iter_t it;
   if (bson_iter_init (&it, uri_options)) {
      while (bson_iter_next (&it)) {
         if (strcasecmp (bson_iter_key (&it), MONGOC_URI_W) != 0) {
            bson_append_iter (&copy, bson_iter_key (&it), -1, &it);
         }
      }
   }
   if (w_text) {
      BSON_APPEND_UTF8 (&copy, MONGOC_URI_W, w_text);
   } else {
      BSON_APPEND_INT32 (&copy, MONGOC_URI_W, w);
   }
   bson_reinit (uri_options);
   bson_concat (uri_options, &copy);
   bson_destroy (&copy);
}

/* readPreferenceTags: a list of tag sets tried in order, each a document of strings ({} matches any
 * server), as the string's repeated readPreferenceTags=dc:ny,rack:1&readPreferenceTags= says. */
static int
apply_read_preference_tags (mg_options *o, const char *name, const bson_iter_t *it, mgconn_error *error)
{
   static const char *const shape = "a list of tag sets, each a table/document of strings (e.g. [{\"dc\": \"ny\"}, {}])";
   bson_iter_t sets, tag;
   bson_t tags = BSON_INITIALIZER;
   uint32_t n = 0;
   if (!BSON_ITER_HOLDS_ARRAY (it) || !bson_iter_recurse (it, &sets)) {
      bson_destroy (&tags);
      return mg_option_bad_value (error, name, it, shape);
   }
   while (bson_iter_next (&sets)) {
      char key[16];
      const char *k;
      uint32_t len;
      const uint8_t *data;
      bson_t set;
      if (BSON_ITER_HOLDS_ARRAY (&sets) && bson_iter_recurse (&sets, &tag) && !bson_iter_next (&tag)) {
         /* an empty table from Lua arrives as an empty array: the empty tag set (any server) */
         bson_t none = BSON_INITIALIZER;
         bson_uint32_to_string (n++, &k, key, sizeof key);
         BSON_APPEND_DOCUMENT (&tags, k, &none);
         continue;
      }
      if (!BSON_ITER_HOLDS_DOCUMENT (&sets) || !bson_iter_recurse (&sets, &tag)) {
         char got[160];
         describe_value (&sets, got, sizeof got);
         bson_destroy (&tags);
         return mg_fail (error, MGCONN_ERR_OPTION, "Option \"%s\" must be %s, got %s at position %u", name, shape,
                         got, (unsigned) n);
      }
      while (bson_iter_next (&tag)) {
         if (!BSON_ITER_HOLDS_UTF8 (&tag)) {
            char got[160];
            describe_value (&tag, got, sizeof got);
            bson_destroy (&tags);
            return mg_fail (error, MGCONN_ERR_OPTION, "Option \"%s\" must be %s, got %s for the tag \"%s\"", name,
                            shape, got, bson_iter_key (&tag));
         }
      }
      bson_iter_document (&sets, &len, &data);
      if (!bson_init_static (&set, data, len)) {
         bson_destroy (&tags);
         return mg_option_bad_value (error, name, it, shape);
      }
      bson_uint32_to_string (n++, &k, key, sizeof key);
      BSON_APPEND_DOCUMENT (&tags, k, &set);
   }
   mongoc_read_prefs_t *rp = mongoc_read_prefs_copy (mongoc_uri_get_read_prefs_t (o->uri));
   mongoc_read_prefs_set_tags (rp, &tags);
   mongoc_uri_set_read_prefs_t (o->uri, rp);
   mongoc_read_prefs_destroy (rp);
   bson_destroy (&tags);
   return 0;
}

/* authMechanismProperties: a document of strings (the string's KEY:value,KEY2:value2); true and false
 * are the strings "true" and "false" there. Values can be secrets (AWS_SESSION_TOKEN): no message
 * shows one. */
static int
apply_auth_mechanism_properties (mg_options *o, const char *name, const bson_iter_t *it, mgconn_error *error)
{
   static const char *const shape = "a table/document of strings (e.g. {\"SERVICE_NAME\": \"mongodb\"})";
   bson_iter_t prop;
   bson_t props = BSON_INITIALIZER;
   bool empty_array = BSON_ITER_HOLDS_ARRAY (it) && bson_iter_recurse (it, &prop) && !bson_iter_next (&prop);
   /* an empty table from Lua arrives as an empty array: no properties */
   if (!empty_array && (!BSON_ITER_HOLDS_DOCUMENT (it) || !bson_iter_recurse (it, &prop))) {
      char got[160];
      describe_value (it, got, sizeof got);
      bson_destroy (&props);
      if (BSON_ITER_HOLDS_UTF8 (it)) {
         bson_snprintf (got, sizeof got, "a string");
      }
      return mg_fail (error, MGCONN_ERR_OPTION, "Option \"%s\" must be %s, got %s", name, shape, got);
   }
   while (!empty_array && bson_iter_next (&prop)) {
      const char *key = bson_iter_key (&prop);
      if (BSON_ITER_HOLDS_UTF8 (&prop)) {
         BSON_APPEND_UTF8 (&props, key, bson_iter_utf8 (&prop, NULL));
      } else if (BSON_ITER_HOLDS_BOOL (&prop)) {
         BSON_APPEND_UTF8 (&props, key, bson_iter_bool (&prop) ? "true" : "false");
      } else {
         bson_destroy (&props);
         return mg_fail (error, MGCONN_ERR_OPTION,
                         "Option \"%s\" must be %s, got a value that is not a string for the property \"%s\"",
                         name, shape, key);
      }
   }
   bool ok = mongoc_uri_set_mechanism_properties (o->uri, &props);
   bson_destroy (&props);
   return ok ? 0 : mg_fail (error, MGCONN_ERR_OPTION, "Option \"%s\" could not be applied", name);
}

int
mg_option_apply_special (mg_options *o, const char *name, const bson_iter_t *it, mgconn_error *error)
{
   int64_t v;
   if (strcasecmp (name, "minPoolSize") == 0) {
      if (!mg_option_get_int (it, &v) || v < 0 || v > INT32_MAX) {
         return mg_option_bad_value (error, name, it, "an integer from 0 to 2147483647");
      }
      o->min_pool_size = (int32_t) v;
   } else if (strcasecmp (name, "family") == 0) {
      if (!mg_option_get_int (it, &v) || (v != 4 && v != 6)) {
         return mg_option_bad_value (error, name, it, "4 (IPv4 only) or 6 (IPv6 only)");
      }
      o->family = (int32_t) v;
   } else if (strcasecmp (name, "keepAlive") == 0 || strcasecmp (name, "keepAliveInitialDelay") == 0) {
      /* Said once per process (per name): an application that sets it sets it on every connection. */
      static atomic_bool said[2];
      if (!atomic_exchange (&said[strcasecmp (name, "keepAlive") == 0 ? 0 : 1], true)) {
         mg_option_warn (o, "Option \"%s\" is deprecated and ignored: TCP keep-alive is always on", name);
      }
   } else if (strcasecmp (name, "readPreferenceTags") == 0) {
      return apply_read_preference_tags (o, name, it, error);
   } else if (strcasecmp (name, "authMechanismProperties") == 0) {
      return apply_auth_mechanism_properties (o, name, it, error);
   } else if (strcasecmp (name, "gssapiServiceName") == 0) {
      /* libmongoc's deprecated spelling: in the string it is ignored once authMechanismProperties
       * holds a SERVICE_NAME, which the parsed URI always does for GSSAPI, so as an option it could
       * only be ignored or differ: refused, naming the spelling that works both ways. */
      return mg_fail (error, MGCONN_ERR_OPTION,
                      "Option \"gssapiServiceName\" is deprecated and not taken as an option: use "
                      "authMechanismProperties with SERVICE_NAME (e.g. {\"SERVICE_NAME\": \"%s\"})",
                      BSON_ITER_HOLDS_UTF8 (it) ? bson_iter_utf8 (it, NULL) : "mongodb");
   } else if (strcasecmp (name, "maxStalenessSeconds") == 0) {
      /* as in the string: -1 is "no maximum", 0 and other negatives are refused (libmongoc only warns) */
      if (!mg_option_get_int (it, &v) || v == 0 || v < -1 || v > INT32_MAX) {
         return mg_option_bad_value (error, name, it, "a number of seconds (90 or more), or -1 for no maximum");
      }
      mongoc_uri_set_option_as_int32 (o->uri, MONGOC_URI_MAXSTALENESSSECONDS, (int32_t) v);
      mongoc_read_prefs_t *rp = mongoc_read_prefs_copy (mongoc_uri_get_read_prefs_t (o->uri));
      mongoc_read_prefs_set_max_staleness_seconds (rp, v);
      mongoc_uri_set_read_prefs_t (o->uri, rp);
      mongoc_read_prefs_destroy (rp);
   } else if (strcasecmp (name, "wtimeoutMS") == 0) {
      if (!mg_option_get_int (it, &v) || v < 0 || v > INT32_MAX) {
         return mg_option_bad_value (error, name, it, "an integer from 0 to 2147483647");
      }
      mongoc_uri_set_option_as_int64 (o->uri, MONGOC_URI_WTIMEOUTMS, v);
      /* the string's wtimeoutMS is the write concern's: libmongoc builds it only while parsing */
      mongoc_write_concern_t *wc = mongoc_write_concern_copy (mongoc_uri_get_write_concern (o->uri));
      mongoc_write_concern_set_wtimeout_int64 (wc, v);
      mongoc_uri_set_write_concern (o->uri, wc);
      mongoc_write_concern_destroy (wc);
   } else if (strcasecmp (name, "safe") == 0) {
      if (!BSON_ITER_HOLDS_BOOL (it)) {
         return mg_option_bad_value (error, name, it, "true or false");
      }
      mongoc_uri_set_option_as_bool (o->uri, MONGOC_URI_SAFE, bson_iter_bool (it));
      mongoc_write_concern_t *wc = mongoc_write_concern_copy (mongoc_uri_get_write_concern (o->uri));
      mongoc_write_concern_set_w (wc, bson_iter_bool (it) ? 1 : MONGOC_WRITE_CONCERN_W_UNACKNOWLEDGED);
      mongoc_uri_set_write_concern (o->uri, wc);
      mongoc_write_concern_destroy (wc);
   } else if (strcasecmp (name, "readPreference") == 0) {
      static const char *const modes[] = {"primary", "primaryPreferred", "secondary", "secondaryPreferred",
                                          "nearest"};
      static const mongoc_read_mode_t values[] = {MONGOC_READ_PRIMARY, MONGOC_READ_PRIMARY_PREFERRED,
                                                  MONGOC_READ_SECONDARY, MONGOC_READ_SECONDARY_PREFERRED,
                                                  MONGOC_READ_NEAREST};
      const char *s = BSON_ITER_HOLDS_UTF8 (it) ? bson_iter_utf8 (it, NULL) : NULL;
      size_t i;
      for (i = 0; s && i < 5; i++) {
         if (strcasecmp (s, modes[i]) == 0) {
            break;
         }
      }
      if (!s || i == 5) {
         return mg_option_bad_value (error, name, it,
                           "one of \"primary\", \"primaryPreferred\", \"secondary\", \"secondaryPreferred\", \"nearest\"");
      }
      /* the mode only: tags and maxStalenessSeconds given before it stay */
      mongoc_read_prefs_t *rp = mongoc_read_prefs_copy (mongoc_uri_get_read_prefs_t (o->uri));
      mongoc_read_prefs_set_mode (rp, values[i]);
      mongoc_uri_set_read_prefs_t (o->uri, rp);
      mongoc_uri_set_option_as_utf8 (o->uri, MONGOC_URI_READPREFERENCE, s);
      mongoc_read_prefs_destroy (rp);
   } else if (strcasecmp (name, "w") == 0 || strcasecmp (name, "journal") == 0) {
      mongoc_write_concern_t *wc = mongoc_write_concern_copy (mongoc_uri_get_write_concern (o->uri));
      if (strcasecmp (name, "journal") == 0) {
         if (!BSON_ITER_HOLDS_BOOL (it)) {
            mongoc_write_concern_destroy (wc);
            return mg_option_bad_value (error, name, it, "true or false");
         }
         mongoc_write_concern_set_journal (wc, bson_iter_bool (it));
         mongoc_uri_set_option_as_bool (o->uri, MONGOC_URI_JOURNAL, bson_iter_bool (it));
      } else if (mg_option_get_int (it, &v) && v >= 0 && v <= INT32_MAX) {
         mongoc_write_concern_set_w (wc, (int32_t) v);
         set_uri_w (o->uri, (int32_t) v, NULL);
      } else if (BSON_ITER_HOLDS_UTF8 (it) && strcasecmp (bson_iter_utf8 (it, NULL), "majority") == 0) {
         mongoc_write_concern_set_w (wc, MONGOC_WRITE_CONCERN_W_MAJORITY);
         set_uri_w (o->uri, 0, "majority");
      } else if (BSON_ITER_HOLDS_UTF8 (it) && bson_iter_utf8 (it, NULL)[0]) {
         mongoc_write_concern_set_wtag (wc, bson_iter_utf8 (it, NULL));
         set_uri_w (o->uri, 0, bson_iter_utf8 (it, NULL));
      } else {
         mongoc_write_concern_destroy (wc);
         return mg_option_bad_value (error, name, it, "a number of servers (0 or more), \"majority\" or a tag set name");
      }
      mongoc_uri_set_write_concern (o->uri, wc);
      mongoc_write_concern_destroy (wc);
   }
   return 0;
}
