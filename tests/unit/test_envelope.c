/*
 * tests/unit/test_envelope.c: request parsing and reply building
 * (proto/envelope.c, proto/reply.c).  One test per malformation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <witch/error.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "proto/envelope.h"
#include "proto/frame.h"
#include "proto/scan.h"

/* ---- helpers ------------------------------------------------------------ */

static int
parse_n(const char *p, size_t n, struct witch__request_env *env)
{
	char msg[256];
	int rc;

	memset(msg, 'X', sizeof(msg));
	rc = witch__request_parse(p, n, env, msg, sizeof(msg));
	if (rc == 0) {
		assert_non_null(env->root);
		assert_non_null(env->endpoint);
	} else {
		assert_null(env->root);
		assert_null(env->endpoint);
		/* A one-line explanation. */
		assert_true(strlen(msg) > 0 && strlen(msg) < sizeof(msg));
		assert_null(strchr(msg, '\n'));
	}
	return rc;
}

/* Parse a NUL-terminated request; on failure the env needs no clearing. */
static int
parse(const char *p, struct witch__request_env *env)
{
	return parse_n(p, strlen(p), env);
}

static void
expect(const char *p, int want)
{
	struct witch__request_env env;

	assert_int_equal(parse(p, &env), want);
	witch__request_env_clear(&env);
}

/* Check the frame at out->data + off and return its payload parsed. */
static json_t *
frame_json(const struct witch__buf *out, size_t off, size_t *next)
{
	const unsigned char *h = out->data + off;
	json_error_t jerr;
	uint32_t len;
	json_t *j;

	assert_true(out->len >= off + WITCH__FRAME_HDR);
	len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
	    (uint32_t)h[2] << 8 | h[3];
	assert_true(len > 0);
	assert_true(off + WITCH__FRAME_HDR + len <= out->len);
	/* Strict: a single value, valid UTF-8, nothing after it. */
	j = json_loadb((const char *)h + WITCH__FRAME_HDR, len, 0, &jerr);
	if (j == NULL)
		fail_msg("reply is not valid JSON: %s", jerr.text);
	assert_true(json_is_object(j));
	if (next != NULL)
		*next = off + WITCH__FRAME_HDR + len;
	else
		assert_int_equal(off + WITCH__FRAME_HDR + len, out->len);
	return j;
}

/* The only frame in out has exactly this payload text. */
static void
expect_frame_text(const struct witch__buf *out, const char *text)
{
	json_t *j;

	j = frame_json(out, 0, NULL);
	json_decref(j);
	assert_int_equal(out->len, WITCH__FRAME_HDR + strlen(text));
	assert_memory_equal(out->data + WITCH__FRAME_HDR, text, strlen(text));
}

/* ---- malformed payloads: parse_error ------------------------------------ */

static void
test_not_json(void **state)
{
	expect("hello", WITCH_EPARSE);
	expect("{\"endpoint\":\"x\",}", WITCH_EPARSE);
}

static void
test_empty_payload(void **state)
{
	struct witch__request_env env;

	assert_int_equal(parse_n("", 0, &env), WITCH_EPARSE);
	assert_int_equal(parse_n(NULL, 0, &env), WITCH_EPARSE);
	expect("   ", WITCH_EPARSE);
}

static void
test_invalid_utf8(void **state)
{
	expect("{\"endpoint\":\"x\",\"data\":\"\xff\xfe\"}", WITCH_EPARSE);
	/* Overlong '/' and an encoded surrogate. */
	expect("{\"endpoint\":\"x\",\"data\":\"\xc0\xaf\"}", WITCH_EPARSE);
	expect("{\"endpoint\":\"x\",\"data\":\"\xed\xa0\x80\"}", WITCH_EPARSE);
}

static void
test_trailing_garbage(void **state)
{
	expect("{\"endpoint\":\"x\"} x", WITCH_EPARSE);
	expect("{\"endpoint\":\"x\"}{}", WITCH_EPARSE);
	/* Whitespace after the object is fine. */
	expect("{\"endpoint\":\"x\"} \r\n\t", 0);
}

static void
test_raw_nul(void **state)
{
	struct witch__request_env env;
	static const char in_str[] = "{\"endpoint\":\"x\",\"data\":\"a\0b\"}";
	static const char after[] = "{\"endpoint\":\"x\"}\0";

	assert_int_equal(parse_n(in_str, sizeof(in_str) - 1, &env),
	    WITCH_EPARSE);
	assert_int_equal(parse_n(after, sizeof(after) - 1, &env),
	    WITCH_EPARSE);
}

/*
 * jansson 2.14 reads a raw NUL right after a number or literal as the
 * end of input; both paths refuse it (framing.md, "Strict JSON").
 */
