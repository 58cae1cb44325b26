/*
 * internal.h: the private structures of libmgconn and the rules that hold them together.
 *
 * Threads
 *   host      any thread that calls the public API. Callbacks run only on the host thread that
 *             calls mgconn_runtime_dispatch() (or a wait, which dispatches).
 *   workers   run jobs (operations, pool creation and destruction) from rt->work. They call
 *             libmongoc and never host code.
 *   timer     one per runtime; fires deadlines (buffer timeouts, the initial connect timeout).
 *   driver    libmongoc's monitor threads; they call monitor.c under libmongoc's topology lock.
 *
 * Locks, always taken in this order, never the other way round:
 *   conn->lock  ->  rt->lock  ->  rt->timers.lock
 *   registry_lock (log.c: the runtimes libmongoc's log lines go to)  ->  rt->lock
 *     (a driver line is queued on each runtime under it; it is never taken with a conn->lock or
 *     rt->lock held, since runtimes register and unregister outside them)
 *   Leaves, under which no other lock is taken: init_lock (init.c: the process's reference count
 *   and mongoc_init), threads_lock (init.c: the threads the process's exit waits for) and
 *   abandoned_lock (runtime.c: runtimes left behind by workers stuck on the network).
 *   conn->lock is always a root connection's: a use_db child has no lock of its own in use.
 *   No mgconn lock is held while calling into libmongoc (a driver callback may be waiting for that
 *   lock while libmongoc waits for the callback's thread: a deadlock). No lock is held while host
 *   code runs.
 *
 * Lifetimes
 *   Connections and ops are reference-counted (mg_conn_ref/unref, mg_op_ref/unref). Whoever queues
 *   a job, a delivery or a timer for an object holds a reference for as long as it is queued.
 *   The runtime lives until mgconn_runtime_free(); connection and op handles must be freed before
 *   it, or are only valid for being freed after it.
 */
#ifndef MGCONN_INTERNAL_H
#define MGCONN_INTERNAL_H

#include <bson/bson.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "mgconn.h"
#include "list.h"
#include "strbuf.h"

/* ---- errors (error.c) ---- */
void mg_error_set (mgconn_error *e, int32_t category, const char *fmt, ...) BSON_GNUC_PRINTF (3, 4);
/* From a libmongoc failure: category from the domain, code and reply (labels, codeName). */
void mg_error_from_driver (mgconn_error *e, const bson_error_t *be, const bson_t *reply);
void mg_error_set_reason (mgconn_error *e, const bson_t *reason);
/* Records `e` as the thread's last error, copies it into `out` when given, returns -category. */
int mg_error_raise (const mgconn_error *e, mgconn_error *out);
int mg_fail (mgconn_error *out, int32_t category, const char *fmt, ...) BSON_GNUC_PRINTF (3, 4);

/* ---- redaction (redact.c) ---- */
/* Every message and log line passes through mg_redact before anyone sees it; secrets are masked
 * where they live (redact.c says which places), not searched for as text. */
/* Masks the password part of any "scheme://user:pass@" in `text` (and that password's other
 * occurrences in the same text). Returns a new string (bson_free). */
char *mg_redact (const char *text);
/* The command is one whose body the command-monitoring rules redact (createUser, saslStart, a
 * hello with speculativeAuthenticate, ...): nothing of it but its name is shown. */
bool mg_command_is_sensitive (const bson_t *command);
/* By name alone: true for the list; *if_speculative for hello and isMaster, which are sensitive
 * when they carry speculativeAuthenticate. */
bool mg_command_name_is_sensitive (const char *name, bool *if_speculative);
/* For a connection string libmongoc refused: where the userinfo ends cannot be trusted, so
 * everything between the scheme and the last @ becomes four asterisks, then mg_redact. */
char *mg_redact_bad_uri (const char *uri);
/* mg_redact, then every password candidate of `uri` is masked in `text` too (libmongoc's complaint
 * about a refused connection string may quote its pieces). */
char *mg_redact_as_uri_secrets (const char *text, const char *uri);
void mg_redact_inplace (char *buf, size_t size);

/* ---- reference counts ---- */
/* One more unless the count is already zero: a count found on a list may belong to an object on
 * its way out (a connection on rt->connections, a use_db child in its root's cache), which must
 * not be brought back. */
static inline bool
mg_ref_unless_zero (atomic_int *count)
{
   int n = atomic_load (count);
   while (n > 0) {
      if (atomic_compare_exchange_weak (count, &n, n + 1)) {
         return true;
      }
   }
   return false;
}

