/*
 * test_options.c: every bad option is an OptionError that names it, raised before anything starts;
 * and a password never appears in any error, event or log line.
 */
#include "harness.h"
#include "connection.h" /* white box: what libmongoc receives */

#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
   const char *uri;
   const char *opts_json;
   const char *must_mention[3];
} bad_case;

/* Refused at the call, with an OptionError whose message names every string in must_mention;
 * nothing is created and nothing is dispatched later. */
static void
expect_refused (mgconn_runtime *rt, const bad_case *c)
{
   mgconn_connection *conn = (mgconn_connection *) 0x1;
   mgconn_error e;
   bson_error_t be;
   bson_t *opts = c->opts_json ? bson_new_from_json ((const uint8_t *) c->opts_json, -1, &be) : NULL;
   int rc;
   mgconn_error_init (&e);
   rc = mgconn_connection_new (&conn, rt, c->uri, opts ? bson_get_data (opts) : NULL, opts ? opts->len : 0, &e);
   CHECK (rc == -MGCONN_ERR_OPTION, "%s %s: rc %d (%s)", c->uri, c->opts_json ? c->opts_json : "", rc, e.message);
   CHECK (e.category == MGCONN_ERR_OPTION, "category %s", mgconn_error_category_name (e.category));
   CHECK (conn == NULL, "a connection was created anyway");
   for (int i = 0; i < 3 && c->must_mention[i]; i++) {
      CHECK (strstr (e.message, c->must_mention[i]), "message does not mention \"%s\": %s", c->must_mention[i],
             e.message);
   }
   CHECK (mgconn_last_error ()->category == MGCONN_ERR_OPTION &&
             strcmp (mgconn_last_error ()->message, e.message) == 0,
          "mgconn_last_error() does not hold the same error");
   fprintf (stderr, "   refused: %s\n", e.message);
   mgconn_error_cleanup (&e);
   if (opts) {
      bson_destroy (opts);
   }
}

