/*
 * witchctl/prom.c: witchctl stats --prometheus, the server's counters and
 * gauges in the Prometheus text exposition format (version 0.0.4).
 *
 * The single-valued metrics are rows of the scalars[] table: which
 * endpoint's result and key they come from, their name, type and help.
 * Exporting one more number the server reports is one more row.  Metrics
 * with labels (one series per endpoint, per error code, per quantile) have
 * a function each, called from prom_write(); a future per-peer family
 * (the peer table, once peers land) is one more such function over the
 * status result's "peers" array.  Keys missing from a result (an older
 * server) leave their family out: no HELP or TYPE without a sample.
 *
 * Naming follows the Prometheus conventions: a witch_ prefix, base units
 * in the name (seconds), _total on counters, and for the per-endpoint
 * figures a total and an errors counter rather than an outcome label (so
 * that neither is a difference of two snapshots).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "prom.h"

enum prom_src {
	SRC_INFO,
	SRC_STATUS,
	SRC_STATS,
	SRC_COUNT
};

enum prom_kind {
	KIND_NUMBER,		/* the member's value */
	KIND_SIZE		/* the number of elements of an array */
};

struct prom_scalar {
	enum prom_src	 src;
	const char	*key;
	enum prom_kind	 kind;
	const char	*name;
	const char	*type;
	const char	*help;
};

static const struct prom_scalar scalars[] = {
	{ SRC_STATS, "uptime", KIND_NUMBER, "witch_uptime_seconds", "gauge",
	  "Seconds since the server started." },
	{ SRC_STATS, "clients", KIND_NUMBER, "witch_clients", "gauge",
	  "Clients connected now." },
	{ SRC_STATUS, "max_clients", KIND_NUMBER, "witch_clients_max", "gauge",
	  "Most clients the server accepts at once (max_clients)." },
	{ SRC_STATUS, "workers", KIND_NUMBER, "witch_workers", "gauge",
	  "Worker threads running handlers." },
	{ SRC_STATS, "queue_depth", KIND_NUMBER, "witch_queued_requests",
	  "gauge", "Requests waiting for a worker." },
	{ SRC_STATS, "running", KIND_NUMBER, "witch_running_requests",
	  "gauge", "Requests a worker is running now." },
	{ SRC_STATUS, "peers", KIND_SIZE, "witch_peers", "gauge",
	  "Peers in the server's peer table." },
	{ SRC_STATS, "connections_accepted", KIND_NUMBER,
	  "witch_connections_accepted_total", "counter",
	  "Connections accepted." },
	{ SRC_STATS, "connections_rejected", KIND_NUMBER,
	  "witch_connections_rejected_total", "counter",
	  "Connections refused (max_clients reached or the server stopping)." },
	{ SRC_STATS, "requests_served", KIND_NUMBER,
	  "witch_requests_served_total", "counter",
	  "Requests answered with a result." },
	{ SRC_STATS, "requests_failed", KIND_NUMBER,
	  "witch_requests_failed_total", "counter",
	  "Requests answered with an error." },
	{ SRC_STATS, "protocol_errors", KIND_NUMBER,
	  "witch_protocol_errors_total", "counter",
	  "Frames that were not a valid request envelope." },
	{ SRC_STATS, "overloaded", KIND_NUMBER,
	  "witch_requests_overloaded_total", "counter",
	  "Requests refused because the worker queue was full." },
	{ SRC_STATS, "output_limit_drops", KIND_NUMBER,
	  "witch_output_limit_drops_total", "counter",
	  "Clients dropped for reaching the hard output limit." },
	{ SRC_STATS, "emfile_pauses", KIND_NUMBER,
	  "witch_accept_emfile_pauses_total", "counter",
	  "Times accepting paused for lack of file descriptors." },
	{ SRC_STATS, "direct_writes", KIND_NUMBER,
	  "witch_direct_writes_total", "counter",
	  "Reply batches a worker wrote to the client's socket itself." },
	{ SRC_STATS, "direct_short_writes", KIND_NUMBER,
	  "witch_direct_short_writes_total", "counter",
	  "Direct writes the socket took only part of." },
	/* The memory budgets (witchd.conf(5), MEMORY BUDGETS). */
	{ SRC_STATS, "frame_bytes_held", KIND_NUMBER,
	  "witch_frame_bytes_held", "gauge",
	  "Bytes held in incomplete frames, all clients." },
	{ SRC_STATS, "frame_timeouts", KIND_NUMBER,
	  "witch_frame_timeouts_total", "counter",
	  "Clients closed for a frame not complete within frame-timeout." },
	{ SRC_STATS, "frame_budget_drops", KIND_NUMBER,
	  "witch_frame_budget_drops_total", "counter",
	  "Clients closed for holding the largest frames past frame-budget." },
	{ SRC_STATS, "preauth_frame_refusals", KIND_NUMBER,
	  "witch_preauth_frame_refusals_total", "counter",
	  "Frames over preauth-max-frame." },
	{ SRC_STATS, "address_refusals", KIND_NUMBER,
	  "witch_address_refusals_total", "counter",
	  "Connections over max-clients-per-address." },
	{ SRC_STATS, "depth_refusals", KIND_NUMBER,
	  "witch_depth_refusals_total", "counter",
	  "Requests nested deeper than max-depth." },
	{ SRC_STATS, "decode_refusals", KIND_NUMBER,
	  "witch_decode_refusals_total", "counter",
	  "Requests refused by the decode budget." },
};

