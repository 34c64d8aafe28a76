/*
 * tests/unit/test_oqueue.c: the MPSC output queue and the "scheduled" flag
 * wakeup protocol the reactor builds on it.
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "queue/oqueue.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

#ifdef UNDER_TSAN
#define NMSG	20000	/* per producer */
#else
#define NMSG	50000
#endif
#define NPROD	4
#define NROUNDS	100	/* NMSG is a multiple */

/* Payload of a stress message. */
struct payload {
	uint32_t	producer;
	uint32_t	seq;
};

static struct witch__omsg *
new_msg(size_t len, unsigned char fill)
{
	unsigned char *d;
	struct witch__omsg *m;

	d = witch__malloc(len);
	assert_non_null(d);
	memset(d, fill, len);
	m = witch__omsg_new(d, len);
	assert_non_null(m);
	return m;
}

static struct witch__omsg *
new_payload_msg(uint32_t producer, uint32_t seq)
{
	struct payload pl = { producer, seq };
	unsigned char *d;

	/* Called from producer threads: no cmocka asserts here. */
	if ((d = witch__malloc(sizeof(pl))) == NULL)
		return NULL;
	memcpy(d, &pl, sizeof(pl));
	return witch__omsg_new(d, sizeof(pl));
}

static void
test_fifo_and_bytes(void **state)
{
	struct witch__oqueue q;
	struct witch__omsg *m, *list;
	size_t i, total = 0;

	(void)state;
	witch__oqueue_init(&q);
	assert_null(witch__oqueue_take(&q));
	assert_int_equal(witch__oqueue_bytes(&q), 0);

	for (i = 0; i < 5; i++) {
		m = new_msg(i + 1, (unsigned char)i);
		total += i + 1;
		assert_int_equal(witch__oqueue_push(&q, m), total);
	}
	assert_int_equal(witch__oqueue_bytes(&q), 15);

	list = witch__oqueue_take(&q);
	assert_null(witch__oqueue_take(&q));
	/* Taking does not release bytes: that is the consumer's job. */
	assert_int_equal(witch__oqueue_bytes(&q), 15);
	for (i = 0, m = list; m != NULL; m = m->next, i++) {
		assert_int_equal(m->len, i + 1);
		assert_int_equal(m->off, 0);
		assert_int_equal(m->data[0], (unsigned char)i);
		witch__oqueue_release(&q, m->len);
		total -= m->len;
		assert_int_equal(witch__oqueue_bytes(&q), total);
	}
	assert_int_equal(i, 5);
	assert_int_equal(witch__oqueue_bytes(&q), 0);
	witch__omsg_free_list(list);

	/* Push after take starts a new batch, still in order. */
	witch__oqueue_push(&q, new_msg(3, 'a'));
	witch__oqueue_push(&q, new_msg(4, 'b'));
	list = witch__oqueue_take(&q);
	assert_non_null(list);
	assert_int_equal(list->data[0], 'a');
	assert_non_null(list->next);
	assert_int_equal(list->next->data[0], 'b');
	assert_null(list->next->next);
	witch__oqueue_release(&q, 7);
	witch__omsg_free_list(list);
	assert_int_equal(witch__oqueue_bytes(&q), 0);
	witch__oqueue_destroy(&q);
}

static void
test_destroy_frees_queued(void **state)
{
	struct witch__oqueue q;

	(void)state;
	witch__oqueue_init(&q);
	witch__oqueue_push(&q, new_msg(10, 0));
	witch__oqueue_push(&q, new_msg(20, 0));
	assert_int_equal(witch__oqueue_bytes(&q), 30);
	/* ASan's leak checker proves both messages are freed. */
	witch__oqueue_destroy(&q);
	assert_null(witch__oqueue_take(&q));
	assert_int_equal(witch__oqueue_bytes(&q), 0);
	witch__omsg_free(NULL);
	witch__omsg_free_list(NULL);
}

static void
test_omsg_new_failure_frees_data(void **state)
{
	unsigned char *d;

	(void)state;
	d = witch__malloc(64);
	assert_non_null(d);
	witch__alloc_fail_after(1);
	/* On failure the data is freed (ASan would report a leak). */
	assert_null(witch__omsg_new(d, 64));
	witch__alloc_fail_after(0);
}

/* --- MPSC stress ---------------------------------------------------- */

struct mpsc {
	struct witch__oqueue	q;
	atomic_uint		errors;	/* failures off the main thread */
	size_t			received;
	uint32_t		next_seq[NPROD];
	unsigned		order_errors;
	size_t			max_bytes_seen;
};

struct prod_arg {
	struct mpsc	*s;
	uint32_t	 id;
};