static void
test_bad_options_are_option_errors_naming_the_option (void)
{
   mgconn_runtime *rt = runtime_new ();
   const bad_case cases[] = {
      {"mongodb://127.0.0.1:1/x", "{\"bufferComands\": true}", {"bufferComands", "bufferCommands"}},
      {"mongodb://127.0.0.1:1/x", "{\"frobnicate\": 1}", {"frobnicate"}},
      {"mongodb://127.0.0.1:1/x", "{\"serverSelectionTimeoutMS\": \"soon\"}", {"serverSelectionTimeoutMS", "integer", "soon"}},
      {"mongodb://127.0.0.1:1/x", "{\"heartbeatFrequencyMS\": 100}", {"heartbeatFrequencyMS", "500", "100"}},
      {"mongodb://127.0.0.1:1/x?heartbeatFrequencyMS=100", NULL, {"heartbeatfrequencyms", "500"}},
      {"mongodb://127.0.0.1:1/x", "{\"family\": 5}", {"family", "4", "6"}},
      {"mongodb://127.0.0.1:1/x?family=5", NULL, {"family", "5"}},
      {"mongodb://127.0.0.1:1/x", "{\"bufferCommands\": \"yes\"}", {"bufferCommands", "true or false"}},
      {"mongodb://127.0.0.1:1/x", "{\"maxPoolSize\": 0}", {"maxPoolSize", "from 1"}},
      {"mongodb://127.0.0.1:1/x", "{\"maxAdaptiveRetries\": -1}", {"maxAdaptiveRetries", "from 0"}},
      {"mongodb://127.0.0.1:1/x", "{\"enableOverloadRetargeting\": 1}", {"enableOverloadRetargeting", "true or false"}},
      {"mongodb://127.0.0.1:1/x", "{\"readPreference\": \"sometimes\"}", {"readPreference", "secondaryPreferred"}},
      {"mongodb://127.0.0.1:1/x", "{\"readPreference\": \"secondary\", \"autoIndex\": true}", {"autoIndex", "secondary"}},
      {"mongodb://127.0.0.1:1/x", "{\"minPoolSize\": 5, \"maxPoolSize\": 2}", {"minPoolSize", "maxPoolSize"}},
      {"mongodb://127.0.0.1:1/x", "{\"w\": -1}", {"\"w\""}},
      {"mongodb://127.0.0.1:1/x", "{\"pass\": \"p\"}", {"pass", "user"}},
      {"mongodb://127.0.0.1:1/x", "{\"readPreference\": \"nearest\", \"readPreferenceTags\": {\"dc\": \"ny\"}}",
       {"readPreferenceTags", "a list of tag sets", "a table/document"}},
      {"mongodb://127.0.0.1:1/x", "{\"readPreference\": \"nearest\", \"readPreferenceTags\": [\"dc:ny\"]}",
       {"readPreferenceTags", "a list of tag sets", "position 0"}},
      {"mongodb://127.0.0.1:1/x", "{\"readPreference\": \"nearest\", \"readPreferenceTags\": [{\"dc\": 1}]}",
       {"readPreferenceTags", "of strings", "\"dc\""}},
      {"mongodb://127.0.0.1:1/x", "{\"readPreferenceTags\": [{\"dc\": \"ny\"}]}", {"readPreferenceTags", "primary"}},
      {"mongodb://127.0.0.1:1/x", "{\"maxStalenessSeconds\": 120}", {"maxStalenessSeconds", "primary"}},
      {"mongodb://127.0.0.1:1/x", "{\"authMechanismProperties\": \"SERVICE_NAME:x\"}",
       {"authMechanismProperties", "a table/document of strings", "got a string"}},
      {"mongodb://127.0.0.1:1/x", "{\"authMechanismProperties\": {\"SERVICE_NAME\": 5}}",
       {"authMechanismProperties", "\"SERVICE_NAME\""}},
      {"mongodb://127.0.0.1:1/x", "{\"authMechanism\": \"BOGUS\"}", {"authMechanism", "SCRAM-SHA-256"}},
      {"mongodb://127.0.0.1:1/x", "{\"gssapiServiceName\": \"other\"}", {"gssapiServiceName", "authMechanismProperties", "SERVICE_NAME"}},
      {"mongodb://127.0.0.1:1/x", "{\"tlsInsecure\": true, \"tlsAllowInvalidCertificates\": true}", {"tlsinsecure", "tlsallowinvalidcertificates"}},
      {"postgres://127.0.0.1/x", NULL, {"Invalid connection string", "postgres"}},
      {"mongodb://", NULL, {"Invalid connection string"}},
      {"mongodb://127.0.0.1:99999/x", NULL, {"Invalid connection string"}},
      /* an unescaped "@" in the password: refused, naming the fix, quoting no part of the string */
      {"mongodb://bob:s3cr@t@127.0.0.1:1/x", NULL, {"unescaped \"@\"", "percent-encode"}},
   };
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      expect_refused (rt, &cases[i]);
   }
   /* Nothing was started: no event, no log line, nothing to dispatch. */
   CHECK (mgconn_runtime_dispatch (rt, 0) == 0, "something was dispatched after refused connections");
   mgconn_runtime_free (rt);
}

static void
test_options_are_case_insensitive_and_beat_the_uri (void)
{
   mgconn_runtime *rt = runtime_new ();
   recorder r;
   int64_t t0 = now_ms ();
   char uri[160];
   int i;
   /* The URI says 30 s; the options say 500 ms, spelled in another case. */
   snprintf (uri, sizeof uri, "mongodb://127.0.0.1:%d/x?serverSelectionTimeoutMS=30000", closed_port ());
   mgconn_connection *conn = conn_new (rt, uri, "{\"SERVERSELECTIONTIMEOUTMS\": 500, \"keepAlive\": true, \"maxAdaptiveRetries\": 3, "
                                         "\"enableOverloadRetargeting\": true}");
   recorder_attach (&r, conn);
   i = wait_event (rt, &r, "error", 0, 5000);
   CHECK (i >= 0 && now_ms () - t0 < 2500, "the option did not beat the URI: error after %lld ms",
          (long long) (now_ms () - t0));
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   recorder_reset (&r);
}

typedef struct {
   char text[16384];
} capture;

static void
capture_log (int32_t level, const char *domain, const char *message, void *ud)
{
   capture *c = ud;
   (void) level;
   strncat (c->text, domain, sizeof c->text - strlen (c->text) - 1);
   strncat (c->text, ": ", sizeof c->text - strlen (c->text) - 1);
   strncat (c->text, message, sizeof c->text - strlen (c->text) - 1);
   strncat (c->text, "\n", sizeof c->text - strlen (c->text) - 1);
}

