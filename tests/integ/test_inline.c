/*
 * test_inline: endpoints that run on the reactor thread
 * (WITCH_ENDPOINT_INLINE, and the built-ins ping and echo unless
 * inline_builtins is off), over real sockets.
 *
 * The user-visible property: an inline endpoint is answered while every
 * worker is busy, and a pool endpoint is not.  The only worker is blocked
 * in the harness's "block" handler (endpoint "gate") until the test opens
 * the gate.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "integ/harness.h"
#include "reactor/reactor.h"	/* witch__flush_hook */

static pthread_t inline_thr, pool_thr;
static atomic_int inline_calls, inline_oneway_calls, note_bad;

/* Inline handler: doubles an integer; errors on anything else. */
static int
h_twice(witch_request_t *req, void *ud)
{
	json_t *d = witch_request_data(req);

	atomic_fetch_add(&inline_calls, 1);
	inline_thr = pthread_self();
	if (!json_is_integer(d))
		return witch_request_error(req, WITCH_EINVAL,
		    "twice wants an integer, got %s", json_is_string(d) ?
		    json_string_value(d) : "something else");
	return witch_request_reply(req, json_integer(2 *
	    json_integer_value(d)));
}

/* Inline handler for oneway notifications: counts them. */
static int
h_note(witch_request_t *req, void *ud)
{
	atomic_fetch_add(&inline_oneway_calls, 1);
	/* Nothing to wait for inline: never cancelled, no deadline. */
	if (witch_request_cancelled(req) ||
	    witch_request_remaining_ms(req) != -1)
		atomic_store(&note_bad, 1);
	/* A handler may not stop its own server. */
	if (witch_server_stop(witch_request_server(req), 0) != WITCH_ESTATE)
		atomic_store(&note_bad, 2);
	return 0;
}

/* Inline handler with a 64 KiB result: output limits apply to it. */
#define BIG_REPLY 65536
static atomic_int big_calls;

static int
h_big(witch_request_t *req, void *ud)
{
	static char text[BIG_REPLY];

	atomic_fetch_add(&big_calls, 1);
	if (text[0] == '\0')
		memset(text, 'b', sizeof(text));
	return witch_request_reply(req, json_stringn(text, sizeof(text)));
}

/*
 * witch_request_reply_raw(): data is a string holding JSON text; the
 * handler replies with that text from a stack buffer it wipes before it
 * returns (the library must have copied it).  A first json reply is
 * replaced.  Text that is not JSON: the handler returns the error.
 */
static atomic_int raw_bad;

static int
h_raw(witch_request_t *req, void *ud)
{
	json_t *d = witch_request_data(req);
	char text[256];
	size_t n;
	int rc;

	if (!json_is_string(d) || (n = json_string_length(d)) >= sizeof(text))
		return WITCH_EINVAL;
	memcpy(text, json_string_value(d), n);
	witch_request_reply(req, json_string("replaced"));
	if (witch_request_reply_raw(req, NULL, 0) != WITCH_EINVAL)
		atomic_store(&raw_bad, 1);
	rc = witch_request_reply_raw(req, text, n);
	memset(text, 'X', sizeof(text));
	return rc;
}

/*
 * Inline handler that holds the reactor's turn until the test lets it
 * go (release), at most HOLD_MS, saying when it has started (held).
 */
#define HOLD_MS 10000
static atomic_int held, release;

static int
h_hold(witch_request_t *req, void *ud)
{
	unsigned i;

	atomic_store(&held, 1);
	for (i = 0; i < HOLD_MS && atomic_load(&release) == 0; i++)
		th_sleep_ms(1);
	return witch_request_reply(req, json_true());
}

/* Pool handler: where do pool handlers run? */
static int
h_where(witch_request_t *req, void *ud)
{
	pool_thr = pthread_self();
	return witch_request_reply(req, json_true());
}

