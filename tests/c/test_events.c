/*
 * test_events.c: listeners as a host registers them: once, per-listener removal, and the release
 * that hands each registration's userdata back exactly once, after its last call.
 */
#include "harness.h"

#include <string.h>

/* One host callback object: how often it ran, for which events, and whether it was released. */
typedef struct {
   int calls;
   char seen[128];
   int released;
   bool called_after_release;
   mgconn_connection *conn; /* for the listener that removes itself */
   bool remove_self;
   bool released_during_own_call;
} host_cb;

static void
on_event (mgconn_connection *conn, const mgconn_event *ev, void *userdata)
{
   host_cb *h = userdata;
   h->calls++;
   if (h->released) {
      h->called_after_release = true;
   }
   strncat (h->seen, mgconn_event_name (ev), sizeof h->seen - strlen (h->seen) - 2);
   strcat (h->seen, ",");
   if (h->remove_self) {
      CHECK (mgconn_connection_off (conn, mgconn_event_name (ev), on_event, h) == 0, "off from inside the listener");
      h->released_during_own_call = h->released > 0;
   }
}

static void
release (void *userdata)
{
   ((host_cb *) userdata)->released++;
}

static int
count_visit (int32_t type, int32_t flags, void *listener_userdata, void *userdata)
{
   int *n = userdata;
   (void) type;
   (void) flags;
   (void) listener_userdata;
   (*n)++;
   return 0;
}

static void
test_once_off_and_release_each_registration_once (void)
{
   test_server s;
   mgconn_runtime *rt = runtime_new ();
   mgconn_connection *conn;
   recorder r = {0};
   host_cb once = {0}, every = {0}, twice = {0}, self = {.remove_self = true}, kept = {0};
   int visited = 0;
   server_start (&s);
   conn = conn_new (rt, server_uri (&s, "events", NULL), NULL);
   recorder_attach (&r, conn);
   CHECK (mgconn_connection_listen (conn, NULL, MGCONN_LISTEN_ONCE, release, on_event, &once) == 0, "once");
   CHECK (mgconn_connection_listen (conn, NULL, 0, release, on_event, &every) == 0, "every");
   /* The same (cb, userdata) twice is two registrations: off removes one of them. */
   CHECK (mgconn_connection_listen (conn, "open", 0, release, on_event, &twice) == 0, "twice 1");
   CHECK (mgconn_connection_listen (conn, "open", 0, release, on_event, &twice) == 0, "twice 2");
   CHECK (mgconn_connection_off (conn, "open", on_event, &twice) == 0, "off one of two");
   CHECK (twice.released == 1, "off released the registration at once: %d", twice.released);
   CHECK (mgconn_connection_listen (conn, "connected", 0, release, on_event, &self) == 0, "self");
   CHECK (mgconn_connection_listen (conn, "open", 0, release, on_event, &kept) == 0, "kept");
   CHECK (mgconn_connection_listen (conn, "nope", 0, release, on_event, &kept) == -MGCONN_ERR_INVALID_ARGUMENT,
          "an unknown event is refused");
   CHECK (mgconn_connection_listen (conn, NULL, 8, release, on_event, &kept) == -MGCONN_ERR_INVALID_ARGUMENT,
          "unknown flags are refused");
   CHECK (mgconn_connection_visit_listeners (conn, on_event, count_visit, &visited) == 0 && visited == 5,
          "visit sees the 5 live registrations made with on_event, not the recorder's: %d", visited);

   CHECK (wait_event (rt, &r, "open", 0, 10000) >= 0, "open: %s", recorder_sequence (&r));
   CHECK (once.calls == 1 && strcmp (once.seen, "connecting,") == 0 && once.released == 1,
          "the ONCE listener heard only the first event and was released: %d %s %d", once.calls, once.seen,
          once.released);
   CHECK (strcmp (every.seen, "connecting,connected,open,") == 0 && every.released == 0, "every: %s", every.seen);
   CHECK (twice.calls == 1 && twice.released == 1, "the registration left heard open once: %d", twice.calls);
   CHECK (self.calls == 1 && self.released == 1 && !self.released_during_own_call,
          "removed from inside its own call, released only after it returned");
   visited = 0;
   mgconn_connection_visit_listeners (conn, on_event, count_visit, &visited);
   CHECK (visited == 3, "every, twice and kept are left: %d", visited);

   /* The host's last handle: every registration is released, and none is called again. */
   mgconn_connection_free (conn);
   CHECK (every.released == 1 && twice.released == 2 && kept.released == 1, "released at free: %d %d %d",
          every.released, twice.released, kept.released);
   pump_for (rt, 200);
   CHECK (!every.called_after_release && !kept.called_after_release && !once.called_after_release,
          "no call after a release");
   mgconn_runtime_free (rt);
   server_cleanup (&s);
}

typedef struct {
   int calls;
   int released;
} model_cb;

static void
on_index (mgconn_model *model, const mgconn_event *ev, void *userdata)
{
   (void) model;
   (void) ev;
   ((model_cb *) userdata)->calls++;
}

static void
release_model_cb (void *userdata)
{
   ((model_cb *) userdata)->released++;
}

static void
test_model_once_and_release (void)
{
   test_server s;
   mgconn_runtime *rt = runtime_new ();
   mgconn_connection *conn;
   mgconn_schema *schema;
   mgconn_model *m, *again;
   mgconn_op *init;
   model_cb once = {0}, every = {0};
   server_start (&s);
   conn = conn_new (rt, server_uri (&s, "events", NULL), NULL);
   CHECK (mgconn_schema_new (&schema, NULL, 0, NULL, 0, NULL) == 0, "schema");
   CHECK (mgconn_connection_model (&m, conn, "Thing", schema, NULL, NULL) == 0, "model");
   CHECK (mgconn_model_listen (m, "index", MGCONN_LISTEN_ONCE, release_model_cb, on_index, &once) == 0, "once");
   CHECK (mgconn_model_listen (m, "index", 0, release_model_cb, on_index, &every) == 0, "every");
   CHECK (mgconn_model_listen (m, "save", 0, release_model_cb, on_index, &every) == -MGCONN_ERR_INVALID_ARGUMENT,
          "a model has no other event");
   CHECK (mgconn_model_init (&init, m, NULL, NULL) == 0, "init");
   expect_ok (init, "init");
   mgconn_op_free (init);
   mgconn_runtime_dispatch (rt, 0);
   CHECK (once.calls == 1 && once.released == 1, "once: %d calls, %d releases", once.calls, once.released);
   CHECK (every.calls == 1 && every.released == 0, "every: %d calls", every.calls);
   /* A second host handle of the same model: the listeners last until the last one is freed. */
   CHECK (mgconn_connection_model (&again, conn, "Thing", schema, NULL, NULL) == 0 && again == m, "same model");
   mgconn_model_free (m);
   CHECK (every.released == 0, "one handle is left: the listener stays");
   mgconn_model_free (again);
   CHECK (every.released == 1, "the last handle's free released it: %d", every.released);
   mgconn_schema_free (schema);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   server_cleanup (&s);
}

static const test_case tests[] = {
   {"connection_listeners", test_once_off_and_release_each_registration_once},
   {"model_listeners", test_model_once_and_release},
   {NULL, NULL},
};

int
main (int argc, char **argv)
{
   return run_tests (argc, argv, tests);
}
