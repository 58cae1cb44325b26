/*
 * session.c: client sessions and transactions over libmongoc's mongoc_client_session_t.
 *
 * A libmongoc session belongs to one client, and a client to one thread at a time; mgconn's
 * workers take any pooled client for each op. So a session takes a client from the pool with its
 * first op and keeps it until it ends, and the pump runs its ops one at a time in issue order (the
 * session's key, as a document's key orders writes to one document: buffer.c), on that client.
 * Starting a session or a transaction sends nothing; the worker starts each on the libmongoc
 * session just before the first op that needs it, so the host never waits and a server that
 * cannot do it answers through that op.
 *
 * The thread and ownership rules are at the struct, in session.h.
 */
#include "session.h"

#include "doc_keys.h"
#include "ops.h"

#include <string.h>

static atomic_llong next_session_id = 1;

void
mg_session_ref (mgconn_session *s)
{
   atomic_fetch_add (&s->refs, 1);
}

void
mg_session_unref (mgconn_session *s)
{
   if (s && atomic_fetch_sub (&s->refs, 1) == 1) {
      /* No op names it, the host has let it go and it holds no client: cs is NULL here. */
      bson_destroy (&s->opts);
      bson_destroy (&s->txn_opts);
      mg_conn_unref (s->root);
      bson_free (s);
   }
}

/* ---- options ---- */

static bool
check_txn_opts (const bson_t *opts, const char *what, mgconn_error *error)
{
   bson_iter_t it;
   if (!bson_iter_init (&it, opts)) {
      return true;
   }
   while (bson_iter_next (&it)) {
      const char *k = bson_iter_key (&it);
      if (strcmp (k, "readConcern") == 0 && BSON_ITER_HOLDS_DOCUMENT (&it)) {
         bson_iter_t sub;
         if (bson_iter_recurse (&it, &sub) && bson_iter_find (&sub, "level") && !BSON_ITER_HOLDS_UTF8 (&sub)) {
            mg_error_set (error, MGCONN_ERR_OPTION, "%s: readConcern's level must be a string (\"snapshot\", "
                          "\"majority\", \"local\")", what);
            return false;
         }
         continue;
      }
      if (strcmp (k, "writeConcern") == 0 && BSON_ITER_HOLDS_DOCUMENT (&it)) {
         bson_iter_t sub;
         if (bson_iter_recurse (&it, &sub)) {
            while (bson_iter_next (&sub)) {
               const char *w = bson_iter_key (&sub);
               bool fits = (strcmp (w, "w") == 0 && (BSON_ITER_HOLDS_UTF8 (&sub) || BSON_ITER_HOLDS_INT32 (&sub) ||
                                                     BSON_ITER_HOLDS_INT64 (&sub) || BSON_ITER_HOLDS_DOUBLE (&sub))) ||
                           (strcmp (w, "j") == 0 && BSON_ITER_HOLDS_BOOL (&sub)) ||
                           (strcmp (w, "wtimeout") == 0 && BSON_ITER_HOLDS_NUMBER (&sub));
               if (!fits) {
                  mg_error_set (error, MGCONN_ERR_OPTION,
                                "%s: writeConcern's \"%s\" is not w (a number or \"majority\"), j (true or false) "
                                "or wtimeout (milliseconds), or not of its type",
                                what, w);
                  return false;
               }
            }
         }
         continue;
      }
      if (strcmp (k, "maxCommitTimeMS") == 0 && BSON_ITER_HOLDS_NUMBER (&it) && bson_iter_as_int64 (&it) >= 0) {
         continue;
      }
      mg_error_set (error, MGCONN_ERR_OPTION,
                    "%s: \"%s\" is not a transaction option, or not of its type (readConcern {level} and "
                    "writeConcern {w, j, wtimeout} are documents, maxCommitTimeMS a number of milliseconds)",
                    what, k);
      return false;
   }
   return true;
}

