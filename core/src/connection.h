/*
 * connection.h: the private parts of connections and operations: the structures and the calls
 * between the files that make a connection's life (connection.c, pool.c, close.c, monitor.c,
 * event.c, registry.c), an operation's (op.c, buffer.c) and the options, models and settings
 * they read. Files that define operations also include ops.h; the pool's jobs are in pool.h.
 */
#ifndef MGCONN_CONNECTION_H
#define MGCONN_CONNECTION_H

#include "internal.h"
#include "listeners.h"

struct mgconn_event {
   int32_t type;
   const mgconn_error *error; /* or NULL */
};

/* An event kept for a host that polls instead of listening (event.c). */
typedef struct mg_polled_event {
   int32_t type;
   mgconn_error error; /* category 0 when the event had none */
} mg_polled_event;

/* Drops the connection's kept events (host thread, or the connection's last reference). */
void mg_conn_clear_polled (mgconn_connection *conn);



/* ---- options (options.c) ---- */

/* Everything a connection string plus an options document say, checked and split into mgconn's
 * own settings and the driver URI. -1 means "not set here" for the tri-state fields, so that the
 * precedence schema > connection > global > default can be applied per operation. */
typedef struct mg_options {
   mongoc_uri_t *uri;  /* the driver's URI with every driver option applied */
   char *uri_text;     /* as the caller gave it, to recognise "open the same URI again" */
   char *uri_redacted; /* for messages */
   char *db_name;      /* dbName, else the URI's database, else "test" */
   char *password;     /* registered as a secret for as long as the options live */
   int buffer_commands;
   int32_t buffer_timeout_ms;
   int auto_index;
   int auto_create;
   int debug;
   int32_t family;     /* 0, 4 or 6 */
   int resend_interrupted; /* -1: not set (on) */
   int32_t max_open_cursors; /* -1: not set (MG_DEFAULT_MAX_OPEN_CURSORS); 0: no limit */
   int32_t max_pool_size;
   int32_t min_pool_size;
   int32_t server_selection_timeout_ms;
   char *first_host;
   int32_t first_port;
   mg_strbuf_t *warnings; /* lines for the log, one per '\n', emitted once at open */
} mg_options;

int mg_options_parse (mg_options *o, const char *uri, const bson_t *opts, mgconn_error *error);
/* Levenshtein distance without case, for "did you mean" (99 for names of 63 bytes or more). */
size_t mg_edit_distance (const char *a, const char *b);
/* family=4|6: replaces the seeds of `uri` by their address in that family (family.c; may wait for
 * DNS: workers only). False with the reason in `why` when a seed has no such address. */
bool mg_uri_restrict_family (mongoc_uri_t *uri, int32_t family, char *why, size_t why_size);
void mg_options_cleanup (mg_options *o);

/* ---- operations (op.c; their kinds in ops.c, ops_more.c, ops_admin.c, cursor.c) ---- */

typedef enum {
   MG_OP_NEW,      /* created, not yet submitted */
   MG_OP_WAITING,  /* in conn->waiting: buffered, or waiting for a free pool slot */
   MG_OP_RUNNING,  /* handed to a worker; in conn->running */
   MG_OP_FINISHED  /* its result is final and its delivery is queued or done */
} mg_op_phase;

typedef struct mgconn_op mgconn_op;

typedef struct mg_op_kind {
   const char *snake; /* "find_one": Python's spelling of the method in messages */
   const char *camel; /* "findOne": Lua's and Node's */
   /* On a worker, with a client from the connection's pool. Fills reply or returns false with
    * error set. */
   bool (*exec) (mgconn_op *op, mongoc_client_t *client, bson_t *reply, mgconn_error *error);
   bool buffered;     /* subject to bufferCommands (close is not) */
   bool args_array;   /* args is a BSON array (documents, pipeline, indexes): printed as [...] */
   /* Re-sending after a fault (buffer.c). NULL: never re-sent once it may have reached the server.
    * Else true when running it again leaves what running it once would (the rules are in
    * resend_rules.c; each kind names its own). */
   bool (*idempotent) (const mgconn_op *op, const char **why_not);
   /* A write: a fault after sending leaves its outcome unknown. For run_command and aggregate the
    * op's own `writes` flag says (set when built). */
   bool writes;
   /* libmongoc retries it itself on replica sets and sharded clusters (retryWrites / retryReads). */
   int driver_retry; /* 0: no, 1: a retryable write, 2: a retryable read */
   /* After a re-send: a server error that means the first attempt landed (in the kind's file).
    * NULL: none. */
   bool (*landed) (mgconn_op *op, bson_t *reply, mgconn_error *error);
   /* Its reply may leave a server cursor open (find, aggregate): it runs only while its root has a
    * maxOpenCursors slot free (buffer.c). */
   bool opens_cursor;
   /* It may run in a session: its exec hands libmongoc the session's "sessionId" (session.h). */
   bool takes_session;
} mg_op_kind;

