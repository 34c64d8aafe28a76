/*
 * client/backoff.c: reconnect delays with capped exponential backoff and
 * full jitter (include/witch/client.h states the formula).
 */
#include <stdint.h>

#include "client/client_int.h"

/*
 * splitmix64 (Steele, Lea, Flood): consecutive seeds give independent
 * looking streams, so clients seeded 1, 2, 3... do not move in lock-step.
 * Any thread that owns *state.
 */
uint64_t
witch__client_rng_next(uint64_t *state)
{
	uint64_t z;

	z = (*state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/*
 * Delay of reconnect attempt n: see client_int.h.  The upper bound is
 * computed in 64 bits (delay * 2^31 cannot overflow), so no attempt
 * number wraps the cap.  Any thread that owns *rng.
 */
uint64_t
witch__client_backoff_ms(unsigned attempt, unsigned delay,
    unsigned delay_max, uint64_t *rng)
{
	uint64_t lo = delay, hi;

	if (attempt >= 32)
		hi = delay_max;
	else {
		hi = (uint64_t)delay << attempt;
		if (hi > delay_max)
			hi = delay_max;
	}
	if (hi < lo)
		hi = lo;
	/* The modulo bias is below 2^-40 for any 32-bit window. */
	return lo + witch__client_rng_next(rng) % (hi - lo + 1);
}
