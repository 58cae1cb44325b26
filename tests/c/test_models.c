/*
 * test_models.c: schemas, models and the registry — names, overwrite rules, the pluraliser — and
 * each model's init (autoCreate, autoIndex) on open; use_db children and disconnect-all.
 */
#include "harness.h"

#include <string.h>

#define D(j) bson_get_data (j), (j)->len

static void
test_pluralizer_matches_mongoose_for_every_listed_name (void)
{
   static const char *const pairs[][2] = {
      /* behaviour.md's list */
      {"User", "users"}, {"Person", "people"}, {"Mouse", "mice"}, {"Category", "categories"},
      {"Index", "indexes"}, {"Matrix", "matrixes"}, {"Bus", "buses"}, {"Goose", "geese"}, {"Leaf", "leafs"},
      {"Datum", "data"}, {"Octopus", "octopi"}, {"Quiz", "quizzes"}, {"Data", "datas"},
      {"CamelCase", "camelcases"}, {"Sheep1", "sheep1"},
      /* one per rule of the appendix, and the special cases */
      {"Human", "humans"}, {"Woman", "women"}, {"Child", "children"}, {"Ox", "oxen"}, {"Axis", "axes"},
      {"Cactus", "cacti"}, {"Alias", "aliases"}, {"Tomato", "tomatoes"}, {"Medium", "media"},
      {"Analysis", "analyses"}, {"Wife", "wives"}, {"Half", "halves"}, {"Hive", "hives"}, {"Query", "queries"},
      {"Box", "boxes"}, {"Church", "churches"}, {"Knife", "knives"}, {"Louse", "lice"}, {"Bonus", "bonus"},
      {"Sheep", "sheep"}, {"Fish", "fish"}, {"News", "news"}, {"Status", "status"}, {"Game", "games"},
      {"system.profile", "system.profile"}, {"PlayerScore", "playerscores"},
   };
   char buf[64];
   for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
      mgconn_pluralize (pairs[i][0], buf, sizeof buf);
      CHECK (strcmp (buf, pairs[i][1]) == 0, "%s -> %s, Mongoose gives %s", pairs[i][0], buf, pairs[i][1]);
   }
   fprintf (stderr, "   %zu names pluralised as Mongoose does\n", sizeof pairs / sizeof pairs[0]);
}

static mgconn_schema *
schema_of (const char *definition, const char *options)
{
   mgconn_schema *s = NULL;
   bson_t *d = json (definition), *o = options ? json (options) : NULL;
   mgconn_error e;
   mgconn_error_init (&e);
   CHECK (mgconn_schema_new (&s, D (d), o ? bson_get_data (o) : NULL, o ? o->len : 0, &e) == 0, "schema: %s",
          e.message);
   bson_destroy (d);
   if (o) {
      bson_destroy (o);
   }
   return s;
}

