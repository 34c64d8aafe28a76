/*
 * reactor/loop.c: the reactor thread.  It owns every socket: it
 * accepts, reads until EAGAIN (or a per-turn budget), decodes frames,
 * parses requests, answers the cheap connection-level built-ins inline,
 * hands everything else to the worker pool in one batch per turn, and
 * drains the per-connection output queues with batched writes.
 *
 * One turn of the loop:
 *   1. wait for events (timeout 0 when work is carried over, else the
 *      housekeeping tick);
 *   2. handle events: wakeup, acceptors, connections;
 *   3. the ready list: connections whose workers queued replies;
 *   4. the turn list: connections carried over (read budget spent,
 *      inline replies to flush, reading resumed);
 *   5. submit the batch of parsed requests to the pool;
 *   6. housekeeping when the tick is due: timeouts, deadlines, accept;
 *   7. reap: drop the reactor's reference of connections closed this turn.
 * The other jobs live beside it: conn.c (connection I/O and the close
 * sequence), accept.c, route.c (routing and dispatch), job.c (jobs and
 * replies), builtins.c (the connection built-ins).  See
 * doc/internals/reactor.md and doc/internals/architecture.md.
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "net/sock.h"
#include "reactor/reactor.h"

#define MAX_EVENTS 256

void
witch__reactor_init(struct witch__reactor *r, struct witch_server *owner)
{
	r->owner = owner;
	r->reserve_fd = -1;
	r->wakeup.rfd = r->wakeup.wfd = -1;
	atomic_init(&r->phase, WITCH__PHASE_NEW);
	atomic_init(&r->ready, NULL);
	atomic_init(&r->asleep, false);
	pthread_mutex_init(&r->mail_mtx, NULL);
	witch__freelist_init(&r->jobs, sizeof(struct witch__reqjob) +
	    WITCH__JOB_DATA_SMALL, WITCH__JOB_CACHE);
	witch__blkcache_init(&r->obufs, WITCH__OBUF_BLOCK);
}

int
witch__reactor_prepare(struct witch__reactor *r, char *why, size_t whylen)
{
	size_t i;

	r->batch_cap = 256;
	r->batch = witch__calloc(r->batch_cap, sizeof(*r->batch));
	r->scratch = witch__malloc(WITCH__SCRATCH);
	if (r->batch == NULL || r->scratch == NULL) {
		strlcpy(why, "out of memory", whylen);
		return WITCH_ENOMEM;
	}
	r->reserve_fd = witch__sock_reserve_fd();
	if (witch__poller_new(&r->poller) != 0 ||
	    witch__wakeup_init(&r->wakeup) != 0) {
		r->wakeup.rfd = r->wakeup.wfd = -1;
		snprintf(why, whylen, "poller: %s", strerror(errno));
		return WITCH_ESYSTEM;
	}
	if (witch__poller_add(r->poller, r->wakeup.rfd, &r->wakeup, 1) != 0) {
		snprintf(why, whylen, "poller: %s", strerror(errno));
		return WITCH_ESYSTEM;
	}
	for (i = 0; i < r->nacc; i++) {
		if (witch__poller_add(r->poller, r->acc[i].fd, &r->acc[i],
		    1) != 0) {
			snprintf(why, whylen, "poller: %s", strerror(errno));
			return WITCH_ESYSTEM;
		}
	}
	r->next_conn_id = 1;
	return 0;
}

void
witch__reactor_teardown(struct witch__reactor *r)
{
	witch__acceptors_close(r);
	if (r->reserve_fd >= 0) {
		close(r->reserve_fd);
		r->reserve_fd = -1;
	}
	/* Before the wakeup goes: no post signals it after (mail.c). */
	witch__mail_clear(r);
	if (r->wakeup.rfd >= 0)
		witch__wakeup_destroy(&r->wakeup);
	r->wakeup.rfd = r->wakeup.wfd = -1;
	witch__poller_free(r->poller);
	r->poller = NULL;
	witch__free(r->scratch);
	r->scratch = NULL;
	witch__free(r->batch);
	r->batch = NULL;
	r->nbatch = r->batch_cap = 0;
	/* Workers and reactor are gone: nobody can give a job back now. */
	witch__freelist_destroy(&r->jobs);
	witch__blkcache_destroy(&r->obufs);
}

/* ---- the loop --------------------------------------------------------- */

