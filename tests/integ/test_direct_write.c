/*
 * test_direct_write: workers writing replies to the socket themselves
 * (reactor/conn.c, "Direct writes"), through real sockets.
 *
 * An in-process server with 2 workers and the built-ins on the pool, so
 * that echo is answered by a worker; "big" replies with a string of n
 * bytes of a known pattern.
 *
 * - one_in_flight: 300 echoes one at a time (the reactor is idle while
 *   each runs, the case direct writes are for): every reply right, and
 *   the server counts direct writes.
 * - short_write: a client with a small receive buffer asks for a 4 MiB
 *   reply and does not read, so the worker's write is short and the
 *   reactor must write the rest; then it pipelines echoes, a reply the
 *   reactor builds itself (unknown endpoint) and another big reply.  Read
 *   strictly by length prefix, the stream must hold exactly those frames,
 *   whole and intact: the rest of the first frame came before anything
 *   else.  The server counts a short direct write.
 * - reset_while_writing: clients ask for a big reply and reset the
 *   connection at once, many times, while other clients are served; the
 *   server never writes to a closed or reused descriptor (the worker or
 *   the reactor closes it, never both, never neither): no descriptor is
 *   leaked or closed twice (the process's count of open descriptors is
 *   back where it was), and the server still answers.
 * - drop_while_writing: the same, made certain with a test hook that
 *   holds a worker inside its direct write while the client resets and
 *   the reactor drops it; a client connecting meanwhile never gets a
 *   byte of the dropped client's reply, and the descriptor is closed
 *   once, by the worker.
 *
 * Whether a worker writes directly also depends on scheduling (the
 * reactor asleep, the worker serving one connection since it was idle):
 * one_in_flight and reset_while_writing leave that to chance, as a
 * server does; short_write and the tests with hooks set
 * witch__direct_always so that the write they need surely happens (they
 * failed now and then under TSan on a loaded machine when the worker
 * had served the control connection's ping without going idle first).
 *
 * Run plain, under ASan+UBSan and under TSan (CI).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integ/harness.h"
#include "reactor/reactor.h"	/* witch__direct_write_hook */

#define BIG		(4u << 20)	/* bytes of a big reply's string */
#define NRESET		60

/* ---- the server side --------------------------------------------------- */

/* The byte at offset i of a big reply's string. */
static char
pattern(size_t i)
{
	return (char)('a' + i % 26);
}

/* data: a length (at most BIG): a string of that many pattern bytes. */
static int
h_big(witch_request_t *req, void *ud)
{
	json_int_t n = json_integer_value(witch_request_data(req));
	char *s;
	size_t i;
	int rc;

	(void)ud;
	if (n < 0 || n > (json_int_t)BIG)
		n = BIG;
	if ((s = malloc((size_t)n + 1)) == NULL)
		return witch_request_error(req, WITCH_ENOMEM, NULL);
	for (i = 0; i < (size_t)n; i++)
		s[i] = pattern(i);
	s[n] = '\0';
	rc = witch_request_reply(req, json_string(s));
	free(s);
	return rc;
}

static void
reg(witch_server_t *srv, void *arg)
{
	(void)arg;
	assert_int_equal(witch_server_register_endpoint(srv, "big", h_big,
	    NULL), 0);
}

static witch_server_t *
start(void)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;

	assert_int_equal(witch_server_config_set_workers(cfg, 2), 0);
	assert_int_equal(witch_server_config_set_inline_builtins(cfg, false),
	    0);
	assert_int_equal(witch_server_config_set_max_frame(cfg, 8u << 20), 0);
	srv = th_server_start(cfg, reg, NULL);
	witch_server_config_free(cfg);
	return srv;
}

/* ---- client helpers ---------------------------------------------------- */

