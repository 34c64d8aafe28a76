/*
 * test_reactor_bounds: no built-in the reactor answers itself (hello,
 * cancel, clients, kill_client, monitor) lets one client stall the
 * others, over real sockets.
 *
 * Each gets a max-size frame (1 MiB) of data and must answer with the
 * documented invalid_request error naming its limit, without looking
 * inside the data (the work is bounded by the reply, not timed); a cancel
 * of the most ids allowed is matched against the pool's queue in one
 * pass; requests of normal size behave as before.  Meanwhile another
 * client pings without pause: the longest wait it saw is printed (a
 * figure, not an assertion: timings flake on shared machines).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reactor/reactor.h"
#include "integ/harness.h"

#define FRAME_MAX	(1u << 20)	/* the default max_frame */

static witch_server_t *srv;

static void
reg(witch_server_t *s, void *arg)
{
	assert_int_equal(witch_server_register_endpoint(s, "gate",
	    th_h_block, NULL), 0);
}

static int
setup(void **state)
{
	witch_server_config_t *cfg = th_config();

	witch_server_config_set_workers(cfg, 1);
	witch_server_config_set_queue_depth(cfg, 4096);
	srv = th_server_start(cfg, reg, NULL);
	witch_server_config_free(cfg);
	th_gate_reset();
	return 0;
}

static int
teardown(void **state)
{
	th_gate_open();
	witch_server_free(srv);
	return 0;
}

static void assert_code(const json_t *, const char *);

/* ---- another client's ping latency, measured meanwhile ---------------- */

struct pinger {
	pthread_t	 thr;
	int		 fd;
	atomic_bool	 stop;
	uint64_t	 max_us;
	unsigned	 n;
};

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

static void *
pinger_main(void *arg)
{
	struct pinger *p = arg;
	uint64_t t0, dt;
	json_t *r;

	/*
	 * At least one ping, even if stop is set before this thread first
	 * runs (a loaded machine): pinger_stop() asserts a measurement.
	 */
	do {
		t0 = now_us();
		if (th_send(p->fd, "{\"id\":1,\"endpoint\":\"ping\"}") != 0 ||
		    (r = th_recv(p->fd, 0)) == NULL)
			break;
		json_decref(r);
		dt = now_us() - t0;
		if (dt > p->max_us)
			p->max_us = dt;
		p->n++;
	} while (!atomic_load(&p->stop));
	return NULL;
}

static void
pinger_start(struct pinger *p)
{
	memset(p, 0, sizeof(*p));
	p->fd = th_connect(witch_server_port(srv));
	th_ping_ok(p->fd);
	atomic_init(&p->stop, false);
	assert_int_equal(pthread_create(&p->thr, NULL, pinger_main, p), 0);
	th_sleep_ms(20);
}

static uint64_t
pinger_stop(struct pinger *p)
{
	atomic_store(&p->stop, true);
	pthread_join(p->thr, NULL);
	close(p->fd);
	assert_true(p->n > 0);
	return p->max_us;
}

/* ---- big frames ------------------------------------------------------- */

/*
 * A request frame of exactly FRAME_MAX payload bytes: head, then item
 * repeated (separated by commas) as often as fits, then tail.
 */
static char *
big_request(const char *head, const char *item, const char *tail,
    size_t *len)
{
	size_t hn = strlen(head), in = strlen(item), tn = strlen(tail), n;
	char *p = malloc(FRAME_MAX + 1);

	assert_non_null(p);
	memcpy(p, head, hn);
	n = hn;
	while (n + in + 1 + tn <= FRAME_MAX) {
		if (n > hn)
			p[n++] = ',';
		memcpy(p + n, item, in);
		n += in;
	}
	memset(p + n, ' ', FRAME_MAX - n - tn);	/* pad to the exact max */
	memcpy(p + FRAME_MAX - tn, tail, tn);
	*len = FRAME_MAX;
	return p;
}

