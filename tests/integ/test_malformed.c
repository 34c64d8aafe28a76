/*
 * test_malformed: one malformed (or edge-case) request per test, over a
 * real socket.  Each asserts the exact reply (error code slug and id) and
 * then that the same connection still answers a ping: a payload that is
 * not a valid request never desynchronises the stream (protocol.md).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "integ/harness.h"

#define PING_ID		424242		/* id of the ping after each case */
#define DEEP		100000		/* nesting of the deep payloads */
#define HUGE_RESULT	((64u << 20) + 1)	/* one past the ceiling */

/* ---- test endpoints ------------------------------------------------------ */

/* Calls of "count", and a condition to await them. */
static struct {
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cv;
	int		 calls;
} counter = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };

static int
h_count(witch_request_t *req, void *ud)
{
	int n;

	pthread_mutex_lock(&counter.mtx);
	n = ++counter.calls;
	pthread_cond_broadcast(&counter.cv);
	pthread_mutex_unlock(&counter.mtx);
	return witch_request_reply(req, json_pack("{s:i}", "count", n));
}

/* Wait (bounded) until count was called n times; returns the count. */
static int
count_wait(int n)
{
	struct timespec ts;
	int rc = 0, calls;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += TH_TIMEOUT_MS / 1000;
	pthread_mutex_lock(&counter.mtx);
	while (counter.calls < n && rc == 0)
		rc = pthread_cond_timedwait(&counter.cv, &counter.mtx, &ts);
	calls = counter.calls;
	pthread_mutex_unlock(&counter.mtx);
	return calls;
}

static int
h_fail_code(witch_request_t *req, void *ud)
{
	return witch_request_error(req, WITCH_EINVAL, "bad value %d", 42);
}

static int
h_fail_bare(witch_request_t *req, void *ud)
{
	return WITCH_EUNAUTHORIZED;
}

static int
h_fail_foreign(witch_request_t *req, void *ud)
{
	return -12345;
}

static int
h_result_then_error(witch_request_t *req, void *ud)
{
	witch_request_reply(req, json_string("partial"));
	return witch_request_error(req, WITCH_ETIMEOUT, "ran out of time");
}

/* A result one byte larger than the 64 MiB frame ceiling. */
static int
h_huge(witch_request_t *req, void *ud)
{
	char *s = malloc(HUGE_RESULT);
	json_t *v;

	if (s == NULL)
		return WITCH_ENOMEM;
	memset(s, 'h', HUGE_RESULT);
	v = json_stringn_nocheck(s, HUGE_RESULT);
	free(s);
	if (v == NULL)
		return WITCH_ENOMEM;
	return witch_request_reply(req, v);
}

/* A result jansson cannot serialise: a string that is not UTF-8. */
static int
h_unencodable(witch_request_t *req, void *ud)
{
	json_t *v = json_stringn_nocheck("\xff", 1);

	return v == NULL ? WITCH_ENOMEM : witch_request_reply(req, v);
}

static void
reg(witch_server_t *srv, void *arg)
{
	static const struct {
		const char		*name;
		witch_handler_fn	 fn;
	} eps[] = {
		{ "count", h_count },
		{ "fail_code", h_fail_code },
		{ "fail_bare", h_fail_bare },
		{ "fail_foreign", h_fail_foreign },
		{ "result_then_error", h_result_then_error },
		{ "huge", h_huge },
		{ "unencodable", h_unencodable },
	};
	size_t i;

	for (i = 0; i < sizeof(eps) / sizeof(eps[0]); i++)
		assert_int_equal(witch_server_register_endpoint(srv,
		    eps[i].name, eps[i].fn, NULL), 0);
}

/* ---- fixture ------------------------------------------------------------- */

struct fixture {
	witch_server_t	*srv;
	int		 fd;
};

static struct fixture fx;

/*
 * One server for the whole group, with one worker: a reply a handler
 * wrongly sent would then always come before the reply of a later
 * request, so "the next reply is the ping's" proves there was none.
 */