/* Read exactly n bytes within timeout_ms.  0, or -1. */
static int
read_n(int fd, void *buf, size_t n, int timeout_ms)
{
	unsigned char *p = buf;
	uint64_t end = th_now_ms() + (uint64_t)timeout_ms;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t r;

	while (n > 0) {
		if (th_now_ms() >= end ||
		    poll(&pfd, 1, (int)(end - th_now_ms())) <= 0)
			return -1;
		if ((r = read(fd, p, n)) <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * The next frame, read strictly by its length prefix and parsed: NULL
 * (failing the test) if it is cut short or is not JSON.
 */
static json_t *
next_frame(int fd)
{
	unsigned char hdr[4];
	uint32_t len;
	char *payload;
	json_t *j;

	assert_int_equal(read_n(fd, hdr, 4, 20000), 0);
	len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	    (uint32_t)hdr[2] << 8 | hdr[3];
	assert_true(len > 0 && len <= (8u << 20));
	assert_non_null(payload = malloc(len));
	assert_int_equal(read_n(fd, payload, len, 20000), 0);
	j = json_loadb(payload, len, 0, NULL);
	free(payload);
	assert_non_null(j);
	return j;
}

/* reply is a big result of n pattern bytes. */
static void
check_big(const json_t *reply, size_t n)
{
	const json_t *r = json_object_get(reply, "result");
	const char *s = json_string_value(r);
	size_t i;

	assert_non_null(s);
	assert_int_equal(json_string_length(r), n);
	for (i = 0; i < n; i++)
		if (s[i] != pattern(i))
			fail_msg("big reply corrupt at byte %zu", i);
}

static int
dial_small(unsigned port, int rcvbuf)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	/* Before connect, so the window is small from the start. */
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
	    sizeof(rcvbuf)), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	return fd;
}

/* Write a frame of the printf-style payload at out; its size. */
static size_t
frame_json(unsigned char *out, const char *fmt, ...)
{
	char payload[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(payload, sizeof(payload), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(payload));
	th_frame(out, payload, (uint32_t)n);
	return 4 + (size_t)n;
}

/* Descriptors open in this process now. */
static unsigned
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* ---- tests ------------------------------------------------------------- */

static void
test_one_in_flight(void **state)
{
	witch_server_t *srv = start();
	int fd = th_connect(witch_server_port(srv)), ctl;
	json_t *j;
	char want[32];
	int i;

	(void)state;
	for (i = 1; i <= 300; i++) {
		assert_int_equal(th_sendf(fd, "{\"id\":%d,\"endpoint\":\"echo\","
		    "\"data\":\"m%d\"}", i, i), 0);
		j = next_frame(fd);
		assert_int_equal(th_id(j), i);
		snprintf(want, sizeof(want), "m%d", i);
		assert_string_equal(json_string_value(json_object_get(
		    json_object_get(j, "result"), "echo")), want);
		json_decref(j);
	}
	ctl = th_connect(witch_server_port(srv));
	/* Status is answered by a worker too: it may count itself. */
	assert_true(th_status_get(ctl, "direct_writes") >= 1);
	close(ctl);
	close(fd);
	assert_int_equal(witch_server_stop(srv, 2000), 0);
	witch_server_free(srv);
}

static void
test_short_write(void **state)
{
	witch_server_t *srv = start();
	unsigned port = witch_server_port(srv);
	int fd = dial_small(port, 4096), ctl = th_connect(port);
	bool seen[6] = { false }, seen2[31];
	unsigned char batch[4096];
	size_t len;
	json_t *j;
	int i, id, round;

	(void)state;
	/* The worker writes itself (surely: witch__direct_always), and the
	 * socket takes only part of 4 MiB. */
	atomic_store(&witch__direct_always, true);
	assert_int_equal(th_sendf(fd, "{\"id\":1,\"endpoint\":\"big\","
	    "\"data\":%u}", BIG), 0);
	assert_true(th_status_await(ctl, "direct_short_writes", 1, 10000));
	atomic_store(&witch__direct_always, false);
	/* Behind the rest: worker replies, a reactor-built error, more. */
	assert_int_equal(th_sendf(fd, "{\"id\":2,\"endpoint\":\"echo\","
	    "\"data\":\"two\"}"), 0);
	assert_int_equal(th_sendf(fd, "{\"id\":3,\"endpoint\":\"nope\"}"), 0);
	assert_int_equal(th_sendf(fd, "{\"id\":4,\"endpoint\":\"big\","
	    "\"data\":100000}"), 0);
	assert_int_equal(th_sendf(fd, "{\"id\":5,\"endpoint\":\"echo\","
	    "\"data\":\"five\"}"), 0);
	th_sleep_ms(100);
	/* The first frame on the stream is the whole 4 MiB reply. */
	j = next_frame(fd);
	assert_int_equal(th_id(j), 1);
	check_big(j, BIG);
	json_decref(j);
	seen[1] = true;
	for (i = 0; i < 4; i++) {
		j = next_frame(fd);
		id = (int)th_id(j);
		assert_true(id >= 2 && id <= 5);
		assert_false(seen[id]);
		seen[id] = true;
		if (id == 3)
			assert_string_equal(th_err_code(j), "unknown_endpoint");
		else if (id == 4)
			check_big(j, 100000);
		else
			assert_string_equal(json_string_value(json_object_get(
			    json_object_get(j, "result"), "echo")),
			    id == 2 ? "two" : "five");
		json_decref(j);
	}
	/*
	 * In one write: a big reply and echoes behind it, on 2 workers.
	 * The echoes' replies go out while the big one is being built,
	 * directly or queued; the big one's write is short, and the
	 * replies queued meanwhile must wait for its rest.
	 */
	for (round = 0; round < 4; round++) {
		len = 0;
		len += frame_json(batch + len, "{\"id\":10,\"endpoint\":"
		    "\"big\",\"data\":%u}", BIG);
		for (i = 11; i < 31; i++)
			len += frame_json(batch + len, "{\"id\":%d,"
			    "\"endpoint\":\"echo\",\"data\":%d}", i, i);
		assert_int_equal(th_send_raw(fd, batch, len), 0);
		th_sleep_ms(50);
		memset(seen2, 0, sizeof(seen2));
		for (i = 10; i < 31; i++) {
			j = next_frame(fd);
			id = (int)th_id(j);
			assert_true(id >= 10 && id < 31);
			assert_false(seen2[id]);
			seen2[id] = true;
			if (id == 10)
				check_big(j, BIG);
			else
				assert_int_equal(json_integer_value(
				    json_object_get(json_object_get(j,
				    "result"), "echo")), id);
			json_decref(j);
		}
	}
	/* Nothing else was sent. */
	assert_int_equal(th_sendf(fd, "{\"id\":6,\"endpoint\":\"echo\","
	    "\"data\":\"six\"}"), 0);
	j = next_frame(fd);
	assert_int_equal(th_id(j), 6);
	json_decref(j);
	close(fd);
	close(ctl);
	assert_int_equal(witch_server_stop(srv, 2000), 0);
	witch_server_free(srv);
}

static void
test_reset_while_writing(void **state)
{
	witch_server_t *srv = start();
	unsigned port = witch_server_port(srv), before;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int fd, other, ctl, i;

	(void)state;
	ctl = th_connect(port);
	other = th_connect(port);
	th_ping_ok(ctl);
	before = open_fds();
	for (i = 0; i < NRESET; i++) {
		fd = dial_small(port, 4096);
		assert_int_equal(th_sendf(fd, "{\"id\":1,\"endpoint\":\"big\","
		    "\"data\":%u}", i % 2 ? BIG : 300000u), 0);
		/* Reset at a moment that moves through the worker's write. */
		th_sleep_ms((unsigned)(i % 4));
		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg,
		    sizeof(lg)), 0);
		close(fd);
		/* Another client is served meanwhile. */
		assert_int_equal(th_sendf(other, "{\"id\":%d,\"endpoint\":"
		    "\"echo\",\"data\":1}", 100 + i), 0);
		th_expect_reply(other, 100 + i, NULL);
	}
	/* Every reset client gone, and its descriptor closed exactly once. */
	assert_true(th_status_await(ctl, "clients", 2, 10000));
	for (i = 0; i < 100 && open_fds() != before; i++)
		th_sleep_ms(20);
	assert_int_equal(open_fds(), before);
	th_ping_ok(other);
	close(other);
	close(ctl);
	assert_int_equal(witch_server_stop(srv, 2000), 0);
	witch_server_free(srv);
}