static void
test_registry_overwrite_missing_delete_and_isolation (void)
{
   mgconn_runtime *rt = runtime_new ();
   mgconn_connection *a = conn_new (rt, NULL, NULL), *b = conn_new (rt, NULL, NULL);
   mgconn_schema *s1 = schema_of ("{\"name\": \"string\"}", NULL), *s2 = schema_of ("{\"name\": \"string\"}", NULL);
   mgconn_model *m1 = NULL, *again = NULL, *other = NULL;
   mgconn_error e;
   bson_t *overwrite = json ("{\"overwriteModels\": true}");
   mgconn_error_init (&e);

   CHECK (mgconn_connection_model (&m1, a, "User", NULL, NULL, &e) == -MGCONN_ERR_MISSING_SCHEMA, "lookup of nothing");
   CHECK (strcmp (e.message, "Schema hasn't been registered for model \"User\".") == 0, "message: %s", e.message);

   CHECK (mgconn_connection_model (&m1, a, "User", s1, NULL, &e) == 0, "register: %s", e.message);
   CHECK (strcmp (mgconn_collection_name (mgconn_model_collection (m1)), "users") == 0, "collection %s",
          mgconn_collection_name (mgconn_model_collection (m1)));
   CHECK (mgconn_connection_model (&again, a, "User", s1, NULL, &e) == 0 && again == m1, "same schema: not the same model");
   mgconn_model_free (again);
   CHECK (mgconn_connection_model (&again, a, "User", NULL, NULL, &e) == 0 && again == m1, "lookup: not the model");
   mgconn_model_free (again);

   CHECK (mgconn_connection_model (&again, a, "User", s2, NULL, &e) == -MGCONN_ERR_OVERWRITE_MODEL, "overwrite allowed");
   CHECK (strcmp (e.message, "Cannot overwrite `User` model once compiled.") == 0, "message: %s", e.message);

   /* Models of one connection are not visible from another. */
   CHECK (mgconn_connection_model (&other, b, "User", NULL, NULL, &e) == -MGCONN_ERR_MISSING_SCHEMA,
          "a's model is visible from b");

   /* overwriteModels replaces the entry: the old model is no longer what a lookup returns. */
   mgconn_runtime_set (rt, D (overwrite), NULL);
   CHECK (mgconn_connection_model (&again, a, "User", s2, NULL, &e) == 0 && again != m1, "overwrite: %s", e.message);
   mgconn_model_free (again);
   CHECK (mgconn_connection_model (&again, a, "User", NULL, NULL, &e) == 0 && mgconn_model_schema (again) == s2,
          "the registry still returns the old model");
   mgconn_model_free (again);
   CHECK (mgconn_connection_model_count (a) == 1, "%d models registered after a replace", mgconn_connection_model_count (a));

   /* Explicit collection names and the schema's collection option. */
   {
      mgconn_schema *s3 = schema_of ("{}", "{\"collection\": \"people_v2\"}");
      CHECK (mgconn_connection_model (&other, a, "Person", s3, NULL, &e) == 0, "register: %s", e.message);
      CHECK (strcmp (mgconn_collection_name (mgconn_model_collection (other)), "people_v2") == 0, "collection %s",
             mgconn_collection_name (mgconn_model_collection (other)));
      mgconn_model_free (other);
      CHECK (mgconn_connection_model (&other, a, "Mouse", s3, "critters", &e) == 0, "register: %s", e.message);
      CHECK (strcmp (mgconn_collection_name (mgconn_model_collection (other)), "critters") == 0, "explicit name lost");
      mgconn_model_free (other);
      mgconn_schema_free (s3);
   }
   CHECK (mgconn_connection_delete_model (a, "Person") == 0, "delete");
   CHECK (mgconn_connection_model (&other, a, "Person", NULL, NULL, &e) == -MGCONN_ERR_MISSING_SCHEMA, "deleted model found");
   CHECK (mgconn_connection_delete_model (a, "Person") == -MGCONN_ERR_MISSING_SCHEMA, "deleted twice");
   CHECK (strcmp (mgconn_connection_model_name (a, 0), "User") == 0 && strcmp (mgconn_connection_model_name (a, 1), "Mouse") == 0 &&
             mgconn_connection_model_name (a, 2) == NULL,
          "registry order");

   /* pluralization off keeps names as given */
   {
      bson_t *off = json ("{\"pluralization\": false}");
      mgconn_runtime_set (rt, D (off), NULL);
      CHECK (mgconn_connection_model (&other, b, "Goose", s1, NULL, &e) == 0, "register");
      CHECK (strcmp (mgconn_collection_name (mgconn_model_collection (other)), "Goose") == 0, "collection %s",
             mgconn_collection_name (mgconn_model_collection (other)));
      mgconn_model_free (other);
      bson_destroy (off);
   }
   /* bad schema options are refused */
   {
      mgconn_schema *bad = NULL;
      bson_t *o = json ("{\"capped\": \"big\"}");
      CHECK (mgconn_schema_new (&bad, NULL, 0, D (o), &e) == -MGCONN_ERR_OPTION && strstr (e.message, "capped"),
             "capped: \"big\" accepted (%s)", e.message);
      bson_destroy (o);
   }
   mgconn_model_free (m1);
   mgconn_schema_free (s1);
   mgconn_schema_free (s2);
   mgconn_connection_free (a);
   mgconn_connection_free (b);
   mgconn_runtime_free (rt);
   mgconn_error_cleanup (&e);
   bson_destroy (overwrite);
}

