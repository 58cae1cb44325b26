/*
 * options.c: one table of every option a connection accepts, and the checks that make a bad one an
 * OptionError naming it before anything connects. A value's own checks and the options that take
 * more than one setter are in option_values.c; the connection string read as text, in uri_text.c.
 *
 * Names are MongoDB's canonical URI option names and Mongoose's own, matched case-insensitively.
 * mgconn's own options never reach libmongoc; in the connection string they are ignored with a
 * warning (libmongoc would only warn about them and keep them in its URI text).
 */
#include "connection.h"
#include "option_values.h"
#include "uri_text.h"

#include <ctype.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

/* libmongoc's validation of a URI's options as a whole. Not in its public header but exported (1.23
 * and 2.5): its own comment asks for it to be called after options are set explicitly. */
bool mongoc_uri_finalize (mongoc_uri_t *uri, bson_error_t *error);

typedef enum {
   OPT_OWN_BOOL,   /* mgconn's own, bool */
   OPT_OWN_INT,    /* mgconn's own, integer */
   OPT_OWN_STRING, /* mgconn's own, string */
   OPT_BOOL,       /* libmongoc, bool */
   OPT_INT,        /* libmongoc, int32 */
   OPT_STRING,     /* libmongoc, string */
   OPT_SPECIAL     /* handled by name below */
} opt_type;

typedef struct {
   const char *name;       /* as users write it */
   const char *driver_key; /* libmongoc's MONGOC_URI_* key, or NULL */
   opt_type type;
   int64_t min, max;
   size_t field;           /* offsetof (mg_options, ...) for own options */
} opt_def;

#define OWN(n, t, f) {n, NULL, t, 0, INT32_MAX, offsetof (mg_options, f)}
#define DRV(n, k, t, lo, hi) {n, k, t, lo, hi, 0}

