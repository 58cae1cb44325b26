/*
 * op_table.c: every collection operation by name, the one table both bindings and the libffi layer
 * dispatch through. A new collection operation is one row here beside its entry point; the hosts
 * learn its names, its documents and whether it returns a cursor from mgconn_operation_flags and
 * mgconn_operation_document.
 */
#include "internal.h"

#include <string.h>

typedef int (*takes_none) (mgconn_op **, mgconn_collection *, const uint8_t *, size_t, mgconn_op_cb, void *);
typedef int (*takes_one) (mgconn_op **, mgconn_collection *, const uint8_t *, size_t, const uint8_t *, size_t,
                          mgconn_op_cb, void *);
typedef int (*takes_two) (mgconn_op **, mgconn_collection *, const uint8_t *, size_t, const uint8_t *, size_t,
                          const uint8_t *, size_t, mgconn_op_cb, void *);

typedef struct {
   const char *snake, *camel;
   unsigned flags;
   const char *first, *second; /* what its documents are called; NULL for one it does not take */
   union {
      takes_none none;
      takes_one one;
      takes_two two;
   } start;
} operation;

/* drop has no options; the table's shape gives it some, ignored. */
static int
drop_ignoring_opts (mgconn_op **out, mgconn_collection *c, const uint8_t *opts, size_t opts_len, mgconn_op_cb cb,
                    void *ud)
{
   (void) opts;
   (void) opts_len;
   return mgconn_collection_drop (out, c, cb, ud);
}

enum {
   FIRST = MGCONN_OPERATION_TAKES_FIRST,
   REQUIRED = MGCONN_OPERATION_TAKES_FIRST | MGCONN_OPERATION_FIRST_REQUIRED,
   ARRAY = MGCONN_OPERATION_TAKES_FIRST | MGCONN_OPERATION_FIRST_REQUIRED | MGCONN_OPERATION_FIRST_IS_ARRAY,
   TWO = REQUIRED | MGCONN_OPERATION_TAKES_SECOND,
   CURSOR = MGCONN_OPERATION_RETURNS_CURSOR,
};

static const operation operations[] = {
   {"insert_one", "insertOne", REQUIRED, "document", NULL, {.one = mgconn_collection_insert_one}},
   {"insert_many", "insertMany", ARRAY, "documents", NULL, {.one = mgconn_collection_insert_many}},
   {"find_one", "findOne", FIRST, "filter", NULL, {.one = mgconn_collection_find_one}},
   {"find", "find", FIRST | CURSOR, "filter", NULL, {.one = mgconn_collection_find}},
   {"aggregate", "aggregate", ARRAY | CURSOR, "pipeline", NULL, {.one = mgconn_collection_aggregate}},
   {"update_one", "updateOne", TWO, "filter", "update", {.two = mgconn_collection_update_one}},
   {"update_many", "updateMany", TWO, "filter", "update", {.two = mgconn_collection_update_many}},
   {"replace_one", "replaceOne", TWO, "filter", "replacement", {.two = mgconn_collection_replace_one}},
   {"delete_one", "deleteOne", REQUIRED, "filter", NULL, {.one = mgconn_collection_delete_one}},
   {"delete_many", "deleteMany", REQUIRED, "filter", NULL, {.one = mgconn_collection_delete_many}},
   {"count_documents", "countDocuments", FIRST, "filter", NULL, {.one = mgconn_collection_count_documents}},
   {"estimated_document_count", "estimatedDocumentCount", 0, NULL, NULL,
    {.none = mgconn_collection_estimated_document_count}},
   {"create_indexes", "createIndexes", ARRAY, "indexes", NULL, {.one = mgconn_collection_create_indexes}},
   {"drop", "drop", 0, NULL, NULL, {.none = drop_ignoring_opts}},
   {"bulk_write", "bulkWrite", ARRAY, "requests", NULL, {.one = mgconn_collection_bulk_write}},
   {"find_one_and_update", "findOneAndUpdate", TWO, "filter", "update",
    {.two = mgconn_collection_find_one_and_update}},
   {"find_one_and_replace", "findOneAndReplace", TWO, "filter", "replacement",
    {.two = mgconn_collection_find_one_and_replace}},
   {"find_one_and_delete", "findOneAndDelete", REQUIRED, "filter", NULL,
    {.one = mgconn_collection_find_one_and_delete}},
   {"distinct", "distinct", FIRST, "filter", NULL, {.one = mgconn_collection_distinct}},
   {"list_indexes", "listIndexes", 0, NULL, NULL, {.none = mgconn_collection_list_indexes}},
   {"drop_indexes", "dropIndexes", 0, NULL, NULL, {.none = mgconn_collection_drop_indexes}},
   {"watch", "watch", FIRST | MGCONN_OPERATION_FIRST_IS_ARRAY | CURSOR, "pipeline", NULL,
    {.one = mgconn_collection_watch}},
};

#define N_OPERATIONS (sizeof operations / sizeof operations[0])

static const operation *
find (const char *name)
{
   for (size_t i = 0; name && i < N_OPERATIONS; i++) {
      if (strcmp (operations[i].snake, name) == 0 || strcmp (operations[i].camel, name) == 0) {
         return &operations[i];
      }
   }
   return NULL;
}

const char *
mgconn_operation_name (size_t index, int camel_case)
{
   if (index >= N_OPERATIONS) {
      return NULL;
   }
   return camel_case ? operations[index].camel : operations[index].snake;
}

int
mgconn_operation_flags (const char *name)
{
   const operation *o = find (name);
   if (!o) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "no collection operation named \"%s\"",
                      name ? name : "(null)");
   }
   return (int) o->flags;
}

const char *
mgconn_operation_document (const char *name, int which)
{
   const operation *o = find (name);
   if (!o) {
      return NULL;
   }
   return which == 1 ? o->first : which == 2 ? o->second : NULL;
}

int
mgconn_collection_call (mgconn_op **out, mgconn_collection *collection, const char *name, const uint8_t *first,
                        size_t first_len, const uint8_t *second, size_t second_len, const uint8_t *opts,
                        size_t opts_len, mgconn_op_cb cb, void *userdata)
{
   const operation *o = find (name);
   if (out) {
      *out = NULL;
   }
   if (!o) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "no collection operation named \"%s\"",
                      name ? name : "(null)");
   }
   if (o->flags & MGCONN_OPERATION_TAKES_SECOND) {
      return o->start.two (out, collection, first, first_len, second, second_len, opts, opts_len, cb, userdata);
   }
   if (o->flags & MGCONN_OPERATION_TAKES_FIRST) {
      return o->start.one (out, collection, first, first_len, opts, opts_len, cb, userdata);
   }
   return o->start.none (out, collection, opts, opts_len, cb, userdata);
}