/* ---- time ---- */
int64_t mg_now_us (void); /* CLOCK_MONOTONIC */

/* Names the calling thread ("mgconn-worker", "mgconn-timer", "mgconn-teardown"), so that a game
 * host's debugger, profiler or `top -H` tells mgconn's threads from its own. Threads the driver
 * starts from them (its server monitors) inherit the name. At most 15 characters. */
static inline void
mg_name_this_thread (const char *name)
{
   pthread_setname_np (pthread_self (), name);
}

/* ---- jobs and deliveries (runtime.c) ---- */
typedef struct mg_job {
   mg_link link;
   void (*run) (struct mg_job *job); /* on a worker */
} mg_job;

typedef struct mg_delivery {
   mg_link link;
   void (*run) (struct mg_delivery *d);  /* on the host, in dispatch; consumes the delivery */
   void (*drop) (struct mg_delivery *d); /* at teardown, instead of run */
} mg_delivery;

/* ---- timers (timer.c) ---- */
typedef struct mg_timer {
   mg_link link;
   int64_t deadline_us;
   void (*fire) (struct mg_timer *t); /* on the timer thread, no mgconn lock held */
   bool armed;                        /* under timers.lock */
} mg_timer;

typedef struct mg_timers {
   pthread_mutex_t lock;
   pthread_cond_t cond;
   mg_list armed; /* sorted by deadline */
   bool stopping;
   pthread_t thread;
   bool started;
} mg_timers;

int mg_timers_start (mg_timers *ts);
void mg_timers_stop (mg_timers *ts);
/* The owner keeps `t` alive until it fires or is disarmed. Arming a timer that is armed moves it to
 * the new deadline: returns true then (whatever reference the owner keeps for an armed timer is
 * still held once, not twice). */
bool mg_timer_arm (mg_timers *ts, mg_timer *t, int64_t deadline_us, void (*fire) (mg_timer *));
/* The timer is waiting to fire (a fire function finds its own timer armed again when its owner
 * re-armed it while it was being fired: that fire is stale). */
bool mg_timer_is_armed (mg_timers *ts, mg_timer *t);
/* True when the timer was removed before firing; false when it fired (or is firing) already. */
bool mg_timer_disarm (mg_timers *ts, mg_timer *t);

/* ---- wake-up fd (wakeup.c) ---- */
typedef struct mg_wakeup {
   int read_fd;
   int write_fd; /* == read_fd for an eventfd */
} mg_wakeup;
int mg_wakeup_open (mg_wakeup *w);
void mg_wakeup_close (mg_wakeup *w);
void mg_wakeup_signal (mg_wakeup *w);
/* Reads what the fd holds; returns how many signals that was (0 when none had landed). */
uint64_t mg_wakeup_drain (mg_wakeup *w);

/* ---- the runtime ---- */
struct mgconn_runtime {
   void *host_data;       /* the host's (mgconn_runtime_set_host_data); set and read by the host */
   pthread_mutex_t lock;  /* guards everything below it up to `timers` */
   pthread_cond_t work_cond;
   pthread_cond_t idle_cond; /* signalled when a connection's pool has been destroyed */
   mg_list work;             /* mg_job: ready for a worker */
   mg_list done;             /* mg_delivery: ready for the host */
   size_t done_count;
   /* Wake-ups written (or being written, handoff.c) to the fd, and how many dispatch has read back.
    * While more are written than read the fd is signalled, and a delivery writes no other. */
   uint64_t wake_writes;
   uint64_t wake_read;
   /* Every connection (mgconn_connection.rt_link), including dying ones: a connection whose count
    * just reached zero stays listed until its last unref takes this lock to unlink it. Whoever walks
    * the list takes references with mg_conn_ref_unless_dying() and leaves dying ones alone. */
   mg_list connections;
   bool stopping;            /* workers leave when the work queue is empty */
   bool released;            /* mgconn_runtime_free has begun: nothing new is accepted */
   int pools_alive;          /* connections whose pool is being created, used or destroyed */
   bool free_pending;        /* mgconn_runtime_free returned while pools were still being
                                destroyed: the last one to finish frees the runtime */