static const opt_def options[] = {
   OWN ("bufferCommands", OPT_OWN_BOOL, buffer_commands),
   OWN ("bufferTimeoutMS", OPT_OWN_INT, buffer_timeout_ms),
   OWN ("autoIndex", OPT_OWN_BOOL, auto_index),
   OWN ("autoCreate", OPT_OWN_BOOL, auto_create),
   OWN ("dbName", OPT_OWN_STRING, db_name),
   OWN ("user", OPT_OWN_STRING, db_name), /* field unused: applied to the URI */
   OWN ("pass", OPT_OWN_STRING, db_name), /* field unused: applied to the URI */
   OWN ("debug", OPT_OWN_BOOL, debug),
   OWN ("resendInterrupted", OPT_OWN_BOOL, resend_interrupted),
   OWN ("maxOpenCursors", OPT_OWN_INT, max_open_cursors),
   DRV ("maxPoolSize", MONGOC_URI_MAXPOOLSIZE, OPT_INT, 1, INT32_MAX),
   DRV ("minPoolSize", NULL, OPT_SPECIAL, 0, INT32_MAX),
   DRV ("socketTimeoutMS", MONGOC_URI_SOCKETTIMEOUTMS, OPT_INT, 0, INT32_MAX),
   DRV ("connectTimeoutMS", MONGOC_URI_CONNECTTIMEOUTMS, OPT_INT, 1, INT32_MAX),
   DRV ("serverSelectionTimeoutMS", MONGOC_URI_SERVERSELECTIONTIMEOUTMS, OPT_INT, 1, INT32_MAX),
   DRV ("heartbeatFrequencyMS", MONGOC_URI_HEARTBEATFREQUENCYMS, OPT_INT, 500, INT32_MAX),
   DRV ("waitQueueTimeoutMS", MONGOC_URI_WAITQUEUETIMEOUTMS, OPT_INT, 0, INT32_MAX),
   DRV ("localThresholdMS", MONGOC_URI_LOCALTHRESHOLDMS, OPT_INT, 0, INT32_MAX),
   DRV ("zlibCompressionLevel", MONGOC_URI_ZLIBCOMPRESSIONLEVEL, OPT_INT, -1, 9),
   DRV ("wtimeoutMS", NULL, OPT_SPECIAL, 0, INT32_MAX),
   DRV ("maxStalenessSeconds", NULL, OPT_SPECIAL, -1, INT32_MAX),
   DRV ("safe", NULL, OPT_SPECIAL, 0, 1),
   DRV ("readPreferenceTags", NULL, OPT_SPECIAL, 0, 0),
   DRV ("authMechanismProperties", NULL, OPT_SPECIAL, 0, 0),
   DRV ("gssapiServiceName", NULL, OPT_SPECIAL, 0, 0),
   DRV ("authSource", MONGOC_URI_AUTHSOURCE, OPT_STRING, 0, 0),
   DRV ("authMechanism", MONGOC_URI_AUTHMECHANISM, OPT_STRING, 0, 0),
   DRV ("replicaSet", MONGOC_URI_REPLICASET, OPT_STRING, 0, 0),
   DRV ("appName", MONGOC_URI_APPNAME, OPT_STRING, 0, 0),
   DRV ("compressors", MONGOC_URI_COMPRESSORS, OPT_STRING, 0, 0),
   DRV ("readConcernLevel", MONGOC_URI_READCONCERNLEVEL, OPT_STRING, 0, 0),
   DRV ("tlsCAFile", MONGOC_URI_TLSCAFILE, OPT_STRING, 0, 0),
   DRV ("tlsCertificateKeyFile", MONGOC_URI_TLSCERTIFICATEKEYFILE, OPT_STRING, 0, 0),
   DRV ("tlsCertificateKeyFilePassword", MONGOC_URI_TLSCERTIFICATEKEYFILEPASSWORD, OPT_STRING, 0, 0),
   DRV ("tls", MONGOC_URI_TLS, OPT_BOOL, 0, 1),
   DRV ("ssl", MONGOC_URI_SSL, OPT_BOOL, 0, 1),
   DRV ("tlsAllowInvalidCertificates", MONGOC_URI_TLSALLOWINVALIDCERTIFICATES, OPT_BOOL, 0, 1),
   DRV ("tlsAllowInvalidHostnames", MONGOC_URI_TLSALLOWINVALIDHOSTNAMES, OPT_BOOL, 0, 1),
   DRV ("tlsInsecure", MONGOC_URI_TLSINSECURE, OPT_BOOL, 0, 1),
   DRV ("directConnection", MONGOC_URI_DIRECTCONNECTION, OPT_BOOL, 0, 1),
   DRV ("retryWrites", MONGOC_URI_RETRYWRITES, OPT_BOOL, 0, 1),
   DRV ("retryReads", MONGOC_URI_RETRYREADS, OPT_BOOL, 0, 1),
   DRV ("loadBalanced", MONGOC_URI_LOADBALANCED, OPT_BOOL, 0, 1),
   /* Retries of operations a server refused as overloaded (SystemOverloadedError), libmongoc 2.3. */
   DRV ("maxAdaptiveRetries", MONGOC_URI_MAXADAPTIVERETRIES, OPT_INT, 0, INT32_MAX),
   DRV ("enableOverloadRetargeting", MONGOC_URI_ENABLEOVERLOADRETARGETING, OPT_BOOL, 0, 1),
   DRV ("readPreference", NULL, OPT_SPECIAL, 0, 0),
   DRV ("w", NULL, OPT_SPECIAL, 0, 0),
   DRV ("journal", NULL, OPT_SPECIAL, 0, 1),
   DRV ("family", NULL, OPT_SPECIAL, 4, 6),
   DRV ("keepAlive", NULL, OPT_SPECIAL, 0, 0),
   DRV ("keepAliveInitialDelay", NULL, OPT_SPECIAL, 0, 0),
};

static const opt_def *
find_option (const char *name)
{
   for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
      if (strcasecmp (options[i].name, name) == 0) {
         return &options[i];
      }
   }
   return NULL;
}

