/*
 * list.h: an intrusive, circular, doubly linked list with a sentinel head.
 * Elements embed an mg_link; no allocation happens here. Callers hold whatever lock guards the list.
 */
#ifndef MGCONN_LIST_H
#define MGCONN_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct mg_link {
   struct mg_link *prev;
   struct mg_link *next;
} mg_link;

typedef mg_link mg_list;

#define MG_CONTAINER_OF(ptr, type, member) ((type *) (void *) ((char *) (ptr) - offsetof (type, member)))

static inline void
mg_list_init (mg_list *l)
{
   l->prev = l->next = l;
}

static inline bool
mg_list_empty (const mg_list *l)
{
   return l->next == l;
}

/* A link that is in no list points to itself; mg_link_unlink keeps that true. */
static inline bool
mg_link_linked (const mg_link *n)
{
   return n->next != NULL && n->next != n;
}

static inline void
mg_list_push_back (mg_list *l, mg_link *n)
{
   n->prev = l->prev;
   n->next = l;
   l->prev->next = n;
   l->prev = n;
}

static inline void
mg_link_unlink (mg_link *n)
{
   n->prev->next = n->next;
   n->next->prev = n->prev;
   n->prev = n->next = n;
}

static inline mg_link *
mg_list_pop_front (mg_list *l)
{
   mg_link *n;
   if (mg_list_empty (l)) {
      return NULL;
   }
   n = l->next;
   mg_link_unlink (n);
   return n;
}

/* Moves every element of `from` to the end of `to`, in order. */
static inline void
mg_list_splice (mg_list *to, mg_list *from)
{
   if (mg_list_empty (from)) {
      return;
   }
   from->next->prev = to->prev;
   to->prev->next = from->next;
   from->prev->next = to;
   to->prev = from->prev;
   mg_list_init (from);
}

#define MG_LIST_FOREACH_SAFE(it, tmp, list) \
   for ((it) = (list)->next, (tmp) = (it)->next; (it) != (list); (it) = (tmp), (tmp) = (it)->next)

#endif
