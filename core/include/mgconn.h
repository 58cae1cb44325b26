/*
 * mgconn.h: the one public header of libmgconn.
 *
 * libmgconn is a MongoDB connection layer for script hosts: connections with Mongoose's events,
 * operation buffering and a model registry, where the host thread never waits for the network.
 *
 * The rules every function below follows, so that any host (C, Python, Lua, a libffi binding) can
 * use it the same way:
 *
 *   Handles   Every object is an opaque handle. An object handed back through an `out` parameter
 *             (always the first parameter) belongs to the caller, who frees it with the matching
 *             `_free`. A pointer returned directly is borrowed from its parent and lives as long
 *             as the parent does, unless the function's comment says otherwise.
 *   BSON      Documents cross the ABI as (const uint8_t *data, size_t len) pairs of BSON bytes.
 *             Input bytes are copied before the call returns; output bytes are borrowed.
 *   Errors    Functions return int: 0 on success, a negative `mgconn_error_category` on failure
 *             (-MGCONN_ERR_OPTION, ...). Details go into the caller's `mgconn_error` when one is
 *             passed, and into a thread-local copy that `mgconn_last_error()` returns.
 *   Threads   Everything is called from host threads. Completion callbacks and event listeners run
 *             only inside `mgconn_runtime_dispatch()` (or a blocking wait, which dispatches), on
 *             the thread that called it; never on a worker or driver thread.
 *   Strings   UTF-8, NUL-terminated. No message ever contains a password.
 */
#ifndef MGCONN_H
#define MGCONN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define MGCONN_EXTERN(type) __declspec (dllexport) type
#elif defined(__GNUC__)
#define MGCONN_EXTERN(type) __attribute__ ((visibility ("default"))) type
#else
#define MGCONN_EXTERN(type) type
#endif

/* The version of this header. mgconn_version() reports the library's, which may be newer. */
#define MGCONN_VERSION_MAJOR 0
#define MGCONN_VERSION_MINOR 1
#define MGCONN_VERSION_PATCH 0
#define MGCONN_VERSION_STRING "0.1.0"

/* ---- Process-wide set-up ------------------------------------------------------------------ */

/* Reference-counted: every successful call returns the new count, and needs one matching
 * mgconn_shutdown(). Two embedded script VMs in one process each hold their own reference, so one
 * shutting down never tears the other's driver state down. Runtimes take a reference of their own.
 * Returns a negative value on failure. */
MGCONN_EXTERN (int) mgconn_init (void);
/* Returns the count left, or -1 when called more often than mgconn_init(). */
MGCONN_EXTERN (int) mgconn_shutdown (void);

/* "0.1.0": the library's version, for hosts without a C preprocessor. */
MGCONN_EXTERN (const char *) mgconn_version (void);
MGCONN_EXTERN (int) mgconn_version_number (void); /* major * 10000 + minor * 100 + patch */

/* ---- Errors -------------------------------------------------------------------------------- */

typedef enum {
   MGCONN_OK = 0,
   MGCONN_ERR_OPTION = 1,             /* a bad URI, option name, type or value */
   MGCONN_ERR_SERVER_SELECTION = 2,   /* no suitable server within serverSelectionTimeoutMS */
   MGCONN_ERR_BUFFER_TIMEOUT = 3,     /* a buffered operation waited bufferTimeoutMS */
   MGCONN_ERR_NOT_CONNECTED = 4,      /* bufferCommands is false and the connection is not up */
   MGCONN_ERR_CONNECTION_CLOSED = 5,  /* the connection was closed */
   MGCONN_ERR_OVERWRITE_MODEL = 6,    /* a model name registered again with another schema */
   MGCONN_ERR_MISSING_SCHEMA = 7,     /* a model looked up that was never registered */
   MGCONN_ERR_OPERATION = 8,          /* the server refused the operation */
   MGCONN_ERR_DUPLICATE_KEY = 9,      /* ... because of a unique index (code 11000) */
   MGCONN_ERR_WRITE = 10,             /* ... with a write error or write concern error */
   MGCONN_ERR_NETWORK = 11,           /* the network failed during the operation */
   MGCONN_ERR_AUTHENTICATION = 12,    /* wrong credentials or mechanism */
   MGCONN_ERR_DOCUMENT_TOO_LARGE = 13, /* over the server's maxBsonObjectSize; nothing was sent */
   MGCONN_ERR_TYPE = 14,              /* a value that cannot be converted to BSON */
   MGCONN_ERR_INVALID_ARGUMENT = 15,  /* misuse of the API: NULL handle, wrong state, bad BSON */
   MGCONN_ERR_CANCELLED = 16,         /* the caller cancelled the operation before it was sent */
   MGCONN_ERR_INTERNAL = 17           /* out of memory, a thread that could not start */
} mgconn_error_category;

