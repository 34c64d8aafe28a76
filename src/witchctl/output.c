/*
 * witchctl/output.c: results on standard output, as JSON or for humans.
 *
 * The human listings are table driven: known keys get a label, a place
 * and a formatter; keys a newer server adds are printed after them with
 * a label made from the key, so nothing the server says is hidden.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "output.h"

#define WRAP_COLUMN 79

void
out_json(const json_t *v)
{
	json_dumpf(v, stdout, JSON_COMPACT | JSON_ENCODE_ANY);
	putchar('\n');
}

void
out_json_pretty(const json_t *v)
{
	/* 15 digits: 0.064, not 0.064000000000000001, for people. */
	json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY |
	    JSON_REAL_PRECISION(15));
	putchar('\n');
}

/* Print a scalar as text; other values as compact JSON. */
static void
put_value(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		fputs(json_string_value(v), stdout);
		break;
	case JSON_INTEGER:
		printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		printf("%g", json_real_value(v));
		break;
	case JSON_TRUE:
		fputs("yes", stdout);
		break;
	case JSON_FALSE:
		fputs("no", stdout);
		break;
	case JSON_NULL:
		putchar('-');
		break;
	default:
		json_dumpf(v, stdout, JSON_COMPACT);
		break;
	}
}

/* A list of words being printed, separated by ", ". */
struct wrap {
	int	col;		/* current output column */
	int	indent;		/* column of continuation lines */
	int	n;		/* words printed */
};

/* Print word and suffix, wrapping before column WRAP_COLUMN. */
static void
wrap_word(struct wrap *w, const char *word, const char *suffix)
{
	int len = (int)(strlen(word) + strlen(suffix));

	if (w->n > 0) {
		putchar(',');
		w->col++;
		if (w->col + 1 + len > WRAP_COLUMN) {
			printf("\n%*s", w->indent, "");
			w->col = w->indent;
		} else {
			putchar(' ');
			w->col++;
		}
	}
	w->col += printf("%s%s", word, suffix);
	w->n++;
}

/* An array of strings, comma separated; "-" when empty. */
static void
put_list(const json_t *a, int indent)
{
	struct wrap w = { indent, indent, 0 };
	const json_t *v;
	size_t i;

	json_array_foreach(a, i, v) {
		if (json_is_string(v))
			wrap_word(&w, json_string_value(v), "");
		else {
			if (w.n++ > 0)
				printf(", ");
			json_dumpf(v, stdout, JSON_COMPACT | JSON_ENCODE_ANY);
		}
	}
	if (w.n == 0)
		putchar('-');
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Same array of strings? */
static bool
same_list(const json_t *a, const json_t *b)
{
	return json_equal((json_t *)a, (json_t *)b);
}

/*
 * info "endpoints": {"name": ["v1", ...], ...}.  Names are sorted; an
 * endpoint served on fewer protocols than the server speaks shows them.
 */
static void
put_endpoints(const json_t *res, const json_t *eps, int indent)
{
	const json_t *protos = json_object_get(res, "protocols");
	const char **names;
	const json_t *v;
	struct wrap w = { indent, indent, 0 };
	char suffix[128];
	size_t i, n = json_object_size(eps), k;
	const char *key;
	int off;

	if (!json_is_object(eps) || n == 0) {
		put_value(eps);
		return;
	}
	if ((names = calloc(n, sizeof(*names))) == NULL) {
		put_value(eps);
		return;
	}
	i = 0;
	json_object_foreach((json_t *)eps, key, v)
		names[i++] = key;
	qsort(names, n, sizeof(*names), cmp_str);
	for (i = 0; i < n; i++) {
		v = json_object_get(eps, names[i]);
		suffix[0] = '\0';
		if (json_is_array(v) && protos != NULL &&
		    !same_list(v, protos)) {
			off = snprintf(suffix, sizeof(suffix), " (");
			for (k = 0; k < json_array_size(v) && off > 0 &&
			    (size_t)off < sizeof(suffix); k++)
				off += snprintf(suffix + off,
				    sizeof(suffix) - off, "%s%s", k ? "," : "",
				    json_string_value(json_array_get(v, k)) ?
				    json_string_value(json_array_get(v, k)) :
				    "?");
			if (off > 0 && (size_t)off < sizeof(suffix))
				snprintf(suffix + off, sizeof(suffix) - off,
				    ")");
		}
		wrap_word(&w, names[i], suffix);
	}
	free(names);
}

/* ---- "key: value" listings ------------------------------------------- */

typedef void (*put_fn)(const json_t *res, const json_t *v, int indent);

struct field {
	const char	*key;
	const char	*label;
	put_fn		 put;		/* NULL: put_value() */
};

static void
put_plain(const json_t *res, const json_t *v, int indent)
{
	if (json_is_array(v))
		put_list(v, indent);
	else
		put_value(v);
}

static const struct field *
find_field(const struct field *fields, size_t n, const char *key)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(fields[i].key, key) == 0)
			return &fields[i];
	return NULL;
}

