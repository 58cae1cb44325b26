/*
 * wakeup.c: the one file descriptor a host watches to know that dispatch has work.
 * An eventfd where the system has one, else a non-blocking pipe. Signalling is coalesced by the
 * runtime, which counts what it wrote and what dispatch read back (rt->wake_writes, rt->wake_read),
 * so the fd holds at most one pending wake-up; a write may land after the dispatch that emptied the
 * queue.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

int
mg_wakeup_open (mg_wakeup *w)
{
#ifdef __linux__
   int fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
   if (fd >= 0) {
      w->read_fd = w->write_fd = fd;
      return 0;
   }
#endif
   {
      int fds[2];
      if (pipe (fds) != 0) {
         return -1;
      }
      for (int i = 0; i < 2; i++) {
         fcntl (fds[i], F_SETFL, fcntl (fds[i], F_GETFL) | O_NONBLOCK);
         fcntl (fds[i], F_SETFD, FD_CLOEXEC);
      }
      w->read_fd = fds[0];
      w->write_fd = fds[1];
      return 0;
   }
}

void
mg_wakeup_close (mg_wakeup *w)
{
   if (w->write_fd != w->read_fd) {
      close (w->write_fd);
   }
   close (w->read_fd);
   w->read_fd = w->write_fd = -1;
}

void
mg_wakeup_signal (mg_wakeup *w)
{
   uint64_t one = 1;
   ssize_t n;
   do {
      n = write (w->write_fd, &one, w->write_fd == w->read_fd ? sizeof one : 1);
   } while (n < 0 && errno == EINTR);
}

uint64_t
mg_wakeup_drain (mg_wakeup *w)
{
   uint64_t count = 0;
   if (w->write_fd == w->read_fd) {
      /* An eventfd: one read takes its whole count and leaves it unreadable. */
      ssize_t n;
      do {
         n = read (w->read_fd, &count, sizeof count);
      } while (n < 0 && errno == EINTR);
      return n == (ssize_t) sizeof count ? count : 0;
   }
   for (;;) {
      char buf[64];
      ssize_t n = read (w->read_fd, buf, sizeof buf);
      if (n > 0) {
         count += (uint64_t) n; /* a byte per signal */
      } else if (n < 0 && errno == EINTR) {
         continue;
      } else {
         return count;
      }
   }
}