#define MGCONN_ERROR_MESSAGE_SIZE 1024
#define MGCONN_ERROR_CODE_NAME_SIZE 64

/* A caller-owned error of fixed size (1120 bytes on 64-bit platforms).
 * `message` and `code_name` are always NUL-terminated. Labels and the server-selection reason live
 * behind `detail`: read them with mgconn_error_labels() and mgconn_error_reason(), and release them
 * with mgconn_error_cleanup() before reusing or dropping a filled struct. */
typedef struct mgconn_error {
   int32_t category; /* mgconn_error_category */
   int32_t code;     /* the server's error code; else libmongoc's; else 0 */
   uint32_t domain;  /* libmongoc's error domain; 0 when the error is mgconn's own */
   uint32_t reserved;
   char code_name[MGCONN_ERROR_CODE_NAME_SIZE]; /* the server's codeName, or "" */
   char message[MGCONN_ERROR_MESSAGE_SIZE];
   void *detail;
   uint64_t reserved2;
} mgconn_error;

MGCONN_EXTERN (void) mgconn_error_init (mgconn_error *error);
MGCONN_EXTERN (void) mgconn_error_cleanup (mgconn_error *error);
/* Copies `src` into `dst` (dst's old content is cleaned up first). */
MGCONN_EXTERN (void) mgconn_error_copy (mgconn_error *dst, const mgconn_error *src);
/* The error's labels as a BSON array ({"0": "TransientTransactionError", ...}); borrowed. */
MGCONN_EXTERN (int) mgconn_error_labels (const mgconn_error *error, const uint8_t **data, size_t *len);
/* For server-selection errors: {type, servers: {"host:port": {type, error}}}, the topology as last
 * seen; an empty document for other errors. Borrowed. */
MGCONN_EXTERN (int) mgconn_error_reason (const mgconn_error *error, const uint8_t **data, size_t *len);
/* "ServerSelection", "BufferTimeout", ...: the category as hosts name their error classes. */
MGCONN_EXTERN (const char *) mgconn_error_category_name (int32_t category);
/* The last error raised on the calling thread by a function that returned non-zero. Borrowed;
 * valid until the next mgconn call on this thread. Never NULL. */
MGCONN_EXTERN (const mgconn_error *) mgconn_last_error (void);

/* ---- Runtime -------------------------------------------------------------------------------- */

typedef struct mgconn_runtime mgconn_runtime;

/* Options (BSON, may be NULL): {"workers": int32 1..256, default 8}.
 * The runtime owns worker threads, a timer thread and a wake-up file descriptor. */
MGCONN_EXTERN (int) mgconn_runtime_new (mgconn_runtime **out,
                                         const uint8_t *opts,
                                         size_t opts_len,
                                         mgconn_error *error);
/* Closes every connection of the runtime (forcefully), waits for their pools to be released and
 * joins the threads. Blocks: call it at teardown, not in a frame. Callbacks of operations that
 * complete during teardown are not run. */
MGCONN_EXTERN (void) mgconn_runtime_free (mgconn_runtime *rt);

/* A file descriptor that becomes readable when dispatch has work. Watch it with poll/epoll or an
 * event loop's reader; do not read it yourself. Borrowed: valid until mgconn_runtime_free(). */
MGCONN_EXTERN (int) mgconn_runtime_fd (const mgconn_runtime *rt);

/* Runs due completions and events on the calling thread, at most `max` of them (0 = all that are
 * due). Never blocks on the network. Returns how many ran. Re-entrant calls (dispatch from inside a
 * callback) return 0 at once. */
MGCONN_EXTERN (int) mgconn_runtime_dispatch (mgconn_runtime *rt, int32_t max);

/* Log lines from mgconn and libmongoc (warnings and above) for this runtime, delivered through
 * dispatch. Without a handler they go to stderr. Passwords are already masked. */
typedef void (*mgconn_log_cb) (int32_t level, const char *domain, const char *message, void *userdata);
#define MGCONN_LOG_ERROR 1
#define MGCONN_LOG_WARNING 2
#define MGCONN_LOG_INFO 3
#define MGCONN_LOG_DEBUG 4
MGCONN_EXTERN (void) mgconn_runtime_set_log_handler (mgconn_runtime *rt, mgconn_log_cb cb, void *userdata);