/* The hook: the first armed direct write waits until released. */
static atomic_int hook_state;	/* 0 off, 1 armed, 2 inside, 3 released */

static void
hook(void)
{
	int armed = 1;
	unsigned i;

	if (!atomic_compare_exchange_strong(&hook_state, &armed, 2))
		return;
	for (i = 0; i < 1000 && atomic_load(&hook_state) == 2; i++)
		th_sleep_ms(10);
}

static void
test_drop_while_writing(void **state)
{
	witch_server_t *srv = start();
	unsigned port = witch_server_port(srv), before, i;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int x, y, ctl;
	json_t *j;

	(void)state;
	ctl = th_connect(port);
	th_ping_ok(ctl);
	before = open_fds();
	atomic_store(&hook_state, 1);
	atomic_store(&witch__direct_write_hook, hook);
	atomic_store(&witch__direct_always, true);
	/* X's reply is held in a worker that owns X's socket... */
	x = dial_small(port, 4096);
	assert_int_equal(th_sendf(x, "{\"id\":1,\"endpoint\":\"big\","
	    "\"data\":300000}"), 0);
	for (i = 0; i < 1000 && atomic_load(&hook_state) != 2; i++)
		th_sleep_ms(10);
	assert_int_equal(atomic_load(&hook_state), 2);
	/* ...when X resets and the server drops it. */
	assert_int_equal(setsockopt(x, SOL_SOCKET, SO_LINGER, &lg,
	    sizeof(lg)), 0);
	close(x);
	assert_true(th_status_await(ctl, "clients", 1, 10000));
	/* A new client meanwhile; it must never get X's bytes. */
	y = th_connect(port);
	th_ping_ok(y);
	atomic_store(&hook_state, 3);	/* the worker goes on */
	th_sleep_ms(100);
	assert_int_equal(th_sendf(y, "{\"id\":7,\"endpoint\":\"echo\","
	    "\"data\":7}"), 0);
	j = next_frame(y);
	assert_int_equal(th_id(j), 7);
	json_decref(j);
	th_ping_ok(y);
	atomic_store(&witch__direct_write_hook, NULL);
	atomic_store(&witch__direct_always, false);
	close(y);
	/* X's descriptor was closed once, by the worker. */
	assert_true(th_status_await(ctl, "clients", 1, 10000));
	for (i = 0; i < 100 && open_fds() != before; i++)
		th_sleep_ms(20);
	assert_int_equal(open_fds(), before);
	close(ctl);
	assert_int_equal(witch_server_stop(srv, 2000), 0);
	witch_server_free(srv);
}

