/*
 * core/stats.c: counting errors.  Any thread; relaxed
 * atomics (the counters are statistics, not synchronisation).
 */
#include <stdatomic.h>
#include <stdint.h>

#include "core/stats.h"

void
witch__stats_error(struct witch__counters *ctr, int code)
{
	if (code < 0 && (unsigned)-code < WITCH__ERR_SLOTS)
		atomic_fetch_add_explicit(&ctr->errors[-code], 1,
		    memory_order_relaxed);
}