static void
test_raw_nul_after_scalar(void **state)
{
#define NUL_CASE(lit) { (lit), sizeof(lit) - 1 }
	static const struct {
		const char	*s;
		size_t		 n;
	} in[] = {
		NUL_CASE("{\"endpoint\":\"x\",\"data\":123\0}"),
		NUL_CASE("{\"endpoint\":\"x\",\"data\":true\0}"),
		NUL_CASE("{\"endpoint\":\"x\",\"data\":null\0}"),
		NUL_CASE("{\"endpoint\":\"x\",\"data\":[1\0]}"),
		NUL_CASE("{\"endpoint\":\"x\",\"id\":7\0,\"data\":1}"),
		NUL_CASE("123\0"),
	};
#undef NUL_CASE
	struct witch__request_env env;
	char msg[128];
	size_t i;

	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		assert_non_null(memchr(in[i].s, '\0', in[i].n));
		assert_int_equal(witch__request_parse(in[i].s, in[i].n, &env,
		    msg, sizeof(msg)), WITCH_EPARSE);
		assert_non_null(strstr(msg, "NUL"));
		assert_int_equal(witch__request_scan(in[i].s, in[i].n, &env,
		    msg, sizeof(msg)), WITCH_EPARSE);
		witch__request_env_clear(&env);
	}
}

static void
test_escaped_nul(void **state)
{
	struct witch__request_env env;

	/* Escaped NUL in a string value is valid JSON and accepted. */
	assert_int_equal(parse("{\"endpoint\":\"x\",\"data\":\"a\\u0000b\"}",
	    &env), 0);
	assert_int_equal(json_string_length(env.data), 3);
	assert_memory_equal(json_string_value(env.data), "a\0b", 3);
	witch__request_env_clear(&env);
	/* ... but not in the endpoint name, nor in a key (unrepresentable). */
	expect("{\"endpoint\":\"x\\u0000y\"}", WITCH_EINVALID_REQUEST);
	expect("{\"endpoint\":\"x\",\"a\\u0000b\":1}", WITCH_EINVALID_REQUEST);
}

static void
test_deep_nesting(void **state)
{
	const size_t depth = 100000;
	const char *pre = "{\"endpoint\":\"x\",\"data\":";
	struct witch__request_env env;
	size_t n, plen = strlen(pre);
	char *p;

	p = malloc(plen + 2 * depth + 1);
	assert_non_null(p);
	/* Bare [[[...]]] */
	memset(p, '[', depth);
	memset(p + depth, ']', depth);
	assert_int_equal(parse_n(p, 2 * depth, &env), WITCH_EPARSE);
	/* Inside a request. */
	memcpy(p, pre, plen);
	memset(p + plen, '[', depth);
	memset(p + plen + depth, ']', depth);
	p[plen + 2 * depth] = '}';
	assert_int_equal(parse_n(p, plen + 2 * depth + 1, &env), WITCH_EPARSE);
	/* Unbalanced, as an attacker would send it. */
	assert_int_equal(parse_n(p, plen + depth, &env), WITCH_EPARSE);
	/* A depth of 1000 is fine. */
	n = 1000;
	memset(p + plen, '[', n);
	memset(p + plen + n, ']', n);
	p[plen + 2 * n] = '}';
	assert_int_equal(parse_n(p, plen + 2 * n + 1, &env), 0);
	witch__request_env_clear(&env);
	free(p);
}

static void
test_big_integer(void **state)
{
	/* Valid JSON that jansson cannot represent: a parse error. */
	expect("{\"endpoint\":\"x\",\"data\":123456789012345678901234567890}",
	    WITCH_EPARSE);
}

/* ---- not a request object: invalid_request ------------------------------ */

static void
test_top_array(void **state)
{
	expect("[{\"endpoint\":\"x\"}]", WITCH_EINVALID_REQUEST);
}

static void
test_top_string(void **state)
{
	expect("\"endpoint\"", WITCH_EINVALID_REQUEST);
}

static void
test_top_number(void **state)
{
	expect("17", WITCH_EINVALID_REQUEST);
	expect("-1.5e3", WITCH_EINVALID_REQUEST);
}

static void
test_top_null(void **state)
{
	expect("null", WITCH_EINVALID_REQUEST);
	expect(" true ", WITCH_EINVALID_REQUEST);
}

static void
test_missing_endpoint(void **state)
{
	expect("{}", WITCH_EINVALID_REQUEST);
	expect("{\"data\":1}", WITCH_EINVALID_REQUEST);
}

static void
test_endpoint_not_string(void **state)
{
	expect("{\"endpoint\":7}", WITCH_EINVALID_REQUEST);
	expect("{\"endpoint\":null}", WITCH_EINVALID_REQUEST);
	expect("{\"endpoint\":[\"echo\"]}", WITCH_EINVALID_REQUEST);
}

static void
test_endpoint_empty(void **state)
{
	expect("{\"endpoint\":\"\"}", WITCH_EINVALID_REQUEST);
}

static void
test_endpoint_length(void **state)
{
	struct witch__request_env env;
	char req[128], name[65];

	memset(name, 'e', 64);
	name[64] = '\0';
	(void)snprintf(req, sizeof(req), "{\"endpoint\":\"%s\"}", name);
	expect(req, WITCH_EINVALID_REQUEST);
	name[63] = '\0';
	(void)snprintf(req, sizeof(req), "{\"endpoint\":\"%s\"}", name);
	assert_int_equal(parse(req, &env), 0);
	assert_string_equal(env.endpoint, name);
	witch__request_env_clear(&env);
}

