/*
 * client/client_int.h: internals of the witch client shared with its unit
 * tests.  See include/witch/client.h and doc/internals/client.md.
 */
#ifndef WITCH__CLIENT_CLIENT_INT_H
#define WITCH__CLIENT_CLIENT_INT_H

#include <stdint.h>

/* Next value of a splitmix64 generator whose state is *state. */
uint64_t witch__client_rng_next(uint64_t *state);

/*
 * Reconnect delay of attempt n (from 0), in ms: uniformly random in
 * [delay, max(delay, min(delay_max, delay * 2^n))] (full jitter above a
 * floor of delay), drawn from the generator *rng.  Pure; any thread that
 * owns *rng.
 */
uint64_t witch__client_backoff_ms(unsigned attempt, unsigned delay,
    unsigned delay_max, uint64_t *rng);

#endif