/* ---- Connections ----------------------------------------------------------------------------- */

typedef struct mgconn_connection mgconn_connection;

#define MGCONN_STATE_DISCONNECTED 0
#define MGCONN_STATE_CONNECTED 1
#define MGCONN_STATE_CONNECTING 2
#define MGCONN_STATE_DISCONNECTING 3
#define MGCONN_STATE_UNINITIALIZED 99

/* Creates a connection. With a URI it starts opening at once (state 2; `connecting` is delivered
 * by the next dispatch, so listeners attached right after this call still see it). With uri NULL
 * it stays uninitialized (99) until mgconn_connection_open(). Options are a BSON document whose
 * keys are MongoDB's URI option names or mgconn's own (bufferCommands, bufferTimeoutMS, autoIndex,
 * autoCreate, dbName, user, pass, debug), matched case-insensitively; they beat the URI's. Every
 * option is checked before anything starts: a bad one is -MGCONN_ERR_OPTION naming it. */
MGCONN_EXTERN (int) mgconn_connection_new (mgconn_connection **out,
                                            mgconn_runtime *rt,
                                            const char *uri,
                                            const uint8_t *opts,
                                            size_t opts_len,
                                            mgconn_error *error);
/* Opens an uninitialized or closed connection. On a connection that is open or opening with the
 * same URI this does nothing and returns 0; with another URI it is -MGCONN_ERR_INVALID_ARGUMENT
 * and the open connection is left as it is. */
MGCONN_EXTERN (int) mgconn_connection_open (mgconn_connection *conn,
                                             const char *uri,
                                             const uint8_t *opts,
                                             size_t opts_len,
                                             mgconn_error *error);
/* Drops the caller's handle. A connection that is still open is closed forcefully first (in the
 * background; the call does not wait). Its listeners are not called any more. */
MGCONN_EXTERN (void) mgconn_connection_free (mgconn_connection *conn);

MGCONN_EXTERN (int32_t) mgconn_connection_ready_state (const mgconn_connection *conn);
/* The database name ("test" when the URI names none), the first seed host and its port. Borrowed;
 * valid until the connection is opened again or freed. */
MGCONN_EXTERN (const char *) mgconn_connection_name (const mgconn_connection *conn);
MGCONN_EXTERN (const char *) mgconn_connection_host (const mgconn_connection *conn);
MGCONN_EXTERN (int32_t) mgconn_connection_port (const mgconn_connection *conn);
/* A process-unique number for this connection, as Mongoose's `id`. */
MGCONN_EXTERN (int64_t) mgconn_connection_id (const mgconn_connection *conn);
/* The runtime the connection belongs to; borrowed. */
MGCONN_EXTERN (mgconn_runtime *) mgconn_connection_runtime (const mgconn_connection *conn);

/* ---- Events ---------------------------------------------------------------------------------- */

typedef struct mgconn_event mgconn_event;

typedef enum {
   MGCONN_EVENT_CONNECTING = 1,
   MGCONN_EVENT_CONNECTED = 2,
   MGCONN_EVENT_OPEN = 3,
   MGCONN_EVENT_DISCONNECTING = 4,
   MGCONN_EVENT_DISCONNECTED = 5,
   MGCONN_EVENT_CLOSE = 6,
   MGCONN_EVENT_RECONNECTED = 7,
   MGCONN_EVENT_ERROR = 8
} mgconn_event_type;

/* An event listener. `event` is borrowed for the duration of the call. Runs on the dispatching
 * thread. */
typedef void (*mgconn_event_cb) (mgconn_connection *conn, const mgconn_event *event, void *userdata);

/* Listens to one event by name ("connected", ...), or to every event when name is NULL.
 * Host thread only. The same (name, cb, userdata) added twice is called twice, like Node's on(). */
MGCONN_EXTERN (int) mgconn_connection_on (mgconn_connection *conn,
                                           const char *name,
                                           mgconn_event_cb cb,
                                           void *userdata);
/* Removes one registration added with the same (name, cb, userdata). Returns 0, or
 * -MGCONN_ERR_INVALID_ARGUMENT when there was none. Safe to call from inside a listener. */
MGCONN_EXTERN (int) mgconn_connection_off (mgconn_connection *conn,
                                            const char *name,
                                            mgconn_event_cb cb,
                                            void *userdata);