static void
capture_error (capture *c, const mgconn_error *e)
{
   const uint8_t *data;
   size_t len;
   bson_t reason;
   if (!e) {
      return;
   }
   strncat (c->text, e->message, sizeof c->text - strlen (c->text) - 1);
   strncat (c->text, "\n", sizeof c->text - strlen (c->text) - 1);
   mgconn_error_reason (e, &data, &len);
   if (bson_init_static (&reason, data, len)) {
      char *json = bson_as_relaxed_extended_json (&reason, NULL);
      strncat (c->text, json, sizeof c->text - strlen (c->text) - 1);
      bson_free (json);
   }
}

static void
test_password_appears_in_no_error_event_or_log_line (void)
{
   const char *secret = "Sup3rS3cretPa55";
   mgconn_runtime *rt = runtime_new ();
   capture cap;
   recorder r;
   char uri[256];
   mgconn_error e;
   mgconn_connection *conn = NULL;
   mgconn_op *op = NULL;
   int port = closed_port ();
   memset (&cap, 0, sizeof cap);
   mgconn_runtime_set_log_handler (rt, capture_log, &cap);
   mgconn_error_init (&e);

   /* A refused URI that carries the password, a refused option next to it, a malformed one. */
   snprintf (uri, sizeof uri, "mongodb://ada:%s@127.0.0.1:%d/x?bufferCommands=false&serverSelectionTimeoutMS=500", secret, port);
   mgconn_connection_new (&conn, rt, uri, NULL, 0, &e); /* accepted, with a warning about bufferCommands */
   CHECK (conn != NULL, "refused: %s", e.message);
   recorder_attach (&r, conn);
   snprintf (uri, sizeof uri, "mongodb://ada:%s@127.0.0.1:%d/x?heartbeatFrequencyMS=100", secret, port);
   {
      mgconn_connection *bad = NULL;
      CHECK (mgconn_connection_new (&bad, rt, uri, NULL, 0, &e) != 0, "heartbeatFrequencyMS=100 accepted");
      capture_error (&cap, &e);
      snprintf (uri, sizeof uri, "mongodb://ada:%s@127.0.0.1:99999/x", secret);
      CHECK (mgconn_connection_new (&bad, rt, uri, NULL, 0, &e) != 0, "malformed URI accepted");
      capture_error (&cap, &e);
      capture_error (&cap, mgconn_last_error ());
      /* found by fuzzing (tests/fuzz/regressions/options/password-after-slash): userinfo after a '/' */
      snprintf (uri, sizeof uri, "mongodb+srv://cluster//ada:%s@127.0.0.1,localhost:27018/app", secret);
      CHECK (mgconn_connection_new (&bad, rt, uri, NULL, 0, &e) != 0, "malformed URI accepted");
      capture_error (&cap, &e);
      snprintf (uri, sizeof uri, "mongodb://127.0.0.1:%d/x", port);
      bson_t *opts = BCON_NEW ("user", "ada", "pass", secret, "serverSelectionTimeoutMS", BCON_INT32 (400),
                               "frobnicate", BCON_INT32 (1));
      CHECK (mgconn_connection_new (&bad, rt, uri, bson_get_data (opts), opts->len, &e) != 0, "frobnicate accepted");
      capture_error (&cap, &e);
      bson_destroy (opts);
      /* And a wrong type for `pass` itself: the message must not echo the value. */
      opts = BCON_NEW ("user", "ada", "pass", BCON_INT32 (12345));
      CHECK (mgconn_connection_new (&bad, rt, uri, bson_get_data (opts), opts->len, &e) != 0, "int pass accepted");
      CHECK (!strstr (e.message, "12345"), "the wrong-typed pass was echoed: %s", e.message);
      bson_destroy (opts);
      /* authMechanismProperties can carry a secret (AWS_SESSION_TOKEN): a wrong shape echoes no value */
      opts = BCON_NEW ("authMechanism", "MONGODB-AWS", "authMechanismProperties", "{", "AWS_SESSION_TOKEN", secret,
                       "PORT", BCON_INT32 (1), "}");
      CHECK (mgconn_connection_new (&bad, rt, uri, bson_get_data (opts), opts->len, &e) != 0, "int property accepted");
      CHECK (strstr (e.message, "\"authMechanismProperties\"") && strstr (e.message, "\"PORT\""),
             "the message does not name the option and the property: %s", e.message);
      capture_error (&cap, &e);
      bson_destroy (opts);
      {
         char text[128];
         bson_snprintf (text, sizeof text, "AWS_SESSION_TOKEN:%s", secret);
         opts = BCON_NEW ("authMechanismProperties", text);
      }
      CHECK (mgconn_connection_new (&bad, rt, uri, bson_get_data (opts), opts->len, &e) != 0, "string properties accepted");
      CHECK (strstr (e.message, "a table/document of strings"), "the message does not say the shape: %s", e.message);
      capture_error (&cap, &e);
      bson_destroy (opts);
   }
   /* The connection with the password fails to connect; its operation fails too. */
   CHECK (mgconn_run_command (&op, conn, NULL, bson_get_data (&(bson_t) BSON_INITIALIZER), 5, NULL, NULL) != 0,
          "an empty command was accepted");
   {
      bson_t *cmd = BCON_NEW ("ping", BCON_INT32 (1));
      CHECK (mgconn_run_command (&op, conn, NULL, bson_get_data (cmd), cmd->len, NULL, NULL) == 0, "run_command");
      bson_destroy (cmd);
   }
   CHECK (wait_event (rt, &r, "error", 0, 5000) >= 0, "no error event");
   mgconn_op_wait (op, 5000);
   capture_error (&cap, mgconn_op_error (op));
   for (int i = 0; i < r.n; i++) {
      capture_error (&cap, &r.errors[i]);
   }
   mgconn_op_free (op);
   mgconn_connection_free (conn);
   mgconn_runtime_dispatch (rt, 0);

   fprintf (stderr, "   captured %zu bytes of errors, events and log lines\n", strlen (cap.text));
   CHECK (strstr (cap.text, "ada:****@") != NULL, "the masked URI is not in the output:\n%s", cap.text);
   CHECK (strstr (cap.text, "bufferCommands") != NULL, "no warning about bufferCommands in the URI:\n%s", cap.text);
   CHECK (strstr (cap.text, secret) == NULL, "the password leaked:\n%s", cap.text);
   mgconn_error_cleanup (&e);
   mgconn_runtime_free (rt);
   recorder_reset (&r);
}