/* libmongoc's transaction options from {"readConcern", "writeConcern", "maxCommitTimeMS"}. */
static mongoc_transaction_opt_t *
txn_opts_from (const bson_t *b)
{
   mongoc_transaction_opt_t *t = mongoc_transaction_opts_new ();
   bson_iter_t it, sub;
   if (bson_iter_init_find (&it, b, "readConcern") && bson_iter_recurse (&it, &sub) &&
       bson_iter_find (&sub, "level") && BSON_ITER_HOLDS_UTF8 (&sub)) {
      mongoc_read_concern_t *rc = mongoc_read_concern_new ();
      mongoc_read_concern_set_level (rc, bson_iter_utf8 (&sub, NULL));
      mongoc_transaction_opts_set_read_concern (t, rc);
      mongoc_read_concern_destroy (rc);
   }
   if (bson_iter_init_find (&it, b, "writeConcern") && BSON_ITER_HOLDS_DOCUMENT (&it)) {
      mongoc_write_concern_t *wc = mongoc_write_concern_new ();
      if (bson_iter_recurse (&it, &sub) && bson_iter_find (&sub, "w")) {
         if (BSON_ITER_HOLDS_UTF8 (&sub)) {
            mongoc_write_concern_set_wtag (wc, bson_iter_utf8 (&sub, NULL));
         } else if (BSON_ITER_HOLDS_NUMBER (&sub)) {
            mongoc_write_concern_set_w (wc, (int32_t) bson_iter_as_int64 (&sub));
         }
      }
      if (bson_iter_recurse (&it, &sub) && bson_iter_find (&sub, "j")) {
         mongoc_write_concern_set_journal (wc, bson_iter_as_bool (&sub));
      }
      if (bson_iter_recurse (&it, &sub) && bson_iter_find (&sub, "wtimeout") && BSON_ITER_HOLDS_NUMBER (&sub)) {
         mongoc_write_concern_set_wtimeout_int64 (wc, bson_iter_as_int64 (&sub));
      }
      mongoc_transaction_opts_set_write_concern (t, wc);
      mongoc_write_concern_destroy (wc);
   }
   if (bson_iter_init_find (&it, b, "maxCommitTimeMS") && BSON_ITER_HOLDS_NUMBER (&it)) {
      mongoc_transaction_opts_set_max_commit_time_ms (t, bson_iter_as_int64 (&it));
   }
   return t;
}

/* ---- the host's side ---- */

int
mgconn_connection_start_session (mgconn_session **out, mgconn_connection *conn, const uint8_t *opts, size_t opts_len)
{
   mgconn_session *s;
   bson_t o;
   bson_iter_t it;
   mgconn_error e;
   mgconn_connection *root;
   if (!out || !conn) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "start_session: a NULL argument");
   }
   *out = NULL;
   if (opts && !bson_init_static (&o, opts, opts_len)) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "start_session: the options are not a valid BSON document");
   }
   if (!opts) {
      bson_init (&o);
   }
   const char *method = conn->rt && conn->rt->camel_case ? "startSession" : "start_session";
   mgconn_error_init (&e);
   if (bson_iter_init (&it, &o)) {
      while (bson_iter_next (&it)) {
         const char *k = bson_iter_key (&it);
         if (strcmp (k, "causalConsistency") == 0 && BSON_ITER_HOLDS_BOOL (&it)) {
            continue;
         }
         if (strcmp (k, "defaultTransactionOptions") == 0 && BSON_ITER_HOLDS_DOCUMENT (&it)) {
            bson_t sub;
            uint32_t len;
            const uint8_t *data;
            bson_iter_document (&it, &len, &data);
            if (bson_init_static (&sub, data, len) && check_txn_opts (&sub, method, &e)) {
               continue;
            }
            return mg_fail (NULL, MGCONN_ERR_OPTION, "%s", e.message);
         }
         return mg_fail (NULL, MGCONN_ERR_OPTION,
                         "%s: \"%s\" is not a session option, or not of its type (causalConsistency is "
                         "true or false, defaultTransactionOptions a document)",
                         method, k);
      }
   }
   root = mg_conn_root (conn);
   s = bson_malloc0 (sizeof *s);
   atomic_init (&s->refs, 1);
   mg_conn_ref (root);
   s->root = root;
   s->id = atomic_fetch_add (&next_session_id, 1);
   s->key = mg_key_of ("session", &s->id, sizeof s->id);
   bson_copy_to (&o, &s->opts);
   bson_init (&s->txn_opts);
   pthread_mutex_lock (&root->lock);
   mg_list_push_back (&root->sessions, &s->link);
   pthread_mutex_unlock (&root->lock);
   *out = s;
   return 0;
}

int64_t
mgconn_session_id (const mgconn_session *session)
{
   return session ? session->id : 0;
}