static void
reg(witch_server_t *srv, void *arg)
{
	const char *v1[] = { "v1" };

	assert_int_equal(witch_server_register_endpoint(srv, "gate",
	    th_h_block, NULL), 0);
	assert_int_equal(witch_server_register_endpoint(srv, "where",
	    h_where, NULL), 0);
	assert_int_equal(witch_server_register_endpoint_ex(srv, "twice",
	    NULL, 0, h_twice, NULL, WITCH_ENDPOINT_INLINE), 0);
	assert_int_equal(witch_server_register_endpoint_ex(srv, "note",
	    v1, 1, h_note, NULL, WITCH_ENDPOINT_INLINE), 0);
	assert_int_equal(witch_server_register_endpoint_ex(srv, "big",
	    NULL, 0, h_big, NULL, WITCH_ENDPOINT_INLINE), 0);
	assert_int_equal(witch_server_register_endpoint(srv, "raw",
	    h_raw, NULL), 0);
	assert_int_equal(witch_server_register_endpoint_ex(srv, "hold",
	    NULL, 0, h_hold, NULL, WITCH_ENDPOINT_INLINE), 0);
	assert_int_equal(witch_server_register_endpoint_ex(srv, "raw_inline",
	    NULL, 0, h_raw, NULL, WITCH_ENDPOINT_INLINE), 0);
	/* Bad calls change nothing. */
	assert_int_equal(witch_server_register_endpoint_ex(srv, "bad",
	    NULL, 0, h_twice, NULL, 0x80), WITCH_EINVAL);
	assert_int_equal(witch_server_register_endpoint_ex(srv, "bad",
	    NULL, 1, h_twice, NULL, 0), WITCH_EINVAL);
	assert_int_equal(witch_server_register_endpoint_ex(srv, "bad",
	    v1, 0, h_twice, NULL, 0), WITCH_EINVAL);
	assert_int_equal(witch_server_register_endpoint_ex(srv, "twice",
	    NULL, 0, h_twice, NULL, WITCH_ENDPOINT_INLINE), WITCH_EEXISTS);
	assert_int_equal(witch_server_register_endpoint_ex(srv, "echo",
	    NULL, 0, h_twice, NULL, WITCH_ENDPOINT_INLINE), WITCH_EEXISTS);
}

static witch_server_t *
start_limits(bool inline_builtins, size_t soft, size_t hard)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;

	if (soft != 0)
		assert_int_equal(witch_server_config_set_output_limits(cfg,
		    soft, hard), 0);
	assert_int_equal(witch_server_config_set_workers(cfg, 1), 0);
	assert_int_equal(witch_server_config_set_inline_builtins(cfg,
	    inline_builtins), 0);
	assert_int_equal(witch_server_config_set_inline_builtins(NULL, true),
	    WITCH_EINVAL);
	srv = th_server_start(cfg, reg, NULL);
	witch_server_config_free(cfg);
	th_gate_reset();
	return srv;
}

static witch_server_t *
start(bool inline_builtins)
{
	return start_limits(inline_builtins, 0, 0);
}

/* Block the only worker: a gate request on fd, wait until it runs. */
static void
block_worker(int fd, json_int_t id)
{
	th_sendf(fd, "{\"id\":%lld,\"endpoint\":\"gate\"}", (long long)id);
	assert_true(th_gate_await(TH_GATE_STARTED, 1, 5000));
}

/* Inline endpoints and inline built-ins answer while the worker is busy. */
static void
test_inline_while_worker_busy(void **state)
{
	witch_server_t *srv = start(true);
	int a = th_connect(witch_server_port(srv));
	int b = th_connect(witch_server_port(srv));
	json_t *r;

	block_worker(a, 1);
	/* The same connection and another one: both answered now. */
	th_send(a, "{\"id\":2,\"endpoint\":\"twice\",\"data\":21}");
	r = th_recv_ok(a, 2000);
	assert_int_equal(th_id(r), 2);
	assert_int_equal(json_integer_value(json_object_get(r, "result")), 42);
	json_decref(r);
	th_send(b, "{\"id\":3,\"endpoint\":\"echo\",\"data\":[1,\"x\"]}");
	r = th_recv_ok(b, 2000);
	assert_int_equal(th_id(r), 3);
	assert_string_equal(json_string_value(json_array_get(json_object_get(
	    json_object_get(r, "result"), "echo"), 1)), "x");
	json_decref(r);
	th_ping_ok(b);
	/* A pool endpoint waits for the worker. */
	th_send(b, "{\"id\":4,\"endpoint\":\"where\"}");
	assert_null(th_recv(b, 300));
	th_gate_open();
	th_expect_reply(a, 1, NULL);
	th_expect_reply(b, 4, NULL);
	/* Inline runs neither on the worker nor on this thread. */
	assert_false(pthread_equal(inline_thr, pool_thr));
	assert_false(pthread_equal(inline_thr, pthread_self()));
	close(a);
	close(b);
	witch_server_free(srv);
}

