/*
 * poll/wakeup.c: cross-thread wakeup of the reactor, coalesced.
 *
 * An eventfd (HAVE_EVENTFD) or a non-blocking pipe, plus a "pending"
 * flag.  witch__wakeup_signal() writes only when it moves pending from
 * false to true, so any number of signals between two clears cost at most
 * one write(2).  See doc/internals/poller.md, "The wakeup".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#if defined(HAVE_EVENTFD) && defined(HAVE_SYS_EVENTFD_H)
#include <sys/eventfd.h>
#define USE_EVENTFD 1
#endif

#include <witch/error.h>

#include "poll/wakeup.h"

#ifndef USE_EVENTFD
/* Make a non-blocking, close-on-exec pipe; 0 or -1 (errno kept). */
static int
make_pipe(int fds[2])
{
#ifdef HAVE_PIPE2
	return pipe2(fds, O_NONBLOCK | O_CLOEXEC);
#else
	int i, fl, saved;

	if (pipe(fds) == -1)
		return -1;
	for (i = 0; i < 2; i++) {
		if ((fl = fcntl(fds[i], F_GETFL)) == -1 ||
		    fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) == -1 ||
		    fcntl(fds[i], F_SETFD, FD_CLOEXEC) == -1)
			goto fail;
	}
	return 0;
fail:
	saved = errno;
	close(fds[0]);
	close(fds[1]);
	errno = saved;
	return -1;
#endif
}
#endif

/*
 * Open the wakeup descriptor(s), non-blocking and close-on-exec, and
 * clear pending.  Register w->rfd with the poller, readonly.  Returns 0
 * or WITCH_ESYSTEM (errno kept; rfd and wfd are then -1).  Called before
 * any other thread can see w.
 */
int
witch__wakeup_init(struct witch__wakeup *w)
{
#ifndef USE_EVENTFD
	int fds[2];
#endif

	atomic_init(&w->pending, false);
	w->rfd = w->wfd = -1;
#ifdef USE_EVENTFD
	if ((w->rfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		return WITCH_ESYSTEM;
	w->wfd = w->rfd;
#else
	if (make_pipe(fds) == -1)
		return WITCH_ESYSTEM;
	w->rfd = fds[0];
	w->wfd = fds[1];
#endif
	return 0;
}

/*
 * Close the descriptor(s); unregister rfd from the poller first.  Safe on
 * a w whose init failed, and twice.  No thread may signal w any more.
 */
void
witch__wakeup_destroy(struct witch__wakeup *w)
{
	if (w->wfd != -1 && w->wfd != w->rfd)
		close(w->wfd);
	if (w->rfd != -1)
		close(w->rfd);
	w->rfd = w->wfd = -1;
}

/*
 * Any thread.  Publish the work first, then call this.  Only the caller
 * that moves pending from false to true writes; everyone else relies on
 * that write (or on one still to come) and on the acq_rel exchange, which
 * orders their work before the reactor's clear.  EAGAIN means the
 * descriptor is already readable, which is all we want.
 */
void
witch__wakeup_signal(struct witch__wakeup *w)
{
#ifdef USE_EVENTFD
	uint64_t one = 1;
#else
	unsigned char one = 1;
#endif
	ssize_t n;

	if (atomic_exchange_explicit(&w->pending, true, memory_order_acq_rel))
		return;
	do {
		n = write(w->wfd, &one, sizeof(one));
	} while (n == -1 && errno == EINTR);
	/* Other failures (EBADF after destroy) are caller bugs: ignored. */
}

/*
 * Reactor only, after the poller reported rfd readable: drain rfd (an
 * eventfd by one read, a pipe to EAGAIN), then clear pending.  The caller must look for work only after
 * this returns.
 *
 * Why drain first and clear second.  Invariant: whenever pending is true
 * after our clear, some signaller moved it false->true after the clear,
 * so its write comes after our drain and leaves rfd readable: the next
 * wait reports it.  A signaller that saw pending == true before our clear
 * did not write, but its exchange precedes our exchange in pending's
 * modification order (one release sequence of RMWs), so our acq_rel
 * exchange makes its published work visible to the scan that follows.  A
 * write that lands after the drain but belongs to a signal from before
 * the clear only causes one spurious wakeup.
 *
 * The other order loses wakeups: clear; a signaller sets pending and
 * writes; we drain its byte; pending stays true with rfd empty, so every
 * later signal skips its write and the reactor sleeps with work queued.
 */
void
witch__wakeup_clear(struct witch__wakeup *w)
{
#ifdef USE_EVENTFD
	uint64_t buf;
#else
	unsigned char buf[64];
#endif
	ssize_t n;

	for (;;) {
		n = read(w->rfd, &buf, sizeof(buf));
#ifdef USE_EVENTFD
		/*
		 * One read returns the whole counter and resets it: drained,
		 * no second read to see EAGAIN (a syscall per wakeup).
		 */
		if (n > 0)
			break;
#else
		if (n > 0)
			continue;
#endif
		if (n == -1 && errno == EINTR)
			continue;
		break;		/* EAGAIN (drained), or 0/error: nothing to do */
	}
	(void)atomic_exchange_explicit(&w->pending, false,
	    memory_order_acq_rel);
}
