/*
 * test_ffi_scenario.c: a whole session with FerretDB driven only through the libffi layer, as a
 * host without mgconn.h would: load the library and the manifest, create a runtime, connect, insert,
 * find, read events by polling, close. This file never includes mgconn.h and never links
 * libmgconn; libbson builds the BSON bytes, as any BSON library of the host would.
 *
 * Usage: test_ffi_scenario LIBRARY MANIFEST URI
 */
#include "mgconn_ffi.h"
#include "check.h" /* tests/c: the assertion only, no mgconn.h */

#include <bson/bson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static mgffi *ffi;

/* Calls through the layer and fails the test when the layer refuses. */
static mgffi_value
call (const char *name, size_t n, const mgffi_value *args)
{
   mgffi_value ret;
   CHECK (mgffi_call (ffi, name, args, n, &ret) == 0, "%s refused: %s", name, mgffi_error (ffi));
   return ret;
}
#define CALL(name, ...) call (name, sizeof ((mgffi_value[]){__VA_ARGS__}) / sizeof (mgffi_value), (mgffi_value[]){__VA_ARGS__})
#define CALL0(name) call (name, 0, NULL)

/* The layer must refuse the call, saying `expect`. */
static void
refused (const char *expect, const char *name, size_t n, const mgffi_value *args)
{
   CHECK (mgffi_call (ffi, name, args, n, NULL) != 0, "%s was not refused", name);
   CHECK (strstr (mgffi_error (ffi), expect), "%s refused with \"%s\", expected it to say \"%s\"", name,
          mgffi_error (ffi), expect);
}
#define REFUSED(expect, name, ...) \
   refused (expect, name, sizeof ((mgffi_value[]){__VA_ARGS__}) / sizeof (mgffi_value), (mgffi_value[]){__VA_ARGS__})

static int64_t
constant (const char *name)
{
   int64_t value = -1;
   CHECK (CALL ("mgconn_constant", mgffi_str (name), mgffi_ptr (&value)).v.i == 0, "no constant %s", name);
   return value;
}

