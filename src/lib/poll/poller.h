/*
 * poll/poller.h: the one small poller interface (edge-triggered).
 *
 * Exactly one backend is compiled, chosen by configure: poll_epoll.c
 * (HAVE_EPOLL) or poll_kqueue.c (HAVE_KQUEUE).  A new backend is a new
 * file implementing these functions.  The contract (see
 * doc/internals/poller.md):
 *  - a descriptor is registered once, for readable and writable and
 *    peer-hangup, edge-triggered (EPOLLET / EV_CLEAR); interest is never
 *    toggled afterwards;
 *  - an event is reported when the state changes; the caller must read or
 *    write until EAGAIN (or requeue the descriptor itself) or it will not
 *    hear of it again;
 *  - error or hangup is reported as WITCH__POLL_ERR / WITCH__POLL_HUP and
 *    always together with IN and OUT, so that read()/write() report the
 *    error;
 *  - events carry the udata given at registration, never the fd;
 *  - one wait may return more than one event for the same udata (kqueue
 *    reports each filter separately: one IN, one OUT); callers OR them or
 *    handle them one by one, and skip events for udata they closed.
 * Only the owning (reactor) thread calls these.
 */
#ifndef WITCH__POLL_POLLER_H
#define WITCH__POLL_POLLER_H

#define WITCH__POLL_IN	0x01
#define WITCH__POLL_OUT	0x02
#define WITCH__POLL_HUP	0x04	/* peer closed (its write side at least) */
#define WITCH__POLL_ERR	0x08

struct witch__poller;

struct witch__poll_event {
	void		*udata;
	unsigned	 events;	/* WITCH__POLL_* */
};

/* Create a poller (close-on-exec).  0, WITCH_ENOMEM or WITCH_ESYSTEM. */
int witch__poller_new(struct witch__poller **ret);
/* Close and free; NULL is a no-op. */
void witch__poller_free(struct witch__poller *p);
/*
 * Register fd for IN|OUT|HUP, edge-triggered.  If readonly is true only IN
 * (and HUP/ERR) is watched (listeners, wakeup descriptors): OUT never comes
 * on its own, only with HUP/ERR as rule 3 says.  A registration reports the
 * state the descriptor is already in (a connected socket: OUT once).
 * 0 or WITCH_ESYSTEM (errno kept; registering fd twice fails).
 */
int witch__poller_add(struct witch__poller *p, int fd, void *udata,
    int readonly);
/* Unregister fd (before closing it).  0 or WITCH_ESYSTEM. */
int witch__poller_del(struct witch__poller *p, int fd);
/*
 * Wait up to timeout_ms (-1: forever, 0: don't block) and store up to max
 * events (a backend may store fewer per call; the rest stay queued).
 * Returns the number stored (0 on timeout or EINTR), or WITCH_ESYSTEM.
 */
int witch__poller_wait(struct witch__poller *p, struct witch__poll_event *ev,
    int max, int timeout_ms);
/*
 * The poller's own descriptor: it polls readable whenever an event is
 * pending, so it can be nested in another event loop (the client's
 * witch_client_fd()).
 */
int witch__poller_fd(const struct witch__poller *p);
/* Name of the backend ("epoll", "kqueue"). */
const char *witch__poller_backend(void);

#endif