static void
test_id_float(void **state)
{
	expect("{\"id\":1.5,\"endpoint\":\"x\"}", WITCH_EINVALID_REQUEST);
	expect("{\"id\":1.0,\"endpoint\":\"x\"}", WITCH_EINVALID_REQUEST);
	expect("{\"id\":1e2,\"endpoint\":\"x\"}", WITCH_EINVALID_REQUEST);
}

static void
test_id_object(void **state)
{
	struct witch__request_env env;

	assert_int_equal(parse("{\"id\":{\"a\":1},\"endpoint\":\"x\"}", &env),
	    WITCH_EINVALID_REQUEST);
	assert_string_equal(env.id, "null");
	assert_false(env.has_id);
}

static void
test_id_array(void **state)
{
	expect("{\"id\":[1],\"endpoint\":\"x\"}", WITCH_EINVALID_REQUEST);
}

static void
test_id_bool(void **state)
{
	expect("{\"id\":true,\"endpoint\":\"x\"}", WITCH_EINVALID_REQUEST);
	expect("{\"id\":false,\"endpoint\":\"x\"}", WITCH_EINVALID_REQUEST);
}

static void
test_id_null(void **state)
{
	/* An explicit null is not an integer or a string. */
	expect("{\"id\":null,\"endpoint\":\"x\"}", WITCH_EINVALID_REQUEST);
}

static void
test_id_too_long(void **state)
{
	struct witch__request_env env;
	char req[512], s[200];

	/* 126 characters serialise to 128 bytes: the limit. */
	memset(s, 'i', 126);
	s[126] = '\0';
	(void)snprintf(req, sizeof(req), "{\"id\":\"%s\",\"endpoint\":\"x\"}",
	    s);
	assert_int_equal(parse(req, &env), 0);
	assert_int_equal(strlen(env.id), WITCH__ID_MAX);
	witch__request_env_clear(&env);
	/* 127 is one too many. */
	memset(s, 'i', 127);
	s[127] = '\0';
	(void)snprintf(req, sizeof(req), "{\"id\":\"%s\",\"endpoint\":\"x\"}",
	    s);
	assert_int_equal(parse(req, &env), WITCH_EINVALID_REQUEST);
	assert_string_equal(env.id, "null");
	/* Escapes count: 64 quotes serialise to 130 bytes. */
	(void)strlcpy(req, "{\"endpoint\":\"x\",\"id\":\"", sizeof(req));
	for (int i = 0; i < 64; i++)
		(void)strlcat(req, "\\\"", sizeof(req));
	(void)strlcat(req, "\"}", sizeof(req));
	assert_int_equal(parse(req, &env), WITCH_EINVALID_REQUEST);
}

static void
test_id_forms(void **state)
{
	struct witch__request_env env;

	assert_int_equal(parse("{\"id\":-42,\"endpoint\":\"x\"}", &env), 0);
	assert_true(env.has_id);
	assert_string_equal(env.id, "-42");
	witch__request_env_clear(&env);
	assert_int_equal(parse("{\"id\":\"a\\\"b\\n\",\"endpoint\":\"x\"}",
	    &env), 0);
	assert_string_equal(env.id, "\"a\\\"b\\n\"");
	witch__request_env_clear(&env);
	assert_int_equal(parse("{\"endpoint\":\"x\"}", &env), 0);
	assert_false(env.has_id);
	assert_string_equal(env.id, "null");
	witch__request_env_clear(&env);
}

/* The scanner's fast path spells integer ids as jansson prints them. */
static void
test_id_integer_spellings(void **state)
{
	static const char *in[] = { "0", "-0", "7", "-42",
	    "9223372036854775807", "-9223372036854775808" };
	static const char *want[] = { "0", "0", "7", "-42",
	    "9223372036854775807", "-9223372036854775808" };
	struct witch__request_env a, b;
	char req[128];
	size_t i;
	int n;

	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		n = snprintf(req, sizeof(req), "{\"id\":%s,\"endpoint\":\"x\"}",
		    in[i]);
		assert_int_equal(witch__request_scan(req, (size_t)n, &a, NULL,
		    0), 0);
		assert_true(a.has_id);
		assert_string_equal(a.id, want[i]);
		assert_int_equal(parse(req, &b), 0);
		assert_string_equal(b.id, want[i]);
		witch__request_env_clear(&a);
		witch__request_env_clear(&b);
	}
}

/*
 * Requests the fast path does not take: the bounded jansson path gives
 * the same verdict, message, id, oneway, endpoint and data as
 * witch__request_parse() on the whole payload, with data left as text.
 */
