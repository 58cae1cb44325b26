/*
 * log.c: where mgconn's and libmongoc's warnings go.
 *
 * A line is redacted first, then queued as a delivery on its runtime, so a host's log handler runs
 * on the host thread in dispatch like every other callback. Without a handler the line goes to
 * stderr at once (from any thread: writing stderr is not host code).
 *
 * libmongoc's log handler is process-wide and has no runtime: its warnings go to every live runtime
 * (rt_registry, under registry_lock, which is taken before rt->lock: see internal.h).
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct {
   mg_delivery d;
   mgconn_runtime *rt;
   int32_t level;
   char *domain;
   char *message;
} mg_log_line;

static const char *
level_name (int32_t level)
{
   switch (level) {
   case MGCONN_LOG_ERROR:
      return "error";
   case MGCONN_LOG_WARNING:
      return "warning";
   case MGCONN_LOG_INFO:
      return "info";
   default:
      return "debug";
   }
}

static void
line_free (mg_log_line *l)
{
   bson_free (l->domain);
   bson_free (l->message);
   bson_free (l);
}

/* Without a host's log handler a line goes to stderr, except debug lines: those asked for with the
 * debug option (domain "debug") are shown, the driver's demoted warnings are not. */
static bool
unhandled_line_is_shown (int32_t level, const char *domain)
{
   return level != MGCONN_LOG_DEBUG || strcmp (domain, "debug") == 0;
}

static void
line_run (mg_delivery *d)
{
   mg_log_line *l = MG_CONTAINER_OF (d, mg_log_line, d);
   if (l->rt->log_cb) {
      l->rt->log_cb (l->level, l->domain, l->message, l->rt->log_ud);
   } else if (!unhandled_line_is_shown (l->level, l->domain)) {
      /* nothing: see unhandled_line_is_shown */
   } else {
      fprintf (stderr, "mgconn %s [%s]: %s\n", level_name (l->level), l->domain, l->message);
   }
   line_free (l);
}

static void
line_drop (mg_delivery *d)
{
   line_free (MG_CONTAINER_OF (d, mg_log_line, d));
}

static void
emit (mgconn_runtime *rt, int32_t level, const char *domain, const char *redacted)
{
   mg_log_line *l;
   if (!rt) {
      if (!unhandled_line_is_shown (level, domain)) {
         return;
      }
      fprintf (stderr, "mgconn %s [%s]: %s\n", level_name (level), domain, redacted);
      return;
   }
   l = bson_malloc0 (sizeof *l);
   l->d.run = line_run;
   l->d.drop = line_drop;
   l->rt = rt;
   l->level = level;
   l->domain = bson_strdup (domain);
   l->message = bson_strdup (redacted);
   mg_runtime_deliver (rt, &l->d);
}

void
mg_log (mgconn_runtime *rt, int32_t level, const char *domain, const char *fmt, ...)
{
   va_list ap;
   char *raw, *red;
   va_start (ap, fmt);
   raw = bson_strdupv_printf (fmt, ap);
   va_end (ap);
   red = mg_redact (raw);
   emit (rt, level, domain, red);
   bson_free (raw);
   bson_free (red);
}

void
mgconn_runtime_set_log_handler (mgconn_runtime *rt, mgconn_log_cb cb, void *userdata)
{
   if (rt) {
      rt->log_cb = cb;
      rt->log_ud = userdata;
   }
}

#define MG_RUNTIMES_MAX 64
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static mgconn_runtime *rt_registry[MG_RUNTIMES_MAX];

void
mg_log_register_runtime (mgconn_runtime *rt)
{
   pthread_mutex_lock (&registry_lock);
   for (int i = 0; i < MG_RUNTIMES_MAX; i++) {
      if (!rt_registry[i]) {
         rt_registry[i] = rt;
         break;
      }
   }
   pthread_mutex_unlock (&registry_lock);
}

void
mg_log_unregister_runtime (mgconn_runtime *rt)
{
   pthread_mutex_lock (&registry_lock);
   for (int i = 0; i < MG_RUNTIMES_MAX; i++) {
      if (rt_registry[i] == rt) {
         rt_registry[i] = NULL;
      }
   }
   pthread_mutex_unlock (&registry_lock);
}

void
mg_log_after_fork_child (void)
{
   /* Only this thread exists in the child: a worker of the parent that held the lock at the fork is
    * not here to release it, and the runtimes registered are the parent's, whose queues nobody in
    * this process dispatches (a line pushed to one would take its lock, perhaps held as well). */
   pthread_mutex_init (&registry_lock, NULL);
   memset (rt_registry, 0, sizeof rt_registry);
}

/* While a thread parses a connection string, libmongoc's lines from that thread belong to that
 * connection: they are collected here instead of going to every runtime (see mg_log_capture_begin). */
static _Thread_local mg_strbuf_t *capture;

void
mg_log_capture_begin (mg_strbuf_t *into)
{
   capture = into;
}

void
mg_log_capture_end (void)
{
   capture = NULL;
}

static void
driver_log_handler (mongoc_log_level_t level, const char *domain, const char *message, void *unused)
{
   char *red;
   int32_t ours;
   bool sent = false;
   (void) unused;
   if (level > MONGOC_LOG_LEVEL_WARNING) {
      return; /* libmongoc's info, debug and trace lines are not for script users */
   }
   if (strncmp (message, "Error in abortTransaction: no such command", 42) == 0) {
      /* The abort of a transaction on a server without transactions (FerretDB): its first
       * operation already failed as NotSupported, naming that; libmongoc would warn on every one. */
      return;
   }
   if (strstr (message, "\"endSessions\"")) {
      /* libmongoc ends server sessions when a pool is destroyed; a server without the command (FerretDB)
       * makes it warn on every close. The sessions expire on the server anyway: nothing to act on. */
      return;
   }
   if (capture) {
      red = mg_redact (message);
      mg_strbuf_append_printf (capture, "%s\n", red);
      bson_free (red);
      return;
   }
   ours = level <= MONGOC_LOG_LEVEL_CRITICAL ? MGCONN_LOG_ERROR : MGCONN_LOG_WARNING;
   if (ours == MGCONN_LOG_WARNING &&
       (strcmp (domain, "stream") == 0 || strcmp (domain, "socket") == 0 ||
        (strcmp (domain, "cluster") == 0 && strncmp (message, "Failed connection to ", 21) == 0))) {
      /* "Failed to buffer 4 bytes" and the like, once per broken socket during an outage, and "Failed
       * connection to host:port", once per monitor's attempt while the server is down: the
       * connection's events already say it (disconnected, reconnected), so these are debug lines. */
      ours = MGCONN_LOG_DEBUG;
   }
   red = mg_redact (message);
   pthread_mutex_lock (&registry_lock);
   for (int i = 0; i < MG_RUNTIMES_MAX; i++) {
      if (rt_registry[i]) {
         emit (rt_registry[i], ours, domain, red);
         sent = true;
      }
   }
   pthread_mutex_unlock (&registry_lock);
   if (!sent) {
      emit (NULL, ours, domain, red);
   }
   bson_free (red);
}

void
mg_log_install_driver_handler (void)
{
   mongoc_log_set_handler (driver_log_handler, NULL);
}
