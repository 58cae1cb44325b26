/*
 * option_values.h: checking one option's value and applying the options that take more than one of
 * libmongoc's setters (option_values.c), for the option table in options.c.
 */
#ifndef MGCONN_OPTION_VALUES_H
#define MGCONN_OPTION_VALUES_H

#include "connection.h"

/* The value as an integer: an int32, an int64, or a double with no fraction (5000.0 from a script
 * language). */
bool mg_option_get_int (const bson_iter_t *it, int64_t *out);
/* An OptionError "Option NAME must be ACCEPTED, got ..." (a password's value is never quoted). */
int mg_option_bad_value (mgconn_error *error, const char *name, const bson_iter_t *it, const char *accepted);
/* A line of the connection's warnings (logged once it opens). */
void mg_option_warn (mg_options *o, const char *fmt, ...) BSON_GNUC_PRINTF (2, 3);
/* Applies the option NAME, one of the table's OPT_SPECIAL rows, to o->uri or o. */
int mg_option_apply_special (mg_options *o, const char *name, const bson_iter_t *it, mgconn_error *error);

#endif
