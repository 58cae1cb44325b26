/*
 * change_stream.c: change streams (watch), a cursor over an aggregation that begins with
 * $changeStream, which resumes by itself after a fault, as the drivers' change streams do.
 *
 * Each batch's reply carries the stream's resume token ({"batch", "done", "resumeToken"}): the
 * server's postBatchResumeToken, else the last event's _id. When a batch fails with a resumable
 * error, the stream is opened again after that token (resumeAfter; startAfter while no event has
 * been seen since a stream begun with startAfter), and that aggregation's first batch is the
 * batch asked for: no event is lost or seen twice. A fault of the connection itself (a network
 * error, no server to be had) leaves the stream to be resumed by the next attempt: the batch's op
 * is buffered and sent again after the reconnect, as an idempotent read is (buffer.c).
 *
 * Threads: the stream belongs to its cursor (cursor.h); its fields are written by the worker that
 * runs the cursor's one batch at a time, and read by no host code.
 */
#include "change_stream.h"

#include "cursor.h"
#include "ops.h"
#include "session.h"

#include <string.h>

struct mg_change_stream {
   bson_t pipeline;     /* the stages after $changeStream, as given */
   bson_t opts;         /* the watch's options, as given */
   bson_t token;        /* the last resume token; empty before any */
   bool start_after;    /* begun with startAfter, and no event seen since */
   bool needs_resume;   /* a fault of the connection broke it: the next batch opens it again */
   int64_t max_await_ms;
   int32_t batch_size;
   char *collection;    /* what it watches; NULL: the database */
};

/* The options that belong to the $changeStream stage; the rest go to the aggregate command. */
static bool
is_stage_option (const char *k)
{
   return strcmp (k, "fullDocument") == 0 || strcmp (k, "fullDocumentBeforeChange") == 0 ||
          strcmp (k, "resumeAfter") == 0 || strcmp (k, "startAfter") == 0 ||
          strcmp (k, "startAtOperationTime") == 0 || strcmp (k, "showExpandedEvents") == 0;
}

/* {aggregate: coll | 1, pipeline: [{$changeStream: {...}}, ...], cursor: {batchSize}, ...}. With a
 * token, the stream resumes after it instead of where the options said to start. */
static void
stream_command (const char *collection, const bson_t *pipeline, const bson_t *opts, const bson_t *token,
                bool start_after, bson_t *cmd)
{
   bson_t stages, stage, spec, cursor;
   bson_iter_t it;
   uint32_t i = 1;
   if (collection) {
      BSON_APPEND_UTF8 (cmd, "aggregate", collection);
   } else {
      BSON_APPEND_INT32 (cmd, "aggregate", 1);
   }
   bson_append_array_unsafe_begin (cmd, "pipeline", -1, &stages);
   bson_append_document_begin (&stages, "0", -1, &stage);
   bson_append_document_begin (&stage, "$changeStream", -1, &spec);
   bson_iter_init (&it, opts);
   while (bson_iter_next (&it)) {
      const char *k = bson_iter_key (&it);
      bool starts = strcmp (k, "resumeAfter") == 0 || strcmp (k, "startAfter") == 0 ||
                    strcmp (k, "startAtOperationTime") == 0;
      if (is_stage_option (k) && !(token && starts)) {
         bson_append_iter (&spec, k, -1, &it);
      }
   }
   if (token) {
      BSON_APPEND_DOCUMENT (&spec, start_after ? "startAfter" : "resumeAfter", token);
   }
   bson_append_document_end (&stage, &spec);
   bson_append_document_end (&stages, &stage);
   bson_iter_init (&it, pipeline);
   while (bson_iter_next (&it)) {
      mg_append_array_value (&stages, i++, bson_iter_value (&it));
   }
   bson_append_array_end (cmd, &stages);
   bson_append_document_begin (cmd, "cursor", -1, &cursor);
   if (bson_iter_init_find (&it, opts, "batchSize")) {
      bson_append_value (&cursor, "batchSize", -1, bson_iter_value (&it));
   }
   bson_append_document_end (cmd, &cursor);
   bson_iter_init (&it, opts);
   while (bson_iter_next (&it)) {
      const char *k = bson_iter_key (&it);
      if (!is_stage_option (k) && strcmp (k, "batchSize") != 0 && strcmp (k, "maxAwaitTimeMS") != 0) {
         bson_append_iter (cmd, k, -1, &it); /* collation, comment */
      }
   }
}