static int
group_setup(void **state)
{
	witch_server_config_t *cfg = th_config();

	assert_int_equal(witch_server_config_set_workers(cfg, 1), 0);
	fx.srv = th_server_start(cfg, reg, NULL);
	witch_server_config_free(cfg);
	*state = &fx;
	return 0;
}

static int
group_teardown(void **state)
{
	witch_server_free(fx.srv);
	return 0;
}

static int
setup(void **state)
{
	fx.fd = th_connect(witch_server_port(fx.srv));
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	close(fx.fd);
	return 0;
}

/* ---- helpers ------------------------------------------------------------- */

/* Send one frame of exactly n payload bytes (NULs allowed). */
static void
send_n(int fd, const void *payload, size_t n)
{
	unsigned char *f = malloc(n + 4);

	assert_non_null(f);
	th_frame(f, payload, (uint32_t)n);
	assert_int_equal(th_send_raw(fd, f, n + 4), 0);
	free(f);
}

static json_t *
must_recv(int fd)
{
	json_t *r = th_recv(fd, 0);

	assert_non_null(r);
	return r;
}

/* The reply's id as compact JSON, compared with want ("null", "7"...). */
static void
assert_id(const json_t *r, const char *want)
{
	json_t *id = json_object_get(r, "id");
	char *s;

	assert_non_null(id);
	s = json_dumps(id, JSON_COMPACT | JSON_ENCODE_ANY);
	assert_non_null(s);
	assert_string_equal(s, want);
	free(s);
}

/* The very next reply on fd is the pong of a ping sent now. */
static void
assert_ping(int fd)
{
	json_t *r;

	assert_int_equal(th_sendf(fd, "{\"id\":%d,\"endpoint\":\"ping\"}",
	    PING_ID), 0);
	r = must_recv(fd);
	assert_int_equal(th_id(r), PING_ID);
	assert_null(th_err_code(r));
	assert_true(json_is_true(json_object_get(json_object_get(r, "result"),
	    "pong")));
	json_decref(r);
}

/*
 * Send n payload bytes; the reply must be an error with code and id (its
 * compact JSON) and a non-empty message.  Returns the reply (caller
 * decrefs) for further checks.
 */
static json_t *
expect_error_n(int fd, const void *payload, size_t n, const char *id,
    const char *code)
{
	json_t *r, *msg;

	send_n(fd, payload, n);
	r = must_recv(fd);
	assert_id(r, id);
	assert_non_null(th_err_code(r));
	assert_string_equal(th_err_code(r), code);
	assert_null(json_object_get(r, "result"));
	msg = json_object_get(json_object_get(r, "error"), "message");
	assert_true(json_is_string(msg));
	assert_true(json_string_length(msg) > 0);
	return r;
}

/* expect_error_n() on a C string. */
static json_t *
expect_error_s(int fd, const char *payload, const char *id, const char *code)
{
	return expect_error_n(fd, payload, strlen(payload), id, code);
}

/* expect_error_n() on a C string; then the connection must still work. */
static void
bad(void **state, const char *payload, const char *id, const char *code)
{
	struct fixture *f = *state;

	json_decref(expect_error_n(f->fd, payload, strlen(payload), id, code));
	assert_ping(f->fd);
}

/* The same for n bytes that may hold NULs. */
static void
bad_n(void **state, const void *payload, size_t n, const char *id,
    const char *code)
{
	struct fixture *f = *state;

	json_decref(expect_error_n(f->fd, payload, n, id, code));
	assert_ping(f->fd);
}

/* The error message of a reply. */
static const char *
err_msg(const json_t *r)
{
	return json_string_value(json_object_get(json_object_get(r, "error"),
	    "message"));
}

/* Send payload; the reply has id (compact JSON) and this result. */
static void
good(void **state, const char *payload, const char *id, const char *result)
{
	struct fixture *f = *state;
	json_t *r, *want;

	assert_int_equal(th_send(f->fd, payload), 0);
	r = must_recv(f->fd);
	assert_id(r, id);
	assert_null(th_err_code(r));
	want = json_loads(result, JSON_DECODE_ANY, NULL);
	assert_non_null(want);
	assert_true(json_equal(json_object_get(r, "result"), want));
	json_decref(want);
	json_decref(r);
	assert_ping(f->fd);
}

