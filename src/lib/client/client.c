/*
 * client/client.c: the witch client (include/witch/client.h).
 *
 * One mutex guards the whole object.  The driving thread (whoever runs
 * witch_client_process(), a synchronous call, or the library's I/O thread)
 * waits on the poller without the lock, then does I/O, timers and the
 * state machine with it, collects completions and state changes, and runs
 * their callbacks after unlocking.  Other threads only queue work and
 * signal the wakeup registered in the poller.  See doc/internals/client.md.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netdb.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <witch/client.h>
#include <witch/server.h>

#include "client/client_int.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "net/sock.h"
#include "poll/poller.h"
#include "poll/wakeup.h"
#include "proto/frame.h"

/* ---- timers ---------------------------------------------------------- */

static uint64_t
next_timer_ns(const struct witch_client *c)
{
	uint64_t t = UINT64_MAX;

	if (c->hn > 0)
		t = c->heap[0]->deadline_ns;
	if (c->link_deadline_ns != 0 && c->link_deadline_ns < t)
		t = c->link_deadline_ns;
	if (c->reconnect_at_ns != 0 && c->reconnect_at_ns < t)
		t = c->reconnect_at_ns;
	return t;
}

/* Milliseconds to wait at most (lock held); -1: no timer. */
static int
timeout_ms(const struct witch_client *c)
{
	uint64_t t, now;

	if (c->done_head != NULL || c->nsev > 0 || c->io_pending)
		return 0;
	if ((t = next_timer_ns(c)) == UINT64_MAX)
		return -1;
	now = witch__now_ns();
	if (t <= now)
		return 0;
	t = (t - now + MS - 1) / MS;
	return t > INT32_MAX ? INT32_MAX : (int)t;
}


static void
run_timers(struct witch_client *c)
{
	uint64_t now = witch__now_ns();
	struct witch__creq *r;
	char msg[96];

	while (c->hn > 0 && c->heap[0]->deadline_ns <= now) {
		r = c->heap[0];
		snprintf(msg, sizeof(msg), "no reply within %u ms",
		    r->timeout_ms);
		witch__client_fail(c, r, WITCH_ETIMEOUT, 0, msg);
	}
	if (c->link_deadline_ns != 0 && c->link_deadline_ns <= now) {
		snprintf(msg, sizeof(msg), "%s not complete within %u ms",
		    c->connecting ? "connect" : "hello",
		    c->cfg.connect_timeout);
		witch__client_link_lost(c, WITCH_ETIMEOUT, 0, false, msg);
	}
	if (c->reconnect_at_ns != 0 && c->reconnect_at_ns <= now &&
	    c->state == WITCH_CLIENT_RECONNECTING)
		witch__client_start_attempt(c);
}

/* ---- one turn of the driving thread ----------------------------------- */

/*
 * Run the state callbacks, then the completion and event callbacks in
 * the order they were queued (lock released).  events: false once
 * witch_client_free() has begun (event entries are then only freed).
 */
static void
run_callbacks(struct witch_client *c, struct sev *sev, size_t nsev,
    struct witch__creq *done, bool events)
{
	struct witch__creq *r, *nx;
	size_t i;

	for (i = 0; i < nsev; i++)
		if (c->cfg.state_fn != NULL)
			c->cfg.state_fn(c, sev[i].old, sev[i].new,
			    c->cfg.state_ud);
	for (r = done; r != NULL; r = nx) {
		nx = r->dnext;
		if (r->kind == RQ_EVENT) {
			if (events && c->cfg.event_fn != NULL)
				c->cfg.event_fn(c, (const char *)r->body,
				    r->result, c->cfg.event_ud);
		} else if (r->cb == witch__client_sync_cb)
			witch__client_sync_finish(c, r);
		else if (r->cb != NULL)
			r->cb(c, r->status, r->status == 0 ? (r->result ?
			    r->result : json_null()) : NULL,
			    r->status == 0 ? NULL : &r->err, r->ud);
		witch__client_rq_free(r);
	}
}

/* Take the collected callbacks and run them with the lock released. */
static void
deliver(struct witch_client *c)
{
	struct sev sev[NSEV_MAX];
	struct witch__creq *done;
	size_t nsev;
	bool events;

	while (c->done_head != NULL || c->nsev > 0) {
		done = c->done_head;
		c->done_head = c->done_tail = NULL;
		nsev = c->nsev;
		memcpy(sev, c->sev, nsev * sizeof(sev[0]));
		c->nsev = 0;
		events = !c->freeing;
		pthread_mutex_unlock(&c->mu);
		run_callbacks(c, sev, nsev, done, events);
		pthread_mutex_lock(&c->mu);
	}
}