/* The values libmongoc is given when the user says nothing, or says 0 for "no socket timeout". */
static void
test_driver_receives_mongoose_defaults (void)
{
   struct {
      const char *uri, *opts_json, *key;
      int32_t expect;
   } cases[] = {
      {"mongodb://127.0.0.1/x", NULL, MONGOC_URI_SOCKETTIMEOUTMS, INT32_MAX},
      {"mongodb://127.0.0.1/x?socketTimeoutMS=0", NULL, MONGOC_URI_SOCKETTIMEOUTMS, INT32_MAX},
      {"mongodb://127.0.0.1/x", "{\"socketTimeoutMS\": 0}", MONGOC_URI_SOCKETTIMEOUTMS, INT32_MAX},
      {"mongodb://127.0.0.1/x?socketTimeoutMS=1234", NULL, MONGOC_URI_SOCKETTIMEOUTMS, 1234},
      {"mongodb://127.0.0.1/x?socketTimeoutMS=1234", "{\"socketTimeoutMS\": 99}", MONGOC_URI_SOCKETTIMEOUTMS, 99},
      {"mongodb://127.0.0.1/x", NULL, MONGOC_URI_CONNECTTIMEOUTMS, 30000},
      {"mongodb://127.0.0.1/x", NULL, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 30000},
      {"mongodb://127.0.0.1/x", NULL, MONGOC_URI_HEARTBEATFREQUENCYMS, 10000},
      {"mongodb://127.0.0.1/x", NULL, MONGOC_URI_MAXPOOLSIZE, 100},
      {"mongodb://127.0.0.1/x?maxPoolSize=7", NULL, MONGOC_URI_MAXPOOLSIZE, 7},
   };
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      mg_options o;
      mgconn_error e;
      bson_error_t be;
      bson_t *opts = cases[i].opts_json ? bson_new_from_json ((const uint8_t *) cases[i].opts_json, -1, &be) : NULL;
      bson_t empty = BSON_INITIALIZER;
      mgconn_error_init (&e);
      CHECK (mg_options_parse (&o, cases[i].uri, opts ? opts : &empty, &e) == 0, "%s: %s", cases[i].uri, e.message);
      int32_t got = mongoc_uri_get_option_as_int32 (o.uri, cases[i].key, -1);
      CHECK (got == cases[i].expect, "%s %s: %s is %d, expected %d", cases[i].uri,
             cases[i].opts_json ? cases[i].opts_json : "", cases[i].key, got, cases[i].expect);
      mg_options_cleanup (&o);
      if (opts) {
         bson_destroy (opts);
      }
   }
}