/* ---- not JSON ------------------------------------------------------------ */

static void
test_json_invalid(void **state)
{
	bad(state, "{bad", "null", "parse_error");
}

static void
test_json_truncated(void **state)
{
	bad(state, "{\"id\":1,\"endpoint\":\"ping\"", "null", "parse_error");
}

static void
test_json_trailing_garbage(void **state)
{
	bad(state, "{\"endpoint\":\"ping\"} x", "null", "parse_error");
}

static void
test_json_two_objects(void **state)
{
	/* Exactly one reply: bad() checks the next one is the ping's. */
	bad(state, "{\"id\":1,\"endpoint\":\"ping\"}"
	    "{\"id\":2,\"endpoint\":\"ping\"}", "null", "parse_error");
}

static void
test_json_bom(void **state)
{
	bad(state, "\xef\xbb\xbf{\"id\":1,\"endpoint\":\"ping\"}", "null",
	    "parse_error");
}

static void
test_json_comment(void **state)
{
	bad(state, "{\"id\":1,/* c */\"endpoint\":\"ping\"}", "null",
	    "parse_error");
}

static void
test_json_single_quotes(void **state)
{
	bad(state, "{'id':1,'endpoint':'ping'}", "null", "parse_error");
}

static void
test_json_whitespace_only(void **state)
{
	bad(state, " \t\r\n ", "null", "parse_error");
}

static void
test_json_whitespace_around(void **state)
{
	good(state, " \t\r\n{\"id\":1,\"endpoint\":\"echo\",\"data\":1}\n\t ",
	    "1", "{\"echo\":1}");
}

/* Form feed is not JSON whitespace. */
static void
test_json_formfeed_around(void **state)
{
	bad(state, "\f{\"id\":1,\"endpoint\":\"ping\"}", "null",
	    "parse_error");
}

/* ---- not UTF-8 ----------------------------------------------------------- */

static void
test_utf8_invalid_in_string(void **state)
{
	bad(state, "{\"id\":1,\"endpoint\":\"echo\",\"data\":\"\xff\xfe\"}",
	    "null", "parse_error");
}

static void
test_utf8_overlong(void **state)
{
	bad(state, "{\"id\":1,\"endpoint\":\"echo\",\"data\":\"\xc0\xaf\"}",
	    "null", "parse_error");
}

static void
test_utf8_surrogate(void **state)
{
	bad(state, "{\"id\":1,\"endpoint\":\"echo\",\"data\":\"\xed\xa0\x80\"}",
	    "null", "parse_error");
}

static void
test_utf8_truncated_sequence(void **state)
{
	bad(state, "{\"id\":1,\"endpoint\":\"echo\",\"data\":\"\xe2\x82\"}",
	    "null", "parse_error");
}

static void
test_utf8_invalid_in_key(void **state)
{
	bad(state, "{\"\xff\":1,\"id\":1,\"endpoint\":\"ping\"}", "null",
	    "parse_error");
}

static void
test_utf8_invalid_endpoint(void **state)
{
	bad(state, "{\"id\":1,\"endpoint\":\"p\x80ng\"}", "null",
	    "parse_error");
}

/* ---- NUL bytes ----------------------------------------------------------- */

static void
test_nul_raw_in_string(void **state)
{
	static const char p[] =
	    "{\"id\":1,\"endpoint\":\"echo\",\"data\":\"a\0b\"}";

	bad_n(state, p, sizeof(p) - 1, "null", "parse_error");
}

static void
test_nul_raw_after_object(void **state)
{
	static const char p[] = "{\"id\":1,\"endpoint\":\"ping\"}\0";

	bad_n(state, p, sizeof(p) - 1, "null", "parse_error");
}

