/*
 * handoff.c: the wake-ups that pass work between the host thread and the workers, made once the
 * thread that owes them has let go of its locks.
 *
 * A job or a delivery is queued under rt->lock, and on the hot paths under a connection's lock too.
 * Woken at that moment, the other side (a worker for a job, the host for a delivery) ran into the
 * locks its waker still held and slept on them again: a blocking find_one from Lua cost 4.9 futex
 * calls and 4.7 context switches where the hand-off needs two of each. So inside a hand-off scope
 * the wake-ups are counted, not made, and mg_handoff_end makes them after the last unlock:
 *   - the host's submit (mg_op_submit): the worker for the op it queued;
 *   - the end of a worker's operation (op_job_run, from its result to the pump): the host, for the
 *     delivery, and workers for the ops the pump queued. The worker owes itself the first of those:
 *     it goes back to the queue and takes it without sleeping.
 * Everything else (timers, close, jobs that deliver events while they work) wakes at once.
 *
 * Owed wake-ups are the calling thread's (thread-local) and belong to one runtime: a push to
 * another runtime inside a scope wakes at once. A scope never waits for anything, so nothing it owes
 * can be what it waits for.
 *
 * The wake-up fd with a deferred write: the deliverer marks the runtime signalled and counts the
 * write under rt->lock, as always, and makes it here. Dispatch reads back what has landed and stays
 * signalled until every counted write is read (runtime.c, read_back).
 */
#include "internal.h"

static _Thread_local struct {
   mgconn_runtime *rt;
   int depth;
   int jobs;       /* jobs queued whose worker has not been woken */
   bool write_fd;  /* a delivery's wake-up fd write */
} owed;

void
mg_handoff_begin (mgconn_runtime *rt)
{
   if (owed.depth++ == 0) {
      owed.rt = rt;
      owed.jobs = 0;
      owed.write_fd = false;
   }
}

static bool
in_scope_for (const mgconn_runtime *rt)
{
   return owed.depth > 0 && owed.rt == rt;
}

bool
mg_handoff_owe_job_locked (mgconn_runtime *rt)
{
   if (!in_scope_for (rt)) {
      return false;
   }
   owed.jobs++;
   return true;
}

bool
mg_handoff_owe_fd_write_locked (mgconn_runtime *rt)
{
   if (!in_scope_for (rt)) {
      return false;
   }
   owed.write_fd = true;
   return true;
}

void
mg_handoff_end (mgconn_runtime *rt, bool on_worker)
{
   int wake;
   if (--owed.depth > 0 || owed.rt != rt) {
      return;
   }
   if (owed.write_fd) {
      mg_wakeup_signal (&rt->wake);
   }
   /* Signalled without rt->lock: a worker going idle looks at the queue under the lock before it
    * waits, so a job queued before this point is never missed; one already waiting is woken here. */
   for (wake = on_worker ? owed.jobs - 1 : owed.jobs; wake > 0; wake--) {
      pthread_cond_signal (&rt->work_cond);
   }
   owed.rt = NULL;
   owed.jobs = 0;
   owed.write_fd = false;
}