/*
 * Send payload on a fresh connection while another client pings; the
 * reply must be the error code whose message names limit (NULL: any
 * message).  Prints the longest ping the other client waited.
 */
static void
expect_error(const char *what, const char *payload, size_t len,
    const char *code, const char *limit)
{
	struct pinger pg;
	int fd = th_connect(witch_server_port(srv));
	unsigned char *frame = malloc(len + 4);
	const char *msg;
	json_t *r;

	assert_non_null(frame);
	th_frame(frame, payload, (uint32_t)len);
	pinger_start(&pg);
	assert_int_equal(th_send_raw(fd, frame, len + 4), 0);
	r = th_recv_ok(fd, 0);
	print_message("%-44s another client's ping: max %6.1f ms\n", what,
	    pinger_stop(&pg) / 1000.0);
	assert_code(r, code);
	msg = json_string_value(json_object_get(json_object_get(r, "error"),
	    "message"));
	assert_non_null(msg);
	if (limit != NULL && strstr(msg, limit) == NULL)
		fail_msg("%s: message \"%s\" does not name the limit %s",
		    what, msg, limit);
	json_decref(r);
	th_ping_ok(fd);			/* the connection goes on */
	close(fd);
	free(frame);
}

/* The reply (id 1) is invalid_request naming limit. */
static void
expect_limit(const char *what, const char *payload, size_t len,
    const char *limit)
{
	expect_error(what, payload, len, "invalid_request", limit);
}

static void
test_cancel_max_frame(void **state)
{
	char limit[32];
	size_t len;
	char *p = big_request("{\"id\":1,\"endpoint\":\"cancel\","
	    "\"data\":{\"ids\":[", "1", "]}}", &len);

	snprintf(limit, sizeof(limit), "%d", WITCH__CANCEL_DATA_MAX);
	expect_limit("cancel, 1 MiB of ids (~524k)", p, len, limit);
	free(p);
	p = big_request("{\"id\":1,\"endpoint\":\"cancel\","
	    "\"data\":{\"ids\":[", "\"abcdefgh\"", "]}}", &len);
	expect_limit("cancel, 1 MiB of string ids", p, len, limit);
	free(p);
}

static void
test_hello_max_frame(void **state)
{
	size_t len;
	char *p = big_request("{\"id\":1,\"endpoint\":\"hello\",\"data\":[",
	    "{}", "]}", &len);

	expect_limit("hello, 1 MiB data [{},{},...]", p, len, "4096");
	free(p);
	p = big_request("{\"id\":1,\"endpoint\":\"hello\",\"data\":"
	    "{\"protocols\":[", "\"x\"", "]}}", &len);
	expect_limit("hello, 1 MiB of protocols", p, len, "4096");
	free(p);
	/* Escaped keys are matched as they are, on the fast path. */
	p = big_request("{\"\\u0069d\":1,\"endpoint\":\"hello\","
	    "\"data\":[", "{}", "]}", &len);
	expect_limit("hello, 1 MiB data, escaped envelope key", p, len,
	    "4096");
	free(p);
}

static void
test_ops_max_frame(void **state)
{
	static const char *eps[] = { "clients", "kill_client", "monitor" };
	char head[96], what[64];
	size_t i, len;
	char *p;

	for (i = 0; i < sizeof(eps) / sizeof(eps[0]); i++) {
		snprintf(head, sizeof(head), "{\"id\":1,\"endpoint\":\"%s\","
		    "\"data\":{\"id\":1,\"x\":[", eps[i]);
		p = big_request(head, "{}", "]}}", &len);
		snprintf(what, sizeof(what), "%s, 1 MiB data", eps[i]);
		expect_limit(what, p, len, "4096");
		free(p);
	}
}

/*
 * The monitor feed does not parse another client's big data on the
 * reactor: the line says how big it was.  Also the figure to compare
 * with: the same 1 MiB frame sent to echo.
 */