static void
test_nul_raw_first_byte(void **state)
{
	static const char p[] = "\0{\"id\":1,\"endpoint\":\"ping\"}";

	bad_n(state, p, sizeof(p) - 1, "null", "parse_error");
}

/* Read exactly n bytes within TH_TIMEOUT_MS per wait; 0 or -1. */
static int
read_n(int fd, unsigned char *p, size_t n)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t r;

	while (n > 0) {
		if (poll(&pfd, 1, TH_TIMEOUT_MS) <= 0)
			return -1;
		if ((r = read(fd, p, n)) <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* th_recv() parsing with JSON_ALLOW_NUL (the harness refuses \u0000). */
static json_t *
recv_allow_nul(int fd)
{
	unsigned char h[4], *b;
	size_t n;
	json_t *j;

	assert_int_equal(read_n(fd, h, 4), 0);
	n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
	assert_true(n > 0 && n < (1u << 20));
	b = malloc(n);
	assert_non_null(b);
	assert_int_equal(read_n(fd, b, n), 0);
	j = json_loadb((const char *)b, n, JSON_ALLOW_NUL, NULL);
	free(b);
	assert_non_null(j);
	return j;
}

/* An escaped \u0000 is valid JSON: data is opaque, echoed intact. */
static void
test_nul_escaped_in_data(void **state)
{
	struct fixture *f = *state;
	json_t *r, *e;

	assert_int_equal(th_send(f->fd,
	    "{\"id\":1,\"endpoint\":\"echo\",\"data\":\"a\\u0000b\"}"), 0);
	r = recv_allow_nul(f->fd);
	assert_null(th_err_code(r));
	e = json_object_get(json_object_get(r, "result"), "echo");
	assert_int_equal(json_string_length(e), 3);
	assert_memory_equal(json_string_value(e), "a\0b", 3);
	json_decref(r);
	assert_ping(f->fd);
}

static void
test_nul_escaped_in_key(void **state)
{
	bad(state, "{\"id\":1,\"endpoint\":\"ping\",\"a\\u0000\":1}", "null",
	    "invalid_request");
}

/* ---- not an object ------------------------------------------------------- */

static void
test_top_array(void **state)
{
	bad(state, "[{\"id\":1,\"endpoint\":\"ping\"}]", "null",
	    "invalid_request");
}

static void
test_top_string(void **state)
{
	bad(state, "\"ping\"", "null", "invalid_request");
}

static void
test_top_number(void **state)
{
	bad(state, "42", "null", "invalid_request");
}

static void
test_top_null(void **state)
{
	bad(state, "null", "null", "invalid_request");
}

static void
test_top_true(void **state)
{
	bad(state, "true", "null", "invalid_request");
}

static void
test_top_empty_object(void **state)
{
	bad(state, "{}", "null", "invalid_request");
}

/* ---- endpoint ------------------------------------------------------------ */

static void
test_endpoint_missing(void **state)
{
	bad(state, "{\"id\":7,\"data\":1}", "7", "invalid_request");
}

static void
test_endpoint_number(void **state)
{
	bad(state, "{\"id\":8,\"endpoint\":5}", "8", "invalid_request");
}

static void
test_endpoint_null(void **state)
{
	bad(state, "{\"id\":9,\"endpoint\":null}", "9", "invalid_request");
}

static void
test_endpoint_object(void **state)
{
	bad(state, "{\"id\":10,\"endpoint\":{\"name\":\"ping\"}}", "10",
	    "invalid_request");
}

static void
test_endpoint_array(void **state)
{
	bad(state, "{\"id\":11,\"endpoint\":[\"ping\"]}", "11",
	    "invalid_request");
}

static void
test_endpoint_bool(void **state)
{
	bad(state, "{\"id\":12,\"endpoint\":true}", "12", "invalid_request");
}

static void
test_endpoint_empty(void **state)
{
	bad(state, "{\"id\":13,\"endpoint\":\"\"}", "13", "invalid_request");
}

static void
test_endpoint_too_long(void **state)
{
	char p[160];

	/* 64 bytes: one more than an endpoint name may have. */
	snprintf(p, sizeof(p), "{\"id\":14,\"endpoint\":\"%064d\"}", 0);
	bad(state, p, "14", "invalid_request");
}

static void
test_endpoint_longest_unknown(void **state)
{
	char p[160];

	/* 63 bytes is a valid name; no such endpoint, though. */
	snprintf(p, sizeof(p), "{\"id\":15,\"endpoint\":\"%063d\"}", 0);
	bad(state, p, "15", "unknown_endpoint");
}

static void
test_endpoint_nul(void **state)
{
	bad(state, "{\"id\":16,\"endpoint\":\"pi\\u0000ng\"}", "16",
	    "invalid_request");
}

static void
test_endpoint_unknown(void **state)
{
	struct fixture *f = *state;
	json_t *r;

	r = expect_error_s(f->fd, "{\"id\":17,\"endpoint\":\"ecko\"}",
	    "17", "unknown_endpoint");
	assert_non_null(strstr(err_msg(r), "'ecko'"));
	json_decref(r);
	assert_ping(f->fd);
}

static void
test_endpoint_wrong_case(void **state)
{
	bad(state, "{\"id\":\"c\",\"endpoint\":\"PING\"}", "\"c\"",
	    "unknown_endpoint");
}

/* ---- id ------------------------------------------------------------------ */

static void
test_id_float(void **state)
{
	bad(state, "{\"id\":1.5,\"endpoint\":\"ping\"}", "null",
	    "invalid_request");
}

static void
test_id_float_integral(void **state)
{
	bad(state, "{\"id\":2.0,\"endpoint\":\"ping\"}", "null",
	    "invalid_request");
}

static void
test_id_bool(void **state)
{
	bad(state, "{\"id\":true,\"endpoint\":\"ping\"}", "null",
	    "invalid_request");
}

static void
test_id_object(void **state)
{
	bad(state, "{\"id\":{\"n\":1},\"endpoint\":\"ping\"}", "null",
	    "invalid_request");
}

static void
test_id_array(void **state)
{
	bad(state, "{\"id\":[1],\"endpoint\":\"ping\"}", "null",
	    "invalid_request");
}

static void
test_id_explicit_null(void **state)
{
	bad(state, "{\"id\":null,\"endpoint\":\"ping\"}", "null",
	    "invalid_request");
}

static void
test_id_too_long(void **state)
{
	char p[320];

	snprintf(p, sizeof(p), "{\"id\":\"%0200d\",\"endpoint\":\"ping\"}",
	    0);
	bad(state, p, "null", "invalid_request");
}

static void
test_id_beyond_int64(void **state)
{
	/* jansson cannot represent it: not JSON we can read. */
	bad(state, "{\"id\":9223372036854775808,\"endpoint\":\"ping\"}",
	    "null", "parse_error");
}

static void
test_id_int64_extremes(void **state)
{
	good(state, "{\"id\":9223372036854775807,\"endpoint\":\"echo\"}",
	    "9223372036854775807", "{\"echo\":null}");
	good(state, "{\"id\":-9223372036854775808,\"endpoint\":\"echo\"}",
	    "-9223372036854775808", "{\"echo\":null}");
}

static void
test_id_unicode_string(void **state)
{
	struct fixture *f = *state;
	static const char id[] = "\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87-\xc3\xa9-"
	    "\xf0\x9f\x94\x91-\xe2\x80\xa8";
	json_t *r;

	assert_int_equal(th_sendf(f->fd,
	    "{\"id\":\"%s\",\"endpoint\":\"ping\"}", id), 0);
	r = must_recv(f->fd);
	assert_null(th_err_code(r));
	assert_string_equal(json_string_value(json_object_get(r, "id")), id);
	json_decref(r);
	assert_ping(f->fd);
}

static void
test_id_escapes_string(void **state)
{
	struct fixture *f = *state;
	json_t *r;

	assert_int_equal(th_send(f->fd, "{\"id\":\"a\\\"b\\\\c\\u0001\\/d"
	    "\\ud83d\\udd11\",\"endpoint\":\"ping\"}"), 0);
	r = must_recv(f->fd);
	assert_null(th_err_code(r));
	assert_string_equal(json_string_value(json_object_get(r, "id")),
	    "a\"b\\c\x01/d\xf0\x9f\x94\x91");
	json_decref(r);
	assert_ping(f->fd);
}

static void
test_id_absent(void **state)
{
	good(state, "{\"endpoint\":\"echo\",\"data\":\"x\"}", "null",
	    "{\"echo\":\"x\"}");
}

static void
test_id_error_carries_string_id(void **state)
{
	bad(state, "{\"id\":\"abc\",\"endpoint\":\"echo\",\"oneway\":0}",
	    "\"abc\"", "invalid_request");
}

/* ---- oneway and deadline_ms ---------------------------------------------- */

static void
test_oneway_number(void **state)
{
	bad(state, "{\"id\":20,\"endpoint\":\"ping\",\"oneway\":1}", "20",
	    "invalid_request");
}

static void
test_oneway_string(void **state)
{
	bad(state, "{\"id\":21,\"endpoint\":\"ping\",\"oneway\":\"true\"}",
	    "21", "invalid_request");
}

static void
test_oneway_null(void **state)
{
	bad(state, "{\"id\":22,\"endpoint\":\"ping\",\"oneway\":null}", "22",
	    "invalid_request");
}

static void
test_deadline_negative(void **state)
{
	bad(state, "{\"id\":23,\"endpoint\":\"ping\",\"deadline_ms\":-1}",
	    "23", "invalid_request");
}

static void
test_deadline_string(void **state)
{
	bad(state, "{\"id\":24,\"endpoint\":\"ping\",\"deadline_ms\":\"100\"}",
	    "24", "invalid_request");
}

static void
test_deadline_float(void **state)
{
	bad(state, "{\"id\":25,\"endpoint\":\"ping\",\"deadline_ms\":10.0}",
	    "25", "invalid_request");
}

static void
test_deadline_zero(void **state)
{
	bad(state, "{\"id\":26,\"endpoint\":\"ping\",\"deadline_ms\":0}",
	    "26", "timeout");
}

static void
test_deadline_generous(void **state)
{
	good(state, "{\"id\":27,\"endpoint\":\"echo\",\"deadline_ms\":60000,"
	    "\"data\":[1]}", "27", "{\"echo\":[1]}");
}

/* A oneway request to an unknown endpoint gets no reply, not even one. */
static void
test_oneway_unknown_endpoint(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(th_send(f->fd, "{\"id\":30,\"endpoint\":\"nope\","
	    "\"oneway\":true}"), 0);
	assert_ping(f->fd);
}

/* A oneway request runs (the handler is called once) but sends nothing. */
static void
test_oneway_runs_silently(void **state)
{
	struct fixture *f = *state;
	int before = count_wait(0);
	json_t *r;

	assert_int_equal(th_send(f->fd, "{\"id\":31,\"endpoint\":\"count\","
	    "\"oneway\":true}"), 0);
	assert_int_equal(count_wait(before + 1), before + 1);
	assert_ping(f->fd);
	/* A normal call now is the second one: the oneway ran exactly once. */
	assert_int_equal(th_send(f->fd, "{\"id\":32,\"endpoint\":\"count\"}"),
	    0);
	r = must_recv(f->fd);
	assert_int_equal(th_id(r), 32);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r,
	    "result"), "count")), before + 2);
	json_decref(r);
}

