/*
 * poll/poll_kqueue.c: the kqueue backend of the poller (HAVE_KQUEUE).
 *
 * Every descriptor is registered once with EV_ADD|EV_CLEAR (the kqueue
 * spelling of edge-triggered) for EVFILT_READ and, unless readonly,
 * EVFILT_WRITE, with the caller's udata.  kqueue reports one event per
 * filter, so one wait may return two events for the same udata (one IN,
 * one OUT); the contract allows that.  See poller.h and
 * doc/internals/poller.md.
 *
 * Not compiled or tested on Linux; written against kqueue(2).
 */
#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <witch/error.h>

#include "core/alloc.h"
#include "poll/poller.h"

/* At most this many events are returned by one witch__poller_wait(). */
#define KQ_BATCH	256

struct witch__poller {
	int		 kq;
	struct kevent	 evs[KQ_BATCH];
};

/* A kqueue descriptor with close-on-exec set, or -1 (errno kept). */
static int
kq_open(void)
{
#ifdef HAVE_KQUEUE1
	return kqueue1(O_CLOEXEC);
#else
	int fd, saved;

	if ((fd = kqueue()) == -1)
		return -1;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
#endif
}

/*
 * Create a kqueue with close-on-exec set.  On success *ret owns it; on
 * failure *ret is NULL.  Returns 0, WITCH_ENOMEM or WITCH_ESYSTEM (errno
 * kept).  Any thread; the poller then belongs to its caller.
 */
int
witch__poller_new(struct witch__poller **ret)
{
	struct witch__poller *p = NULL;
	int saved;

	*ret = NULL;
	if ((p = witch__calloc(1, sizeof(*p))) == NULL)
		return WITCH_ENOMEM;
	if ((p->kq = kq_open()) == -1)
		goto fail;
	*ret = p;
	return 0;
fail:
	saved = errno;
	witch__free(p);
	errno = saved;
	return WITCH_ESYSTEM;
}

/*
 * Close the kqueue and free the poller; NULL is a no-op.  The registered
 * descriptors are not closed.  Owning thread only.
 */
void
witch__poller_free(struct witch__poller *p)
{
	if (p == NULL)
		return;
	if (p->kq != -1)
		close(p->kq);
	witch__free(p);
}

/* Apply one change; 0 or -1 (errno kept).  No event list: errors in errno. */
static int
kq_change(int kq, int fd, short filter, unsigned short flags, void *udata)
{
	struct kevent kev;

	EV_SET(&kev, (uintptr_t)fd, filter, flags, 0, 0, udata);
	return kevent(kq, &kev, 1, NULL, 0, NULL);
}

/*
 * Register fd once with EV_CLEAR for reading and, unless readonly,
 * writing, with udata as the events' data.  If the write filter cannot be
 * added the read filter is removed again, so a failed add leaves nothing
 * behind.  Returns 0 or WITCH_ESYSTEM (errno kept).  Owning thread only.
 */
int
witch__poller_add(struct witch__poller *p, int fd, void *udata, int readonly)
{
	int saved;

	if (kq_change(p->kq, fd, EVFILT_READ, EV_ADD | EV_CLEAR, udata) == -1)
		return WITCH_ESYSTEM;
	if (readonly)
		return 0;
	if (kq_change(p->kq, fd, EVFILT_WRITE, EV_ADD | EV_CLEAR,
	    udata) == -1)
		goto fail;
	return 0;
fail:
	saved = errno;
	(void)kq_change(p->kq, fd, EVFILT_READ, EV_DELETE, NULL);
	errno = saved;
	return WITCH_ESYSTEM;
}

/*
 * Unregister both filters of fd; call it before closing fd.  ENOENT on
 * the write filter is ignored (readonly registration).  Returns 0 or
 * WITCH_ESYSTEM (errno kept).  Events already returned by a previous wait
 * are not recalled: the caller skips them (rule 5).  Owning thread only.
 */
int
witch__poller_del(struct witch__poller *p, int fd)
{
	int rc = 0, saved = 0;

	if (kq_change(p->kq, fd, EVFILT_READ, EV_DELETE, NULL) == -1) {
		saved = errno;
		rc = WITCH_ESYSTEM;
	}
	if (kq_change(p->kq, fd, EVFILT_WRITE, EV_DELETE, NULL) == -1 &&
	    errno != ENOENT && rc == 0) {
		saved = errno;
		rc = WITCH_ESYSTEM;
	}
	if (rc != 0)
		errno = saved;
	return rc;
}

static unsigned
map_event(const struct kevent *kev)
{
	unsigned out = 0;

	if (kev->flags & EV_ERROR) {
		out |= WITCH__POLL_ERR;
	} else if (kev->filter == EVFILT_READ) {
		out |= WITCH__POLL_IN;
	} else if (kev->filter == EVFILT_WRITE) {
		out |= WITCH__POLL_OUT;
	}
	if (kev->flags & EV_EOF) {
		out |= WITCH__POLL_HUP;
		/* fflags holds the pending socket error, if any. */
		if (kev->fflags != 0)
			out |= WITCH__POLL_ERR;
	}
	/* Contract rule 3: let read()/write() report the condition. */
	if (out & (WITCH__POLL_HUP | WITCH__POLL_ERR))
		out |= WITCH__POLL_IN | WITCH__POLL_OUT;
	return out;
}

/*
 * Wait up to timeout_ms (-1 forever, 0 poll) and store at most max (and
 * at most KQ_BATCH) events in ev; events not returned stay queued for the
 * next call.  One event per filter: the same udata may appear twice.
 * Returns the number stored, 0 on timeout or EINTR, or WITCH_ESYSTEM
 * (errno kept; EINVAL if max < 1).  Owning thread only.
 */
int
witch__poller_wait(struct witch__poller *p, struct witch__poll_event *ev,
    int max, int timeout_ms)
{
	struct timespec ts, *tsp = NULL;
	int i, n;

	if (max < 1) {
		errno = EINVAL;
		return WITCH_ESYSTEM;
	}
	if (max > KQ_BATCH)
		max = KQ_BATCH;
	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
		tsp = &ts;
	}
	n = kevent(p->kq, NULL, 0, p->evs, max, tsp);
	if (n == -1)
		return errno == EINTR ? 0 : WITCH_ESYSTEM;
	for (i = 0; i < n; i++) {
		/* Through uintptr_t: udata is intptr_t on older NetBSD. */
		ev[i].udata = (void *)(uintptr_t)p->evs[i].udata;
		ev[i].events = map_event(&p->evs[i]);
	}
	return n;
}

/* The backend's name, "kqueue".  Any thread. */
const char *
witch__poller_backend(void)
{
	return "kqueue";
}

/*
 * The kqueue descriptor; readable while events are pending.  Owning
 * thread.
 */
int
witch__poller_fd(const struct witch__poller *p)
{
	return p->kq;
}