struct mgconn_op {
   mg_job job;           /* in rt->work while RUNNING and not yet picked up */
   mg_delivery delivery; /* in rt->done once FINISHED */
   mg_link conn_link;    /* in conn->waiting or conn->running, under conn->lock */
   mg_timer buffer_timer;
   atomic_int refs;
   mgconn_runtime *rt;
   mgconn_connection *conn; /* a reference */
   const mg_op_kind *kind;
   char *db;
   char *collection;
   bson_t args;  /* the document, filter, documents or pipeline */
   bson_t args2; /* the update or replacement */
   bson_t opts;
   uint32_t largest_doc; /* checked against the server's maxBsonObjectSize before sending */
   bool debug;           /* print the debug line when sent (decided at submission) */
   /* cursors (cursor.c): set by the worker that ran find/aggregate, or the getMore's cursor */
   struct mgconn_cursor *cursor;
   int64_t cursor_id;
   uint32_t server_id;
   bool cursor_taken;
   /* It holds one of its root's maxOpenCursors slots: from the pump's start while it runs, and
    * after a reply that left the server cursor open until mgconn_op_cursor hands the slot to the
    * cursor (or the op is freed). Under conn->lock (buffer.c). */
   bool cursor_slot;
   bool waits_for_cursor_slot; /* the pump held it back for want of a slot: its timeout says so */
   bool waits_for_session_client; /* ... for a pool client, while sessions hold clients: the same */
   mgconn_op_cb cb;
   void *userdata;
   int64_t submitted_us; /* its buffer deadline counts from here */
   bool buffer_timer_armed; /* under conn->lock */

   /* re-sending and per-document order (buffer.c); set on the host before submission, then under
    * conn->lock */
   int64_t seq;           /* issue order on its connection */
   uint64_t *doc_keys;    /* the `_id`s its filter or documents name, hashed with the collection */
   uint32_t n_doc_keys;
   uint64_t doc_key1;     /* storage when there is one */
   int resend;            /* -1: the connection's resendInterrupted decides; 0 off; 1 on */
   bool writes;           /* run_command / aggregate: this one may write */
   int32_t resent;        /* times it was sent again after a fault */
   int32_t faults_after_sending; /* attempts that may have reached a server, then lost the connection */
   bool outcome_unknown;  /* an attempt of this write failed after it may have reached the server */
   mgconn_error fault;    /* the fault of that attempt, for the message of a later failure */

   /* under conn->lock until FINISHED, then read-only */
   mg_op_phase phase;
   bool ok;
   bson_t reply;
   mgconn_error error;

   /* sessions (session.c): set on the host before submission; session_opts by the worker */
   struct mgconn_session *session; /* a reference, or NULL */
   int64_t session_txn;            /* the session's transaction it runs in; 0: none */
   bson_t *txn_opts;               /* that transaction's options, when it has any */
   bson_t session_opts;            /* {"sessionId": n} for libmongoc, filled just before the exec */
   bool on_session_client;         /* the pump started it on its session's client (buffer.c) */

   struct mgconn_model *model; /* a reference, for a model's operations and inits */
   bool is_init;               /* the model's init itself: never waits for the model's autoCreate */
   bool via_detached;          /* issued through a closed use_db child: fails as closed */
   int64_t init_cycle;

   /* host thread only: set when the delivery has run */
   volatile bool delivered;
   int32_t status;
};

/* conn: the root connection that runs the op (a use_db child's ops run on its root), or NULL for
 * an op that only the host finishes (disconnect-all). */
