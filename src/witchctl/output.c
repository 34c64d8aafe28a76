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
	{ "id", "ID" }, { "name", "NAME" }, { "address", "ADDRESS" },
	{ "status", "STATUS" }, { "last_seen", "LAST SEEN" },
};
#define NPEERCOLS (sizeof(peer_cols) / sizeof(peer_cols[0]))

/* One cell as text; last_seen as a time (unix time) or an age. */
static void
cell(const json_t *peer, size_t col, char *buf, size_t size)
{
	const json_t *v = json_object_get(peer, peer_cols[col].key);
	struct tm tm;
	time_t t;
	char *s;

	if (v == NULL || json_is_null(v))
		snprintf(buf, size, "-");
	else if (json_is_string(v))
		snprintf(buf, size, "%s", json_string_value(v));
	else if (json_is_number(v) && col == NPEERCOLS - 1) {
		if (json_number_value(v) > 1e9) {
			t = (time_t)json_number_value(v);
			localtime_r(&t, &tm);
			strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
		} else
			snprintf(buf, size, "%.1fs ago", json_number_value(v));
	} else if ((s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) !=
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
