/*
 * tests/unit/test_poller.c: the edge-triggered poller contract
 * (poll/poller.h), exercised over socketpairs, pipes and a TCP listener.
 * Every wait that expects an event either polls (timeout 0) for one that
 * is already queued or blocks with a generous bound and asserts it came.
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <witch/error.h>

#include "core/alloc.h"
#include "poll/poller.h"

#define IN	WITCH__POLL_IN
#define OUT	WITCH__POLL_OUT
#define HUP	WITCH__POLL_HUP
#define ERR	WITCH__POLL_ERR

/* Bound for waits that must see an event that is on its way. */
#define BOUND_MS	10000

struct conn {
	int	id;
	int	fd;	/* registered end */
	int	peer;	/* the other end */
};

static struct witch__poller *
poller(void)
{
	struct witch__poller *p = NULL;

	assert_int_equal(witch__poller_new(&p), 0);
	assert_non_null(p);
	return p;
}

static void
pair(struct conn *c, int id)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	c->id = id;
	c->fd = sv[0];
	c->peer = sv[1];
}

static void
unpair(struct conn *c)
{
	if (c->fd != -1)
		close(c->fd);
	if (c->peer != -1)
		close(c->peer);
	c->fd = c->peer = -1;
}

static void
put(int fd, const char *s)
{
	size_t n = strlen(s);

	assert_int_equal(write(fd, s, n), (ssize_t)n);
}

/* Poll without blocking; assert nothing is queued. */
static void
assert_quiet(struct witch__poller *p)
{
	struct witch__poll_event ev[8];

	assert_int_equal(witch__poller_wait(p, ev, 8, 0), 0);
}

/* Poll without blocking; assert exactly one event, for c; return its bits. */
static unsigned
one_event(struct witch__poller *p, struct conn *c, int timeout_ms)
{
	struct witch__poll_event ev[8];

	assert_int_equal(witch__poller_wait(p, ev, 8, timeout_ms), 1);
	assert_ptr_equal(ev[0].udata, c);
	return ev[0].events;
}

static void
test_backend(void **state)
{
	(void)state;
#ifdef HAVE_EPOLL
	assert_string_equal(witch__poller_backend(), "epoll");
#else
	assert_string_equal(witch__poller_backend(), "kqueue");
#endif
}

static void
test_new_free(void **state)
{
	struct witch__poller *p = (struct witch__poller *)&p;

	(void)state;
	witch__poller_free(NULL);
	witch__alloc_fail_after(1);
	assert_int_equal(witch__poller_new(&p), WITCH_ENOMEM);
	assert_null(p);
	witch__alloc_fail_after(0);
	p = poller();
	witch__poller_free(p);
}

static void
test_add_errors(void **state)
{
	struct witch__poller *p = poller();
	struct conn c;

	(void)state;
	errno = 0;
	assert_int_equal(witch__poller_add(p, -1, NULL, 0), WITCH_ESYSTEM);
	assert_int_equal(errno, EBADF);
	pair(&c, 1);
	assert_int_equal(witch__poller_add(p, c.fd, &c, 0), 0);
	/* Registered once: a second add is refused, not silently merged. */
	assert_int_equal(witch__poller_add(p, c.fd, &c, 0), WITCH_ESYSTEM);
	assert_int_equal(witch__poller_del(p, c.fd), 0);
	assert_int_equal(witch__poller_del(p, c.fd), WITCH_ESYSTEM);
	unpair(&c);
	witch__poller_free(p);
}

/* A fresh connected socket is writable: OUT once, then silence. */
static void
test_out_once(void **state)
{
	struct witch__poller *p = poller();
	struct conn c;

	(void)state;
	pair(&c, 1);
	assert_int_equal(witch__poller_add(p, c.fd, &c, 0), 0);
	assert_int_equal(one_event(p, &c, 0), OUT);
	assert_quiet(p);
	assert_quiet(p);
	unpair(&c);
	witch__poller_free(p);
}

/*
 * Data arrives: IN once.  Reading only part of it and waiting again gives
 * nothing (edge-triggered); new data gives a new edge.
 */
static void
test_in_edge(void **state)
{
	struct witch__poller *p = poller();
	struct conn c;
	unsigned e;
	char buf[64];

	(void)state;
	pair(&c, 1);
	assert_int_equal(witch__poller_add(p, c.fd, &c, 0), 0);
	assert_int_equal(one_event(p, &c, 0), OUT);

	put(c.peer, "0123456789");
	e = one_event(p, &c, BOUND_MS);
	assert_true(e & IN);
	assert_false(e & (HUP | ERR));
	assert_quiet(p);

	/* Read 1 of 10 bytes: still readable, but no new edge. */
	assert_int_equal(read(c.fd, buf, 1), 1);
	assert_quiet(p);
	assert_quiet(p);

	/* More data: a new edge. */
	put(c.peer, "abc");
	e = one_event(p, &c, BOUND_MS);
	assert_true(e & IN);
	assert_quiet(p);

	/* Everything is still there: the poller never consumed data. */
	assert_int_equal(read(c.fd, buf, sizeof(buf)), 12);
	assert_int_equal(read(c.fd, buf, sizeof(buf)), -1);
	assert_int_equal(errno, EAGAIN);
	unpair(&c);
	witch__poller_free(p);
}