mgconn_op *mg_op_new (mgconn_connection *conn, const mg_op_kind *kind, const char *db, const char *collection,
                      mgconn_op_cb cb, void *userdata);
void mg_op_ref (mgconn_op *op);
void mg_op_unref (mgconn_op *op);
/* Finishes the op with an error (conn->lock held, phase not FINISHED) and queues its delivery. */
void mg_op_fail_locked (mgconn_op *op, const mgconn_error *error);
/* mg_op_fail_locked for every op on `list` (a connection's waiting or running list). */
void mg_op_fail_all_locked (mg_list *list, const mgconn_error *error);
void mg_op_finish_locked (mgconn_op *op, bool ok, bson_t *reply, mgconn_error *error);
/* Starts the op's buffer deadline (bufferTimeoutMS from its submission). conn->lock held. */
void mg_op_arm_buffer_timer_locked (mgconn_op *op);
/* Stops the op's buffer deadline (it is about to run or has finished). conn->lock held. */
void mg_op_disarm_buffer_timer_locked (mgconn_op *op);
/* Hands the op to the connection and returns 0, or fails it at once through its delivery. */
int mg_op_submit (mgconn_op *op, mgconn_op **out);
/* Drops the op's reference to the cursor of a getMore (cursor.c). */
void mg_op_release_cursor (mgconn_op *op);
const char *mg_op_method_name (const mgconn_op *op);
/* "users": the collection, or the database of a database-level op, for messages. */
const char *mg_op_target_name (const mgconn_op *op);
/* Fails the op with mg_error_set (category, fmt, target, method, detail). conn->lock held. */
void mg_op_fail_fmt_locked (mgconn_op *op, int32_t category, const char *fmt, const char *detail);
/* The one-line description of an op as sent, for debug logging (debug.c): "users.find_one({...}, {})". */
char *mg_debug_line (const mgconn_op *op);

/* Command monitoring (command_monitor.c): the started and failed callbacks into `cbs`, and the
 * succeeded one monitor.c calls along with the reply check. */
void mg_command_monitor_set_callbacks (mongoc_apm_callbacks_t *cbs);
void mg_command_monitor_succeeded (const mongoc_apm_command_succeeded_t *event);

/* ---- collections (collection.c) ---- */
struct mgconn_collection {
   atomic_int refs;
   mgconn_connection *conn;     /* the handle's connection (a use_db child stays itself); a reference */
   char *name;
   struct mgconn_model *model;  /* the model that owns this collection, or NULL for a raw one */
};
mgconn_collection *mg_collection_new (mgconn_connection *conn, const char *name, struct mgconn_model *model);
void mg_collection_unref (mgconn_collection *coll);

/* ---- schemas and models (schema.c, model.c, registry.c, pluralize.c) ---- */
struct mgconn_schema {
   atomic_int refs;
   bson_t definition;
   bson_t options;
   bson_t indexes; /* an array of index models: {key, ...options} */
};

typedef struct mgconn_model {
   atomic_int refs;
   char *name;
   mgconn_schema *schema;    /* a reference */
   mgconn_collection *coll;  /* owned; coll->model points back */
   /* under the root's lock */
   bool create_pending;      /* its autoCreate has not finished: its operations wait */
   int64_t init_cycle;       /* the open cycle of the last init started */
   bool init_finished;       /* that init has finished */
   mgconn_error init_error;  /* and how */
   mg_list init_waiters;     /* mgconn_model_init ops */
   atomic_int handles;       /* host handles; the last one's free removes its listeners */
   mg_listener_list listeners; /* host only */
} mgconn_model;

/* The values of `doc` (an insert or a replacement) and the $set / $setOnInsert values of `update`
 * against the types the schema's definition declares (schema.c). False with the refusal in `why`
 * ("path `name` is declared str and got int32 ..."). Host thread; nothing is sent when false. */
bool mg_schema_check_document (const mgconn_schema *schema, const bson_t *doc, char *why, size_t why_size);
bool mg_schema_check_update (const mgconn_schema *schema, const bson_t *update, char *why, size_t why_size);

