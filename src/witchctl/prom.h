/*
 * witchctl/prom.h: the server's counters and gauges in the Prometheus text
 * exposition format (witchctl stats --prometheus).  Main thread only;
 * results are borrowed.
 */
#ifndef WITCHCTL_PROM_H
#define WITCHCTL_PROM_H

#include <stdio.h>

#include <jansson.h>

/*
 * Write to f, in the Prometheus text exposition format (version 0.0.4),
 * every metric found in the results of the "info", "status" and "stats"
 * endpoints (any may be NULL: its metrics are left out).  Each family gets
 * its HELP and TYPE lines; names start with "witch_", counters end in
 * "_total", durations are in seconds.  Write errors are left in f's error
 * indicator for the caller.
 */
void	prom_write(FILE *f, const json_t *info, const json_t *status,
	    const json_t *stats);

#endif /* WITCHCTL_PROM_H */
