/*
 * init.c: process-wide set-up, reference-counted so that several hosts in one process (two Lua
 * states, a Python interpreter) never tear each other's driver state down.
 *
 * libmongoc can be initialised once per process only: mongoc_init() runs on the first reference and
 * mongoc_cleanup() when the library is unloaded (or the process exits) with no reference left, never
 * in between, so that a later mgconn_init() still finds a working driver. Also here: the version and
 * the header's constants as functions.
 *
 * Exit and unload. A host may stop with connections open: a Lua state's lua_close frees its runtime
 * and then unloads the module; Python and C programs just exit. Their pools are destroyed on
 * threads of their own (mg_process_thread_start), which may still be inside libmongoc then. So:
 *   - on first use the library pins itself in memory (RTLD_NODELETE): an unload by the host never
 *     unmaps code that such a thread is running (lua_close used to crash in about one run in 25);
 *   - an exit handler, registered after the driver (and OpenSSL's own exit handler) so it runs
 *     before them, waits up to MG_EXIT_WAIT_S for those threads and joins them;
 *   - the driver is cleaned up only once no such thread is left; one still running at exit (a
 *     server that does not answer) is abandoned with the driver intact, and the exit goes on.
 */
#include "internal.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int init_count;
static bool driver_ready;

/* The threads the exit waits for, under threads_lock; `done` is set by the thread itself last. */
typedef struct tracked_thread {
   pthread_t thread;
   void (*fn) (void *);
   void *arg;
   char name[16];
   bool done;
   struct tracked_thread *next;
} tracked_thread;
static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t threads_cond = PTHREAD_COND_INITIALIZER;
static tracked_thread *threads;
static int threads_running;

static void process_exit (void);

