/*
 * init.c: process-wide set-up, reference-counted so that several hosts in one process (two Lua
 * states, a Python interpreter) never tear each other's driver state down.
 *
 * libmongoc can be initialised once per process only: mongoc_init() runs on the first reference and
 * mongoc_cleanup() when the library is unloaded (or the process exits) with no reference left, never
 * in between, so that a later mgconn_init() still finds a working driver. Also here: the version and
 * the header's constants as functions.
 */
#include "internal.h"

#include <string.h>

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
   MG_CONSTANT (MGCONN_STATE_UNINITIALIZED), MG_CONSTANT (MGCONN_OP_PENDING), MG_CONSTANT (MGCONN_OP_SUCCEEDED),
   MG_CONSTANT (MGCONN_OP_FAILED), MG_CONSTANT (MGCONN_OK), MG_CONSTANT (MGCONN_ERR_OPTION),
   MG_CONSTANT (MGCONN_ERR_SERVER_SELECTION), MG_CONSTANT (MGCONN_ERR_BUFFER_TIMEOUT),
   MG_CONSTANT (MGCONN_ERR_NOT_CONNECTED), MG_CONSTANT (MGCONN_ERR_CONNECTION_CLOSED),
   MG_CONSTANT (MGCONN_ERR_OVERWRITE_MODEL), MG_CONSTANT (MGCONN_ERR_MISSING_SCHEMA),
   MG_CONSTANT (MGCONN_ERR_OPERATION), MG_CONSTANT (MGCONN_ERR_DUPLICATE_KEY), MG_CONSTANT (MGCONN_ERR_WRITE),
   MG_CONSTANT (MGCONN_ERR_NETWORK), MG_CONSTANT (MGCONN_ERR_AUTHENTICATION),
   MG_CONSTANT (MGCONN_ERR_DOCUMENT_TOO_LARGE), MG_CONSTANT (MGCONN_ERR_TYPE),
   MG_CONSTANT (MGCONN_ERR_INVALID_ARGUMENT), MG_CONSTANT (MGCONN_ERR_CANCELLED), MG_CONSTANT (MGCONN_ERR_INTERNAL),
   MG_CONSTANT (MGCONN_ERR_OUTCOME_UNKNOWN),
   MG_CONSTANT (MGCONN_EVENT_CONNECTING), MG_CONSTANT (MGCONN_EVENT_CONNECTED), MG_CONSTANT (MGCONN_EVENT_OPEN),
   MG_CONSTANT (MGCONN_EVENT_DISCONNECTING), MG_CONSTANT (MGCONN_EVENT_DISCONNECTED),
   MG_CONSTANT (MGCONN_EVENT_CLOSE), MG_CONSTANT (MGCONN_EVENT_RECONNECTED), MG_CONSTANT (MGCONN_EVENT_ERROR),
   MG_CONSTANT (MGCONN_EVENT_INDEX),
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
