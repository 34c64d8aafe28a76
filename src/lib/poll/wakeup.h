/*
 * poll/wakeup.h: cross-thread wakeup of the reactor, coalesced.
 *
 * eventfd on Linux (HAVE_EVENTFD), a non-blocking pipe elsewhere.  Any
 * number of witch__wakeup_signal() calls between two
 * witch__wakeup_clear() calls cost at most one write(2): a "pending" flag
 * (exchange acq_rel) decides who writes.
 */
#ifndef WITCH__POLL_WAKEUP_H
#define WITCH__POLL_WAKEUP_H

#include <stdatomic.h>
#include <stdbool.h>

struct witch__wakeup {
	int		rfd;	/* register this one with the poller */
	int		wfd;	/* == rfd for eventfd */
	atomic_bool	pending;
};

/* 0 or WITCH_ESYSTEM. */
int witch__wakeup_init(struct witch__wakeup *w);
void witch__wakeup_destroy(struct witch__wakeup *w);
/* Any thread: make the reactor's poller report rfd readable. */
void witch__wakeup_signal(struct witch__wakeup *w);
/*
 * Reactor only, when rfd was reported readable: consume the signal and
 * clear pending, in that order (draining after clearing loses wakeups; see
 * wakeup.c).  Work published before a signal is visible after this, so
 * the reactor must look for work only after this returns.
 */
void witch__wakeup_clear(struct witch__wakeup *w);

#endif
