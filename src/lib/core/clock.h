/*
 * core/clock.h: the monotonic clock every layer reads.
 */
#ifndef WITCH__CORE_CLOCK_H
#define WITCH__CORE_CLOCK_H

#include <stdint.h>

/* Monotonic clock (CLOCK_MONOTONIC) in nanoseconds.  Any thread. */
uint64_t witch__now_ns(void);

#endif