static void
test_oneway_handler_error_silent(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(th_send(f->fd, "{\"id\":33,\"endpoint\":\"fail_code\","
	    "\"oneway\":true}"), 0);
	assert_ping(f->fd);
}

static void
test_oneway_false_replies(void **state)
{
	good(state, "{\"id\":34,\"endpoint\":\"echo\",\"oneway\":false,"
	    "\"data\":\"y\"}", "34", "{\"echo\":\"y\"}");
}

/* ---- handler errors ------------------------------------------------------ */

static void
test_handler_error_code(void **state)
{
	struct fixture *f = *state;
	json_t *r;

	r = expect_error_s(f->fd, "{\"id\":40,\"endpoint\":\"fail_code\"}",
	    "40", "invalid_argument");
	assert_string_equal(err_msg(r), "bad value 42");
	json_decref(r);
	assert_ping(f->fd);
}

static void
test_handler_negative_no_message(void **state)
{
	struct fixture *f = *state;
	json_t *r;

	r = expect_error_s(f->fd, "{\"id\":41,\"endpoint\":\"fail_bare\"}",
	    "41", "unauthorized");
	assert_string_equal(err_msg(r), witch_strerror(WITCH_EUNAUTHORIZED));
	json_decref(r);
	assert_ping(f->fd);
}

