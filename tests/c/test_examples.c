/*
 * test_examples.c: the C examples of the docs run against a real server and say what they promise.
 */
#include "harness.h"

#include <string.h>

#ifndef QUICKSTART_PATH
#define QUICKSTART_PATH "quickstart"
#endif

static void
test_quickstart_prints_events_and_finds_its_document (void)
{
   test_server s;
   char cmd[1024], out[8192];
   size_t n;
   FILE *p;
   server_start (&s);
   snprintf (cmd, sizeof cmd, "%s '%s' 2>&1", QUICKSTART_PATH, server_uri (&s, "quickstart", NULL));
   p = popen (cmd, "r");
   CHECK (p, "popen");
   n = fread (out, 1, sizeof out - 1, p);
   out[n] = '\0';
   CHECK (pclose (p) == 0, "quickstart failed:\n%s", out);
   CHECK (strstr (out, "event: connecting") && strstr (out, "event: open") && strstr (out, "event: close"),
          "events missing:\n%s", out);
   CHECK (strstr (out, "\"name\" : \"ada\""), "the document was not found:\n%s", out);
   server_cleanup (&s);
}

static const test_case tests[] = {
   {"quickstart", test_quickstart_prints_events_and_finds_its_document},
   {NULL, NULL},
};

int
main (int argc, char **argv)
{
   return run_tests (argc, argv, tests);
}
