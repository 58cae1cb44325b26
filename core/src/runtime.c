/*
 * runtime.c: worker threads, the two queues between them and the host, and dispatch.
 *
 *   host ──submit──▶ rt->work ──worker──▶ libmongoc ──▶ rt->done ──dispatch (host)──▶ callbacks
 *
 * rt->work holds jobs; any thread may push, only workers pop. rt->done holds deliveries (operation
 * completions, events, log lines); any thread may push, only dispatch pops and runs them, on the
 * host thread. Both are guarded by rt->lock. The wake-up fd is signalled when rt->done goes from
 * empty to non-empty and drained when dispatch empties it, so it is readable exactly while there is
 * something to dispatch (and, after a race handoff.c describes, until the next dispatch).
 */
#include "internal.h"
#include "connection.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <time.h>
#include <string.h>

/*
 * Workers: as many as the work needs, so that one connection never starves another.
 *
 * A job (an operation, a pool's creation, a probe) runs on a worker from start to end, and a hung
 * server holds the worker as long as the driver waits (socketTimeoutMS: five minutes by default).
 * With a fixed set of workers, one connection whose server hung filled them all and every other
 * connection waited behind it. So:
 *   - a connection never has more than maxPoolSize operations in flight (the pump's rule), so it
 *     holds at most that many workers (plus its short pool jobs);
 *   - whenever a job is queued and no idle worker is left to take it, another worker is started
 *     at once, up to MG_MAX_WORKERS; a job never waits behind a busy worker before that cap;
 *   - the `workers` runtime option (default 8) starts that many with the runtime and keeps them;
 *     workers started beyond it leave after MG_WORKER_IDLE_S without work (they are joined by the
 *     next start, or by mgconn_runtime_free).
 * The cost of a hung server is then threads, not other connections' latency. Threads are started
 * by a thread of their own (mgconn-spawner), outside every lock: an enqueue, which may run on the
 * host thread and under a connection's lock, only counts what is wanted and signals it (a connection
 * coming back with a hundred buffered operations asks for dozens of threads at once, and creating
 * them under rt->lock kept the host's dispatch waiting for the lock).
 */
#define MG_DEFAULT_WORKERS 8
#define MG_MAX_WORKERS 1024
#define MG_WORKER_IDLE_S 10

/* Runtimes given up by mgconn_runtime_free because a worker was stuck on the network. */
static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
static mgconn_runtime *abandoned;

/* An extra worker without work for MG_WORKER_IDLE_S leaves: it takes itself off rt->workers and
 * leaves its id for joining. rt->lock held. */
static void
retire_self_locked (mgconn_runtime *rt)
{
   pthread_t self = pthread_self ();
   for (int i = 0; i < rt->n_workers; i++) {
      if (pthread_equal (rt->workers[i], self)) {
         rt->workers[i] = rt->workers[--rt->n_workers];
         break;
      }
   }
   rt->retired = bson_realloc (rt->retired, sizeof (pthread_t) * (size_t) (rt->n_retired + 1));
   rt->retired[rt->n_retired++] = self;
}

static void *
worker_main (void *arg)
{
   mgconn_runtime *rt = arg;
   /* SCHED_BATCH: a worker woken by the host's enqueue never preempts the host thread (the kernel
    * skips wake-up preemption for batch threads); it runs on an idle core, or when the host's frame
    * yields. On two cores this halved the p99 time per frame that a 60 Hz host spends inside mgconn
    * (tests/bench, the stall task), which went to being switched out for the worker it had just woken.
    * Needs no privilege; if refused, the worker runs as it was.
    * The driver's monitor threads, started from workers, inherit the policy. */
   {
      struct sched_param no_priority = {0};
      (void) pthread_setschedparam (pthread_self (), SCHED_BATCH, &no_priority);
   }
   mg_name_this_thread ("mgconn-worker"); /* after the policy: a named worker is a batch one */
   pthread_mutex_lock (&rt->lock);
   rt->starting_workers--;
   for (;;) {
      mg_link *l = mg_list_pop_front (&rt->work);
      int rc;
      if (l) {
         rt->work_len--;
         pthread_mutex_unlock (&rt->lock);
         MG_CONTAINER_OF (l, mg_job, link)->run (MG_CONTAINER_OF (l, mg_job, link));
         pthread_mutex_lock (&rt->lock);
         continue;
      }
      if (rt->stopping) {
         break; /* stopping, and nothing left to do */
      }
      rt->idle_workers++;
      if (rt->n_workers > rt->base_workers) {
         struct timespec until;
         clock_gettime (CLOCK_MONOTONIC, &until);
         until.tv_sec += MG_WORKER_IDLE_S;
         rc = pthread_cond_timedwait (&rt->work_cond, &rt->lock, &until);
      } else {
         rc = pthread_cond_wait (&rt->work_cond, &rt->lock);
      }
      rt->idle_workers--;
      if (rc == ETIMEDOUT && mg_list_empty (&rt->work) && !rt->stopping && rt->n_workers > rt->base_workers) {
         retire_self_locked (rt);
         break;
      }
   }
   pthread_mutex_unlock (&rt->lock);
   return NULL;
}