void mg_model_ref (mgconn_model *model);
void mg_model_unref (mgconn_model *model);
/* Takes a reference for the host, counted as one of its handles (mgconn_model_free ends it). */
void mg_model_hand_out (mgconn_model *model);
/* A schema option as an int (bools 0/1), or -1 when the schema does not set it. */
int mg_model_schema_int (const mgconn_model *model, const char *name);
/* Starts the model's init for the root's current open cycle (root lock held, root connected). */
void mg_model_start_init_locked (mgconn_model *model);
/* Fails the model's init waiters (close). Root lock held. */
void mg_model_fail_waiters_locked (mgconn_model *model, const mgconn_error *error);
/* Drops every registry entry of `conn` (its last handle is gone). Root lock held (registry.c). */
void mg_registry_clear_locked (mgconn_connection *conn);
/* `fn` for every model of `root` and of its use_db children. Root lock held. */
void mg_registry_for_each_model_locked (mgconn_connection *root, void (*fn) (mgconn_model *, const mgconn_error *),
                                        const mgconn_error *arg);
/* The collection name Mongoose gives a model name ("Person" -> "people"; pluralize.c). */
char *mg_pluralize (const char *name);
void mg_schema_ref (mgconn_schema *s);

/* ---- settings (settings.c) ---- */
void mg_settings_init (mgconn_runtime *rt);
int mg_effective_buffer_commands (const mgconn_op *op);
int32_t mg_effective_buffer_timeout_ms (const mgconn_op *op);
bool mg_effective_debug (const mgconn_op *op);
/* autoCreate / autoIndex for a model: schema, connection, runtime, default true. */
bool mg_effective_auto (const mgconn_model *model, const mgconn_connection *root, bool create);

/* ---- events (event.c) ---- */

/* Queues the event for the host (conn->lock held): listeners run at the next dispatch. */
void mg_conn_emit_locked (mgconn_connection *conn, int32_t type, const mgconn_error *error);
/* The same, for `conn` alone (not its use_db children). */
void mg_conn_emit_one_locked (mgconn_connection *conn, int32_t type, const mgconn_error *error);
/* A host call has queued events: what the host sees is the state they lead to, now (conn and its
 * use_db children; the root's lock held). */
void mg_conn_sync_host_state_locked (mgconn_connection *conn);

/* ---- connections (connection.c, monitor.c) ---- */

typedef enum {
   MG_POOL_NONE,     /* no pool: uninitialized, closed, or after a failed initial connect */
   MG_POOL_OPENING,  /* the open job is creating the pool */
   MG_POOL_READY,    /* monitoring runs; operations may run when the topology is up */
   MG_POOL_CLOSING   /* the teardown job is (or will be) destroying the pool */
} mg_pool_phase;

struct mgconn_connection {
   atomic_int refs;
   mgconn_runtime *rt;
   mg_link rt_link; /* rt->connections, under rt->lock */
   int64_t id;

