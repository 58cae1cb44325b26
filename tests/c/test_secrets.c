/*
 * test_secrets.c: what mgconn masks, against a FerretDB with authentication, with debug lines on and
 * every log line, event and error message collected. A password that is an ordinary word is masked
 * where it is a password (the connection string), not wherever the word appears; the commands the
 * command-monitoring rules redact (createUser, saslStart, a hello with speculativeAuthenticate)
 * show only their name.
 */
#include "harness.h"

#include <string.h>

typedef struct {
   char text[32768];
} capture;

static void
collect (capture *c, const char *what, const char *line)
{
   size_t used = strlen (c->text);
   snprintf (c->text + used, sizeof c->text - used, "%s: %s\n", what, line);
}

static void
on_log (int32_t level, const char *domain, const char *message, void *ud)
{
   collect (ud, domain, message);
}

static capture out;

static mgconn_op *
command (mgconn_connection *conn, const char *json_text)
{
   mgconn_op *op = NULL;
   bson_t *cmd = json (json_text);
   CHECK (mgconn_run_command (&op, conn, "admin", bson_get_data (cmd), cmd->len, NULL, NULL) == 0, "run_command");
   bson_destroy (cmd);
   CHECK (mgconn_op_wait (op, 15000) != MGCONN_OP_PENDING, "%s did not finish", json_text);
   if (mgconn_op_error (op)) {
      collect (&out, "error", mgconn_op_error (op)->message);
   }
   return op;
}

static mgconn_runtime *
debug_runtime (void)
{
   mgconn_runtime *rt = runtime_new ();
   bson_t *on = json ("{\"debug\": true}");
   mgconn_runtime_set_log_handler (rt, on_log, &out);
   CHECK (mgconn_runtime_set (rt, bson_get_data (on), on->len, NULL) == 0, "debug on");
   bson_destroy (on);
   return rt;
}

static void
collect_events (const recorder *r)
{
   collect (&out, "events", recorder_sequence (r));
   for (int i = 0; i < r->n; i++) {
      if (r->errors[i].message[0]) {
         collect (&out, r->names[i], r->errors[i].message);
      }
   }
}

/* The password is "items": the collection called items keeps its name in messages and lines. */
static void
test_a_common_word_password_is_masked_only_where_it_is_a_password (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   mgconn_collection *items;
   mgconn_op *op;
   recorder r;
   char uri[256];
   bson_t *doc = json ("{\"_id\": 1, \"note\": \"items in stock\"}");
   memset (&out, 0, sizeof out);
   server_start_with_user (&s, "ada", "items");
   rt = debug_runtime ();
   snprintf (uri, sizeof uri, "mongodb://ada:items@127.0.0.1:%d/admin?authSource=admin", s.port);
   conn = conn_new (rt, uri, NULL);
   recorder_attach (&r, conn);
   items = coll_of (conn, "items");
   for (int i = 0; i < 2; i++) {
      CHECK (mgconn_collection_insert_one (&op, items, bson_get_data (doc), doc->len, NULL, 0, NULL, NULL) == 0, "insert");
      if (i == 0) {
         expect_ok (op, "the first insert");
      } else {
         collect (&out, "error", expect_failure (op, MGCONN_ERR_DUPLICATE_KEY, "the second insert"));
      }
      mgconn_op_free (op);
   }
   mgconn_runtime_dispatch (rt, 0);
   collect_events (&r);
   fprintf (stderr, "%s", out.text);
   CHECK (strstr (out.text, "admin.items"), "the duplicate key error does not name admin.items:\n%s", out.text);
   CHECK (strstr (out.text, "mgconn: items.insert_one({\"_id\": 1, \"note\": \"items in stock\"}"),
          "the debug line is not the document as given:\n%s", out.text);
   CHECK (!strstr (out.text, "****"), "something was masked that is no password:\n%s", out.text);

   /* Where it is a password, it is masked: a refused connection string quoting it. */
   {
      mgconn_connection *bad = NULL;
      mgconn_error err;
      char bad_uri[256];
      mgconn_error_init (&err);
      snprintf (bad_uri, sizeof bad_uri, "mongodb://ada:items@127.0.0.1:99999/admin");
      CHECK (mgconn_connection_new (&bad, rt, bad_uri, NULL, 0, &err) != 0, "a bad port was accepted");
      CHECK (strstr (err.message, "ada:****@") && !strstr (err.message, "items"), "%s", err.message);
      mgconn_error_cleanup (&err);
   }
   bson_destroy (doc);
   mgconn_collection_free (items);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   recorder_reset (&r);
   server_cleanup (&s);
}