/* The reactor's hook: the first armed flush lets the held worker go on
 * and waits until it has finished its short write. */
static atomic_int fhook_state;	/* 0 off, 1 armed, 2 done */

static void
fhook(void)
{
	int armed = 1;

	if (!atomic_compare_exchange_strong(&fhook_state, &armed, 2))
		return;
	atomic_store(&hook_state, 3);	/* the worker writes, short */
	th_sleep_ms(300);		/* ...and hands its rest over */
}

/*
 * The reactor takes X's queue (a reply it built itself) while a worker
 * is inside a direct write to X; the worker's write is short and it hands
 * over its rest before the reactor claims the socket.  The rest must
 * still go out before the reactor's frame: the stream holds the whole
 * big reply, then the error, each intact.
 */
static void
test_rest_before_taken_queue(void **state)
{
	witch_server_t *srv = start();
	unsigned port = witch_server_port(srv), i;
	int x, ctl;
	json_t *j;

	(void)state;
	ctl = th_connect(port);
	th_ping_ok(ctl);
	atomic_store(&hook_state, 1);
	atomic_store(&witch__direct_write_hook, hook);
	atomic_store(&witch__direct_always, true);
	x = dial_small(port, 4096);
	assert_int_equal(th_sendf(x, "{\"id\":1,\"endpoint\":\"big\","
	    "\"data\":%u}", BIG), 0);
	for (i = 0; i < 1000 && atomic_load(&hook_state) != 2; i++)
		th_sleep_ms(10);
	assert_int_equal(atomic_load(&hook_state), 2);
	/* A reply the reactor builds itself, flushed while the worker
	 * still holds the socket. */
	atomic_store(&fhook_state, 1);
	atomic_store(&witch__flush_hook, fhook);
	assert_int_equal(th_sendf(x, "{\"id\":2,\"endpoint\":\"nope\"}"),
	    0);
	for (i = 0; i < 1000 && atomic_load(&fhook_state) != 2; i++)
		th_sleep_ms(10);
	assert_int_equal(atomic_load(&fhook_state), 2);
	th_sleep_ms(400);
	atomic_store(&witch__flush_hook, NULL);
	atomic_store(&witch__direct_write_hook, NULL);
	atomic_store(&witch__direct_always, false);
	j = next_frame(x);
	assert_int_equal(th_id(j), 1);
	check_big(j, BIG);
	json_decref(j);
	j = next_frame(x);
	assert_int_equal(th_id(j), 2);
	assert_string_equal(th_err_code(j), "unknown_endpoint");
	json_decref(j);
	assert_true(th_status_get(ctl, "direct_short_writes") >= 1);
	close(x);
	close(ctl);
	assert_int_equal(witch_server_stop(srv, 2000), 0);
	witch_server_free(srv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_in_flight),
		cmocka_unit_test(test_short_write),
		cmocka_unit_test(test_reset_while_writing),
		cmocka_unit_test(test_drop_while_writing),
		cmocka_unit_test(test_rest_before_taken_queue),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