   pthread_mutex_t lock; /* guards every field up to `host only` */
   mg_options opts;
   bool has_opts;
   mongoc_client_pool_t *pool;
   mg_pool_phase pool_phase;
   int64_t pool_cycle;   /* the open cycle the pool was made for: a pool still being made when a
                            close and an open_uri start a new cycle is given up, not adopted */
   atomic_int ready_state; /* the state machine's state (the host sees host_state) */
   /* What mgconn_connection_ready_state() says: the state after the last event the host has been
    * told of, dispatched or queued by its own call (create, open_uri, close), so that it never
    * changes behind the host's back between two dispatches and agrees with the events. Events are
    * numbered as they are queued; a dispatched event older than the last one a call accounted for
    * leaves it alone. Under the root's lock (written by host threads only). */
   atomic_int host_state;
   int64_t event_seq;
   int64_t host_seq;
   bool up;             /* the last topology had a writable server */
   bool ever_connected; /* in this open cycle: a later `connected` is a reconnection */
   bool failed;         /* the initial connect of this cycle failed: monitoring results are ignored */
   bool close_wanted;   /* close() was called; finished once the pool is gone */
   bool host_released;  /* the host freed its handle: no more events */
   /* command monitoring (command_monitor.c): set on the host; the flag is read by workers */
   mgconn_command_cb command_cb;
   void *command_userdata;
   atomic_bool command_monitoring;
   bool reopen_wanted;  /* open() was called while the old pool was still being destroyed */
   bool closed;         /* a close finished in this open cycle: a second close does nothing */
   bool teardown_queued;
   int32_t in_flight;   /* RUNNING ops */
   int32_t peak_in_flight;
   /* maxOpenCursors slots in use: queries running plus server cursors left open (buffer.c) */
   int32_t cursor_slots;
   /* Sessions (session.h): those the host holds, by id; those holding a pool client; how many
    * clients they hold, and how many of the running ops run on one (buffer.c counts both). */
   mg_list sessions;
   mg_list holding_sessions;
   int32_t session_clients;
   int32_t session_ops_running;
   mg_list waiting;     /* WAITING ops, in submission order */
   mg_list running;     /* RUNNING ops */
   mg_list close_ops;   /* close() ops to finish when the pool is gone */
   mg_list open_waiters; /* mgconn_connection_when_open ops: finished by this cycle's outcome */
   mgconn_error open_error; /* why this cycle's first open failed (category 0: it did not) */
   /* A plain close() waits for operations in flight at most MG_CLOSE_GRACE_MS, then fails them. */
   mg_timer close_grace_timer;
   bool close_grace_armed;
   int64_t close_grace_cycle;
   /* While down after a loss: the reconnect probe (monitor.c). */
   mg_job probe_job;
   mg_timer probe_timer;
   bool probe_active;    /* a probe job is queued or running, or its timer is armed */
   int64_t probe_started_us;
   mg_timer connect_timer;
   bool connect_timer_armed;
   mg_job open_job;
   mg_job teardown_job;
   mg_job warm_job;     /* minPoolSize: connects that many pooled clients after each connect */
   bool warm_queued;
   mg_job auth_job;     /* with credentials: one authenticated ping before the first `connected` */
   bool auth_queued;
   bool auth_verified;  /* this open cycle's credentials were accepted */
   int64_t open_started_us;
   /* the topology as last seen by monitoring, for ServerSelectionError.reason */
   char topology_type[32];
   bson_t servers;       /* {"host:port": "server type"} */
   bson_t server_errors; /* {"host:port": "last heartbeat error"} */
   mgconn_error last_monitor_error;
   int32_t max_bson_size; /* from the server's hello; 16 MiB until one has answered */

   int64_t open_cycle;   /* incremented at every open: a model's init belongs to one cycle */

   /* use_db: a child runs everything on its root's pool and shares its root's lock and state. */
   mgconn_connection *parent; /* a reference; NULL for a root */
   char *child_db;
   bool cached;          /* handed out by use_db(..., use_cache) */
   bool detached;        /* a closed child: no more events or operations */
   mg_list children;     /* root only: its children (child_link), under its lock */
   mg_link child_link;
   atomic_int handles;   /* host handles: a cached child is handed out more than once */

   /* the model registry, under the root's lock */
   mgconn_model **models;
   size_t n_models;

   /* host only */
   mg_listener_list listeners;
   int emitting; /* its listeners are being called (mgconn_connection_ready_state reads emitting_state) */
   int32_t emitting_state; /* while emitting: the readyState the event was queued with */
   mg_polled_event *polled; /* a ring of events kept for mgconn_connection_next_event() */
   int32_t polled_cap, polled_head, polled_len;
};

/* The connection whose pool, state and lock a connection uses: itself, or a child's root. */
static inline mgconn_connection *
mg_conn_root (mgconn_connection *conn)
{
   return conn->parent ? conn->parent : conn;
}

/* A new connection, its counts at one, its lists empty, nothing else set (connection.c; a root's
 * creation and use_db's children start from it). */
mgconn_connection *mg_conn_alloc (mgconn_runtime *rt);
void mg_conn_ref (mgconn_connection *conn);
/* A reference unless the count is already zero (the connection is being destroyed): for walks of
 * rt->connections, where a dying connection can still be met. */
bool mg_conn_ref_unless_dying (mgconn_connection *conn);
/* The root is connected in its current open cycle (root lock held). */
bool mg_conn_connected_locked (const mgconn_connection *root);
void mg_conn_unref (mgconn_connection *conn);
/* Moves waiting ops to the workers while the connection is up and under maxPoolSize (and, for
 * queries, under maxOpenCursors), and starts the pool teardown once a close has no op left running.
 * conn->lock held. */