static void *
mpsc_producer(void *arg)
{
	struct prod_arg *pa = arg;
	struct witch__omsg *m;
	uint32_t i;

	for (i = 0; i < NMSG; i++) {
		if ((m = new_payload_msg(pa->id, i)) == NULL) {
			atomic_fetch_add(&pa->s->errors, 1);
			continue;
		}
		witch__oqueue_push(&pa->s->q, m);
		if ((i & 255) == 0)
			sched_yield();
	}
	return NULL;
}

/* Check and free a taken batch.  Consumer thread; returns messages seen. */
static size_t
consume_batch(struct mpsc *s, struct witch__omsg *list)
{
	struct witch__omsg *m;
	struct payload pl;
	size_t n = 0;

	for (m = list; m != NULL; m = m->next, n++) {
		if (m->len != sizeof(pl)) {
			s->order_errors++;
			continue;
		}
		memcpy(&pl, m->data, sizeof(pl));
		if (pl.producer >= NPROD || pl.seq != s->next_seq[pl.producer])
			s->order_errors++;
		else
			s->next_seq[pl.producer]++;
		witch__oqueue_release(&s->q, m->len);
	}
	witch__omsg_free_list(list);
	return n;
}

static void *
mpsc_consumer(void *arg)
{
	struct mpsc *s = arg;
	struct witch__omsg *list;
	size_t b;

	while (s->received < (size_t)NPROD * NMSG) {
		b = witch__oqueue_bytes(&s->q);
		if (b > s->max_bytes_seen)
			s->max_bytes_seen = b;
		if ((list = witch__oqueue_take(&s->q)) == NULL) {
			sched_yield();
			continue;
		}
		s->received += consume_batch(s, list);
	}
	return NULL;
}

static void
test_mpsc_stress(void **state)
{
	static struct mpsc s;
	struct prod_arg pa[NPROD];
	pthread_t prod[NPROD], cons;
	unsigned i;

	(void)state;
	memset(&s, 0, sizeof(s));
	witch__oqueue_init(&s.q);
	atomic_init(&s.errors, 0);
	assert_int_equal(pthread_create(&cons, NULL, mpsc_consumer, &s), 0);
	for (i = 0; i < NPROD; i++) {
		pa[i].s = &s;
		pa[i].id = i;
		assert_int_equal(pthread_create(&prod[i], NULL, mpsc_producer,
		    &pa[i]), 0);
	}
	for (i = 0; i < NPROD; i++)
		pthread_join(prod[i], NULL);
	assert_int_equal(atomic_load(&s.errors), 0);
	pthread_join(cons, NULL);

	assert_int_equal(s.received, (size_t)NPROD * NMSG);
	assert_int_equal(s.order_errors, 0);
	for (i = 0; i < NPROD; i++)
		assert_int_equal(s.next_seq[i], NMSG);
	assert_true(s.max_bytes_seen <= (size_t)NPROD * NMSG *
	    sizeof(struct payload));
	assert_null(witch__oqueue_take(&s.q));
	assert_int_equal(witch__oqueue_bytes(&s.q), 0);
	witch__oqueue_destroy(&s.q);
}

/* --- the "scheduled" flag protocol ---------------------------------- */

/*
 * A model of one connection and the reactor: producers push, then
 * schedule the connection only if the flag was clear; the reactor clears
 * the flag before it takes the queue.  The "ready list + wakeup" is a
 * counter under a mutex with a condvar.
 *
 * Producers work in rounds.  After each round, once every producer is
 * done and the reactor is asleep with no wakeup pending, nothing may be
 * left in the queue: its byte count must be 0.  Every round end is thus a
 * chance to catch a lost wakeup (a message pushed without a wakeup while
 * the reactor believed the connection scheduled).
 */
struct sched {
	struct witch__oqueue	q;
	atomic_bool		scheduled;
	pthread_barrier_t	round_start;	/* producers + main */
	pthread_barrier_t	round_end;	/* producers + main */

	pthread_mutex_t		mtx;
	pthread_cond_t		cv;		/* wakes the reactor */
	pthread_cond_t		idle_cv;	/* reactor went to sleep */
	unsigned		signals;	/* pending wakeups */
	bool			reactor_waiting;
	bool			producers_done;

	atomic_uint		errors;
	atomic_uint		nsignalled;	/* total signals sent */
	unsigned		nwoken;		/* wakeups consumed */
	size_t			received;
	uint32_t		next_seq[NPROD];
	unsigned		order_errors;
	size_t			left_in_queue;	/* at the end; must be 0 */
	bool			flag_at_end;
};

struct sched_arg {
	struct sched	*s;
	uint32_t	 id;
};

