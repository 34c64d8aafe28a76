/*
 * bench/template.c: the fixed part of witch-bench's requests, built once:
 * for witch, what follows the id (the endpoint and -d bytes of data, or
 * with --object a JSON object of that size); for RESP, the whole command.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "bench.h"

/*
 * --object: a JSON object of exactly size (>= 10) bytes at out, not
 * terminated: string and integer members, then "pad" filling the rest.
 */
static void
build_object(unsigned char *out, size_t size)
{
	char m[64];
	size_t len = 1, i, n;

	out[0] = '{';
	for (i = 0; size - len > 48; i++) {
		if (i % 2)
			n = (size_t)snprintf(m, sizeof(m), "\"n%zu\":%zu,", i,
			    i * 7919);
		else
			n = (size_t)snprintf(m, sizeof(m),
			    "\"k%zu\":\"abcdefghijklmnop\",", i);
		memcpy(out + len, m, n);
		len += n;
	}
	memcpy(out + len, "\"pad\":\"", 7);
	len += 7;
	n = size - len - 2;
	memset(out + len, 'x', n);
	len += n;
	memcpy(out + len, "\"}", 2);
}

void
build_template(void)
{
	char head[128];
	size_t i, hl, cl;
	int n;

	if (!o.resp) {
		/* data: an object of about dsize bytes, or a string of them */
		const char *tail = o.object ? "}" : "\"}";
		size_t tl = strlen(tail);

		n = snprintf(head, sizeof(head), ",\"endpoint\":\"%s\","
		    "\"data\":%s", o.endpoint, o.object ? "" : "\"");
		hl = (size_t)n;
		tmpllen = hl + o.dsize + tl;
		tmpl = xmalloc(tmpllen);
		memcpy(tmpl, head, hl);
		if (o.object)
			build_object(tmpl + hl, o.dsize);
		else
			memset(tmpl + hl, 'x', o.dsize);
		memcpy(tmpl + hl + o.dsize, tail, tl);
		return;
	}
	cl = strlen(o.endpoint);
	if (strcasecmp(o.endpoint, "ping") == 0)
		n = snprintf(head, sizeof(head), "*1\r\n$%zu\r\n", cl);
	else
		n = snprintf(head, sizeof(head), "*2\r\n$%zu\r\n", cl);
	hl = (size_t)n;
	tmpl = xmalloc(hl + cl + 2 + 32 + o.dsize + 2);
	memcpy(tmpl, head, hl);
	for (i = 0; i < cl; i++)
		tmpl[hl + i] = (unsigned char)(o.endpoint[i] & ~0x20);
	memcpy(tmpl + hl + cl, "\r\n", 2);
	tmpllen = hl + cl + 2;
	if (strcasecmp(o.endpoint, "ping") == 0)
		return;
	n = snprintf((char *)tmpl + tmpllen, 32, "$%zu\r\n", o.dsize);
	tmpllen += (size_t)n;
	memset(tmpl + tmpllen, 'x', o.dsize);
	tmpllen += o.dsize;
	memcpy(tmpl + tmpllen, "\r\n", 2);
	tmpllen += 2;
}