size_t
mg_edit_distance (const char *a, const char *b)
{
   size_t la = strlen (a), lb = strlen (b), prev[64], cur[64];
   if (la >= 63 || lb >= 63) {
      return 99;
   }
   for (size_t j = 0; j <= lb; j++) {
      prev[j] = j;
   }
   for (size_t i = 1; i <= la; i++) {
      cur[0] = i;
      for (size_t j = 1; j <= lb; j++) {
         size_t sub = prev[j - 1] + (tolower ((unsigned char) a[i - 1]) != tolower ((unsigned char) b[j - 1]));
         size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
         cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
      }
      memcpy (prev, cur, sizeof cur);
   }
   return prev[lb];
}

static int
unknown_option (mgconn_error *error, const char *name)
{
   const char *best = NULL;
   size_t best_d = 4;
   for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
      size_t d = mg_edit_distance (name, options[i].name);
      if (d < best_d) {
         best_d = d;
         best = options[i].name;
      }
   }
   if (best) {
      return mg_fail (error, MGCONN_ERR_OPTION, "Unknown option \"%s\": did you mean \"%s\"?", name, best);
   }
   return mg_fail (error, MGCONN_ERR_OPTION,
                   "Unknown option \"%s\": accepted are MongoDB's connection string options "
                   "(e.g. serverSelectionTimeoutMS, maxPoolSize) and bufferCommands, bufferTimeoutMS, "
                   "autoIndex, autoCreate, dbName, user, pass, debug, resendInterrupted, maxOpenCursors",
                   name);
}

/* A connection string option of libmongoc's that the table above does not list (socketCheckIntervalMS,
 * serverSelectionTryOnce, srvServiceName, ...): as an option it works as it does in the string. */
static int
apply_other_uri_option (mg_options *o, const char *name, const bson_iter_t *it, mgconn_error *error)
{
   int64_t v;
   bool ok;
   if (mongoc_uri_option_is_bool (name)) {
      if (!BSON_ITER_HOLDS_BOOL (it)) {
         return mg_option_bad_value (error, name, it, "true or false");
      }
      ok = mongoc_uri_set_option_as_bool (o->uri, name, bson_iter_bool (it));
   } else if (mongoc_uri_option_is_int32 (name)) {
      if (!mg_option_get_int (it, &v) || v < INT32_MIN || v > INT32_MAX) {
         return mg_option_bad_value (error, name, it, "an integer");
      }
      ok = mongoc_uri_option_is_int64 (name) ? mongoc_uri_set_option_as_int64 (o->uri, name, v)
                                             : mongoc_uri_set_option_as_int32 (o->uri, name, (int32_t) v);
   } else if (mongoc_uri_option_is_utf8 (name)) {
      if (!BSON_ITER_HOLDS_UTF8 (it)) {
         return mg_option_bad_value (error, name, it, "a string");
      }
      ok = mongoc_uri_set_option_as_utf8 (o->uri, name, bson_iter_utf8 (it, NULL));
   } else {
      return unknown_option (error, name);
   }
   return ok ? 0 : mg_fail (error, MGCONN_ERR_OPTION, "Option \"%s\" could not be applied", name);
}

