/*
 * init.c: process-wide set-up, reference-counted so that several hosts in one process (two Lua
 * states, a Python interpreter) never tear each other's driver state down.
 *
 * libmongoc can be initialised once per process only: mongoc_init() runs on the first reference and
 * mongoc_cleanup() when the library is unloaded (or the process exits) with no reference left, never
 * in between, so that a later mgconn_init() still finds a working driver.
 */
#include "internal.h"

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int init_count;
static bool driver_ready;

int
mg_process_ref (void)
{
   int n;
   pthread_mutex_lock (&init_lock);
   if (!driver_ready) {
      mongoc_init ();
      mg_log_install_driver_handler ();
      driver_ready = true;
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

__attribute__ ((destructor)) static void
mg_process_unload (void)
{
   /* Only when nobody holds a reference: a host that never shut down may still have threads. */
   if (driver_ready && init_count == 0) {
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