typedef struct {
   int events;
   mgconn_error error;
} index_seen;

static void
on_index (mgconn_model *m, const mgconn_event *ev, void *ud)
{
   index_seen *seen = ud;
   (void) m;
   seen->events++;
   if (mgconn_event_error (ev)) {
      mgconn_error_copy (&seen->error, mgconn_event_error (ev));
   }
}

/* A capped schema: the collection exists as capped before the first (buffered) insert lands. */
static void
test_capped_collection_exists_before_the_first_insert (void)
{
   test_server s;
   mgconn_runtime *rt = runtime_new ();
   mgconn_connection *conn;
   mgconn_schema *schema = schema_of ("{\"line\": \"string\"}", "{\"capped\": {\"size\": 4096, \"max\": 3}}");
   mgconn_model *log;
   mgconn_op *ins[5], *init, *list;
   bson_t *cmd = json ("{\"listCollections\": 1, \"filter\": {\"name\": \"logs\"}}");
   index_seen seen = {0};
   bson_t *idx_keys = json ("{\"line\": 1}");
   const char *r;
   server_prepare (&s);
   conn = conn_new (rt, server_uri (&s, "models", NULL), "{\"heartbeatFrequencyMS\": 500}");
   mgconn_schema_index (schema, D (idx_keys), NULL, 0, NULL);
   CHECK (mgconn_connection_model (&log, conn, "Log", schema, NULL, NULL) == 0, "model");
   mgconn_model_on (log, "index", on_index, &seen);
   for (int i = 0; i < 5; i++) {
      char d[32];
      snprintf (d, sizeof d, "{\"line\": \"l%d\"}", i);
      bson_t *doc = json (d);
      mgconn_collection_insert_one (&ins[i], mgconn_model_collection (log), D (doc), NULL, 0, NULL, NULL);
      bson_destroy (doc);
   }
   CHECK (mgconn_model_init (&init, log, NULL, NULL) == 0, "init");
   server_restart (&s); /* the server arrives after everything was issued */
   expect_ok (init, "model init");
   for (int i = 0; i < 5; i++) {
      expect_ok (ins[i], "buffered insert");
      mgconn_op_free (ins[i]);
   }
   mgconn_run_command (&list, conn, NULL, D (cmd), NULL, NULL);
   r = expect_ok (list, "listCollections");
   CHECK (strstr (r, "\"capped\" : true") && strstr (r, "\"max\" : 3"), "not capped: %s", r);
   mgconn_op_free (list);
   /* Had an insert landed first, it would have made an ordinary collection and the create would
    * have failed with NamespaceExists: capped here means autoCreate ran before every insert. */
   mgconn_runtime_dispatch (rt, 0);
   CHECK (seen.events == 1 && seen.error.category == 0, "index events %d, error %s", seen.events, seen.error.message);
   {
      bson_t *li = json ("{\"listIndexes\": \"logs\"}");
      mgconn_run_command (&list, conn, NULL, D (li), NULL, NULL);
      r = expect_ok (list, "listIndexes");
      CHECK (strstr (r, "\"line_1\""), "autoIndex did not build line_1: %s", r);
      mgconn_op_free (list);
      bson_destroy (li);
   }
   mgconn_op_free (init);
   mgconn_model_free (log);
   mgconn_schema_free (schema);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   bson_destroy (cmd);
   bson_destroy (idx_keys);
   server_cleanup (&s);
}

/* An index that cannot be built is reported on the model's index event and through init, never as
 * an unhandled error; the model's operations still work. */
