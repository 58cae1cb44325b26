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

/* The value of any macro or enumerator of this header by its name ("MGCONN_STATE_CONNECTED",
 * "MGCONN_ERR_NETWORK", "MGCONN_ERROR_SIZE", "MGCONN_VERSION_MAJOR", ...), for hosts without a C
 * preprocessor. Returns 0, or -MGCONN_ERR_INVALID_ARGUMENT for a name this library does not know. */
MGCONN_EXTERN (int) mgconn_constant (const char *name, int64_t *value);

/* "0.1.0": the library's version, for hosts without a C preprocessor. */
MGCONN_EXTERN (const char *) mgconn_version (void);
/* major * 10000 + minor * 100 + patch: 100 for 0.1.0. */
MGCONN_EXTERN (int) mgconn_version_number (void);

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
   MGCONN_ERR_INTERNAL = 17,          /* out of memory, a thread that could not start */
   MGCONN_ERR_OUTCOME_UNKNOWN = 18,   /* a write whose connection failed before its reply, not sent
                                         again: it may or may not have been applied */
   MGCONN_ERR_VALIDATION = 19,        /* a model's write with a value of another type than its schema
                                         declares; nothing was sent */
   MGCONN_ERR_NOT_SUPPORTED = 20      /* the server has no such feature (transactions on a standalone
                                         server or FerretDB, change streams) */
} mgconn_error_category;

#define MGCONN_ERROR_MESSAGE_SIZE 1024
#define MGCONN_ERROR_CODE_NAME_SIZE 64
#define MGCONN_ERROR_SIZE 1120 /* sizeof (mgconn_error) on 64-bit platforms, asserted in error.c */

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

/* Zeroes a struct before first use (a zeroed struct is initialised too). */
MGCONN_EXTERN (void) mgconn_error_init (mgconn_error *error);
/* Releases what `detail` holds and zeroes the struct; safe on an initialised, unused struct. */
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

/* Options (BSON, may be NULL): {"workers": int32 1..256, default 8}: the worker threads started
 * with the runtime and kept. More are started whenever work is queued and none is idle (up to
 * 1024), so that a connection whose server hangs never delays another; those leave after 10 s idle.
 * The runtime owns worker threads, a timer thread and a wake-up file descriptor. */
MGCONN_EXTERN (int) mgconn_runtime_new (mgconn_runtime **out,
                                         const uint8_t *opts,
                                         size_t opts_len,
                                         mgconn_error *error);
/* Closes every connection of the runtime (forcefully), waits for their pools to be released and
 * joins the threads. Blocks: call it at teardown, not in a frame. Callbacks of operations that
 * complete during teardown are not run. A worker still blocked on a hung server after 1 s is left
 * behind: the call returns, and that thread keeps the runtime's memory and its reference on the driver
 * until it ends. */
MGCONN_EXTERN (void) mgconn_runtime_free (mgconn_runtime *rt);

/* A file descriptor that becomes readable when dispatch has work. Watch it with poll/epoll or an
 * event loop's reader; do not read it yourself. It may read ready once with nothing to run (a
 * wake-up that landed just after the dispatch that ran its work): that dispatch returns 0 and clears
 * it. Borrowed: valid until mgconn_runtime_free(). */
MGCONN_EXTERN (int) mgconn_runtime_fd (const mgconn_runtime *rt);

/* Runs due completions and events on the calling thread, at most `max` of them (0 = all that are
 * due). Never blocks on the network. Returns how many ran. A dispatch from inside a callback (a
 * blocking wait in a listener, or a direct call) runs the items due next, in the one order of the
 * runtime: it continues where the outer dispatch stands, and the outer one goes on after them. */
MGCONN_EXTERN (int) mgconn_runtime_dispatch (mgconn_runtime *rt, int32_t max);

/* A host's own callback for mgconn_runtime_post. */
typedef void (*mgconn_post_cb) (void *userdata);
/* Queues `cb` (userdata): dispatch runs it in order with completions and events, for a result the
 * host knows at once but delivers as a callback (an already-open connection's "open" promise, a
 * value that fails one operation). The wake-up fd is readable until it has run, so a host that
 * dispatches only when the fd is readable still sees it. Any thread. When the runtime is freed
 * before it ran, `drop` (may be NULL) is called with userdata instead, on the freeing thread. */
MGCONN_EXTERN (int) mgconn_runtime_post (mgconn_runtime *rt, mgconn_post_cb cb, mgconn_post_cb drop, void *userdata);

/* Runtime-wide settings, as Mongoose's mongoose.set(): a BSON document of
 *   bufferCommands (bool), bufferTimeoutMS (int), autoIndex (bool), autoCreate (bool),
 *   debug (bool: one log line per operation as it is sent, level MGCONN_LOG_DEBUG, domain "debug"),
 *   pluralization (bool: model names become collection names through the pluraliser),
 *   overwriteModels (bool: registering a model name again replaces it).
 * null unsets a setting. A schema's option beats a connection's, which beats these, which beat the
 * defaults; they are read again for every operation. Host thread only. */
MGCONN_EXTERN (int) mgconn_runtime_set (mgconn_runtime *rt, const uint8_t *settings, size_t settings_len, mgconn_error *error);
/* The setting's value (bools as 0/1), or -1 when it is not set. Returns -MGCONN_ERR_OPTION for an
 * unknown name. */
MGCONN_EXTERN (int) mgconn_runtime_get (const mgconn_runtime *rt, const char *name, int32_t *value);

/* Log lines from mgconn and libmongoc (warnings and above; libmongoc's "stream" and "socket"
 * warnings, which a broken connection repeats and the events already report, at MGCONN_LOG_DEBUG)
 * for this runtime, delivered through dispatch. Without a handler they go to stderr, except debug
 * lines other than the debug setting's. Passwords are already masked. */