/* Every connection string option works as an option too, and gives libmongoc the same. */
static void
test_connection_string_options_work_as_options (void)
{
   const char *opts_json = "{\"readConcernLevel\": \"majority\", \"compressors\": \"zlib\", "
                           "\"socketCheckIntervalMS\": 1234, \"serverSelectionTryOnce\": false}";
   bson_error_t be;
   bson_t *opts = bson_new_from_json ((const uint8_t *) opts_json, -1, &be);
   mg_options o;
   mgconn_error e;
   mgconn_error_init (&e);
   CHECK (opts, "%s", be.message);
   CHECK (mg_options_parse (&o, "mongodb://127.0.0.1/x", opts, &e) == 0, "refused: %s", e.message);
   const char *level = mongoc_read_concern_get_level (mongoc_uri_get_read_concern (o.uri));
   CHECK (level && strcmp (level, "majority") == 0, "readConcernLevel not applied");
   CHECK (bson_has_field (mongoc_uri_get_compressors (o.uri), "zlib"), "compressors not applied");
   CHECK (mongoc_uri_get_option_as_int32 (o.uri, MONGOC_URI_SOCKETCHECKINTERVALMS, -1) == 1234,
          "socketCheckIntervalMS not applied");
   CHECK (!mongoc_uri_get_option_as_bool (o.uri, MONGOC_URI_SERVERSELECTIONTRYONCE, true),
          "serverSelectionTryOnce not applied");
   mg_options_cleanup (&o);
   bson_destroy (opts);
}