/* The token after a batch into `out` (owned; the caller destroys it): the server's
 * postBatchResumeToken, else the last event's _id, else `before`. False when an event has no _id
 * (a $project removed it): the stream could not resume. `saw_event`: the batch had events. */
static bool
next_token (const bson_t *server_reply, const bson_t *before, bson_t *out, bool *saw_event)
{
   bson_iter_t it, batch, last_id;
   bool has_last = false;
   bson_t view;
   uint32_t len;
   const uint8_t *data;
   *saw_event = false;
   bson_init (out);
   if ((bson_iter_init (&it, server_reply) && bson_iter_find_descendant (&it, "cursor.firstBatch", &batch)) ||
       (bson_iter_init (&it, server_reply) && bson_iter_find_descendant (&it, "cursor.nextBatch", &batch))) {
      bson_iter_t doc;
      if (BSON_ITER_HOLDS_ARRAY (&batch) && bson_iter_recurse (&batch, &doc)) {
         while (bson_iter_next (&doc)) {
            bson_iter_t id;
            *saw_event = true;
            if (!BSON_ITER_HOLDS_DOCUMENT (&doc) || !bson_iter_recurse (&doc, &id) || !bson_iter_find (&id, "_id") ||
                !BSON_ITER_HOLDS_DOCUMENT (&id)) {
               return false;
            }
            last_id = id;
            has_last = true;
         }
      }
   }
   if (bson_iter_init (&it, server_reply) && bson_iter_find_descendant (&it, "cursor.postBatchResumeToken", &it) &&
       BSON_ITER_HOLDS_DOCUMENT (&it)) {
      bson_iter_document (&it, &len, &data);
   } else if (has_last) {
      bson_iter_document (&last_id, &len, &data);
   } else {
      bson_concat (out, before);
      return true;
   }
   if (bson_init_static (&view, data, len)) {
      bson_concat (out, &view);
   }
   return true;
}

static void
token_lost (mgconn_op *op, mgconn_error *error)
{
   mg_error_set (error, MGCONN_ERR_OPERATION,
                 "Cannot run `%s.%s()`: a change event has no _id, its resume token (a $project in the pipeline "
                 "removed it), so the stream could not resume after a fault; keep _id in the events",
                 mg_op_target_name (op), mg_op_method_name (op));
   error->code = 280; /* ChangeStreamFatalError */
}

/* A server that has no change streams says so in its own words. */
static void
maybe_not_supported (mgconn_op *op, mgconn_error *error)
{
   char was[MGCONN_ERROR_MESSAGE_SIZE];
   if (!((error->code == 238 && strstr (error->message, "$changeStream")) || error->code == 40573 ||
         (error->code == 9 && strstr (error->message, "collection name or 1")))) {
      return;
   }
   bson_strncpy (was, error->message, sizeof was);
   mg_error_set (error, MGCONN_ERR_NOT_SUPPORTED,
                 "Cannot run `%s.%s()`: the server does not support change streams (they need a replica set or a "
                 "sharded cluster; a standalone server and FerretDB have none): %s",
                 mg_op_target_name (op), mg_op_method_name (op), was);
}

/* Opens the stream on `collection` (NULL: the database), after `token` when there is one, and puts
 * its first batch, with the token after it, in `reply`; `new_token` gets that token. */