/* Lists a worker that has been created (counted in starting_workers until it runs). rt->lock held. */
static void
add_worker_locked (mgconn_runtime *rt, pthread_t t)
{
   if (rt->n_workers == rt->workers_alloc) {
      rt->workers_alloc = rt->workers_alloc ? rt->workers_alloc * 2 : 16;
      rt->workers = bson_realloc (rt->workers, sizeof (pthread_t) * (size_t) rt->workers_alloc);
   }
   rt->workers[rt->n_workers++] = t;
   if (rt->n_workers > rt->peak_workers) {
      rt->peak_workers = rt->n_workers;
   }
}

static void *
spawner_main (void *arg)
{
   mgconn_runtime *rt = arg;
   mg_name_this_thread ("mgconn-spawner");
   pthread_mutex_lock (&rt->lock);
   for (;;) {
      int n;
      while (!rt->stopping && rt->spawn_wanted == 0) {
         pthread_cond_wait (&rt->spawn_cond, &rt->lock);
      }
      if (rt->stopping) {
         break;
      }
      n = rt->spawn_wanted;
      rt->spawn_wanted = 0;
      /* Workers that retired have returned or are about to: join the finished ones now. */
      for (int i = 0; i < rt->n_retired;) {
         if (pthread_tryjoin_np (rt->retired[i], NULL) == 0) {
            rt->retired[i] = rt->retired[--rt->n_retired];
         } else {
            i++;
         }
      }
      pthread_mutex_unlock (&rt->lock);
      for (int i = 0; i < n; i++) {
         pthread_t t;
         bool made = pthread_create (&t, NULL, worker_main, rt) == 0;
         pthread_mutex_lock (&rt->lock);
         if (made) {
            add_worker_locked (rt, t);
         } else {
            rt->starting_workers--; /* the jobs wait for a busy worker to come back */
         }
         pthread_mutex_unlock (&rt->lock);
      }
      pthread_mutex_lock (&rt->lock);
   }
   pthread_mutex_unlock (&rt->lock);
   return NULL;
}

void
mg_runtime_push_job_locked (mgconn_runtime *rt, mg_job *job)
{
   mg_list_push_back (&rt->work, &job->link);
   rt->work_len++;
   if (rt->work_len > (size_t) (rt->idle_workers + rt->starting_workers) &&
       rt->n_workers + rt->starting_workers < MG_MAX_WORKERS && !rt->stopping && rt->spawner_started) {
      rt->starting_workers++;
      rt->spawn_wanted++;
      pthread_cond_signal (&rt->spawn_cond);
   }
   if (!mg_handoff_owe_job_locked (rt)) { /* handoff.c: woken after the caller's unlocks */
      pthread_cond_signal (&rt->work_cond);
   }
}

void
mg_runtime_push_job (mgconn_runtime *rt, mg_job *job)
{
   pthread_mutex_lock (&rt->lock);
   mg_runtime_push_job_locked (rt, job);
   pthread_mutex_unlock (&rt->lock);
}

/* The fd holds (or is about to hold) a wake-up that dispatch has not read back. rt->lock held. */
static bool
wake_signalled_locked (const mgconn_runtime *rt)
{
   return rt->wake_writes > rt->wake_read;
}