   /* Workers (runtime.c says how many and why): every thread running worker_main. */
   pthread_t *workers;       /* the running ones, n_workers of them (array of workers_alloc) */
   int n_workers;
   int workers_alloc;
   int base_workers;         /* started with the runtime and kept while it lives */
   int idle_workers;         /* waiting for work */
   int starting_workers;     /* created, not yet looking for work */
   size_t work_len;          /* jobs in rt->work */
   pthread_t *retired;       /* extra workers that left when idle, to be joined */
   int n_retired;
   int peak_workers;
   int spawn_wanted;         /* workers the spawner is to start (counted in starting_workers) */
   pthread_cond_t spawn_cond;
   pthread_t spawner;
   bool spawner_started;
   mg_wakeup wake;
   mg_timers timers;
   bool camel_case; /* name methods as Lua and Node do (findOne) rather than as Python (find_one) */

   struct mgconn_runtime *next_abandoned; /* see mgconn_runtime_free */

   /* Settings for every connection of the runtime (mgconn_runtime_set, Mongoose's mongoose.set):
    * -1 = not set. Written on the host thread, read by any thread. */
   atomic_int set_buffer_commands;
   atomic_int set_buffer_timeout_ms;
   atomic_int set_auto_index;
   atomic_int set_auto_create;
   atomic_int set_debug;
   atomic_int set_pluralization;
   atomic_int set_overwrite_models;

   /* host thread only */
   mgconn_log_cb log_cb;
   void *log_ud;
};

/* How long mgconn_runtime_free waits for pools to be destroyed before leaving that to their own
 * threads (which free the runtime after the last one). */
#define MG_RUNTIME_FREE_WAIT_S 1
/* A pool's destruction has finished (rt->lock not held): frees the runtime if it was waiting. */
void mg_runtime_pool_gone (mgconn_runtime *rt);

/* ---- hand-off scopes (handoff.c: the wake-ups a thread owes, made after its unlocks) ---- */
void mg_handoff_begin (mgconn_runtime *rt);
void mg_handoff_end (mgconn_runtime *rt, bool on_worker);
bool mg_handoff_owe_job_locked (mgconn_runtime *rt);
bool mg_handoff_owe_fd_write_locked (mgconn_runtime *rt);

void mg_runtime_push_job (mgconn_runtime *rt, mg_job *job);
void mg_runtime_push_job_locked (mgconn_runtime *rt, mg_job *job);
void mg_runtime_deliver (mgconn_runtime *rt, mg_delivery *d);
void mg_runtime_deliver_locked (mgconn_runtime *rt, mg_delivery *d);
/* A delivery that dispatch runs `units` times (each run is one of poll's `max`): it is queued once
 * and counted `units` times; each run but the last puts it back at the front with
 * mg_runtime_deliver_again (counted already), so that nothing queued later overtakes it. */
void mg_runtime_deliver_units (mgconn_runtime *rt, mg_delivery *d, size_t units);
void mg_runtime_deliver_again (mgconn_runtime *rt, mg_delivery *d);
/* Dispatches on the calling thread until *flag is true (set by a delivery) or the monotonic
 * deadline passes (negative: none). Returns *flag. */
bool mg_runtime_wait_until (mgconn_runtime *rt, const volatile bool *flag, int64_t deadline_us);

/* ---- logging (log.c) ---- */
void mg_log (mgconn_runtime *rt, int32_t level, const char *domain, const char *fmt, ...)
   BSON_GNUC_PRINTF (4, 5);
void mg_log_install_driver_handler (void);
/* Collects libmongoc's log lines of the calling thread into `into` (one per '\n') until _end. */
void mg_log_capture_begin (mg_strbuf_t *into);
void mg_log_capture_end (void);
void mg_log_register_runtime (mgconn_runtime *rt);
void mg_log_unregister_runtime (mgconn_runtime *rt);
/* In the child of a fork: the registry's lock as new and no runtime in it (they are the parent's). */
void mg_log_after_fork_child (void);

/* ---- replies (reply_check.c) ---- */
/* Around an operation's exec on a worker: the command-monitoring callback (installed on every pool)
 * notes a reply without a readable "ok"; _end turns a success into that error (and empties reply). */
void mg_reply_check_begin (void);
void mg_reply_check_on_succeeded (const mongoc_apm_command_succeeded_t *event);
bool mg_reply_check_end (bool ok, mgconn_error *error, bson_t *reply);

/* ---- process init (init.c) ---- */
int mg_process_ref (void);
void mg_process_unref (void);
/* Runs fn(arg) on a new thread that the process waits for (bounded) before it exits and before the
 * driver is cleaned up: pool teardowns, which are inside libmongoc when a host stops. Returns false
 * when no thread could be made (the caller then does the work some other way). */
bool mg_process_thread_start (const char *name, void (*fn) (void *), void *arg);
/* How long the process's exit waits for those threads before leaving them (and the driver) be. */
#define MG_EXIT_WAIT_S 2

#endif
