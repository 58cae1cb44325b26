/*
 * timer.c: one thread per runtime that fires deadlines: each buffered operation's bufferTimeoutMS
 * and each connection's initial serverSelectionTimeoutMS.
 *
 * A timer's fire function runs on this thread with no mgconn lock held; it may take conn->lock and
 * rt->lock (in that order) but never calls libmongoc or host code. Arming and disarming take only
 * timers.lock, the innermost lock of all.
 */
#include "internal.h"

#include <errno.h>
#include <time.h>

int64_t
mg_now_us (void)
{
   struct timespec ts;
   clock_gettime (CLOCK_MONOTONIC, &ts);
   return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *
timer_thread (void *arg)
{
   mg_timers *ts = arg;
   mg_name_this_thread ("mgconn-timer");
   pthread_mutex_lock (&ts->lock);
   while (!ts->stopping) {
      mg_timer *t;
      int64_t now;
      if (mg_list_empty (&ts->armed)) {
         pthread_cond_wait (&ts->cond, &ts->lock);
         continue;
      }
      t = MG_CONTAINER_OF (ts->armed.next, mg_timer, link);
      now = mg_now_us ();
      if (t->deadline_us > now) {
         struct timespec until;
         until.tv_sec = (time_t) (t->deadline_us / 1000000);
         until.tv_nsec = (long) (t->deadline_us % 1000000) * 1000;
         pthread_cond_timedwait (&ts->cond, &ts->lock, &until);
         continue;
      }
      mg_link_unlink (&t->link);
      t->armed = false;
      pthread_mutex_unlock (&ts->lock);
      t->fire (t);
      pthread_mutex_lock (&ts->lock);
   }
   pthread_mutex_unlock (&ts->lock);
   return NULL;
}

int
mg_timers_start (mg_timers *ts)
{
   pthread_condattr_t attr;
   pthread_mutex_init (&ts->lock, NULL);
   pthread_condattr_init (&attr);
   /* Deadlines are monotonic: a wall-clock jump must not fire or delay a buffer timeout. */
   pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
   pthread_cond_init (&ts->cond, &attr);
   pthread_condattr_destroy (&attr);
   mg_list_init (&ts->armed);
   ts->stopping = false;
   if (pthread_create (&ts->thread, NULL, timer_thread, ts) != 0) {
      return -1;
   }
   ts->started = true;
   return 0;
}

void
mg_timers_stop (mg_timers *ts)
{
   if (!ts->started) {
      return;
   }
   pthread_mutex_lock (&ts->lock);
   ts->stopping = true;
   pthread_cond_signal (&ts->cond);
   pthread_mutex_unlock (&ts->lock);
   pthread_join (ts->thread, NULL);
   ts->started = false;
   pthread_cond_destroy (&ts->cond);
   pthread_mutex_destroy (&ts->lock);
}

bool
mg_timer_arm (mg_timers *ts, mg_timer *t, int64_t deadline_us, void (*fire) (mg_timer *))
{
   mg_link *it;
   bool was_armed;
   pthread_mutex_lock (&ts->lock);
   /* Arming an armed timer moves it. Linking it a second time instead corrupted the list: two
    * arms of a connection's connect timer (close() then open_uri() while connecting, twice) made a
    * cycle, and the next arm searched it forever on the host thread. */
   was_armed = t->armed;
   if (was_armed) {
      mg_link_unlink (&t->link);
   }
   t->deadline_us = deadline_us;
   t->fire = fire;
   t->armed = true;
   /* Most timers are armed in deadline order (same timeout, later start): search from the back. */
   for (it = ts->armed.prev; it != &ts->armed; it = it->prev) {
      if (MG_CONTAINER_OF (it, mg_timer, link)->deadline_us <= deadline_us) {
         break;
      }
   }
   t->link.prev = it;
   t->link.next = it->next;
   it->next->prev = &t->link;
   it->next = &t->link;
   if (ts->armed.next == &t->link) {
      pthread_cond_signal (&ts->cond);
   }
   pthread_mutex_unlock (&ts->lock);
   return was_armed;
}

bool
mg_timer_is_armed (mg_timers *ts, mg_timer *t)
{
   bool armed;
   pthread_mutex_lock (&ts->lock);
   armed = t->armed;
   pthread_mutex_unlock (&ts->lock);
   return armed;
}

bool
mg_timer_disarm (mg_timers *ts, mg_timer *t)
{
   bool removed = false;
   pthread_mutex_lock (&ts->lock);
   if (t->armed) {
      mg_link_unlink (&t->link);
      t->armed = false;
      removed = true;
   }
   pthread_mutex_unlock (&ts->lock);
   return removed;
}
