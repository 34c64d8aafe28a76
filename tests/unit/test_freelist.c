/*
 * tests/unit/test_freelist.c: the bounded MPSC block cache (one owner
 * takes blocks, any thread gives them back), as the reactor uses it for
 * request jobs that workers release, one by one or a run at a time
 * (witch__freelist_put_chain).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"	/* WITCH__ASAN, and its asan_interface.h */
#include "queue/freelist.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

#ifdef UNDER_TSAN
#define NBLOCKS	40000
#else
#define NBLOCKS	400000
#endif
#define NGIVERS	4
#define CAP	64
#define RING	256
#define SCAP	1024	/* stress cap: > RING + NGIVERS * CHAIN + 1: no frees */
#define NSET	4096	/* slots of the owner's set of known blocks */
#define CHAIN	3	/* blocks a chain giver holds before it gives them */

/* What the test writes into a block (after the freelist's link). */
struct block {
	void		*link;		/* the freelist's, while cached */
	uint64_t	 stamp;		/* set by the owner when handed out */
	uint64_t	 seen;		/* the giver's copy of stamp */
	int		 in_use;	/* 1 between get and put */
	unsigned char	 fill[40];
};

static void
test_reuse_and_cap(void **state)
{
	struct witch__freelist fl;
	void *a, *b, *blocks[CAP + 3];
	size_t i;

	witch__freelist_init(&fl, sizeof(struct block), CAP);
	a = witch__freelist_get(&fl);		/* nothing cached: new */
	assert_non_null(a);
	memset(a, 0xab, sizeof(struct block));
	witch__freelist_put(&fl, a);
	assert_int_equal(atomic_load(&fl.count), 1);
#ifdef WITCH__ASAN
	/* A cached block is poisoned past its link: use after put reports. */
	assert_true(__asan_address_is_poisoned((char *)a + sizeof(void *)));
	assert_false(__asan_address_is_poisoned(a));
#endif
	b = witch__freelist_get(&fl);		/* the same block back */
	assert_ptr_equal(a, b);
#ifdef WITCH__ASAN
	assert_false(__asan_address_is_poisoned((char *)b + sizeof(void *)));
#endif
	/* The owner settles the counter in bulk, at its next take. */
	assert_int_equal(atomic_load(&fl.count) - fl.popped, 0);
	witch__freelist_put(&fl, b);
	witch__freelist_put(&fl, NULL);		/* a no-op */
	/* More blocks than the cap: the excess is freed, not kept. */
	for (i = 0; i < CAP + 3; i++)
		assert_non_null(blocks[i] = witch__freelist_get(&fl));
	for (i = 0; i < CAP + 3; i++)
		witch__freelist_put(&fl, blocks[i]);
	assert_int_equal(atomic_load(&fl.count), CAP);
	witch__freelist_destroy(&fl);
	assert_int_equal(atomic_load(&fl.count), 0);
	witch__freelist_destroy(&fl);		/* idempotent */
	/* LeakSanitizer, in the ASan build, checks nothing was lost. */
}

/* A chain of blocks goes back in one push, or one by one over the cap. */
static void
test_chain(void **state)
{
	struct witch__freelist fl;
	struct witch__flnode *b[CAP + 8], *head, *tail;
	size_t i, k;

	witch__freelist_init(&fl, sizeof(struct block), CAP);
	for (i = 0; i < 5; i++)
		assert_non_null(b[i] = witch__freelist_get(&fl));
	for (i = 0; i < 5; i++)
		b[i]->next = i + 1 < 5 ? b[i + 1] : NULL;
	witch__freelist_put_chain(&fl, b[0], b[4], 5);
	assert_int_equal(atomic_load(&fl.count), 5);
#ifdef WITCH__ASAN
	for (i = 0; i < 5; i++)
		assert_true(__asan_address_is_poisoned((char *)b[i] +
		    sizeof(void *)));
#endif
	witch__freelist_put_chain(&fl, NULL, NULL, 0);	/* a no-op */
	/* All five come back, in the chain's order. */
	for (i = 0; i < 5; i++)
		assert_ptr_equal(witch__freelist_get(&fl), b[i]);
	for (i = 0; i < 5; i++)
		witch__freelist_put(&fl, b[i]);
	/* Fill the cache to CAP - 2, then a chain of 6: over the cap, the
	 * blocks go one by one, two kept and four freed (LeakSanitizer). */
	for (i = 0; i < CAP + 4; i++)
		assert_non_null(b[i] = witch__freelist_get(&fl));
	for (i = 0; i < CAP - 2; i++)
		witch__freelist_put(&fl, b[i]);
	head = b[CAP - 2];
	for (k = CAP - 2; k < CAP + 4; k++)
		b[k]->next = k + 1 < CAP + 4 ? b[k + 1] : NULL;
	tail = b[CAP + 3];
	witch__freelist_put_chain(&fl, head, tail, 6);
	assert_int_equal(atomic_load(&fl.count) - fl.popped, CAP);
	witch__freelist_destroy(&fl);
}

/* Owner -> givers: a mutex-protected ring of blocks to give back. */
static struct {
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cv, space;
	struct block	*ring[RING];
	size_t		 head, n;
	bool		 done;
} ch = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
    PTHREAD_COND_INITIALIZER, { 0 }, 0, 0, false };

