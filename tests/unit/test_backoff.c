/*
 * test_backoff: the reconnect delay of include/witch/client.h,
 * [delay, max(delay, min(delay_max, delay * 2^n))], and its spread over
 * many clients (no lock-step reconnect storms).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "client/client_int.h"

static uint64_t
upper(unsigned n, uint64_t delay, uint64_t max)
{
	uint64_t hi = n >= 32 ? max : delay << n;

	if (hi > max)
		hi = max;
	return hi < delay ? delay : hi;
}

/* Every attempt from 0 to 80 stays in its window; the cap holds. */
static void
test_bounds(void **state)
{
	static const unsigned cases[][2] = {
		{ 100, 10000 }, { 1, 1 }, { 1, 60000 }, { 500, 100 },
		{ 4000000000u, 4000000000u }, { 7, 4000000000u },
	};
	uint64_t rng = 42, d, lo_seen, hi_seen, hi;
	size_t k;
	unsigned n, i;

	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		for (n = 0; n <= 80; n++) {
			hi = upper(n, cases[k][0], cases[k][1]);
			lo_seen = UINT64_MAX;
			hi_seen = 0;
			for (i = 0; i < 200; i++) {
				d = witch__client_backoff_ms(n, cases[k][0],
				    cases[k][1], &rng);
				assert_true(d >= cases[k][0]);
				assert_true(d <= hi);
				if (d < lo_seen)
					lo_seen = d;
				if (d > hi_seen)
					hi_seen = d;
			}
			/* Full jitter: a wide window is actually used. */
			if (hi - cases[k][0] >= 1000) {
				assert_true(hi_seen - lo_seen >
				    (hi - cases[k][0]) / 2);
			}
		}
	}
}

/* Floor: delay_max below delay still waits delay; attempt 0 is exact
 * when the window is empty. */
static void
test_floor_and_cap(void **state)
{
	uint64_t rng = 7;
	unsigned i;

	for (i = 0; i < 100; i++) {
		assert_int_equal(witch__client_backoff_ms(0, 100, 50, &rng),
		    100);
		assert_int_equal(witch__client_backoff_ms(30, 100, 50, &rng),
		    100);
		assert_true(witch__client_backoff_ms(1000, 100, 10000, &rng)
		    <= 10000);
		assert_true(witch__client_backoff_ms(UINT32_MAX, 100, 10000,
		    &rng) <= 10000);
	}
}

/* Same seed, same sequence (jitter_seed is for reproducible tests). */
static void
test_deterministic(void **state)
{
	uint64_t a = 99, b = 99;
	unsigned n;

	for (n = 0; n < 20; n++)
		assert_int_equal(witch__client_backoff_ms(n, 100, 10000, &a),
		    witch__client_backoff_ms(n, 100, 10000, &b));
}

/*
 * 1000 clients seeded 1..1000, attempt 3 with delay 100 and max 10000:
 * window [100, 800].  No 10 ms bucket may hold more than 5% of them and
 * they must cover more than half the window.
 */
static void
test_spread(void **state)
{
	unsigned bucket[80], seed, worst = 0, i;
	uint64_t rng, d, min = UINT64_MAX, max = 0;
	double sum = 0, sq = 0, mean, sd;

	memset(bucket, 0, sizeof(bucket));
	for (seed = 1; seed <= 1000; seed++) {
		rng = seed;
		d = witch__client_backoff_ms(3, 100, 10000, &rng);
		assert_true(d >= 100 && d <= 800);
		bucket[(d - 100) / 10]++;
		if (d < min)
			min = d;
		if (d > max)
			max = d;
		sum += (double)d;
		sq += (double)d * (double)d;
	}
	for (i = 0; i < 80; i++)
		if (bucket[i] > worst)
			worst = bucket[i];
	mean = sum / 1000;
	sd = sqrt(sq / 1000 - mean * mean);
	printf("backoff spread (attempt 3, window [100,800] ms, 1000 "
	    "clients): min %llu max %llu mean %.1f stddev %.1f "
	    "(uniform: %.1f), fullest 10 ms bucket %u/1000\n",
	    (unsigned long long)min, (unsigned long long)max, mean, sd,
	    700 / sqrt(12), worst);
	assert_true(worst <= 50);
	assert_true(max - min > 350);
	assert_true(sd > 150);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_floor_and_cap),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_spread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