static void
test_handler_foreign_negative(void **state)
{
	struct fixture *f = *state;
	json_t *r;

	r = expect_error_s(f->fd, "{\"id\":42,\"endpoint\":\"fail_foreign\"}",
	    "42", "handler_error");
	assert_string_equal(err_msg(r), witch_strerror(WITCH_EHANDLER));
	json_decref(r);
	assert_ping(f->fd);
}

static void
test_handler_result_then_error(void **state)
{
	struct fixture *f = *state;
	json_t *r;
	const char *p = "{\"id\":43,\"endpoint\":\"result_then_error\"}";

	r = expect_error_s(f->fd, p, "43", "timeout");
	assert_string_equal(err_msg(r), "ran out of time");
	json_decref(r);
	assert_ping(f->fd);
}

static void
test_handler_huge_result(void **state)
{
	struct fixture *f = *state;
	json_t *r;

	r = expect_error_s(f->fd, "{\"id\":44,\"endpoint\":\"huge\"}",
	    "44", "handler_error");
	assert_non_null(strstr(err_msg(r), "64 MiB"));
	json_decref(r);
	assert_ping(f->fd);
}

/*
 * A result that cannot be written as JSON is the handler's error, in its
 * own reply; the connection is not closed as if memory had run out.
 */
static void
test_handler_unencodable_result(void **state)
{
	struct fixture *f = *state;
	json_t *r;

	r = expect_error_s(f->fd, "{\"id\":45,\"endpoint\":\"unencodable\"}",
	    "45", "handler_error");
	assert_non_null(strstr(err_msg(r), "JSON"));
	json_decref(r);
	assert_ping(f->fd);
}

