/*
 * poll/poll_epoll.c: the epoll backend of the poller (HAVE_EPOLL).
 *
 * Every descriptor is registered once, edge-triggered, for
 * EPOLLIN|EPOLLOUT|EPOLLRDHUP (readonly: EPOLLIN|EPOLLRDHUP); EPOLLERR and
 * EPOLLHUP are always reported by the kernel.  The udata pointer rides in
 * epoll_event.data.ptr.  See poller.h and doc/internals/poller.md.
 */
#include <sys/epoll.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <witch/error.h>

#include "core/alloc.h"
#include "poll/poller.h"

/* At most this many events are returned by one witch__poller_wait(). */
#define EPOLL_BATCH	256

struct witch__poller {
	int			 epfd;
	struct epoll_event	 evs[EPOLL_BATCH];
};

/*
 * Create an epoll instance with close-on-exec set.  On success *ret owns
 * it; on failure *ret is NULL.  Returns 0, WITCH_ENOMEM or WITCH_ESYSTEM
 * (errno kept).  Any thread; the poller then belongs to its caller.
 */
int
witch__poller_new(struct witch__poller **ret)
{
	struct witch__poller *p = NULL;
	int saved;

	*ret = NULL;
	if ((p = witch__calloc(1, sizeof(*p))) == NULL)
		return WITCH_ENOMEM;
#ifdef HAVE_EPOLL_CREATE1
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
#else
	if ((p->epfd = epoll_create(EPOLL_BATCH)) != -1 &&
	    fcntl(p->epfd, F_SETFD, FD_CLOEXEC) == -1) {
		saved = errno;
		close(p->epfd);
		errno = saved;
		p->epfd = -1;
	}
#endif
	if (p->epfd == -1)
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
 * Close the epoll descriptor and free the poller; NULL is a no-op.  The
 * registered descriptors are not closed.  Owning thread only.
 */
void
witch__poller_free(struct witch__poller *p)
{
	if (p == NULL)
		return;
	if (p->epfd != -1)
		close(p->epfd);
	witch__free(p);
}

/*
 * Register fd once, edge-triggered, with udata as the event's data.
 * Returns 0 or WITCH_ESYSTEM (errno kept, e.g. EEXIST if already
 * registered, EBADF, EPERM for regular files).  Owning thread only.
 */
int
witch__poller_add(struct witch__poller *p, int fd, void *udata, int readonly)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
	if (!readonly)
		ev.events |= EPOLLOUT;
	ev.data.ptr = udata;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
		return WITCH_ESYSTEM;
	return 0;
}

/*
 * Unregister fd; call it before closing fd.  Returns 0 or WITCH_ESYSTEM
 * (errno kept).  Events for fd already returned by a previous wait are
 * not recalled: the caller skips them (contract rule 5).  Owning thread.
 */
int
witch__poller_del(struct witch__poller *p, int fd)
{
	struct epoll_event ev;

	/* Kernels before 2.6.9 require a non-NULL event, even for DEL. */
	memset(&ev, 0, sizeof(ev));
	if (epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, &ev) == -1)
		return WITCH_ESYSTEM;
	return 0;
}

static unsigned
map_events(uint32_t e)
{
	unsigned out = 0;

	if (e & EPOLLIN)
		out |= WITCH__POLL_IN;
	if (e & EPOLLOUT)
		out |= WITCH__POLL_OUT;
	if (e & (EPOLLRDHUP | EPOLLHUP))
		out |= WITCH__POLL_HUP;
	if (e & EPOLLERR)
		out |= WITCH__POLL_ERR;
	/* Contract rule 3: let read()/write() report the condition. */
	if (out & (WITCH__POLL_HUP | WITCH__POLL_ERR))
		out |= WITCH__POLL_IN | WITCH__POLL_OUT;
	return out;
}

/*
 * Wait up to timeout_ms (-1 forever, 0 poll) and store at most max (and
 * at most EPOLL_BATCH) events in ev; events not returned stay queued for
 * the next call.  Returns the number stored, 0 on timeout or EINTR, or
 * WITCH_ESYSTEM (errno kept; EINVAL if max < 1).  Owning thread only.
 */
int
witch__poller_wait(struct witch__poller *p, struct witch__poll_event *ev,
    int max, int timeout_ms)
{
	int i, n;

	if (max > EPOLL_BATCH)
		max = EPOLL_BATCH;
	n = epoll_wait(p->epfd, p->evs, max, timeout_ms);
	if (n == -1)
		return errno == EINTR ? 0 : WITCH_ESYSTEM;
	for (i = 0; i < n; i++) {
		ev[i].udata = p->evs[i].data.ptr;
		ev[i].events = map_events(p->evs[i].events);
	}
	return n;
}

/* The backend's name, "epoll".  Any thread. */
const char *
witch__poller_backend(void)
{
	return "epoll";
}

/*
 * The epoll descriptor; readable while events are pending.  Reactor or
 * owning thread.
 */
int
witch__poller_fd(const struct witch__poller *p)
{
	return p->epfd;
}
