/*
 * input_check.h: the one walk over a document a host hands to an operation (input_check.c).
 */
#ifndef MG_INPUT_CHECK_H
#define MG_INPUT_CHECK_H

#include <bson/bson.h>
#include <stdbool.h>

/* libbson's own limit (BSON_VALIDATION_MAX_NESTING_DEPTH, a private name) */
#define MG_INPUT_MAX_DEPTH 500

typedef enum {
   MG_INPUT_OK,
   MG_INPUT_CORRUPT,     /* not a well-formed BSON document */
   MG_INPUT_TOO_DEEP,    /* documents nested more than MG_INPUT_MAX_DEPTH deep (libbson reads no deeper) */
   MG_INPUT_BAD_UTF8,    /* a key or string value that is not UTF-8; `path` names it */
   MG_INPUT_EMPTY_KEY,   /* an empty key in a document to be stored; `path` names it */
} mg_input_verdict;

/* Checks `doc` in one walk: its structure, that every key and string is UTF-8, and, when `stored`
 * (the documents of an insert), that no key is empty. On failure, when `path` is not NULL, it names
 * the offending element ("player.tags.1"; an empty key shows as ""). */
mg_input_verdict mg_input_check (const bson_t *doc, bool stored, char *path, size_t size);

#endif
