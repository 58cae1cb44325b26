/*
 * test_options.c: every bad option is an OptionError that names it, raised before anything starts;
 * and a password never appears in any error, event or log line.
 */
#include "harness.h"
#include "connection.h" /* white box: what libmongoc receives */

#include <limits.h>
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

static const test_case tests[] = {
   {"driver_defaults", test_driver_receives_mongoose_defaults},
   {"bad_options", test_bad_options_are_option_errors_naming_the_option},
   {"options_beat_uri", test_options_are_case_insensitive_and_beat_the_uri},
   {"password_redacted", test_password_appears_in_no_error_event_or_log_line},
   {"uri_options_as_options", test_connection_string_options_work_as_options},
   {NULL, NULL},
};

int
main (int argc, char **argv)
{
   return run_tests (argc, argv, tests);
}