int
mgconn_session_in_transaction (const mgconn_session *session)
{
   return session && session->txn != 0;
}

int
mgconn_session_start_transaction (mgconn_session *session, const uint8_t *opts, size_t opts_len)
{
   bson_t o, merged = BSON_INITIALIZER;
   bson_iter_t it;
   mgconn_error e;
   if (!session) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "start_transaction: the session is NULL");
   }
   if (session->ended) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "start_transaction: the session has ended");
   }
   if (session->txn) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "Transaction already in progress");
   }
   if (opts && !bson_init_static (&o, opts, opts_len)) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "start_transaction: the options are not a valid BSON document");
   }
   mgconn_error_init (&e);
   if (opts && !check_txn_opts (&o, session->root->rt->camel_case ? "startTransaction" : "start_transaction", &e)) {
      return mg_fail (NULL, MGCONN_ERR_OPTION, "%s", e.message);
   }
   /* The session's defaults, each overridden by the transaction's own. */
   if (bson_iter_init_find (&it, &session->opts, "defaultTransactionOptions") && BSON_ITER_HOLDS_DOCUMENT (&it)) {
      bson_t d;
      uint32_t len;
      const uint8_t *data;
      bson_iter_document (&it, &len, &data);
      if (bson_init_static (&d, data, len)) {
         bson_iter_t di;
         bson_iter_init (&di, &d);
         while (bson_iter_next (&di)) {
            if (!opts || !bson_has_field (&o, bson_iter_key (&di))) {
               bson_append_iter (&merged, NULL, 0, &di);
            }
         }
      }
   }
   if (opts) {
      bson_concat (&merged, &o);
   }
   bson_destroy (&session->txn_opts);
   session->txn_opts = merged;
   session->txn = session->last_txn = ++session->txn_count;
   return 0;
}

static bool exec_commit (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error);
static bool exec_abort (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error);
static bool exec_end (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error);

static const mg_op_kind commit_kind = {"commit_transaction", "commitTransaction", exec_commit, true, false,
                                       .idempotent = NULL};
static const mg_op_kind abort_kind = {"abort_transaction", "abortTransaction", exec_abort, true, false,
                                      .idempotent = NULL};
static const mg_op_kind end_kind = {"end_session", "endSession", exec_end, true, false,
                                    .idempotent = mg_resend_always};

/* An op of the session itself (commit, abort, end), in its place among the session's ops. */
static int
session_op (mgconn_op **out, mgconn_session *s, const mg_op_kind *kind, int64_t txn, mgconn_op_cb cb, void *ud)
{
   mg_op_input in = {0};
   mgconn_op *op;
   int rc = mg_op_build (&op, s->root, kind, &in, cb, ud);
   if (rc) {
      return rc;
   }
   mg_session_ref (s);
   op->session = s;
   op->session_txn = txn;
   if (txn && !bson_empty (&s->txn_opts)) {
      op->txn_opts = bson_copy (&s->txn_opts);
   }
   mg_op_add_key (op, s->key);
   return mg_op_submit (op, out);
}

int
mgconn_session_commit_transaction (mgconn_op **out, mgconn_session *session, mgconn_op_cb cb, void *userdata)
{
   int64_t txn;
   if (!session) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "commit_transaction: the session is NULL");
   }
   /* After an UnknownTransactionCommitResult the last transaction's commit may be tried again. */
   txn = session->txn ? session->txn : session->last_txn;
   if (!txn) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "No transaction started");
   }
   session->txn = 0;
   return session_op (out, session, &commit_kind, txn, cb, userdata);
}

int
mgconn_session_abort_transaction (mgconn_op **out, mgconn_session *session, mgconn_op_cb cb, void *userdata)
{
   int64_t txn;
   if (!session) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "abort_transaction: the session is NULL");
   }
   if (!(txn = session->txn)) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "No transaction started");
   }
   session->txn = 0;
   return session_op (out, session, &abort_kind, txn, cb, userdata);
}