MGCONN_EXTERN (int32_t) mgconn_event_type_of (const mgconn_event *event);
MGCONN_EXTERN (const char *) mgconn_event_name (const mgconn_event *event);
/* The event's error (`error`, and `disconnected` after a loss: the last monitoring error), or NULL. */
MGCONN_EXTERN (const mgconn_error *) mgconn_event_error (const mgconn_event *event);
/* The event type's name without an event, e.g. for building listener tables: "connected". */
MGCONN_EXTERN (const char *) mgconn_event_type_name (int32_t type);

/* ---- Operations ------------------------------------------------------------------------------ */

typedef struct mgconn_op mgconn_op;

/* Called once, on the dispatching thread, when the operation has finished (succeeded, failed or
 * was cancelled). The op is borrowed for the call. */
typedef void (*mgconn_op_cb) (mgconn_op *op, void *userdata);

#define MGCONN_OP_PENDING 0
#define MGCONN_OP_SUCCEEDED 1
#define MGCONN_OP_FAILED 2

/* Every function that starts an operation takes `out` (may be NULL: then nobody waits for it and
 * the op frees itself after its callback) and returns 0 once the operation is accepted. Input
 * errors (bad BSON, a NULL name) return non-zero and start nothing. Everything that happens later
 * arrives through the op: its callback, mgconn_op_wait(), mgconn_op_status(). */

MGCONN_EXTERN (void) mgconn_op_free (mgconn_op *op);
MGCONN_EXTERN (int32_t) mgconn_op_status (const mgconn_op *op);
/* Blocks the calling thread until the op finishes or timeout_ms passes (negative: no limit),
 * running dispatch meanwhile, so other callbacks and events still run. Returns the status. */
MGCONN_EXTERN (int32_t) mgconn_op_wait (mgconn_op *op, int32_t timeout_ms);
/* Cancels an operation that has not been sent to the server yet: it fails with
 * MGCONN_ERR_CANCELLED. Returns 0, or -MGCONN_ERR_INVALID_ARGUMENT when it was already sent or done. */
MGCONN_EXTERN (int) mgconn_op_cancel (mgconn_op *op);
/* The reply of a succeeded op (an empty document before that). Borrowed from the op. */
MGCONN_EXTERN (int) mgconn_op_reply (const mgconn_op *op, const uint8_t **data, size_t *len);
/* The error of a failed op, or NULL. Borrowed from the op. */
MGCONN_EXTERN (const mgconn_error *) mgconn_op_error (const mgconn_op *op);

/* Runs a database command on `db` (NULL: the connection's database). Reply: the server's reply. */
MGCONN_EXTERN (int) mgconn_run_command (mgconn_op **out,
                                         mgconn_connection *conn,
                                         const char *db,
                                         const uint8_t *command,
                                         size_t command_len,
                                         mgconn_op_cb cb,
                                         void *userdata);

/* Inserts one document; an `_id` ObjectId is added when the document has none.
 * Reply: {"insertedId": <id>}. */
MGCONN_EXTERN (int) mgconn_collection_insert_one (mgconn_op **out,
                                                   mgconn_connection *conn,
                                                   const char *collection,
                                                   const uint8_t *document,
                                                   size_t document_len,
                                                   const uint8_t *opts,
                                                   size_t opts_len,
                                                   mgconn_op_cb cb,
                                                   void *userdata);

/* Finds documents. opts: {sort, projection, skip, limit, batchSize, ...} as the find command
 * takes them. Reply: {"documents": [ ... ]}, every matching document. */
MGCONN_EXTERN (int) mgconn_collection_find (mgconn_op **out,
                                             mgconn_connection *conn,
                                             const char *collection,
                                             const uint8_t *filter,
                                             size_t filter_len,
                                             const uint8_t *opts,
                                             size_t opts_len,
                                             mgconn_op_cb cb,
                                             void *userdata);

/* Closes the connection (see the events in the docs). With force, operations in flight fail at
 * once with MGCONN_ERR_CONNECTION_CLOSED instead of being waited for. The op succeeds once the
 * connection is closed. */
MGCONN_EXTERN (int) mgconn_connection_close (mgconn_op **out,
                                              mgconn_connection *conn,
                                              int32_t force,
                                              mgconn_op_cb cb,
                                              void *userdata);

#ifdef __cplusplus
}
#endif

#endif /* MGCONN_H */
