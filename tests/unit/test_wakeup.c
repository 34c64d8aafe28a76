/*
 * tests/unit/test_wakeup.c: the coalesced cross-thread wakeup
 * (poll/wakeup.h), observed through the real poller.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <witch/error.h>

#include "poll/poller.h"
#include "poll/wakeup.h"

/* Bound for a wait that must end: far beyond any scheduling delay. */
#define BOUND_MS	10000
#define NTHREADS	4

struct fixture {
	struct witch__poller	*p;
	struct witch__wakeup	 w;
};

static int
setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	if (witch__poller_new(&f.p) != 0)
		return -1;
	if (witch__wakeup_init(&f.w) != 0)
		return -1;
	if (witch__poller_add(f.p, f.w.rfd, &f.w, 1) != 0)
		return -1;
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	(void)witch__poller_del(f->p, f->w.rfd);
	witch__wakeup_destroy(&f->w);
	witch__poller_free(f->p);
	return 0;
}

/* Both descriptors are non-blocking and close-on-exec. */
static void
test_init_flags(void **state)
{
	struct fixture *f = *state;
	int fds[2] = { f->w.rfd, f->w.wfd }, i;

	for (i = 0; i < 2; i++) {
		assert_true(fds[i] >= 0);
		assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
		assert_true(fcntl(fds[i], F_GETFL) & O_NONBLOCK);
	}
#if defined(HAVE_EVENTFD) && defined(HAVE_SYS_EVENTFD_H)
	assert_int_equal(f->w.rfd, f->w.wfd);
#endif
	assert_false(atomic_load(&f->w.pending));
}

/* destroy is safe twice. */
static void
test_destroy_twice(void **state)
{
	struct witch__wakeup w;

	(void)state;
	assert_int_equal(witch__wakeup_init(&w), 0);
	witch__wakeup_destroy(&w);
	assert_int_equal(w.rfd, -1);
	witch__wakeup_destroy(&w);
}

/* Nothing signalled: nothing reported. */
static void
test_quiet(void **state)
{
	struct fixture *f = *state;
	struct witch__poll_event ev[4];

	assert_int_equal(witch__poller_wait(f->p, ev, 4, 0), 0);
}

/* One signal, one event; clear; then silence; a new signal, a new edge. */
static void
test_signal_clear(void **state)
{
	struct fixture *f = *state;
	struct witch__poll_event ev[4];
	int round;

	for (round = 0; round < 3; round++) {
		witch__wakeup_signal(&f->w);
		assert_true(atomic_load(&f->w.pending));
		assert_int_equal(witch__poller_wait(f->p, ev, 4, 0), 1);
		assert_ptr_equal(ev[0].udata, &f->w);
		assert_true(ev[0].events & WITCH__POLL_IN);
		witch__wakeup_clear(&f->w);
		assert_false(atomic_load(&f->w.pending));
		assert_int_equal(witch__poller_wait(f->p, ev, 4, 0), 0);
	}
}

struct burst {
	struct witch__wakeup	*w;
	int			 n;
};

static void *
signaller(void *arg)
{
	struct burst *b = arg;
	int i;

	for (i = 0; i < b->n; i++)
		witch__wakeup_signal(b->w);
	return NULL;
}

static void
burst(struct witch__wakeup *w, int total)
{
	pthread_t t[NTHREADS];
	struct burst b = { w, total / NTHREADS };
	int i;

	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, signaller, &b),
		    0);
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
}

/*
 * 1000 signals from 4 threads, no clear in between: rfd is readable, one
 * clear drains it, and a non-blocking wait then reports nothing.
 */
static void
test_many_signals_one_clear(void **state)
{
	struct fixture *f = *state;
	struct witch__poll_event ev[4];

	burst(&f->w, 1000);
	assert_int_equal(witch__poller_wait(f->p, ev, 4, 0), 1);
	assert_ptr_equal(ev[0].udata, &f->w);
	assert_true(ev[0].events & WITCH__POLL_IN);
	assert_int_equal(witch__poller_wait(f->p, ev, 4, 0), 0);
	witch__wakeup_clear(&f->w);
	assert_int_equal(witch__poller_wait(f->p, ev, 4, 0), 0);
	/* And the wakeup still works afterwards. */
	witch__wakeup_signal(&f->w);
	assert_int_equal(witch__poller_wait(f->p, ev, 4, 0), 1);
	witch__wakeup_clear(&f->w);
}

