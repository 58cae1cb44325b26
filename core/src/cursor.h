/*
 * cursor.h: a query's cursor (cursor.c), as a change stream's batches (change_stream.c) use it.
 *
 * Ownership: the cursor belongs to the host (mgconn_op_cursor); a getMore op holds a reference to
 * it while it runs. Fields written by the worker that runs a getMore are read by the host only
 * after that op's delivery (ordered through rt->lock).
 */
#ifndef MG_CURSOR_H
#define MG_CURSOR_H

#include "connection.h"

struct mgconn_cursor {
   atomic_int refs;
   mgconn_connection *conn; /* a reference */
   char *db;
   char *collection;
   int64_t id;          /* 0 once the server has no more */
   uint32_t server_id;
   int32_t batch_size;  /* 0: the server's default */
   bool busy;           /* a getMore is in flight (host thread only) */
   bool slot;           /* holds one of conn's maxOpenCursors slots (buffer.c) until exhausted or freed */
   bool freed;          /* the host dropped it during a getMore: that getMore's delivery kills it */
   struct mgconn_session *session; /* a reference: its getMores run in the query's session */
   int64_t session_txn;
   struct mg_change_stream *stream; /* a change stream's state (change_stream.c), or NULL; owned */
};

/* Moves cursor.firstBatch or cursor.nextBatch of a server reply into {"batch", "done"}. */
void mg_batch_reply (const bson_t *server_reply, bson_t *reply, int64_t *id_out);
/* killCursors for one cursor, best effort: a cursor the server already forgot (a restart, its
 * timeout, the server that failed) is gone either way. */
void mg_kill_server_cursor (mongoc_client_t *client, const char *db, const char *collection, int64_t id,
                            uint32_t server_id);
/* Runs `cmd` on the server `server_id`, in the op's session when it has one. */
bool mg_run_on_server (mongoc_client_t *client, const char *db, const bson_t *cmd, const mongoc_read_prefs_t *prefs,
                       uint32_t server_id, const mgconn_op *op, bson_t *server_reply, bson_error_t *be);
/* Picks a server (a writable one for $out/$merge pipelines: for_writes) and runs `cmd` on it;
 * op->server_id is the one it picked. */
bool mg_run_on_selected_server (mgconn_op *op, mongoc_client_t *client, const bson_t *cmd, bool for_writes,
                                bson_t *server_reply, mgconn_error *error);

#endif