typedef void (*mgconn_log_cb) (int32_t level, const char *domain, const char *message, void *userdata);
#define MGCONN_LOG_ERROR 1
#define MGCONN_LOG_WARNING 2
#define MGCONN_LOG_INFO 3
#define MGCONN_LOG_DEBUG 4
/* The host's own pointer for the runtime (NULL at first), for a callback that is handed only a
 * handle (mgconn_connection_runtime, then this): a Lua binding finds its state through it. */
MGCONN_EXTERN (void) mgconn_runtime_set_host_data (mgconn_runtime *rt, void *host_data);
MGCONN_EXTERN (void *) mgconn_runtime_host_data (const mgconn_runtime *rt);
/* Sets (or, with cb NULL, removes) the runtime's log handler. Host thread only. */
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
 * autoCreate, dbName, user, pass, debug, resendInterrupted, maxOpenCursors), matched
 * case-insensitively; they beat the URI's. Every option is checked before anything starts: a bad one is -MGCONN_ERR_OPTION naming
 * it. resendInterrupted (bool, default true): an operation whose connection fails before its reply
 * is sent again after the reconnect when that is safe (see MGCONN_ERR_OUTCOME_UNKNOWN); false sends
 * nothing again. An operation's options may hold it too, and beat the connection's.
 * maxOpenCursors (int, default 64; 0: no limit): at most this many queries running plus cursors
 * left open on the server. A server keeps resources per open cursor (FerretDB: one of 100 database
 * connections), so past the limit a further find or aggregate waits, up to its bufferTimeoutMS, for
 * a cursor to be read to its end, closed or freed, while every other operation goes on. */
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

/* MGCONN_STATE_*: Mongoose's readyState, as of the last event the host has been told of: the last
 * one dispatched, or queued by the host's own call (after create or open_uri it is connecting, after
 * close(force) disconnected). It never changes between two dispatches otherwise, so it always agrees
 * with the events a listener has seen. Inside one of the connection's listeners it is the state the
 * event was emitted in (3 in `disconnecting`, even when the close has gone further since). */
MGCONN_EXTERN (int32_t) mgconn_connection_ready_state (const mgconn_connection *conn);
/* The database name ("test" when the URI names none). Borrowed; valid until the connection is
 * opened again or freed. */
MGCONN_EXTERN (const char *) mgconn_connection_name (const mgconn_connection *conn);
/* The first seed host, as the URI spells it. Borrowed, as the name. */
MGCONN_EXTERN (const char *) mgconn_connection_host (const mgconn_connection *conn);
/* The first seed host's port (27017 when the URI names none). */
MGCONN_EXTERN (int32_t) mgconn_connection_port (const mgconn_connection *conn);
/* A process-unique number for this connection, as Mongoose's `id`. */
MGCONN_EXTERN (int64_t) mgconn_connection_id (const mgconn_connection *conn);
/* A snapshot of the connection's queue as BSON, written into the caller's buffer:
 * {"inFlight": n, "waiting": n, "peakInFlight": n, "maxPoolSize": n, "openCursors": n,
 * "maxOpenCursors": n} (openCursors: queries running plus server cursors left open). Returns the document's
 * length, or -MGCONN_ERR_INVALID_ARGUMENT when `size` is too small (256 bytes always suffice). */
MGCONN_EXTERN (int) mgconn_connection_stats (const mgconn_connection *conn, uint8_t *buf, size_t size);
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
   MGCONN_EVENT_ERROR = 8,
   MGCONN_EVENT_INDEX = 9 /* a model's event */
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

/* Ends a registration made with mgconn_connection_listen() or mgconn_model_listen(): called once,
 * on the host thread, with its userdata, after the registration is gone (off, a ONCE listener that
 * has run, or the host's last handle freed) and no call of it is running. A host drops its
 * reference to the callback here. */
typedef void (*mgconn_release_cb) (void *userdata);

typedef enum {
   MGCONN_LISTEN_ONCE = 1 /* removed as it is called: for the next event only (Node's once) */
} mgconn_listen_flags;

/* mgconn_connection_on() with flags (MGCONN_LISTEN_*) and a release for its userdata (may be NULL). The
 * registration lasts until mgconn_connection_off() with the same (name, cb, userdata), its ONCE
 * call, or the free of the connection's last host handle. Host thread only. */
MGCONN_EXTERN (int) mgconn_connection_listen (mgconn_connection *conn,
                                               const char *name,
                                               int32_t flags,
                                               mgconn_release_cb release,
                                               mgconn_event_cb cb,
                                               void *userdata);

/* Called for each live registration: its event type (MGCONN_EVENT_*, 0 for every event), flags and
 * userdata (`listener_userdata`); `userdata` is the walk's. A non-zero return stops the walk and is
 * returned. */
typedef int (*mgconn_listener_visit_cb) (int32_t type, int32_t flags, void *listener_userdata, void *userdata);
/* Walks the connection's live registrations made with `cb`, in order (a host's garbage collector
 * visiting the callbacks it gave; a host making a connection again, with its listeners, in the
 * child of a fork). Host thread only. Returns 0, or the first non-zero return of visit. */
MGCONN_EXTERN (int) mgconn_connection_visit_listeners (const mgconn_connection *conn,
                                                        mgconn_event_cb cb,
                                                        mgconn_listener_visit_cb visit,
                                                        void *userdata);

/* The event's MGCONN_EVENT_* type. Inside a listener only: the event is borrowed for the call. */
MGCONN_EXTERN (int32_t) mgconn_event_type_of (const mgconn_event *event);
/* The event's name ("connected", ...); static. Inside a listener only. */
MGCONN_EXTERN (const char *) mgconn_event_name (const mgconn_event *event);
/* The event's error (`error`, and `disconnected` after a loss: the last monitoring error), or NULL. */
MGCONN_EXTERN (const mgconn_error *) mgconn_event_error (const mgconn_event *event);
/* The event type's name without an event, e.g. for building listener tables: "connected". */
MGCONN_EXTERN (const char *) mgconn_event_type_name (int32_t type);

