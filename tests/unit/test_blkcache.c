/*
 * tests/unit/test_blkcache.c: the one-thread block cache the reactor
 * keeps its output buffers in: last given back, first handed out; at
 * most WITCH__BLKCACHE_MAX blocks; a trim frees exactly the blocks that
 * were not handed out since the one before; cached blocks are poisoned
 * for AddressSanitizer.  Leaks are LeakSanitizer's to report (ASan CI).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "queue/blkcache.h"

#define SIZE 4096

/* Last given back, first handed out; a new block when empty. */
static void
test_lifo(void **state)
{
	struct witch__blkcache bc;
	void *a, *b, *c;

	(void)state;
	witch__blkcache_init(&bc, SIZE);
	a = witch__blkcache_get(&bc);
	b = witch__blkcache_get(&bc);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	memset(a, 1, SIZE);		/* the whole block is usable */
	memset(b, 2, SIZE);
	assert_int_equal(bc.n, 0);
	witch__blkcache_put(&bc, a);
	witch__blkcache_put(&bc, b);
	witch__blkcache_put(&bc, NULL);	/* a no-op */
	assert_int_equal(bc.n, 2);
	c = witch__blkcache_get(&bc);
	assert_ptr_equal(c, b);
	memset(c, 3, SIZE);
	assert_ptr_equal(witch__blkcache_get(&bc), a);
	assert_int_equal(bc.n, 0);
	witch__blkcache_put(&bc, a);
	witch__blkcache_put(&bc, c);
	witch__blkcache_destroy(&bc);
	assert_int_equal(bc.n, 0);
	/* Empty and out of memory: NULL, nothing cached. */
	witch__alloc_fail_after(1);
	assert_null(witch__blkcache_get(&bc));
	assert_int_equal(witch__alloc_fail_after(0), 0);
	/*
	 * A cached block counts as an allocation for the failure tests:
	 * the one due fails (the block stays cached), the next succeeds.
	 */
	witch__blkcache_put(&bc, witch__malloc(SIZE));
	witch__alloc_fail_after(2);
	assert_non_null(c = witch__blkcache_get(&bc));
	witch__blkcache_put(&bc, c);
	assert_null(witch__blkcache_get(&bc));
	assert_int_equal(bc.n, 1);
	assert_int_equal(witch__alloc_fail_after(0), 0);
	assert_ptr_equal(witch__blkcache_get(&bc), c);
	witch__blkcache_put(&bc, c);
	witch__blkcache_destroy(&bc);
}

/* Past WITCH__BLKCACHE_MAX blocks, a block given back is freed. */
static void
test_cap(void **state)
{
	struct witch__blkcache bc;
	size_t i;

	(void)state;
	witch__blkcache_init(&bc, 64);
	for (i = 0; i < WITCH__BLKCACHE_MAX + 10; i++)
		witch__blkcache_put(&bc, witch__malloc(64));
	assert_int_equal(bc.n, WITCH__BLKCACHE_MAX);
	witch__blkcache_destroy(&bc);
	assert_int_equal(bc.n, 0);
}

/*
 * A trim frees the blocks that stayed cached through the period since
 * the last trim, and keeps the ones handed out and given back in it.
 */
static void
test_trim(void **state)
{
	struct witch__blkcache bc;
	void *p[5], *q[2], *keep;
	size_t i;

	(void)state;
	witch__blkcache_init(&bc, SIZE);
	for (i = 0; i < 5; i++)
		p[i] = witch__malloc(SIZE);
	for (i = 0; i < 5; i++)
		witch__blkcache_put(&bc, p[i]);
	/* The period began with none cached: none stayed all through. */
	witch__blkcache_trim(&bc);
	assert_int_equal(bc.n, 5);
	/* Two handed out and back: the three below them stayed. */
	q[0] = witch__blkcache_get(&bc);
	q[1] = witch__blkcache_get(&bc);
	assert_ptr_equal(q[0], p[4]);
	assert_ptr_equal(q[1], p[3]);
	witch__blkcache_put(&bc, q[1]);
	witch__blkcache_put(&bc, q[0]);
	witch__blkcache_trim(&bc);
	assert_int_equal(bc.n, 2);
	/* The survivors, in order, at the bottom now. */
	assert_ptr_equal(bc.blk[0], p[3]);
	assert_ptr_equal(bc.blk[1], p[4]);
	/* A steady user (all out, all back each period) keeps them all. */
	for (i = 0; i < 3; i++) {
		q[0] = witch__blkcache_get(&bc);
		q[1] = witch__blkcache_get(&bc);
		keep = witch__blkcache_get(&bc);	/* new, then kept */
		assert_int_equal(bc.n, 0);
		witch__blkcache_put(&bc, keep);
		witch__blkcache_put(&bc, q[1]);
		witch__blkcache_put(&bc, q[0]);
		witch__blkcache_trim(&bc);
		assert_int_equal(bc.n, 3);
	}
	/* Idle: one period later, nothing. */
	witch__blkcache_trim(&bc);
	assert_int_equal(bc.n, 0);
	witch__blkcache_destroy(&bc);
}

/* AddressSanitizer: a cached block is poisoned whole, a handed-out one
 * not at all. */
static void
test_poison(void **state)
{
#ifdef WITCH__ASAN
	struct witch__blkcache bc;
	char *p;

	(void)state;
	witch__blkcache_init(&bc, SIZE);
	p = witch__blkcache_get(&bc);
	assert_int_equal(__asan_region_is_poisoned(p, SIZE), 0);
	witch__blkcache_put(&bc, p);
	assert_ptr_equal(__asan_region_is_poisoned(p, SIZE), p);
	assert_true(__asan_address_is_poisoned(p + SIZE - 1));
	p = witch__blkcache_get(&bc);
	assert_int_equal(__asan_region_is_poisoned(p, SIZE), 0);
	witch__blkcache_put(&bc, p);
	witch__blkcache_destroy(&bc);
#else
	(void)state;
	skip();
#endif
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifo),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_trim),
		cmocka_unit_test(test_poison),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