static int
apply_option (mg_options *o, const char *name, const bson_iter_t *it, bool *set_user, bool *set_pass,
              mgconn_error *error)
{
   const opt_def *def = find_option (name);
   int64_t v;
   char accepted[96];
   if (!def) {
      return apply_other_uri_option (o, name, it, error);
   }
   switch (def->type) {
   case OPT_OWN_BOOL:
   case OPT_BOOL:
      if (!BSON_ITER_HOLDS_BOOL (it)) {
         return mg_option_bad_value (error, def->name, it, "true or false");
      }
      if (def->type == OPT_OWN_BOOL) {
         *(int *) ((char *) o + def->field) = bson_iter_bool (it) ? 1 : 0;
      } else if (!mongoc_uri_set_option_as_bool (o->uri, def->driver_key, bson_iter_bool (it))) {
         return mg_fail (error, MGCONN_ERR_OPTION, "Option \"%s\" could not be applied", def->name);
      }
      return 0;
   case OPT_OWN_INT:
   case OPT_INT:
      bson_snprintf (accepted, sizeof accepted, "an integer from %lld to %lld", (long long) def->min,
                     (long long) def->max);
      if (!mg_option_get_int (it, &v) || v < def->min || v > def->max) {
         return mg_option_bad_value (error, def->name, it, accepted);
      }
      if (def->type == OPT_OWN_INT) {
         *(int32_t *) ((char *) o + def->field) = (int32_t) v;
      } else if (!mongoc_uri_set_option_as_int32 (o->uri, def->driver_key, (int32_t) v)) {
         return mg_fail (error, MGCONN_ERR_OPTION, "Option \"%s\" could not be applied with the value %lld",
                         def->name, (long long) v);
      }
      return 0;
   case OPT_OWN_STRING:
   case OPT_STRING:
      if (!BSON_ITER_HOLDS_UTF8 (it)) {
         return mg_option_bad_value (error, def->name, it, "a string");
      }
      if (strcasecmp (def->name, "dbName") == 0) {
         bson_free (o->db_name);
         o->db_name = bson_strdup (bson_iter_utf8 (it, NULL));
      } else if (strcasecmp (def->name, "user") == 0) {
         mongoc_uri_set_username (o->uri, bson_iter_utf8 (it, NULL));
         *set_user = true;
      } else if (strcasecmp (def->name, "pass") == 0) {
         bson_free (o->password);
         o->password = bson_strdup (bson_iter_utf8 (it, NULL));
         mongoc_uri_set_password (o->uri, o->password);
         *set_pass = true;
      } else if (strcasecmp (def->name, "authSource") == 0) {
         mongoc_uri_set_auth_source (o->uri, bson_iter_utf8 (it, NULL));
      } else if (strcasecmp (def->name, "authMechanism") == 0) {
         static const char *const mechanisms[] = {"SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN", "MONGODB-X509",
                                                  "GSSAPI", "MONGODB-AWS", "MONGODB-OIDC"};
         size_t m = 0;
         while (m < 7 && strcasecmp (mechanisms[m], bson_iter_utf8 (it, NULL)) != 0) {
            m++;
         }
         if (m == 7) {
            return mg_option_bad_value (error, def->name, it,
                              "one of \"SCRAM-SHA-1\", \"SCRAM-SHA-256\", \"PLAIN\", \"MONGODB-X509\", \"GSSAPI\", "
                              "\"MONGODB-AWS\", \"MONGODB-OIDC\"");
         }
         mongoc_uri_set_auth_mechanism (o->uri, bson_iter_utf8 (it, NULL));
      } else if (strcasecmp (def->name, "compressors") == 0) {
         /* not a plain string option to libmongoc: its own setter checks each name */
         if (!mongoc_uri_set_compressors (o->uri, bson_iter_utf8 (it, NULL))) {
            return mg_option_bad_value (error, def->name, it, "a comma-separated list of \"snappy\", \"zlib\", \"zstd\"");
         }
      } else if (strcasecmp (def->name, "readConcernLevel") == 0) {
         mongoc_read_concern_t *rc = mongoc_read_concern_new ();
         mongoc_read_concern_set_level (rc, bson_iter_utf8 (it, NULL));
         mongoc_uri_set_read_concern (o->uri, rc);
         mongoc_read_concern_destroy (rc);
      } else if (strcasecmp (def->name, "tlsCertificateKeyFilePassword") == 0) {
         mongoc_uri_set_option_as_utf8 (o->uri, def->driver_key, bson_iter_utf8 (it, NULL));
      } else if (!mongoc_uri_set_option_as_utf8 (o->uri, def->driver_key, bson_iter_utf8 (it, NULL))) {
         return mg_fail (error, MGCONN_ERR_OPTION, "Option \"%s\" could not be applied", def->name);
      }
      return 0;
   case OPT_SPECIAL:
   default:
      return mg_option_apply_special (o, def->name, it, error);
   }
}