/* ---- nesting ------------------------------------------------------------- */

/* pre, n copies of open, n copies of close (if any), post. */
static char *
nested(const char *pre, const char *open, const char *close, size_t n,
    const char *post, size_t *len)
{
	size_t lo = strlen(open), lc = close ? strlen(close) : 0, i, off;
	size_t total = strlen(pre) + n * (lo + lc) + strlen(post);
	char *s = malloc(total + 1);

	assert_non_null(s);
	off = strlen(pre);
	memcpy(s, pre, off);
	for (i = 0; i < n; i++, off += lo)
		memcpy(s + off, open, lo);
	for (i = 0; i < n && lc > 0; i++, off += lc)
		memcpy(s + off, close, lc);
	memcpy(s + off, post, strlen(post) + 1);
	*len = total;
	return s;
}

static void
test_deep_open_arrays(void **state)
{
	size_t n;
	char *s = nested("", "[", NULL, DEEP, "", &n);

	bad_n(state, s, n, "null", "parse_error");
	free(s);
}

static void
test_deep_open_objects(void **state)
{
	size_t n;
	char *s = nested("", "{\"a\":", NULL, DEEP, "", &n);

	bad_n(state, s, n, "null", "parse_error");
	free(s);
}

/* Balanced but too deep, inside the data of a valid request. */
static void
test_deep_balanced_in_data(void **state)
{
	size_t n;
	char *s = nested("{\"id\":50,\"endpoint\":\"echo\",\"data\":", "[",
	    "]", DEEP, "}", &n);

	bad_n(state, s, n, "null", "parse_error");
	free(s);
}

