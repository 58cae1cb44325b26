/*
 * quickstart.c: the smallest complete mgconn program in C.
 *
 * It opens a connection, listens to its events, inserts a document before the connection is even
 * open (the insert waits for it), reads it back, and closes. The host loop never blocks: every
 * result arrives through mgconn_runtime_dispatch(), called here by mgconn_op_wait().
 *
 *   quickstart mongodb://127.0.0.1:27017/demo
 */
#include <mgconn.h>

#include <bson/bson.h>
#include <stdio.h>

static void
on_event (mgconn_connection *conn, const mgconn_event *event, void *userdata)
{
   const mgconn_error *err = mgconn_event_error (event);
   (void) userdata;
   printf ("event: %-13s readyState=%d%s%s\n", mgconn_event_name (event), mgconn_connection_ready_state (conn),
           err ? "  error: " : "", err ? err->message : "");
}

static int
fail (const char *what, const mgconn_error *err)
{
   fprintf (stderr, "%s failed: [%s] %s\n", what, mgconn_error_category_name (err->category), err->message);
   return 1;
}

int
main (int argc, char **argv)
{
   const char *uri = argc > 1 ? argv[1] : "mongodb://127.0.0.1:27017/demo";
   mgconn_runtime *rt = NULL;
   mgconn_connection *conn = NULL;
   mgconn_collection *players = NULL;
   mgconn_op *insert = NULL, *find = NULL, *close = NULL;
   bson_t *player = BCON_NEW ("name", "ada", "score", BCON_INT32 (42));
   bson_t *opts = BCON_NEW ("serverSelectionTimeoutMS", BCON_INT32 (5000));
   const uint8_t *data;
   size_t len;
   bson_t reply;
   char *json;
   int rc = 0;

   if (mgconn_runtime_new (&rt, NULL, 0, NULL) != 0) {
      return fail ("runtime", mgconn_last_error ());
   }
   if (mgconn_connection_new (&conn, rt, uri, bson_get_data (opts), opts->len, NULL) != 0) {
      return fail ("connect", mgconn_last_error ());
   }
   mgconn_connection_on (conn, NULL, on_event, NULL); /* after the call: still sees `connecting` */
   mgconn_connection_collection (&players, conn, "players", NULL);

   /* Issued at once; mgconn holds it until the connection is open. */
   mgconn_collection_insert_one (&insert, players, bson_get_data (player), player->len, NULL, 0, NULL, NULL);
   if (mgconn_op_wait (insert, 10000) != MGCONN_OP_SUCCEEDED) {
      rc = fail ("insert", mgconn_op_error (insert));
      goto done;
   }
   mgconn_collection_find (&find, players, NULL, 0, NULL, 0, NULL, NULL);
   if (mgconn_op_wait (find, 10000) != MGCONN_OP_SUCCEEDED) {
      rc = fail ("find", mgconn_op_error (find));
      goto done;
   }
   mgconn_op_reply (find, &data, &len);
   bson_init_static (&reply, data, len);
   json = bson_as_relaxed_extended_json (&reply, NULL);
   printf ("found: %s\n", json);
   bson_free (json);

done:
   mgconn_connection_close (&close, conn, 0, NULL, NULL);
   mgconn_op_wait (close, 10000);
   mgconn_op_free (close);
   mgconn_op_free (insert);
   mgconn_op_free (find);
   mgconn_collection_free (players);
   mgconn_connection_free (conn);
   mgconn_runtime_free (rt);
   bson_destroy (player);
   bson_destroy (opts);
   return rc;
}
