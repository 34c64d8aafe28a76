/*
 * test_allocfail: a failed allocation never puts a corrupt frame on the
 * wire, over real sockets.
 *
 * For each reply path (a worker's reply, a worker-side error reply, a
 * reactor-side built-in's reply, the reactor's own error replies, an
 * inline endpoint's reply, the monitor feed and the final frame of a
 * killed connection) the test makes the 1st, 2nd, ... allocation of one
 * request/reply cycle fail (witch__alloc_fail_after), until a cycle ends
 * with the countdown unspent.  The client parses every byte strictly by
 * its length prefix: each frame must be a whole JSON object with an id
 * and a result or error, or an event; the stream may end (a closed
 * connection) but never inside a frame; a reply may be an overloaded or
 * no_memory error, but never silently missing (the client would wait
 * forever: a read that hangs fails the test).  After each cycle the
 * failure is disabled and a ping must be answered in frame (or the
 * connection be closed): the stream is still in step.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "core/alloc.h"
#include "integ/harness.h"

#define SWEEP_MAX	400	/* more allocations than any cycle makes */
#define PING_ID		4242

/* Pool handler: a reply well over 40 bytes (an omsg header's size). */
static int
h_wecho(witch_request_t *req, void *ud)
{
	return witch_request_reply(req, json_pack("{s:s, s:O?}", "text",
	    "a reply long enough that losing its first bytes shows",
	    "data", witch_request_data(req)));
}

static void
reg(witch_server_t *srv, void *arg)
{
	assert_int_equal(witch_server_register_endpoint(srv, "wecho",
	    h_wecho, NULL), 0);
	assert_int_equal(witch_server_register_endpoint(srv, "gate",
	    th_h_block, NULL), 0);
}

static witch_server_t *
start(void)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *s;

	witch_server_config_set_workers(cfg, 1);
	s = th_server_start(cfg, reg, NULL);
	witch_server_config_free(cfg);
	return s;
}

enum rd {
	RD_FRAME,	/* one well-formed frame in *out */
	RD_EOF,		/* the stream ended between frames */
	RD_BAD		/* bytes out of frame: the failure this test hunts */
};

/* Read exactly n bytes; 0, 1 at EOF before any byte, -1 otherwise. */
static int
read_n(int fd, unsigned char *p, size_t n)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		if (poll(&pfd, 1, TH_TIMEOUT_MS) <= 0)
			fail_msg("no bytes for %d ms: a hung stream",
			    TH_TIMEOUT_MS);
		r = recv(fd, p + got, n - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return got == 0 ? 1 : -1;
		got += (size_t)r;
	}
	return 0;
}

/* One frame, strictly: a sane length, then a JSON object of the protocol. */
static enum rd
read_frame(int fd, json_t **out)
{
	unsigned char h[4], *b;
	uint32_t n;
	json_t *j, *e;
	int rc;

	*out = NULL;
	if ((rc = read_n(fd, h, 4)) != 0)
		return rc == 1 ? RD_EOF : RD_BAD;
	n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
	    (uint32_t)h[2] << 8 | h[3];
	if (n == 0 || n > (1u << 20))
		return RD_BAD;
	if ((b = malloc(n)) == NULL)
		fail_msg("test out of memory");
	rc = read_n(fd, b, n);
	j = rc == 0 ? json_loadb((const char *)b, n, 0, NULL) : NULL;
	free(b);
	if (j == NULL || !json_is_object(j))
		goto bad;
	if ((e = json_object_get(j, "event")) != NULL) {
		if (!json_is_string(e) || json_object_get(j, "data") == NULL)
			goto bad;
	} else if (json_object_get(j, "id") == NULL ||
	    (json_object_get(j, "result") == NULL) ==
	    ((e = json_object_get(j, "error")) == NULL) ||
	    (e != NULL && !json_is_string(json_object_get(e, "code"))))
		goto bad;
	*out = j;
	return RD_FRAME;
bad:
	json_decref(j);
	return RD_BAD;
}

/*
 * Read fd up to the reply with id until_id (or EOF): every frame must be
 * well-formed, every error reply one of the codes of an allocation
 * failure or of the request itself (want_err, may be NULL).  Returns 1
 * when until_id was seen, 0 at EOF.
 */