/* Label of a key the table does not know: "output_limit_drops" etc. */
static void
key_label(const char *key, char *buf, size_t size)
{
	size_t i;

	for (i = 0; key[i] != '\0' && i + 1 < size; i++)
		buf[i] = key[i] == '_' ? ' ' : key[i];
	buf[i] = '\0';
}

static void
put_line(const json_t *res, const char *label, const json_t *v, put_fn put,
    int width)
{
	printf("%s:%*s", label, width - (int)strlen(label) + 1, "");
	(put != NULL ? put : put_plain)(res, v, width + 2);
	putchar('\n');
}

/*
 * Print the members of res: first those of fields that are present (a
 * field with a NULL label is shown by another one), then any other.
 */
static void
listing(const json_t *res, const struct field *fields, size_t n)
{
	char label[64];
	const char *key;
	json_t *v;
	size_t i;
	int width = 0, len;

	if (!json_is_object(res)) {
		out_json_pretty(res);
		return;
	}
	json_object_foreach((json_t *)res, key, v) {
		const struct field *f = find_field(fields, n, key);

		if (f != NULL && f->label == NULL)
			continue;
		key_label(key, label, sizeof(label));
		len = (int)strlen(f != NULL ? f->label : label);
		if (len > width)
			width = len;
	}
	for (i = 0; i < n; i++)
		if (fields[i].label != NULL &&
		    (v = json_object_get(res, fields[i].key)) != NULL)
			put_line(res, fields[i].label, v, fields[i].put, width);
	json_object_foreach((json_t *)res, key, v) {
		if (find_field(fields, n, key) != NULL)
			continue;
		key_label(key, label, sizeof(label));
		put_line(res, label, v, NULL, width);
	}
}

static void
put_project(const json_t *res, const json_t *v, int indent)
{
	if (json_is_string(v) && json_string_length(v) == 0)
		printf("(none)");
	else
		put_value(v);
}

static void
put_eps(const json_t *res, const json_t *v, int indent)
{
	put_endpoints(res, v, indent);
}

void
out_info(const json_t *res)
{
	static const struct field fields[] = {
		{ "name", "name", NULL },
		{ "server_id", "server id", NULL },
		{ "version", "version", NULL },
		{ "wire_version", "wire version", NULL },
		{ "protocols", "protocols", NULL },
		{ "source_hash", "source hash", NULL },
		{ "project_id", "project", put_project },
		{ "endpoints", "endpoints", put_eps },
	};

	listing(res, fields, sizeof(fields) / sizeof(fields[0]));
}

/* Seconds as "2d 3h 4m 5s", "4m 5s" or "5.2s". */
static void
put_uptime(const json_t *res, const json_t *v, int indent)
{
	double s = json_number_value(v);
	long long t = (long long)s;

	if (!json_is_number(v)) {
		put_value(v);
		return;
	}
	if (t >= 86400)
		printf("%lldd %lldh %lldm %llds", t / 86400, t % 86400 / 3600,
		    t % 3600 / 60, t % 60);
	else if (t >= 3600)
		printf("%lldh %lldm %llds", t / 3600, t % 3600 / 60, t % 60);
	else if (t >= 60)
		printf("%lldm %llds", t / 60, t % 60);
	else
		printf("%.1fs", s);
}

/* "clients/max_clients". */
static void
put_clients(const json_t *res, const json_t *v, int indent)
{
	const json_t *max = json_object_get(res, "max_clients");

	put_value(v);
	if (max != NULL) {
		putchar('/');
		put_value(max);
	}
}