static void
test_index_failure_is_reported_on_the_index_event_and_init (void)
{
   test_server s;
   mgconn_runtime *rt = runtime_new ();
   mgconn_connection *conn;
   mgconn_schema *schema = schema_of ("{}", NULL);
   mgconn_model *m;
   mgconn_op *init, *ins;
   index_seen seen = {0};
   bson_t *keys = json ("{\"email\": 1}"), *unique = json ("{\"unique\": true}");
   bson_t *dup = json ("[{\"email\": \"x\"}, {\"email\": \"x\"}]");
   recorder r;
   server_start (&s);
   conn = conn_new (rt, server_uri (&s, "idxfail", NULL), NULL);
   recorder_attach (&r, conn);
   CHECK (wait_event (rt, &r, "open", 0, 10000) >= 0, "no open");
   {
      /* documents that break the unique index exist first */
      mgconn_collection *raw = coll_of (conn, "accounts");
      mgconn_collection_insert_many (&ins, raw, D (dup), NULL, 0, NULL, NULL);
      expect_ok (ins, "insert duplicates");
      mgconn_op_free (ins);
      mgconn_collection_free (raw);
   }
   mgconn_schema_index (schema, D (keys), D (unique), NULL);
   CHECK (mgconn_connection_model (&m, conn, "Account", schema, NULL, NULL) == 0, "model");
   mgconn_model_on (m, "index", on_index, &seen);
   mgconn_model_init (&init, m, NULL, NULL);
   /* MongoDB says 11000 here, FerretDB a generic error: either way init and the event agree. */
   CHECK (mgconn_op_wait (init, 10000) == MGCONN_OP_FAILED, "init of an unbuildable unique index succeeded");
   fprintf (stderr, "   init failed as expected: [%s] %s\n", mgconn_error_category_name (mgconn_op_error (init)->category),
            mgconn_op_error (init)->message);
   mgconn_runtime_dispatch (rt, 0);
   CHECK (seen.events == 1 && seen.error.category == mgconn_op_error (init)->category &&
             strcmp (seen.error.message, mgconn_op_error (init)->message) == 0,
          "index event: %d, %s", seen.events, seen.error.message);
   mgconn_collection_count_documents (&ins, mgconn_model_collection (m), NULL, 0, NULL, 0, NULL, NULL);
   expect_ok (ins, "count on the model after a failed init");
   mgconn_op_free (ins);
   mgconn_op_free (init);
   mgconn_model_free (m);
   mgconn_schema_free (schema);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   bson_destroy (keys);
   bson_destroy (unique);
   bson_destroy (dup);
   recorder_reset (&r);
   server_cleanup (&s);
}