static void
handle_event(struct witch__reactor *r, struct witch__poll_event *ev)
{
	struct witch__conn *c;

	if (ev->udata == &r->wakeup) {
		witch__wakeup_clear(&r->wakeup);
		return;
	}
	if (*(const enum witch__ev_kind *)ev->udata == WITCH__EV_ACCEPTOR) {
		witch__accept(r, ev->udata);
		return;
	}
	c = ev->udata;
	if (c->fd < 0)
		return;			/* closed earlier this turn */
	if (ev->events & (WITCH__POLL_HUP | WITCH__POLL_ERR))
		c->rdhup = true;
	if (ev->events & WITCH__POLL_OUT)
		c->writable = true;
	if (ev->events & WITCH__POLL_IN)
		witch__conn_read(c);
	/*
	 * A connection on the turn list (replies built this turn, more to
	 * read, or closing) is flushed and settled at the turn's end
	 * (process_turn), with every other connection read in this turn:
	 * the turn's replies leave in one burst, as a client waiting on
	 * many connections wants them (it wakes once for all of them, not
	 * once per connection; Redis writes at the end of its loop
	 * iteration too).  Not settled before that flush either: its
	 * output limits must count the replies still in c->obuf.
	 *
	 * Except replies that outgrew their 4 KiB block (big replies):
	 * written now, so that their buffer goes back to the allocator
	 * for the next connection's instead of a turn's worth of big
	 * buffers being alive at once, which glibc then hands back to
	 * the kernel and faults in again every turn (4 KiB echoes, c=50
	 * P=16: 0.2 x Redis that way).  Big replies make few writes
	 * anyway; the burst is for small ones.
	 */
	if (c->on_turn && c->obuf.cap <= WITCH__OBUF_BLOCK)
		return;
	if (c->fd >= 0 && witch__conn_output_pending(c))
		witch__conn_flush(c);
	witch__conn_settle(c);
}

/* Connections with replies from workers. */
static void
process_ready(struct witch__reactor *r)
{
	struct witch__conn *c, *next;

	c = atomic_exchange_explicit(&r->ready, NULL, memory_order_acquire);
	for (; c != NULL; c = next) {
		next = c->ready_next;
		/* Clear before taking: see the argument in conn.c. */
		atomic_exchange_explicit(&c->scheduled, false,
		    memory_order_acq_rel);
		if (c->fd >= 0) {
			witch__conn_flush(c);
			witch__conn_settle(c);
		}
		witch__conn_unref(c);
	}
}

/*
 * The turn's end: flush the connections with replies built this turn,
 * continue reading those with more to read, move closing ones on.
 */
static void
process_turn(struct witch__reactor *r)
{
	struct witch__conn *c, *next;

	c = r->turn;
	r->turn = NULL;
	for (; c != NULL; c = next) {
		next = c->turn_next;
		c->on_turn = false;
		if (c->fd >= 0 && c->want_read && !c->read_paused) {
			/*
			 * The replies to the last read go before the next
			 * read's: c->obuf never holds more than one read
			 * budget's replies, and the output limits see them.
			 */
			witch__conn_flush(c);
			witch__conn_settle(c);
			if (c->fd >= 0 && c->want_read && !c->read_paused)
				witch__conn_read(c);
		}
		if (c->fd >= 0) {
			witch__conn_flush(c);
			witch__conn_settle(c);
		}
		witch__conn_unref(c);
	}
}

/* Timeouts and deadlines, every WITCH__TICK_MS. */
static void
housekeeping(struct witch__reactor *r)
{
	struct witch__conn *c, *next;
	uint64_t now = r->now_ns;
	uint64_t hs = (uint64_t)atomic_load(&r->live.handshake_ms) * 1000000u;
	uint64_t idle = (uint64_t)atomic_load(&r->live.idle_ms) * 1000000u;
	uint64_t ft = (uint64_t)atomic_load(&r->live.frame_ms) * 1000000u;

	r->next_tick_ns = now + (uint64_t)WITCH__TICK_MS * 1000000u;
	witch__blkcache_trim(&r->obufs);
	if (r->pool != NULL)
		witch__pool_expire(r->pool, now);
	for (c = r->conns; c != NULL; c = next) {
		next = c->next;
		switch (c->state) {
		case WITCH__CONN_OPEN:
			if (hs && !c->got_frame && now - c->created_ns >= hs)
				witch__conn_close(c, 0, "handshake_timeout",
				    1000);
			else if (ft && c->frame_since_ns != 0 &&
			    now - c->frame_since_ns >= ft)
				witch__conn_frame_expired(c);
			else if (idle && now - c->active_ns >= idle &&
			    atomic_load(&c->inflight) == 0 &&
			    c->out_head == NULL)
				witch__conn_close(c, 0, "idle_timeout", 1000);
			break;
		case WITCH__CONN_CLOSING:
		case WITCH__CONN_LINGER:
			if (now >= c->deadline_ns)
				witch__conn_drop(c,
				    c->state == WITCH__CONN_LINGER ?
				    "linger timeout" : "close timeout");
			break;
		default:
			break;
		}
	}
	if (r->accept_paused)
		witch__accept_resume(r);
}

/* Drop the reactor's reference of every connection closed this turn. */
static void
reap(struct witch__reactor *r)
{
	struct witch__conn *c, *next;

	for (c = r->dead; c != NULL; c = next) {
		next = c->dead_next;
		witch__conn_unref(c);
	}
	r->dead = NULL;
}