/*
 * One iteration: wait up to tmo ms, do I/O and timers, run callbacks.
 * Called with the lock held by the thread that holds c->driving; returns
 * with it held.
 */
static void
turn(struct witch_client *c, int tmo)
{
	struct witch__poll_event ev[NEV];
	unsigned gen;
	int t, n, i;

	t = timeout_ms(c);
	if (tmo >= 0 && (t < 0 || tmo < t))
		t = tmo;
	pthread_mutex_unlock(&c->mu);
	n = witch__poller_wait(c->poller, ev, NEV, t);
	pthread_mutex_lock(&c->mu);
	gen = c->link_gen;
	for (i = 0; i < n; i++) {
		if (ev[i].udata == &c->wk)
			witch__wakeup_clear(&c->wk);
		else if (ev[i].udata == &c->link_tag[c->sock_seq & 1] &&
		    c->fd >= 0 && c->link_gen == gen)
			witch__client_link_io(c, ev[i].events);
	}
	if (c->io_pending && c->fd >= 0 && !c->connecting)
		witch__client_link_io(c, WITCH__POLL_IN);
	run_timers(c);
	if (c->fd >= 0)
		witch__client_flush(c);
	deliver(c);
}

/* ---- driving helpers --------------------------------------------------- */

/* Take the driving role (lock held, role free). */
static void
claim(struct witch_client *c)
{
	c->driving = true;
	c->driver = pthread_self();
}

/* Give the driving role back and wake whoever waits for it. */
static void
release(struct witch_client *c)
{
	c->driving = false;
	pthread_cond_broadcast(&c->cv);
}

/* True when this thread is driving c (so it must not wait for c). */
bool
witch__client_driving_here(const struct witch_client *c)
{
	return c->driving && pthread_equal(c->driver, pthread_self());
}

/*
 * Until done(c, arg) or deadline_ns (0: none): drive the client on this
 * thread when nobody else does, else wait for whoever does.  Lock held.
 * Returns false when the deadline passed first.
 */
bool
witch__client_drive_until(struct witch_client *c,
    bool (*done)(struct witch_client *, void *), void *arg,
    uint64_t deadline_ns)
{
	struct timespec ts;
	uint64_t now;
	int slice;

	for (;;) {
		if (done(c, arg))
			return true;
		now = witch__now_ns();
		if (deadline_ns != 0 && now >= deadline_ns)
			return false;
		slice = 100;
		if (deadline_ns != 0 && (deadline_ns - now) / MS < 100)
			slice = (int)((deadline_ns - now + MS - 1) / MS);
		if (c->thread_on || c->driving) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += (long)slice * 1000000L;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&c->cv, &c->mu, &ts);
			continue;
		}
		claim(c);
		turn(c, slice);
		release(c);
	}
}

/* ---- life cycle ------------------------------------------------------- */

/*
 * Create a client (not connected).  cfg is copied (NULL: defaults).
 * 0, WITCH_EINVAL, WITCH_ENOMEM or WITCH_ESYSTEM.  Any thread.
 */