static void
set_default_int (mg_options *o, const char *key, int32_t value)
{
   if (!mongoc_uri_has_option (o->uri, key)) {
      mongoc_uri_set_option_as_int32 (o->uri, key, value);
   }
}

/* socketTimeoutMS 0 means "no timeout" (the default, as in Mongoose and the connection string
 * spec). libmongoc reads a stored 0 as "use my default" (300000 ms: measured on 1.23), so 0,
 * given or defaulted, is stored as the largest timeout it takes (24.8 days). */
static void
set_no_socket_timeout_for_zero (mg_options *o)
{
   const bson_t *given = mongoc_uri_get_options (o->uri);
   bson_iter_t it;
   if (given && bson_iter_init_find_case (&it, given, MONGOC_URI_SOCKETTIMEOUTMS) && bson_iter_as_int64 (&it) != 0) {
      return;
   }
   mongoc_uri_set_option_as_int32 (o->uri, MONGOC_URI_SOCKETTIMEOUTMS, INT32_MAX);
}

int
mg_options_parse (mg_options *o, const char *uri, const bson_t *opts, mgconn_error *error)
{
   bson_error_t be;
   bson_t extra = BSON_INITIALIZER;
   bson_iter_t it;
   char *stripped;
   bool set_user = false, set_pass = false;
   int rc = 0;
   const mongoc_host_list_t *hosts;

   memset (o, 0, sizeof *o);
   o->buffer_commands = o->auto_index = o->auto_create = o->debug = o->resend_interrupted = -1;
   o->buffer_timeout_ms = o->max_open_cursors = -1;
   o->warnings = mg_strbuf_new (NULL);
   o->uri_text = bson_strdup (uri);
   o->password = mg_uri_text_password (uri);
   o->uri_redacted = mg_redact (uri);

   if (mg_uri_text_has_unescaped_at (uri)) {
      rc = mg_fail (error, MGCONN_ERR_OPTION,
                    "Invalid connection string: the user name or password contains an unescaped \"@\"; "
                    "percent-encode the user name and password (\"@\" becomes %%40, as every reserved "
                    "character becomes %%XX)");
      goto done;
   }
   stripped = mg_uri_text_strip_options (o, uri, &extra);
   /* libmongoc's complaints about the string become this connection's warnings (shown once it
    * opens) or are already in the error below: they do not go to every runtime's log. */
   mg_log_capture_begin (o->warnings);
   o->uri = mongoc_uri_new_with_error (stripped, &be);
   mg_log_capture_end ();
   bson_free (stripped);
   if (!o->uri) {
      char *detail = mg_redact_as_uri_secrets (be.message, uri);
      bson_free (o->uri_redacted);
      o->uri_redacted = mg_redact_bad_uri (uri);
      rc = mg_fail (error, MGCONN_ERR_OPTION, "Invalid connection string \"%s\": %s", o->uri_redacted, detail);
      bson_free (detail);
      goto done;
   }

   /* Values given in the options beat the connection string's; the extra ones come from it. */
   if (bson_iter_init (&it, &extra)) {
      while (rc == 0 && bson_iter_next (&it)) {
         rc = apply_option (o, bson_iter_key (&it), &it, &set_user, &set_pass, error);
      }
   }
   if (rc == 0 && opts && bson_iter_init (&it, opts)) {
      while (rc == 0 && bson_iter_next (&it)) {
         rc = apply_option (o, bson_iter_key (&it), &it, &set_user, &set_pass, error);
      }
   }
   if (rc != 0) {
      goto done;
   }
   /* The checks libmongoc makes on the string's options as a whole (tlsInsecure with
    * tlsAllowInvalidCertificates, directConnection with several seeds, loadBalanced with replicaSet,
    * srvServiceName without mongodb+srv, an authMechanism's needs): made again on the options, here
    * rather than when the first worker makes the client pool (libmongoc runs the same function on
    * the pool's URI then, and the pool would only be invalid). */
   if (opts && !bson_empty (opts) && !mongoc_uri_finalize (o->uri, &be)) {
      rc = mg_fail (error, MGCONN_ERR_OPTION, "Invalid options: %s", be.message);
      goto done;
   }
   if (!mongoc_read_prefs_is_valid (mongoc_uri_get_read_prefs_t (o->uri))) {
      rc = mg_fail (error, MGCONN_ERR_OPTION,
                    "Options \"readPreferenceTags\" and \"maxStalenessSeconds\" need a readPreference other than "
                    "\"primary\" (the default)");
      goto done;
   }
   if (set_pass && !set_user && !mongoc_uri_get_username (o->uri)) {
      rc = mg_fail (error, MGCONN_ERR_OPTION, "Option \"pass\" needs a user: set \"user\" or put it in the URI");
      goto done;
   }

   /* mgconn's defaults where they differ from libmongoc's (Mongoose's values). */
   set_no_socket_timeout_for_zero (o);
   set_default_int (o, MONGOC_URI_CONNECTTIMEOUTMS, 30000);
   set_default_int (o, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 30000);
   set_default_int (o, MONGOC_URI_HEARTBEATFREQUENCYMS, 10000);
   set_default_int (o, MONGOC_URI_MAXPOOLSIZE, 100);
   o->max_pool_size = mongoc_uri_get_option_as_int32 (o->uri, MONGOC_URI_MAXPOOLSIZE, 100);
   o->server_selection_timeout_ms = mongoc_uri_get_option_as_int32 (o->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 30000);
   if (o->min_pool_size > o->max_pool_size) {
      rc = mg_fail (error, MGCONN_ERR_OPTION, "Option \"minPoolSize\" (%d) must not be larger than maxPoolSize (%d)",
                    o->min_pool_size, o->max_pool_size);
      goto done;
   }

   {
      const mongoc_read_prefs_t *rp = mongoc_uri_get_read_prefs_t (o->uri);
      mongoc_read_mode_t mode = rp ? mongoc_read_prefs_get_mode (rp) : MONGOC_READ_PRIMARY;
      if (mode == MONGOC_READ_SECONDARY || mode == MONGOC_READ_SECONDARY_PREFERRED) {
         if (o->auto_index == 1 || o->auto_create == 1) {
            rc = mg_fail (error, MGCONN_ERR_OPTION,
                          "Option \"%s\" cannot be true with readPreference \"%s\": indexes and collections are "
                          "created on the primary",
                          o->auto_index == 1 ? "autoIndex" : "autoCreate",
                          mode == MONGOC_READ_SECONDARY ? "secondary" : "secondaryPreferred");
            goto done;
         }
         o->auto_index = o->auto_create = 0;
      }
   }

   if (!o->db_name) {
      const char *db = mongoc_uri_get_database (o->uri);
      o->db_name = bson_strdup (db && *db ? db : "test");
   }
   hosts = mongoc_uri_get_hosts (o->uri);
   o->first_host = bson_strdup (hosts ? hosts->host : "");
   o->first_port = hosts ? hosts->port : 0;

done:
   bson_destroy (&extra);
   if (rc != 0) {
      /* Whatever the message quotes (an option's name or value as it was given), it shows none of the
       * connection string's password candidates: the thread's last error and `error` alike. */
      mgconn_error masked;
      char *text;
      mgconn_error_init (&masked);
      mgconn_error_copy (&masked, mgconn_last_error ());
      text = mg_redact_as_uri_secrets (masked.message, uri);
      bson_strncpy (masked.message, text, sizeof masked.message);
      bson_free (text);
      mg_error_raise (&masked, error);
      mgconn_error_cleanup (&masked);
      mg_options_cleanup (o);
   }
   return rc;
}

void
mg_options_cleanup (mg_options *o)
{
   if (o->uri) {
      mongoc_uri_destroy (o->uri);
   }
   bson_free (o->password);
   bson_free (o->uri_text);
   bson_free (o->uri_redacted);
   bson_free (o->db_name);
   bson_free (o->first_host);
   if (o->warnings) {
      mg_strbuf_free (o->warnings, true);
   }
   memset (o, 0, sizeof *o);
}
