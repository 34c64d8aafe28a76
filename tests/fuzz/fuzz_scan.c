/*
 * tests/fuzz/fuzz_scan.c: the scanner's counts and walkers (proto/scan.h)
 * that the decode budget and the built-ins rely on.
 *
 * On every input the scanner accepts: the cost it reports covers the
 * jansson tree of the same text (the depth, and the estimate summed over
 * the tree's objects, arrays, strings, numbers, literals and keys with
 * the same WITCH__JCOST_* sizes: at least as much as the tree holds,
 * exactly as much when the text has no duplicate keys, which jansson's
 * JSON_REJECT_DUPLICATES tells; the sizes are distinct, so a miscounted
 * element changes the sum), the estimate is within a
 * factor of the heap jansson really takes for it (the budget must not be
 * fooled by a shape the estimate undercounts), the elements of a top-level
 * array walked with witch__json_array_next() are each valid JSON on their
 * own and as many as jansson sees, and every string element decodes with
 * witch__json_string_copy() to jansson's value (up to a \u0000).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <witch/error.h>

#include "proto/scan.h"
#include "common.h"

/* jansson's heap: live bytes (16 of overhead per block) and the peak. */
static size_t heap, heap_peak;

static void *
count_alloc(size_t n)
{
	size_t *p = malloc(n + sizeof(size_t));

	if (p == NULL)
		return NULL;
	*p = n;
	heap += n + 16;
	if (heap > heap_peak)
		heap_peak = heap;
	return p + 1;
}

static void
count_free(void *v)
{
	size_t *p = v;

	if (p == NULL)
		return;
	heap -= p[-1] + 16;
	free(p - 1);
}

/* Walk a jansson tree: the cost the scanner should report. */
static void
tree_cost(json_t *j, unsigned depth, struct witch__jcost *c)
{
	const char *k;
	json_t *v;
	size_t i;

	if (depth > c->depth)
		c->depth = depth;
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		c->bytes += WITCH__JCOST_OBJECT;
		json_object_foreach(j, k, v) {
			c->bytes += WITCH__JCOST_KEY;
			tree_cost(v, depth + 1, c);
		}
		break;
	case JSON_ARRAY:
		c->bytes += WITCH__JCOST_ARRAY;
		json_array_foreach(j, i, v)
			tree_cost(v, depth + 1, c);
		break;
	case JSON_STRING:
		c->bytes += WITCH__JCOST_STRING;
		break;
	case JSON_INTEGER:
	case JSON_REAL:
		c->bytes += WITCH__JCOST_NUMBER;
		break;
	default:
		c->bytes += WITCH__JCOST_LITERAL;
		break;
	}
}

static void
check_walk(const char *data, size_t size, json_t *tree)
{
	struct witch__jspan arr, el;
	enum witch__jtype top;
	const char *s;
	char buf[64];
	size_t pos = 0, n = 0;
	bool kesc;
	json_t *j;

	/* The whole text as an array span, as the scanner reports it. */
	arr.p = data;
	arr.len = size;
	arr.type = WITCH__J_ARRAY;
	arr.escaped = false;
	while (size > 0 && (*arr.p == ' ' || *arr.p == '\t' ||
	    *arr.p == '\n' || *arr.p == '\r')) {
		arr.p++;
		arr.len--;
	}
	while (arr.len > 0 && (arr.p[arr.len - 1] == ' ' ||
	    arr.p[arr.len - 1] == '\t' || arr.p[arr.len - 1] == '\n' ||
	    arr.p[arr.len - 1] == '\r'))
		arr.len--;
	while (witch__json_array_next(&arr, &pos, &el)) {
		if (witch__json_scan(el.p, el.len, &top, NULL, 0, &kesc) != 0)
			abort();
		j = json_array_get(tree, n);
		if (j == NULL)
			abort();
		if (el.type == WITCH__J_STRING) {
			(void)witch__json_string_copy(&el, buf, sizeof(buf));
			if (!json_is_string(j))
				abort();
			/*
			 * A prefix of jansson's value (a \u0000 ends the
			 * copy, the buffer may cut it), all of it when short.
			 */
			s = json_string_value(j);
			if (strncmp(buf, s, strlen(buf)) != 0 ||
			    (strlen(s) < sizeof(buf) - 1 &&
			    strlen(buf) != strlen(s)))
				abort();
		}
		n++;
	}
	if (n != json_array_size(tree))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct witch__jcost sc, tc;
	enum witch__jtype top;
	size_t est;
	bool kesc;
	json_t *j, *d;
	int v;

	static int once;

	if (!once) {
		/* Before any jansson allocation, for good. */
		json_set_alloc_funcs(count_alloc, count_free);
		once = 1;
	}
	fuzz_seed_once();
	v = witch__json_scan_cost((const char *)data, size, &top, NULL, 0,
	    &kesc, &sc);
	if (v != 0)
		return 0;
	heap = heap_peak = 0;
	j = json_loadb((const char *)data, size,
	    JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (j == NULL)
		abort();	/* fuzz_request checks the verdicts agree */
	memset(&tc, 0, sizeof(tc));
	tc.bytes = size;
	tree_cost(j, 1, &tc);
	if (sc.depth < tc.depth || sc.bytes < tc.bytes)
		abort();
	est = sc.bytes;
	if (heap_peak > 2 * est + 4096)
		abort();
	/* Without duplicate keys the tree holds exactly what was scanned. */
	if ((d = json_loadb((const char *)data, size, JSON_DECODE_ANY |
	    JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL)) != NULL) {
		if (sc.depth != tc.depth || sc.bytes != tc.bytes)
			abort();
		json_decref(d);
	}
	if (json_is_array(j))
		check_walk((const char *)data, size, j);
	json_decref(j);
	return 0;
}