static void
test_monitor_feed_big(void **state)
{
	int mon = th_connect(witch_server_port(srv));
	int fd = th_connect(witch_server_port(srv));
	struct pinger pg;
	unsigned char *frame;
	const char *shown;
	size_t len;
	char *p = big_request("{\"id\":1,\"endpoint\":\"echo\",\"data\":[",
	    "{}", "]}", &len);
	json_t *r;

	th_send(mon, "{\"id\":1,\"endpoint\":\"monitor\"}");
	th_expect_reply(mon, 1, NULL);
	assert_non_null(frame = malloc(len + 4));
	th_frame(frame, p, (uint32_t)len);
	pinger_start(&pg);
	assert_int_equal(th_send_raw(fd, frame, len + 4), 0);
	r = th_recv_ok(fd, 0);
	print_message("%-44s another client's ping: max %6.1f ms\n",
	    "echo, 1 MiB data, one monitor (comparison)",
	    pinger_stop(&pg) / 1000.0);
	assert_int_equal(th_id(r), 1);
	assert_null(th_err_code(r));
	json_decref(r);
	/* The monitor's line for it (the pinger's lines come first). */
	for (;;) {
		r = th_recv_ok(mon, 0);
		if (strcmp(json_string_value(json_object_get(json_object_get(r,
		    "data"), "endpoint")), "echo") == 0)
			break;
		json_decref(r);
	}
	shown = json_string_value(json_object_get(json_object_get(r, "data"),
	    "data"));
	assert_non_null(shown);
	assert_non_null(strstr(shown, "bytes, not shown"));
	json_decref(r);
	free(frame);
	free(p);
	close(fd);
	close(mon);
}

/*
 * What the fast envelope path does not take (wrong types, a top-level
 * array, invalid JSON) never has jansson parse the whole frame either.
 */
static void
test_envelope_slow_paths(void **state)
{
	size_t len;
	char *p;

	p = big_request("{\"id\":1,\"endpoint\":\"echo\",\"oneway\":\"no\","
	    "\"data\":[", "{}", "]}", &len);
	expect_error("echo, 1 MiB data, oneway not a boolean", p, len,
	    "invalid_request", "oneway");
	free(p);
	p = big_request("{\"id\":[", "{}", "],\"endpoint\":\"echo\"}", &len);
	expect_error("1 MiB id [{},{},...]", p, len, "invalid_request",
	    "\"id\"");
	free(p);
	p = big_request("[", "{}", "]", &len);
	expect_error("1 MiB top-level array", p, len, "invalid_request",
	    "object");
	free(p);
	p = big_request("{\"id\":1,\"endpoint\":\"echo\",\"data\":[", "{}",
	    "}}", &len);
	expect_error("1 MiB of JSON broken at its end", p, len, "parse_error",
	    NULL);
	free(p);
}

/* Send a cancel (id 99999) of the n ids from, from+1, ... on fd. */
static void
cancel_send(int fd, unsigned from, unsigned n)
{
	size_t cap = 64 + (size_t)n * 12, len;
	char *p = malloc(cap);
	unsigned i;

	assert_non_null(p);
	len = (size_t)snprintf(p, cap, "{\"id\":99999,\"endpoint\":\"cancel\","
	    "\"data\":{\"ids\":[");
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(p + len, cap - len, "%s%u",
		    i ? "," : "", from + i);
	snprintf(p + len, cap - len, "]}}");
	assert_int_equal(th_send(fd, p), 0);
	free(p);
}

/* The same, and its reply. */
static json_t *
cancel_n(int fd, unsigned from, unsigned n)
{
	cancel_send(fd, from, n);
	return th_recv_ok(fd, 0);
}

/* The next frame is an error reply with this code (any id). */
static void
expect_code(int fd, const char *code)
{
	json_t *r = th_recv_ok(fd, 0);

	assert_code(r, code);
	json_decref(r);
}