/* An array of peers by its size. */
static void
put_count(const json_t *res, const json_t *v, int indent)
{
	if (!json_is_array(v))
		put_plain(res, v, indent);
	else if (json_array_size(v) == 0)
		printf("none");
	else
		printf("%zu (see 'witchctl peers')", json_array_size(v));
}

void
out_status(const json_t *res)
{
	static const struct field fields[] = {
		{ "uptime", "uptime", put_uptime },
		{ "clients", "clients", put_clients },
		{ "max_clients", NULL, NULL },
		{ "workers", "workers", NULL },
		{ "running", "running", NULL },
		{ "queue_depth", "queue depth", NULL },
		{ "requests_served", "requests served", NULL },
		{ "requests_failed", "requests failed", NULL },
		{ "overloaded", "overloaded", NULL },
		{ "connections_accepted", "connections accepted", NULL },
		{ "connections_rejected", "connections rejected", NULL },
		{ "output_limit_drops", "output limit drops", NULL },
		{ "emfile_pauses", "emfile pauses", NULL },
		{ "peers", "peers", put_count },
	};

	listing(res, fields, sizeof(fields) / sizeof(fields[0]));
}

/* ---- peer table ------------------------------------------------------ */

static const struct {
	const char	*key;
	const char	*title;
} peer_cols[] = {
	{ "name", "NAME" }, { "server_id", "ID" }, { "address", "ADDRESS" },
	{ "port", "PORT" }, { "status", "STATUS" },
	{ "last_seen", "LAST SEEN" }, { "rtt_ms", "RTT" },
};
#define NPEERCOLS (sizeof(peer_cols) / sizeof(peer_cols[0]))

/* One cell as text: ids cut to 8 digits, ages and round trips in units. */
static void
cell(const json_t *peer, size_t col, char *buf, size_t size)
{
	const char *key = peer_cols[col].key;
	const json_t *v = json_object_get(peer, key);
	char *s;

	if (v == NULL || json_is_null(v))
		snprintf(buf, size, "-");
	else if (json_is_string(v) && strcmp(key, "server_id") == 0)
		snprintf(buf, size, "%.8s", json_string_value(v));
	else if (json_is_string(v))
		snprintf(buf, size, "%s", json_string_value(v));
	else if (json_is_number(v) && strcmp(key, "last_seen") == 0)
		snprintf(buf, size, "%.1fs ago", json_number_value(v));
	else if (json_is_number(v) && strcmp(key, "rtt_ms") == 0)
		snprintf(buf, size, "%.2fms", json_number_value(v));
	else if ((s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) !=
	    NULL) {
		snprintf(buf, size, "%s", s);
		free(s);
	} else
		snprintf(buf, size, "?");
}

void
out_peers(const json_t *res)
{
	const json_t *list = res, *peer;
	char buf[128];
	int width[NPEERCOLS];
	size_t i, col;

	if (json_is_object(res) && json_is_array(json_object_get(res,
	    "peers")))
		list = json_object_get(res, "peers");
	if (!json_is_array(list)) {
		out_json_pretty(res);
		return;
	}
	if (json_array_size(list) == 0) {
		printf("no peers\n");
		return;
	}
	for (col = 0; col < NPEERCOLS; col++)
		width[col] = (int)strlen(peer_cols[col].title);
	json_array_foreach(list, i, peer)
		for (col = 0; col < NPEERCOLS; col++) {
			cell(peer, col, buf, sizeof(buf));
			if ((int)strlen(buf) > width[col])
				width[col] = (int)strlen(buf);
		}
	for (col = 0; col < NPEERCOLS; col++)
		printf("%-*s%s", col + 1 < NPEERCOLS ? width[col] : 0,
		    peer_cols[col].title, col + 1 < NPEERCOLS ? "  " : "\n");
	json_array_foreach(list, i, peer)
		for (col = 0; col < NPEERCOLS; col++) {
			cell(peer, col, buf, sizeof(buf));
			printf("%-*s%s", col + 1 < NPEERCOLS ? width[col] : 0,
			    buf, col + 1 < NPEERCOLS ? "  " : "\n");
		}
}

/* ---- clients table --------------------------------------------------- */