void
mgconn_session_free (mgconn_session *session)
{
   mgconn_connection *root;
   bool end_on_worker;
   if (!session) {
      return;
   }
   root = session->root;
   pthread_mutex_lock (&root->lock);
   session->ended = true;
   mg_link_unlink (&session->link);
   /* Its ops still to run, or its client, are ended by an op behind them; if that op cannot run
    * (the connection closes first) the teardown gives the client back. */
   end_on_worker = (session->holds_client || atomic_load (&session->refs) > 1) && !root->closed &&
                   !root->host_released;
   pthread_mutex_unlock (&root->lock);
   if (end_on_worker) {
      mgconn_op *op = NULL;
      if (session_op (&op, session, &end_kind, 0, NULL, NULL) == 0) {
         mgconn_op_free (op);
      }
   }
   mg_session_unref (session); /* the host's */
}

/* ---- an op joining a session ---- */

int
mg_session_attach (mgconn_op *op, const bson_t *opts)
{
   bson_iter_t it;
   int64_t id;
   mgconn_session *s = NULL;
   mg_link *l;
   if (!bson_iter_init_find (&it, opts, "session")) {
      return 0;
   }
   if (!op->kind->takes_session) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "%s does not run in a session", mg_op_method_name (op));
   }
   /* a double too: Lua 5.1 and LuaJIT have no integers */
   if (!BSON_ITER_HOLDS_NUMBER (&it) || (double) bson_iter_as_int64 (&it) != bson_iter_as_double (&it)) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT,
                      "%s: the option \"session\" must be a session's id (an integer)", mg_op_method_name (op));
   }
   id = bson_iter_as_int64 (&it);
   pthread_mutex_lock (&op->conn->lock);
   for (l = op->conn->sessions.next; l != &op->conn->sessions; l = l->next) {
      if (MG_CONTAINER_OF (l, mgconn_session, link)->id == id) {
         s = MG_CONTAINER_OF (l, mgconn_session, link);
         mg_session_ref (s);
         break;
      }
   }
   pthread_mutex_unlock (&op->conn->lock);
   if (!s) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT,
                      "%s: no session %" PRId64 " on this connection (it has ended, it is another connection's, or "
                      "it was started before a fork)",
                      mg_op_method_name (op), id);
   }
   op->session = s;
   op->session_txn = s->txn;
   if (s->txn && !bson_empty (&s->txn_opts)) {
      op->txn_opts = bson_copy (&s->txn_opts);
   }
   mg_op_add_key (op, s->key);
   return 0;
}

/* ---- the worker's side ---- */

/* Ends the libmongoc session and gives its client back; drops the holding's reference when it
 * held one (the caller has a reference of its own). */
static void
give_back_client (mgconn_session *s, mongoc_client_pool_t *pool)
{
   mgconn_connection *root = s->root;
   bool held;
   s->worker_txn = 0;
   if (s->cs) {
      mongoc_client_session_destroy (s->cs); /* aborts a transaction still open */
      s->cs = NULL;
   }
   if (s->client) {
      mongoc_client_pool_push (pool, s->client);
      s->client = NULL;
   }
   pthread_mutex_lock (&root->lock);
   held = s->holds_client;
   if (held) {
      s->holds_client = false;
      root->session_clients--;
      mg_link_unlink (&s->holding_link);
   }
   pthread_mutex_unlock (&root->lock);
   if (held) {
      mg_session_unref (s);
   }
}

bool
mg_session_begin_op (mgconn_op *op, mongoc_client_pool_t *pool, mongoc_client_t **client, mgconn_error *error)
{
   mgconn_session *s = op->session;
   bson_error_t be;
   if (s->finished) { /* a getMore of a cursor that outlived its session */
      mg_error_set (error, MGCONN_ERR_INVALID_ARGUMENT, "Cannot run `%s.%s()`: its session has ended",
                    mg_op_target_name (op), mg_op_method_name (op));
      return false;
   }
   if (!s->client) {
      mongoc_session_opt_t *so = mongoc_session_opts_new ();
      bson_iter_t it;
      if (bson_iter_init_find (&it, &s->opts, "causalConsistency")) {
         mongoc_session_opts_set_causal_consistency (so, bson_iter_as_bool (&it));
      }
      s->client = mongoc_client_pool_pop (pool);
      s->cs = mongoc_client_start_session (s->client, so, &be);
      mongoc_session_opts_destroy (so);
      if (!s->cs) {
         mg_error_from_driver (error, &be, NULL);
         if (strstr (be.message, "does not support sessions")) {
            error->category = MGCONN_ERR_NOT_SUPPORTED;
         }
         give_back_client (s, pool);
         return false;
      }
   }
   if (op->session_txn && op->session_txn != s->worker_txn) {
      mongoc_transaction_opt_t *t = op->txn_opts ? txn_opts_from (op->txn_opts) : NULL;
      bool ok = mongoc_client_session_start_transaction (s->cs, t, &be);
      mongoc_transaction_opts_destroy (t);
      if (!ok) {
         mg_error_from_driver (error, &be, NULL);
         return false;
      }
      s->worker_txn = op->session_txn;
   }
   bson_reinit (&op->session_opts);
   if (!mongoc_client_session_append (s->cs, &op->session_opts, &be)) {
      mg_error_from_driver (error, &be, NULL);
      return false;
   }
   *client = s->client;
   return true;
}