/* inline_builtins off: ping and echo queue behind the busy worker. */
static void
test_builtins_on_workers(void **state)
{
	witch_server_t *srv = start(false);
	int a = th_connect(witch_server_port(srv));
	json_t *r;

	block_worker(a, 1);
	th_send(a, "{\"id\":2,\"endpoint\":\"ping\"}");
	th_send(a, "{\"id\":3,\"endpoint\":\"echo\",\"data\":\"e\"}");
	th_send(a, "{\"id\":4,\"endpoint\":\"twice\",\"data\":5}");
	/* Only the inline user endpoint gets through. */
	r = th_recv_ok(a, 2000);
	assert_int_equal(th_id(r), 4);
	json_decref(r);
	assert_null(th_recv(a, 300));
	th_gate_open();
	th_expect_reply(a, 1, NULL);
	th_expect_reply(a, 2, NULL);
	th_expect_reply(a, 3, NULL);
	close(a);
	witch_server_free(srv);
}

/* Errors, oneway, ids and counters of inline handlers. */
static void
test_inline_errors_oneway(void **state)
{
	witch_server_t *srv = start(true);
	int fd = th_connect(witch_server_port(srv));
	json_t *r;
	int notes = atomic_load(&inline_oneway_calls);
	json_int_t served, failed;

	th_send(fd, "{\"id\":\"s1\",\"endpoint\":\"twice\",\"data\":\"ten\"}");
	r = th_recv_ok(fd, 0);
	assert_string_equal(json_string_value(json_object_get(r, "id")), "s1");
	assert_string_equal(th_err_code(r), "invalid_argument");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    r, "error"), "message")), "twice wants an integer, got ten");
	json_decref(r);
	/* No data: null, which is not an integer either. */
	th_send(fd, "{\"id\":7,\"endpoint\":\"twice\"}");
	th_expect_reply(fd, 7, "invalid_argument");
	/* Oneway: the handler runs, nothing is sent back; it counts. */
	served = th_status_get(fd, "requests_served");
	failed = th_status_get(fd, "requests_failed");
	th_send(fd, "{\"endpoint\":\"note\",\"oneway\":true}");
	th_send(fd, "{\"id\":8,\"endpoint\":\"note\",\"oneway\":true}");
	th_send(fd, "{\"id\":9,\"endpoint\":\"twice\",\"oneway\":true,"
	    "\"data\":1}");
	th_ping_ok(fd);
	assert_int_equal(atomic_load(&inline_oneway_calls), notes + 2);
	assert_int_equal(atomic_load(&note_bad), 0);
	/*
	 * Served since the first status read it: both status requests, the
	 * two notes, the oneway "twice" and the ping.
	 */
	assert_int_equal(th_status_get(fd, "requests_served"), served + 6);
	assert_int_equal(th_status_get(fd, "requests_failed"), failed);
	/* Inline calls are counted like any other. */
	served = th_status_get(fd, "requests_served");
	th_send(fd, "{\"id\":10,\"endpoint\":\"twice\",\"data\":-4}");
	r = th_recv_ok(fd, 0);
	assert_int_equal(json_integer_value(json_object_get(r, "result")), -8);
	json_decref(r);
	assert_int_equal(th_status_get(fd, "requests_served"), served + 2);
	/* A deadline of 0 is refused before anything runs, as on workers. */
	th_send(fd, "{\"id\":11,\"endpoint\":\"twice\",\"data\":1,"
	    "\"deadline_ms\":0}");
	th_expect_reply(fd, 11, "timeout");
	close(fd);
	witch_server_free(srv);
}

/*
 * 1000 pipelined inline requests in one write (each handler reads its data
 * from the reactor's read buffer), then one sent a byte at a time (its
 * data then lives in the partial-frame buffer).
 */
