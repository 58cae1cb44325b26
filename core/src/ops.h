/*
 * ops.h: what the files that define operations share (ops.c, ops_admin.c, ops_more.c, cursor.c,
 * model.c): building an op from checked input, the re-send rules a kind names, and small BSON
 * helpers for replies.
 */
#ifndef MGCONN_OPS_H
#define MGCONN_OPS_H

#include "connection.h"

/* An op's input, checked on the host thread before anything is queued (op_input.c). */
typedef struct {
   const struct mgconn_collection *coll; /* the target of a collection op, else NULL */
   const char *collection; /* a collection named without a handle (create_collection), else NULL */
   const char *a_name;     /* "the document", "the filter", ...; NULL when the op takes none */
   const uint8_t *a;
   size_t a_len;
   bool a_optional;        /* NULL means {} */
   bool a_copied_by_caller; /* checked, not copied into op->args: the caller builds op->args from it
                               (inserts, which put `_id` first in the one copy they make) */
   bool a_stored;          /* documents to store (inserts): empty keys are refused as well, and
                              libmongoc is told not to check them again (input_check.c) */
   const char *b_name;
   const uint8_t *b;
   size_t b_len;
   const uint8_t *opts;
   size_t opts_len;
} mg_op_input;

/* Checks `in`, builds the op with args, args2 and opts copied, or returns the error code. */
int mg_op_build (mgconn_op **built, mgconn_connection *conn, const mg_op_kind *kind, const mg_op_input *in,
                 mgconn_op_cb cb, void *userdata);

/* An mg_op_kind.idempotent for kinds that are always safe to send again (resend_rules.c). */
bool mg_resend_always (const mgconn_op *op, const char **why_not);

/* mg_op_build, then mg_op_submit. */
int mg_op_start (mgconn_op **out, mgconn_connection *conn, const mg_op_kind *kind, const mg_op_input *in,
                 mgconn_op_cb cb, void *userdata);
/* mg_op_submit, once a model's write passed its schema: a refused one fails through its delivery
 * with a ValidationError, and nothing is sent. `what`: 'd' documents, 'r' a replacement, 'u' an
 * update. */
int mg_op_submit_checked (mgconn_op *op, mgconn_op **out, char what);
/* Appends `value` to `array` at index `i`. */
void mg_append_array_value (bson_t *array, uint32_t i, const bson_value_t *value);

/* A libmongoc failure into `error`, with the server's reply (when there is one) kept in `reply`;
 * returns false (op_input.c). */
bool mg_driver_failed (mgconn_error *error, const bson_error_t *be, const bson_t *server_reply, bson_t *reply);

/* True when applying `update` twice leaves what applying it once does (resend_rules.c); else `why_not`. */
bool mg_update_is_idempotent (const bson_t *update, const char **why_not);

/* Index models with a "name" made from their keys where they have none (ops_admin.c). */
int mg_named_indexes (const bson_t *models, bson_t *out);

/* ---- re-send rules (resend_rules.c), for mg_op_kind.idempotent ---- */
bool mg_resend_pins_one_document (const mgconn_op *op, const char **why_not);
bool mg_resend_update_one (const mgconn_op *op, const char **why_not);
bool mg_resend_update_many (const mgconn_op *op, const char **why_not);
bool mg_resend_run_command (const mgconn_op *op, const char **why_not);
/* A command that only reads (ping, find, count, listCollections, ...): sent again like a find. */
bool mg_command_is_read_only (const bson_t *command);
/* Keys for per-document order (buffer.c): the `_id` a filter pins, and a document's `_id`. */
void mg_op_add_filter_key (mgconn_op *op, const bson_t *filter);
void mg_op_add_document_key (mgconn_op *op, const bson_t *doc);
/* Before re-sending an insert: the `_id`s of `docs` (an array) already stored, in `found` (an
 * array of values). A stored `_id` means the first attempt landed. False when the lookup failed. */
bool mg_insert_stored_ids (mgconn_op *op, mongoc_client_t *client, const bson_t *docs, bson_t *found,
                           mgconn_error *error);
/* `v` is among `ids` (numbers compare by value, as the server's `$in` does). */
bool mg_ids_contain (const bson_t *ids, const bson_value_t *v);

#endif
