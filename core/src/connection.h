/*
 * connection.h: the private parts of connections and operations, shared by connection.c (the state
 * machine), monitor.c (libmongoc's monitoring callbacks), options.c, event.c, op.c and ops.c.
 */
#ifndef MGCONN_CONNECTION_H
#define MGCONN_CONNECTION_H

#include "internal.h"

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
   int32_t max_pool_size;
   int32_t min_pool_size;
   int32_t server_selection_timeout_ms;
   char *first_host;
   int32_t first_port;
   bson_string_t *warnings; /* lines for the log, one per '\n', emitted once at open */
} mg_options;

int mg_options_parse (mg_options *o, const char *uri, const bson_t *opts, mgconn_error *error);
void mg_options_cleanup (mg_options *o);

/* ---- operations (op.c, ops.c) ---- */

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
   bson_t args;
   bson_t opts;
   mgconn_op_cb cb;
   void *userdata;
   int64_t submitted_us; /* its buffer deadline counts from here */
   bool buffer_timer_armed; /* under conn->lock */

   /* under conn->lock until FINISHED, then read-only */
   mg_op_phase phase;
   bool ok;
   bson_t reply;
   mgconn_error error;

   /* host thread only: set when the delivery has run */
   volatile bool delivered;
   int32_t status;
};

mgconn_op *mg_op_new (mgconn_connection *conn, const mg_op_kind *kind, const char *db, const char *collection,
                      mgconn_op_cb cb, void *userdata);
void mg_op_ref (mgconn_op *op);
void mg_op_unref (mgconn_op *op);
/* Finishes the op with an error (conn->lock held, phase not FINISHED) and queues its delivery. */
void mg_op_fail_locked (mgconn_op *op, const mgconn_error *error);
void mg_op_finish_locked (mgconn_op *op, bool ok, bson_t *reply, mgconn_error *error);
/* Stops the op's buffer deadline (it is about to run or has finished). conn->lock held. */
void mg_op_disarm_buffer_timer_locked (mgconn_op *op);
/* Hands the op to the connection and returns 0, or fails it at once through its delivery. */
int mg_op_submit (mgconn_op *op, mgconn_op **out);
const char *mg_op_method_name (const mgconn_op *op);

/* ---- events (event.c) ---- */

struct mgconn_event {
   int32_t type;
   const mgconn_error *error; /* or NULL */
};

typedef struct mg_listener {
   int32_t type; /* 0: every event */
   mgconn_event_cb cb;
   void *userdata;
   bool removed;
} mg_listener;

/* Queues the event for the host (conn->lock held): listeners run at the next dispatch. */
void mg_conn_emit_locked (mgconn_connection *conn, int32_t type, const mgconn_error *error);

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
   atomic_int ready_state;
   bool up;             /* the last topology had a writable server */
   bool ever_connected; /* in this open cycle: a later `connected` is a reconnection */
   bool failed;         /* the initial connect of this cycle failed: monitoring results are ignored */
   bool close_wanted;   /* close() was called; finished once the pool is gone */
   bool host_released;  /* the host freed its handle: no more events */
   bool reopen_wanted;  /* open() was called while the old pool was still being destroyed */
   bool closed;         /* a close finished in this open cycle: a second close does nothing */
   bool teardown_queued;
   int32_t in_flight;   /* RUNNING ops */
   mg_list waiting;     /* WAITING ops, in submission order */
   mg_list running;     /* RUNNING ops */
   mg_list close_ops;   /* close() ops to finish when the pool is gone */
   mg_timer connect_timer;
   bool connect_timer_armed;
   mg_job open_job;
   mg_job teardown_job;
   int64_t open_started_us;
   /* the topology as last seen by monitoring, for ServerSelectionError.reason */
   char topology_type[32];
   bson_t servers;       /* {"host:port": "server type"} */
   bson_t server_errors; /* {"host:port": "last heartbeat error"} */
   mgconn_error last_monitor_error;

   /* host only */
   mg_listener *listeners;
   size_t n_listeners;
   int emitting; /* listeners are being called: removal only marks */
};

void mg_conn_ref (mgconn_connection *conn);
void mg_conn_unref (mgconn_connection *conn);
/* Moves waiting ops to the workers while the connection is up and under maxPoolSize, and starts
 * the pool teardown once a close has no op left running. conn->lock held. */
void mg_conn_pump_locked (mgconn_connection *conn);
/* From monitoring (monitor.c): the topology now has (or lacks) a writable server. conn->lock held. */
void mg_conn_topology_locked (mgconn_connection *conn, bool up);
void mg_conn_set_monitoring (mongoc_client_pool_t *pool, mgconn_connection *conn);
void mg_conn_server_selection_error_locked (mgconn_connection *conn, mgconn_error *e);

/* Buffering (op.c): give every waiting op its buffer deadline (the connection just went down), and
 * fail every buffered op at once because the initial connection failed with `cause`. */
void mg_conn_arm_buffer_timers_locked (mgconn_connection *conn);
void mg_conn_fail_buffered_locked (mgconn_connection *conn, const mgconn_error *cause);

void mg_conn_close_all_for_runtime_free (mgconn_runtime *rt);
void mg_conn_read_method_case (mgconn_runtime *rt, const uint8_t *opts, size_t opts_len);

#endif
