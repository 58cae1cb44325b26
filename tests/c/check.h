/*
 * check.h: the one assertion every C test uses; on its own so that tests which must not see
 * mgconn.h (the libffi scenario) share it too.
 */
#ifndef MGCONN_TEST_CHECK_H
#define MGCONN_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, ...)                                                              \
   do {                                                                               \
      if (!(cond)) {                                                                  \
         fprintf (stderr, "%s:%d: CHECK failed: %s\n  ", __FILE__, __LINE__, #cond); \
         fprintf (stderr, __VA_ARGS__);                                               \
         fprintf (stderr, "\n");                                                      \
         exit (1);                                                                    \
      }                                                                               \
   } while (0)

#endif