static int
compare_keys (const void *a, const void *b)
{
   return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* The URI's options as JSON, keys sorted: which option came first is no difference to libmongoc. */
static char *
sorted_options_json (const bson_t *options)
{
   const char *keys[128];
   size_t n = 0;
   bson_iter_t it;
   bson_t sorted = BSON_INITIALIZER;
   if (bson_iter_init (&it, options)) {
      while (n < 128 && bson_iter_next (&it)) {
         keys[n++] = bson_iter_key (&it);
      }
   }
   qsort (keys, n, sizeof keys[0], compare_keys);
   for (size_t i = 0; i < n; i++) {
      if (bson_iter_init_find (&it, options, keys[i])) {
         bson_append_iter (&sorted, keys[i], -1, &it);
      }
   }
   char *json = bson_as_canonical_extended_json (&sorted, NULL);
   bson_destroy (&sorted);
   return json;
}

/* Everything libmongoc reads from a URI when it makes a client, as one line to compare. */
static char *
driver_view (const mongoc_uri_t *uri)
{
   const mongoc_read_prefs_t *rp = mongoc_uri_get_read_prefs_t (uri);
   const mongoc_write_concern_t *wc = mongoc_uri_get_write_concern (uri);
   const mongoc_read_concern_t *rc = mongoc_uri_get_read_concern (uri);
   char *opts = sorted_options_json (mongoc_uri_get_options (uri));
   bson_t props;
   char *prop_json = mongoc_uri_get_mechanism_properties (uri, &props) ? bson_as_canonical_extended_json (&props, NULL)
                                                                       : bson_strdup ("-");
   const char *user = mongoc_uri_get_username (uri), *pass = mongoc_uri_get_password (uri);
   const char *mech = mongoc_uri_get_auth_mechanism (uri);
   char *cred = bson_strdup_printf ("user %s pass %s mechanism %s source %s properties %s", user ? user : "-",
                                    pass ? pass : "-", mech ? mech : "-", mongoc_uri_get_auth_source (uri), prop_json);
   bson_free (prop_json);
   char *tags = bson_as_canonical_extended_json (mongoc_read_prefs_get_tags (rp), NULL);
   char *comp = bson_as_canonical_extended_json (mongoc_uri_get_compressors (uri), NULL);
   const char *level = mongoc_read_concern_get_level (rc), *wtag = mongoc_write_concern_get_wtag (wc);
   char *view = bson_strdup_printf (
      "options %s | credentials %s | readPrefs mode %d tags %s maxStaleness %lld | writeConcern w %d wtag %s "
      "journal %s wtimeout %lld | readConcern %s | compressors %s",
      opts, cred, (int) mongoc_read_prefs_get_mode (rp), tags,
      (long long) mongoc_read_prefs_get_max_staleness_seconds (rp), (int) mongoc_write_concern_get_w (wc),
      wtag ? wtag : "-", mongoc_write_concern_journal_is_set (wc) ? (mongoc_write_concern_get_journal (wc) ? "true" : "false") : "-",
      (long long) mongoc_write_concern_get_wtimeout_int64 (wc), level ? level : "-", comp);
   bson_free (opts);
   bson_free (cred);
   bson_free (tags);
   bson_free (comp);
   return view;
}

/* One connection string option, written both ways: base + "&" + in_uri, or base with the options
 * document in_opts. */
typedef struct {
   const char *base, *in_uri, *in_opts;
} both_ways;

static int
parse_view (const char *uri, const char *opts_json, char **view, char *why, size_t why_size)
{
   bson_error_t be;
   bson_t empty = BSON_INITIALIZER;
   bson_t *opts = opts_json ? bson_new_from_json ((const uint8_t *) opts_json, -1, &be) : NULL;
   mg_options o;
   mgconn_error e;
   int rc;
   CHECK (!opts_json || opts, "bad test JSON %s: %s", opts_json, be.message);
   mgconn_error_init (&e);
   rc = mg_options_parse (&o, uri, opts ? opts : &empty, &e);
   if (rc == 0) {
      *view = driver_view (o.uri);
      mg_options_cleanup (&o);
   } else {
      *view = NULL;
      bson_snprintf (why, why_size, "%s", e.message);
   }
   mgconn_error_cleanup (&e);
   if (opts) {
      bson_destroy (opts);
   }
   return rc;
}

/* Every option libmongoc 2.5 takes in a connection string (mongoc-uri.h's MONGOC_URI_* names) has,
 * given as an option, the same effect on the driver's URI; or both ways are refused. */
static void
test_every_uri_option_has_the_same_effect_as_an_option (void)
{
   static const char *const plain = "mongodb://127.0.0.1/x?";
   static const char *const user = "mongodb://ada:pw@127.0.0.1/x?";
   const both_ways cases[] = {
      {plain, "appname=app1", "{\"appname\": \"app1\"}"},
      {plain, "appName=app%201", "{\"appName\": \"app 1\"}"},
      {user, "authMechanism=SCRAM-SHA-256", "{\"authMechanism\": \"SCRAM-SHA-256\"}"},
      {user, "authMechanism=PLAIN", "{\"authMechanism\": \"PLAIN\"}"},
      {"mongodb://ada@127.0.0.1/x?authMechanism=GSSAPI&", "authMechanismProperties=SERVICE_NAME:other,CANONICALIZE_HOST_NAME:true",
       "{\"authMechanismProperties\": {\"SERVICE_NAME\": \"other\", \"CANONICALIZE_HOST_NAME\": \"true\"}}"},
      {"mongodb://ada@127.0.0.1/x?authMechanism=GSSAPI&", "authMechanismProperties=CANONICALIZE_HOST_NAME:false",
       "{\"authMechanismProperties\": {\"CANONICALIZE_HOST_NAME\": \"false\"}}"},
      {"mongodb://127.0.0.1/x?authMechanism=MONGODB-AWS&", "authMechanismProperties=AWS_SESSION_TOKEN:tok3n",
       "{\"authMechanismProperties\": {\"AWS_SESSION_TOKEN\": \"tok3n\"}}"},
      {user, "authSource=admin", "{\"authSource\": \"admin\"}"},
      {plain, "connectTimeoutMS=1234", "{\"connectTimeoutMS\": 1234}"},
      {plain, "compressors=zlib,snappy", "{\"compressors\": \"zlib,snappy\"}"},
      {plain, "directConnection=true", "{\"directConnection\": true}"},
      {plain, "heartbeatFrequencyMS=600", "{\"heartbeatFrequencyMS\": 600}"},
      {plain, "journal=true", "{\"journal\": true}"},
      {plain, "journal=false", "{\"journal\": false}"},
      {plain, "loadBalanced=true", "{\"loadBalanced\": true}"},
      {plain, "localThresholdMS=20", "{\"localThresholdMS\": 20}"},
      {plain, "maxPoolSize=7", "{\"maxPoolSize\": 7}"},
      {"mongodb://127.0.0.1/x?readPreference=secondary&", "maxStalenessSeconds=120", "{\"maxStalenessSeconds\": 120}"},
      {plain, "readConcernLevel=majority", "{\"readConcernLevel\": \"majority\"}"},
      {plain, "readPreference=secondaryPreferred", "{\"readPreference\": \"secondaryPreferred\"}"},
      {plain, "readPreference=nearest&readPreferenceTags=dc:ny,rack:1&readPreferenceTags=",
       "{\"readPreference\": \"nearest\", \"readPreferenceTags\": [{\"dc\": \"ny\", \"rack\": \"1\"}, {}]}"},
      {"mongodb://127.0.0.1/x?readPreference=secondary&", "readPreferenceTags=dc:ny",
       "{\"readPreferenceTags\": [{\"dc\": \"ny\"}]}"},
      {plain, "replicaSet=rs0", "{\"replicaSet\": \"rs0\"}"},
      {plain, "retryReads=false", "{\"retryReads\": false}"},
      {plain, "retryWrites=false", "{\"retryWrites\": false}"},
      {plain, "maxAdaptiveRetries=3", "{\"maxAdaptiveRetries\": 3}"},
      {plain, "enableOverloadRetargeting=true", "{\"enableOverloadRetargeting\": true}"},
      {plain, "safe=false", "{\"safe\": false}"},
      {plain, "serverMonitoringMode=poll", "{\"serverMonitoringMode\": \"poll\"}"},
      {plain, "serverSelectionTimeoutMS=1500", "{\"serverSelectionTimeoutMS\": 1500}"},
      {plain, "serverSelectionTryOnce=false", "{\"serverSelectionTryOnce\": false}"},
      {plain, "socketCheckIntervalMS=1234", "{\"socketCheckIntervalMS\": 1234}"},
      {plain, "socketTimeoutMS=4321", "{\"socketTimeoutMS\": 4321}"},
      {plain, "tls=true", "{\"tls\": true}"},
      {plain, "ssl=true", "{\"ssl\": true}"},
      {plain, "tlsCertificateKeyFile=%2Fetc%2Fclient.pem", "{\"tlsCertificateKeyFile\": \"/etc/client.pem\"}"},
      {plain, "tlsCertificateKeyFilePassword=k3y", "{\"tlsCertificateKeyFilePassword\": \"k3y\"}"},
      {plain, "tlsCAFile=%2Fetc%2Fca.pem", "{\"tlsCAFile\": \"/etc/ca.pem\"}"},
      {plain, "tlsAllowInvalidCertificates=true", "{\"tlsAllowInvalidCertificates\": true}"},
      {plain, "tlsAllowInvalidHostnames=true", "{\"tlsAllowInvalidHostnames\": true}"},
      {plain, "tlsInsecure=true", "{\"tlsInsecure\": true}"},
      {plain, "tlsDisableCertificateRevocationCheck=true", "{\"tlsDisableCertificateRevocationCheck\": true}"},
      {plain, "tlsDisableOCSPEndpointCheck=true", "{\"tlsDisableOCSPEndpointCheck\": true}"},
      {plain, "w=2", "{\"w\": 2}"},
      {plain, "w=0", "{\"w\": 0}"},
      {plain, "w=majority", "{\"w\": \"majority\"}"},
      {plain, "w=dcs", "{\"w\": \"dcs\"}"},
      {plain, "waitQueueTimeoutMS=50", "{\"waitQueueTimeoutMS\": 50}"},
      {plain, "wtimeoutMS=2500", "{\"wtimeoutMS\": 2500}"},
      {plain, "w=majority&wtimeoutMS=2500&journal=true", "{\"w\": \"majority\", \"wtimeoutMS\": 2500, \"journal\": true}"},
      {plain, "zlibCompressionLevel=6", "{\"zlibCompressionLevel\": 6}"},
      {plain, "sslClientCertificateKeyFile=%2Fetc%2Fc.pem", "{\"sslClientCertificateKeyFile\": \"/etc/c.pem\"}"},
      {plain, "sslCertificateAuthorityFile=%2Fetc%2Fca.pem", "{\"sslCertificateAuthorityFile\": \"/etc/ca.pem\"}"},
      {plain, "sslAllowInvalidCertificates=true", "{\"sslAllowInvalidCertificates\": true}"},
      {plain, "sslAllowInvalidHostnames=true", "{\"sslAllowInvalidHostnames\": true}"},
      {plain, "canonicalizeHostname=true", "{\"canonicalizeHostname\": true}"},
      {plain, "sslClientCertificateKeyPassword=k3y", "{\"sslClientCertificateKeyPassword\": \"k3y\"}"},
      {"mongodb+srv://cluster.example.com/x?", "srvServiceName=custom", "{\"srvServiceName\": \"custom\"}"},
      {"mongodb+srv://cluster.example.com/x?", "srvMaxHosts=2", "{\"srvMaxHosts\": 2}"},
      /* refused both ways */
      {plain, "srvServiceName=custom", "{\"srvServiceName\": \"custom\"}"},
      {plain, "srvMaxHosts=2", "{\"srvMaxHosts\": 2}"},
      {"mongodb+srv://cluster.example.com/x?replicaSet=rs0&", "srvMaxHosts=2", "{\"srvMaxHosts\": 2}"},
      {"mongodb://127.0.0.1,127.0.0.2/x?", "directConnection=true", "{\"directConnection\": true}"},
      {"mongodb://127.0.0.1/x?replicaSet=rs0&", "loadBalanced=true", "{\"loadBalanced\": true}"},
      {"mongodb://127.0.0.1/x?tlsInsecure=true&", "tlsAllowInvalidHostnames=true", "{\"tlsAllowInvalidHostnames\": true}"},
      {plain, "authMechanism=SCRAM-SHA-256", "{\"authMechanism\": \"SCRAM-SHA-256\"}"},
      {"mongodb://127.0.0.1/x?authMechanism=MONGODB-AWS&", "authMechanismProperties=FROB:1", "{\"authMechanismProperties\": {\"FROB\": \"1\"}}"},
      {plain, "maxStalenessSeconds=120", "{\"maxStalenessSeconds\": 120}"},
      {plain, "readPreferenceTags=dc:ny", "{\"readPreferenceTags\": [{\"dc\": \"ny\"}]}"},
      {plain, "authMechanism=BOGUS", "{\"authMechanism\": \"BOGUS\"}"},
   };
   int differ = 0;
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      char uri_form[512], opts_base[512], why_uri[512] = "", why_opts[512] = "";
      char *view_uri, *view_opts;
      size_t blen = strlen (cases[i].base);
      bson_snprintf (uri_form, sizeof uri_form, "%s%s", cases[i].base, cases[i].in_uri);
      /* the base without its trailing '?' or '&' */
      bson_snprintf (opts_base, sizeof opts_base, "%.*s", (int) (blen - 1), cases[i].base);
      int rc_uri = parse_view (uri_form, NULL, &view_uri, why_uri, sizeof why_uri);
      int rc_opts = parse_view (opts_base, cases[i].in_opts, &view_opts, why_opts, sizeof why_opts);
      if ((rc_uri == 0) != (rc_opts == 0)) {
         fprintf (stderr, "   DIFFERENT %s vs %s: %s | %s\n", cases[i].in_uri, cases[i].in_opts,
                  rc_uri ? why_uri : "accepted in the string", rc_opts ? why_opts : "accepted as an option");
         differ++;
      } else if (rc_uri == 0 && strcmp (view_uri, view_opts) != 0) {
         fprintf (stderr, "   DIFFERENT %s\n      in the string: %s\n      as an option:  %s\n", cases[i].in_uri,
                  view_uri, view_opts);
         differ++;
      }
      bson_free (view_uri);
      bson_free (view_opts);
   }
   CHECK (differ == 0, "%d of %zu connection string options differ when given as options", differ,
          sizeof cases / sizeof cases[0]);
}

static const test_case tests[] = {
   {"driver_defaults", test_driver_receives_mongoose_defaults},
   {"bad_options", test_bad_options_are_option_errors_naming_the_option},
   {"options_beat_uri", test_options_are_case_insensitive_and_beat_the_uri},
   {"password_redacted", test_password_appears_in_no_error_event_or_log_line},
   {"uri_options_as_options", test_connection_string_options_work_as_options},
   {"every_uri_option_as_option", test_every_uri_option_has_the_same_effect_as_an_option},
   {NULL, NULL},
};

int
main (int argc, char **argv)
{
   return run_tests (argc, argv, tests);
}
