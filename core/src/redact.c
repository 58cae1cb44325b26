/*
 * redact.c: passwords never leave mgconn. Every message, event and log line is built in a buffer
 * and passed through mg_redact before anyone sees it.
 *
 * Secrets are masked where they live, never searched for as text everywhere: a password that is an
 * ordinary word ("items") masked in every message would turn "admin.items" into "admin.****" and
 * so tell the reader what the password is. The places are
 *   - the userinfo of every connection string in a text (mg_redact), and echoes of that URI's
 *     password in the message about that URI (mg_redact_bad_uri, mg_redact_as_uri_secrets);
 *   - credential options (pass, tlsCertificateKeyFilePassword: options.c never prints their value);
 *   - the bodies of the commands that the drivers' command-monitoring rules redact
 *     (mg_command_is_sensitive; debug.c prints only their name).
 * No state: callable from any thread.
 */
#include "internal.h"

#include <string.h>
#include <strings.h>

/* Secrets shorter than this, found in a connection string, are not searched for in the rest of
 * the message about it: masking every "p" for the password "p" would wreck the message and hide
 * nothing. The userinfo itself is masked whatever its length. */
#define MG_SECRET_MIN_LEN 4

/* The command-monitoring redaction list (the MongoDB drivers' specification), compared
 * case-insensitively with a command's name, its first key. */
static const char *const sensitive_commands[] = {"authenticate", "saslStart", "saslContinue", "getnonce",
                                                 "createUser", "updateUser", "copydbgetnonce", "copydbsaslstart",
                                                 "copydb"};

bool
mg_command_name_is_sensitive (const char *name, bool *if_speculative)
{
   *if_speculative = strcasecmp (name, "hello") == 0 || strcasecmp (name, "isMaster") == 0;
   for (size_t i = 0; i < sizeof sensitive_commands / sizeof *sensitive_commands; i++) {
      if (strcasecmp (name, sensitive_commands[i]) == 0) {
         return true;
      }
   }
   return false;
}

bool
mg_command_is_sensitive (const bson_t *command)
{
   bson_iter_t it;
   bool if_speculative;
   bool first = true, hello = false, speculative = false;
   if (!bson_iter_init (&it, command)) {
      return false;
   }
   /* Any key, not only the first: a host whose tables have no key order (Lua) may put "pwd" first,
    * and the line must not show it either. */
   while (bson_iter_next (&it)) {
      const char *key = bson_iter_key (&it);
      if (mg_command_name_is_sensitive (key, &if_speculative)) {
         return true;
      }
      hello = hello || (first && if_speculative);
      speculative = speculative || strcasecmp (key, "speculativeAuthenticate") == 0;
      first = false;
   }
   return hello && speculative; /* a handshake that carries the first authentication step */
}

/* Replaces every occurrence of `needle` in the string `s` with "****". */
static void
mask_all (mg_strbuf_t *out, const char *s, const char *needle)
{
   size_t n = strlen (needle);
   const char *hit;
   while ((hit = strstr (s, needle)) != NULL) {
      mg_strbuf_append_printf (out, "%.*s****", (int) (hit - s), s);
      s = hit + n;
   }
   mg_strbuf_append (out, s);
}

#define MG_URI_SECRETS_MAX 8

/* "scheme://user:secret@host" -> "scheme://user:****@host", wherever a URI appears in a text; then
 * every other occurrence of a secret found that way is masked too (a message may quote a URI's
 * pieces, or the URI twice). */