static void
test_use_db_cache_registries_and_events (void)
{
   test_server s;
   mgconn_runtime *rt = runtime_new ();
   mgconn_connection *conn, *t1, *t1_again, *t1_fresh, *t2;
   mgconn_schema *schema = schema_of ("{}", NULL);
   mgconn_model *m1, *m2, *found;
   recorder parent, child;
   mgconn_op *op;
   bson_t *doc = json ("{\"tenant\": 1}");
   server_start (&s);
   /* The server is held stopped until the children exist: they are made while their parent is
    * connecting (on a loaded machine the open could otherwise finish first, and a child made after
    * its parent's `open` rightly never hears it). */
   server_pause (&s);
   conn = conn_new (rt, server_uri (&s, "main", NULL), "{\"heartbeatFrequencyMS\": 500}");
   recorder_attach (&parent, conn);
   CHECK (mgconn_connection_use_db (&t1, conn, "tenant_1", 1, NULL) == 0, "use_db");
   CHECK (mgconn_connection_use_db (&t1_again, conn, "tenant_1", 1, NULL) == 0 && t1_again == t1,
          "use_cache did not return the same child");
   CHECK (mgconn_connection_use_db (&t1_fresh, conn, "tenant_1", 0, NULL) == 0 && t1_fresh != t1,
          "without the cache a new child is expected");
   CHECK (mgconn_connection_use_db (&t2, conn, "tenant_2", 1, NULL) == 0, "use_db 2");
   recorder_attach (&child, t1);
   CHECK (strcmp (mgconn_connection_name (t1), "tenant_1") == 0, "child name %s", mgconn_connection_name (t1));
   server_resume (&s);

   /* Registries: per database. */
   CHECK (mgconn_connection_model (&m1, t1, "Player", schema, NULL, NULL) == 0, "model on t1");
   CHECK (mgconn_connection_model (&found, t2, "Player", NULL, NULL, NULL) == -MGCONN_ERR_MISSING_SCHEMA,
          "t1's model visible from t2");
   CHECK (mgconn_connection_model (&found, conn, "Player", NULL, NULL, NULL) == -MGCONN_ERR_MISSING_SCHEMA,
          "t1's model visible from the parent");
   CHECK (mgconn_connection_model (&m2, t2, "Player", schema, NULL, NULL) == 0, "model on t2");

   CHECK (wait_event (rt, &child, "open", 0, 10000) >= 0, "the child heard no open: %s", recorder_sequence (&child));
   mgconn_collection_insert_one (&op, mgconn_model_collection (m1), D (doc), NULL, 0, NULL, NULL);
   expect_ok (op, "insert through t1");
   mgconn_op_free (op);
   {
      /* it landed in tenant_1, not in main or tenant_2 */
      mgconn_op *c1, *c2;
      mgconn_collection_count_documents (&c1, mgconn_model_collection (m1), NULL, 0, NULL, 0, NULL, NULL);
      mgconn_collection_count_documents (&c2, mgconn_model_collection (m2), NULL, 0, NULL, 0, NULL, NULL);
      CHECK (strstr (expect_ok (c1, "count t1"), "\"count\" : 1"), "tenant_1 does not hold the document");
      CHECK (strstr (expect_ok (c2, "count t2"), "\"count\" : 0"), "tenant_2 holds the document");
      mgconn_op_free (c1);
      mgconn_op_free (c2);
   }
   /* every parent event reaches the child once, reconnected included */
   server_kill (&s);
   CHECK (wait_event (rt, &parent, "disconnected", 0, 5000) >= 0, "no disconnected");
   server_restart (&s);
   CHECK (wait_event (rt, &parent, "open", 3, 10000) >= 0, "no open after restart: %s", recorder_sequence (&parent));
   mgconn_runtime_dispatch (rt, 0);
   /* Made after its parent's `connecting`: every event from then on, once each. */
   CHECK (strcmp (recorder_sequence (&parent), "connecting,connected,open,disconnected,connected,reconnected,open") == 0,
          "parent events %s", recorder_sequence (&parent));
   CHECK (strcmp (recorder_sequence (&child), "connected,open,disconnected,connected,reconnected,open") == 0,
          "child events %s", recorder_sequence (&child));

   /* closing a child only detaches it: the parent and the other children go on */
   {
      mgconn_op *close_op;
      mgconn_connection_close (&close_op, t2, 0, NULL, NULL);
      expect_ok (close_op, "close child");
      mgconn_op_free (close_op);
      mgconn_collection_insert_one (&op, mgconn_model_collection (m2), D (doc), NULL, 0, NULL, NULL);
      expect_failure (op, MGCONN_ERR_CONNECTION_CLOSED, "insert through a closed child");
      mgconn_op_free (op);
      mgconn_collection_insert_one (&op, mgconn_model_collection (m1), D (doc), NULL, 0, NULL, NULL);
      expect_ok (op, "insert through t1 after t2 closed");
      mgconn_op_free (op);
      CHECK (mgconn_connection_ready_state (conn) == MGCONN_STATE_CONNECTED, "the parent was disturbed");
   }
   /* closing the parent closes the children */
   {
      mgconn_op *close_op;
      int before = child.n;
      mgconn_connection_close (&close_op, conn, 0, NULL, NULL);
      expect_ok (close_op, "close parent");
      mgconn_op_free (close_op);
      mgconn_runtime_dispatch (rt, 0);
      CHECK (recorder_find (&child, "close", before) >= 0, "the child did not close: %s", recorder_sequence (&child));
   }
   mgconn_model_free (m1);
   mgconn_model_free (m2);
   mgconn_schema_free (schema);
   mgconn_connection_free (t1);
   mgconn_connection_free (t1_again);
   mgconn_connection_free (t1_fresh);
   mgconn_connection_free (t2);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   bson_destroy (doc);
   recorder_reset (&parent);
   recorder_reset (&child);
   server_cleanup (&s);
}

