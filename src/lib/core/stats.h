/*
 * core/stats.h: the server's counters: atomics any thread bumps, read by
 * the status and stats built-ins.
 */
#ifndef WITCH__CORE_STATS_H
#define WITCH__CORE_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/error.h"

#define WITCH__LAT_BUCKETS 64	/* latency: bucket i ends at 2^(i/4) us */

struct witch__counters {
	atomic_uint_fast64_t	conns_accepted;
	atomic_uint_fast64_t	conns_rejected;
	atomic_uint_fast64_t	requests_served;
	atomic_uint_fast64_t	requests_failed;
	atomic_uint_fast64_t	output_drops;
	atomic_uint_fast64_t	emfile_pauses;
	atomic_uint_fast64_t	overloaded;
	atomic_uint_fast64_t	protocol_errors;
	atomic_uint_fast64_t	poll_errors;	/* failed waits for events */
	atomic_uint_fast64_t	direct_writes;	/* reply batches a worker wrote */
	atomic_uint_fast64_t	direct_short;	/* ... of which the rest was
						 * left to the reactor */
	/* Memory budgets (doc/internals/reactor.md, "Budgets"). */
	atomic_uint_fast64_t	frame_timeouts;		/* closed mid-frame */
	atomic_uint_fast64_t	frame_budget_drops;	/* largest holders */
	atomic_uint_fast64_t	preauth_frame_refusals;	/* over the cap */
	atomic_uint_fast64_t	address_refusals;	/* per-address cap */
	atomic_uint_fast64_t	depth_refusals;		/* max_depth */
	atomic_uint_fast64_t	decode_refusals;	/* decode budget */
	atomic_uint_fast64_t	frame_bytes_held;	/* gauge: partials */
	atomic_uint_fast64_t	errors[WITCH__ERR_SLOTS];	/* by -code */
	atomic_uint_fast64_t	latency[WITCH__LAT_BUCKETS];
	atomic_uint		clients;
};

/* Count one error reply with code (codes outside the list: nothing). */
void witch__stats_error(struct witch__counters *ctr, int code);
/*
 * The latency bucket of a request that took us microseconds.  Bucket
 * 4e + f + 1 for us in [2^e (1 + f/4), 2^e (1 + (f+1)/4)): the exponent
 * and two mantissa bits, no floating point on the request path.  Its
 * reported bound 2^(i/4) is within 6% of the true one.
 */
static inline unsigned
witch__stats_lat_bucket(uint64_t us)
{
	unsigned lg;
	unsigned b = 0;

	if (us > 0) {
		lg = 63 - (unsigned)__builtin_clzll(us);
		b = 4 * lg + 1 + (unsigned)(lg >= 2 ? (us >> (lg - 2)) & 3 :
		    lg == 1 ? (us & 1) << 1 : 0);
		if (b >= WITCH__LAT_BUCKETS)
			b = WITCH__LAT_BUCKETS - 1;
	}
	return b;
}

/* Count n answered requests in latency bucket b.  Any thread. */
static inline void
witch__stats_latency_n(struct witch__counters *ctr, unsigned b, unsigned n)
{
	atomic_fetch_add_explicit(&ctr->latency[b], n, memory_order_relaxed);
}

/* Count one answered request that took us microseconds.  Any thread. */
static inline void
witch__stats_latency(struct witch__counters *ctr, uint64_t us)
{
	witch__stats_latency_n(ctr, witch__stats_lat_bucket(us), 1);
}

#endif