static void
test_inline_pipelined_and_split(void **state)
{
	witch_server_t *srv = start(true);
	int fd = th_connect(witch_server_port(srv));
	static unsigned char buf[1000 * 64];
	unsigned char one[128];
	char js[64];
	static bool seen[1000];
	size_t off = 0, i;
	int n;
	json_t *r;

	for (i = 0; i < 1000; i++) {
		n = snprintf(js, sizeof(js), "{\"id\":%zu,\"endpoint\":"
		    "\"twice\",\"data\":%zu}", i, i);
		th_frame(buf + off, js, (uint32_t)n);
		off += 4 + (size_t)n;
	}
	assert_int_equal(th_send_raw(fd, buf, off), 0);
	for (i = 0; i < 1000; i++) {
		r = th_recv_ok(fd, 0);
		n = (int)th_id(r);
		assert_true(n >= 0 && n < 1000 && !seen[n]);
		seen[n] = true;
		assert_int_equal(json_integer_value(json_object_get(r,
		    "result")), 2 * n);
		json_decref(r);
	}
	n = snprintf(js, sizeof(js), "{\"id\":5000,\"endpoint\":\"echo\","
	    "\"data\":\"split\"}");
	th_frame(one, js, (uint32_t)n);
	for (i = 0; i < 4 + (size_t)n; i++) {
		assert_int_equal(th_send_raw(fd, one + i, 1), 0);
		if (i % 8 == 0)
			th_sleep_ms(1);
	}
	r = th_recv_ok(fd, 0);
	assert_int_equal(th_id(r), 5000);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    r, "result"), "echo")), "split");
	json_decref(r);
	close(fd);
	witch_server_free(srv);
}

/* While stop drains the pool, inline endpoints answer shutting_down. */
static void *
stopper(void *arg)
{
	witch_server_stop(arg, 5000);
	return NULL;
}

static void
test_inline_while_draining(void **state)
{
	witch_server_t *srv = start(true);
	int fd = th_connect(witch_server_port(srv));
	pthread_t t;
	json_t *r;
	const char *code;
	uint64_t t0;

	block_worker(fd, 1);
	assert_int_equal(pthread_create(&t, NULL, stopper, srv), 0);
	/* Until the reactor sees the new phase, twice may still run. */
	t0 = th_now_ms();
	for (;;) {
		th_send(fd, "{\"id\":2,\"endpoint\":\"twice\",\"data\":1}");
		r = th_recv_ok(fd, 2000);
		assert_int_equal(th_id(r), 2);
		code = th_err_code(r);
		if (code != NULL) {
			assert_string_equal(code, "shutting_down");
			json_decref(r);
			break;
		}
		json_decref(r);
		assert_true(th_now_ms() - t0 < 5000);
		th_sleep_ms(5);
	}
	/* The running request is still owed its answer. */
	th_gate_open();
	th_expect_reply(fd, 1, NULL);
	pthread_join(t, NULL);
	close(fd);
	witch_server_free(srv);
}

/*
 * A client that asks an inline endpoint for big replies and never reads
 * is dropped at the hard output limit while its input is being decoded,
 * not after every request in the read has run (which would hold the
 * reactor and memory for all of them), and other clients stay served.
 */
static void
test_inline_output_hard_limit(void **state)
{
	witch_server_t *srv = start_limits(true, 256 << 10, 1 << 20);
	int a = th_connect(witch_server_port(srv));
	int b = th_connect(witch_server_port(srv));
	static unsigned char buf[2000 * 32];
	const char *js = "{\"endpoint\":\"big\"}";
	size_t off = 0, i, n = strlen(js);
	int calls0 = atomic_load(&big_calls);

	for (i = 0; i < 2000; i++) {
		th_frame(buf + off, js, (uint32_t)n);
		off += 4 + n;
	}
	assert_int_equal(th_send_raw(a, buf, off), 0);
	assert_int_equal(th_wait_eof(a, 5000), 1);
	/* 1 MiB / 64 KiB: dropped after about 17 replies, not 2000. */
	assert_true(atomic_load(&big_calls) - calls0 <= 64);
	assert_true(th_status_await(b, "output_limit_drops", 1, 5000));
	th_ping_ok(b);
	close(a);
	close(b);
	witch_server_free(srv);
}