static bool
open_stream (mgconn_op *op, mongoc_client_t *client, const char *collection, const bson_t *pipeline,
             const bson_t *opts, const bson_t *token, bool start_after, bson_t *new_token, bool *saw_event,
             bson_t *reply, mgconn_error *error)
{
   bson_t cmd = BSON_INITIALIZER, server_reply, none = BSON_INITIALIZER;
   bool ok;
   bson_init (new_token);
   stream_command (collection, pipeline, opts, token, start_after, &cmd);
   ok = mg_run_on_selected_server (op, client, &cmd, false, &server_reply, error);
   if (ok) {
      bson_destroy (new_token);
      if (!next_token (&server_reply, token ? token : &none, new_token, saw_event)) {
         token_lost (op, error);
         ok = false;
      } else {
         mg_batch_reply (&server_reply, reply, &op->cursor_id);
         BSON_APPEND_DOCUMENT (reply, "resumeToken", new_token);
      }
   } else {
      maybe_not_supported (op, error);
   }
   bson_destroy (&server_reply);
   bson_destroy (&cmd);
   bson_destroy (&none);
   return ok;
}

/* ---- opening ---- */

static bool
exec_watch (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   bson_t token;
   bson_iter_t it;
   bool saw_event, ok;
   const bson_t *start = NULL;
   bson_t given;
   /* The token it was told to start after is the token until an event comes. */
   if ((bson_iter_init_find (&it, &op->opts, "resumeAfter") || bson_iter_init_find (&it, &op->opts, "startAfter")) &&
       BSON_ITER_HOLDS_DOCUMENT (&it)) {
      uint32_t len;
      const uint8_t *data;
      bson_iter_document (&it, &len, &data);
      if (bson_init_static (&given, data, len)) {
         start = &given;
      }
   }
   ok = open_stream (op, client, op->collection, &op->args, &op->opts, NULL, false, &token, &saw_event, reply, error);
   if (ok && start && bson_empty (&token)) {
      bson_t *r = bson_copy (reply);
      bson_reinit (reply);
      bson_copy_to_excluding_noinit (r, reply, "resumeToken", NULL);
      BSON_APPEND_DOCUMENT (reply, "resumeToken", start);
      bson_destroy (r);
   }
   bson_destroy (&token);
   return ok;
}

/* Opened once more after a fault of the connection: nothing was seen that sending it again would
 * repeat (a read). */
const mg_op_kind mg_watch_kind = {"watch", "watch", exec_watch, true, false, .idempotent = mg_resend_always,
                                  .opens_cursor = true, .takes_session = true};

/* The options watch knows, each of its type; any other is refused at the call, naming it (the
 * thread's last error). */
static bool
check_watch_options (const bson_t *opts)
{
   bson_iter_t it;
   bson_iter_init (&it, opts);
   while (bson_iter_next (&it)) {
      const char *k = bson_iter_key (&it), *want = NULL;
      if (strcmp (k, "fullDocument") == 0 || strcmp (k, "fullDocumentBeforeChange") == 0) {
         want = BSON_ITER_HOLDS_UTF8 (&it) ? NULL : "a string (\"updateLookup\", \"whenAvailable\", \"required\")";
      } else if (strcmp (k, "resumeAfter") == 0 || strcmp (k, "startAfter") == 0 || strcmp (k, "collation") == 0) {
         want = BSON_ITER_HOLDS_DOCUMENT (&it) ? NULL : "a document (a resume token, a collation)";
      } else if (strcmp (k, "startAtOperationTime") == 0) {
         want = BSON_ITER_HOLDS_TIMESTAMP (&it) ? NULL : "a BSON Timestamp";
      } else if (strcmp (k, "showExpandedEvents") == 0) {
         want = BSON_ITER_HOLDS_BOOL (&it) ? NULL : "true or false";
      } else if (strcmp (k, "batchSize") == 0 || strcmp (k, "maxAwaitTimeMS") == 0) {
         want = BSON_ITER_HOLDS_NUMBER (&it) && bson_iter_as_int64 (&it) >= 0 ? NULL : "a number, 0 or more";
      } else if (strcmp (k, "comment") != 0) {
         mg_fail (NULL, MGCONN_ERR_OPTION,
                  "watch: \"%s\" is not a change stream option (fullDocument, fullDocumentBeforeChange, "
                  "resumeAfter, startAfter, startAtOperationTime, showExpandedEvents, batchSize, maxAwaitTimeMS, "
                  "collation, comment, session)",
                  k);
         return false;
      }
      if (want) {
         mg_fail (NULL, MGCONN_ERR_OPTION, "watch: the option \"%s\" must be %s", k, want);
         return false;
      }
   }
   return true;
}