/* The server's own words for "no transactions here": FerretDB refuses the fields a transaction's
 * first command carries (the transaction's readConcern among them), and the commit of a
 * transaction that only read; a standalone mongod refuses transaction numbers. */
static bool
says_no_transactions (const mgconn_error *e)
{
   return (e->code == 20 && strstr (e->message, "Transaction numbers")) ||
          (e->code == 9 && (strstr (e->message, "startTransaction") || strstr (e->message, "autocommit") ||
                            strstr (e->message, "txnNumber") || strstr (e->message, "readConcern"))) ||
          (e->code == 59 && (strstr (e->message, "commitTransaction") || strstr (e->message, "abortTransaction")));
}

void
mg_session_after_op (mgconn_op *op, bool ok, mgconn_error *error)
{
   char was[MGCONN_ERROR_MESSAGE_SIZE];
   if (ok || !op->session || !op->session_txn || !says_no_transactions (error)) {
      return;
   }
   bson_strncpy (was, error->message, sizeof was);
   if (op->kind == &commit_kind || op->kind == &abort_kind) {
      mg_error_set (error, MGCONN_ERR_NOT_SUPPORTED,
                    "Cannot run `%s()`: the server does not support transactions (they need a replica set or a "
                    "sharded cluster; a standalone server and FerretDB have none): %s",
                    mg_op_method_name (op), was);
      return;
   }
   mg_error_set (error, MGCONN_ERR_NOT_SUPPORTED,
                 "Cannot run `%s.%s()` in a transaction: the server does not support transactions (they need a "
                 "replica set or a sharded cluster; a standalone server and FerretDB have none): %s",
                 mg_op_target_name (op), mg_op_method_name (op), was);
}

static bool
exec_commit (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   bson_t server_reply;
   bson_error_t be;
   bool ok = mongoc_client_session_commit_transaction (op->session->cs, &server_reply, &be);
   (void) client;
   if (!ok) {
      mg_driver_failed (error, &be, &server_reply, reply);
   }
   bson_destroy (&server_reply);
   return ok;
}

static bool
exec_abort (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   bson_error_t be;
   bool ok = mongoc_client_session_abort_transaction (op->session->cs, &be);
   (void) client;
   (void) reply;
   if (!ok) {
      mg_error_from_driver (error, &be, NULL);
   }
   return ok;
}

static bool
exec_end (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mongoc_client_pool_t *pool;
   (void) client;
   (void) reply;
   (void) error;
   pthread_mutex_lock (&op->conn->lock);
   pool = op->conn->pool; /* stable while this op runs */
   pthread_mutex_unlock (&op->conn->lock);
   give_back_client (op->session, pool);
   op->session->finished = true;
   return true;
}

bool
mg_session_op_needs_client (const mgconn_op *op)
{
   return op->kind != &end_kind;
}

const bson_t *
mg_op_driver_opts (const mgconn_op *op, bson_t *storage)
{
   bson_init (storage);
   if (!op->session) {
      return &op->opts;
   }
   bson_concat (storage, &op->opts);
   bson_concat (storage, &op->session_opts);
   return storage;
}

const bson_t *
mg_op_session_opts (const mgconn_op *op)
{
   return &op->session_opts;
}

void
mg_sessions_release_clients (mgconn_connection *root)
{
   for (;;) {
      mgconn_session *s = NULL;
      pthread_mutex_lock (&root->lock);
      if (!mg_list_empty (&root->holding_sessions)) {
         s = MG_CONTAINER_OF (root->holding_sessions.next, mgconn_session, holding_link);
      }
      pthread_mutex_unlock (&root->lock);
      if (!s) {
         return;
      }
      give_back_client (s, root->pool);
   }
}