/*
 * Under the hard limit nothing is lost: 100 replies of 64 KiB (6.4 MB,
 * past the 1 MiB soft limit, so reading pauses) all arrive once the
 * client reads, and reading resumes afterwards.
 */
static void
test_inline_output_soft_limit(void **state)
{
	witch_server_t *srv = start(true);
	int fd = th_connect(witch_server_port(srv));
	static bool seen[100];
	json_t *r;
	size_t i;
	int id;

	for (i = 0; i < 100; i++)
		th_sendf(fd, "{\"id\":%zu,\"endpoint\":\"big\"}", i);
	th_sleep_ms(200);
	for (i = 0; i < 100; i++) {
		r = th_recv_ok(fd, 0);
		id = (int)th_id(r);
		assert_true(id >= 0 && id < 100 && !seen[id]);
		seen[id] = true;
		assert_int_equal(json_string_length(json_object_get(r,
		    "result")), BIG_REPLY);
		json_decref(r);
	}
	th_ping_ok(fd);
	assert_int_equal(th_status_get(fd, "output_limit_drops"), 0);
	close(fd);
	witch_server_free(srv);
}

/*
 * The close sequence with inline replies: 500 pipelined echoes then a
 * zero-length frame: 500 replies, then the invalid_frame error, then EOF.
 */
static void
test_inline_then_bad_frame(void **state)
{
	witch_server_t *srv = start(true);
	int fd = th_connect(witch_server_port(srv));
	static unsigned char buf[500 * 64 + 4];
	char js[64];
	size_t off = 0, i;
	json_t *r;
	int n;

	for (i = 0; i < 500; i++) {
		n = snprintf(js, sizeof(js), "{\"id\":%zu,\"endpoint\":"
		    "\"echo\",\"data\":%zu}", i, i);
		th_frame(buf + off, js, (uint32_t)n);
		off += 4 + (size_t)n;
	}
	memset(buf + off, 0, 4);
	off += 4;
	assert_int_equal(th_send_raw(fd, buf, off), 0);
	for (i = 0; i < 500; i++) {
		r = th_recv_ok(fd, 0);
		assert_null(th_err_code(r));
		json_decref(r);
	}
	r = th_recv_ok(fd, 0);
	assert_string_equal(th_err_code(r), "invalid_frame");
	json_decref(r);
	assert_int_equal(th_wait_eof(fd, 5000), 1);
	close(fd);
	witch_server_free(srv);
}

/* A result given as JSON text, on a worker and inline. */
static void
test_reply_raw(void **state)
{
	static const char *const eps[] = { "raw", "raw_inline" };
	witch_server_t *srv = start(true);
	int fd = th_connect(witch_server_port(srv));
	json_t *r, *res;
	size_t i;

	for (i = 0; i < 2; i++) {
		th_sendf(fd, "{\"id\":1,\"endpoint\":\"%s\",\"data\":"
		    "\"{\\\"a\\\": [1, \\\"\\u00e9\\\"], \\\"b\\\": null}\"}",
		    eps[i]);
		r = th_recv_ok(fd, 5000);
		assert_null(th_err_code(r));
		res = json_object_get(r, "result");
		assert_true(json_is_object(res));
		assert_int_equal(json_integer_value(json_array_get(
		    json_object_get(res, "a"), 0)), 1);
		assert_string_equal(json_string_value(json_array_get(
		    json_object_get(res, "a"), 1)), "\xc3\xa9");
		assert_true(json_is_null(json_object_get(res, "b")));
		json_decref(r);
		/* Not one JSON value: parse_error, and the stream is intact. */
		th_sendf(fd, "{\"id\":2,\"endpoint\":\"%s\",\"data\":"
		    "\"{\\\"a\\\": [1,\"}", eps[i]);
		th_expect_reply(fd, 2, "parse_error");
		th_sendf(fd, "{\"id\":3,\"endpoint\":\"%s\",\"data\":"
		    "\"1 2\"}", eps[i]);
		th_expect_reply(fd, 3, "parse_error");
		th_sendf(fd, "{\"id\":4,\"endpoint\":\"%s\",\"data\":"
		    "\"\"}", eps[i]);
		th_expect_reply(fd, 4, "parse_error");
		th_ping_ok(fd);
	}
	assert_int_equal(atomic_load(&raw_bad), 0);
	close(fd);
	witch_server_free(srv);
}