/* Events without callbacks, for hosts that cannot hand C a function pointer (libffi, ctypes):
 * with a capacity > 0, every event dispatch delivers to this connection is also kept, in order, in
 * a ring of that many events (when full, the oldest is dropped). 0 stops keeping and drops what is
 * kept. Host thread only. */
MGCONN_EXTERN (int) mgconn_connection_queue_events (mgconn_connection *conn, int32_t capacity);
/* Takes the oldest kept event: returns its type (MGCONN_EVENT_*), or 0 when none is kept. `error`
 * (may be NULL; cleaned up first) receives the event's error, category 0 when it has none. Host
 * thread only. */
MGCONN_EXTERN (int32_t) mgconn_connection_next_event (mgconn_connection *conn, mgconn_error *error);

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

/* Drops the caller's handle. A pending op still runs; its callback is still called, and the op is
 * freed after it. */
MGCONN_EXTERN (void) mgconn_op_free (mgconn_op *op);
/* MGCONN_OP_PENDING until dispatch has run the op's completion, then SUCCEEDED or FAILED. */
MGCONN_EXTERN (int32_t) mgconn_op_status (const mgconn_op *op);
/* Blocks the calling thread until the op finishes or timeout_ms passes (negative: no limit),
 * running dispatch meanwhile, so other callbacks and events still run. Returns the status. */
MGCONN_EXTERN (int32_t) mgconn_op_wait (mgconn_op *op, int32_t timeout_ms);
/* Cancels an operation that has not been sent to the server yet: it fails with
 * MGCONN_ERR_CANCELLED. Returns 0, or -MGCONN_ERR_INVALID_ARGUMENT when it was already sent or done. */
MGCONN_EXTERN (int) mgconn_op_cancel (mgconn_op *op);
/* The op's reply: a succeeded op's result; for a failed op the server's reply when there was one;
 * an empty document while pending. Borrowed from the op. */
MGCONN_EXTERN (int) mgconn_op_reply (const mgconn_op *op, const uint8_t **data, size_t *len);
/* The error of a failed op, or NULL. Borrowed from the op. */
MGCONN_EXTERN (const mgconn_error *) mgconn_op_error (const mgconn_op *op);
/* How many times the op was sent again because its connection failed before the reply (0: it ran
 * once). A succeeded op that was re-sent also says so in its reply: {"resent": n}. */
MGCONN_EXTERN (int32_t) mgconn_op_resent (const mgconn_op *op);

/* Runs a database command on `db` (NULL: the connection's database). Reply: the server's reply. */
MGCONN_EXTERN (int) mgconn_run_command (mgconn_op **out,
                                         mgconn_connection *conn,
                                         const char *db,
                                         const uint8_t *command,
                                         size_t command_len,
                                         mgconn_op_cb cb,
                                         void *userdata);

/* ---- Collections ------------------------------------------------------------------------------ */

typedef struct mgconn_collection mgconn_collection;

/* A raw collection of `conn`'s database, as Mongoose's conn.collection(name): its operations are
 * buffered like a model's, without a schema. Belongs to the caller. */
MGCONN_EXTERN (int) mgconn_connection_collection (mgconn_collection **out,
                                                   mgconn_connection *conn,
                                                   const char *name,
                                                   mgconn_error *error);
/* Drops the caller's handle; operations already started go on. */
MGCONN_EXTERN (void) mgconn_collection_free (mgconn_collection *collection);
/* The collection's name. Borrowed from the collection. */
MGCONN_EXTERN (const char *) mgconn_collection_name (const mgconn_collection *collection);
/* The connection the collection belongs to. Borrowed from the collection. */
MGCONN_EXTERN (mgconn_connection *) mgconn_collection_connection (const mgconn_collection *collection);

/* ---- Collection operations ------------------------------------------------------------------
 *
 * All take a collection (raw, or a model's: mgconn_model_collection), BSON in, and finish with a
 * reply document.
 * `opts` (may be NULL) are the server command's own options (e.g. {"upsert": true}, {"sort": ...,
 * "limit": 5}, {"ordered": false}, {"collation": ...}) and pass through unchanged. A failed op's
 * reply holds the server's reply when there was one (writeErrors, nInserted, ...).
 * Documents larger than the server's maxBsonObjectSize fail with MGCONN_ERR_DOCUMENT_TOO_LARGE
 * and are not sent. */

/* Inserts one document; an ObjectId `_id` is added first when it has none.
 * Reply: {"insertedId": <id>}. */
MGCONN_EXTERN (int) mgconn_collection_insert_one (mgconn_op **out,
                                                   mgconn_collection *collection,
                                                   const uint8_t *document,
                                                   size_t document_len,
                                                   const uint8_t *opts,
                                                   size_t opts_len,
                                                   mgconn_op_cb cb,
                                                   void *userdata);
/* `documents` is a BSON array ({"0": {...}, "1": {...}}). Reply: {"insertedIds": [<id>, ...]}. */
MGCONN_EXTERN (int) mgconn_collection_insert_many (mgconn_op **out,
                                                    mgconn_collection *collection,
                                                    const uint8_t *documents,
                                                    size_t documents_len,
                                                    const uint8_t *opts,
                                                    size_t opts_len,
                                                    mgconn_op_cb cb,
                                                    void *userdata);
/* Reply: {"document": <the first match, or null>}. */
MGCONN_EXTERN (int) mgconn_collection_find_one (mgconn_op **out,
                                                 mgconn_collection *collection,
                                                 const uint8_t *filter,
                                                 size_t filter_len,
                                                 const uint8_t *opts,
                                                 size_t opts_len,
                                                 mgconn_op_cb cb,
                                                 void *userdata);
