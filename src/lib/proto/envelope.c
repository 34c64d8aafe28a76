/*
 * proto/envelope.c: parse and validate a request payload.
 *
 * The rules are those of protocol.md; the decisions jansson leaves open
 * (duplicate keys, NUL, nesting depth, id limits) are written down in
 * doc/internals/framing.md.  Reply building lives in proto/reply.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <witch/error.h>

#include "core/alloc.h"
#include "proto/envelope.h"
#include "proto/scan.h"

#define ENDPOINT_MAX	63	/* longest endpoint name, in bytes */
/* Invalid JSON up to this size is parsed by jansson for its message. */
#define SLOW_PARSE_MAX	65536

static void __attribute__((format(printf, 3, 4)))
set_msg(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;
	unsigned char *c;

	if (msg == NULL || msglen == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
	/* One line: jansson's text may quote control bytes of the input. */
	for (c = (unsigned char *)msg; *c != '\0'; c++)
		if (*c < 0x20 || *c == 0x7f)
			*c = ' ';
}

/*
 * Write the compact JSON text of an id (integer or string) into buf, NUL
 * terminated.  Returns 0, or WITCH_EINVALID_REQUEST when id has another
 * type or its text is longer than WITCH__ID_MAX bytes or than buflen - 1.
 * Any thread (id must not be modified concurrently).
 */
int
witch__id_format(const json_t *id, char *buf, size_t buflen)
{
	size_t room, n;

	if (id == NULL || buf == NULL || buflen == 0)
		return WITCH_EINVALID_REQUEST;
	if (!json_is_integer(id) && !json_is_string(id))
		return WITCH_EINVALID_REQUEST;
	room = buflen - 1;
	if (room > WITCH__ID_MAX)
		room = WITCH__ID_MAX;
	n = json_dumpb(id, buf, room, JSON_COMPACT | JSON_ENCODE_ANY);
	if (n == 0 || n > room) {
		buf[0] = '\0';
		return WITCH_EINVALID_REQUEST;
	}
	buf[n] = '\0';
	return 0;
}

static void
env_reset(struct witch__request_env *env)
{
	env->root = NULL;
	env->endpoint = NULL;
	env->data = NULL;
	env->data_raw = NULL;
	env->data_len = 0;
	env->data_owned = NULL;
	memcpy(env->id, "null", sizeof("null"));
	env->has_id = false;
	env->oneway = false;
	env->has_deadline = false;
	env->deadline_ms = 0;
	env->depth = 0;
	env->decode_cost = 0;
}

static int
load(const char *payload, size_t len, json_t **rootp, char *msg,
    size_t msglen)
{
	json_error_t jerr;
	const char *nul;
	json_t *root;

	/*
	 * JSON_DECODE_ANY: a scalar is valid JSON but not a request, which
	 * is invalid_request rather than parse_error.  JSON_ALLOW_NUL: an
	 * escaped \u0000 inside a string is valid JSON (raw NUL bytes are
	 * still rejected as control characters).  Duplicate keys are
	 * accepted, the last one wins (RFC 8259 only says SHOULD be unique).
	 */
	/*
	 * A raw NUL byte is never valid JSON (inside a string it is a
	 * control character, outside it is no token), but jansson 2.14
	 * takes one right after a number or literal as the end of input
	 * ("123\0}" parses as 123): refuse it before jansson sees it.
	 */
	if (payload != NULL && (nul = memchr(payload, '\0', len)) != NULL) {
		set_msg(msg, msglen, "raw NUL byte in the payload "
		    "(at byte %zu)", (size_t)(nul - payload));
		return WITCH_EPARSE;
	}
	root = json_loadb(payload != NULL ? payload : "", len,
	    JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (root != NULL) {
		*rootp = root;
		return 0;
	}
	set_msg(msg, msglen, "%s (at byte %d)", jerr.text, jerr.position);
	switch (json_error_code(&jerr)) {
	case json_error_out_of_memory:
		return WITCH_ENOMEM;
	case json_error_null_byte_in_key:
		/* Valid JSON, but a key we cannot represent. */
		return WITCH_EINVALID_REQUEST;
	default:
		return WITCH_EPARSE;
	}
}

static int
check_endpoint(struct witch__request_env *env, char *msg, size_t msglen)
{
	json_t *v;
	size_t n;

	v = json_object_get(env->root, "endpoint");
	if (v == NULL) {
		set_msg(msg, msglen, "missing \"endpoint\"");
		return WITCH_EINVALID_REQUEST;
	}
	if (!json_is_string(v)) {
		set_msg(msg, msglen, "\"endpoint\" must be a string");
		return WITCH_EINVALID_REQUEST;
	}
	n = json_string_length(v);
	if (n == 0 || n > ENDPOINT_MAX) {
		set_msg(msg, msglen, "\"endpoint\" must be 1 to %d bytes",
		    ENDPOINT_MAX);
		return WITCH_EINVALID_REQUEST;
	}
	if (memchr(json_string_value(v), '\0', n) != NULL) {
		set_msg(msg, msglen, "\"endpoint\" contains a NUL");
		return WITCH_EINVALID_REQUEST;
	}
	env->endpoint = json_string_value(v);
	return 0;
}

static int
check_options(struct witch__request_env *env, char *msg, size_t msglen)
{
	json_t *v;

	if ((v = json_object_get(env->root, "oneway")) != NULL) {
		if (!json_is_boolean(v)) {
			set_msg(msg, msglen, "\"oneway\" must be a boolean");
			return WITCH_EINVALID_REQUEST;
		}
		env->oneway = json_is_true(v);
	}
	if ((v = json_object_get(env->root, "deadline_ms")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			set_msg(msg, msglen,
			    "\"deadline_ms\" must be a non-negative integer");
			return WITCH_EINVALID_REQUEST;
		}
		env->has_deadline = true;
		env->deadline_ms = json_integer_value(v);
	}
	env->data = json_object_get(env->root, "data");
	return 0;
}

/*
 * Parse and validate one request payload; see envelope.h.  Returns 0 with
 * env->root owned by env, WITCH_EPARSE, WITCH_EINVALID_REQUEST, or
 * WITCH_ENOMEM when jansson ran out of memory.  Any thread.
 */
int
witch__request_parse(const char *payload, size_t len,
    struct witch__request_env *env, char *msg, size_t msglen)
{
	json_t *root = NULL, *v;
	int rc;

	env_reset(env);
	if (msg != NULL && msglen > 0)
		msg[0] = '\0';
	if ((rc = load(payload, len, &root, msg, msglen)) != 0)
		goto fail;
	if (!json_is_object(root)) {
		set_msg(msg, msglen, "request must be a JSON object");
		rc = WITCH_EINVALID_REQUEST;
		goto fail;
	}
	env->root = root;
	/*
	 * oneway:true is honoured even when the request is otherwise
	 * invalid: protocol.md says such a request gets no reply at all,
	 * not even an error.
	 */
	if (json_is_true(json_object_get(root, "oneway")))
		env->oneway = true;
	/* The id first, so that an error reply can carry it. */
	if ((v = json_object_get(root, "id")) != NULL) {
		if (witch__id_format(v, env->id, sizeof(env->id)) != 0) {
			(void)strlcpy(env->id, "null", sizeof(env->id));
			set_msg(msg, msglen, "\"id\" must be an integer or a "
			    "string of at most %d bytes of JSON",
			    WITCH__ID_MAX);
			rc = WITCH_EINVALID_REQUEST;
			goto fail;
		}
		env->has_id = true;
	}
	if ((rc = check_endpoint(env, msg, msglen)) != 0)
		goto fail;
	if ((rc = check_options(env, msg, msglen)) != 0)
		goto fail;
	return 0;

fail:
	json_decref(root);
	env->root = NULL;
	env->endpoint = NULL;
	env->data = NULL;
	env->has_deadline = false;
	env->deadline_ms = 0;
	return rc;
}

/*
 * Release env->root (NULL-safe); env may be parsed into again.
 */
void
witch__request_env_clear(struct witch__request_env *env)
{
	json_decref(env->root);
	json_decref(env->data_owned);
	env_reset(env);
}

json_t *
witch__request_env_data(struct witch__request_env *env)
{
	if (env->data != NULL || env->data_raw == NULL)
		return env->data;
	if (env->data_owned == NULL)
		env->data_owned = json_loadb(env->data_raw, env->data_len,
		    JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	return env->data_owned;
}

/*
 * Compact decimal text of the JSON integer [p, p+n) (validated, fits).
 * JSON's grammar, -?(0|[1-9][0-9]*), leaves one number with two
 * spellings: jansson prints -0 as 0.  Every other text is its own.
 */
static void
int_text(const char *p, size_t n, char *out)
{
	if (n == 2 && p[0] == '-' && p[1] == '0') {
		p++;
		n--;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

/* Value of a validated non-negative JSON integer, or -1 if negative. */
static int64_t
int_value(const char *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	if (*p == '-')
		return n == 2 && p[1] == '0' ? 0 : -1;
	for (i = 0; i < n; i++)
		v = v * 10 + (uint64_t)(p[i] - '0');
	return (int64_t)v;
}

/*
 * The id a scanned value (a span witch__json_scan() accepted) stands for,
 * as witch__id_format() writes it, into buf (WITCH__ID_MAX + 1 bytes).
 * Integers and strings without escapes are copied from the text; only a
 * string with escapes is decoded with jansson (one small allocation:
 * at most WITCH__ID_MAX + 2 bytes of text).  Returns 0,
 * WITCH_EINVALID_REQUEST (not an integer or string, or too long) or
 * WITCH_ENOMEM.  Pure; any thread.
 */
int
witch__id_format_span(const struct witch__jspan *v, char *buf, size_t buflen)
{
	json_t *j;
	int rc;

	if (v->type == WITCH__J_INT && v->len < 21 && v->len < buflen) {
		int_text(v->p, v->len, buf);
		return 0;
	}
	if (v->type != WITCH__J_STRING || v->len > WITCH__ID_MAX + 2)
		return WITCH_EINVALID_REQUEST;
	if (!v->escaped) {
		if (v->len >= buflen || v->len > WITCH__ID_MAX)
			return WITCH_EINVALID_REQUEST;
		memcpy(buf, v->p, v->len);
		buf[v->len] = '\0';
		return 0;
	}
	if ((j = json_loadb(v->p, v->len, JSON_DECODE_ANY | JSON_ALLOW_NUL,
	    NULL)) == NULL)
		return WITCH_ENOMEM;	/* it was validated */
	rc = witch__id_format(j, buf, buflen);
	json_decref(j);
	return rc;
}

/*
 * The DOM path for what the fast path would not take, without letting
 * jansson see more than the envelope: the verdicts and messages are those
 * of witch__request_parse(), at a cost linear in the payload.
 *   - a valid object: a reduced request of the envelope members m (id,
 *     endpoint, data, oneway, deadline_ms) is parsed instead, an array or
 *     object among them replaced by an empty one (only its type matters
 *     to the verdict), and data stays text (data_raw), as on the fast path;
 *   - valid JSON that is not an object: the verdict, nothing parsed;
 *   - invalid JSON: jansson's message up to SLOW_PARSE_MAX bytes, the
 *     scanner's verdict beyond.
 */
static int
parse_bounded(const char *payload, size_t len, int scanned,
    enum witch__jtype top, const struct witch__jmember *m,
    struct witch__request_env *env, char *msg, size_t msglen)
{
	const struct witch__jspan *v;
	char *r;
	size_t i, n = 1;
	int rc;

	if (scanned != 0 && len <= SLOW_PARSE_MAX)
		return witch__request_parse(payload, len, env, msg, msglen);
	env_reset(env);
	if (msg != NULL && msglen > 0)
		msg[0] = '\0';
	if (scanned != 0) {
		set_msg(msg, msglen, "payload is not valid JSON (%zu bytes)",
		    len);
		return scanned;
	}
	if (top != WITCH__J_OBJECT) {
		set_msg(msg, msglen, "request must be a JSON object");
		return WITCH_EINVALID_REQUEST;
	}
	if ((r = witch__malloc(len + 96)) == NULL)
		return WITCH_ENOMEM;
	r[0] = '{';
	for (i = 0; i < 5; i++) {
		v = m[i].span;
		if (v->type == WITCH__J_NONE || i == 2)	/* data: text */
			continue;
		n += (size_t)snprintf(r + n, len + 96 - n, "%s\"%s\":",
		    n > 1 ? "," : "", m[i].name);
		if (v->type == WITCH__J_ARRAY || v->type == WITCH__J_OBJECT) {
			r[n++] = v->type == WITCH__J_ARRAY ? '[' : '{';
			r[n++] = v->type == WITCH__J_ARRAY ? ']' : '}';
		} else {
			memcpy(r + n, v->p, v->len);
			n += v->len;
		}
	}
	r[n++] = '}';
	rc = witch__request_parse(r, n, env, msg, msglen);
	witch__free(r);
	if (rc != 0)
		return rc;
	/* The fast path's shape: no tree, the endpoint copied, data text. */
	strlcpy(env->endpoint_buf, env->endpoint, sizeof(env->endpoint_buf));
	env->endpoint = env->endpoint_buf;
	json_decref(env->root);
	env->root = NULL;
	if (m[2].span->type != WITCH__J_NONE) {
		env->data_raw = m[2].span->p;
		env->data_len = m[2].span->len;
	}
	return 0;
}

int
witch__request_scan(const char *payload, size_t len,
    struct witch__request_env *env, char *msg, size_t msglen)
{
	struct witch__jspan id, ep, data, ow, dl;
	struct witch__jmember m[] = {
		{ "id", 2, &id }, { "endpoint", 8, &ep }, { "data", 4, &data },
		{ "oneway", 6, &ow }, { "deadline_ms", 11, &dl }
	};
	struct witch__jcost cost;
	enum witch__jtype top;
	bool kesc;
	int rc;

	if ((rc = witch__json_scan_cost(payload, len, &top, m, 5, &kesc,
	    &cost)) != 0 || top != WITCH__J_OBJECT)
		goto slow;
	env_reset(env);
	if (msg != NULL && msglen > 0)
		msg[0] = '\0';
	if (ow.type == WITCH__J_TRUE)
		env->oneway = true;
	else if (ow.type != WITCH__J_NONE && ow.type != WITCH__J_FALSE)
		goto slow;
	if (id.type == WITCH__J_INT && id.len < 21) {
		int_text(id.p, id.len, env->id);
		env->has_id = true;
	} else if (id.type == WITCH__J_STRING && !id.escaped &&
	    id.len <= WITCH__ID_MAX) {
		memcpy(env->id, id.p, id.len);
		env->id[id.len] = '\0';
		env->has_id = true;
	} else if (id.type != WITCH__J_NONE)
		goto slow;
	if (ep.type != WITCH__J_STRING || ep.escaped || ep.len < 3 ||
	    ep.len - 2 > ENDPOINT_MAX)
		goto slow;
	memcpy(env->endpoint_buf, ep.p + 1, ep.len - 2);
	env->endpoint_buf[ep.len - 2] = '\0';
	env->endpoint = env->endpoint_buf;
	if (dl.type == WITCH__J_INT) {
		if ((env->deadline_ms = int_value(dl.p, dl.len)) < 0)
			goto slow;
		env->has_deadline = true;
	} else if (dl.type != WITCH__J_NONE)
		goto slow;
	if (data.type != WITCH__J_NONE) {
		env->data_raw = data.p;
		env->data_len = data.len;
	}
	env->depth = cost.depth;
	env->decode_cost = cost.bytes;
	return 0;
slow:
	rc = parse_bounded(payload, len, rc, top, m, env, msg, msglen);
	if (rc == 0) {
		/* parse_bounded succeeds only on text the scanner accepted. */
		env->depth = cost.depth;
		env->decode_cost = cost.bytes;
	}
	return rc;
}