/* Peer close: HUP, together with IN and OUT; read() then returns 0. */
static void
test_peer_close(void **state)
{
	struct witch__poller *p = poller();
	struct conn c;
	unsigned e;
	char buf[8];

	(void)state;
	pair(&c, 1);
	assert_int_equal(witch__poller_add(p, c.fd, &c, 0), 0);
	assert_int_equal(one_event(p, &c, 0), OUT);
	close(c.peer);
	c.peer = -1;
	e = one_event(p, &c, BOUND_MS);
	assert_true(e & HUP);
	assert_true(e & IN);
	assert_true(e & OUT);
	assert_int_equal(read(c.fd, buf, sizeof(buf)), 0);
	unpair(&c);
	witch__poller_free(p);
}

/* Half close (shutdown SHUT_WR by the peer) is HUP too. */
static void
test_peer_shutdown(void **state)
{
	struct witch__poller *p = poller();
	struct conn c;
	unsigned e;
	char buf[8];

	(void)state;
	pair(&c, 1);
	assert_int_equal(witch__poller_add(p, c.fd, &c, 0), 0);
	assert_int_equal(one_event(p, &c, 0), OUT);
	put(c.peer, "x");
	assert_int_equal(shutdown(c.peer, SHUT_WR), 0);
	e = one_event(p, &c, BOUND_MS);
	assert_true(e & HUP);
	assert_true(e & IN);
	assert_true(e & OUT);
	/* Data first, then end of file. */
	assert_int_equal(read(c.fd, buf, sizeof(buf)), 1);
	assert_int_equal(read(c.fd, buf, sizeof(buf)), 0);
	unpair(&c);
	witch__poller_free(p);
}