/* Starts a query. Reply: {"batch": [first documents], "done": bool}; when not done, take the
 * cursor with mgconn_op_cursor() and fetch further batches with mgconn_cursor_next(). Results are
 * never collected all at once. opts: the find command's (sort, projection, skip, limit, batchSize). */
MGCONN_EXTERN (int) mgconn_collection_find (mgconn_op **out,
                                             mgconn_collection *collection,
                                             const uint8_t *filter,
                                             size_t filter_len,
                                             const uint8_t *opts,
                                             size_t opts_len,
                                             mgconn_op_cb cb,
                                             void *userdata);
/* `pipeline` is a BSON array. Reply and cursor as for find. */
MGCONN_EXTERN (int) mgconn_collection_aggregate (mgconn_op **out,
                                                  mgconn_collection *collection,
                                                  const uint8_t *pipeline,
                                                  size_t pipeline_len,
                                                  const uint8_t *opts,
                                                  size_t opts_len,
                                                  mgconn_op_cb cb,
                                                  void *userdata);
/* `update` is an update document ({"$set": ...}) or pipeline. Reply: {"matchedCount",
 * "modifiedCount", "upsertedCount", and "upsertedId" when one was inserted}. */
MGCONN_EXTERN (int) mgconn_collection_update_one (mgconn_op **out,
                                                   mgconn_collection *collection,
                                                   const uint8_t *filter,
                                                   size_t filter_len,
                                                   const uint8_t *update,
                                                   size_t update_len,
                                                   const uint8_t *opts,
                                                   size_t opts_len,
                                                   mgconn_op_cb cb,
                                                   void *userdata);
/* As update_one, for every matching document. */
MGCONN_EXTERN (int) mgconn_collection_update_many (mgconn_op **out,
                                                    mgconn_collection *collection,
                                                    const uint8_t *filter,
                                                    size_t filter_len,
                                                    const uint8_t *update,
                                                    size_t update_len,
                                                    const uint8_t *opts,
                                                    size_t opts_len,
                                                    mgconn_op_cb cb,
                                                    void *userdata);
/* Reply as for update_one. */
MGCONN_EXTERN (int) mgconn_collection_replace_one (mgconn_op **out,
                                                    mgconn_collection *collection,
                                                    const uint8_t *filter,
                                                    size_t filter_len,
                                                    const uint8_t *replacement,
                                                    size_t replacement_len,
                                                    const uint8_t *opts,
                                                    size_t opts_len,
                                                    mgconn_op_cb cb,
                                                    void *userdata);
/* Reply: {"deletedCount": n}. */
MGCONN_EXTERN (int) mgconn_collection_delete_one (mgconn_op **out,
                                                   mgconn_collection *collection,
                                                   const uint8_t *filter,
                                                   size_t filter_len,
                                                   const uint8_t *opts,
                                                   size_t opts_len,
                                                   mgconn_op_cb cb,
                                                   void *userdata);
/* As delete_one, for every matching document. */
MGCONN_EXTERN (int) mgconn_collection_delete_many (mgconn_op **out,
                                                    mgconn_collection *collection,
                                                    const uint8_t *filter,
                                                    size_t filter_len,
                                                    const uint8_t *opts,
                                                    size_t opts_len,
                                                    mgconn_op_cb cb,
                                                    void *userdata);
/* Reply: {"count": int64}. opts: skip, limit, hint, collation. */
MGCONN_EXTERN (int) mgconn_collection_count_documents (mgconn_op **out,
                                                        mgconn_collection *collection,
                                                        const uint8_t *filter,
                                                        size_t filter_len,
                                                        const uint8_t *opts,
                                                        size_t opts_len,
                                                        mgconn_op_cb cb,
                                                        void *userdata);
/* Reply: {"count": int64}, from the collection's metadata. */
MGCONN_EXTERN (int) mgconn_collection_estimated_document_count (mgconn_op **out,
                                                                 mgconn_collection *collection,
                                                                 const uint8_t *opts,
                                                                 size_t opts_len,
                                                                 mgconn_op_cb cb,
                                                                 void *userdata);
/* `indexes` is a BSON array of index models: [{"key": {"name": 1}, "unique": true, "name": ...}];
 * a name is made from the keys when absent. Reply: {"names": [...]} and the server's fields. */
MGCONN_EXTERN (int) mgconn_collection_create_indexes (mgconn_op **out,
                                                       mgconn_collection *collection,
                                                       const uint8_t *indexes,
                                                       size_t indexes_len,
                                                       const uint8_t *opts,
                                                       size_t opts_len,
                                                       mgconn_op_cb cb,
                                                       void *userdata);
/* Drops the collection; a collection that does not exist is not an error. Reply: {}. */
MGCONN_EXTERN (int) mgconn_collection_drop (mgconn_op **out,
                                             mgconn_collection *collection,
                                             mgconn_op_cb cb,
                                             void *userdata);
/* opts: the create command's ({"capped": true, "size": n, "max": n, "collation": ...}).
 * An existing collection fails with the server's NamespaceExists (code 48). Reply: {}. */
MGCONN_EXTERN (int) mgconn_connection_create_collection (mgconn_op **out,
                                                          mgconn_connection *conn,
                                                          const char *name,
                                                          const uint8_t *opts,
                                                          size_t opts_len,
                                                          mgconn_op_cb cb,
                                                          void *userdata);
/* Drops the connection's database. Reply: {}. */
MGCONN_EXTERN (int) mgconn_connection_drop_database (mgconn_op **out,
                                                      mgconn_connection *conn,
                                                      mgconn_op_cb cb,
                                                      void *userdata);

/* `requests` is a BSON array, in order, of {"insertOne": {"document": d}}, {"updateOne" or
 * "updateMany": {"filter": f, "update": u, "upsert": b, "arrayFilters": [...]}}, {"replaceOne":
 * {"filter": f, "replacement": r, "upsert": b}}, {"deleteOne" or "deleteMany": {"filter": f}}; an
 * inserted document without `_id` gets an ObjectId. opts: "ordered" (default true). Reply:
 * {"insertedIds": {"<index>": id}, "insertedCount", "matchedCount", "modifiedCount",
 * "deletedCount", "upsertedCount", "upsertedIds": {"<index>": id}}. */