static int
start_watch (mgconn_op **out, mgconn_connection *conn, mgconn_collection *coll, const uint8_t *pipeline,
             size_t pipeline_len, const uint8_t *opts, size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   mg_op_input in = {.coll = coll, .a_name = "the pipeline", .a = pipeline, .a_len = pipeline_len, .a_optional = true,
                     .opts = opts, .opts_len = opts_len};
   mgconn_op *op;
   int rc = mg_op_build (&op, conn, &mg_watch_kind, &in, cb, userdata);
   if (rc) {
      return rc;
   }
   if (!check_watch_options (&op->opts)) {
      mg_op_unref (op);
      return -MGCONN_ERR_OPTION;
   }
   return mg_op_submit (op, out);
}

int
mgconn_collection_watch (mgconn_op **out, mgconn_collection *collection, const uint8_t *pipeline, size_t pipeline_len,
                         const uint8_t *opts, size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   if (!collection) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "watch: the collection is NULL");
   }
   return start_watch (out, NULL, collection, pipeline, pipeline_len, opts, opts_len, cb, userdata);
}

int
mgconn_connection_watch (mgconn_op **out, mgconn_connection *conn, const uint8_t *pipeline, size_t pipeline_len,
                         const uint8_t *opts, size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   return start_watch (out, conn, NULL, pipeline, pipeline_len, opts, opts_len, cb, userdata);
}

mg_change_stream *
mg_change_stream_from_op (const mgconn_op *op)
{
   mg_change_stream *s = bson_malloc0 (sizeof *s);
   bson_iter_t it;
   bson_copy_to (&op->args, &s->pipeline);
   bson_copy_to (&op->opts, &s->opts);
   bson_init (&s->token);
   if (bson_iter_init_find (&it, &op->reply, "resumeToken") && BSON_ITER_HOLDS_DOCUMENT (&it)) {
      uint32_t len;
      const uint8_t *data;
      bson_t view;
      bson_iter_document (&it, &len, &data);
      if (bson_init_static (&view, data, len)) {
         bson_concat (&s->token, &view);
      }
   }
   s->start_after = bson_has_field (&op->opts, "startAfter");
   if (bson_iter_init_find (&it, &op->opts, "maxAwaitTimeMS")) {
      s->max_await_ms = bson_iter_as_int64 (&it);
   }
   if (bson_iter_init_find (&it, &op->opts, "batchSize") && BSON_ITER_HOLDS_NUMBER (&it)) {
      s->batch_size = (int32_t) bson_iter_as_int64 (&it);
   }
   s->collection = op->collection ? bson_strdup (op->collection) : NULL;
   return s;
}

void
mg_change_stream_free (mg_change_stream *s)
{
   if (s) {
      bson_destroy (&s->pipeline);
      bson_destroy (&s->opts);
      bson_destroy (&s->token);
      bson_free (s->collection);
      bson_free (s);
   }
}

/* ---- the next batch ---- */

/* Resumable (the change streams specification): a fault of the connection, a cursor the server no
 * longer has, a server error labelled ResumableChangeStreamError, or, from servers before 4.4,
 * which give no label, one of these codes. */
