/*
 * session.h: client sessions and their transactions (session.c), as the buffer, the op's run and the
 * operations' files meet them.
 */
#ifndef MG_SESSION_H
#define MG_SESSION_H

#include "connection.h"

/*
 * Ownership and threads
 *   The host's handle holds one reference, each op naming the session one (op->session, dropped in
 *   mg_op_unref), a cursor of a query in it one, and holding a pool client one. `link` is in the
 *   root's `sessions` while the host's handle lives (operations find it by id there); `holding_link`
 *   is in the root's `holding_sessions` while it holds a client. Both lists, `holds_client` and
 *   `ended` are under the root's lock.
 *   The pump reserves the client (holds_client, root->session_clients, the holding's reference)
 *   when it starts the session's first op; the worker that runs it takes it from the pool.
 *   `client`, `cs` and `worker_txn` are the worker's: the pump runs one op of a session at a time
 *   (its key, buffer.c), so only the worker running that op touches them; the teardown touches
 *   them only when nothing of the connection runs.
 *   `txn`, `last_txn` and `txn_count` are the host thread's.
 */
struct mgconn_session {
   atomic_int refs;
   mgconn_connection *root; /* a reference */
   int64_t id;
   uint64_t key; /* the pump's key that keeps its ops in order, one at a time */
   mg_link link;
   mg_link holding_link;
   bson_t opts; /* as given: causalConsistency, defaultTransactionOptions */
   bool ended;
   bool holds_client;
   /* host thread */
   int64_t txn;       /* the transaction operations issued now join; 0: none */
   int64_t last_txn;  /* the last one started (a commit may be tried again) */
   int64_t txn_count;
   bson_t txn_opts; /* of the transaction in progress */
   /* the worker's */
   mongoc_client_t *client;
   mongoc_client_session_t *cs;
   int64_t worker_txn; /* the transaction cs was last started in */
   bool finished;      /* its end op ran: nothing more runs in it */
};

void mg_session_ref (mgconn_session *s);
void mg_session_unref (mgconn_session *s);

/* opts["session"] of an op being built, on the host thread: the op joins the session (and its
 * transaction in progress), or 0 with nothing done when `opts` names none, or a failure naming the
 * problem (a kind that takes no session, an unknown or ended one, one of another connection). */
int mg_session_attach (mgconn_op *op, const bson_t *opts);

/* On the worker that runs a session's op, before its exec: the session's client (its first op
 * takes one from the pool and starts the libmongoc session), in the op's transaction, and
 * op->session_opts filled. False with `error` set when that fails. */
bool mg_session_begin_op (mgconn_op *op, mongoc_client_pool_t *pool, mongoc_client_t **client, mgconn_error *error);
/* False for the op that ends a session: it only gives the client back. */
bool mg_session_op_needs_client (const mgconn_op *op);
/* After the exec of an op in a transaction: a server that has no transactions says so in its own
 * words, which become MGCONN_ERR_NOT_SUPPORTED naming the limitation. */
void mg_session_after_op (mgconn_op *op, bool ok, mgconn_error *error);

/* What libmongoc takes as an op's options: op->opts, with the session's "sessionId" when the op
 * has one (built into `storage`, which the caller destroys). */
const bson_t *mg_op_driver_opts (const mgconn_op *op, bson_t *storage);
/* The session's part alone ({"sessionId": n}, or empty), for an exec that puts op->opts into a
 * command of its own. */
const bson_t *mg_op_session_opts (const mgconn_op *op);

/* The teardown, with nothing of the connection running: every session's client goes back to the
 * pool before it is destroyed. conn->lock not held. */
void mg_sessions_release_clients (mgconn_connection *root);

#endif