MGCONN_EXTERN (int) mgconn_collection_bulk_write (mgconn_op **out,
                                                   mgconn_collection *collection,
                                                   const uint8_t *requests,
                                                   size_t requests_len,
                                                   const uint8_t *opts,
                                                   size_t opts_len,
                                                   mgconn_op_cb cb,
                                                   void *userdata);
/* findAndModify. A NULL filter is {}. opts as the server takes them: "new" (true: the document
 * after the change), "fields" (projection), "sort", "upsert", "collation", "hint", "maxTimeMS".
 * Reply: {"document": the document, or null when nothing matched}. */
MGCONN_EXTERN (int) mgconn_collection_find_one_and_update (mgconn_op **out,
                                                            mgconn_collection *collection,
                                                            const uint8_t *filter,
                                                            size_t filter_len,
                                                            const uint8_t *update,
                                                            size_t update_len,
                                                            const uint8_t *opts,
                                                            size_t opts_len,
                                                            mgconn_op_cb cb,
                                                            void *userdata);
/* As find_one_and_update, with a replacement document. */
MGCONN_EXTERN (int) mgconn_collection_find_one_and_replace (mgconn_op **out,
                                                             mgconn_collection *collection,
                                                             const uint8_t *filter,
                                                             size_t filter_len,
                                                             const uint8_t *replacement,
                                                             size_t replacement_len,
                                                             const uint8_t *opts,
                                                             size_t opts_len,
                                                             mgconn_op_cb cb,
                                                             void *userdata);
/* As find_one_and_update, removing the document found (opts: "fields", "sort", "collation"). */
MGCONN_EXTERN (int) mgconn_collection_find_one_and_delete (mgconn_op **out,
                                                            mgconn_collection *collection,
                                                            const uint8_t *filter,
                                                            size_t filter_len,
                                                            const uint8_t *opts,
                                                            size_t opts_len,
                                                            mgconn_op_cb cb,
                                                            void *userdata);
/* The distinct values of the field opts["key"] (required) among the documents matching `filter`
 * (NULL: all). Reply: {"values": [...]}. */
MGCONN_EXTERN (int) mgconn_collection_distinct (mgconn_op **out,
                                                mgconn_collection *collection,
                                                const uint8_t *filter,
                                                size_t filter_len,
                                                const uint8_t *opts,
                                                size_t opts_len,
                                                mgconn_op_cb cb,
                                                void *userdata);
/* Reply: {"indexes": [the index documents]}; a collection that does not exist has none. */
MGCONN_EXTERN (int) mgconn_collection_list_indexes (mgconn_op **out,
                                                    mgconn_collection *collection,
                                                    const uint8_t *opts,
                                                    size_t opts_len,
                                                    mgconn_op_cb cb,
                                                    void *userdata);
/* Drops the index opts["index"] (a name or a keys document), or every index but _id_ when absent
 * or "*". Reply: {}. */
MGCONN_EXTERN (int) mgconn_collection_drop_indexes (mgconn_op **out,
                                                    mgconn_collection *collection,
                                                    const uint8_t *opts,
                                                    size_t opts_len,
                                                    mgconn_op_cb cb,
                                                    void *userdata);
/* The connection's database's collections matching `filter` (NULL: all). opts: "nameOnly".
 * Reply: {"collections": [{"name": ..., "type": ..., "options": ...}]}. */
MGCONN_EXTERN (int) mgconn_connection_list_collections (mgconn_op **out,
                                                        mgconn_connection *conn,
                                                        const uint8_t *filter,
                                                        size_t filter_len,
                                                        const uint8_t *opts,
                                                        size_t opts_len,
                                                        mgconn_op_cb cb,
                                                        void *userdata);
/* The server's databases. opts: "filter", "nameOnly". Reply: {"databases": [{"name", "sizeOnDisk",
 * "empty"}], "totalSize"}. */
MGCONN_EXTERN (int) mgconn_connection_list_databases (mgconn_op **out,
                                                      mgconn_connection *conn,
                                                      const uint8_t *opts,
                                                      size_t opts_len,
                                                      mgconn_op_cb cb,
                                                      void *userdata);

/* ---- Change streams ---------------------------------------------------------------------------
 *
 * watch (Mongoose's Model.watch() and Connection.watch(), PyMongo's watch()): a cursor over the
 * changes to a collection, or to every collection of the connection's database. The op's reply is
 * the first batch, {"batch": [change events], "done": false, "resumeToken": {...}}; take the cursor
 * with mgconn_op_cursor() and read further batches with mgconn_cursor_next() (each waits on the
 * server up to maxAwaitTimeMS, then answers, possibly with no events). Every batch's reply carries
 * the stream's resume token. After a resumable error the stream opens again after that token by
 * itself, and a fault of the connection (an outage) leaves the next batch buffered until the
 * reconnect, as a read is: no event is lost or seen twice. `pipeline` (may be NULL): stages after
 * the $changeStream stage ($match, $project; a $project must keep _id, the resume token). opts:
 * "fullDocument" ("updateLookup", ...), "fullDocumentBeforeChange", "resumeAfter", "startAfter",
 * "startAtOperationTime", "showExpandedEvents", "batchSize", "maxAwaitTimeMS", "collation",
 * "comment", and "session". A server without change streams (a standalone server, FerretDB) fails
 * the op with MGCONN_ERR_NOT_SUPPORTED. */
MGCONN_EXTERN (int) mgconn_collection_watch (mgconn_op **out,
                                             mgconn_collection *collection,
                                             const uint8_t *pipeline,
                                             size_t pipeline_len,
                                             const uint8_t *opts,
                                             size_t opts_len,
                                             mgconn_op_cb cb,
                                             void *userdata);
