/*
 * doc_keys.c: the keys that keep ops on one document (or of one session) in issue order.
 *
 * Per-document order
 *   A write whose filter pins an `_id` ({_id: v}, {_id: {$eq: v}}) or whose document gives one
 *   (insert, replace) carries that `_id`, hashed with its collection (op->doc_keys). The pump never
 *   starts an op while an op sharing one of its keys is running, or waits ahead of it: writes to
 *   one document run one after another in issue order. Ops without keys (reads, inserts whose
 *   `_id` mgconn made, writes by other filters) are not held. A hash collision only serialises two
 *   unrelated writes.
 *
 *   Sessions use the same keys (mg_key_of over the session's id): their ops run one at a time.
 *
 * Threads and ownership: an op's keys are added while it is built (on the host thread, before
 * submission) and only read afterwards; op->doc_keys belongs to the op (freed in mg_op_unref). A
 * key set lives on the pump's stack, under the root connection's lock.
 */
#include "doc_keys.h"

#include <string.h>

static uint64_t
fnv (uint64_t h, const void *data, size_t len)
{
   const uint8_t *p = data;
   for (size_t i = 0; i < len; i++) {
      h = (h ^ p[i]) * 1099511628211ULL;
   }
   return h;
}

void
mg_op_add_doc_key (mgconn_op *op, const bson_value_t *id)
{
   uint64_t h = fnv (14695981039346656037ULL, op->collection ? op->collection : "", op->collection ? strlen (op->collection) : 0);
   uint8_t tag;
   int64_t n;
   /* _id 1, 1.0 and NumberLong(1) are the same key to the server. */
   if (id->value_type == BSON_TYPE_INT32 || id->value_type == BSON_TYPE_INT64 ||
       (id->value_type == BSON_TYPE_DOUBLE && id->value.v_double == (double) (int64_t) id->value.v_double)) {
      tag = 'n';
      n = id->value_type == BSON_TYPE_INT32   ? id->value.v_int32
          : id->value_type == BSON_TYPE_INT64 ? id->value.v_int64
                                              : (int64_t) id->value.v_double;
      h = fnv (fnv (h, &tag, 1), &n, sizeof n);
   } else {
      bson_t one = BSON_INITIALIZER;
      bson_append_value (&one, "", 0, id);
      h = fnv (h, bson_get_data (&one), one.len);
      bson_destroy (&one);
   }
   mg_op_add_key (op, h | 1); /* 0 marks an empty slot of the pump's key set */
}

uint64_t
mg_key_of (const char *tag, const void *data, size_t len)
{
   return fnv (fnv (14695981039346656037ULL, tag, strlen (tag)), data, len) | 1;
}

void
mg_op_add_key (mgconn_op *op, uint64_t h)
{
   for (uint32_t i = 0; i < op->n_doc_keys; i++) {
      if (op->doc_keys[i] == h) {
         return;
      }
   }
   if (op->n_doc_keys == 0) {
      op->doc_keys = &op->doc_key1;
   } else if (op->doc_keys == &op->doc_key1) {
      op->doc_keys = bson_malloc (sizeof *op->doc_keys * 2);
      op->doc_keys[0] = op->doc_key1;
   } else if ((op->n_doc_keys & (op->n_doc_keys - 1)) == 0) { /* a power of two: full */
      op->doc_keys = bson_realloc (op->doc_keys, sizeof *op->doc_keys * op->n_doc_keys * 2);
   }
   op->doc_keys[op->n_doc_keys++] = h;
}

bool
mg_filter_pins_id (const bson_t *filter, bson_iter_t *id)
{
   bson_iter_t it, sub;
   if (!bson_iter_init_find (&it, filter, "_id")) {
      return false;
   }
   if (BSON_ITER_HOLDS_DOCUMENT (&it) && bson_iter_recurse (&it, &sub) && bson_iter_next (&sub) &&
       bson_iter_key (&sub)[0] == '$') {
      /* an operator: only {$eq: v} alone names one document */
      if (strcmp (bson_iter_key (&sub), "$eq") != 0) {
         return false;
      }
      *id = sub;
      return !bson_iter_next (&sub);
   }
   *id = it;
   return true;
}

void
mg_key_set_init (mg_key_set *s)
{
   s->slots = s->inline_slots;
   s->cap = sizeof s->inline_slots / sizeof s->inline_slots[0];
   s->n = 0;
   memset (s->slots, 0, sizeof s->inline_slots);
}

static bool
key_set_has (const mg_key_set *s, uint64_t k)
{
   for (size_t i = (size_t) k & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
      if (s->slots[i] == k) {
         return true;
      }
      if (s->slots[i] == 0) {
         return false;
      }
   }
}

static void key_set_add (mg_key_set *s, uint64_t k);

static void
key_set_grow (mg_key_set *s)
{
   uint64_t *old = s->slots;
   size_t old_cap = s->cap;
   s->cap *= 2;
   s->slots = bson_malloc0 (sizeof *s->slots * s->cap);
   s->n = 0;
   for (size_t i = 0; i < old_cap; i++) {
      if (old[i]) {
         key_set_add (s, old[i]);
      }
   }
   if (old != s->inline_slots) {
      bson_free (old);
   }
}

static void
key_set_add (mg_key_set *s, uint64_t k)
{
   size_t i;
   if ((s->n + 1) * 2 > s->cap) {
      key_set_grow (s);
   }
   for (i = (size_t) k & (s->cap - 1); s->slots[i] != 0; i = (i + 1) & (s->cap - 1)) {
      if (s->slots[i] == k) {
         return;
      }
   }
   s->slots[i] = k;
   s->n++;
}

void
mg_key_set_add_op (mg_key_set *s, const mgconn_op *op)
{
   for (uint32_t i = 0; i < op->n_doc_keys; i++) {
      key_set_add (s, op->doc_keys[i]);
   }
}

bool
mg_key_set_meets (const mg_key_set *s, const mgconn_op *op)
{
   if (s->n == 0) {
      return false;
   }
   for (uint32_t i = 0; i < op->n_doc_keys; i++) {
      if (key_set_has (s, op->doc_keys[i])) {
         return true;
      }
   }
   return false;
}

void
mg_key_set_cleanup (mg_key_set *s)
{
   if (s->slots != s->inline_slots) {
      bson_free (s->slots);
   }
}