static void
test_disconnect_closes_every_connection (void)
{
   test_server s;
   mgconn_runtime *rt = runtime_new ();
   mgconn_connection *a, *b;
   recorder ra, rb;
   mgconn_op *op;
   server_start (&s);
   a = conn_new (rt, server_uri (&s, "a", NULL), NULL);
   b = conn_new (rt, server_uri (&s, "b", NULL), NULL);
   recorder_attach (&ra, a);
   recorder_attach (&rb, b);
   CHECK (wait_event (rt, &ra, "open", 0, 10000) >= 0 && wait_event (rt, &rb, "open", 0, 10000) >= 0, "no open");
   CHECK (mgconn_runtime_disconnect (&op, rt, NULL, NULL) == 0, "disconnect");
   expect_ok (op, "disconnect");
   mgconn_runtime_dispatch (rt, 0);
   CHECK (recorder_find (&ra, "close", 0) >= 0 && recorder_find (&rb, "close", 0) >= 0, "a: %s, b: %s",
          recorder_sequence (&ra), recorder_sequence (&rb));
   mgconn_op_free (op);
   mgconn_connection_free (a);
   mgconn_connection_free (b);
   mgconn_runtime_free (rt);
   recorder_reset (&ra);
   recorder_reset (&rb);
   server_cleanup (&s);
}

/* Mongoose's first pattern: models on the default connection before connect(); their operations
 * wait for the open, then run (and the model's init runs first). */
static void
test_models_defined_before_connect_buffer_until_open (void)
{
   test_server s;
   mgconn_runtime *rt = runtime_new ();
   mgconn_connection *conn = conn_new (rt, NULL, NULL); /* uninitialized, like mongoose.connection */
   mgconn_schema *schema = schema_of ("{\"name\": \"string\"}", NULL);
   mgconn_model *user;
   mgconn_op *ins, *find;
   bson_t *doc = json ("{\"name\": \"ada\"}");
   mgconn_error e;
   mgconn_error_init (&e);
   CHECK (mgconn_connection_ready_state (conn) == MGCONN_STATE_UNINITIALIZED, "state %d",
          mgconn_connection_ready_state (conn));
   CHECK (mgconn_connection_model (&user, conn, "User", schema, NULL, NULL) == 0, "model");
   mgconn_collection_insert_one (&ins, mgconn_model_collection (user), D (doc), NULL, 0, NULL, NULL);
   pump_for (rt, 200);
   CHECK (mgconn_op_status (ins) == MGCONN_OP_PENDING, "the insert did not wait for connect");
   server_start (&s);
   CHECK (mgconn_connection_open (conn, server_uri (&s, "defaults", NULL), NULL, 0, &e) == 0, "open: %s", e.message);
   expect_ok (ins, "insert issued before connect");
   mgconn_collection_find_one (&find, mgconn_model_collection (user), D (doc), NULL, 0, NULL, NULL);
   CHECK (strstr (expect_ok (find, "find_one"), "\"ada\""), "not found");
   mgconn_op_free (ins);
   mgconn_op_free (find);
   mgconn_model_free (user);
   mgconn_schema_free (schema);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   bson_destroy (doc);
   server_cleanup (&s);
}

/* A model's writes are checked against its schema's declared types before anything is queued: a
 * refusal arrives through the op (no server needed), a right document waits for the connection. */