static int
drain(int fd, json_int_t until_id, const char *want_err, size_t n,
    const char *path)
{
	const char *code;
	json_t *f;

	for (;;) {
		switch (read_frame(fd, &f)) {
		case RD_EOF:
			return 0;
		case RD_BAD:
			fail_msg("%s, allocation %zu failed: bytes out of "
			    "frame", path, n);
			return 0;
		case RD_FRAME:
			break;
		}
		if ((code = th_err_code(f)) != NULL &&
		    strcmp(code, "overloaded") != 0 &&
		    strcmp(code, "no_memory") != 0 &&
		    (want_err == NULL || strcmp(code, want_err) != 0))
			fail_msg("%s, allocation %zu failed: error %s", path,
			    n, code);
		if (json_object_get(f, "event") == NULL &&
		    th_id(f) == until_id) {
			json_decref(f);
			return 1;
		}
		json_decref(f);
	}
}

/* After a cycle: is the stream in step?  A ping answered, or closed. */
static void
resync(int fd, size_t n, const char *path)
{
	if (th_sendf(fd, "{\"id\":%d,\"endpoint\":\"ping\"}", PING_ID) == 0)
		drain(fd, PING_ID, NULL, n, path);
}

/* Disarm; true when the n-th allocation really failed during the cycle. */
static bool
disarm(void)
{
	return witch__alloc_fail_after(0) == 0;
}

/*
 * Sweep one path: cycle(srv, n) runs one request/reply cycle with the
 * n-th allocation armed to fail, reads its outcome and says whether the
 * failure happened (false: n is past the cycle's last allocation).
 */
static void
sweep(const char *path, bool (*cycle)(witch_server_t *, size_t))
{
	witch_server_t *srv = start();
	size_t n, fired = 0;

	for (n = 1; n < SWEEP_MAX; n++) {
		if (!cycle(srv, n))
			break;
		fired++;
	}
	assert_true(n < SWEEP_MAX);
	print_message("%s: %zu allocations failed one by one, all in frame\n",
	    path, fired);
	assert_true(fired > 0);
	witch_server_free(srv);
}

/* Arm the n-th allocation, send the frame, read to its reply. */
static bool
one_request(witch_server_t *srv, size_t n, const char *json, const char *err,
    const char *path)
{
	int fd = th_connect(witch_server_port(srv));
	bool fired;

	th_ping_ok(fd);			/* the connection is set up */
	witch__alloc_fail_after((long)n);
	if (th_send(fd, json) == 0)
		drain(fd, 1, err, n, path);
	fired = disarm();
	resync(fd, n, path);
	close(fd);
	return fired;
}

static bool
cy_worker(witch_server_t *srv, size_t n)
{
	return one_request(srv, n, "{\"id\":1,\"endpoint\":\"wecho\","
	    "\"data\":[1,2,3]}", NULL, "worker reply");
}

static bool
cy_builtin(witch_server_t *srv, size_t n)
{
	return one_request(srv, n, "{\"id\":1,\"endpoint\":\"hello\","
	    "\"data\":{\"name\":\"allocfail\"}}", NULL, "hello reply");
}

static bool
cy_reactor_error(witch_server_t *srv, size_t n)
{
	return one_request(srv, n, "{\"id\":1,\"endpoint\":\"nowhere\"}",
	    "unknown_endpoint", "reactor error reply");
}

static bool
cy_inline(witch_server_t *srv, size_t n)
{
	return one_request(srv, n, "{\"id\":1,\"endpoint\":\"echo\","
	    "\"data\":\"an inline reply long enough to show a loss\"}", NULL,
	    "inline reply");
}

/*
 * A queued job cancelled: its error reply is built off the worker path
 * (witch__conn_send_error), the cancel's own reply by the reactor.
 */
