/*
 * resend_rules.c: which operations may be sent again after their connection failed before the
 * reply (buffer.c asks only when the op may have reached the server), and how a re-sent insert
 * finds out that its first attempt landed. The rule for each kind, and why, is in docs/guide.md
 * ("What survives an outage"); each kind names its rule in its mg_op_kind.
 */
#include "connection.h"
#include "doc_keys.h"
#include "ops.h"

#include <string.h>

bool
mg_resend_always (const mgconn_op *op, const char **why_not)
{
   (void) op;
   (void) why_not;
   return true;
}

/* Update operators for which applying the update twice leaves what applying it once does. */
static const char *const idempotent_operators[] = {
   "$set", "$unset", "$setOnInsert", "$min", "$max", "$currentDate", "$rename", "$addToSet", "$pull", "$pullAll",
};

static bool
update_is_idempotent (const bson_t *update, const char **why_not)
{
   static _Thread_local char why[96];
   bson_iter_t it;
   if (bson_iter_init (&it, update) && bson_iter_next (&it) && strcmp (bson_iter_key (&it), "0") == 0) {
      *why_not = "an update pipeline is not idempotent";
      return false;
   }
   bson_iter_init (&it, update);
   while (bson_iter_next (&it)) {
      const char *key = bson_iter_key (&it);
      bool known = false;
      for (size_t i = 0; i < sizeof idempotent_operators / sizeof idempotent_operators[0]; i++) {
         known = known || strcmp (key, idempotent_operators[i]) == 0;
      }
      if (!known) {
         bson_snprintf (why, sizeof why, "`%.40s` is not idempotent", key);
         *why_not = why;
         return false;
      }
   }
   return true;
}

bool
mg_update_is_idempotent (const bson_t *update, const char **why_not)
{
   return update_is_idempotent (update, why_not);
}

/* update_one, replace_one and delete_one act on the first match: only a filter that names one
 * `_id` makes running them twice act on the same document. */
bool
mg_resend_pins_one_document (const mgconn_op *op, const char **why_not)
{
   bson_iter_t id;
   if (!mg_filter_pins_id (&op->args, &id)) {
      *why_not = "its filter does not name one `_id`, so a second run could act on another document";
      return false;
   }
   return true;
}

bool
mg_resend_update_one (const mgconn_op *op, const char **why_not)
{
   return mg_resend_pins_one_document (op, why_not) && update_is_idempotent (&op->args2, why_not);
}

bool
mg_resend_update_many (const mgconn_op *op, const char **why_not)
{
   return update_is_idempotent (&op->args2, why_not);
}

/* Commands that only read: sent again like a find. Any other command may write. */
bool
mg_command_is_read_only (const bson_t *command)
{
   static const char *const reads[] = {"ping", "hello", "isMaster", "ismaster", "buildInfo", "buildinfo",
                                       "listCollections", "listIndexes", "listDatabases", "count", "distinct",
                                       "dbStats", "collStats", "serverStatus", "connectionStatus", "getParameter",
                                       "find"};
   bson_iter_t it;
   if (!bson_iter_init (&it, command) || !bson_iter_next (&it)) {
      return false;
   }
   for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
      if (strcmp (bson_iter_key (&it), reads[i]) == 0) {
         return true;
      }
   }
   return false;
}

bool
mg_resend_run_command (const mgconn_op *op, const char **why_not)
{
   if (op->writes) {
      *why_not = "a command other than a read (ping, find, count, listCollections, ...) may not be idempotent";
      return false;
   }
   return true;
}

/* Keys for per-document order (buffer.c): the `_id` a filter pins, and a document's `_id`. */
void
mg_op_add_filter_key (mgconn_op *op, const bson_t *filter)
{
   bson_iter_t id;
   if (mg_filter_pins_id (filter, &id)) {
      mg_op_add_doc_key (op, bson_iter_value (&id));
   }
}

void
mg_op_add_document_key (mgconn_op *op, const bson_t *doc)
{
   bson_iter_t id;
   if (bson_iter_init_find (&id, doc, "_id")) {
      mg_op_add_doc_key (op, bson_iter_value (&id));
   }
}

/* Before re-sending an insert: the `_id`s of `docs` (an array) already stored, in `found` (an array
 * of values). A stored `_id` means the first attempt landed. False when the lookup failed. */
bool
mg_insert_stored_ids (mgconn_op *op, mongoc_client_t *client, const bson_t *docs, bson_t *found, mgconn_error *error)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, op->db, op->collection);
   bson_t filter = BSON_INITIALIZER, id_doc, in, *opts = BCON_NEW ("projection", "{", "_id", BCON_INT32 (1), "}");
   bson_iter_t it, id;
   const bson_t *doc;
   bson_error_t be;
   mongoc_cursor_t *cursor;
   uint32_t i = 0, n = 0;
   bool ok;
   bson_append_document_begin (&filter, "_id", -1, &id_doc);
   bson_append_array_unsafe_begin (&id_doc, "$in", -1, &in);
   bson_iter_init (&it, docs);
   while (bson_iter_next (&it)) {
      bson_iter_t d;
      if (bson_iter_recurse (&it, &d) && bson_iter_find (&d, "_id")) {
         mg_append_array_value (&in, i++, bson_iter_value (&d));
      }
   }
   bson_append_array_end (&id_doc, &in);
   bson_append_document_end (&filter, &id_doc);
   cursor = mongoc_collection_find_with_opts (coll, &filter, opts, NULL);
   while (mongoc_cursor_next (cursor, &doc)) {
      if (bson_iter_init_find (&id, doc, "_id")) {
         mg_append_array_value (found, n++, bson_iter_value (&id));
      }
   }
   ok = !mongoc_cursor_error (cursor, &be);
   if (!ok) {
      mg_error_from_driver (error, &be, NULL);
   }
   mongoc_cursor_destroy (cursor);
   bson_destroy (opts);
   bson_destroy (&filter);
   mongoc_collection_destroy (coll);
   return ok;
}

bool
mg_ids_contain (const bson_t *ids, const bson_value_t *v)
{
   bson_iter_t it;
   bson_iter_init (&it, ids);
   while (bson_iter_next (&it)) {
      const bson_value_t *w = bson_iter_value (&it);
      if (w->value_type == v->value_type) {
         bson_t a = BSON_INITIALIZER, b = BSON_INITIALIZER;
         bool same;
         bson_append_value (&a, "", 0, v);
         bson_append_value (&b, "", 0, w);
         same = bson_equal (&a, &b);
         bson_destroy (&a);
         bson_destroy (&b);
         if (same) {
            return true;
         }
      } else if ((v->value_type == BSON_TYPE_INT32 || v->value_type == BSON_TYPE_INT64 || v->value_type == BSON_TYPE_DOUBLE) &&
                 (w->value_type == BSON_TYPE_INT32 || w->value_type == BSON_TYPE_INT64 || w->value_type == BSON_TYPE_DOUBLE)) {
         double x = v->value_type == BSON_TYPE_INT32 ? v->value.v_int32 : v->value_type == BSON_TYPE_INT64 ? (double) v->value.v_int64 : v->value.v_double;
         double y = w->value_type == BSON_TYPE_INT32 ? w->value.v_int32 : w->value_type == BSON_TYPE_INT64 ? (double) w->value.v_int64 : w->value.v_double;
         if (x == y) {
            return true;
         }
      }
   }
   return false;
}