/* Phase changes requested by witch_server_stop(). */
static bool
phase_step(struct witch__reactor *r)
{
	struct witch__conn *c, *next;
	int phase = atomic_load(&r->phase);

	if (phase >= WITCH__PHASE_DRAINING && r->nacc > 0)
		witch__acceptors_close(r);
	if (phase < WITCH__PHASE_CLOSING)
		return true;
	if (r->closing_deadline_ns == 0) {
		r->closing_deadline_ns = r->now_ns + 2000000000u;
		for (c = r->conns; c != NULL; c = next) {
			next = c->next;
			witch__conn_close(c, 0, "shutdown", 1000);
		}
	}
	if (r->nconns == 0)
		return false;
	if (r->now_ns >= r->closing_deadline_ns) {
		for (c = r->conns; c != NULL; c = next) {
			next = c->next;
			witch__conn_drop(c, "server stopped");
		}
		return false;
	}
	return true;
}

/* ---- waiting for events ---------------------------------------------- */

/* Longest pause after failed waits in a row (doubling from 1 ms). */
#define POLL_BACKOFF_MAX_MS 1024

/* Test hook (witch__reactor_fail_waits): waits left to fail, and how. */
static atomic_long poll_fail_left;
static atomic_int poll_fail_errno;

/*
 * Test hook: the next n waits of every reactor fail as if the poller had
 * returned an error with errno err (0 disables).  Returns the countdown
 * it replaces (waits that were still to fail).  Any thread.
 */
long
witch__reactor_fail_waits(long n, int err)
{
	atomic_store(&poll_fail_errno, err);
	return atomic_exchange(&poll_fail_left, n < 0 ? 0 : n);
}

static bool
poll_fail_injected(void)
{
	long v = atomic_load_explicit(&poll_fail_left, memory_order_relaxed);

	while (v > 0)
		if (atomic_compare_exchange_weak_explicit(&poll_fail_left, &v,
		    v - 1, memory_order_relaxed, memory_order_relaxed)) {
			errno = atomic_load(&poll_fail_errno);
			return true;
		}
	return false;
}

/*
 * Wait for events.  A failed wait (the backend already turns EINTR into
 * 0 events) is never a busy loop: it is counted (poll_errors), logged at
 * the 1st, 2nd, 4th, 8th... failure in a row, and the reactor pauses 1
 * ms, doubling with each failure in a row up to POLL_BACKOFF_MAX_MS, then
 * goes on with its turn (replies from workers, timers, shutdown) as if no
 * event had come.  *fails counts the failures in a row.  Returns the
 * events stored in ev.
 */
static int
poll_wait(struct witch__reactor *r, struct witch__poll_event *ev,
    int timeout, unsigned *fails)
{
	struct timespec ts;
	unsigned ms;
	int n;

	if (poll_fail_injected())
		n = WITCH_ESYSTEM;
	else
		n = witch__poller_wait(r->poller, ev, MAX_EVENTS, timeout);
	if (n >= 0) {
		*fails = 0;
		return n;
	}
	atomic_fetch_add(&r->ctr.poll_errors, 1);
	ms = *fails >= 10 ? POLL_BACKOFF_MAX_MS : 1u << *fails;
	if ((*fails & (*fails + 1)) == 0)
		witch__rlog(r, WITCH_LOG_ERR, "reactor: waiting for events "
		    "failed (%u in a row): %s; pausing %u ms", *fails + 1,
		    strerror(errno), ms);
	if (*fails < UINT_MAX)
		(*fails)++;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
	return 0;
}

void *
witch__reactor_main(void *arg)
{
	struct witch__reactor *r = arg;
	struct witch__poll_event ev[MAX_EVENTS];
	struct witch__conn *c;
	unsigned poll_fails = 0;
	int i, n, timeout;

	r->now_ns = witch__now_ns();
	r->next_tick_ns = r->now_ns + (uint64_t)WITCH__TICK_MS * 1000000u;
	for (;;) {
		if (!phase_step(r))
			break;
		if (r->turn != NULL || r->accept_retry)
			timeout = 0;
		else if (r->now_ns >= r->next_tick_ns)
			timeout = 0;
		else
			timeout = (int)((r->next_tick_ns - r->now_ns) /
			    1000000u) + 1;
		n = poll_wait(r, ev, timeout, &poll_fails);
		atomic_store_explicit(&r->asleep, false, memory_order_relaxed);
		r->now_ns = witch__now_ns();
		for (i = 0; i < n; i++)
			handle_event(r, &ev[i]);
		witch__mail_deliver(r);
		process_ready(r);
		process_turn(r);
		/*
		 * Nothing carried over: this turn writes nothing more and the
		 * next wait blocks.  Said before the jobs go to the workers,
		 * so that a worker answering one of them already counts the
		 * reactor asleep and writes the reply itself.
		 */
		if (r->turn == NULL && !r->accept_retry)
			atomic_store_explicit(&r->asleep, true,
			    memory_order_relaxed);
		witch__batch_submit(r);
		if (r->accept_retry)
			witch__accept_resume(r);
		if (r->now_ns >= r->next_tick_ns)
			housekeeping(r);
		reap(r);
	}
	/* Anything still open is closed now; replies left are dropped. */
	while ((c = r->conns) != NULL)
		witch__conn_drop(c, "server stopped");
	process_ready(r);
	reap(r);
	while (r->turn != NULL)
		process_turn(r);
	return NULL;
}