static int64_t
now_ms (void)
{
   struct timespec ts;
   clock_gettime (CLOCK_MONOTONIC, &ts);
   return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
message_of (const void *error)
{
   return (const char *) error + mgffi_struct_layout (ffi, "mgconn_error", "message");
}

/* Dispatches and polls `conn`'s events until `last` arrives; returns them joined by ','. */
static const char *
poll_events_until (void *rt, void *conn, int64_t last, void *err)
{
   static char seen[256];
   int64_t deadline = now_ms () + 10000, type = 0;
   seen[0] = '\0';
   while (type != last && now_ms () < deadline) {
      CALL ("mgconn_runtime_dispatch", mgffi_handle ("runtime", rt), mgffi_int (0));
      while ((type = CALL ("mgconn_connection_next_event", mgffi_handle ("connection", conn), mgffi_ptr (err)).v.i)) {
         const char *name = CALL ("mgconn_event_type_name", mgffi_int (type)).v.str;
         if (seen[0]) {
            strcat (seen, ",");
         }
         strcat (seen, name);
         if (type == last) {
            break;
         }
      }
      usleep (2000);
   }
   return seen;
}

static bson_t *
reply_of (void *op)
{
   const uint8_t *data = NULL;
   size_t len = 0;
   CHECK (CALL ("mgconn_op_reply", mgffi_handle ("op", op), mgffi_ptr (&data), mgffi_ptr (&len)).v.i == 0, "reply");
   return bson_new_from_data (data, len);
}

static void
wait_succeeded (void *op, void *err, const char *what)
{
   int64_t status = CALL ("mgconn_op_wait", mgffi_handle ("op", op), mgffi_int (10000)).v.i;
   if (status != constant ("MGCONN_OP_SUCCEEDED")) {
      mgffi_value e = CALL ("mgconn_op_error", mgffi_handle ("op", op));
      CHECK (0, "%s: status %lld: %s", what, (long long) status, e.v.ptr ? message_of (e.v.ptr) : "(no error)");
   }
   (void) err;
}

int
main (int argc, char **argv)
{
   char why[512];
   void *rt = NULL, *conn = NULL, *coll = NULL, *op = NULL, *find = NULL, *count = NULL, *closing = NULL;
   void *err;
   bson_t *doc, *filter, *reply;
   bson_iter_t it;
   uint8_t garbage[5] = {5, 0, 0, 0, 1}; /* claims 5 bytes, does not end with NUL */
   const char *events;

   CHECK (argc == 4, "usage: %s LIBRARY MANIFEST URI", argv[0]);
   CHECK (mgffi_open (&ffi, argv[1], argv[2], why, sizeof why) == 0, "%s", why);
   fprintf (stderr, "   the manifest's %zu functions resolved and prepared\n", mgffi_function_count (ffi));

   /* The layer refuses what does not fit the manifest, before anything reaches the library. */
   REFUSED ("no such function", "mgconn_no_such_function", mgffi_int (1));
   REFUSED ("takes 4 arguments (the manifest), 1 given", "mgconn_runtime_new", mgffi_null ());
   REFUSED ("must be a string", "mgconn_constant", mgffi_int (3), mgffi_null ());
   REFUSED ("may not be NULL", "mgconn_constant", mgffi_null (), mgffi_null ());
   REFUSED ("is not a live runtime handle", "mgconn_runtime_fd", mgffi_handle ("runtime", &why));
   REFUSED ("does not fit in 32 bits", "mgconn_event_type_name", mgffi_int (INT64_C (1) << 40));

   CHECK (CALL0 ("mgconn_init").v.i >= 1, "mgconn_init");
   CHECK (strcmp (CALL0 ("mgconn_version").v.str, "0.1.0") == 0, "version %s", CALL0 ("mgconn_version").v.str);
   CHECK (constant ("MGCONN_ERROR_SIZE") == mgffi_struct_layout (ffi, "mgconn_error", NULL),
          "MGCONN_ERROR_SIZE %lld, the manifest's layout %lld", (long long) constant ("MGCONN_ERROR_SIZE"),
          (long long) mgffi_struct_layout (ffi, "mgconn_error", NULL));
   err = calloc (1, (size_t) constant ("MGCONN_ERROR_SIZE"));

   CHECK (CALL ("mgconn_runtime_new", mgffi_ptr (&rt), mgffi_null (), mgffi_int (0), mgffi_ptr (err)).v.i == 0, "%s",
          message_of (err));
   CHECK (CALL ("mgconn_connection_new", mgffi_ptr (&conn), mgffi_handle ("runtime", rt), mgffi_str (argv[3]),
                mgffi_null (), mgffi_int (0), mgffi_ptr (err))
                .v.i == 0,
          "%s", message_of (err));
   REFUSED ("must be a runtime handle, got a connection handle", "mgconn_runtime_fd", mgffi_handle ("runtime", conn));
   CHECK (CALL ("mgconn_connection_queue_events", mgffi_handle ("connection", conn), mgffi_int (32)).v.i == 0,
          "queue_events");
   CHECK (CALL ("mgconn_connection_collection", mgffi_ptr (&coll), mgffi_handle ("connection", conn),
                mgffi_str ("ffi_players"), mgffi_ptr (err))
                .v.i == 0,
          "%s", message_of (err));

   /* Sent before the connection is open: buffered, as in Mongoose. */
   doc = BCON_NEW ("name", BCON_UTF8 ("ada"), "score", BCON_INT32 (7));
   CHECK (CALL ("mgconn_collection_insert_one", mgffi_ptr (&op), mgffi_handle ("collection", coll),
                mgffi_ptr ((void *) bson_get_data (doc)), mgffi_int (doc->len), mgffi_null (), mgffi_int (0),
                mgffi_null (), mgffi_null ())
                .v.i == 0,
          "insert_one refused");

   events = poll_events_until (rt, conn, constant ("MGCONN_EVENT_OPEN"), err);
   CHECK (strcmp (events, "connecting,connected,open") == 0, "events polled while opening: %s", events);
   wait_succeeded (op, err, "insert_one");
   reply = reply_of (op);
   CHECK (bson_iter_init_find (&it, reply, "insertedId") && BSON_ITER_HOLDS_OID (&it), "reply without insertedId");
   bson_destroy (reply);

   /* Bad BSON is refused by the library, clearly, and the connection goes on. */
   CHECK (CALL ("mgconn_collection_insert_one", mgffi_null (), mgffi_handle ("collection", coll), mgffi_ptr (garbage),
                mgffi_int (sizeof garbage), mgffi_null (), mgffi_int (0), mgffi_null (), mgffi_null ())
                .v.i == -constant ("MGCONN_ERR_INVALID_ARGUMENT"),
          "garbage BSON accepted");
   CHECK (strlen (message_of (CALL0 ("mgconn_last_error").v.ptr)) > 0, "no message for garbage BSON");
   fprintf (stderr, "   garbage BSON: %s\n", message_of (CALL0 ("mgconn_last_error").v.ptr));

   filter = BCON_NEW ("name", BCON_UTF8 ("ada"));
   CALL ("mgconn_collection_find_one", mgffi_ptr (&find), mgffi_handle ("collection", coll),
         mgffi_ptr ((void *) bson_get_data (filter)), mgffi_int (filter->len), mgffi_null (), mgffi_int (0),
         mgffi_null (), mgffi_null ());
   /* By name, through the core's table of operations, as a host without a table of its own calls. */
   CALL ("mgconn_collection_call", mgffi_ptr (&count), mgffi_handle ("collection", coll), mgffi_str ("countDocuments"),
         mgffi_ptr ((void *) bson_get_data (filter)), mgffi_int (filter->len), mgffi_null (), mgffi_int (0),
         mgffi_null (), mgffi_int (0), mgffi_null (), mgffi_null ());
   wait_succeeded (find, err, "find_one");
   reply = reply_of (find);
   CHECK (bson_iter_init_find (&it, reply, "document") && BSON_ITER_HOLDS_DOCUMENT (&it), "no document");
   CHECK (bson_iter_init (&it, reply) && bson_iter_find_descendant (&it, "document.score", &it) &&
             bson_iter_int32 (&it) == 7,
          "found document lacks score 7");
   bson_destroy (reply);
   wait_succeeded (count, err, "count_documents");
   reply = reply_of (count);
   CHECK (bson_iter_init_find (&it, reply, "count") && bson_iter_as_int64 (&it) == 1, "count is not 1");
   bson_destroy (reply);

   CALL ("mgconn_collection_free", mgffi_handle ("collection", coll));
   REFUSED ("is not a live collection handle", "mgconn_collection_name", mgffi_handle ("collection", coll));

   CALL ("mgconn_connection_close", mgffi_ptr (&closing), mgffi_handle ("connection", conn), mgffi_int (0),
         mgffi_null (), mgffi_null ());
   events = poll_events_until (rt, conn, constant ("MGCONN_EVENT_CLOSE"), err);
   CHECK (strcmp (events, "disconnecting,disconnected,close") == 0, "events polled while closing: %s", events);
   wait_succeeded (closing, err, "close");
   CHECK (CALL ("mgconn_connection_ready_state", mgffi_handle ("connection", conn)).v.i ==
             constant ("MGCONN_STATE_DISCONNECTED"),
          "state after close");

   CALL ("mgconn_op_free", mgffi_handle ("op", op));
   CALL ("mgconn_op_free", mgffi_handle ("op", find));
   CALL ("mgconn_op_free", mgffi_handle ("op", count));
   CALL ("mgconn_op_free", mgffi_handle ("op", closing));
   CALL ("mgconn_connection_free", mgffi_handle ("connection", conn));
   CALL ("mgconn_runtime_free", mgffi_handle ("runtime", rt));
   CALL ("mgconn_error_cleanup", mgffi_ptr (err));
   CHECK (CALL0 ("mgconn_shutdown").v.i >= 0, "shutdown");
   free (err);
   bson_destroy (doc);
   bson_destroy (filter);
   mgffi_close (ffi);
   fprintf (stderr, "   scenario passed through libffi only\n");
   return 0;
}
