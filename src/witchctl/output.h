/*
 * witchctl/output.h: printing results on standard output, as JSON or for
 * humans.  Main thread only; results are borrowed.
 */
#ifndef WITCHCTL_OUTPUT_H
#define WITCHCTL_OUTPUT_H

#include <jansson.h>

/* Print v as compact JSON (any value) and a newline. */
void	out_json(const json_t *v);
/* Print v as JSON indented by two spaces (reals to 15 digits), newline. */
void	out_json_pretty(const json_t *v);
/* Print the result of "info" as "key: value" lines. */
void	out_info(const json_t *res);
/* Print the result of "status" as "key: value" lines. */
void	out_status(const json_t *res);
/* Print the result of "peer_list" as a table, or "no peers". */
void	out_peers(const json_t *res);
/* Print the result of "clients" as a table sorted by id. */
void	out_clients(const json_t *res);
/* Print the result of "stats": counters, then endpoint and error tables. */
void	out_stats(const json_t *res);
/* Format seconds as "5.2s", "4m05s", "3h04m" or "2d03h" into buf. */
void	out_duration(double s, char *buf, size_t size);

#endif /* WITCHCTL_OUTPUT_H */