static void
test_scan_bounded_path(void **state)
{
	static const char *in[] = {
		"{\"\\u0069d\":3,\"end\\u0070oint\":\"x\",\"d\\u0061ta\":[1]}",
		"{\"id\":\"a\\u0041\",\"endpoint\":\"e\\/p\",\"data\":{}}",
		"{\"id\":4,\"endpoint\":\"x\",\"oneway\":\"no\",\"data\":[2]}",
		"{\"id\":[{},{}],\"endpoint\":\"x\"}",
		"{\"id\":5,\"endpoint\":{\"a\":1},\"oneway\":true}",
		"{\"id\":6,\"endpoint\":\"x\",\"deadline_ms\":-1,\"data\":7}",
		"{\"id\":7,\"endpoint\":\"x\",\"deadline_ms\":2.5}",
		"{\"id\":8,\"id\":\"\\u00e9\",\"endpoint\":\"x\",\"data\":null}",
		"[1,2,3]",
		"\"str\"",
		"{\"id\":9,\"endpoint\":",
	};
	struct witch__request_env a, b;
	char ma[256], mb[256];
	json_t *da;
	size_t i;
	int ra, rb;

	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		rb = witch__request_parse(in[i], strlen(in[i]), &b, mb,
		    sizeof(mb));
		ra = witch__request_scan(in[i], strlen(in[i]), &a, ma,
		    sizeof(ma));
		assert_int_equal(ra, rb);
		assert_string_equal(ma, mb);
		assert_string_equal(a.id, b.id);
		assert_int_equal(a.oneway, b.oneway);
		if (ra == 0) {
			assert_null(a.root);	/* no tree left */
			assert_string_equal(a.endpoint, b.endpoint);
			assert_int_equal(a.has_deadline, b.has_deadline);
			da = witch__request_env_data(&a);
			assert_int_equal(da == NULL, b.data == NULL);
			assert_true(da == NULL || json_equal(da, b.data));
		}
		witch__request_env_clear(&a);
		witch__request_env_clear(&b);
	}
}

static void
test_id_kept_on_error(void **state)
{
	struct witch__request_env env;

	assert_int_equal(parse("{\"id\":5}", &env), WITCH_EINVALID_REQUEST);
	assert_true(env.has_id);
	assert_string_equal(env.id, "5");
	assert_int_equal(parse("{\"id\":\"abc\",\"endpoint\":7}", &env),
	    WITCH_EINVALID_REQUEST);
	assert_string_equal(env.id, "\"abc\"");
	assert_int_equal(parse("{\"endpoint\":\"x\",\"oneway\":1,\"id\":9}",
	    &env), WITCH_EINVALID_REQUEST);
	assert_string_equal(env.id, "9");
	/* Not JSON: no id can be read. */
	assert_int_equal(parse("{\"id\":5,", &env), WITCH_EPARSE);
	assert_string_equal(env.id, "null");
	assert_false(env.has_id);
}

static void
test_oneway_not_bool(void **state)
{
	expect("{\"endpoint\":\"x\",\"oneway\":1}", WITCH_EINVALID_REQUEST);
	expect("{\"endpoint\":\"x\",\"oneway\":\"true\"}",
	    WITCH_EINVALID_REQUEST);
	expect("{\"endpoint\":\"x\",\"oneway\":null}", WITCH_EINVALID_REQUEST);
}

static void
test_deadline_negative(void **state)
{
	expect("{\"endpoint\":\"x\",\"deadline_ms\":-1}",
	    WITCH_EINVALID_REQUEST);
}

static void
test_deadline_float(void **state)
{
	expect("{\"endpoint\":\"x\",\"deadline_ms\":10.5}",
	    WITCH_EINVALID_REQUEST);
	expect("{\"endpoint\":\"x\",\"deadline_ms\":10.0}",
	    WITCH_EINVALID_REQUEST);
}

static void
test_deadline_string(void **state)
{
	expect("{\"endpoint\":\"x\",\"deadline_ms\":\"10\"}",
	    WITCH_EINVALID_REQUEST);
}

static void
test_valid_every_field(void **state)
{
	struct witch__request_env env;
	char msg[64];
	const char *req = "{\"id\":17,\"endpoint\":\"echo\","
	    "\"data\":{\"a\":[1,2]},\"oneway\":true,\"deadline_ms\":250,"
	    "\"future\":\"ignored\"}";

	assert_int_equal(witch__request_parse(req, strlen(req), &env, msg,
	    sizeof(msg)), 0);
	assert_string_equal(msg, "");
	assert_non_null(env.root);
	assert_string_equal(env.endpoint, "echo");
	assert_true(env.has_id);
	assert_string_equal(env.id, "17");
	assert_true(env.oneway);
	assert_true(env.has_deadline);
	assert_int_equal(env.deadline_ms, 250);
	assert_true(json_is_object(env.data));
	assert_int_equal(json_array_size(json_object_get(env.data, "a")), 2);
	witch__request_env_clear(&env);
	assert_null(env.root);

	/* Minimal: defaults. NULL msg is fine. */
	assert_int_equal(witch__request_parse("{\"endpoint\":\"ping\"}", 19U,
	    &env, NULL, 0), 0);
	assert_null(env.data);
	assert_false(env.oneway);
	assert_false(env.has_deadline);
	assert_false(env.has_id);
	witch__request_env_clear(&env);

	/* deadline 0, oneway false, data null (present). */
	assert_int_equal(parse("{\"endpoint\":\"p\",\"deadline_ms\":0,"
	    "\"oneway\":false,\"data\":null}", &env), 0);
	assert_true(env.has_deadline);
	assert_int_equal(env.deadline_ms, 0);
	assert_false(env.oneway);
	assert_true(json_is_null(env.data));
	witch__request_env_clear(&env);
}

static void
test_duplicate_keys(void **state)
{
	struct witch__request_env env;

	/* Accepted (RFC 8259: SHOULD be unique); the last one wins. */
	assert_int_equal(parse("{\"endpoint\":\"a\",\"endpoint\":\"b\"}", &env),
	    0);
	assert_string_equal(env.endpoint, "b");
	witch__request_env_clear(&env);
}