/* As mgconn_collection_watch, for every collection of the connection's database. */
MGCONN_EXTERN (int) mgconn_connection_watch (mgconn_op **out,
                                             mgconn_connection *conn,
                                             const uint8_t *pipeline,
                                             size_t pipeline_len,
                                             const uint8_t *opts,
                                             size_t opts_len,
                                             mgconn_op_cb cb,
                                             void *userdata);

/* ---- Collection operations by name ----------------------------------------------------------
 *
 * One table of every collection operation above, so that a host dispatches by the method's name
 * instead of keeping a table of its own. Each operation has two names, the Python spelling and the
 * Mongoose (Lua) one: "insert_one" and "insertOne", "find_one_and_update" and "findOneAndUpdate".
 * An operation takes up to two documents before its options; what each is and whether it may be
 * left out are the operation's flags. */

typedef enum {
   MGCONN_OPERATION_TAKES_FIRST = 1,     /* a first document before the options */
   MGCONN_OPERATION_TAKES_SECOND = 2,    /* a second document: the update or the replacement */
   MGCONN_OPERATION_FIRST_IS_ARRAY = 4,  /* the first is a BSON array (documents, pipeline, ...) */
   MGCONN_OPERATION_FIRST_REQUIRED = 8,  /* the first may not be NULL */
   MGCONN_OPERATION_RETURNS_CURSOR = 16, /* mgconn_op_cursor may be taken from the succeeded op */
} mgconn_operation_flag;

/* The name of the index'th operation of the table in one spelling (camel_case 0: "insert_one",
 * 1: "insertOne"), or NULL past the last: the way to list them all. */
MGCONN_EXTERN (const char *) mgconn_operation_name (size_t index, int camel_case);
/* The mgconn_operation_flag bits of the operation named `name` (either spelling), or
 * -MGCONN_ERR_INVALID_ARGUMENT for a name the table does not hold. */
MGCONN_EXTERN (int) mgconn_operation_flags (const char *name);
/* What the operation's first (which 1) or second (which 2) document is called, for messages:
 * "document", "documents", "filter", "pipeline", "indexes", "requests"; "update", "replacement".
 * NULL for a document it does not take, or a name the table does not hold. */
MGCONN_EXTERN (const char *) mgconn_operation_document (const char *name, int which);
/* Starts the operation `name` (either spelling) as its own function above would: `first` and
 * `second` are its documents (NULL where it takes none, or where the first may be left out),
 * `opts` its options. A name the table does not hold fails at once with
 * -MGCONN_ERR_INVALID_ARGUMENT naming it; documents are checked as the operation's function checks
 * them. */
MGCONN_EXTERN (int) mgconn_collection_call (mgconn_op **out,
                                            mgconn_collection *collection,
                                            const char *name,
                                            const uint8_t *first,
                                            size_t first_len,
                                            const uint8_t *second,
                                            size_t second_len,
                                            const uint8_t *opts,
                                            size_t opts_len,
                                            mgconn_op_cb cb,
                                            void *userdata);

/* ---- Sessions and transactions -------------------------------------------------------------
 *
 * A session (Mongoose's startSession(), PyMongo's start_session()) runs the operations that name it
 * in its options, {"session": mgconn_session_id(session)}, one after another in issue order, with
 * causal consistency, and carries transactions. Nothing is sent when a session or a transaction
 * starts: its first operation starts it on the server. From that operation until the session is
 * freed it holds one of the pool's maxPoolSize clients (libmongoc binds a session to one client).
 * The operations that take a session: insert_one, insert_many, find_one, find, aggregate,
 * update_one, update_many, replace_one, delete_one, delete_many, count_documents, bulk_write,
 * find_one_and_update, find_one_and_replace, find_one_and_delete, distinct, watch and run_command;
 * any other refuses one at once. An operation in a transaction is never sent again after a fault: its
 * error carries the server's labels ("TransientTransactionError", "UnknownTransactionCommitResult",
 * mgconn_error_labels) for the caller's retry of the whole transaction. A server without
 * transactions (a standalone server, FerretDB) fails the transaction's first operation with
 * MGCONN_ERR_NOT_SUPPORTED. */

typedef struct mgconn_session mgconn_session;

/* Starts a session on the connection (a use_db child's sessions are its root's). opts:
 * "causalConsistency" (default true), "defaultTransactionOptions": {"readConcern": {"level"},
 * "writeConcern": {"w", "j", "wtimeout"}, "maxCommitTimeMS"}. */
MGCONN_EXTERN (int) mgconn_connection_start_session (mgconn_session **out,
                                                     mgconn_connection *conn,
                                                     const uint8_t *opts,
                                                     size_t opts_len);
/* Ends the session (endSession()): operations it has issued still run first, then a transaction
 * still open is aborted and its client goes back to the pool, on a worker. */
MGCONN_EXTERN (void) mgconn_session_free (mgconn_session *session);
/* The number operations name it by in their options: {"session": <this>}. */
MGCONN_EXTERN (int64_t) mgconn_session_id (const mgconn_session *session);
/* Starts a transaction: the session's operations issued from now until its commit or abort run in
 * it. opts as defaultTransactionOptions, over them. -MGCONN_ERR_INVALID_ARGUMENT when one is in
 * progress already, or the session has ended. */
MGCONN_EXTERN (int) mgconn_session_start_transaction (mgconn_session *session, const uint8_t *opts, size_t opts_len);
/* 1 from start_transaction until a commit or abort is issued, else 0. */
MGCONN_EXTERN (int) mgconn_session_in_transaction (const mgconn_session *session);
/* Commits the transaction, after its operations (commitTransaction()). Reply: {}. A transaction
 * without operations commits without a word to the server. */
MGCONN_EXTERN (int) mgconn_session_commit_transaction (mgconn_op **out,
                                                       mgconn_session *session,
                                                       mgconn_op_cb cb,
                                                       void *userdata);