/* Latency quantiles of the stats result: key, quantile label. */
static const struct {
	const char	*key;
	const char	*quantile;
} quantiles[] = {
	{ "p50_ms", "0.5" },
	{ "p90_ms", "0.9" },
	{ "p99_ms", "0.99" },
	{ "p999_ms", "0.999" },
};

static void
family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A sample value: integers exactly, reals in Go's float syntax. */
static void
put_value(FILE *f, const json_t *v, double scale)
{
	double d;

	if (json_is_integer(v) && scale == 1) {
		fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return;
	}
	d = json_is_number(v) ? json_number_value(v) * scale : NAN;
	if (isnan(d))
		fputs("NaN", f);
	else if (isinf(d))
		fputs(d > 0 ? "+Inf" : "-Inf", f);
	else
		fprintf(f, "%.9g", d);
}

/* A label value, quoted, with \, " and newline escaped. */
static void
put_label(FILE *f, const char *s)
{
	putc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			putc(*s, f);
	}
	putc('"', f);
}

/* One sample with one label: NAME{LABEL="VALUE"} v */
static void
put_sample1(FILE *f, const char *name, const char *label, const char *lval,
    const json_t *v)
{
	fprintf(f, "%s{%s=", name, label);
	put_label(f, lval);
	fputs("} ", f);
	put_value(f, v, 1);
	putc('\n', f);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of obj, sorted, in a NULL-terminated array to free (or NULL). */
static const char **
sorted_keys(const json_t *obj)
{
	const char **keys, *key;
	size_t n = 0;
	json_t *v;

	if ((keys = calloc(json_object_size(obj) + 1, sizeof(*keys))) == NULL)
		return NULL;
	json_object_foreach((json_t *)obj, key, v)
		keys[n++] = key;
	qsort(keys, n, sizeof(*keys), cmp_str);
	return keys;
}

static void
put_scalars(FILE *f, const json_t *const res[SRC_COUNT])
{
	const struct prom_scalar *m;
	const json_t *v;
	size_t i;

	for (i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
		m = &scalars[i];
		v = json_object_get(res[m->src], m->key);
		if (m->kind == KIND_SIZE ? !json_is_array(v) :
		    !json_is_number(v))
			continue;
		family(f, m->name, m->type, m->help);
		fprintf(f, "%s ", m->name);
		if (m->kind == KIND_SIZE)
			fprintf(f, "%zu", json_array_size(v));
		else
			put_value(f, v, 1);
		putc('\n', f);
	}
}

/* witch_server_info{name=...,server_id=...,version=...} 1 */
static void
put_info(FILE *f, const json_t *info)
{
	static const char *const labels[] = { "name", "server_id",
	    "version" };
	const json_t *v;
	size_t i;

	if (!json_is_object(info))
		return;
	family(f, "witch_server_info", "gauge",
	    "The server's name, id and library version (value 1).");
	fputs("witch_server_info{", f);
	for (i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
		v = json_object_get(info, labels[i]);
		fprintf(f, "%s%s=", i > 0 ? "," : "", labels[i]);
		put_label(f, json_is_string(v) ? json_string_value(v) : "");
	}
	fputs("} 1\n", f);
}

/* Per endpoint: witch_endpoint_requests_total and ..._errors_total. */
static void
put_endpoints(FILE *f, const json_t *stats)
{
	static const struct {
		const char	*member;
		const char	*name;
		const char	*help;
	} fams[] = {
		{ "calls", "witch_endpoint_requests_total",
		  "Requests run by each endpoint's handler." },
		{ "errors", "witch_endpoint_request_errors_total",
		  "Requests whose handler failed, by endpoint." },
	};
	const json_t *eps = json_object_get(stats, "endpoints"), *v;
	const char **keys;
	size_t i, k;

	if (!json_is_object(eps) || (keys = sorted_keys(eps)) == NULL)
		return;
	for (k = 0; k < sizeof(fams) / sizeof(fams[0]); k++) {
		family(f, fams[k].name, "counter", fams[k].help);
		for (i = 0; keys[i] != NULL; i++) {
			v = json_object_get(json_object_get(eps, keys[i]),
			    fams[k].member);
			if (json_is_number(v))
				put_sample1(f, fams[k].name, "endpoint",
				    keys[i], v);
		}
	}
	free(keys);
}

/* witch_error_replies_total{code="..."} from the stats result. */
static void
put_errors(FILE *f, const json_t *stats)
{
	const json_t *errs = json_object_get(stats, "errors"), *v;
	const char **keys;
	size_t i;

	if (!json_is_object(errs) || (keys = sorted_keys(errs)) == NULL)
		return;
	family(f, "witch_error_replies_total", "counter",
	    "Error replies sent, by error code (witch-protocol(7)).");
	for (i = 0; keys[i] != NULL; i++) {
		v = json_object_get(errs, keys[i]);
		if (json_is_number(v))
			put_sample1(f, "witch_error_replies_total", "code",
			    keys[i], v);
	}
	free(keys);
}

/*
 * witch_request_duration_seconds: a summary of the latency quantiles the
 * server computes from its histogram since it started (NaN before the
 * first request), and their count.  The server keeps no sum.
 */
static void
put_latency(FILE *f, const json_t *stats)
{
	const json_t *lat = json_object_get(stats, "latency");
	const json_t *count = json_object_get(lat, "count");
	size_t i;

	if (!json_is_object(lat) || !json_is_integer(count))
		return;
	family(f, "witch_request_duration_seconds", "summary",
	    "Time from reading a request to its reply being ready.");
	for (i = 0; i < sizeof(quantiles) / sizeof(quantiles[0]); i++) {
		fprintf(f, "witch_request_duration_seconds{quantile=\"%s\"} ",
		    quantiles[i].quantile);
		put_value(f, json_object_get(lat, quantiles[i].key), 1e-3);
		putc('\n', f);
	}
	fputs("witch_request_duration_seconds_count ", f);
	put_value(f, count, 1);
	putc('\n', f);
}

void
prom_write(FILE *f, const json_t *info, const json_t *status,
    const json_t *stats)
{
	const json_t *res[SRC_COUNT];

	res[SRC_INFO] = info;
	res[SRC_STATUS] = status;
	res[SRC_STATS] = stats;
	put_info(f, info);
	put_scalars(f, res);
	put_endpoints(f, stats);
	put_errors(f, stats);
	put_latency(f, stats);
}