void
mg_runtime_deliver_locked (mgconn_runtime *rt, mg_delivery *d)
{
   mg_list_push_back (&rt->done, &d->link);
   rt->done_count++;
   if (!wake_signalled_locked (rt)) {
      rt->wake_writes++;
      if (!mg_handoff_owe_fd_write_locked (rt)) { /* handoff.c: written after the caller's unlocks */
         mg_wakeup_signal (&rt->wake);
      }
   }
}

void
mg_runtime_deliver (mgconn_runtime *rt, mg_delivery *d)
{
   pthread_mutex_lock (&rt->lock);
   mg_runtime_deliver_locked (rt, d);
   pthread_mutex_unlock (&rt->lock);
}

void
mg_runtime_deliver_units (mgconn_runtime *rt, mg_delivery *d, size_t units)
{
   pthread_mutex_lock (&rt->lock);
   mg_runtime_deliver_locked (rt, d);
   rt->done_count += units - 1;
   pthread_mutex_unlock (&rt->lock);
}

void
mg_runtime_deliver_again (mgconn_runtime *rt, mg_delivery *d)
{
   pthread_mutex_lock (&rt->lock);
   d->link.prev = &rt->done;
   d->link.next = rt->done.next;
   rt->done.next->prev = &d->link;
   rt->done.next = &d->link;
   if (!wake_signalled_locked (rt)) { /* dispatch drained the fd when it popped this unit */
      rt->wake_writes++;
      mg_wakeup_signal (&rt->wake);
   }
   pthread_mutex_unlock (&rt->lock);
}

static int
read_workers_option (const uint8_t *opts, size_t opts_len, int *workers, mgconn_error *error)
{
   bson_t doc;
   bson_iter_t it;
   *workers = MG_DEFAULT_WORKERS;
   if (!opts) {
      return 0;
   }
   if (!bson_init_static (&doc, opts, opts_len) || !bson_iter_init (&it, &doc)) {
      return mg_fail (error, MGCONN_ERR_INVALID_ARGUMENT, "runtime options are not a valid BSON document");
   }
   while (bson_iter_next (&it)) {
      if (strcasecmp (bson_iter_key (&it), "workers") == 0) {
         if (!BSON_ITER_HOLDS_INT32 (&it) && !BSON_ITER_HOLDS_INT64 (&it)) {
            return mg_fail (error, MGCONN_ERR_OPTION, "runtime option \"workers\" must be an integer from 1 to 256");
         }
         int64_t v = bson_iter_as_int64 (&it);
         if (v < 1 || v > 256) {
            return mg_fail (error, MGCONN_ERR_OPTION,
                            "runtime option \"workers\" must be an integer from 1 to 256, got %lld", (long long) v);
         }
         *workers = (int) v;
      } else if (strcasecmp (bson_iter_key (&it), "methodCase") == 0) {
         /* read by connection.c when it names methods in messages */
      } else {
         return mg_fail (error, MGCONN_ERR_OPTION,
                         "unknown runtime option \"%s\"; accepted: workers, methodCase", bson_iter_key (&it));
      }
   }
   return 0;
}