static void
test_payload_not_terminated(void **state)
{
	struct witch__request_env env;
	char buf[32];

	/* Only len bytes are read: what follows does not matter. */
	memcpy(buf, "{\"endpoint\":\"x\"}GARBAGE", 24);
	assert_int_equal(parse_n(buf, 16, &env), 0);
	witch__request_env_clear(&env);
}

/* ---- id_format ---------------------------------------------------------- */

static void
test_id_format(void **state)
{
	char buf[WITCH__ID_MAX + 1], small[4];
	json_t *v;

	v = json_integer(123);
	assert_int_equal(witch__id_format(v, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "123");
	assert_int_equal(witch__id_format(v, small, sizeof(small)), 0);
	assert_string_equal(small, "123");
	json_decref(v);
	v = json_integer(1234);
	assert_int_equal(witch__id_format(v, small, sizeof(small)),
	    WITCH_EINVALID_REQUEST);
	json_decref(v);
	v = json_real(1.0);
	assert_int_equal(witch__id_format(v, buf, sizeof(buf)),
	    WITCH_EINVALID_REQUEST);
	json_decref(v);
	assert_int_equal(witch__id_format(json_null(), buf, sizeof(buf)),
	    WITCH_EINVALID_REQUEST);
	assert_int_equal(witch__id_format(NULL, buf, sizeof(buf)),
	    WITCH_EINVALID_REQUEST);
}

/*
 * Walking an array without a tree: every element once, nested ones whole;
 * ids formatted from their text exactly as from jansson's values; strings
 * decoded (escapes, surrogate pairs), cut to the buffer as strlcpy.
 */
static void
test_scan_array_ids(void **state)
{
	static const char text[] = " [ 1 , \"a\\u0041\", -0,\"x\\\"y\", "
	    "[2,{\"k\":[]}], \"\\ud83d\\ude00\\n\" ,-17,\"plain\"] ";
	struct witch__jspan arr, el;
	struct witch__jmember m[] = { { "a", 1, &arr } };
	char obj[sizeof(text) + 8], a[WITCH__ID_MAX + 1], b[WITCH__ID_MAX + 1];
	char s[8];
	enum witch__jtype top;
	size_t pos = 0, n = 0;
	bool kesc;
	json_t *j;

	snprintf(obj, sizeof(obj), "{\"a\":%s}", text);
	assert_int_equal(witch__json_scan(obj, strlen(obj), &top, m, 1,
	    &kesc), 0);
	assert_int_equal(arr.type, WITCH__J_ARRAY);
	while (witch__json_array_next(&arr, &pos, &el)) {
		n++;
		j = json_loadb(el.p, el.len, JSON_DECODE_ANY, NULL);
		assert_non_null(j);
		if (el.type == WITCH__J_ARRAY) {
			assert_int_equal(json_array_size(j), 2);
			assert_int_equal(witch__id_format_span(&el, a,
			    sizeof(a)), WITCH_EINVALID_REQUEST);
		} else {
			assert_int_equal(witch__id_format_span(&el, a,
			    sizeof(a)), 0);
			assert_int_equal(witch__id_format(j, b, sizeof(b)), 0);
			assert_string_equal(a, b);
		}
		json_decref(j);
	}
	assert_int_equal(n, 8);
	assert_false(witch__json_array_next(&arr, &pos, &el));
	/* Strings: "x\"y" and the emoji with a newline; cut short. */
	pos = 0;
	for (n = 0; n < 6; n++)
		assert_true(witch__json_array_next(&arr, &pos, &el));
	assert_int_equal(witch__json_string_copy(&el, s, sizeof(s)), 5);
	assert_memory_equal(s, "\xf0\x9f\x98\x80\n", 6);
	assert_int_equal(witch__json_string_copy(&el, s, 3), 5);
	assert_int_equal(strlen(s), 2);
	/* An empty array has no element. */
	snprintf(obj, sizeof(obj), "{\"a\":[ ]}");
	assert_int_equal(witch__json_scan(obj, strlen(obj), &top, m, 1,
	    &kesc), 0);
	pos = 0;
	assert_false(witch__json_array_next(&arr, &pos, &el));
}

/* ---- replies ------------------------------------------------------------ */

static void
test_reply_result(void **state)
{
	struct witch__buf out;
	json_t *res, *j, *want;
	size_t next;

	witch__buf_init(&out, 0);
	res = json_pack("{s:s}", "echo", "Hello");
	assert_int_equal(witch__reply_result(&out, "17", res, 1 << 20), 0);
	expect_frame_text(&out, "{\"id\":17,\"result\":{\"echo\":\"Hello\"}}");
	/* A second frame is appended after the first. */
	assert_int_equal(witch__reply_result(&out, "\"a\"", NULL, 0), 0);
	j = frame_json(&out, 0, &next);
	json_decref(j);
	j = frame_json(&out, next, NULL);
	want = json_pack("{s:s,s:n}", "id", "a", "result");
	assert_true(json_equal(j, want));
	json_decref(want);
	json_decref(j);
	json_decref(res);
	witch__buf_free(&out);

	/* Scalars are results too; NULL id means null. */
	witch__buf_init(&out, 0);
	res = json_integer(3);
	assert_int_equal(witch__reply_result(&out, NULL, res, 0), 0);
	expect_frame_text(&out, "{\"id\":null,\"result\":3}");
	json_decref(res);
	witch__buf_free(&out);
}

static void
test_reply_result_too_large(void **state)
{
	struct witch__buf out;
	json_t *res;
	size_t exact;
	char big[1001];

	memset(big, 'z', 1000);
	big[1000] = '\0';
	res = json_pack("{s:s}", "blob", big);
	witch__buf_init(&out, 0);
	assert_int_equal(witch__buf_append(&out, "abc", 3), 0);
	assert_int_equal(witch__reply_result(&out, "1", res, 100),
	    WITCH_ETOO_LARGE);
	assert_int_equal(out.len, 3);
	assert_memory_equal(out.data, "abc", 3);
	/* Exactly at the limit passes, one byte less fails. */
	exact = strlen("{\"id\":1,\"result\":{\"blob\":\"\"}}") + 1000;
	assert_int_equal(witch__reply_result(&out, "1", res, exact - 1),
	    WITCH_ETOO_LARGE);
	assert_int_equal(out.len, 3);
	assert_int_equal(witch__reply_result(&out, "1", res, exact), 0);
	assert_int_equal(out.len, 3 + WITCH__FRAME_HDR + exact);
	json_decref(frame_json(&out, 3, NULL));
	json_decref(res);
	witch__buf_free(&out);
}

static void
test_reply_buf_limit(void **state)
{
	struct witch__buf out;

	/* The buffer's own cap: ETOO_LARGE, nothing left behind. */
	witch__buf_init(&out, 20);
	assert_int_equal(witch__reply_error(&out, "1", WITCH_ETIMEOUT, NULL),
	    WITCH_ETOO_LARGE);
	assert_int_equal(out.len, 0);
	assert_int_equal(witch__reply_event(&out, "closing", NULL),
	    WITCH_ETOO_LARGE);
	assert_int_equal(out.len, 0);
	witch__buf_free(&out);
}

static void
test_reply_enomem(void **state)
{
	static char fill[250];
	struct witch__buf out;
	json_t *res;
	long n;
	int rc;

	/*
	 * 250 bytes held, so the frame has to grow the buffer.  Fail the
	 * 1st, 2nd, ... allocation until the call gets through: every
	 * failure leaves the buffer as it was.
	 */
	memset(fill, 'f', sizeof(fill));
	res = json_pack("{s:s}", "k", "a value long enough to need growth");
	for (n = 1;; n++) {
		witch__buf_init(&out, 0);
		assert_int_equal(witch__buf_append(&out, fill, sizeof(fill)),
		    0);
		witch__alloc_fail_after(n);
		rc = witch__reply_result(&out, "1", res, 0);
		witch__alloc_fail_after(0);
		if (rc == 0) {
			json_decref(frame_json(&out, sizeof(fill), NULL));
			witch__buf_free(&out);
			break;
		}
		assert_int_equal(rc, WITCH_ENOMEM);
		assert_int_equal(out.len, sizeof(fill));
		assert_memory_equal(out.data, fill, sizeof(fill));
		witch__buf_free(&out);
	}
	assert_true(n > 1);
	/* Empty buffer: the first allocation already fails. */
	witch__buf_init(&out, 0);
	witch__alloc_fail_after(1);
	assert_int_equal(witch__reply_error(&out, "1", WITCH_EHANDLER, "x"),
	    WITCH_ENOMEM);
	witch__alloc_fail_after(1);
	assert_int_equal(witch__reply_event(&out, "e", NULL), WITCH_ENOMEM);
	witch__alloc_fail_after(0);
	assert_int_equal(out.len, 0);
	witch__buf_free(&out);
	json_decref(res);
}

static void
test_reply_error(void **state)
{
	struct witch__buf out;

	witch__buf_init(&out, 0);
	assert_int_equal(witch__reply_error(&out, "17",
	    WITCH_EUNKNOWN_ENDPOINT, "no endpoint named 'ecko'"), 0);
	expect_frame_text(&out, "{\"id\":17,\"error\":{\"code\":"
	    "\"unknown_endpoint\",\"message\":\"no endpoint named 'ecko'\"}}");
	witch__buf_free(&out);

	/* NULL message: witch_strerror(); unknown code: "unknown". */
	witch__buf_init(&out, 0);
	assert_int_equal(witch__reply_error(&out, NULL, WITCH_EPARSE, NULL),
	    0);
	expect_frame_text(&out, "{\"id\":null,\"error\":{\"code\":"
	    "\"parse_error\",\"message\":\"payload is not valid JSON\"}}");
	witch__buf_free(&out);
	witch__buf_init(&out, 0);
	assert_int_equal(witch__reply_error(&out, "\"q\"", -9999, "m"), 0);
	expect_frame_text(&out, "{\"id\":\"q\",\"error\":{\"code\":"
	    "\"unknown\",\"message\":\"m\"}}");
	witch__buf_free(&out);
}

static void
test_reply_error_escaping(void **state)
{
	struct witch__buf out;
	json_t *j, *m;

	witch__buf_init(&out, 0);
	assert_int_equal(witch__reply_error(&out, "1", WITCH_EHANDLER,
	    "q\"b\\n\nt\tc\x01 \xc3\xa9 \xff\xc3 \xed\xa0\x80 "
	    "\xf0\x9f\x98\x80"), 0);
	j = frame_json(&out, 0, NULL);
	m = json_object_get(json_object_get(j, "error"), "message");
	assert_true(json_is_string(m));
	assert_string_equal(json_string_value(m),
	    "q\"b\\n\nt\tc\x01 \xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd "
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xf0\x9f\x98\x80");
	json_decref(j);
	witch__buf_free(&out);

	/* jansson's own parse errors, relayed as messages, stay valid. */
	witch__buf_init(&out, 0);
	assert_int_equal(witch__reply_error(&out, "1", WITCH_EPARSE,
	    "invalid token near '\xff\xfe\x80'"), 0);
	json_decref(frame_json(&out, 0, NULL));
	witch__buf_free(&out);
}

static void
test_reply_from_parse(void **state)
{
	struct witch__request_env env;
	struct witch__buf out;
	char msg[256];
	json_t *j;
	int rc;

	/* The id of a bad request is echoed, the message quoted safely. */
	const char *req = "{\"id\":\"\\u00e9\\\"\",\"oneway\":2,"
	    "\"endpoint\":\"e\"}";

	rc = witch__request_parse(req, strlen(req), &env, msg, sizeof(msg));
	assert_int_equal(rc, WITCH_EINVALID_REQUEST);
	witch__buf_init(&out, 0);
	assert_int_equal(witch__reply_error(&out, env.id, rc, msg), 0);
	j = frame_json(&out, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "id")),
	    "\xc3\xa9\"");
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(j, "error"), "code")), "invalid_request");
	json_decref(j);
	witch__buf_free(&out);

	/* Parse error text from jansson quotes the input. */
	rc = witch__request_parse("{\"a\":\xff}", 7U, &env, msg, sizeof(msg));
	assert_int_equal(rc, WITCH_EPARSE);
	witch__buf_init(&out, 0);
	assert_int_equal(witch__reply_error(&out, env.id, rc, msg), 0);
	json_decref(frame_json(&out, 0, NULL));
	witch__buf_free(&out);
}