void
out_duration(double s, char *buf, size_t size)
{
	long long t = (long long)s;

	if (!(s >= 0))
		snprintf(buf, size, "-");
	else if (t >= 86400)
		snprintf(buf, size, "%lldd%02lldh", t / 86400,
		    t % 86400 / 3600);
	else if (t >= 3600)
		snprintf(buf, size, "%lldh%02lldm", t / 3600, t % 3600 / 60);
	else if (t >= 60)
		snprintf(buf, size, "%lldm%02llds", t / 60, t % 60);
	else
		snprintf(buf, size, "%.1fs", s);
}

/* Columns of the clients table: key, title, right-aligned, a duration. */
static const struct {
	const char	*key;
	const char	*title;
	bool		 right;
	bool		 duration;
} client_cols[] = {
	{ "id", "ID", true, false },
	{ "addr", "ADDR", false, false },
	{ "name", "NAME", false, false },
	{ "age", "AGE", true, true },
	{ "idle", "IDLE", true, true },
	{ "inflight", "INFLIGHT", true, false },
	{ "output_bytes", "OUTPUT", true, false },
	{ "requests", "REQUESTS", true, false },
};
#define NCLIENTCOLS (sizeof(client_cols) / sizeof(client_cols[0]))

/* One cell of the clients table; "-" for a missing value or no name. */
static void
client_cell(const json_t *cl, size_t col, char *buf, size_t size)
{
	const json_t *v = json_object_get(cl, client_cols[col].key);
	char *s;

	if (v == NULL || json_is_null(v) ||
	    (json_is_string(v) && json_string_length(v) == 0))
		snprintf(buf, size, "-");
	else if (json_is_number(v) && client_cols[col].duration)
		out_duration(json_number_value(v), buf, size);
	else if (json_is_string(v))
		snprintf(buf, size, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, size, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
	else if ((s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) !=
	    NULL) {
		snprintf(buf, size, "%s", s);
		free(s);
	} else
		snprintf(buf, size, "?");
}

static int
cmp_client_id(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(
	    *(json_t *const *)a, "id"));
	json_int_t y = json_integer_value(json_object_get(
	    *(json_t *const *)b, "id"));

	return x < y ? -1 : x > y;
}

static void
client_row(const json_t *cl, const int *width, bool title)
{
	char buf[160];
	size_t col;
	bool last;

	for (col = 0; col < NCLIENTCOLS; col++) {
		last = col + 1 == NCLIENTCOLS;
		if (title)
			snprintf(buf, sizeof(buf), "%s",
			    client_cols[col].title);
		else
			client_cell(cl, col, buf, sizeof(buf));
		if (client_cols[col].right)
			printf("%*s", width[col], buf);
		else
			printf("%-*s", last ? 0 : width[col], buf);
		fputs(last ? "\n" : "  ", stdout);
	}
}

void
out_clients(const json_t *res)
{
	json_t **rows;
	char buf[160];
	int width[NCLIENTCOLS];
	size_t i, n, col;

	if (!json_is_array(res)) {
		out_json_pretty(res);
		return;
	}
	n = json_array_size(res);
	if ((rows = calloc(n + 1, sizeof(*rows))) == NULL) {
		out_json_pretty(res);
		return;
	}
	for (i = 0; i < n; i++)
		rows[i] = json_array_get(res, i);
	qsort(rows, n, sizeof(*rows), cmp_client_id);
	for (col = 0; col < NCLIENTCOLS; col++)
		width[col] = (int)strlen(client_cols[col].title);
	for (i = 0; i < n; i++)
		for (col = 0; col < NCLIENTCOLS; col++) {
			client_cell(rows[i], col, buf, sizeof(buf));
			if ((int)strlen(buf) > width[col])
				width[col] = (int)strlen(buf);
		}
	client_row(NULL, width, true);
	for (i = 0; i < n; i++)
		client_row(rows[i], width, false);
	free(rows);
}

/* ---- stats ----------------------------------------------------------- */

