/*
 * uri_text.c: the connection string read as text, before libmongoc parses it: the password as
 * written (for redaction), a user name or password with an unescaped "@", and mgconn's own options
 * taken out of it.
 */
#include "uri_text.h"
#include "option_values.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Own options and the ones libmongoc does not know, taken out of the connection string. */
static bool
is_stripped_uri_option (const char *key, size_t len, bool *own)
{
   static const char *const own_names[] = {"bufferCommands", "bufferTimeoutMS", "autoIndex", "autoCreate",
                                            "dbName", "user", "pass", "debug", "resendInterrupted",
                                            "maxOpenCursors"};
   static const char *const ours[] = {"family", "keepAlive", "keepAliveInitialDelay", "minPoolSize"};
   for (size_t i = 0; i < sizeof own_names / sizeof own_names[0]; i++) {
      if (strlen (own_names[i]) == len && strncasecmp (own_names[i], key, len) == 0) {
         *own = true;
         return true;
      }
   }
   for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++) {
      if (strlen (ours[i]) == len && strncasecmp (ours[i], key, len) == 0) {
         *own = false;
         return true;
      }
   }
   return false;
}

/* The password of "scheme://user:password@host" as written (percent-decoded), or NULL. */
char *
mg_uri_text_password (const char *uri)
{
   const char *user = strstr (uri, "://");
   const char *end, *colon, *at = NULL;
   if (!user) {
      return NULL;
   }
   user += 3;
   end = user + strcspn (user, "/?#");
   for (const char *p = user; p < end; p++) {
      if (*p == '@') {
         at = p;
      }
   }
   colon = at ? memchr (user, ':', (size_t) (at - user)) : NULL;
   if (!colon || colon + 1 >= at) {
      return NULL;
   }
   {
      char *raw = bson_strndup (colon + 1, (size_t) (at - colon - 1));
      char *dec = bson_malloc0 (strlen (raw) + 1), *d = dec;
      for (const char *s = raw; *s; s++) {
         if (s[0] == '%' && isxdigit ((unsigned char) s[1]) && isxdigit ((unsigned char) s[2])) {
            char hex[3] = {s[1], s[2], 0};
            *d++ = (char) strtol (hex, NULL, 16);
            s += 2;
         } else {
            *d++ = *s;
         }
      }
      bson_free (raw);
      return dec;
   }
}

/* More than one "@" before the host: a user name or password with an unescaped "@". libmongoc would
 * split at the first one and take the rest of the password for a host name (shown in messages and in
 * the server-selection reason), so the string is refused without quoting any of it. */
bool
mg_uri_text_has_unescaped_at (const char *uri)
{
   const char *user = strstr (uri, "://");
   int ats = 0;
   if (!user) {
      return false;
   }
   user += 3;
   for (const char *p = user, *end = user + strcspn (user, "/?#"); p < end; p++) {
      ats += *p == '@';
   }
   return ats > 1;
}

/* Copies the connection string without mgconn's own options, turning family/keepAlive/minPoolSize
 * into entries of `extra` so that they are checked like options. */
char *
mg_uri_text_strip_options (mg_options *o, const char *uri, bson_t *extra)
{
   const char *q = strchr (uri, '?');
   mg_strbuf_t *out;
   const char *p;
   bool first = true;
   if (!q) {
      return bson_strdup (uri);
   }
   out = mg_strbuf_new (NULL);
   mg_strbuf_append_printf (out, "%.*s", (int) (q - uri + 1), uri);
   p = q + 1;
   while (*p) {
      size_t len = strcspn (p, "&;");
      const char *eq = memchr (p, '=', len);
      size_t klen = eq ? (size_t) (eq - p) : len;
      bool own = false;
      if (len > 0 && is_stripped_uri_option (p, klen, &own)) {
         char *key = bson_strndup (p, klen);
         if (own) {
            mg_option_warn (o, "Option \"%s\" in the connection string is ignored: it is an mgconn option, not a MongoDB "
                     "connection string option; pass it in the options instead", key);
         } else {
            char *val = eq ? bson_strndup (eq + 1, len - klen - 1) : bson_strdup ("");
            char *endp;
            long long n = strtoll (val, &endp, 10);
            if (*val && !*endp) {
               BSON_APPEND_INT64 (extra, key, n);
            } else if (strcasecmp (val, "true") == 0 || strcasecmp (val, "false") == 0) {
               BSON_APPEND_BOOL (extra, key, strcasecmp (val, "true") == 0);
            } else {
               BSON_APPEND_UTF8 (extra, key, val);
            }
            bson_free (val);
         }
         bson_free (key);
      } else if (len > 0) {
         mg_strbuf_append_printf (out, "%s%.*s", first ? "" : "&", (int) len, p);
         first = false;
      }
      p += len;
      if (*p) {
         p++;
      }
   }
   if (first) { /* nothing left: drop the '?' */
      out->str[--out->len] = '\0';
   }
   return mg_strbuf_free (out, false);
}