static void
test_declared_field_types_are_checked_on_writes (void)
{
   mgconn_runtime *rt = runtime_new ();
   mgconn_connection *conn = conn_new (rt, NULL, NULL);
   mgconn_schema *schema = schema_of ("{\"name\": \"string\", \"tags\": [\"string\"], \"home\": {\"city\": \"str\"}, "
                                      "\"age\": {\"type\": \"int\"}}", NULL);
   mgconn_model *user = NULL;
   mgconn_op *op = NULL;
   static const struct {
      const char *doc, *update, *message;
   } refused[] = {
      {"{\"name\": 5}", NULL, "Cannot run `users.insert_one()`: User validation failed: path `name` is declared "
                              "string and got int32 (a schema's types are checked, never cast); nothing was sent"},
      {"{\"tags\": [\"a\", {\"b\": 1}]}", NULL, "path `tags.1` is declared string and got document"},
      {"{\"home\": {\"city\": 1.5}}", NULL, "path `home.city` is declared str and got double"},
      {"{\"age\": \"old\"}", NULL, "path `age` is declared int and got string"},
      {"{}", "{\"$set\": {\"home.city\": true}}", "`users.update_one()`: User validation failed: path `home.city`"},
      {"{}", "{\"$setOnInsert\": {\"tags.$\": 1}}", "path `tags.$` is declared string and got int32"},
   };
   CHECK (mgconn_connection_model (&user, conn, "User", schema, NULL, NULL) == 0, "model");
   for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
      bson_t *doc = json (refused[i].doc), *update = refused[i].update ? json (refused[i].update) : NULL;
      int rc = update ? mgconn_collection_update_one (&op, mgconn_model_collection (user), D (doc), D (update), NULL, 0,
                                                      NULL, NULL)
                      : mgconn_collection_insert_one (&op, mgconn_model_collection (user), D (doc), NULL, 0, NULL, NULL);
      CHECK (rc == 0, "case %zu: refused at the call (%d) instead of through the op", i, rc);
      CHECK (strstr (expect_failure (op, MGCONN_ERR_VALIDATION, refused[i].doc), refused[i].message), "case %zu: %s", i,
             refused[i].doc);
      mgconn_op_free (op);
      bson_destroy (doc);
      if (update) {
         bson_destroy (update);
      }
   }
   {
      /* right values, null, undeclared paths and other operators pass: the op waits for open */
      bson_t *doc = json ("{\"name\": \"ada\", \"tags\": [\"x\"], \"home\": {\"city\": \"Paris\", \"zip\": 1}, "
                          "\"age\": null, \"other\": 1}");
      bson_t *update = json ("{\"$set\": {\"level\": 1, \"name\": null}, \"$inc\": {\"name\": 1}}");
      mgconn_op *upd = NULL;
      mgconn_collection_insert_one (&op, mgconn_model_collection (user), D (doc), NULL, 0, NULL, NULL);
      mgconn_collection_update_one (&upd, mgconn_model_collection (user), D (doc), D (update), NULL, 0, NULL, NULL);
      pump_for (rt, 100);
      CHECK (mgconn_op_status (op) == MGCONN_OP_PENDING && mgconn_op_status (upd) == MGCONN_OP_PENDING,
             "a right write was refused");
      mgconn_op_free (op);
      mgconn_op_free (upd);
      bson_destroy (doc);
      bson_destroy (update);
   }
   mgconn_model_free (user);
   mgconn_schema_free (schema);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
}

static const test_case tests[] = {
   {"before_connect", test_models_defined_before_connect_buffer_until_open},
   {"pluralizer", test_pluralizer_matches_mongoose_for_every_listed_name},
   {"registry", test_registry_overwrite_missing_delete_and_isolation},
   {"field_types", test_declared_field_types_are_checked_on_writes},
   {"capped_autocreate", test_capped_collection_exists_before_the_first_insert},
   {"index_failure", test_index_failure_is_reported_on_the_index_event_and_init},
   {"use_db", test_use_db_cache_registries_and_events},
   {"disconnect_all", test_disconnect_closes_every_connection},
   {NULL, NULL},
};

int
main (int argc, char **argv)
{
   return run_tests (argc, argv, tests);
}