static bool
cy_cancelled(witch_server_t *srv, size_t n)
{
	int fd = th_connect(witch_server_port(srv));
	bool fired;

	th_gate_reset();
	th_ping_ok(fd);
	assert_int_equal(th_send(fd, "{\"id\":7,\"endpoint\":\"gate\"}"), 0);
	assert_true(th_gate_await(TH_GATE_STARTED, 1, TH_TIMEOUT_MS));
	assert_int_equal(th_send(fd, "{\"id\":2,\"endpoint\":\"wecho\"}"),
	    0);
	witch__alloc_fail_after((long)n);
	if (th_send(fd, "{\"id\":1,\"endpoint\":\"cancel\","
	    "\"data\":{\"ids\":[2]}}") == 0)
		drain(fd, 1, "cancelled", n, "cancelled job");
	fired = disarm();
	resync(fd, n, "cancelled job");
	th_gate_open();
	close(fd);
	assert_true(th_gate_await(TH_GATE_DONE, 1, TH_TIMEOUT_MS));
	return fired;
}

/* The monitor feed: a monitor sees another client's request. */
static bool
cy_monitor(witch_server_t *srv, size_t n)
{
	int mon = th_connect(witch_server_port(srv));
	int fd = th_connect(witch_server_port(srv));
	bool fired;

	assert_int_equal(th_send(mon, "{\"id\":1,\"endpoint\":\"monitor\"}"),
	    0);
	th_expect_reply(mon, 1, NULL);
	th_ping_ok(fd);
	witch__alloc_fail_after((long)n);
	if (th_send(fd, "{\"id\":1,\"endpoint\":\"ping\","
	    "\"data\":\"a monitor line long enough to show a loss\"}") == 0)
		drain(fd, 1, NULL, n, "monitor feed (client)");
	fired = disarm();
	resync(fd, n, "monitor feed (client)");
	resync(mon, n, "monitor feed");	/* the lines, in frame */
	close(fd);
	close(mon);
	return fired;
}

/* The final frame: a killed client's closing event, then EOF. */
static bool
cy_final(witch_server_t *srv, size_t n)
{
	int victim = th_connect(witch_server_port(srv));
	int killer = th_connect(witch_server_port(srv));
	json_int_t id;
	json_t *r;
	bool fired;

	assert_int_equal(th_send(victim, "{\"id\":1,\"endpoint\":\"hello\"}"),
	    0);
	r = th_recv_ok(victim, 0);
	id = json_integer_value(json_object_get(json_object_get(r, "result"),
	    "client_id"));
	json_decref(r);
	th_ping_ok(killer);
	witch__alloc_fail_after((long)n);
	if (th_sendf(killer, "{\"id\":1,\"endpoint\":\"kill_client\","
	    "\"data\":{\"id\":%lld}}", (long long)id) == 0)
		drain(killer, 1, NULL, n, "kill_client reply");
	fired = disarm();
	/* Killed already, or (no memory for the first) killed now. */
	if (th_sendf(killer, "{\"id\":2,\"endpoint\":\"kill_client\","
	    "\"data\":{\"id\":%lld}}", (long long)id) == 0)
		drain(killer, 2, "invalid_argument", n, "kill_client reply");
	/* The victim: frames in step up to EOF, nothing else. */
	assert_int_equal(drain(victim, -1, NULL, n, "final frame"), 0);
	resync(killer, n, "kill_client reply");
	close(victim);
	close(killer);
	return fired;
}

static void
test_worker(void **state)
{
	sweep("worker reply", cy_worker);
}

static void
test_builtin(void **state)
{
	sweep("hello reply", cy_builtin);
}

static void
test_reactor_error(void **state)
{
	sweep("reactor error reply", cy_reactor_error);
}

static void
test_inline(void **state)
{
	sweep("inline reply", cy_inline);
}

static void
test_cancelled(void **state)
{
	sweep("cancelled job", cy_cancelled);
}

static void
test_monitor(void **state)
{
	sweep("monitor feed", cy_monitor);
}

static void
test_final(void **state)
{
	sweep("final frame", cy_final);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_worker),
		cmocka_unit_test(test_builtin),
		cmocka_unit_test(test_reactor_error),
		cmocka_unit_test(test_inline),
		cmocka_unit_test(test_cancelled),
		cmocka_unit_test(test_monitor),
		cmocka_unit_test(test_final),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