/* Aborts the transaction, after its operations (abortTransaction()). Reply: {}. */
MGCONN_EXTERN (int) mgconn_session_abort_transaction (mgconn_op **out,
                                                      mgconn_session *session,
                                                      mgconn_op_cb cb,
                                                      void *userdata);

/* ---- Command monitoring ---------------------------------------------------------------------- */

/* One command event, a BSON document: {"type": "started" | "succeeded" | "failed", "commandName",
 * "databaseName", "requestId" (int64), "operationId" (int64), "serverAddress": "host:port"}, with
 * "command" (started), "durationMicros" and "reply" (succeeded, failed), "code" and "failure" (the
 * message; failed). A sensitive command (authentication, user management) has empty command and
 * reply documents. Borrowed for the call. */
typedef void (*mgconn_command_cb) (mgconn_connection *conn, const uint8_t *event, size_t event_len,
                                   void *userdata);
/* Sets the connection's command listener (NULL: none; nothing is copied then). It runs on the host
 * thread in dispatch, for every command the connection's pool sends, its use_db children's
 * included; a child refuses one (-MGCONN_ERR_INVALID_ARGUMENT). Never called after
 * mgconn_connection_free. */
MGCONN_EXTERN (int) mgconn_connection_on_command (mgconn_connection *conn, mgconn_command_cb cb, void *userdata);

/* ---- Cursors --------------------------------------------------------------------------------- */

typedef struct mgconn_cursor mgconn_cursor;

/* Takes the cursor of a succeeded find or aggregate op whose reply said "done": false. The cursor
 * belongs to the caller. Returns -MGCONN_ERR_INVALID_ARGUMENT when the op has no open cursor. */
MGCONN_EXTERN (int) mgconn_op_cursor (mgconn_cursor **out, mgconn_op *op);
/* Fetches the next batch (getMore). Reply: {"batch": [...], "done": bool}. One batch at a time:
 * calling it again before the previous batch arrived is -MGCONN_ERR_INVALID_ARGUMENT. */
MGCONN_EXTERN (int) mgconn_cursor_next (mgconn_op **out, mgconn_cursor *cursor, mgconn_op_cb cb, void *userdata);
/* 1 when the server has no more documents for this cursor. */
MGCONN_EXTERN (int32_t) mgconn_cursor_done (const mgconn_cursor *cursor);
/* Frees the cursor; an unfinished cursor is killed on the server in the background. */
MGCONN_EXTERN (void) mgconn_cursor_free (mgconn_cursor *cursor);

/* Closes the connection (see the events in the docs). While it is still connecting, the attempt
 * ends at once. Otherwise operations in flight are waited for at most 1000 ms, then fail with
 * MGCONN_ERR_CONNECTION_CLOSED; with force they fail at once. The op succeeds once the connection
 * is closed (within about 1 s of the call, whatever the server does). */
MGCONN_EXTERN (int) mgconn_connection_close (mgconn_op **out,
                                              mgconn_connection *conn,
                                              int32_t force,
                                              mgconn_op_cb cb,
                                              void *userdata);

/* Mongoose's asPromise(): an op that succeeds once the connection's current open has succeeded (at
 * once if it has), fails with the open's error when it fails (at once if it has), and fails with
 * MGCONN_ERR_CONNECTION_CLOSED when the connection is closed before it opens (at once if it is
 * closed). A connection created without a URI waits for mgconn_connection_open(). */
MGCONN_EXTERN (int) mgconn_connection_when_open (mgconn_op **out,
                                                  mgconn_connection *conn,
                                                  mgconn_op_cb cb,
                                                  void *userdata);

/* ---- Several connections --------------------------------------------------------------------- */

/* A child connection on `conn`'s pool for the database `name` (Mongoose's useDb): its own model
 * registry, every event of its parent (once each), the parent's state. With use_cache the same
 * child comes back for the same name (as another handle). Closing a child only detaches it;
 * closing the parent closes its children. The child keeps its parent alive. */
MGCONN_EXTERN (int) mgconn_connection_use_db (mgconn_connection **out,
                                               mgconn_connection *conn,
                                               const char *name,
                                               int32_t use_cache,
                                               mgconn_error *error);
/* Closes every connection of the runtime (Mongoose's disconnect()); the op succeeds once all are
 * closed. */
MGCONN_EXTERN (int) mgconn_runtime_disconnect (mgconn_op **out, mgconn_runtime *rt, mgconn_op_cb cb, void *userdata);

/* ---- Schemas, models and the registry ---------------------------------------------------------- */

typedef struct mgconn_schema mgconn_schema;
typedef struct mgconn_model mgconn_model;

/* A schema: a field definition (a BSON document; mgconn keeps it for the host and compares
 * schemas by identity, as Mongoose does) and options. The definition's declared types are checked
 * on the model's writes: a value of another type in an insert or replacement, or in the $set /
 * $setOnInsert of an update, fails the op with MGCONN_ERR_VALIDATION naming the path, and nothing
 * is sent. A path maps to a type name ("string"/"str", "number"/"float", "int", "boolean"/"bool",
 * "date"/"datetime", "ObjectId", "binary"/"bytes"/"uuid", "Decimal128", "document"/"dict",
 * "array"/"list", "table", "regex", "timestamp"; any case; other names are not checked, except a
 * name a letter or two away from one of these, a typo: -MGCONN_ERR_INVALID_ARGUMENT naming it and
 * its path), to a
 * nested definition, to an array of one definition, or to {"type": name}. null is never refused.
 * Options:
 *   collection (string), bufferCommands (bool), bufferTimeoutMS (int), autoCreate (bool),
 *   autoIndex (bool), capped (int size in bytes, or {size, max}), collation (document).
 * Reference-counted: models keep their schema. */