int
witch_client_new(witch_client_t **ret, const witch_client_config_t *cfg)
{
	struct witch_client *c = NULL;
	pthread_condattr_t ca;
	int rc = WITCH_ESYSTEM, mu = 0, cv = 0;

	if (ret == NULL)
		return WITCH_EINVAL;
	if ((c = witch__calloc(1, sizeof(*c))) == NULL)
		return WITCH_ENOMEM;
	if (cfg != NULL)
		c->cfg = *cfg;
	else
		witch__client_config_defaults(&c->cfg);
	c->fd = -1;
	c->state = WITCH_CLIENT_DISCONNECTED;
	atomic_init(&c->next_id, 1);
	json_object_seed(0);
	c->rng = c->cfg.seed;
	if (c->rng == 0)
		arc4random_buf(&c->rng, sizeof(c->rng));
	witch__decoder_init(&c->dec, (uint32_t)c->cfg.max_frame);
	if (pthread_mutex_init(&c->mu, NULL) != 0)
		goto fail;
	mu = 1;
	if (pthread_condattr_init(&ca) != 0)
		goto fail;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	cv = pthread_cond_init(&c->cv, &ca) == 0;
	pthread_condattr_destroy(&ca);
	if (!cv)
		goto fail;
	if ((rc = witch__poller_new(&c->poller)) != 0)
		goto fail;
	if ((rc = witch__wakeup_init(&c->wk)) != 0)
		goto fail;
	c->wk_ok = true;
	if ((rc = witch__poller_add(c->poller, c->wk.rfd, &c->wk, 1)) != 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	if (c->wk_ok)
		witch__wakeup_destroy(&c->wk);
	witch__poller_free(c->poller);
	if (cv)
		pthread_cond_destroy(&c->cv);
	if (mu)
		pthread_mutex_destroy(&c->mu);
	witch__free(c);
	return rc;
}

static bool
connect_done(struct witch_client *c, void *arg)
{
	return c->state != WITCH_CLIENT_CONNECTING &&
	    c->state != WITCH_CLIENT_RECONNECTING;
}

/*
 * Connect and complete hello within the connect timeout, driving the
 * client on this thread or waiting for its driver.  0 or the error of the
 * last attempt, with err filled.  Any thread but a callback.
 */
int
witch_client_connect(witch_client_t *c, witch_error_t *err)
{
	uint64_t deadline;
	int rc;

	if (c == NULL)
		return WITCH_EINVAL;
	pthread_mutex_lock(&c->mu);
	/* From a callback: would deadlock. */
	if (witch__client_driving_here(c)) {
		pthread_mutex_unlock(&c->mu);
		witch__client_seterr(err, WITCH_ESTATE, 0,
		    "connect from a callback");
		return WITCH_ESTATE;
	}
	if (c->state == WITCH_CLIENT_DISCONNECTED ||
	    c->state == WITCH_CLIENT_CLOSED) {
		c->attempt = 0;
		c->ever_up = false;
		witch__client_set_state(c, WITCH_CLIENT_CONNECTING);
		witch__client_start_attempt(c);
		witch__wakeup_signal(&c->wk);
	}
	deadline = witch__now_ns() + (uint64_t)c->cfg.connect_timeout * MS +
	    100 * MS;
	if (!witch__client_drive_until(c, connect_done, NULL, deadline)) {
		witch__client_seterr(err, WITCH_ETIMEOUT, 0,
		    "not connected within %u ms", c->cfg.connect_timeout);
		rc = WITCH_ETIMEOUT;
	} else if (c->state == WITCH_CLIENT_CONNECTED)
		rc = 0;
	else {
		rc = c->last_err.code ? c->last_err.code : WITCH_ECONNECTION;
		if (err != NULL) {
			*err = c->last_err;
			err->code = rc;
		}
	}
	if (!c->driving && !c->thread_on && (c->done_head || c->nsev)) {
		claim(c);
		deliver(c);
		release(c);
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/*
 * Close the link for good (state CLOSED); every request fails with
 * WITCH_ECONNECTION.  Callbacks run on the driving thread, or on this one
 * when nobody drives.  Any thread but a callback.
 */
void
witch_client_disconnect(witch_client_t *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	if (c->state != WITCH_CLIENT_CLOSED) {
		witch__client_set_state(c, WITCH_CLIENT_CLOSED);
		witch__client_link_lost(c, WITCH_ECONNECTION, 0, false,
		    "disconnected");
		witch__client_fail_queued(c, WITCH_ECONNECTION, "disconnected");
		c->reconnect_at_ns = 0;
	}
	if (!c->driving && !c->thread_on) {
		claim(c);
		deliver(c);
		release(c);
	} else
		witch__wakeup_signal(&c->wk);
	pthread_mutex_unlock(&c->mu);
}

static void
stop_thread(struct witch_client *c)
{
	pthread_t t;

	pthread_mutex_lock(&c->mu);
	if (!c->thread_on) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	c->thread_stop = true;
	t = c->thread;
	pthread_mutex_unlock(&c->mu);
	witch__wakeup_signal(&c->wk);
	pthread_join(t, NULL);
	pthread_mutex_lock(&c->mu);
	c->thread_on = false;
	c->thread_stop = false;
	pthread_mutex_unlock(&c->mu);
}

/*
 * Stop the I/O thread, fail every request with WITCH_ECONNECTION (their
 * callbacks run here), drop the events not delivered yet, free.  Must
 * not race with any other call.
 */
void
witch_client_free(witch_client_t *c)
{
	if (c == NULL)
		return;
	stop_thread(c);
	pthread_mutex_lock(&c->mu);
	c->freeing = true;	/* events not delivered yet are dropped */
	pthread_mutex_unlock(&c->mu);
	witch_client_disconnect(c);
	pthread_mutex_lock(&c->mu);
	claim(c);
	deliver(c);
	pthread_mutex_unlock(&c->mu);
	witch__decoder_clear(&c->dec);
	witch__poller_del(c->poller, c->wk.rfd);
	witch__wakeup_destroy(&c->wk);
	witch__poller_free(c->poller);
	json_decref(c->info);
	witch__free(c->map);
	witch__free(c->heap);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	witch__free(c);
}

/* Current state.  Any thread. */
enum witch_client_state
witch_client_state(witch_client_t *c)
{
	enum witch_client_state s;

	if (c == NULL)
		return WITCH_CLIENT_CLOSED;
	pthread_mutex_lock(&c->mu);
	s = c->state;
	pthread_mutex_unlock(&c->mu);
	return s;
}

/*
 * The last hello reply: a new reference the caller must json_decref()
 * (NULL unless connected).  Any thread.
 */
json_t *
witch_client_server_info(witch_client_t *c)
{
	json_t *i;

	if (c == NULL)
		return NULL;
	pthread_mutex_lock(&c->mu);
	i = c->state == WITCH_CLIENT_CONNECTED ? json_incref(c->info) : NULL;
	pthread_mutex_unlock(&c->mu);
	return i;
}

/* ---- driving ------------------------------------------------------------ */

static void *
io_thread(void *arg)
{
	struct witch_client *c = arg;

	pthread_mutex_lock(&c->mu);
	while (!c->thread_stop) {
		if (c->driving) {
			pthread_cond_wait(&c->cv, &c->mu);
			continue;
		}
		claim(c);
		turn(c, 1000);
		release(c);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/*
 * Start the I/O thread (idempotent).  0, WITCH_ESYSTEM, or WITCH_ESTATE
 * from a callback that witch_client_free() runs (free has joined the
 * thread already and would never join a new one).  Any thread.
 */
int
witch_client_start_thread(witch_client_t *c)
{
	int rc = 0;

	if (c == NULL)
		return WITCH_EINVAL;
	pthread_mutex_lock(&c->mu);
	if (c->freeing)
		rc = WITCH_ESTATE;
	else if (!c->thread_on) {
		c->thread_stop = false;
		if (pthread_create(&c->thread, NULL, io_thread, c) != 0)
			rc = WITCH_ESYSTEM;
		else
			c->thread_on = true;
	}
	pthread_mutex_unlock(&c->mu);
	witch__wakeup_signal(&c->wk);
	return rc;
}

/* The poller's descriptor (stable).  Any thread. */
int
witch_client_fd(witch_client_t *c)
{
	return c == NULL ? -1 : witch__poller_fd(c->poller);
}

/* Milliseconds until witch_client_process() must run (-1: none). */
int
witch_client_timeout(witch_client_t *c)
{
	int t;

	if (c == NULL)
		return -1;
	pthread_mutex_lock(&c->mu);
	t = timeout_ms(c);
	pthread_mutex_unlock(&c->mu);
	return t;
}

/*
 * One turn: wait up to timeout_ms, do I/O, timers and callbacks on this
 * thread.  0, or WITCH_ESTATE when the I/O thread or another thread is
 * driving the client (or when called from one of its callbacks).
 */
int
witch_client_process(witch_client_t *c, int timeout_ms)
{
	if (c == NULL)
		return WITCH_EINVAL;
	pthread_mutex_lock(&c->mu);
	if (c->thread_on || c->driving) {
		pthread_mutex_unlock(&c->mu);
		return WITCH_ESTATE;
	}
	claim(c);
	turn(c, timeout_ms);
	release(c);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

/* Replies that matched no request.  Any thread. */
uint64_t
witch_client_unknown_replies(witch_client_t *c)
{
	uint64_t n;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&c->mu);
	n = c->unknown;
	pthread_mutex_unlock(&c->mu);
	return n;
}