static void
test_reply_bad_id(void **state)
{
	static const char *bad[] = { "abc", "\"open", "1.5", "{}", "--1", "-",
	    "\"a\"b\"", "\"\\x\"", "\"\\u12g4\"", "\"\xff\"", "\"\\\"",
	    "truex" };
	static const char *good[] = { "0", "-3", "\"\"", "\"\\u00e9\\\\\"",
	    "null", "" };
	struct witch__buf out;
	size_t i;

	witch__buf_init(&out, 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(witch__reply_result(&out, bad[i], NULL, 0),
		    WITCH_EINVAL);
		assert_int_equal(witch__reply_error(&out, bad[i],
		    WITCH_EHANDLER, "x"), WITCH_EINVAL);
		assert_int_equal(out.len, 0);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(witch__reply_result(&out, good[i], NULL, 0),
		    0);
		json_decref(frame_json(&out, 0, NULL));
		out.len = 0;
	}
	witch__buf_free(&out);
}

static void
test_reply_result_unserialisable(void **state)
{
	struct witch__buf out;
	json_t *res;

	/* A string jansson was told not to check: dumping it fails. */
	res = json_pack("{s:o}", "s", json_stringn_nocheck("\xff", 1));
	witch__buf_init(&out, 0);
	assert_int_equal(witch__buf_append(&out, "x", 1), 0);
	assert_int_equal(witch__reply_result(&out, "1", res, 0), WITCH_EINVAL);
	assert_int_equal(out.len, 1);
	assert_int_equal(witch__reply_event(&out, "e", res), WITCH_EINVAL);
	assert_int_equal(out.len, 1);
	json_decref(res);
	witch__buf_free(&out);
}