int
mgconn_runtime_new (mgconn_runtime **out, const uint8_t *opts, size_t opts_len, mgconn_error *error)
{
   mgconn_runtime *rt;
   int workers, rc;

   if (!out) {
      return mg_fail (error, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_runtime_new: out is NULL");
   }
   *out = NULL;
   if ((rc = read_workers_option (opts, opts_len, &workers, error)) != 0) {
      return rc;
   }
   mg_process_ref ();
   rt = bson_malloc0 (sizeof *rt);
   pthread_mutex_init (&rt->lock, NULL);
   {
      pthread_condattr_t attr; /* idle workers' timeouts are monotonic */
      pthread_condattr_init (&attr);
      pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
      pthread_cond_init (&rt->work_cond, &attr);
      pthread_condattr_destroy (&attr);
   }
   pthread_cond_init (&rt->idle_cond, NULL);
   pthread_cond_init (&rt->spawn_cond, NULL);
   mg_list_init (&rt->work);
   mg_list_init (&rt->done);
   mg_list_init (&rt->connections);
   mg_conn_read_method_case (rt, opts, opts_len);
   mg_settings_init (rt);
   if (mg_wakeup_open (&rt->wake) != 0 || mg_timers_start (&rt->timers) != 0) {
      mgconn_runtime_free (rt);
      return mg_fail (error, MGCONN_ERR_INTERNAL, "could not create the runtime's wake-up fd or timer thread");
   }
   rt->base_workers = workers;
   for (int i = 0; i < workers; i++) {
      pthread_t t;
      if (pthread_create (&t, NULL, worker_main, rt) != 0) {
         mgconn_runtime_free (rt);
         return mg_fail (error, MGCONN_ERR_INTERNAL, "could not start worker thread %d of %d", i + 1, workers);
      }
      pthread_mutex_lock (&rt->lock);
      rt->starting_workers++;
      add_worker_locked (rt, t);
      pthread_mutex_unlock (&rt->lock);
   }
   if (pthread_create (&rt->spawner, NULL, spawner_main, rt) != 0) {
      mgconn_runtime_free (rt);
      return mg_fail (error, MGCONN_ERR_INTERNAL, "could not start the thread that starts workers");
   }
   rt->spawner_started = true;
   mg_log_register_runtime (rt);
   *out = rt;
   return 0;
}

/* Releases what the runtime still holds; its threads are gone (joined, or pool threads finished). */
static void
runtime_final_free (mgconn_runtime *rt)
{
   mg_link *l;
   /* Deliveries nobody will dispatch any more: release what they hold without running them. */
   while ((l = mg_list_pop_front (&rt->done)) != NULL) {
      mg_delivery *d = MG_CONTAINER_OF (l, mg_delivery, link);
      d->drop (d);
   }
   if (rt->wake.read_fd > 0) {
      mg_wakeup_close (&rt->wake);
   }
   bson_free (rt->workers);
   bson_free (rt->retired);
   pthread_cond_destroy (&rt->idle_cond);
   pthread_cond_destroy (&rt->spawn_cond);
   pthread_cond_destroy (&rt->work_cond);
   pthread_mutex_destroy (&rt->lock);
   bson_free (rt);
   mg_process_unref ();
}

void
mg_runtime_pool_gone (mgconn_runtime *rt)
{
   bool last;
   pthread_mutex_lock (&rt->lock);
   rt->pools_alive--;
   last = rt->free_pending && rt->pools_alive == 0;
   pthread_cond_broadcast (&rt->idle_cond);
   pthread_mutex_unlock (&rt->lock);
   if (last) {
      runtime_final_free (rt);
   }
}

void
mgconn_runtime_free (mgconn_runtime *rt)
{
   struct timespec until;
   int stuck = 0;
   bool defer;
   if (!rt) {
      return;
   }
   mg_log_unregister_runtime (rt);

   /* Close every connection and give their pools a moment to be destroyed. */
   mg_conn_close_all_for_runtime_free (rt);

   pthread_mutex_lock (&rt->lock);
   rt->stopping = true; /* from here no worker starts or retires: the two lists stay as they are */
   pthread_cond_broadcast (&rt->work_cond);
   pthread_cond_signal (&rt->spawn_cond);
   pthread_mutex_unlock (&rt->lock);
   if (rt->spawner_started) {
      pthread_join (rt->spawner, NULL); /* it creates nothing more once it has seen `stopping` */
      rt->spawner_started = false;
   }
   for (int i = 0; i < rt->n_retired; i++) {
      pthread_join (rt->retired[i], NULL); /* it has left its loop: returning takes no time */
   }
   rt->n_retired = 0;
   clock_gettime (CLOCK_REALTIME, &until);
   until.tv_sec += 1;
   for (int i = 0; i < rt->n_workers; i++) {
      if (pthread_timedjoin_np (rt->workers[i], NULL, &until) != 0) {
         pthread_detach (rt->workers[i]);
         stuck++;
      }
   }
   mg_timers_stop (&rt->timers);
   if (stuck) {
      /* Workers blocked on a hung server still use the runtime's queues: its memory stays, on a
       * list that keeps it reachable (a deliberate leak, one runtime per hung exit). They also still
       * use the driver, so the runtime's reference on the process is kept: the driver is then never
       * cleaned up under them when the library unloads. */
      fprintf (stderr, "mgconn: %d worker thread(s) still blocked on the network at mgconn_runtime_free; "
                       "leaving them behind\n", stuck);
      pthread_mutex_lock (&abandoned_lock);
      rt->next_abandoned = abandoned;
      abandoned = rt;
      pthread_mutex_unlock (&abandoned_lock);
      return;
   }
   pthread_mutex_lock (&rt->lock);
   defer = rt->pools_alive > 0;
   rt->free_pending = defer;
   pthread_mutex_unlock (&rt->lock);
   if (!defer) {
      runtime_final_free (rt);
   }
}

void
mgconn_runtime_set_host_data (mgconn_runtime *rt, void *host_data)
{
   if (rt) {
      rt->host_data = host_data;
   }
}

void *
mgconn_runtime_host_data (const mgconn_runtime *rt)
{
   return rt ? rt->host_data : NULL;
}

int
mgconn_runtime_fd (const mgconn_runtime *rt)
{
   return rt ? rt->wake.read_fd : -1;
}

/* The fd stops being readable once nothing is due: dispatch reads back what was written. A write
 * still being made (handoff.c makes it after the deliverer's unlocks) is counted in wake_writes but
 * cannot be read yet: the runtime stays signalled, so nobody writes again, and once it lands the fd
 * reads ready with nothing to run and the next dispatch reads it back.
 * The read is made without rt->lock: a worker that has just written the fd takes the lock next (to
 * look for work) and would otherwise sleep on it behind a system call. */
static bool
read_back_wanted_locked (const mgconn_runtime *rt)
{
   return rt->done_count == 0 && wake_signalled_locked (rt);
}

static void
read_back (mgconn_runtime *rt)
{
   uint64_t n = mg_wakeup_drain (&rt->wake);
   pthread_mutex_lock (&rt->lock);
   rt->wake_read += n;
   if (!wake_signalled_locked (rt) && rt->done_count > 0) { /* delivered while the fd was read */
      rt->wake_writes++;
      mg_wakeup_signal (&rt->wake);
   }
   pthread_mutex_unlock (&rt->lock);
}

int
mgconn_runtime_dispatch (mgconn_runtime *rt, int32_t max)
{
   int ran = 0;
   size_t due;
   bool read;
   if (!rt) {
      return 0;
   }
   /* Items are taken one at a time, so a dispatch nested inside a callback (a blocking wait in a
    * listener) keeps the global order: it simply continues where the outer one stands. `due` is
    * fixed at entry so that callbacks that keep queueing work cannot hold the host here forever. */
   pthread_mutex_lock (&rt->lock);
   due = rt->done_count;
   read = read_back_wanted_locked (rt); /* a write that landed after the last dispatch emptied the queue */
   pthread_mutex_unlock (&rt->lock);
   if (read) {
      read_back (rt);
   }
   if (max > 0 && (size_t) max < due) {
      due = (size_t) max;
   }
   while ((size_t) ran < due) {
      mg_link *l;
      pthread_mutex_lock (&rt->lock);
      l = mg_list_pop_front (&rt->done);
      if (l) {
         rt->done_count--;
      }
      read = read_back_wanted_locked (rt);
      pthread_mutex_unlock (&rt->lock);
      if (read) {
         read_back (rt);
      }
      if (!l) {
         break;
      }
      MG_CONTAINER_OF (l, mg_delivery, link)->run (MG_CONTAINER_OF (l, mg_delivery, link));
      ran++;
   }
   return ran;
}

/* Waits (dispatching) until *flag becomes true or the deadline passes. Used by every blocking wait. */
bool
mg_runtime_wait_until (mgconn_runtime *rt, const volatile bool *flag, int64_t deadline_us)
{
   for (;;) {
      struct pollfd p;
      int64_t left_ms;
      mgconn_runtime_dispatch (rt, 0);
      if (*flag) {
         return true;
      }
      if (deadline_us >= 0) {
         left_ms = (deadline_us - mg_now_us () + 999) / 1000;
         if (left_ms <= 0) {
            return false;
         }
      } else {
         left_ms = -1;
      }
      p.fd = rt->wake.read_fd;
      p.events = POLLIN;
      p.revents = 0;
      poll (&p, 1, left_ms > 1000 || left_ms < 0 ? 1000 : (int) left_ms);
   }
}
