/*
 * doc_keys.h: the keys that keep ops on one document, or of one session, in issue order
 * (doc_keys.c), and the set of them the pump holds back (buffer.c).
 */
#ifndef MGCONN_DOC_KEYS_H
#define MGCONN_DOC_KEYS_H

#include "connection.h"

/* The hashed `_id`s an op names, for per-document order: `id` is an `_id` value. */
void mg_op_add_doc_key (mgconn_op *op, const bson_value_t *id);
/* A key of the pump's (nonzero) for anything whose ops run one at a time in issue order. */
uint64_t mg_key_of (const char *tag, const void *data, size_t len);
void mg_op_add_key (mgconn_op *op, uint64_t key);
/* The filter pins one `_id` by equality ({_id: v} or {_id: {$eq: v}}): `id` is at it. */
bool mg_filter_pins_id (const bson_t *filter, bson_iter_t *id);

/* The keys the pump holds back in one pass: open addressing over nonzero 64-bit keys, inline up to
 * 32 keys (half the slots), on the heap beyond. */
typedef struct {
   uint64_t *slots;
   size_t cap; /* a power of two */
   size_t n;
   uint64_t inline_slots[64];
} mg_key_set;

void mg_key_set_init (mg_key_set *s);
/* Adds every key of the op. */
void mg_key_set_add_op (mg_key_set *s, const mgconn_op *op);
/* The op shares a key with the set. */
bool mg_key_set_meets (const mg_key_set *s, const mgconn_op *op);
void mg_key_set_cleanup (mg_key_set *s);

#endif
