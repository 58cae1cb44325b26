/*
 * change_stream.h: change streams (change_stream.c), as the cursor code meets them.
 */
#ifndef MG_CHANGE_STREAM_H
#define MG_CHANGE_STREAM_H

#include "connection.h"

typedef struct mg_change_stream mg_change_stream;

/* The kind of the op that opens a stream (mgconn_op_cursor takes its cursor) and of the op that
 * reads a stream's next batch (mgconn_cursor_next starts it for a stream's cursor). */
extern const mg_op_kind mg_watch_kind;
extern const mg_op_kind mg_stream_next_kind;

/* A succeeded watch op's stream state, for the cursor that takes it (host thread). */
mg_change_stream *mg_change_stream_from_op (const mgconn_op *op);
void mg_change_stream_free (mg_change_stream *stream);

#endif