MGCONN_EXTERN (int) mgconn_schema_new (mgconn_schema **out,
                                        const uint8_t *definition,
                                        size_t definition_len,
                                        const uint8_t *options,
                                        size_t options_len,
                                        mgconn_error *error);
/* Declares an index ({"name": 1}, options such as {"unique": true}), built by autoIndex. */
MGCONN_EXTERN (int) mgconn_schema_index (mgconn_schema *schema,
                                          const uint8_t *keys,
                                          size_t keys_len,
                                          const uint8_t *options,
                                          size_t options_len,
                                          mgconn_error *error);
/* Drops the caller's reference; models keep their own. */
MGCONN_EXTERN (void) mgconn_schema_free (mgconn_schema *schema);
/* The field definition as given. Borrowed from the schema. */
MGCONN_EXTERN (int) mgconn_schema_definition (const mgconn_schema *schema, const uint8_t **data, size_t *len);
/* The options as given. Borrowed from the schema. */
MGCONN_EXTERN (int) mgconn_schema_options (const mgconn_schema *schema, const uint8_t **data, size_t *len);

/* Registers the model `name` with `schema` on `conn`, or, with schema NULL, looks it up.
 *   - never registered and no schema: -MGCONN_ERR_MISSING_SCHEMA
 *     (Schema hasn't been registered for model "<name>".)
 *   - registered with another schema: -MGCONN_ERR_OVERWRITE_MODEL
 *     (Cannot overwrite `<name>` model once compiled.), unless the runtime's overwriteModels is
 *     set: then the new model replaces the old one in the registry;
 *   - registered with the same schema: the registered model.
 * The collection is `collection`, else the schema's "collection" option, else the pluralised name.
 * Models of one connection are never visible from another. The handle belongs to the caller; the
 * registry keeps its own reference. Once the connection is open the model is initialised:
 * autoCreate, then autoIndex (see mgconn_model_init). */
MGCONN_EXTERN (int) mgconn_connection_model (mgconn_model **out,
                                              mgconn_connection *conn,
                                              const char *name,
                                              mgconn_schema *schema,
                                              const char *collection,
                                              mgconn_error *error);
/* Removes `name` from the registry (handles stay usable). -MGCONN_ERR_MISSING_SCHEMA when absent. */
MGCONN_EXTERN (int) mgconn_connection_delete_model (mgconn_connection *conn, const char *name);
/* How many models the connection's registry holds. */
MGCONN_EXTERN (int32_t) mgconn_connection_model_count (const mgconn_connection *conn);
/* The name of the i-th registered model, in registration order; borrowed until the registry
 * changes. NULL past the end. */
MGCONN_EXTERN (const char *) mgconn_connection_model_name (const mgconn_connection *conn, int32_t index);

/* Drops the caller's handle; the registry keeps its own. */
MGCONN_EXTERN (void) mgconn_model_free (mgconn_model *model);
/* The model's name. Borrowed from the model. */
MGCONN_EXTERN (const char *) mgconn_model_name (const mgconn_model *model);
/* The model's collection, for the collection operations. Borrowed from the model. */
MGCONN_EXTERN (mgconn_collection *) mgconn_model_collection (const mgconn_model *model);
/* The model's schema. Borrowed from the model. */
MGCONN_EXTERN (mgconn_schema *) mgconn_model_schema (const mgconn_model *model);
/* The connection the model is registered on. Borrowed from the model. */
MGCONN_EXTERN (mgconn_connection *) mgconn_model_connection (const mgconn_model *model);

/* Model events: "index" (the model's init finished; its error, if any, with the event). */
typedef void (*mgconn_model_event_cb) (mgconn_model *model, const mgconn_event *event, void *userdata);
/* Listens to the model's "index" event (its only one). Host thread only. */
MGCONN_EXTERN (int) mgconn_model_on (mgconn_model *model, const char *name, mgconn_model_event_cb cb, void *userdata);
/* Removes a listener added with the same (name, cb, userdata), as mgconn_connection_off(). */
MGCONN_EXTERN (int) mgconn_model_off (mgconn_model *model, const char *name, mgconn_model_event_cb cb, void *userdata);
/* mgconn_model_on() with flags and a release, as mgconn_connection_listen(). The registration
 * lasts until mgconn_model_off(), its ONCE call, or mgconn_model_free() of the model's last host
 * handle. Host thread only. */
MGCONN_EXTERN (int) mgconn_model_listen (mgconn_model *model,
                                          const char *name,
                                          int32_t flags,
                                          mgconn_release_cb release,
                                          mgconn_model_event_cb cb,
                                          void *userdata);
/* As mgconn_connection_visit_listeners(), for the model's registrations made with `cb`. */
MGCONN_EXTERN (int) mgconn_model_visit_listeners (const mgconn_model *model,
                                                   mgconn_model_event_cb cb,
                                                   mgconn_listener_visit_cb visit,
                                                   void *userdata);
/* An op that finishes when the model's init for the current open has finished: autoCreate
 * (create, with capped and collation; an existing collection is fine) then autoIndex
 * (createIndexes). It fails with the init's error. The model's buffered operations wait for its
 * autoCreate. close() cancels an init. */
MGCONN_EXTERN (int) mgconn_model_init (mgconn_op **out, mgconn_model *model, mgconn_op_cb cb, void *userdata);
/* Mongoose's syncIndexes: creates the schema's indexes, then drops every other index of the
 * collection but _id_. Reply: {"dropped": [the names dropped]}. */
MGCONN_EXTERN (int) mgconn_model_sync_indexes (mgconn_op **out, mgconn_model *model, mgconn_op_cb cb,
                                                void *userdata);

/* The collection name Mongoose makes from a model name: "User" -> "users", "Person" -> "people",
 * "Mouse" -> "mice". Writes at most `size` bytes, NUL included; returns the full length. */
MGCONN_EXTERN (size_t) mgconn_pluralize (const char *name, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* MGCONN_H */
