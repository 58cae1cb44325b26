/*
 * test_model.c: a model-based test of connections' lives. A seeded random sequence of thousands of
 * API calls (create, open_uri, close, close(force), free, operations, use_db, when_open, waits,
 * dispatch) runs interleaved with faults of the server (SIGKILL, SIGSTOP, SIGCONT, restart on the
 * same port), and is checked against a model:
 *   - every operation resolves exactly once, with an outcome its situation allows (an operation
 *     issued on a closed connection fails with ConnectionClosed; none fails as an internal error
 *     or a misuse of the API);
 *   - each connection's events come in a legal order (the transition table below);
 *   - readyState right after each synchronous call is one the call allows, and once everything has
 *     settled it is the state of the last event;
 *   - no host call takes longer than HOST_CALL_BOUND_MS (a watchdog thread ends the run, naming the
 *     call, when one has not returned after WATCHDOG_MS: a spinning host thread never returns);
 *   - nothing leaks (the sanitizer builds run it; ASan's leak check at exit).
 *
 *   test_model lifecycle [SEED]      or MGCONN_MODEL_SEED=SEED; MGCONN_MODEL_SECONDS (default 15)
 *                                    bounds the random phase, MGCONN_MODEL_STEPS (default 6000) too.
 * On failure the seed and the step are printed, with the last calls made: run it again with that
 * seed to replay the same sequence (the server's timing can still differ from run to run).
 */
#include "harness.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 3
#define MAX_OPS 40000
#define HOST_CALL_BOUND_MS 250 /* generous: the sanitizer builds run on a shared 2-core machine */
#define WATCHDOG_MS 5000

static unsigned seed; /* as given: printed for replaying */
static unsigned rng;  /* the generator's state, from the seed */
static int step;
#define HISTORY 40
static char history[HISTORY][160];
static int n_history;

static void
dump_history (void)
{
   int first = n_history > HISTORY ? n_history - HISTORY : 0;
   fprintf (stderr, "  seed %u, step %d; the last calls:\n", seed, step);
   for (int i = first; i < n_history; i++) {
      fprintf (stderr, "    %s\n", history[i % HISTORY]);
   }
   fprintf (stderr, "  replay: test_model lifecycle %u\n", seed);
}

