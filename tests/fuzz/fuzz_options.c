/*
 * fuzz_options.c: libFuzzer target for the connection-string and options parser (options.c).
 *
 * Input: a URI, optionally followed by a NUL and an options document as BSON bytes. The parser
 * must accept or refuse every input without a crash, a leak or undefined behaviour, and a refusal
 * must never show the URI's password (the oracle below aborts when it does).
 */
#include "connection.h"

#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
   (void) argc, (void) argv;
   mongoc_init ();
   mongoc_log_set_handler (NULL, NULL); /* libmongoc's own parse warnings: noise at millions of runs */
   return 0;
}

/* The password of a connection string that starts "mongodb[+srv]://user:password@", with a user and
 * a password of letters and digits (8 or more): there, whatever garbage follows, it is
 * unambiguously a password, and it must not be shown. */
static char *
password_of (const char *uri)
{
   const char *p, *colon, *at;
   if (strncmp (uri, "mongodb://", 10) == 0) {
      p = uri + 10;
   } else if (strncmp (uri, "mongodb+srv://", 14) == 0) {
      p = uri + 14;
   } else {
      return NULL;
   }
   colon = p;
   while ((*colon >= 'a' && *colon <= 'z') || (*colon >= 'A' && *colon <= 'Z') || (*colon >= '0' && *colon <= '9')) {
      colon++;
   }
   if (colon == p || *colon != ':') {
      return NULL;
   }
   at = colon + 1;
   while ((*at >= 'a' && *at <= 'z') || (*at >= 'A' && *at <= 'Z') || (*at >= '0' && *at <= '9')) {
      at++;
   }
   if (*at != '@' || at - colon - 1 < 8) {
      return NULL;
   }
   return bson_strndup (colon + 1, (size_t) (at - colon - 1));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
   const uint8_t *nul = memchr (data, 0, size);
   size_t uri_len = nul ? (size_t) (nul - data) : size;
   char *uri = bson_malloc (uri_len + 1); /* the input is not NUL-terminated */
   bson_t opts;
   bool have_opts = false;
   mg_options o;
   mgconn_error e;
   char *password;

   memcpy (uri, data, uri_len);
   uri[uri_len] = '\0';
   password = password_of (uri);

   if (nul && size - uri_len - 1 >= 5) {
      have_opts = bson_init_static (&opts, nul + 1, size - uri_len - 1) && bson_validate (&opts, BSON_VALIDATE_NONE, NULL);
   }
   mgconn_error_init (&e);
   memset (&o, 0, sizeof o);
   if (mg_options_parse (&o, uri, have_opts ? &opts : NULL, &e) == 0) {
      if (password && strstr (o.uri_redacted, password)) {
         abort (); /* a password in the redacted URI */
      }
      mg_options_cleanup (&o);
   } else if (password && strstr (e.message, password)) {
      abort (); /* a password in an error message */
   }
   mgconn_error_cleanup (&e);
   bson_free (password);
   bson_free (uri);
   return 0;
}