static void *
sched_producer(void *arg)
{
	struct sched_arg *sa = arg;
	struct sched *s = sa->s;
	struct witch__omsg *m;
	uint32_t i, r, seq = 0;

	for (r = 0; r < NROUNDS; r++) {
		pthread_barrier_wait(&s->round_start);
		for (i = 0; i < NMSG / NROUNDS; i++) {
			if ((m = new_payload_msg(sa->id, seq++)) == NULL) {
				atomic_fetch_add(&s->errors, 1);
				continue;
			}
			witch__oqueue_push(&s->q, m);
			if (!atomic_exchange_explicit(&s->scheduled, true,
			    memory_order_acq_rel)) {
				/* Put on the ready list, wake the reactor. */
				atomic_fetch_add(&s->nsignalled, 1);
				pthread_mutex_lock(&s->mtx);
				s->signals++;
				pthread_cond_signal(&s->cv);
				pthread_mutex_unlock(&s->mtx);
			}
		}
		pthread_barrier_wait(&s->round_end);
	}
	return NULL;
}

static size_t
sched_consume(struct sched *s, struct witch__omsg *list)
{
	struct witch__omsg *m;
	struct payload pl;
	size_t n = 0;

	for (m = list; m != NULL; m = m->next, n++) {
		memcpy(&pl, m->data, sizeof(pl));
		if (pl.producer >= NPROD || pl.seq != s->next_seq[pl.producer])
			s->order_errors++;
		else
			s->next_seq[pl.producer]++;
		witch__oqueue_release(&s->q, m->len);
	}
	witch__omsg_free_list(list);
	return n;
}

static void *
sched_reactor(void *arg)
{
	struct sched *s = arg;
	struct witch__omsg *list, *rest;

	for (;;) {
		pthread_mutex_lock(&s->mtx);
		while (s->signals == 0 && !s->producers_done) {
			s->reactor_waiting = true;
			pthread_cond_broadcast(&s->idle_cv);
			pthread_cond_wait(&s->cv, &s->mtx);
			s->reactor_waiting = false;
		}
		if (s->signals == 0) {
			/* Producers are done and no wakeup is pending. */
			pthread_mutex_unlock(&s->mtx);
			break;
		}
		s->nwoken += s->signals;
		s->signals = 0;
		pthread_mutex_unlock(&s->mtx);

		/* Clear BEFORE taking: this is what the test is about. */
		atomic_exchange_explicit(&s->scheduled, false,
		    memory_order_acq_rel);
		list = witch__oqueue_take(&s->q);
		s->received += sched_consume(s, list);
	}
	/*
	 * No wakeup is pending and none can come.  Anything still queued
	 * now was pushed without a wakeup: a lost wakeup.
	 */
	list = witch__oqueue_take(&s->q);
	for (rest = list; rest != NULL; rest = rest->next)
		s->left_in_queue++;
	witch__omsg_free_list(list);
	s->flag_at_end = atomic_load(&s->scheduled);
	return NULL;
}

/* Main: wait until the reactor sleeps with no wakeup pending. */
static bool
sched_wait_reactor_idle(struct sched *s)
{
	struct timespec ts;
	bool ok = true;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 60;	/* only to turn a hang into a failure */
	pthread_mutex_lock(&s->mtx);
	while (ok && !(s->reactor_waiting && s->signals == 0))
		ok = pthread_cond_timedwait(&s->idle_cv, &s->mtx, &ts) == 0 ||
		    (s->reactor_waiting && s->signals == 0);
	pthread_mutex_unlock(&s->mtx);
	return ok;
}