/* latency: "p50/p90/p99/p99.9 = 0.011/0.016/0.023/0.023 ms, 7 requests". */
static void
put_latency(const json_t *res, const json_t *v, int indent)
{
	static const char *keys[] = { "p50_ms", "p90_ms", "p99_ms",
	    "p999_ms" };
	const json_t *count = json_object_get(v, "count"), *p;
	size_t i;

	if (!json_is_object(v) || !json_is_integer(count)) {
		put_plain(res, v, indent);
		return;
	}
	if (json_integer_value(count) == 0) {
		printf("no requests timed yet");
		return;
	}
	printf("p50/p90/p99/p99.9 = ");
	for (i = 0; i < 4; i++) {
		p = json_object_get(v, keys[i]);
		if (i > 0)
			putchar('/');
		if (json_is_number(p))
			printf("%.3f", json_number_value(p));
		else
			putchar('-');
	}
	printf(" ms, %" JSON_INTEGER_FORMAT " request%s",
	    json_integer_value(count),
	    json_integer_value(count) == 1 ? "" : "s");
}

/*
 * An object of rows as a table sorted by key: the first column titled
 * first, then one column per member of cols (integers, right-aligned);
 * a row that is a bare number is the only column.
 */
static void
named_table(const json_t *obj, const char *first, const char *const *cols,
    const char *const *titles, size_t ncols)
{
	const char **names;
	const json_t *row, *v;
	const char *key;
	int w0 = (int)strlen(first), w[4];
	size_t i, c, n = json_object_size(obj);

	if ((names = calloc(n + 1, sizeof(*names))) == NULL)
		return;
	i = 0;
	json_object_foreach((json_t *)obj, key, row) {
		names[i++] = key;
		if ((int)strlen(key) > w0)
			w0 = (int)strlen(key);
	}
	qsort(names, n, sizeof(*names), cmp_str);
	for (c = 0; c < ncols && c < 4; c++)
		w[c] = (int)strlen(titles[c]) < 8 ? 8 :
		    (int)strlen(titles[c]);
	printf("%-*s", w0, first);
	for (c = 0; c < ncols && c < 4; c++)
		printf("  %*s", w[c], titles[c]);
	putchar('\n');
	for (i = 0; i < n; i++) {
		row = json_object_get(obj, names[i]);
		printf("%-*s", w0, names[i]);
		for (c = 0; c < ncols && c < 4; c++) {
			v = cols[c] != NULL ? json_object_get(row, cols[c]) :
			    row;
			if (json_is_integer(v))
				printf("  %*" JSON_INTEGER_FORMAT, w[c],
				    json_integer_value(v));
			else
				printf("  %*s", w[c], "-");
		}
		putchar('\n');
	}
	free(names);
}

void
out_stats(const json_t *res)
{
	static const struct field fields[] = {
		{ "uptime", "uptime", put_uptime },
		{ "clients", "clients", NULL },
		{ "connections_accepted", "connections accepted", NULL },
		{ "connections_rejected", "connections rejected", NULL },
		{ "requests_served", "requests served", NULL },
		{ "requests_failed", "requests failed", NULL },
		{ "protocol_errors", "protocol errors", NULL },
		{ "overloaded", "overloaded", NULL },
		{ "output_limit_drops", "output limit drops", NULL },
		{ "emfile_pauses", "emfile pauses", NULL },
		{ "queue_depth", "queue depth", NULL },
		{ "running", "running", NULL },
		{ "latency", "latency", put_latency },
		{ "endpoints", NULL, NULL },
		{ "errors", NULL, NULL },
	};
	static const char *const ep_cols[] = { "calls", "errors" };
	static const char *const ep_titles[] = { "CALLS", "ERRORS" };
	static const char *const err_cols[] = { NULL };
	static const char *const err_titles[] = { "COUNT" };
	const json_t *eps = json_object_get(res, "endpoints");
	const json_t *errs = json_object_get(res, "errors");

	listing(res, fields, sizeof(fields) / sizeof(fields[0]));
	if (!json_is_object(res))
		return;
	putchar('\n');
	if (json_is_object(eps) && json_object_size(eps) > 0)
		named_table(eps, "ENDPOINT", ep_cols, ep_titles, 2);
	else
		printf("no endpoint called yet\n");
	putchar('\n');
	if (json_is_object(errs) && json_object_size(errs) > 0)
		named_table(errs, "ERROR", err_cols, err_titles, 1);
	else
		printf("no errors\n");
}