static struct witch__freelist sfl;
static atomic_int bad;

/* The owner's set of every block address it has had (open addressing). */
static uintptr_t known[NSET];

static bool
known_add(const void *p)
{
	uintptr_t v = (uintptr_t)p;
	size_t i = (v >> 4) % NSET;

	while (known[i] != 0) {
		if (known[i] == v)
			return false;
		i = (i + 1) % NSET;
	}
	known[i] = v;
	return true;
}

/* Give back a chain giver's blocks (n of them, head to tail). */
static void
give_chain(struct witch__flnode **head, struct witch__flnode **tail,
    size_t *n)
{
	witch__freelist_put_chain(&sfl, *head, *tail, *n);
	*head = *tail = NULL;
	*n = 0;
}

/* Even givers give each block back at once; odd ones by chains. */
static void *
giver(void *arg)
{
	bool chains = ((uintptr_t)arg & 1) != 0;
	struct witch__flnode *head = NULL, *tail = NULL, *n;
	size_t len = 0;
	struct block *b;

	for (;;) {
		pthread_mutex_lock(&ch.mtx);
		if (ch.n == 0 && len > 0) {	/* hold none while waiting */
			pthread_mutex_unlock(&ch.mtx);
			give_chain(&head, &tail, &len);
			pthread_mutex_lock(&ch.mtx);
		}
		while (ch.n == 0 && !ch.done)
			pthread_cond_wait(&ch.cv, &ch.mtx);
		if (ch.n == 0) {
			pthread_mutex_unlock(&ch.mtx);
			if (len > 0)
				give_chain(&head, &tail, &len);
			return NULL;
		}
		b = ch.ring[ch.head];
		ch.head = (ch.head + 1) % RING;
		ch.n--;
		pthread_cond_signal(&ch.space);
		pthread_mutex_unlock(&ch.mtx);
		/* Use the block: its state must be the owner's. */
		if (b->in_use != 1)
			atomic_store(&bad, 1);
		b->seen = b->stamp;
		memset(b->fill, (int)(b->stamp & 0xff), sizeof(b->fill));
		b->in_use = 0;
		if (!chains) {
			witch__freelist_put(&sfl, b);
			continue;
		}
		n = (struct witch__flnode *)(void *)b;
		n->next = NULL;
		if (tail != NULL)
			tail->next = n;
		else
			head = n;
		tail = n;
		if (++len == CHAIN)
			give_chain(&head, &tail, &len);
	}
}

/*
 * The owner hands NBLOCKS blocks to NGIVERS threads that give them back
 * concurrently, half one by one and half in chains of CHAIN.  A recycled block must carry the last giver's writes (the
 * acquire/release pair) and never be handed out while in use; under TSan
 * any missing ordering is a reported race.
 */
static void
test_stress(void **state)
{
	pthread_t t[NGIVERS];
	struct block *b;
	uint64_t i, recycled = 0, fresh = 0;
	size_t k;

	/* Cap above what can be out at once: no block is ever freed, so an
	 * address never seen before is a new block and a known one is
	 * recycled. */
	witch__freelist_init(&sfl, sizeof(struct block), SCAP);
	for (k = 0; k < NGIVERS; k++)
		assert_int_equal(pthread_create(&t[k], NULL, giver,
		    (void *)(uintptr_t)k), 0);
	for (i = 1; i <= NBLOCKS; i++) {
		b = witch__freelist_get(&sfl);
		assert_non_null(b);
		if (known_add(b)) {
			fresh++;
			assert_true(fresh <= RING + NGIVERS * CHAIN + 2);
		} else {
			/* Recycled: the last giver's writes are visible, and
			 * it is not in use elsewhere. */
			recycled++;
			if (b->in_use != 0)
				atomic_store(&bad, 3);
			else if (b->seen != b->stamp ||
			    b->fill[0] != (unsigned char)(b->stamp & 0xff) ||
			    b->fill[39] != (unsigned char)(b->stamp & 0xff))
				atomic_store(&bad, 2);
		}
		/* The owner writes the whole block, as dispatch does. */
		memset(b, 0, sizeof(*b));
		b->stamp = i;
		b->in_use = 1;
		pthread_mutex_lock(&ch.mtx);
		while (ch.n == RING)
			pthread_cond_wait(&ch.space, &ch.mtx);
		ch.ring[(ch.head + ch.n) % RING] = b;
		ch.n++;
		pthread_cond_signal(&ch.cv);
		pthread_mutex_unlock(&ch.mtx);
	}
	pthread_mutex_lock(&ch.mtx);
	ch.done = true;
	pthread_cond_broadcast(&ch.cv);
	pthread_mutex_unlock(&ch.mtx);
	for (k = 0; k < NGIVERS; k++)
		pthread_join(t[k], NULL);
	assert_int_equal(atomic_load(&bad), 0);
	assert_int_equal(recycled + fresh, NBLOCKS);
	assert_true(recycled >= NBLOCKS - RING - NGIVERS * CHAIN - 2);
	/* Settled count: the blocks cached now, at most all there were. */
	assert_true(atomic_load(&sfl.count) - sfl.popped <= fresh);
	witch__freelist_destroy(&sfl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reuse_and_cap),
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_stress),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