static void
test_reply_event(void **state)
{
	struct witch__buf out;
	json_t *data;

	witch__buf_init(&out, 0);
	data = json_pack("{s:s}", "reason", "idle_timeout");
	assert_int_equal(witch__reply_event(&out, "closing", data), 0);
	expect_frame_text(&out,
	    "{\"event\":\"closing\",\"data\":{\"reason\":\"idle_timeout\"}}");
	json_decref(data);
	witch__buf_free(&out);

	witch__buf_init(&out, 0);
	assert_int_equal(witch__reply_event(&out, "pe\"er", NULL), 0);
	expect_frame_text(&out, "{\"event\":\"pe\\\"er\",\"data\":{}}");
	assert_int_equal(witch__reply_event(&out, NULL, NULL), WITCH_EINVAL);
	assert_int_equal(out.len, WITCH__FRAME_HDR +
	    strlen("{\"event\":\"pe\\\"er\",\"data\":{}}"));
	witch__buf_free(&out);
}

/* ---- JSONTestSuite ---------------------------------------------------- */

static char *
slurp(const char *path, size_t *len)
{
	FILE *f;
	char *p = NULL;
	long n;

	assert_non_null(f = fopen(path, "rb"));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	assert_true((n = ftell(f)) >= 0);
	rewind(f);
	assert_non_null(p = malloc((size_t)n + 1));
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return p;
}