static char *
mask_uri_userinfo_collect (const char *text, char **found, int *n_found_out)
{
   mg_strbuf_t *out = mg_strbuf_new (NULL);
   const char *s = text;
   const char *scheme;
   int n_found = 0;
   while ((scheme = strstr (s, "://")) != NULL) {
      const char *user = scheme + 3;
      size_t span = strcspn (user, "/?# \t\n\"'`[]");
      const char *at = NULL, *colon;
      const char *p;
      for (p = user; p < user + span; p++) {
         if (*p == '@') {
            at = p; /* the last '@' before the host part */
         }
      }
      colon = at ? memchr (user, ':', (size_t) (at - user)) : NULL;
      if (!at) {
         /* A malformed URI ("mongodb://x//ada:secret@host", found by fuzzing) can put its userinfo
          * after a '/': then the last ':' before the first '@' of the whole token opens a secret. */
         size_t token = strcspn (user, " \t\n\"");
         const char *first_at = memchr (user, '@', token);
         for (p = user; first_at && p < first_at; p++) {
            if (*p == ':') {
               colon = p;
            }
         }
         at = colon ? first_at : NULL;
      }
      if (colon) {
         /* Parsers differ on a raw '@' inside a password: the secret may end at the first '@' after
          * the ':' or at the last one. Both are masked wherever they appear. */
         const char *first_at = memchr (colon + 1, '@', (size_t) (at - colon));
         if (n_found < MG_URI_SECRETS_MAX && at - colon - 1 >= MG_SECRET_MIN_LEN) {
            found[n_found++] = bson_strndup (colon + 1, (size_t) (at - colon - 1));
         }
         if (first_at && first_at != at && n_found < MG_URI_SECRETS_MAX && first_at - colon - 1 >= MG_SECRET_MIN_LEN) {
            found[n_found++] = bson_strndup (colon + 1, (size_t) (first_at - colon - 1));
         }
         mg_strbuf_append_printf (out, "%.*s****", (int) (colon + 1 - s), s);
         s = at;
      } else {
         mg_strbuf_append_printf (out, "%.*s", (int) (user - s), s);
         s = user;
      }
   }
   mg_strbuf_append (out, s);
   *n_found_out = n_found;
   return mg_strbuf_free (out, false);
}

/* Masks every occurrence of the collected secrets in `text` (freed) and frees them. */
static char *
mask_found (char *text, char **found, int n_found)
{
   for (int i = 0; i < n_found; i++) {
      if (strstr (text, found[i])) {
         mg_strbuf_t *masked = mg_strbuf_new (NULL);
         mask_all (masked, text, found[i]);
         bson_free (text);
         text = mg_strbuf_free (masked, false);
      }
      bson_free (found[i]);
   }
   return text;
}

static char *
mask_uri_userinfo (const char *text)
{
   char *found[MG_URI_SECRETS_MAX];
   int n_found = 0;
   char *masked = mask_uri_userinfo_collect (text, found, &n_found);
   return mask_found (masked, found, n_found);
}

char *
mg_redact_bad_uri (const char *uri)
{
   const char *scheme = strstr (uri, "://");
   const char *start = scheme ? scheme + 3 : uri;
   const char *last_at = strrchr (start, '@');
   char *found[MG_URI_SECRETS_MAX];
   int n_found = 0;
   char *strict, *out;
   bson_free (mask_uri_userinfo_collect (uri, found, &n_found)); /* the secrets the original shows */
   if (last_at) {
      /* "scheme://user:" stays when the user part is a plain name, so the message still says whose */
      size_t user = strcspn (start, ":/@?#");
      int keep = start[user] == ':' && user > 0 && start + user < last_at ? (int) (user + 1) : 0;
      strict = bson_strdup_printf ("%.*s****%s", (int) (start - uri) + keep, uri, last_at);
   } else {
      strict = bson_strdup (uri);
   }
   out = mask_found (mg_redact (strict), found, n_found);
   bson_free (strict);
   return out;
}

char *
mg_redact_as_uri_secrets (const char *text, const char *uri)
{
   char *found[MG_URI_SECRETS_MAX];
   int n_found = 0;
   bson_free (mask_uri_userinfo_collect (uri, found, &n_found));
   return mask_found (mg_redact (text), found, n_found);
}

char *
mg_redact (const char *text)
{
   return mask_uri_userinfo (text ? text : "");
}

void
mg_redact_inplace (char *buf, size_t size)
{
   char *r = mg_redact (buf);
   bson_strncpy (buf, r, size);
   bson_free (r);
}
