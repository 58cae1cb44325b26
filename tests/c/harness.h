/*
 * harness.h: what every C test shares: a disposable FerretDB, an event recorder, waits with
 * deadlines, and assertions that say what was expected.
 */
#ifndef MGCONN_TEST_HARNESS_H
#define MGCONN_TEST_HARNESS_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "mgconn.h"

#include "check.h"

/* ---- a FerretDB of the test's own ---- */
typedef struct {
   int port;
   char dir[256];
   pid_t pid;
   char user[64], password[64]; /* a user of the admin database, with authentication on ("": none) */
} test_server;

/* Starts FerretDB (SQLite backend) on a free 127.0.0.1 port in a new temporary directory and waits
 * until it answers ping. */
void server_start (test_server *s);
/* The same with authentication enabled and one user in the admin database. */
void server_start_with_user (test_server *s, const char *user, const char *password);
/* A port and a data directory for a server not started yet (server_restart starts it). */
void server_prepare (test_server *s);
/* Starts it again on the same port with the same data (after server_kill). */
void server_restart (test_server *s);
/* SIGKILL, and waits for the process to be gone. */
void server_kill (test_server *s);
/* SIGSTOP / SIGCONT: a server that hangs without closing its sockets. server_pause returns once
 * every thread of the server is stopped. */
void server_pause (test_server *s);
void server_resume (test_server *s);
/* Kills it if running and removes its directory. */
void server_cleanup (test_server *s);
/* "mongodb://127.0.0.1:PORT/DB?<extra>" in a static buffer. */
const char *server_uri (const test_server *s, const char *db, const char *extra);
/* Established TCP connections from this machine to 127.0.0.1:port (clients' side), from
 * /proc/net/tcp: what a server would count as its clients. */
int established_to (int port);
/* A 127.0.0.1 port nothing listens on. */
int closed_port (void);

/* mgconn's threads in this process, by name (Linux: the comm of each entry of /proc/self/task) and
 * scheduling policy (field 41 of its stat). "mgconn-..." includes the driver threads they started. */
typedef struct {
   int mgconn;        /* named mgconn-* */
   int workers;       /* named mgconn-worker */
   int workers_batch; /* of those, running SCHED_BATCH */
   int timers;        /* named mgconn-timer */
} thread_census;
thread_census census_threads (void);

/* census_threads ().mgconn */
int mgconn_thread_count (void);

/* Waits until the process has at most `n` of mgconn's threads; returns the count it saw last. */
int wait_mgconn_threads_at_most (int n, int timeout_ms);

/* ---- time ---- */
int64_t now_ms (void);
double now_us (void);

/* ---- an event recorder ---- */
#define REC_MAX 64
typedef struct {
   char names[REC_MAX][24];
   int64_t at_ms[REC_MAX];
   mgconn_error errors[REC_MAX];
   int n;
} recorder;

void recorder_attach (recorder *r, mgconn_connection *conn);
void recorder_reset (recorder *r);
/* The recorded names joined by ',' ("connecting,connected,open"), in a static buffer. */
const char *recorder_sequence (const recorder *r);
/* Index of the first `name` at or after `from`, or -1. */
int recorder_find (const recorder *r, const char *name, int from);
/* Dispatches until `name` has been recorded at or after index `from`. Returns its index or -1. */
int wait_event (mgconn_runtime *rt, recorder *r, const char *name, int from, int timeout_ms);

/* ---- helpers ---- */
mgconn_runtime *runtime_new (void);
/* A connection with options given as a JSON document (or NULL); fails the test when refused. */
mgconn_connection *conn_new (mgconn_runtime *rt, const char *uri, const char *opts_json);
/* A raw collection handle (fails the test when refused). */
mgconn_collection *coll_of (mgconn_connection *conn, const char *name);
/* Waits for `op` (10 s), fails the test unless it succeeded, and returns its reply as JSON in a
 * static buffer. */
const char *expect_ok (mgconn_op *op, const char *what);
/* Runs {ping: 1} and waits; returns the op status. */
int32_t ping (mgconn_connection *conn, int timeout_ms, mgconn_error *err_out);

/* Dispatches for `ms` milliseconds: time passing on purpose (e.g. "the server starts 1 s later"),
 * with callbacks running meanwhile as in a host loop. */
void pump_for (mgconn_runtime *rt, int ms);
/* Waits for `op`, fails the test unless it failed with `category`; returns its message. */
const char *expect_failure (mgconn_op *op, int32_t category, const char *what);
/* A BSON document from JSON (freed by the caller), failing the test on bad JSON. */
bson_t *json (const char *text);

/* ---- a test program: a table of named tests ---- */
typedef struct {
   const char *name;
   void (*fn) (void);
} test_case;
int run_tests (int argc, char **argv, const test_case *tests);

#endif