/* Error on a TCP connection reset by the peer: ERR with IN and OUT. */
static void
test_reset_err(void **state)
{
	struct witch__poller *p = poller();
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct linger lg = { 1, 0 };
	struct conn c;
	int lfd, cfd, afd;
	unsigned e;
	char buf[8];

	(void)state;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((lfd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	assert_true((cfd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	assert_true((afd = accept(lfd, NULL, NULL)) >= 0);
	c.id = 1;
	c.fd = cfd;
	c.peer = -1;
	assert_int_equal(witch__poller_add(p, cfd, &c, 0), 0);
	assert_int_equal(one_event(p, &c, 0), OUT);
	/* Abortive close: the peer sends RST. */
	assert_int_equal(setsockopt(afd, SOL_SOCKET, SO_LINGER, &lg,
	    sizeof(lg)), 0);
	close(afd);
	e = one_event(p, &c, BOUND_MS);
	assert_true(e & ERR);
	assert_true(e & IN);
	assert_true(e & OUT);
	assert_int_equal(read(cfd, buf, sizeof(buf)), -1);
	assert_int_equal(errno, ECONNRESET);
	close(cfd);
	close(lfd);
	witch__poller_free(p);
}

/* udata comes back as the same pointer, for each of several fds. */
static void
test_udata(void **state)
{
	struct witch__poller *p = poller();
	struct witch__poll_event ev[8];
	struct conn c[3];
	int i, n, seen[3] = { 0, 0, 0 };

	(void)state;
	for (i = 0; i < 3; i++) {
		pair(&c[i], i);
		assert_int_equal(witch__poller_add(p, c[i].fd, &c[i], 0), 0);
	}
	n = witch__poller_wait(p, ev, 8, 0);
	assert_int_equal(n, 3);
	for (i = 0; i < n; i++) {
		struct conn *x = ev[i].udata;

		assert_true(x == &c[0] || x == &c[1] || x == &c[2]);
		assert_int_equal(ev[i].events, OUT);
		seen[x->id]++;
	}
	assert_int_equal(seen[0] + seen[1] + seen[2], 3);
	assert_true(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);

	put(c[1].peer, "z");
	assert_int_equal(witch__poller_wait(p, ev, 8, BOUND_MS), 1);
	assert_ptr_equal(ev[0].udata, &c[1]);
	for (i = 0; i < 3; i++)
		unpair(&c[i]);
	witch__poller_free(p);
}

/* After del nothing is reported for the descriptor. */
static void
test_del(void **state)
{
	struct witch__poller *p = poller();
	struct conn c, d;

	(void)state;
	pair(&c, 1);
	pair(&d, 2);
	assert_int_equal(witch__poller_add(p, c.fd, &c, 0), 0);
	assert_int_equal(witch__poller_add(p, d.fd, &d, 0), 0);
	assert_int_equal(witch__poller_del(p, c.fd), 0);
	/* Only d's registration edge remains. */
	assert_int_equal(one_event(p, &d, 0), OUT);
	put(c.peer, "x");
	close(c.peer);
	c.peer = -1;
	/* d proves the poller still works; c stays silent. */
	put(d.peer, "y");
	assert_true(one_event(p, &d, BOUND_MS) & IN);
	assert_quiet(p);
	unpair(&c);
	unpair(&d);
	witch__poller_free(p);
}

/* A readonly registration never reports OUT on its own. */
static void
test_readonly(void **state)
{
	struct witch__poller *p = poller();
	struct conn c;

	(void)state;
	pair(&c, 1);
	assert_int_equal(witch__poller_add(p, c.fd, &c, 1), 0);
	/* Writable, but nobody asked: no registration event. */
	assert_quiet(p);
	put(c.peer, "x");
	assert_int_equal(one_event(p, &c, BOUND_MS), IN);
	assert_quiet(p);
	/* del works for a readonly registration too. */
	assert_int_equal(witch__poller_del(p, c.fd), 0);
	put(c.peer, "y");
	assert_quiet(p);
	unpair(&c);
	witch__poller_free(p);
}

/* Pipes: the read end readonly, the write end for OUT. */
static void
test_pipe(void **state)
{
	struct witch__poller *p = poller();
	struct conn r, w;
	int fds[2];
	char buf[8];

	(void)state;
	assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	r.fd = fds[0];
	w.fd = fds[1];
	r.peer = w.peer = -1;
	assert_int_equal(witch__poller_add(p, r.fd, &r, 1), 0);
	assert_int_equal(witch__poller_add(p, w.fd, &w, 0), 0);
	assert_int_equal(one_event(p, &w, 0), OUT);
	put(w.fd, "ab");
	assert_int_equal(one_event(p, &r, BOUND_MS), IN);
	assert_int_equal(read(r.fd, buf, sizeof(buf)), 2);
	assert_int_equal(witch__poller_del(p, w.fd), 0);
	close(w.fd);
	/* Writer gone: HUP with IN and OUT (rule 3); read() says EOF. */
	assert_int_equal(one_event(p, &r, BOUND_MS), HUP | IN | OUT);
	assert_int_equal(read(r.fd, buf, sizeof(buf)), 0);
	close(r.fd);
	witch__poller_free(p);
}

static void
test_timeout_zero(void **state)
{
	struct witch__poller *p = poller();
	struct witch__poll_event ev[4];
	struct conn c;

	(void)state;
	/* Nothing registered. */
	assert_int_equal(witch__poller_wait(p, ev, 4, 0), 0);
	/* Registered but idle (readonly: no registration edge). */
	pair(&c, 1);
	assert_int_equal(witch__poller_add(p, c.fd, &c, 1), 0);
	assert_int_equal(witch__poller_wait(p, ev, 4, 0), 0);
	/* A short positive timeout expires with 0 too. */
	assert_int_equal(witch__poller_wait(p, ev, 4, 1), 0);
	unpair(&c);
	witch__poller_free(p);
}

static atomic_bool sig_stop;
static atomic_int sig_seen;

static void
on_sigusr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&sig_seen, 1);
}

static void *
kicker(void *arg)
{
	pthread_t target = *(pthread_t *)arg;

	while (!atomic_load(&sig_stop)) {
		pthread_kill(target, SIGUSR1);
		usleep(1000);
	}
	return NULL;
}

/* A signal interrupting a blocking wait gives 0, not an error. */
static void
test_eintr(void **state)
{
	struct witch__poller *p = poller();
	struct witch__poll_event ev[4];
	struct sigaction sa, old;
	pthread_t self = pthread_self(), t;
	int n;

	(void)state;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr1;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	atomic_store(&sig_stop, false);
	assert_int_equal(pthread_create(&t, NULL, kicker, &self), 0);
	/* Nothing registered: only a signal can end this wait. */
	n = witch__poller_wait(p, ev, 4, -1);
	atomic_store(&sig_stop, true);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(n, 0);
	assert_true(atomic_load(&sig_seen) > 0);
	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
	witch__poller_free(p);
}

/* A listener (readonly, ET) reports IN for a pending connection. */
static void
test_listener(void **state)
{
	struct witch__poller *p = poller();
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct conn l;
	int cfd[2], afd, i, accepted = 0;

	(void)state;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l.id = 0;
	l.peer = -1;
	assert_true((l.fd = socket(AF_INET,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) >= 0);
	assert_int_equal(bind(l.fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(l.fd, 16), 0);
	assert_int_equal(getsockname(l.fd, (struct sockaddr *)&sin, &len), 0);
	assert_int_equal(witch__poller_add(p, l.fd, &l, 1), 0);
	assert_quiet(p);

	for (i = 0; i < 2; i++) {
		assert_true((cfd[i] = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
		assert_int_equal(connect(cfd[i], (struct sockaddr *)&sin,
		    sizeof(sin)), 0);
	}
	assert_int_equal(one_event(p, &l, BOUND_MS), IN);
	/*
	 * Rule 4: accept until EAGAIN.  Both connections may not be queued
	 * yet when the first edge fires; a later one brings its own edge.
	 */
	while (accepted < 2) {
		while ((afd = accept4(l.fd, NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
			accepted++;
			close(afd);
		}
		assert_int_equal(errno, EAGAIN);
		if (accepted < 2)
			assert_int_equal(one_event(p, &l, BOUND_MS), IN);
	}
	assert_int_equal(accepted, 2);
	assert_quiet(p);
	for (i = 0; i < 2; i++)
		close(cfd[i]);
	close(l.fd);
	witch__poller_free(p);
}

#define NPAIRS	200

/* Collect events until each of n conns was seen once; assert the bits. */
static void
collect(struct witch__poller *p, struct conn *c, int n, unsigned want,
    unsigned mask)
{
	struct witch__poll_event ev[64];
	int seen[NPAIRS], total = 0, i, k;

	memset(seen, 0, sizeof(seen));
	while (total < n) {
		k = witch__poller_wait(p, ev, 64, BOUND_MS);
		assert_true(k > 0);
		for (i = 0; i < k; i++) {
			struct conn *x = ev[i].udata;

			assert_true(x >= c && x < c + n);
			assert_ptr_equal(x, &c[x->id]);
			assert_int_equal(ev[i].events & mask, want);
			assert_int_equal(seen[x->id], 0);
			seen[x->id]++;
			total++;
		}
	}
	assert_quiet(p);
	for (i = 0; i < n; i++)
		assert_int_equal(seen[i], 1);
}

/* Many descriptors: every one reported, once, with its own udata. */
static void
test_many(void **state)
{
	struct witch__poller *p = poller();
	static struct conn c[NPAIRS];
	int i;

	(void)state;
	for (i = 0; i < NPAIRS; i++) {
		pair(&c[i], i);
		assert_int_equal(witch__poller_add(p, c[i].fd, &c[i], 0), 0);
	}
	collect(p, c, NPAIRS, OUT, IN | OUT | HUP | ERR);
	for (i = 0; i < NPAIRS; i++)
		put(c[i].peer, "m");
	collect(p, c, NPAIRS, IN, IN | HUP | ERR);
	for (i = 0; i < NPAIRS; i++) {
		assert_int_equal(witch__poller_del(p, c[i].fd), 0);
		unpair(&c[i]);
	}
	witch__poller_free(p);
}

/* max smaller than the ready count: max now, the rest next time. */
static void
test_max(void **state)
{
	struct witch__poller *p = poller();
	struct witch__poll_event ev[16];
	struct conn c[10];
	int seen[10], i, n;

	(void)state;
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < 10; i++) {
		pair(&c[i], i);
		assert_int_equal(witch__poller_add(p, c[i].fd, &c[i], 0), 0);
	}
	n = witch__poller_wait(p, ev, 3, 0);
	assert_int_equal(n, 3);
	for (i = 0; i < n; i++)
		seen[((struct conn *)ev[i].udata)->id]++;
	n = witch__poller_wait(p, ev, 16, 0);
	assert_int_equal(n, 7);
	for (i = 0; i < n; i++)
		seen[((struct conn *)ev[i].udata)->id]++;
	for (i = 0; i < 10; i++)
		assert_int_equal(seen[i], 1);
	assert_quiet(p);
	for (i = 0; i < 10; i++)
		unpair(&c[i]);
	witch__poller_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backend),
		cmocka_unit_test(test_new_free),
		cmocka_unit_test(test_add_errors),
		cmocka_unit_test(test_out_once),
		cmocka_unit_test(test_in_edge),
		cmocka_unit_test(test_peer_close),
		cmocka_unit_test(test_peer_shutdown),
		cmocka_unit_test(test_reset_err),
		cmocka_unit_test(test_udata),
		cmocka_unit_test(test_del),
		cmocka_unit_test(test_readonly),
		cmocka_unit_test(test_pipe),
		cmocka_unit_test(test_timeout_zero),
		cmocka_unit_test(test_eintr),
		cmocka_unit_test(test_listener),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_max),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