/*
 * The replies of one reactor turn leave together, at the turn's end:
 * BURST connections whose requests all arrive while the reactor is held
 * in an inline handler (until the test has sent them all) are read in
 * the next turn, and that turn's first write comes after every one of
 * them was answered (a client waiting on all of them then wakes once, not
 * once per connection).  A reactor that wrote each connection's replies
 * right after reading it would make its first write after one answer.
 * Big replies (over the 4 KiB block of a connection's output buffer) are
 * the exception: written as each is built, so that a turn's worth of big
 * buffers is never alive at once.
 */
#define BURST 8
static atomic_int *flush_calls;			/* the endpoint's counter */
static atomic_int flush_calls0, flush_first;	/* -1: no flush yet */

/* Flush hook: how many calls had run at the first flush after the
 * burst's first call. */
static void
burst_hook(void)
{
	int n = atomic_load(flush_calls) - atomic_load(&flush_calls0);
	int none = -1;

	if (n > 0)
		atomic_compare_exchange_strong(&flush_first, &none, n);
}

/*
 * Send BURST requests to "twice" (big: to "big") on BURST connections
 * while the reactor is held; check every reply; return the calls made
 * by the turn's first write.
 */
static int
burst_first_flush(bool big)
{
	witch_server_t *srv = start(true);
	unsigned port = witch_server_port(srv);
	int s = th_connect(port), k[BURST], i;
	json_t *r, *res;

	for (i = 0; i < BURST; i++) {
		k[i] = th_connect(port);
		th_ping_ok(k[i]);		/* accepted, and quiet */
	}
	atomic_store(&held, 0);
	atomic_store(&release, 0);
	th_send(s, "{\"id\":1,\"endpoint\":\"hold\"}");
	for (i = 0; i < 500 && atomic_load(&held) == 0; i++)
		th_sleep_ms(10);
	assert_int_equal(atomic_load(&held), 1);
	/* The reactor is inside the handler: these wait in the sockets. */
	flush_calls = big ? &big_calls : &inline_calls;
	atomic_store(&flush_calls0, atomic_load(flush_calls));
	atomic_store(&flush_first, -1);
	atomic_store(&witch__flush_hook, burst_hook);
	for (i = 0; i < BURST; i++)
		assert_int_equal(th_sendf(k[i], "{\"id\":%d,\"endpoint\":"
		    "\"%s\",\"data\":%d}", 10 + i, big ? "big" : "twice", i),
		    0);
	/* Sent on loopback: in the server's sockets when send returns. */
	atomic_store(&release, 1);
	th_expect_reply(s, 1, NULL);
	for (i = 0; i < BURST; i++) {
		r = th_recv_ok(k[i], 5000);
		assert_int_equal(th_id(r), 10 + i);
		res = json_object_get(r, "result");
		if (big)
			assert_int_equal(json_string_length(res), BIG_REPLY);
		else
			assert_int_equal(json_integer_value(res), 2 * i);
		json_decref(r);
	}
	atomic_store(&witch__flush_hook, NULL);
	for (i = 0; i < BURST; i++)
		close(k[i]);
	close(s);
	witch_server_free(srv);
	return atomic_load(&flush_first);
}

static void
test_inline_turn_burst(void **state)
{
	assert_int_equal(burst_first_flush(false), BURST);
}

static void
test_inline_turn_big_replies(void **state)
{
	assert_int_equal(burst_first_flush(true), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inline_while_worker_busy),
		cmocka_unit_test(test_builtins_on_workers),
		cmocka_unit_test(test_inline_errors_oneway),
		cmocka_unit_test(test_inline_pipelined_and_split),
		cmocka_unit_test(test_inline_while_draining),
		cmocka_unit_test(test_inline_output_hard_limit),
		cmocka_unit_test(test_inline_output_soft_limit),
		cmocka_unit_test(test_inline_then_bad_frame),
		cmocka_unit_test(test_reply_raw),
		cmocka_unit_test(test_inline_turn_burst),
		cmocka_unit_test(test_inline_turn_big_replies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