/* The reply r is an error with this code (a result fails the test). */
static void
assert_code(const json_t *r, const char *code)
{
	const char *c = th_err_code(r);

	if (c == NULL || strcmp(c, code) != 0)
		fail_msg("reply %s, expected error %s", c != NULL ? c :
		    "a result", code);
}

static json_int_t
field(const json_t *r, const char *k)
{
	return json_integer_value(json_object_get(json_object_get(r,
	    "result"), k));
}

static void
test_cancel_limit(void **state)
{
	int fd = th_connect(witch_server_port(srv));
	json_t *r;

	r = cancel_n(fd, 100000, WITCH__CANCEL_IDS_MAX);
	assert_null(th_err_code(r));
	assert_int_equal(field(r, "matched"), 0);
	assert_int_equal(field(r, "remembered"), WITCH__CANCEL_IDS_MAX);
	json_decref(r);
	r = cancel_n(fd, 100000, WITCH__CANCEL_IDS_MAX + 1);
	assert_code(r, "invalid_request");
	assert_non_null(strstr(json_string_value(json_object_get(
	    json_object_get(r, "error"), "message")), "1024"));
	json_decref(r);
	th_ping_ok(fd);
	close(fd);
}

/*
 * 1,000 requests queued behind a busy worker; one cancel of the most ids
 * allowed, most of them queued: each queued one is answered cancelled,
 * the others remembered, in one walk of the queue.
 */
static void
test_cancel_queued(void **state)
{
	int fd = th_connect(witch_server_port(srv));
	struct pinger pg;
	char req[96];
	unsigned i, cancelled = 0;
	json_t *r;

	assert_int_equal(th_send(fd, "{\"id\":5000,\"endpoint\":\"gate\"}"),
	    0);
	assert_true(th_gate_await(TH_GATE_STARTED, 1, TH_TIMEOUT_MS));
	for (i = 1; i <= 1000; i++) {
		snprintf(req, sizeof(req), "{\"id\":%u,\"endpoint\":\"gate\"}",
		    i);
		assert_int_equal(th_send(fd, req), 0);
	}
	pinger_start(&pg);
	/* ids 1..1024: 1..1000 queued, 1001..1024 not (yet). */
	cancel_send(fd, 1, WITCH__CANCEL_IDS_MAX);
	/* 1,000 cancelled errors and the cancel's own reply. */
	for (i = 0; i < 1001; i++) {
		r = th_recv_ok(fd, 0);
		if (th_id(r) == 99999) {
			if (th_err_code(r) != NULL)
				fail_msg("cancel: %s", json_dumps(r, 0));
			assert_int_equal(field(r, "matched"), 1000);
			assert_int_equal(field(r, "remembered"),
			    WITCH__CANCEL_IDS_MAX - 1000);
		} else {
			assert_code(r, "cancelled");
			cancelled++;
		}
		json_decref(r);
	}
	print_message("%-44s another client's ping: max %6.1f ms\n",
	    "cancel 1024 ids, 1,000 queued", pinger_stop(&pg) / 1000.0);
	assert_int_equal(cancelled, 1000);
	/* A remembered id: cancelled when it arrives. */
	th_send(fd, "{\"id\":1010,\"endpoint\":\"gate\"}");
	th_expect_reply(fd, 1010, "cancelled");
	/* The running one matches too (it sees the flag). */
	r = cancel_n(fd, 5000, 1);
	assert_int_equal(field(r, "matched"), 1);
	json_decref(r);
	th_expect_reply(fd, 5000, NULL);
	close(fd);
}