#define MCHECK(cond, ...)                                                      \
   do {                                                                        \
      if (!(cond)) {                                                           \
         fprintf (stderr, "%s:%d: MODEL CHECK failed: %s\n  ", __FILE__, __LINE__, #cond); \
         fprintf (stderr, __VA_ARGS__);                                        \
         fprintf (stderr, "\n");                                               \
         dump_history ();                                                      \
         exit (1);                                                             \
      }                                                                        \
   } while (0)

static void
note (const char *fmt, ...) BSON_GNUC_PRINTF (1, 2);
static void
note (const char *fmt, ...)
{
   va_list ap;
   char *slot = history[n_history % HISTORY];
   int n = snprintf (slot, 160, "%d: ", step);
   va_start (ap, fmt);
   vsnprintf (slot + n, (size_t) (160 - n), fmt, ap);
   va_end (ap);
   n_history++;
}

/* ---- the watchdog: a host call that never returns ---- */

static atomic_llong call_started_ms; /* 0: no call in progress */
static char call_name[64];
static atomic_bool watchdog_stop;

static void *
watchdog (void *arg)
{
   (void) arg;
   while (!atomic_load (&watchdog_stop)) {
      int64_t started = atomic_load (&call_started_ms);
      if (started && now_ms () - started > WATCHDOG_MS) {
         fprintf (stderr, "MODEL CHECK failed: the host call %s has not returned after %d ms (the host thread is "
                          "frozen)\n", call_name, WATCHDOG_MS);
         dump_history ();
         _exit (1);
      }
      usleep (50 * 1000);
   }
   return NULL;
}

static int64_t call_t0;

static void
call_begin (const char *name)
{
   snprintf (call_name, sizeof call_name, "%s", name);
   call_t0 = now_ms ();
   atomic_store (&call_started_ms, call_t0);
}

/* bound_ms: what the call may take (a wait's own timeout plus the bound). */
static void
call_end (int64_t bound_ms)
{
   int64_t took = now_ms () - call_t0;
   atomic_store (&call_started_ms, 0);
   MCHECK (took <= bound_ms, "the host call %s took %lld ms (bound %lld ms)", call_name, (long long) took,
           (long long) bound_ms);
}

#define HOST(name, expr)                 \
   do {                                  \
      call_begin (name);                 \
      expr;                              \
      call_end (HOST_CALL_BOUND_MS);     \
   } while (0)

/* ---- the model ---- */

typedef enum { EV_NONE = 0 } ev_none;

/* State after each event, as readyState says it. */
static int32_t
state_after (int32_t ev)
{
   switch (ev) {
   case MGCONN_EVENT_CONNECTING: return MGCONN_STATE_CONNECTING;
   case MGCONN_EVENT_CONNECTED:
   case MGCONN_EVENT_RECONNECTED:
   case MGCONN_EVENT_OPEN: return MGCONN_STATE_CONNECTED;
   case MGCONN_EVENT_DISCONNECTING: return MGCONN_STATE_DISCONNECTING;
   default: return MGCONN_STATE_DISCONNECTED;
   }
}

/* The legal next events after `prev` (0: none yet). */
static bool
legal_next (int32_t prev, int32_t next)
{
   switch (prev) {
   case 0: return next == MGCONN_EVENT_CONNECTING;
   case MGCONN_EVENT_CONNECTING: return next == MGCONN_EVENT_CONNECTED || next == MGCONN_EVENT_DISCONNECTED;
   case MGCONN_EVENT_CONNECTED: return next == MGCONN_EVENT_OPEN || next == MGCONN_EVENT_RECONNECTED;
   case MGCONN_EVENT_RECONNECTED: return next == MGCONN_EVENT_OPEN;
   case MGCONN_EVENT_OPEN: return next == MGCONN_EVENT_DISCONNECTING || next == MGCONN_EVENT_DISCONNECTED;
   case MGCONN_EVENT_DISCONNECTING: return next == MGCONN_EVENT_DISCONNECTED;
   case MGCONN_EVENT_DISCONNECTED:
      return next == MGCONN_EVENT_ERROR || next == MGCONN_EVENT_CLOSE || next == MGCONN_EVENT_CONNECTED ||
             next == MGCONN_EVENT_CONNECTING;
   case MGCONN_EVENT_ERROR: return next == MGCONN_EVENT_CLOSE || next == MGCONN_EVENT_CONNECTING;
   case MGCONN_EVENT_CLOSE: return next == MGCONN_EVENT_CONNECTING;
   default: return false;
   }
}

typedef struct {
   mgconn_connection *conn; /* NULL: the slot is free */
   mgconn_connection *child; /* a use_db child, or NULL */
   bool child_closed;
   int id;
   int32_t last_event; /* of the root */
   int events;
   bool closed;        /* the model's: close() called and no open since: operations fail as closed */
   bool ever_opened;
} slot;

typedef struct {
   mgconn_op *op; /* the host's handle until swept */
   int calls;
   int slot_id;
   bool must_fail_closed;
   bool is_when_open;
   bool is_close;
   int issued_step;
   const char *what;
} op_rec;

static slot slots[SLOTS];
static op_rec ops[MAX_OPS];
static int n_ops, n_resolved, n_closed_fast;
static int outcome_counts[MGCONN_ERR_INTERNAL + 2];
static int next_slot_id = 1;
static int events_seen;

static void
on_event (mgconn_connection *conn, const mgconn_event *ev, void *ud)
{
   slot *s = ud;
   int32_t type = mgconn_event_type_of (ev);
   (void) conn;
   MCHECK (s->conn == conn, "an event for connection slot %d after it was freed", s->id);
   MCHECK (legal_next (s->last_event, type), "connection %d: `%s` after `%s`", s->id, mgconn_event_type_name (type),
           s->last_event ? mgconn_event_type_name (s->last_event) : "(nothing)");
   if (type == MGCONN_EVENT_ERROR) {
      MCHECK (mgconn_event_error (ev) != NULL, "an error event without an error");
   }
   note ("  (event `%s` on %d)", mgconn_event_type_name (type), s->id);
   s->last_event = type;
   s->events++;
   events_seen++;
}

static bool
allowed_failure (const op_rec *r, int32_t category)
{
   /* A write whose connection failed after it may have reached the server, and that was not (or no
    * more) sent again: its outcome is unknown, never a bare network error. Reads never get it. */
   if (category == MGCONN_ERR_OUTCOME_UNKNOWN) {
      return strcmp (r->what, "insert_one") == 0;
   }
   switch (category) {
   case MGCONN_ERR_SERVER_SELECTION:
   case MGCONN_ERR_BUFFER_TIMEOUT:
   case MGCONN_ERR_CONNECTION_CLOSED:
   case MGCONN_ERR_NETWORK:
   case MGCONN_ERR_OPERATION: /* a server shutting down refuses work (InterruptedAtShutdown) */
   case MGCONN_ERR_WRITE:
   case MGCONN_ERR_DUPLICATE_KEY: /* an insert re-sent after its first attempt landed */
      return true;
   default:
      return false; /* never internal, invalid argument, cancelled (nothing cancels), ... */
   }
}

static void
on_op (mgconn_op *op, void *ud)
{
   op_rec *r = ud;
   const mgconn_error *e = mgconn_op_error (op);
   r->calls++;
   MCHECK (r->calls == 1, "operation %s (step %d) resolved %d times", r->what, r->issued_step, r->calls);
   n_resolved++;
   if (mgconn_op_status (op) == MGCONN_OP_SUCCEEDED) {
      MCHECK (!r->must_fail_closed, "operation %s issued on a closed connection (step %d) succeeded", r->what,
              r->issued_step);
      outcome_counts[0]++;
      return;
   }
   MCHECK (e != NULL, "a failed operation without an error");
   outcome_counts[e->category >= 0 && e->category <= MGCONN_ERR_INTERNAL ? e->category : MGCONN_ERR_INTERNAL + 1]++;
   if (r->must_fail_closed) {
      MCHECK (e->category == MGCONN_ERR_CONNECTION_CLOSED,
              "operation %s issued on a closed connection (step %d) failed as %s: %s", r->what, r->issued_step,
              mgconn_error_category_name (e->category), e->message);
   }
   if (r->is_close) {
      MCHECK (false, "close (step %d) failed as %s: %s", r->issued_step, mgconn_error_category_name (e->category),
              e->message);
   }
   if (r->is_when_open) {
      MCHECK (e->category == MGCONN_ERR_CONNECTION_CLOSED || e->category == MGCONN_ERR_SERVER_SELECTION,
              "when_open (step %d) failed as %s: %s", r->issued_step, mgconn_error_category_name (e->category),
              e->message);
      return;
   }
   MCHECK (allowed_failure (r, e->category), "operation %s (step %d) failed as %s: %s", r->what, r->issued_step,
           mgconn_error_category_name (e->category), e->message);
}

static op_rec *
new_rec (slot *s, const char *what)
{
   op_rec *r;
   MCHECK (n_ops < MAX_OPS, "too many operations");
   r = &ops[n_ops++];
   memset (r, 0, sizeof *r);
   r->slot_id = s ? s->id : 0;
   r->issued_step = step;
   r->what = what;
   return r;
}

/* ---- the world ---- */

static test_server server;
static bool server_down, server_paused;
static int64_t paused_at;
static mgconn_runtime *rt;
static const char *conn_opts = "{\"serverSelectionTimeoutMS\": 2000, \"bufferTimeoutMS\": 1500}";
static int kills, pauses, restarts;

static unsigned
rnd (unsigned n)
{
   return (unsigned) rand_r (&rng) % n;
}

static slot *
pick_slot (bool occupied)
{
   int start = (int) rnd (SLOTS);
   for (int i = 0; i < SLOTS; i++) {
      slot *s = &slots[(start + i) % SLOTS];
      if ((s->conn != NULL) == occupied) {
         return s;
      }
   }
   return NULL;
}

static const char *
uri (void)
{
   return server_uri (&server, "model", NULL);
}

static void
do_create (void)
{
   slot *s = pick_slot (false);
   bool with_uri = rnd (4) != 0;
   mgconn_error e;
   bson_t *opts;
   int rc;
   if (!s) {
      return;
   }
   opts = json (conn_opts);
   memset (s, 0, sizeof *s);
   s->id = next_slot_id++;
   note ("create %d %s", s->id, with_uri ? "with a URI" : "without a URI");
   mgconn_error_init (&e);
   HOST ("mgconn_connection_new",
         rc = mgconn_connection_new (&s->conn, rt, with_uri ? uri () : NULL, bson_get_data (opts), opts->len, &e));
   bson_destroy (opts);
   MCHECK (rc == 0, "create refused: %s", e.message);
   HOST ("mgconn_connection_on", rc = mgconn_connection_on (s->conn, NULL, on_event, s));
   MCHECK (rc == 0, "on");
   s->ever_opened = with_uri;
   MCHECK (mgconn_connection_ready_state (s->conn) == (with_uri ? MGCONN_STATE_CONNECTING : MGCONN_STATE_UNINITIALIZED),
           "readyState %d right after create", mgconn_connection_ready_state (s->conn));
}

static void
do_open (slot *s)
{
   mgconn_error e;
   bson_t *opts = json (conn_opts);
   int rc;
   int32_t before = mgconn_connection_ready_state (s->conn);
   note ("open_uri %d (readyState %d)", s->id, before);
   mgconn_error_init (&e);
   HOST ("mgconn_connection_open", rc = mgconn_connection_open (s->conn, uri (), bson_get_data (opts), opts->len, &e));
   bson_destroy (opts);
   MCHECK (rc == 0, "open_uri with the same URI refused: %s", e.message);
   if (s->closed || !s->ever_opened) {
      MCHECK (mgconn_connection_ready_state (s->conn) == MGCONN_STATE_CONNECTING,
              "readyState %d right after open_uri of a closed connection", mgconn_connection_ready_state (s->conn));
   }
   s->closed = false;
   s->ever_opened = true;
}

static void
do_close (slot *s, bool force, bool wait)
{
   op_rec *r = new_rec (s, force ? "close(force)" : "close");
   int rc;
   int32_t st;
   r->is_close = true;
   note ("close%s %d%s", force ? "(force)" : "", s->id, wait ? ", waited for" : "");
   HOST ("mgconn_connection_close", rc = mgconn_connection_close (&r->op, s->conn, force, on_op, r));
   MCHECK (rc == 0, "close refused");
   st = mgconn_connection_ready_state (s->conn);
   if (s->ever_opened) {
      MCHECK (st == MGCONN_STATE_DISCONNECTED || (!force && st == MGCONN_STATE_DISCONNECTING),
              "readyState %d right after close%s", st, force ? "(force)" : "");
   } else {
      MCHECK (st == MGCONN_STATE_UNINITIALIZED, "readyState %d right after close of a connection never opened", st);
   }
   s->closed = true; /* never opened too: what waits for it fails, new operations fail until open_uri */
   if (wait) {
      int32_t status;
      call_begin ("mgconn_op_wait(close)");
      status = mgconn_op_wait (r->op, 3000);
      call_end (3000 + HOST_CALL_BOUND_MS);
      /* a plain close waits at most 1 s for operations in flight */
      MCHECK (status == MGCONN_OP_SUCCEEDED, "close%s did not resolve within 3 s", force ? "(force)" : "");
   }
}

static void
do_free (slot *s)
{
   note ("free %d", s->id);
   if (s->child) {
      HOST ("mgconn_connection_free(child)", mgconn_connection_free (s->child));
      s->child = NULL;
   }
   HOST ("mgconn_connection_free", mgconn_connection_free (s->conn));
   s->conn = NULL;
}

static void
do_operation (slot *s)
{
   bool via_child = s->child && rnd (3) == 0;
   mgconn_connection *target = via_child ? s->child : s->conn;
   unsigned kind = rnd (3);
   op_rec *r = new_rec (s, kind == 0 ? "insert_one" : kind == 1 ? "find_one" : "ping");
   int rc = 0;
   r->must_fail_closed = s->closed || (via_child && s->child_closed);
   note ("%s on %d%s%s", r->what, s->id, via_child ? " (use_db child)" : "", r->must_fail_closed ? " (closed)" : "");
   if (kind == 2) {
      bson_t *cmd = BCON_NEW ("ping", BCON_INT32 (1));
      HOST ("mgconn_run_command", rc = mgconn_run_command (&r->op, target, "admin", bson_get_data (cmd), cmd->len, on_op, r));
      bson_destroy (cmd);
   } else {
      mgconn_collection *c = NULL;
      mgconn_error e;
      mgconn_error_init (&e);
      HOST ("mgconn_connection_collection", rc = mgconn_connection_collection (&c, target, "things", &e));
      MCHECK (rc == 0, "collection: %s", e.message);
      if (kind == 0) {
         bson_t *doc = BCON_NEW ("step", BCON_INT32 (step));
         HOST ("mgconn_collection_insert_one",
               rc = mgconn_collection_insert_one (&r->op, c, bson_get_data (doc), doc->len, NULL, 0, on_op, r));
         bson_destroy (doc);
      } else {
         HOST ("mgconn_collection_find_one", rc = mgconn_collection_find_one (&r->op, c, NULL, 0, NULL, 0, on_op, r));
      }
      mgconn_collection_free (c);
   }
   MCHECK (rc == 0, "%s refused at the call: %s", r->what, mgconn_last_error ()->message);
}

static void
do_when_open (slot *s)
{
   op_rec *r = new_rec (s, "when_open");
   int rc;
   r->is_when_open = true;
   r->must_fail_closed = s->closed;
   note ("when_open %d%s", s->id, s->closed ? " (closed)" : "");
   HOST ("mgconn_connection_when_open", rc = mgconn_connection_when_open (&r->op, s->conn, on_op, r));
   MCHECK (rc == 0, "when_open refused");
   if (s->closed) {
      /* fails at once: at the next dispatch */
      call_begin ("mgconn_op_wait(when_open on a closed connection)");
      MCHECK (mgconn_op_wait (r->op, 1000) == MGCONN_OP_FAILED, "when_open on a closed connection did not fail at once");
      call_end (1000);
      n_closed_fast++;
   }
}

static void
do_use_db (slot *s)
{
   if (s->child && rnd (2) == 0) {
      op_rec *r = new_rec (s, "close(use_db child)");
      int rc;
      r->is_close = true;
      note ("close use_db child of %d", s->id);
      HOST ("mgconn_connection_close(child)", rc = mgconn_connection_close (&r->op, s->child, 0, on_op, r));
      MCHECK (rc == 0, "close of a child refused");
      s->child_closed = true;
   } else if (s->child) {
      note ("free use_db child of %d", s->id);
      HOST ("mgconn_connection_free(child)", mgconn_connection_free (s->child));
      s->child = NULL;
   } else {
      int rc;
      note ("use_db on %d", s->id);
      HOST ("mgconn_connection_use_db", rc = mgconn_connection_use_db (&s->child, s->conn, "model_other", (int32_t) rnd (2), NULL));
      MCHECK (rc == 0, "use_db refused");
      s->child_closed = false;
   }
}

static void
do_wait (void)
{
   op_rec *r;
   int32_t timeout = (int32_t) rnd (150);
   if (n_ops == 0) {
      return;
   }
   r = &ops[n_ops - 1 - (int) rnd ((unsigned) (n_ops < 50 ? n_ops : 50))];
   if (!r->op) {
      return;
   }
   note ("wait %d ms for %s of step %d", timeout, r->what, r->issued_step);
   call_begin ("mgconn_op_wait");
   mgconn_op_wait (r->op, timeout);
   call_end (timeout + HOST_CALL_BOUND_MS);
}

static void
do_dispatch (void)
{
   int ms = (int) rnd (30);
   note ("dispatch for %d ms", ms);
   call_begin ("mgconn_runtime_dispatch (a host loop)");
   pump_for (rt, ms);
   call_end (ms + HOST_CALL_BOUND_MS);
}

static void
do_fault (void)
{
   if (server_paused) {
      note ("SIGCONT");
      server_resume (&server);
      server_paused = false;
   } else if (server_down) {
      note ("restart");
      server_restart (&server);
      server_down = false;
      restarts++;
   } else if (rnd (2) == 0) {
      note ("SIGKILL");
      server_kill (&server);
      server_down = true;
      kills++;
   } else {
      note ("SIGSTOP");
      server_pause (&server);
      server_paused = true;
      paused_at = now_ms ();
      pauses++;
   }
}

/* Frees the handles of resolved operations. */
static void
sweep (void)
{
   for (int i = 0; i < n_ops; i++) {
      if (ops[i].op && ops[i].calls > 0) {
         mgconn_op_free (ops[i].op);
         ops[i].op = NULL;
      }
   }
}

static void
test_a_random_life_follows_the_model (void)
{
   const char *env;
   int seconds = 15, max_steps = 6000;
   int64_t until;
   pthread_t dog;
   if ((env = getenv ("MGCONN_MODEL_SECONDS"))) {
      seconds = atoi (env);
   }
   if ((env = getenv ("MGCONN_MODEL_STEPS"))) {
      max_steps = atoi (env);
   }
   rng = seed;
   MCHECK (pthread_create (&dog, NULL, watchdog, NULL) == 0, "watchdog");
   fprintf (stderr, "   seed %u (replay: test_model lifecycle %u), up to %d steps or %d s\n", seed, seed, max_steps,
            seconds);
   server_start (&server);
   rt = runtime_new ();
   until = now_ms () + seconds * 1000;
   for (step = 0; step < max_steps && now_ms () < until; step++) {
      unsigned roll = rnd (1000);
      slot *s = pick_slot (true);
      if (server_paused && now_ms () - paused_at > 1500) {
         do_fault (); /* a pause never lasts long: SIGCONT */
      } else if (roll < 8) {
         do_fault ();
      } else if (roll < 60 || !s) {
         if (!s || rnd (2) == 0) {
            do_create ();
         } else {
            do_free (s);
         }
      } else if (roll < 130) {
         do_open (s);
      } else if (roll < 200) {
         do_close (s, rnd (3) == 0, rnd (4) == 0);
      } else if (roll < 560) {
         do_operation (s);
      } else if (roll < 600) {
         do_use_db (s);
      } else if (roll < 640) {
         do_when_open (s);
      } else if (roll < 760) {
         do_wait ();
      } else {
         do_dispatch ();
      }
      if (step % 64 == 0) {
         sweep ();
      }
   }
   fprintf (stderr, "   %d steps, %d operations, %d events, faults: %d kills, %d restarts, %d pauses\n", step, n_ops,
            events_seen, kills, restarts, pauses);

   /* Settle: the server back, every connection closed; every operation must then resolve. */
   note ("settle");
   if (server_paused) {
      server_resume (&server);
   }
   if (server_down) {
      server_restart (&server);
   }
   for (int i = 0; i < SLOTS; i++) {
      if (slots[i].conn) {
         do_close (&slots[i], false, true);
      }
   }
   {
      int64_t deadline = now_ms () + 20000;
      while (n_resolved < n_ops && now_ms () < deadline) {
         pump_for (rt, 20);
      }
   }
   for (int i = 0; i < n_ops; i++) {
      MCHECK (ops[i].calls == 1, "operation %s of step %d resolved %d times (20 s after everything was closed)",
              ops[i].what, ops[i].issued_step, ops[i].calls);
   }
   pump_for (rt, 50);
   for (int i = 0; i < SLOTS; i++) {
      if (slots[i].conn) {
         MCHECK (slots[i].last_event == MGCONN_EVENT_CLOSE || slots[i].last_event == 0,
                 "connection %d settled with `%s` as its last event", slots[i].id,
                 mgconn_event_type_name (slots[i].last_event));
         MCHECK (mgconn_connection_ready_state (slots[i].conn) ==
                    (slots[i].last_event ? state_after (slots[i].last_event) : MGCONN_STATE_UNINITIALIZED),
                 "connection %d: readyState %d, last event `%s`", slots[i].id,
                 mgconn_connection_ready_state (slots[i].conn),
                 slots[i].last_event ? mgconn_event_type_name (slots[i].last_event) : "(none)");
         do_free (&slots[i]);
      }
   }
   sweep ();
   fprintf (stderr, "   outcomes: %d succeeded", outcome_counts[0]);
   for (int c = 1; c <= MGCONN_ERR_INTERNAL; c++) {
      if (outcome_counts[c]) {
         fprintf (stderr, ", %d %s", outcome_counts[c], mgconn_error_category_name (c));
      }
   }
   fprintf (stderr, "; %d waits for the open of a closed connection failed at once\n", n_closed_fast);
   call_begin ("mgconn_runtime_free");
   mgconn_runtime_free (rt);
   call_end (WATCHDOG_MS);
   atomic_store (&watchdog_stop, true);
   pthread_join (dog, NULL);
   server_cleanup (&server);
}

static const test_case tests[] = {
   {"lifecycle", test_a_random_life_follows_the_model},
   {NULL, NULL},
};

int
main (int argc, char **argv)
{
   const char *env = getenv ("MGCONN_MODEL_SEED");
   seed = argc > 2 ? (unsigned) strtoul (argv[2], NULL, 10)
                   : env && *env ? (unsigned) strtoul (env, NULL, 10) : (unsigned) (now_us ()) ^ (unsigned) getpid ();
   return run_tests (argc > 2 ? 2 : argc, argv, tests);
}
