/*
 * post.c: a host's own callbacks, delivered through dispatch like completions and events.
 *
 * A binding sometimes knows a result at once (an already-open connection's asPromise, a value that
 * cannot be converted and so fails one operation) but must still hand it over as a callback. Posted
 * through the runtime, it keeps the order of everything else dispatch runs, and it makes the wake-up
 * fd readable: a host that dispatches only when the fd says so still sees it.
 */
#include "internal.h"

typedef struct {
   mg_delivery d;
   mgconn_post_cb run;
   mgconn_post_cb drop;
   void *userdata;
} mg_post_item;

static void
post_run (mg_delivery *d)
{
   mg_post_item *p = MG_CONTAINER_OF (d, mg_post_item, d);
   mg_post_item copy = *p;
   bson_free (p); /* before the callback: it may free the runtime */
   copy.run (copy.userdata);
}

static void
post_drop (mg_delivery *d)
{
   mg_post_item *p = MG_CONTAINER_OF (d, mg_post_item, d);
   if (p->drop) {
      p->drop (p->userdata);
   }
   bson_free (p);
}

int
mgconn_runtime_post (mgconn_runtime *rt, mgconn_post_cb cb, mgconn_post_cb drop, void *userdata)
{
   mg_post_item *p;
   if (!rt || !cb) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_runtime_post: %s is NULL", rt ? "cb" : "rt");
   }
   p = bson_malloc0 (sizeof *p);
   p->d.run = post_run;
   p->d.drop = post_drop;
   p->run = cb;
   p->drop = drop;
   p->userdata = userdata;
   mg_runtime_deliver (rt, &p->d);
   return 0;
}