static void
test_scheduled_flag_no_lost_wakeup(void **state)
{
	static struct sched s;
	struct sched_arg sa[NPROD];
	pthread_t prod[NPROD], reactor;
	unsigned i, r, stranded_rounds = 0, timeouts = 0;

	(void)state;
	memset(&s, 0, sizeof(s));
	witch__oqueue_init(&s.q);
	atomic_init(&s.scheduled, false);
	atomic_init(&s.errors, 0);
	atomic_init(&s.nsignalled, 0);
	assert_int_equal(pthread_mutex_init(&s.mtx, NULL), 0);
	assert_int_equal(pthread_cond_init(&s.cv, NULL), 0);
	assert_int_equal(pthread_cond_init(&s.idle_cv, NULL), 0);
	assert_int_equal(pthread_barrier_init(&s.round_start, NULL,
	    NPROD + 1), 0);
	assert_int_equal(pthread_barrier_init(&s.round_end, NULL,
	    NPROD + 1), 0);

	assert_int_equal(pthread_create(&reactor, NULL, sched_reactor, &s),
	    0);
	for (i = 0; i < NPROD; i++) {
		sa[i].s = &s;
		sa[i].id = i;
		assert_int_equal(pthread_create(&prod[i], NULL,
		    sched_producer, &sa[i]), 0);
	}
	for (r = 0; r < NROUNDS; r++) {
		pthread_barrier_wait(&s.round_start);
		pthread_barrier_wait(&s.round_end);
		/* Producers are quiet; the reactor must drain and sleep. */
		if (!sched_wait_reactor_idle(&s))
			timeouts++;
		/* Bytes are counted before a push: 0 means nothing queued. */
		if (witch__oqueue_bytes(&s.q) != 0)
			stranded_rounds++;
	}
	for (i = 0; i < NPROD; i++)
		pthread_join(prod[i], NULL);
	pthread_mutex_lock(&s.mtx);
	s.producers_done = true;
	pthread_cond_signal(&s.cv);
	pthread_mutex_unlock(&s.mtx);
	pthread_join(reactor, NULL);

	assert_int_equal(timeouts, 0);
	assert_int_equal(stranded_rounds, 0);
	assert_int_equal(atomic_load(&s.errors), 0);
	assert_int_equal(s.left_in_queue, 0);
	assert_false(s.flag_at_end);
	assert_int_equal(s.received, (size_t)NPROD * NMSG);
	assert_int_equal(s.order_errors, 0);
	for (i = 0; i < NPROD; i++)
		assert_int_equal(s.next_seq[i], NMSG);
	/* Every wakeup sent was consumed; coalescing means fewer than msgs. */
	assert_int_equal(s.nwoken, atomic_load(&s.nsignalled));
	assert_true(s.nwoken >= NROUNDS);
	assert_true(s.nwoken <= (unsigned)NPROD * NMSG);
	assert_null(witch__oqueue_take(&s.q));
	assert_int_equal(witch__oqueue_bytes(&s.q), 0);
	witch__oqueue_destroy(&s.q);
	pthread_barrier_destroy(&s.round_end);
	pthread_barrier_destroy(&s.round_start);
	pthread_cond_destroy(&s.idle_cv);
	pthread_cond_destroy(&s.cv);
	pthread_mutex_destroy(&s.mtx);
}

/* A message built in place: header and frame in one allocation. */
static void
test_omsg_in_place(void **state)
{
	struct witch__oqueue q;
	struct witch__omsg *m;
	struct witch__buf b;

	witch__oqueue_init(&q);
	witch__omsg_buf_init(&b);
	assert_int_equal(witch__buf_append(&b, "frame", 5), 0);
	m = witch__omsg_from_buf(&b);
	assert_non_null(m);
	assert_null(b.data);			/* the buffer gave its bytes */
	assert_int_equal(m->len, 5);
	assert_ptr_equal(m->data, (unsigned char *)(m + 1));
	assert_memory_equal(m->data, "frame", 5);
	assert_int_equal(witch__oqueue_push(&q, m), 5);
	m = witch__oqueue_take(&q);
	witch__oqueue_release(&q, m->len);
	witch__omsg_free_list(m);		/* one free, ASan checks */
	/* Nothing after the header: no message, buffer freed. */
	witch__omsg_buf_init(&b);
	assert_null(witch__omsg_from_buf(&b));
	assert_null(b.data);
	witch__oqueue_destroy(&q);
}

/*
 * A buffer started with a size hint holds that many frame bytes without
 * growing; witch__buf_fit gives back a mostly unused block and leaves a
 * well used one alone, and the message built from it is intact.
 */
static void
test_omsg_hint_and_fit(void **state)
{
	struct witch__omsg *m;
	struct witch__buf b;
	unsigned char *first;
	char frame[1000];

	(void)state;
	memset(frame, 'x', sizeof(frame));
	witch__omsg_buf_init_hint(&b, sizeof(frame));
	assert_true(b.cap >= sizeof(struct witch__omsg) + sizeof(frame));
	first = b.data;
	assert_int_equal(witch__buf_append(&b, frame, sizeof(frame)), 0);
	assert_ptr_equal(b.data, first);	/* no realloc on the way */
	witch__buf_fit(&b);			/* well used: kept */
	assert_ptr_equal(b.data, first);
	assert_true(b.cap >= sizeof(struct witch__omsg) + sizeof(frame));
	witch__buf_free(&b);

	/* A big hint, a small batch: cut to its length. */
	witch__omsg_buf_init_hint(&b, 16384);
	assert_int_equal(witch__buf_append(&b, "small", 5), 0);
	assert_true(b.cap > 16384);
	witch__buf_fit(&b);
	assert_int_equal(b.cap, sizeof(struct witch__omsg) + 5);
	m = witch__omsg_from_buf(&b);
	assert_non_null(m);
	assert_int_equal(m->len, 5);
	assert_memory_equal(m->data, "small", 5);
	witch__omsg_free(m);			/* ASan checks the size */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_omsg_in_place),
		cmocka_unit_test(test_omsg_hint_and_fit),
		cmocka_unit_test(test_fifo_and_bytes),
		cmocka_unit_test(test_destroy_frees_queued),
		cmocka_unit_test(test_omsg_new_failure_frees_data),
		cmocka_unit_test(test_mpsc_stress),
		cmocka_unit_test(test_scheduled_flag_no_lost_wakeup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