/* createUser's pwd, a SASL exchange's payload and a hello's speculativeAuthenticate never appear,
 * in debug lines, logs, events or errors; the lines still name the command. */
static void
test_redacted_commands_show_only_their_name (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   recorder r;
   char uri[256];
   /* base64 of "\0ada\0bluebird", SASL PLAIN's payload for ada with the password bluebird */
   const char *payload = "AGFkYQBibHVlYmlyZA==";
   memset (&out, 0, sizeof out);
   server_start_with_user (&s, "ada", "bluebird");
   rt = debug_runtime ();
   snprintf (uri, sizeof uri, "mongodb://ada:bluebird@127.0.0.1:%d/admin?authSource=admin", s.port);
   conn = conn_new (rt, uri, NULL);
   recorder_attach (&r, conn);
   mgconn_op_free (command (conn, "{\"createUser\": \"carol\", \"pwd\": \"sparrow\", \"roles\": []}"));
   mgconn_op_free (command (conn, "{\"updateUser\": \"carol\", \"pwd\": \"starling\"}"));
   mgconn_op_free (command (conn, "{\"saslStart\": 1, \"mechanism\": \"PLAIN\", \"payload\": {\"$binary\": "
                                  "{\"base64\": \"AGFkYQBibHVlYmlyZA==\", \"subType\": \"00\"}}}"));
   mgconn_op_free (command (conn, "{\"hello\": 1, \"speculativeAuthenticate\": {\"saslStart\": 1, \"mechanism\": "
                                  "\"PLAIN\", \"payload\": \"AGFkYQBibHVlYmlyZA==\", \"db\": \"$external\"}}"));
   mgconn_op_free (command (conn, "{\"ping\": 1, \"comment\": \"sparrow\"}"));
   mgconn_runtime_dispatch (rt, 0);
   collect_events (&r);
   fprintf (stderr, "%s", out.text);
   CHECK (strstr (out.text, "admin.run_command({\"createUser\": \"[redacted]\"})") ||
             strstr (out.text, "admin.runCommand({\"createUser\": \"[redacted]\"})"),
          "no redacted createUser line:\n%s", out.text);
   CHECK (strstr (out.text, "({\"saslStart\": \"[redacted]\"})"), "no redacted saslStart line:\n%s", out.text);
   CHECK (strstr (out.text, "({\"hello\": \"[redacted]\"})"), "no redacted hello line:\n%s", out.text);
   /* An ordinary command is printed as it is, even when it quotes a word that is a password elsewhere. */
   CHECK (strstr (out.text, "\"comment\": \"sparrow\""), "the ping's line is not as given:\n%s", out.text);
   {
      /* everything but the ping's own line */
      char *ping_line = strstr (out.text, "\"comment\": \"sparrow\"");
      char *rest = ping_line ? ping_line + strlen ("\"comment\": \"sparrow\"") : out.text;
      CHECK (!strstr (rest, "sparrow") && !memmem (out.text, (size_t) (ping_line - out.text), "sparrow", 7),
             "carol's first password was shown:\n%s", out.text);
   }
   CHECK (!strstr (out.text, "starling"), "carol's second password was shown:\n%s", out.text);
   CHECK (!strstr (out.text, payload), "the SASL payload was shown:\n%s", out.text);
   CHECK (!strstr (out.text, "bluebird"), "the connection's password was shown:\n%s", out.text);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   recorder_reset (&r);
   server_cleanup (&s);
}

static const test_case tests[] = {
   {"common_word_password", test_a_common_word_password_is_masked_only_where_it_is_a_password},
   {"redacted_commands", test_redacted_commands_show_only_their_name},
   {NULL, NULL},
};

int
main (int argc, char **argv)
{
   return run_tests (argc, argv, tests);
}