static int
run_one(const char *p, size_t n)
{
	struct witch__request_env env;
	int rc;

	rc = parse_n(p, n, &env);
	witch__request_env_clear(&env);
	return rc;
}

static void
test_jsontestsuite(void **state)
{
	static const char pre[] = "{\"endpoint\":\"x\",\"data\":";
	const char *td = getenv("WITCH_TESTDATA");
	char dir[1024], path[2048];
	size_t ny = 0, nn = 0, ni = 0, n;
	struct dirent *de;
	char *p, *w;
	DIR *d;
	int rc, rw;

	if (td == NULL) {
		print_message("skipped: WITCH_TESTDATA is not set\n");
		skip();
	}
	(void)snprintf(dir, sizeof(dir), "%s/JSONTestSuite/test_parsing", td);
	if ((d = opendir(dir)) == NULL) {
		print_message("skipped: no JSONTestSuite corpus at %s\n", dir);
		skip();
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || de->d_name[1] != '_')
			continue;
		(void)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		p = slurp(path, &n);
		rc = run_one(p, n);
		assert_non_null(w = malloc(sizeof(pre) + n + 1));
		memcpy(w, pre, sizeof(pre) - 1);
		memcpy(w + sizeof(pre) - 1, p, n);
		w[sizeof(pre) - 1 + n] = '}';
		rw = run_one(w, sizeof(pre) + n);
		switch (de->d_name[0]) {
		case 'y':
			ny++;
			/* Valid JSON: never a parse error. */
			if (rc != 0 && rc != WITCH_EINVALID_REQUEST)
				fail_msg("%s: %d", de->d_name, rc);
			/* ... and valid as data, except NUL in a key. */
			if (rw != 0 && !(rw == WITCH_EINVALID_REQUEST &&
			    strstr(de->d_name, "null_in_key") != NULL))
				fail_msg("%s wrapped: %d", de->d_name, rw);
			break;
		case 'n':
			nn++;
			if (rc != WITCH_EPARSE && rc != WITCH_EINVALID_REQUEST)
				fail_msg("%s: %d", de->d_name, rc);
			/* Wrapping can complete an unclosed value. */
			if (rw != 0 && rw != WITCH_EPARSE &&
			    rw != WITCH_EINVALID_REQUEST)
				fail_msg("%s wrapped: %d", de->d_name, rw);
			break;
		default:
			ni++;
			if (rc != 0 && rc != WITCH_EPARSE &&
			    rc != WITCH_EINVALID_REQUEST)
				fail_msg("%s: %d", de->d_name, rc);
			break;
		}
		free(w);
		free(p);
	}
	closedir(d);
	print_message("JSONTestSuite: %zu y, %zu n, %zu i\n", ny, nn, ni);
	assert_true(ny >= 90);
	assert_true(nn >= 180);
	assert_true(ni >= 20);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_json),
		cmocka_unit_test(test_scan_array_ids),
		cmocka_unit_test(test_scan_bounded_path),
		cmocka_unit_test(test_empty_payload),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_trailing_garbage),
		cmocka_unit_test(test_raw_nul),
		cmocka_unit_test(test_raw_nul_after_scalar),
		cmocka_unit_test(test_escaped_nul),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_big_integer),
		cmocka_unit_test(test_top_array),
		cmocka_unit_test(test_top_string),
		cmocka_unit_test(test_top_number),
		cmocka_unit_test(test_top_null),
		cmocka_unit_test(test_missing_endpoint),
		cmocka_unit_test(test_endpoint_not_string),
		cmocka_unit_test(test_endpoint_empty),
		cmocka_unit_test(test_endpoint_length),
		cmocka_unit_test(test_id_float),
		cmocka_unit_test(test_id_object),
		cmocka_unit_test(test_id_array),
		cmocka_unit_test(test_id_bool),
		cmocka_unit_test(test_id_null),
		cmocka_unit_test(test_id_too_long),
		cmocka_unit_test(test_id_forms),
		cmocka_unit_test(test_id_integer_spellings),
		cmocka_unit_test(test_id_kept_on_error),
		cmocka_unit_test(test_oneway_not_bool),
		cmocka_unit_test(test_deadline_negative),
		cmocka_unit_test(test_deadline_float),
		cmocka_unit_test(test_deadline_string),
		cmocka_unit_test(test_valid_every_field),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_payload_not_terminated),
		cmocka_unit_test(test_id_format),
		cmocka_unit_test(test_reply_result),
		cmocka_unit_test(test_reply_result_too_large),
		cmocka_unit_test(test_reply_buf_limit),
		cmocka_unit_test(test_reply_enomem),
		cmocka_unit_test(test_reply_error),
		cmocka_unit_test(test_reply_error_escaping),
		cmocka_unit_test(test_reply_from_parse),
		cmocka_unit_test(test_reply_bad_id),
		cmocka_unit_test(test_reply_result_unserialisable),
		cmocka_unit_test(test_reply_event),
		cmocka_unit_test(test_jsontestsuite),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
