/*
 * uri_text.h: the connection string read as text, before libmongoc parses it (uri_text.c).
 */
#ifndef MGCONN_URI_TEXT_H
#define MGCONN_URI_TEXT_H

#include "connection.h"

/* The password of "scheme://user:password@host" as written (percent-decoded), or NULL; the caller
 * frees it. */
char *mg_uri_text_password (const char *uri);
/* More than one "@" before the host: a user name or password with an unescaped "@". */
bool mg_uri_text_has_unescaped_at (const char *uri);
/* A copy of the connection string without mgconn's own options (each one a warning of o's) and
 * without family, keepAlive, keepAliveInitialDelay and minPoolSize, which become entries of
 * `extra` to be checked as options. */
char *mg_uri_text_strip_options (mg_options *o, const char *uri, bson_t *extra);

#endif