static bool
resumable (const mgconn_error *e)
{
   static const int32_t codes[] = {6,   7,   43,    63,    89,    91,    133,   150,   189,  234,
                                   262, 9001, 10107, 11600, 11602, 13388, 13435, 13436};
   const uint8_t *data;
   size_t len;
   if (e->category == MGCONN_ERR_NETWORK || e->category == MGCONN_ERR_SERVER_SELECTION) {
      return true;
   }
   if (mgconn_error_labels (e, &data, &len) == 0 && len > 5) {
      bson_t labels;
      bson_iter_t it;
      if (bson_init_static (&labels, data, len) && bson_iter_init (&it, &labels)) {
         while (bson_iter_next (&it)) {
            if (BSON_ITER_HOLDS_UTF8 (&it) && strcmp (bson_iter_utf8 (&it, NULL), "ResumableChangeStreamError") == 0) {
               return true;
            }
         }
      }
   }
   for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
      if (e->code == codes[i]) {
         return true;
      }
   }
   return false;
}

static void
take_token (mg_change_stream *s, bson_t *token, bool saw_event)
{
   bson_destroy (&s->token);
   s->token = *token; /* moved */
   if (saw_event) {
      s->start_after = false;
   }
}

/* Opens the stream again after its token, on a server chosen anew; the old server cursor is let
 * go first (best effort: the server may be the one that failed). */
static bool
resume (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mgconn_cursor *c = op->cursor;
   mg_change_stream *s = c->stream;
   bson_t token;
   bool saw_event, ok;
   if (c->id != 0) {
      mg_kill_server_cursor (client, c->db, c->collection, c->id, c->server_id);
   }
   bson_reinit (reply);
   mgconn_error_cleanup (error);
   mgconn_error_init (error);
   ok = open_stream (op, client, s->collection, &s->pipeline, &s->opts, bson_empty (&s->token) ? NULL : &s->token,
                     s->start_after, &token, &saw_event, reply, error);
   if (ok) {
      c->server_id = op->server_id;
      s->needs_resume = false;
      take_token (s, &token, saw_event);
   } else {
      bson_destroy (&token);
   }
   return ok;
}

static bool
exec_stream_next (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error)
{
   mgconn_cursor *c = op->cursor;
   mg_change_stream *s = c->stream;
   bson_t cmd = BSON_INITIALIZER, server_reply, token;
   bson_error_t be;
   bool ok, saw_event;
   if (s->needs_resume) {
      ok = resume (op, client, reply, error);
      if (!ok && (error->category == MGCONN_ERR_NETWORK || error->category == MGCONN_ERR_SERVER_SELECTION)) {
         s->needs_resume = true; /* still down: the buffer sends this batch again after the reconnect */
      }
      return ok;
   }
   BSON_APPEND_INT64 (&cmd, "getMore", c->id);
   BSON_APPEND_UTF8 (&cmd, "collection", c->collection);
   if (s->batch_size > 0) {
      BSON_APPEND_INT32 (&cmd, "batchSize", s->batch_size);
   }
   if (s->max_await_ms > 0) {
      BSON_APPEND_INT64 (&cmd, "maxTimeMS", s->max_await_ms);
   }
   ok = mg_run_on_server (client, c->db, &cmd, NULL, c->server_id, op, &server_reply, &be);
   if (ok) {
      if (!next_token (&server_reply, &s->token, &token, &saw_event)) {
         bson_destroy (&token);
         token_lost (op, error);
         ok = false;
      } else {
         mg_batch_reply (&server_reply, reply, &op->cursor_id);
         BSON_APPEND_DOCUMENT (reply, "resumeToken", &token);
         take_token (s, &token, saw_event);
      }
   } else {
      mg_error_from_driver (error, &be, &server_reply);
      if (error->category == MGCONN_ERR_NETWORK || error->category == MGCONN_ERR_SERVER_SELECTION) {
         s->needs_resume = true; /* the connection failed: resumed when this batch is sent again */
      } else if (resumable (error)) {
         ok = resume (op, client, reply, error); /* the server said so: at once, once */
      }
   }
   bson_destroy (&server_reply);
   bson_destroy (&cmd);
   return ok;
}

/* Sent again after a fault of the connection: the batch it asks for has not been seen, and the
 * stream resumes after the last one that was (above). */
const mg_op_kind mg_stream_next_kind = {"next", "next", exec_stream_next, true, false,
                                        .idempotent = mg_resend_always, .takes_session = true};