/*
 * Coalescing: after 1000 signals without a clear exactly one write(2)
 * happened: the eventfd counter is 1 (a pipe holds exactly one byte).
 */
static void
test_coalesced(void **state)
{
	struct witch__wakeup w;
	unsigned char buf[64];
	ssize_t n;

	(void)state;
	assert_int_equal(witch__wakeup_init(&w), 0);
	burst(&w, 1000);
#if defined(HAVE_EVENTFD) && defined(HAVE_SYS_EVENTFD_H)
	{
		uint64_t v = 0;

		assert_int_equal(read(w.rfd, &v, sizeof(v)), sizeof(v));
		assert_int_equal(v, 1);
	}
#else
	assert_int_equal(read(w.rfd, buf, sizeof(buf)), 1);
#endif
	n = read(w.rfd, buf, sizeof(buf));
	assert_int_equal(n, -1);
	assert_int_equal(errno, EAGAIN);
	witch__wakeup_destroy(&w);
}

/*
 * Lost-wakeup stress.  Producers publish work (an atomic counter) and
 * then signal.  The consumer looks at work only after the poller
 * reported rfd and clear returned, like the reactor.  A lost wakeup
 * shows as a wait that times out while every producer has finished and
 * work is still outstanding: that is a failure, not a flake, since all
 * the signals it could be waiting for have already been made.
 */
#define ITEMS_PER_PRODUCER	100000

struct stress {
	struct witch__wakeup	*w;
	atomic_long		 published;
	atomic_int		 done;
};

static void *
producer(void *arg)
{
	struct stress *s = arg;
	int i;

	for (i = 0; i < ITEMS_PER_PRODUCER; i++) {
		atomic_fetch_add_explicit(&s->published, 1,
		    memory_order_relaxed);
		witch__wakeup_signal(s->w);
	}
	atomic_fetch_add(&s->done, 1);
	return NULL;
}

static void
test_no_lost_wakeup(void **state)
{
	struct fixture *f = *state;
	struct witch__poll_event ev[4];
	struct stress s;
	pthread_t t[NTHREADS];
	long total = (long)NTHREADS * ITEMS_PER_PRODUCER, consumed = 0, pub;
	long wakeups = 0;
	int i, n, d;

	s.w = &f->w;
	atomic_init(&s.published, 0);
	atomic_init(&s.done, 0);
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, producer, &s), 0);
	while (consumed < total) {
		/*
		 * Read done before waiting: if every producer had finished
		 * before the wait began, all signals were made and a timeout
		 * can only mean a lost wakeup.
		 */
		d = atomic_load(&s.done);
		n = witch__poller_wait(f->p, ev, 4, BOUND_MS);
		assert_true(n >= 0);
		if (n == 0) {
			if (d == NTHREADS)
				fail_msg("lost wakeup: %ld of %ld consumed",
				    consumed, total);
			continue;
		}
		assert_int_equal(n, 1);
		assert_ptr_equal(ev[0].udata, &f->w);
		witch__wakeup_clear(&f->w);
		wakeups++;
		/* Consume everything published so far. */
		pub = atomic_load_explicit(&s.published,
		    memory_order_relaxed);
		assert_true(pub >= consumed);
		consumed = pub;
	}
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_int_equal(consumed, total);
	assert_int_equal(atomic_load(&s.published), total);
	assert_true(wakeups >= 1 && wakeups <= total);
	/* Everything consumed and cleared: no wakeup left but spurious. */
	witch__wakeup_clear(&f->w);
	assert_int_equal(witch__poller_wait(f->p, ev, 4, 0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init_flags, setup,
		    teardown),
		cmocka_unit_test(test_destroy_twice),
		cmocka_unit_test_setup_teardown(test_quiet, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signal_clear, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_many_signals_one_clear,
		    setup, teardown),
		cmocka_unit_test(test_coalesced),
		cmocka_unit_test_setup_teardown(test_no_lost_wakeup, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