/* Normal-size requests of every reactor-side built-in still work. */
static void
test_normal_sizes(void **state)
{
	int fd = th_connect(witch_server_port(srv));
	int victim = th_connect(witch_server_port(srv));
	json_int_t vid;
	json_t *r;

	th_sendf(fd, "{\"id\":1,\"endpoint\":\"hello\",\"data\":{\"name\":"
	    "\"b\\u00e9nch\",\"protocols\":[7,\"nope\",\"v1\"]}}");
	r = th_recv_ok(fd, 0);
	assert_null(th_err_code(r));
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(r, "result"), "protocol")), "v1");
	json_decref(r);
	th_send(fd, "{\"id\":2,\"endpoint\":\"hello\",\"data\":[]}");
	th_expect_reply(fd, 2, "invalid_request");
	th_send(fd, "{\"id\":3,\"endpoint\":\"hello\",\"data\":"
	    "{\"source_hash\":\"00\"}}");
	th_expect_reply(fd, 3, "incompatible");
	th_send(fd, "{\"id\":4,\"endpoint\":\"clients\"}");
	r = th_recv_ok(fd, 0);
	assert_true(json_array_size(json_object_get(r, "result")) >= 2);
	json_decref(r);
	th_send(victim, "{\"id\":1,\"endpoint\":\"hello\"}");
	r = th_recv_ok(victim, 0);
	vid = field(r, "client_id");
	json_decref(r);
	th_sendf(fd, "{\"id\":5,\"endpoint\":\"kill_client\",\"data\":"
	    "{\"id\":%lld}}", (long long)vid);
	r = th_recv_ok(fd, 0);
	assert_int_equal(field(r, "killed"), vid);
	json_decref(r);
	assert_int_equal(th_wait_eof(victim, 5000), 1);
	th_send(fd, "{\"id\":6,\"endpoint\":\"kill_client\",\"data\":"
	    "{\"id\":\"x\"}}");
	th_expect_reply(fd, 6, "invalid_request");
	th_send(fd, "{\"id\":7,\"endpoint\":\"cancel\",\"data\":"
	    "{\"ids\":[\"a\\\"b\",-0,[1]]}}");
	th_expect_reply(fd, 7, "invalid_request");
	th_send(fd, "{\"id\":8,\"endpoint\":\"cancel\",\"data\":"
	    "{\"ids\":[\"a\\u0041\",-0,12]}}");
	r = th_recv_ok(fd, 0);
	assert_int_equal(field(r, "remembered"), 3);
	json_decref(r);
	/* The remembered ids, as the envelope writes them, match. */
	th_send(fd, "{\"id\":\"aA\",\"endpoint\":\"gate\"}");
	expect_code(fd, "cancelled");
	th_send(fd, "{\"id\":0,\"endpoint\":\"gate\"}");
	expect_code(fd, "cancelled");
	th_send(fd, "{\"id\":12,\"endpoint\":\"gate\"}");
	expect_code(fd, "cancelled");
	/*
	 * An escaped envelope key sends the request down jansson's path:
	 * the built-ins read the same data from its text all the same.
	 */
	th_send(fd, "{\"\\u0069d\":10,\"endpoint\":\"kill_client\","
	    "\"data\":{\"id\":999999}}");
	th_expect_reply(fd, 10, "invalid_argument");
	th_send(fd, "{\"\\u0069d\":11,\"endpoint\":\"cancel\","
	    "\"data\":{\"ids\":[5,\"q\"]}}");
	r = th_recv_ok(fd, 0);
	assert_int_equal(field(r, "remembered"), 2);
	json_decref(r);
	th_send(fd, "{\"\\u0069d\":12,\"endpoint\":\"hello\","
	    "\"data\":{\"protocols\":[\"nope\"]}}");
	th_expect_reply(fd, 12, "unsupported_protocol");
	th_send(fd, "{\"id\":9,\"endpoint\":\"monitor\"}");
	th_expect_reply(fd, 9, NULL);
	close(victim);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cancel_max_frame, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hello_max_frame, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ops_max_frame, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_monitor_feed_big, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_envelope_slow_paths,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_limit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cancel_queued, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_normal_sizes, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