/* Keeps this library loaded for the rest of the process, whatever the host unloads. */
static void
pin_library (void)
{
   Dl_info info;
   if (dladdr ((void *) pin_library, &info) && info.dli_fname) {
      (void) dlopen (info.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
   }
}

/* Joins the threads that are done (threads_lock held): they have nothing left to do but return. */
static void
reap_locked (void)
{
   tracked_thread **p = &threads;
   while (*p) {
      tracked_thread *t = *p;
      if (t->done) {
         pthread_join (t->thread, NULL);
         *p = t->next;
         free (t);
      } else {
         p = &t->next;
      }
   }
}

static void *
tracked_main (void *arg)
{
   tracked_thread *t = arg;
   mg_name_this_thread (t->name);
   t->fn (t->arg);
   pthread_mutex_lock (&threads_lock);
   t->done = true;
   threads_running--;
   pthread_cond_broadcast (&threads_cond);
   pthread_mutex_unlock (&threads_lock);
   return NULL;
}

bool
mg_process_thread_start (const char *name, void (*fn) (void *), void *arg)
{
   tracked_thread *t = calloc (1, sizeof *t);
   bool ok;
   if (!t) {
      return false;
   }
   t->fn = fn;
   t->arg = arg;
   snprintf (t->name, sizeof t->name, "%s", name);
   pthread_mutex_lock (&threads_lock);
   reap_locked ();
   ok = pthread_create (&t->thread, NULL, tracked_main, t) == 0;
   if (ok) {
      t->next = threads;
      threads = t;
      threads_running++;
   }
   pthread_mutex_unlock (&threads_lock);
   if (!ok) {
      free (t);
   }
   return ok;
}

/* A forked child has none of its parent's threads: its exit must not wait for them. */
static void
forget_threads_in_child (void)
{
   threads = NULL; /* the parent's entries stay allocated: a child's leak, not freed under it */
   threads_running = 0;
   pthread_mutex_init (&threads_lock, NULL);
   pthread_cond_init (&threads_cond, NULL);
}

/* Waits for the tracked threads until the deadline (CLOCK_REALTIME); true when none is left. */
static bool
wait_for_threads (int seconds)
{
   struct timespec until;
   bool none_left;
   clock_gettime (CLOCK_REALTIME, &until);
   until.tv_sec += seconds;
   pthread_mutex_lock (&threads_lock);
   while (threads_running > 0 && pthread_cond_timedwait (&threads_cond, &threads_lock, &until) == 0) {
   }
   reap_locked ();
   none_left = threads_running == 0;
   pthread_mutex_unlock (&threads_lock);
   return none_left;
}

/* fork(): in the child only the forking thread runs on. The process-wide locks a parent thread held
 * at that moment would stay locked, the runtimes in the log registry are the parent's (their workers
 * are not in the child), and so are the tracked threads: all are made new here, so that a runtime
 * made in the child works and its exit does not wait for its parent's threads. The parent's
 * runtimes themselves are left alone (a host must not use them in the child). */
static void
mg_after_fork_child (void)
{
   pthread_mutex_init (&init_lock, NULL);
   mg_log_after_fork_child ();
   forget_threads_in_child ();
}

int
mg_process_ref (void)
{
   int n;
   pthread_mutex_lock (&init_lock);
   if (!driver_ready) {
      pin_library ();
      mongoc_init ();
      mg_log_install_driver_handler ();
      (void) pthread_atfork (NULL, NULL, mg_after_fork_child);
      driver_ready = true;
      atexit (process_exit); /* after mongoc_init: runs before the driver's and OpenSSL's handlers */
   }
   n = ++init_count;
   pthread_mutex_unlock (&init_lock);
   return n;
}

void
mg_process_unref (void)
{
   pthread_mutex_lock (&init_lock);
   if (init_count > 0) {
      init_count--;
   }
   pthread_mutex_unlock (&init_lock);
}

int
mgconn_init (void)
{
   return mg_process_ref ();
}

int
mgconn_shutdown (void)
{
   int n;
   pthread_mutex_lock (&init_lock);
   n = init_count > 0 ? --init_count : -1;
   pthread_mutex_unlock (&init_lock);
   return n;
}

static void
process_exit (void)
{
   (void) wait_for_threads (MG_EXIT_WAIT_S);
}

__attribute__ ((destructor)) static void
mg_process_unload (void)
{
   /* Only when nobody holds a reference (a host that never shut down may still have threads) and
    * no pool teardown is still inside the driver. */
   if (driver_ready && init_count == 0 && wait_for_threads (0)) {
      mongoc_log_set_handler (NULL, NULL);
      mongoc_cleanup ();
      driver_ready = false;
   }
}

const char *
mgconn_version (void)
{
   return MGCONN_VERSION_STRING;
}

int
mgconn_version_number (void)
{
   return MGCONN_VERSION_MAJOR * 10000 + MGCONN_VERSION_MINOR * 100 + MGCONN_VERSION_PATCH;
}

/* Every macro and enumerator of mgconn.h with a value, for hosts that bind the library without a C
 * preprocessor. bindings/abi/check_manifest.py compares this table with the header. */
#define MG_CONSTANT(name) {#name, (int64_t) (name)}
static const struct {
   const char *name;
   int64_t value;
} constants[] = {
   MG_CONSTANT (MGCONN_VERSION_MAJOR), MG_CONSTANT (MGCONN_VERSION_MINOR), MG_CONSTANT (MGCONN_VERSION_PATCH),
   MG_CONSTANT (MGCONN_ERROR_MESSAGE_SIZE), MG_CONSTANT (MGCONN_ERROR_CODE_NAME_SIZE), MG_CONSTANT (MGCONN_ERROR_SIZE),
   MG_CONSTANT (MGCONN_LOG_ERROR), MG_CONSTANT (MGCONN_LOG_WARNING), MG_CONSTANT (MGCONN_LOG_INFO),
   MG_CONSTANT (MGCONN_LOG_DEBUG), MG_CONSTANT (MGCONN_STATE_DISCONNECTED), MG_CONSTANT (MGCONN_STATE_CONNECTED),
   MG_CONSTANT (MGCONN_STATE_CONNECTING), MG_CONSTANT (MGCONN_STATE_DISCONNECTING),
   MG_CONSTANT (MGCONN_STATE_UNINITIALIZED), MG_CONSTANT (MGCONN_LISTEN_ONCE), MG_CONSTANT (MGCONN_OP_PENDING),
   MG_CONSTANT (MGCONN_OP_SUCCEEDED),
   MG_CONSTANT (MGCONN_OP_FAILED), MG_CONSTANT (MGCONN_OK), MG_CONSTANT (MGCONN_ERR_OPTION),
   MG_CONSTANT (MGCONN_ERR_SERVER_SELECTION), MG_CONSTANT (MGCONN_ERR_BUFFER_TIMEOUT),
   MG_CONSTANT (MGCONN_ERR_NOT_CONNECTED), MG_CONSTANT (MGCONN_ERR_CONNECTION_CLOSED),
   MG_CONSTANT (MGCONN_ERR_OVERWRITE_MODEL), MG_CONSTANT (MGCONN_ERR_MISSING_SCHEMA),
   MG_CONSTANT (MGCONN_ERR_OPERATION), MG_CONSTANT (MGCONN_ERR_DUPLICATE_KEY), MG_CONSTANT (MGCONN_ERR_WRITE),
   MG_CONSTANT (MGCONN_ERR_NETWORK), MG_CONSTANT (MGCONN_ERR_AUTHENTICATION),
   MG_CONSTANT (MGCONN_ERR_DOCUMENT_TOO_LARGE), MG_CONSTANT (MGCONN_ERR_TYPE),
   MG_CONSTANT (MGCONN_ERR_INVALID_ARGUMENT), MG_CONSTANT (MGCONN_ERR_CANCELLED), MG_CONSTANT (MGCONN_ERR_INTERNAL),
   MG_CONSTANT (MGCONN_ERR_OUTCOME_UNKNOWN), MG_CONSTANT (MGCONN_ERR_VALIDATION), MG_CONSTANT (MGCONN_ERR_NOT_SUPPORTED),
   MG_CONSTANT (MGCONN_EVENT_CONNECTING), MG_CONSTANT (MGCONN_EVENT_CONNECTED), MG_CONSTANT (MGCONN_EVENT_OPEN),
   MG_CONSTANT (MGCONN_EVENT_DISCONNECTING), MG_CONSTANT (MGCONN_EVENT_DISCONNECTED),
   MG_CONSTANT (MGCONN_EVENT_CLOSE), MG_CONSTANT (MGCONN_EVENT_RECONNECTED), MG_CONSTANT (MGCONN_EVENT_ERROR),
   MG_CONSTANT (MGCONN_EVENT_INDEX), MG_CONSTANT (MGCONN_OPERATION_TAKES_FIRST),
   MG_CONSTANT (MGCONN_OPERATION_TAKES_SECOND), MG_CONSTANT (MGCONN_OPERATION_FIRST_IS_ARRAY),
   MG_CONSTANT (MGCONN_OPERATION_FIRST_REQUIRED), MG_CONSTANT (MGCONN_OPERATION_RETURNS_CURSOR),
};

int
mgconn_constant (const char *name, int64_t *value)
{
   for (size_t i = 0; name && i < sizeof constants / sizeof constants[0]; i++) {
      if (strcmp (constants[i].name, name) == 0) {
         if (value) {
            *value = constants[i].value;
         }
         return 0;
      }
   }
   return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_constant: unknown name \"%s\"", name ? name : "(null)");
}
