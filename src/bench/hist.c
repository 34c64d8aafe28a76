/*
 * bench/hist.c: witch-bench's latency histogram, log-linear (32 buckets
 * per power of two above 32 ns, about 3% wide); adding is inline in
 * bench.h.
 */
#include <stdint.h>

#include "bench.h"

/* Largest value that falls into bucket i. */
static uint64_t
hist_upper(unsigned i)
{
	unsigned e, m;

	if (i < H_SUB)
		return i;
	e = i / H_SUB - 1 + H_SUB_BITS;
	m = i % H_SUB;
	return (((uint64_t)H_SUB + m + 1) << (e - H_SUB_BITS)) - 1;
}

void
hist_merge(struct hist *to, const struct hist *from)
{
	unsigned i;

	for (i = 0; i < H_BUCKETS; i++)
		to->n[i] += from->n[i];
	to->count += from->count;
	if (from->max > to->max)
		to->max = from->max;
}

/* The q-quantile in microseconds: the upper bound of its bucket. */
double
hist_pct(const struct hist *h, double q)
{
	uint64_t rank, cum = 0, v;
	unsigned i;

	if (h->count == 0)
		return 0;
	rank = (uint64_t)(q * (double)h->count + 0.999999);
	if (rank == 0)
		rank = 1;
	for (i = 0; i < H_BUCKETS; i++) {
		cum += h->n[i];
		if (cum >= rank)
			break;
	}
	v = i < H_BUCKETS ? hist_upper(i) : h->max;
	if (v > h->max)
		v = h->max;
	return (double)v / 1000.0;
}
