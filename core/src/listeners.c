/*
 * listeners.c: the host listeners of a connection or a model (the rules are in listeners.h).
 */
#include "listeners.h"

#include <bson/bson.h>

void
mg_listeners_add (mg_listener_list *list, int32_t type, int32_t flags, mg_listener_fn cb, void *userdata,
                  mgconn_release_cb release)
{
   mg_listener *l;
   list->items = bson_realloc (list->items, sizeof *list->items * (list->n + 1));
   l = &list->items[list->n++];
   l->type = type;
   l->flags = flags;
   l->cb = cb;
   l->userdata = userdata;
   l->release = release;
   l->removed = false;
}

/* Drops the removed entries, then releases them. Only when no emit walks the list. The releases run
 * after the list is whole again: a release runs host code, which may listen or remove in turn. */
static void
compact (mg_listener_list *list)
{
   mg_listener *gone = NULL;
   size_t n_gone = 0, j = 0;
   for (size_t i = 0; i < list->n; i++) {
      if (list->items[i].removed && list->items[i].release) {
         n_gone++;
      }
   }
   if (n_gone > 0) {
      gone = bson_malloc (sizeof *gone * n_gone);
      n_gone = 0;
   }
   for (size_t i = 0; i < list->n; i++) {
      mg_listener l = list->items[i];
      if (!l.removed) {
         list->items[j++] = l;
      } else if (l.release) {
         gone[n_gone++] = l;
      }
   }
   list->n = j;
   for (size_t i = 0; i < n_gone; i++) {
      gone[i].release (gone[i].userdata);
   }
   bson_free (gone);
}

bool
mg_listeners_remove (mg_listener_list *list, int32_t type, mg_listener_fn cb, void *userdata)
{
   for (size_t i = 0; i < list->n; i++) {
      mg_listener *l = &list->items[i];
      if (!l->removed && l->type == type && l->cb == cb && l->userdata == userdata) {
         l->removed = true;
         if (list->emitting == 0) {
            compact (list);
         }
         return true;
      }
   }
   return false;
}

size_t
mg_listeners_begin (mg_listener_list *list)
{
   list->emitting++;
   return list->n;
}

bool
mg_listeners_take (mg_listener_list *list, size_t i, int32_t type, mg_listener *out)
{
   mg_listener *l = &list->items[i];
   if (l->removed || (l->type != 0 && l->type != type)) {
      return false;
   }
   *out = *l;
   if (l->flags & MGCONN_LISTEN_ONCE) {
      l->removed = true; /* before its call: an emit nested in it does not call it again */
   }
   return true;
}

void
mg_listeners_end (mg_listener_list *list)
{
   if (--list->emitting == 0) {
      compact (list);
   }
}

void
mg_listeners_remove_all (mg_listener_list *list)
{
   for (size_t i = 0; i < list->n; i++) {
      list->items[i].removed = true;
   }
   if (list->emitting == 0) {
      compact (list);
   }
}

int
mg_listeners_visit (const mg_listener_list *list, mg_listener_fn cb, mgconn_listener_visit_cb visit, void *arg)
{
   for (size_t i = 0; i < list->n; i++) {
      const mg_listener *l = &list->items[i];
      int rc;
      if (!l->removed && l->cb == cb && (rc = visit (l->type, l->flags, l->userdata, arg)) != 0) {
         return rc;
      }
   }
   return 0;
}

void
mg_listeners_cleanup (mg_listener_list *list)
{
   bson_free (list->items);
   list->items = NULL;
   list->n = 0;
}
