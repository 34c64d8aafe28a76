/*
 * tests/kqueue/sys/event.h: the declarations of kqueue(2) that
 * src/lib/poll/poll_kqueue.c uses, written from the kqueue(2) manual of
 * FreeBSD and OpenBSD.  Used only by tests/check-kqueue.sh, which compiles
 * the kqueue backend with -fsyntax-only on systems without kqueue so that
 * a type or name error in it fails `make check`.  Never installed, never
 * linked: the values are the BSDs' but nothing here runs.
 */
#ifndef WITCH_TEST_SYS_EVENT_H
#define WITCH_TEST_SYS_EVENT_H

#include <stdint.h>
#include <time.h>

struct kevent {
	uintptr_t	 ident;		/* identifier for this event */
	short		 filter;	/* filter for event */
	unsigned short	 flags;		/* action flags for kqueue */
	unsigned int	 fflags;	/* filter flag value */
	int64_t		 data;		/* filter data value */
	void		*udata;		/* opaque user data identifier */
};

#define EV_SET(kevp, a, b, c, d, e, f) do {	\
	struct kevent *__kevp = (kevp);		\
	__kevp->ident = (a);			\
	__kevp->filter = (b);			\
	__kevp->flags = (c);			\
	__kevp->fflags = (d);			\
	__kevp->data = (e);			\
	__kevp->udata = (f);			\
} while (0)

/* filters */
#define EVFILT_READ	(-1)
#define EVFILT_WRITE	(-2)

/* actions */
#define EV_ADD		0x0001
#define EV_DELETE	0x0002
#define EV_ENABLE	0x0004
#define EV_DISABLE	0x0008

/* flags */
#define EV_ONESHOT	0x0010
#define EV_CLEAR	0x0020

/* returned values */
#define EV_ERROR	0x4000
#define EV_EOF		0x8000

int	kqueue(void);
int	kqueue1(int);
int	kevent(int, const struct kevent *, int, struct kevent *, int,
	    const struct timespec *);

#endif /* WITCH_TEST_SYS_EVENT_H */
