/*
 * listeners.h: a list of host listeners, for a connection's events and a model's.
 *
 * Threads: host thread only, like the calls that reach it (mgconn_*_listen/_off, dispatch, the
 * release of the last host handle). Lifetime of a registration: from listen until it is removed
 * (off, a ONCE listener that has run, or the host giving its handle up). Its `release` runs once,
 * on the host thread, after that and after every call of the listener has returned: a listener
 * removed while listeners run (by itself or another) is only marked, and released when the
 * outermost emit is over. So a host may drop its reference to the callback in `release`.
 */
#ifndef MG_LISTENERS_H
#define MG_LISTENERS_H

#include "mgconn.h"

#include <stdbool.h>
#include <stddef.h>

typedef void (*mg_listener_fn) (void); /* the host's callback, called through its real type */

typedef struct {
   int32_t type; /* 0: every event */
   int32_t flags; /* MGCONN_LISTEN_* */
   mg_listener_fn cb;
   void *userdata;
   mgconn_release_cb release; /* may be NULL */
   bool removed;
} mg_listener;

typedef struct {
   mg_listener *items;
   size_t n;
   int emitting; /* emits in progress (a listener may dispatch, emitting again) */
} mg_listener_list;

void mg_listeners_add (mg_listener_list *list, int32_t type, int32_t flags, mg_listener_fn cb, void *userdata,
                       mgconn_release_cb release);
/* Removes the first live registration of (type, cb, userdata); false when there is none. */
bool mg_listeners_remove (mg_listener_list *list, int32_t type, mg_listener_fn cb, void *userdata);
/* Emitting: begin returns how many entries to walk (those added meanwhile hear the next event),
 * take gives the i-th when it is live and listens to `type` (a ONCE one is removed as it is taken),
 * end releases what was removed once the outermost emit is over. */
size_t mg_listeners_begin (mg_listener_list *list);
bool mg_listeners_take (mg_listener_list *list, size_t i, int32_t type, mg_listener *out);
void mg_listeners_end (mg_listener_list *list);
/* The host gives its handle up: every registration is removed (released now, or at the end of the
 * emit in progress). */
void mg_listeners_remove_all (mg_listener_list *list);
/* Calls visit for each live registration with this cb; stops at the first non-zero return. */
int mg_listeners_visit (const mg_listener_list *list, mg_listener_fn cb, mgconn_listener_visit_cb visit, void *arg);
/* Frees the storage. Every registration has been released by now (remove_all at the host's release). */
void mg_listeners_cleanup (mg_listener_list *list);

#endif