void mg_conn_pump_locked (mgconn_connection *conn);
/* maxOpenCursors (buffer.c). A server cursor can hold what the server has only so much of (FerretDB
 * keeps one of 100 database connections per open cursor): past this many, further queries wait
 * their turn while every other operation goes on. */
#define MG_DEFAULT_MAX_OPEN_CURSORS 64
int32_t mg_conn_max_open_cursors (const mgconn_connection *root);
/* Gives back a slot (its cursor is exhausted, killed or freed) and lets a waiting query run. Takes
 * root->lock. */
void mg_conn_release_cursor_slot (mgconn_connection *root);
/* The same, root->lock held (the pump's caller runs it afterwards). */
void mg_op_release_cursor_slot_locked (mgconn_op *op);
/* From monitoring (monitor.c): the topology now has (or lacks) a writable server. conn->lock held. */
void mg_conn_topology_locked (mgconn_connection *conn, bool up);

/* The state machine's steps that pool.c and close.c take (connection.c). conn->lock held. */
/* The topology has a writable server and the credentials, if any, were accepted: connected
 * (reconnected), the models' init, open, then the buffer runs. */
void mg_conn_up_locked (mgconn_connection *conn);
/* This cycle's first open failed with `e`: disconnected, error, open waiters and buffered
 * operations fail with it. Nothing for a cycle that has already failed. */
void mg_conn_open_failed_locked (mgconn_connection *conn, const mgconn_error *e);
/* disconnecting (when connected), then the pool's teardown, or the close's end if there is none. */
void mg_conn_begin_close_locked (mgconn_connection *conn);
/* disconnected, close; close() ops finish and the open waiters fail. */
void mg_conn_finish_close_locked (mgconn_connection *conn);
/* Buffered operations (and, with running_too, those in flight) fail with ConnectionClosed. */
void mg_conn_fail_ops_closed_locked (mgconn_connection *conn, bool running_too);
void mg_conn_fail_open_waiters_closed_locked (mgconn_connection *conn);
void mg_conn_disarm_connect_timer_locked (mgconn_connection *conn);
void mg_conn_set_monitoring (mongoc_client_pool_t *pool, mgconn_connection *conn);
void mg_conn_server_selection_error_locked (mgconn_connection *conn, mgconn_error *e);

/* Buffering (buffer.c): give every waiting op its buffer deadline (the connection just went down), and
 * fail every buffered op at once because the initial connection failed with `cause`. */
void mg_conn_arm_buffer_timers_locked (mgconn_connection *conn);
void mg_conn_fail_buffered_locked (mgconn_connection *conn, const mgconn_error *cause);
/* A worker ran the op (conn->lock held, phase RUNNING, in_flight already decremented): finishes it,
 * or puts it back at the front of the buffer when its connection failed before the reply and
 * running it again is safe (buffer.c). */
void mg_buffer_after_run_locked (mgconn_op *op, bool ok, bson_t *reply, mgconn_error *error);
/* Fills a op's fault-derived error (OutcomeUnknown) when its outcome is unknown (buffer.c). */
void mg_buffer_outcome_unknown (mgconn_op *op, const mgconn_error *final, const char *why, mgconn_error *out);

/* How long a plain close() lets operations in flight finish before failing them with
 * ConnectionClosed and closing (a hung server would otherwise hold the close for socketTimeoutMS,
 * five minutes by default). */
#define MG_CLOSE_GRACE_MS 1000

/* Reconnect probing (monitor.c): while the connection is down after a loss, mgconn asks whether
 * the server answers every MG_PROBE_INTERVAL_MS, whatever heartbeatFrequencyMS says, and has the
 * pool's monitors look again as soon as it does. conn->lock held. */
#define MG_PROBE_INTERVAL_MS 500
void mg_conn_start_probe_locked (mgconn_connection *conn);
/* Disarms a probe waiting for its next turn (closing, giving up); one running stops by itself. */
void mg_conn_stop_probe_locked (mgconn_connection *conn);
void mg_conn_probe_init (mgconn_connection *conn);

void mg_conn_close_all_for_runtime_free (mgconn_runtime *rt);
void mg_conn_read_method_case (mgconn_runtime *rt, const uint8_t *opts, size_t opts_len);

#endif
