/*
 * test_soak.c: the fault soak's C part, run under ASan+UBSan (and TSan) by the test command: 20
 * seconds of inserts with unique _ids and finds, 16 in flight, dispatched from a host loop, while
 * the server is SIGKILLed every 5-7 s and restarted a second later. Every operation must resolve,
 * the collection must hold every acknowledged insert and nothing that was not attempted, and the
 * sanitizers must stay quiet.
 */
#include "harness.h"

#include <string.h>
#include <unistd.h>

#define IN_FLIGHT 16
#define MAX_IDS 200000

typedef struct {
   int32_t id;
   bool is_insert;
} pending_op;

static int32_t next_id = 1, in_flight = 0, resolved = 0, failed = 0, issued = 0;
static uint8_t state[MAX_IDS]; /* 0 never sent, 1 acknowledged, 2 ambiguous (a network error), 3 refused */
static int32_t acked_ids[MAX_IDS], n_acked = 0;
static mgconn_collection *coll;

static void
on_done (mgconn_op *op, void *userdata)
{
   pending_op *p = userdata;
   const mgconn_error *e = mgconn_op_error (op);
   in_flight--;
   resolved++;
   if (mgconn_op_status (op) == MGCONN_OP_SUCCEEDED) {
      if (p->is_insert) {
         state[p->id] = 1;
         acked_ids[n_acked++] = p->id;
      }
   } else {
      failed++;
      if (p->is_insert) {
         state[p->id] = e && e->category == MGCONN_ERR_OUTCOME_UNKNOWN ? 2 : 3;
      }
   }
   bson_free (p);
}

static void
issue (unsigned *seed)
{
   pending_op *p = bson_malloc0 (sizeof *p);
   bson_t *doc;
   int rc;
   if (n_acked == 0 || rand_r (seed) % 10 < 6) {
      p->is_insert = true;
      p->id = next_id++;
      doc = BCON_NEW ("_id", BCON_INT32 (p->id), "payload", "soak");
      rc = mgconn_collection_insert_one (NULL, coll, bson_get_data (doc), doc->len, NULL, 0, on_done, p);
   } else {
      p->id = acked_ids[rand_r (seed) % (unsigned) n_acked];
      doc = BCON_NEW ("_id", BCON_INT32 (p->id));
      rc = mgconn_collection_find_one (NULL, coll, bson_get_data (doc), doc->len, NULL, 0, on_done, p);
   }
   CHECK (rc == 0, "an operation was refused: %s", mgconn_last_error ()->message);
   bson_destroy (doc);
   in_flight++;
   issued++;
}

static void
test_twenty_seconds_of_operations_through_kills_lose_nothing (void)
{
   test_server s;
   mgconn_runtime *rt;
   mgconn_connection *conn;
   mgconn_op *count = NULL;
   unsigned seed = 5;
   int kills = 0;
   int64_t start, next_kill, restart_at = 0;
   int64_t stored = 0;
   const char *reply;

   server_start (&s);
   rt = runtime_new ();
   conn = conn_new (rt, server_uri (&s, "soak", NULL), "{\"heartbeatFrequencyMS\": 500}");
   coll = coll_of (conn, "soak");
   CHECK (ping (conn, 10000, NULL) == MGCONN_OP_SUCCEEDED, "no ping");
   {
      mgconn_op *op = NULL; /* the database exists before the first kill */
      bson_t *doc = BCON_NEW ("_id", BCON_INT32 (0));
      mgconn_collection_insert_one (&op, coll, bson_get_data (doc), doc->len, NULL, 0, NULL, NULL);
      expect_ok (op, "setup insert");
      mgconn_op_free (op);
      bson_destroy (doc);
   }
   start = now_ms ();
   next_kill = start + 5000;
   while (now_ms () - start < 20000) {
      mgconn_runtime_dispatch (rt, 0);
      while (in_flight < IN_FLIGHT && next_id < MAX_IDS) {
         issue (&seed);
      }
      if (!restart_at && now_ms () >= next_kill) {
         server_kill (&s);
         kills++;
         restart_at = now_ms () + 1000;
      } else if (restart_at && now_ms () >= restart_at) {
         server_restart (&s);
         restart_at = 0;
         next_kill = now_ms () + 5000 + rand_r (&seed) % 2000;
      }
      usleep (1000);
   }
   if (restart_at) {
      server_restart (&s);
   }
   {
      int64_t deadline = now_ms () + 60000;
      while (in_flight > 0 && now_ms () < deadline) {
         mgconn_runtime_dispatch (rt, 0);
         usleep (2000);
      }
   }
   CHECK (in_flight == 0 && resolved == issued, "%d operations never resolved", (int) in_flight);

   mgconn_collection_count_documents (&count, coll, NULL, 0, NULL, 0, NULL, NULL);
   reply = expect_ok (count, "count");
   CHECK (sscanf (strstr (reply, "\"count\""), "\"count\" : %lld", (long long *) &stored) == 1, "count reply %s", reply);
   stored -= 1; /* the setup document */
   {
      int32_t ambiguous = 0;
      for (int32_t i = 1; i < next_id; i++) {
         ambiguous += state[i] == 2;
      }
      fprintf (stderr, "   %d operations in 20 s (%d failed), %d kills; %d inserts acknowledged, %d ambiguous, "
                       "%lld stored\n",
               (int) issued, (int) failed, kills, (int) n_acked, (int) ambiguous, (long long) stored);
      CHECK (stored >= n_acked && stored <= n_acked + ambiguous,
             "stored %lld documents for %d acknowledged and %d ambiguous inserts", (long long) stored, (int) n_acked,
             (int) ambiguous);
      /* Inserts and finds are sent again when their connection fails under them: none fails. */
      CHECK (failed == 0 && stored == n_acked, "%d operations failed; %lld stored for %d acknowledged", (int) failed,
             (long long) stored, (int) n_acked);
   }
   CHECK (kills >= 2, "only %d kills", kills);
   mgconn_op_free (count);
   mgconn_collection_free (coll);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   server_cleanup (&s);
}

static const test_case tests[] = {
   {"kills", test_twenty_seconds_of_operations_through_kills_lose_nothing},
   {NULL, NULL},
};

int
main (int argc, char **argv)
{
   return run_tests (argc, argv, tests);
}