/* Nesting within jansson's limit is data like any other: echoed back. */
static void
test_nesting_within_limit(void **state)
{
	struct fixture *f = *state;
	size_t n, depth = 0;
	char *s = nested("{\"id\":51,\"endpoint\":\"echo\",\"data\":", "[",
	    "]", 1000, "}", &n);
	json_t *r, *v;

	send_n(f->fd, s, n);
	r = must_recv(f->fd);
	assert_int_equal(th_id(r), 51);
	assert_null(th_err_code(r));
	for (v = json_object_get(json_object_get(r, "result"), "echo");
	    json_is_array(v); v = json_array_get(v, 0))
		depth++;
	assert_int_equal(depth, 1000);
	json_decref(r);
	free(s);
	assert_ping(f->fd);
}

/* ---- other accepted forms ------------------------------------------------ */

static void
test_duplicate_keys_last_wins(void **state)
{
	good(state, "{\"id\":60,\"endpoint\":\"nope\",\"endpoint\":\"echo\","
	    "\"data\":1,\"data\":2}", "60", "{\"echo\":2}");
}

static void
test_unknown_keys_ignored(void **state)
{
	good(state, "{\"id\":61,\"endpoint\":\"echo\",\"x\":[1,{\"y\":null}],"
	    "\"data\":true}", "61", "{\"echo\":true}");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_json_invalid),
		T(test_json_truncated),
		T(test_json_trailing_garbage),
		T(test_json_two_objects),
		T(test_json_bom),
		T(test_json_comment),
		T(test_json_single_quotes),
		T(test_json_whitespace_only),
		T(test_json_whitespace_around),
		T(test_json_formfeed_around),
		T(test_utf8_invalid_in_string),
		T(test_utf8_overlong),
		T(test_utf8_surrogate),
		T(test_utf8_truncated_sequence),
		T(test_utf8_invalid_in_key),
		T(test_utf8_invalid_endpoint),
		T(test_nul_raw_in_string),
		T(test_nul_raw_after_object),
		T(test_nul_raw_first_byte),
		T(test_nul_escaped_in_data),
		T(test_nul_escaped_in_key),
		T(test_top_array),
		T(test_top_string),
		T(test_top_number),
		T(test_top_null),
		T(test_top_true),
		T(test_top_empty_object),
		T(test_endpoint_missing),
		T(test_endpoint_number),
		T(test_endpoint_null),
		T(test_endpoint_object),
		T(test_endpoint_array),
		T(test_endpoint_bool),
		T(test_endpoint_empty),
		T(test_endpoint_too_long),
		T(test_endpoint_longest_unknown),
		T(test_endpoint_nul),
		T(test_endpoint_unknown),
		T(test_endpoint_wrong_case),
		T(test_id_float),
		T(test_id_float_integral),
		T(test_id_bool),
		T(test_id_object),
		T(test_id_array),
		T(test_id_explicit_null),
		T(test_id_too_long),
		T(test_id_beyond_int64),
		T(test_id_int64_extremes),
		T(test_id_unicode_string),
		T(test_id_escapes_string),
		T(test_id_absent),
		T(test_id_error_carries_string_id),
		T(test_oneway_number),
		T(test_oneway_string),
		T(test_oneway_null),
		T(test_deadline_negative),
		T(test_deadline_string),
		T(test_deadline_float),
		T(test_deadline_zero),
		T(test_deadline_generous),
		T(test_oneway_unknown_endpoint),
		T(test_oneway_runs_silently),
		T(test_oneway_handler_error_silent),
		T(test_oneway_false_replies),
		T(test_handler_error_code),
		T(test_handler_negative_no_message),
		T(test_handler_foreign_negative),
		T(test_handler_result_then_error),
		T(test_handler_huge_result),
		T(test_handler_unencodable_result),
		T(test_deep_open_arrays),
		T(test_deep_open_objects),
		T(test_deep_balanced_in_data),
		T(test_nesting_within_limit),
		T(test_duplicate_keys_last_wins),
		T(test_unknown_keys_ignored),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
