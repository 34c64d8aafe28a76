/*
 * test_limits: the server's limits over real sockets: max_clients, the
 * handshake and idle timeouts, the bounded worker queue (overloaded),
 * request deadlines, cancellation, per-client output limits (slow
 * readers), clients that reset with replies in flight, and running out of
 * descriptors (EMFILE) while clients wait in the listen backlog.
 *
 * Handlers block on a gate the test controls, so "queued", "running" and
 * "done" are states the test awaits, never guesses with a sleep.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "integ/harness.h"


/* "remaining": the handler's view of its deadline. */
static int
h_remaining(witch_request_t *req, void *ud)
{
	return witch_request_reply(req, json_integer(
	    witch_request_remaining_ms(req)));
}

/* "big": replies a string of data (integer) bytes. */
static int
h_big(witch_request_t *req, void *ud)
{
	json_int_t n = json_integer_value(witch_request_data(req));
	char *s;
	json_t *r;

	if (n <= 0 || n > (4 << 20))
		return witch_request_error(req, WITCH_EINVAL, "bad size");
	if ((s = malloc((size_t)n)) == NULL)
		return WITCH_ENOMEM;
	memset(s, 'x', (size_t)n);
	r = json_stringn_nocheck(s, (size_t)n);
	free(s);
	return witch_request_reply(req, r);
}

static void
reg_all(witch_server_t *srv, void *arg)
{
	assert_int_equal(witch_server_register_endpoint(srv, "block",
	    th_h_block, NULL), 0);
	assert_int_equal(witch_server_register_endpoint(srv, "count",
	    th_h_count, NULL), 0);
	assert_int_equal(witch_server_register_endpoint(srv, "remaining",
	    h_remaining, NULL), 0);
	assert_int_equal(witch_server_register_endpoint(srv, "big", h_big,
	    NULL), 0);
}

/* ---- wire helpers ------------------------------------------------------ */

/* Expect the closing event with this reason, then EOF. */
static void
expect_closing(int fd, const char *reason, int timeout_ms)
{
	json_t *r = th_recv_ok(fd, timeout_ms);

	assert_string_equal(json_string_value(json_object_get(r, "event")),
	    "closing");
	assert_null(json_object_get(r, "id"));
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(r, "data"), "reason")), reason);
	json_decref(r);
	assert_int_equal(th_wait_eof(fd, 5000), 1);
}

/* Poll status until key >= min (true) or timeout_ms passed (false). */
static bool
status_await_min(int fd, const char *key, json_int_t min,
    unsigned timeout_ms)
{
	uint64_t end = th_now_ms() + timeout_ms;

	for (;;) {
		if (th_status_get(fd, key) >= min)
			return true;
		if (th_now_ms() >= end)
			return false;
		th_sleep_ms(20);
	}
}

/* A client socket with small kernel buffers (set before connect). */
static int
connect_small(unsigned port, int bufsz)
{
	struct sockaddr_in sin;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz,
	    sizeof(bufsz)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz,
	    sizeof(bufsz)), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	return fd;
}

/* Close with an RST (SO_LINGER {1, 0}). */
static void
close_rst(int fd)
{
	struct linger l = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

static witch_server_t *
start(witch_server_config_t *cfg)
{
	witch_server_t *srv;

	th_gate_reset();
	srv = th_server_start(cfg, reg_all, NULL);
	witch_server_config_free(cfg);
	return srv;
}

/* ---- max_clients ------------------------------------------------------- */

static void
test_max_clients(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	json_t *r;
	int a, b, c, d;
	unsigned port;

	assert_int_equal(witch_server_config_set_max_clients(cfg, 2), 0);
	srv = start(cfg);
	port = witch_server_port(srv);
	a = th_connect(port);
	th_ping_ok(a);
	b = th_connect(port);
	th_ping_ok(b);

	/* The third is told server_full (id null), then EOF. */
	c = th_connect(port);
	r = th_recv_ok(c, 0);
	assert_string_equal(th_err_code(r), "server_full");
	assert_true(json_is_null(json_object_get(r, "id")));
	json_decref(r);
	assert_int_equal(th_wait_eof(c, 5000), 1);
	close(c);

	/* The first two are unaffected. */
	th_ping_ok(a);
	th_ping_ok(b);
	assert_int_equal(th_status_get(b, "clients"), 2);
	assert_int_equal(th_status_get(b, "connections_rejected"), 1);

	/* One leaves: once the server counted it out, a new client fits. */
	close(a);
	assert_true(th_status_await(b, "clients", 1, 5000));
	d = th_connect(port);
	th_ping_ok(d);
	assert_int_equal(th_status_get(d, "clients"), 2);
	assert_int_equal(th_status_get(d, "connections_rejected"), 1);
	close(b);
	close(d);
	witch_server_free(srv);
}

/* ---- handshake and idle timeouts --------------------------------------- */

static void
test_handshake_timeout(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	unsigned char half[4 + 3];
	int done, silent, partial;
	unsigned port;
	uint64_t t0;

	assert_int_equal(witch_server_config_set_handshake_timeout(cfg, 300),
	    0);
	srv = start(cfg);
	port = witch_server_port(srv);

	/* Connected first: completes a frame, so it is never timed out. */
	done = th_connect(port);
	th_ping_ok(done);

	t0 = th_now_ms();
	silent = th_connect(port);
	partial = th_connect(port);
	/* Half a frame: a header announcing 10 bytes, then only 3. */
	half[0] = half[1] = half[2] = 0;
	half[3] = 10;
	memcpy(half + 4, "{\"i", 3);
	assert_int_equal(th_send_raw(partial, half, sizeof(half)), 0);

	expect_closing(silent, "handshake_timeout", 5000);
	expect_closing(partial, "handshake_timeout", 5000);
	/* Generous bounds: not before the timeout, well within 5 s. */
	assert_true(th_now_ms() - t0 >= 250);
	assert_true(th_now_ms() - t0 < 5000);

	/*
	 * "done" is older than both: the sweep that closed them looked at
	 * it too.  Its next frame is the reply, not a closing event.
	 */
	th_ping_ok(done);
	close(silent);
	close(partial);
	close(done);
	witch_server_free(srv);
}

static void
test_idle_timeout(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	uint64_t t0, t_end;
	int idle, busy, i;
	unsigned port;

	assert_int_equal(witch_server_config_set_idle_timeout(cfg, 300), 0);
	srv = start(cfg);
	port = witch_server_port(srv);

	idle = th_connect(port);
	th_ping_ok(idle);
	t0 = th_now_ms();
	expect_closing(idle, "idle_timeout", 5000);
	assert_true(th_now_ms() - t0 >= 150);
	close(idle);

	/* A client that pings every 50 ms for 1 s stays open. */
	busy = th_connect(port);
	t_end = th_now_ms() + 1000;
	for (i = 0; i < 100 && th_now_ms() < t_end; i++) {
		th_ping_ok(busy);	/* a closing event here fails the test */
		th_sleep_ms(50);
	}
	assert_true(i >= 5);
	/* ...and is closed once it falls silent. */
	expect_closing(busy, "idle_timeout", 5000);
	close(busy);
	witch_server_free(srv);
}

/* ---- overloaded --------------------------------------------------------- */

static void
test_overloaded(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	char *buf = NULL, *p;
	size_t len = 0;
	FILE *f;
	json_t *r;
	bool seen[11] = { false };
	int fd, i, n_seen = 0, n_ok = 0;
	json_int_t id;

	assert_int_equal(witch_server_config_set_workers(cfg, 1), 0);
	assert_int_equal(witch_server_config_set_queue_depth(cfg, 2), 0);
	srv = start(cfg);
	fd = th_connect(witch_server_port(srv));

	/* Request 1 occupies the only worker. */
	assert_int_equal(th_send(fd, "{\"id\":1,\"endpoint\":\"block\"}"), 0);
	assert_true(th_gate_await(TH_GATE_STARTED, 1, 5000));

	/* Nine more, pipelined in one write: 2 queue, 7 are refused. */
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	for (i = 2; i <= 10; i++) {
		unsigned char h[4];
		char js[64];
		int n = snprintf(js, sizeof(js),
		    "{\"id\":%d,\"endpoint\":\"block\"}", i);

		h[0] = h[1] = h[2] = 0;
		h[3] = (unsigned char)n;
		fwrite(h, 1, 4, f);
		fwrite(js, 1, (size_t)n, f);
	}
	fclose(f);
	assert_int_equal(th_send_raw(fd, buf, len), 0);
	free(buf);

	/* The seven refusals arrive while the gate is still closed. */
	for (i = 0; i < 7; i++) {
		r = th_recv_ok(fd, 0);
		assert_string_equal(th_err_code(r), "overloaded");
		id = th_id(r);
		assert_true(id >= 4 && id <= 10);
		assert_false(seen[id]);
		seen[id] = true;
		json_decref(r);
	}
	assert_int_equal(th_gate_get(TH_GATE_STARTED), 1);

	th_gate_open();
	for (i = 0; i < 3; i++) {
		r = th_recv_ok(fd, 0);
		p = (char *)th_err_code(r);
		assert_null(p);
		id = th_id(r);
		/* FIFO: the running one and the two queued first. */
		assert_true(id >= 1 && id <= 3);
		assert_false(seen[id]);
		seen[id] = true;
		n_ok++;
		json_decref(r);
	}
	for (i = 1; i <= 10; i++)
		n_seen += seen[i];
	assert_int_equal(n_ok, 3);
	assert_int_equal(n_seen, 10);	/* each id answered once */
	assert_int_equal(th_gate_get(TH_GATE_STARTED), 3);
	assert_int_equal(th_status_get(fd, "overloaded"), 7);
	assert_int_equal(th_gate_get(TH_GATE_STARTED), 3);
	close(fd);
	witch_server_free(srv);
}

/* ---- deadlines ----------------------------------------------------------- */

static void
test_deadline(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	json_t *r;
	json_int_t left;
	int fd;

	assert_int_equal(witch_server_config_set_workers(cfg, 1), 0);
	srv = start(cfg);
	fd = th_connect(witch_server_port(srv));

	assert_int_equal(th_send(fd, "{\"id\":1,\"endpoint\":\"block\"}"), 0);
	assert_true(th_gate_await(TH_GATE_STARTED, 1, 5000));
	assert_int_equal(th_send(fd, "{\"id\":2,\"endpoint\":\"block\","
	    "\"deadline_ms\":100}"), 0);
	/* Answered timeout while the worker is still blocked: the sweep. */
	th_expect_reply(fd, 2, "timeout");
	assert_int_equal(th_gate_get(TH_GATE_STARTED), 1);

	th_gate_open();
	th_expect_reply(fd, 1, "");
	/* A later request runs after anything that was queued: 2 never ran. */
	th_ping_ok(fd);
	assert_int_equal(th_gate_get(TH_GATE_STARTED), 1);

	/* A running handler sees its remaining budget. */
	assert_int_equal(th_send(fd, "{\"id\":3,\"endpoint\":\"remaining\","
	    "\"deadline_ms\":5000}"), 0);
	r = th_recv_ok(fd, 0);
	assert_int_equal(th_id(r), 3);
	left = json_integer_value(json_object_get(r, "result"));
	assert_true(left > 0 && left <= 5000);
	json_decref(r);
	assert_int_equal(th_send(fd, "{\"id\":4,\"endpoint\":\"remaining\"}"),
	    0);
	r = th_recv_ok(fd, 0);
	assert_int_equal(th_id(r), 4);
	assert_int_equal(json_integer_value(json_object_get(r, "result")),
	    -1);
	json_decref(r);
	close(fd);
	witch_server_free(srv);
}

/* ---- cancel -------------------------------------------------------------- */

/* Receive the cancel reply (id cid) and check matched/remembered. */
static void
check_cancel_reply(json_t *r, json_int_t matched, json_int_t remembered)
{
	json_t *res = json_object_get(r, "result");

	assert_non_null(res);
	assert_int_equal(json_integer_value(json_object_get(res, "matched")),
	    matched);
	assert_int_equal(json_integer_value(json_object_get(res,
	    "remembered")), remembered);
}

static void
test_cancel_queued(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	json_t *r;
	bool got_cancel = false, got_2 = false;
	int fd, i;

	assert_int_equal(witch_server_config_set_workers(cfg, 1), 0);
	srv = start(cfg);
	fd = th_connect(witch_server_port(srv));

	assert_int_equal(th_send(fd, "{\"id\":1,\"endpoint\":\"block\"}"), 0);
	assert_true(th_gate_await(TH_GATE_STARTED, 1, 5000));
	/* 2 is queued behind 1; the cancel reaches it in the queue. */
	assert_int_equal(th_send(fd, "{\"id\":2,\"endpoint\":\"block\"}"), 0);
	assert_int_equal(th_send(fd, "{\"id\":100,\"endpoint\":\"cancel\","
	    "\"data\":{\"ids\":[2]}}"), 0);
	for (i = 0; i < 2; i++) {
		r = th_recv_ok(fd, 0);
		if (th_id(r) == 100) {
			check_cancel_reply(r, 1, 0);
			got_cancel = true;
		} else {
			assert_int_equal(th_id(r), 2);
			assert_string_equal(th_err_code(r), "cancelled");
			got_2 = true;
		}
		json_decref(r);
	}
	assert_true(got_cancel && got_2);
	assert_int_equal(th_gate_get(TH_GATE_STARTED), 1);
	th_gate_open();
	th_expect_reply(fd, 1, "");
	th_ping_ok(fd);
	assert_int_equal(th_gate_get(TH_GATE_STARTED), 1);	/* 2 never ran */
	close(fd);
	witch_server_free(srv);
}

static void
test_cancel_running(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	json_t *r;
	bool got_cancel = false, got_5 = false;
	int fd, i;

	srv = start(cfg);
	fd = th_connect(witch_server_port(srv));
	assert_int_equal(th_send(fd, "{\"id\":5,\"endpoint\":\"block\"}"), 0);
	assert_true(th_gate_await(TH_GATE_STARTED, 1, 5000));
	assert_int_equal(th_send(fd, "{\"id\":101,\"endpoint\":\"cancel\","
	    "\"data\":{\"ids\":[5]}}"), 0);
	for (i = 0; i < 2; i++) {
		r = th_recv_ok(fd, 0);
		if (th_id(r) == 101) {
			check_cancel_reply(r, 1, 0);
			got_cancel = true;
		} else {
			/* The handler saw the flag and said so. */
			assert_int_equal(th_id(r), 5);
			assert_null(th_err_code(r));
			assert_true(json_is_true(json_object_get(
			    json_object_get(r, "result"), "cancelled")));
			got_5 = true;
		}
		json_decref(r);
	}
	assert_true(got_cancel && got_5);
	assert_int_equal(th_gate_get(TH_GATE_SAW_CANCEL), 1);
	assert_int_equal(th_gate_get(TH_GATE_NOCANCEL), 0);
	close(fd);
	witch_server_free(srv);
}

static void
test_cancel_early_and_bad(void **state)
{
	witch_server_t *srv;
	json_t *r;
	int fd;

	srv = start(th_config());
	fd = th_connect(witch_server_port(srv));

	/* The cancel comes first and is remembered. */
	assert_int_equal(th_send(fd, "{\"id\":102,\"endpoint\":\"cancel\","
	    "\"data\":{\"ids\":[77]}}"), 0);
	r = th_recv_ok(fd, 0);
	assert_int_equal(th_id(r), 102);
	check_cancel_reply(r, 0, 1);
	json_decref(r);
	assert_int_equal(th_send(fd, "{\"id\":77,\"endpoint\":\"count\"}"), 0);
	th_expect_reply(fd, 77, "cancelled");
	/* Only once: the same id again runs. */
	assert_int_equal(th_send(fd, "{\"id\":77,\"endpoint\":\"count\"}"), 0);
	th_expect_reply(fd, 77, "");
	assert_int_equal(th_gate_get(TH_GATE_COUNTED), 1);

	/* Bad cancel data: invalid_request, and the connection stays. */
	assert_int_equal(th_send(fd, "{\"id\":103,\"endpoint\":\"cancel\","
	    "\"data\":{\"ids\":\"x\"}}"), 0);
	th_expect_reply(fd, 103, "invalid_request");
	assert_int_equal(th_send(fd, "{\"id\":104,\"endpoint\":\"cancel\"}"),
	    0);
	th_expect_reply(fd, 104, "invalid_request");
	assert_int_equal(th_send(fd, "{\"id\":105,\"endpoint\":\"cancel\","
	    "\"data\":{\"ids\":[1.5]}}"), 0);
	th_expect_reply(fd, 105, "invalid_request");
	assert_int_equal(th_send(fd, "{\"id\":106,\"endpoint\":\"cancel\","
	    "\"data\":[1]}"), 0);
	th_expect_reply(fd, 106, "invalid_request");
	th_ping_ok(fd);
	close(fd);
	witch_server_free(srv);
}

/* ---- slow readers and the output limits ---------------------------------- */

#define ECHO_PAYLOAD (64 << 10)
#define SLOW_MAX_FRAMES 2000

/* A frame {"id":1,"endpoint":"echo","data":"xxx..."} of about 64 KiB. */
static unsigned char *
echo_frame(size_t *lenp)
{
	static const char pre[] = "{\"id\":1,\"endpoint\":\"echo\",\"data\":\"";
	size_t n = sizeof(pre) - 1 + ECHO_PAYLOAD + 2;
	unsigned char *f = malloc(n + 4);
	char *p;

	assert_non_null(f);
	p = (char *)f + 4;
	memcpy(p, pre, sizeof(pre) - 1);
	memset(p + sizeof(pre) - 1, 'x', ECHO_PAYLOAD);
	memcpy(p + sizeof(pre) - 1 + ECHO_PAYLOAD, "\"}", 2);
	f[0] = (unsigned char)(n >> 24);
	f[1] = (unsigned char)(n >> 16);
	f[2] = (unsigned char)(n >> 8);
	f[3] = (unsigned char)n;
	*lenp = n + 4;
	return f;
}

/* Counts frames in a byte stream without keeping them. */
struct framecount {
	unsigned char	 hdr[4];
	size_t		 have;		/* header bytes */
	size_t		 skip;		/* payload bytes left */
	unsigned	 frames;
};

static void
framecount_feed(struct framecount *fc, const unsigned char *p, size_t n)
{
	size_t k;

	while (n > 0) {
		if (fc->skip > 0) {
			k = n < fc->skip ? n : fc->skip;
			fc->skip -= k;
			p += k;
			n -= k;
			if (fc->skip == 0)
				fc->frames++;
			continue;
		}
		fc->hdr[fc->have++] = *p++;
		n--;
		if (fc->have == 4) {
			fc->skip = (size_t)fc->hdr[0] << 24 |
			    (size_t)fc->hdr[1] << 16 |
			    (size_t)fc->hdr[2] << 8 | fc->hdr[3];
			fc->have = 0;
			assert_true(fc->skip > 0);
		}
	}
}

/*
 * Soft limit: a client that pipelines 64 KiB echoes and never reads
 * makes the server stop reading it (its sends stall for good), other
 * clients are served meanwhile, nobody is dropped, and once the client
 * reads, the server resumes and every request is answered.  The hard
 * limit is set high here so that only the soft limit is exercised.
 */
static void
test_slow_reader_soft(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	struct framecount fc = { .frames = 0 };
	struct pollfd pfd;
	unsigned char *frame, *rbuf;
	size_t flen, off = 0;
	unsigned sent = 0;
	int slow, other, i, pr;
	bool stalled = false;
	uint64_t t, end;
	ssize_t w;

	assert_int_equal(witch_server_config_set_output_limits(cfg,
	    256 << 10, 64 << 20), 0);
	srv = start(cfg);
	other = th_connect(witch_server_port(srv));
	th_ping_ok(other);
	slow = connect_small(witch_server_port(srv), 16 << 10);
	frame = echo_frame(&flen);

	/* Write until the socket stays unwritable for a whole second. */
	while (sent < SLOW_MAX_FRAMES) {
		w = send(slow, frame + off, flen - off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			off += (size_t)w;
			if (off == flen) {
				off = 0;
				sent++;
			}
			continue;
		}
		assert_true(w < 0 && (errno == EAGAIN ||
		    errno == EWOULDBLOCK || errno == EINTR));
		pfd.fd = slow;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, 1000) == 0) {
			stalled = true;
			break;
		}
	}
	/* The server stopped reading long before the client ran out. */
	assert_true(stalled);
	assert_true(sent < SLOW_MAX_FRAMES);

	/* Others are served while it is stalled. */
	for (i = 0; i < 100; i++) {
		t = th_now_ms();
		th_ping_ok(other);
		assert_true(th_now_ms() - t < 2000);
	}
	assert_int_equal(th_status_get(other, "output_limit_drops"), 0);
	assert_int_equal(th_status_get(other, "clients"), 2);

	/* Now read: the server resumes and answers every request sent. */
	if (off > 0)
		sent++;		/* the partial frame is finished below */
	rbuf = malloc(256 << 10);
	assert_non_null(rbuf);
	end = th_now_ms() + 60000;
	while (fc.frames < sent && th_now_ms() < end) {
		pfd.fd = slow;
		pfd.events = POLLIN | (off > 0 ? POLLOUT : 0);
		pr = poll(&pfd, 1, 1000);
		if (pr <= 0)
			continue;
		if ((pfd.revents & POLLOUT) && off > 0) {
			w = send(slow, frame + off, flen - off,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w > 0 && (off += (size_t)w) == flen)
				off = 0;
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			w = recv(slow, rbuf, 256 << 10, MSG_DONTWAIT);
			assert_true(w > 0 || (w < 0 && errno == EAGAIN));
			if (w > 0)
				framecount_feed(&fc, rbuf, (size_t)w);
		}
	}
	assert_int_equal(off, 0);
	assert_int_equal(fc.frames, sent);
	assert_int_equal(th_status_get(other, "output_limit_drops"), 0);
	free(rbuf);
	free(frame);
	close(slow);
	close(other);
	witch_server_free(srv);
}

/*
 * Hard limit: 400 small requests, each answered with 64 KiB, pipelined
 * in one write by a client that never reads.  All are read at once (the
 * read is 16 KiB), so the replies pile up far beyond what the kernel
 * buffers take, and past the 1 MiB hard limit the client is dropped.
 */
static void
test_slow_reader_hard(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int slow, other, i;

	assert_int_equal(witch_server_config_set_output_limits(cfg,
	    256 << 10, 1 << 20), 0);
	srv = start(cfg);
	other = th_connect(witch_server_port(srv));
	slow = connect_small(witch_server_port(srv), 16 << 10);
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	for (i = 0; i < 400; i++) {
		unsigned char h[4];
		char js[80];
		int n = snprintf(js, sizeof(js),
		    "{\"id\":%d,\"endpoint\":\"big\",\"data\":65536}", i);

		h[0] = h[1] = h[2] = 0;
		h[3] = (unsigned char)n;
		fwrite(h, 1, 4, f);
		fwrite(js, 1, (size_t)n, f);
	}
	fclose(f);
	assert_int_equal(th_send_raw(slow, buf, len), 0);
	free(buf);

	assert_true(th_status_await(other, "output_limit_drops", 1, 20000));
	assert_true(th_status_await(other, "clients", 1, 5000));
	/* The client sees the end of the stream (after what was sent). */
	assert_int_equal(th_wait_eof(slow, 10000), 1);
	th_ping_ok(other);
	assert_int_equal(th_status_get(other, "output_limit_drops"), 1);
	close(slow);
	close(other);
	witch_server_free(srv);
}

/* ---- clients that reset with replies in flight --------------------------- */

static void
test_reset_in_flight(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	unsigned port;
	int fd, i, k;

	assert_int_equal(witch_server_config_set_workers(cfg, 4), 0);
	srv = start(cfg);
	port = witch_server_port(srv);

	/* First: a client whose handler is known to be running. */
	fd = th_connect(port);
	assert_int_equal(th_send(fd, "{\"id\":1,\"endpoint\":\"block\"}"), 0);
	assert_true(th_gate_await(TH_GATE_STARTED, 1, 5000));
	close_rst(fd);
	assert_true(th_gate_await(TH_GATE_SAW_CANCEL, 1, 5000));

	/* Then 49 more, each with three requests in flight. */
	for (i = 1; i < 50; i++) {
		fd = th_connect(port);
		for (k = 0; k < 3; k++)
			assert_int_equal(th_sendf(fd, "{\"id\":%d,"
			    "\"endpoint\":\"block\"}", k), 0);
		close_rst(fd);
	}

	/* The server recovers: only the new client is left, nothing runs. */
	fd = th_connect(port);
	th_ping_ok(fd);
	assert_true(th_status_await(fd, "clients", 1, 10000));
	assert_true(th_status_await(fd, "queue_depth", 0, 10000));
	/* The status job itself is the only one running. */
	assert_true(th_status_await(fd, "running", 1, 10000));
	/* Every handler that ran was told its client was gone. */
	assert_int_equal(th_gate_get(TH_GATE_NOCANCEL), 0);
	assert_int_equal(th_gate_get(TH_GATE_SAW_CANCEL), th_gate_get(TH_GATE_STARTED));
	close(fd);
	witch_server_free(srv);
}

/* ---- EMFILE ------------------------------------------------------------ */

#define EMFILE_CLIENTS 20

/* Highest open descriptor of this process. */
static int
max_open_fd(void)
{
	int fd, max = 2;

	for (fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			max = fd;
	return max;
}

/*
 * Child: a server with only a dozen descriptors to spare.  Reports its
 * port on wfd, exits 0 when told on rfd (or 1 after 60 s).
 */
static void
emfile_child(int rfd, int wfd)
{
	struct rlimit rl;
	witch_server_config_t *cfg;
	witch_server_t *srv;
	witch_error_t err;
	struct pollfd pfd = { .fd = rfd, .events = POLLIN };
	unsigned port;
	char c;
	int fd;

	/* Inherited descriptors (test runners leave some) would use up room. */
	for (fd = 3; fd < 4096; fd++)
		if (fd != rfd && fd != wfd)
			close(fd);
	rl.rlim_cur = rl.rlim_max = (rlim_t)max_open_fd() + 1 + 12;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		_exit(3);
	if (witch_server_config_new(&cfg) != 0 ||
	    witch_server_config_set_bind(cfg, "127.0.0.1") != 0 ||
	    witch_server_config_set_port(cfg, 0) != 0 ||
	    witch_server_config_set_workers(cfg, 2) != 0 ||
	    witch_server_new(&srv, cfg) != 0)
		_exit(4);
	witch_server_config_free(cfg);
	if (witch_server_start(srv, &err) != 0)
		_exit(5);
	port = witch_server_port(srv);
	if (write(wfd, &port, sizeof(port)) != sizeof(port))
		_exit(6);
	if (poll(&pfd, 1, 60000) != 1 || read(rfd, &c, 1) != 1)
		_exit(7);
	witch_server_stop(srv, 1000);
	witch_server_free(srv);
	_exit(0);
}

static void
test_emfile(void **state)
{
	int to_child[2], from_child[2], fds[EMFILE_CLIENTS + 1];
	struct pollfd pfd;
	unsigned port;
	json_int_t accepted;
	pid_t pid, wp;
	int i, st = 0;
	uint64_t end;

	assert_int_equal(pipe(to_child), 0);
	assert_int_equal(pipe(from_child), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(to_child[1]);
		close(from_child[0]);
		emfile_child(to_child[0], from_child[1]);
	}
	close(to_child[0]);
	close(from_child[1]);
	pfd.fd = from_child[0];
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 10000), 1);
	assert_int_equal(read(from_child[0], &port, sizeof(port)),
	    sizeof(port));

	/* fds[0] is served; the others queue up beyond the fd limit. */
	fds[0] = th_connect(port);
	th_ping_ok(fds[0]);
	for (i = 1; i <= EMFILE_CLIENTS; i++) {
		fds[i] = th_connect(port);
		assert_int_equal(th_sendf(fds[i], "{\"id\":%d,"
		    "\"endpoint\":\"ping\"}", i), 0);
	}
	assert_true(status_await_min(fds[0], "emfile_pauses", 1, 10000));
	accepted = th_status_get(fds[0], "clients");
	/* Some are still in the backlog: at most a dozen fds were free. */
	assert_true(accepted < EMFILE_CLIENTS + 1);

	/*
	 * Closing served clients frees descriptors; the ones waiting in
	 * the backlog are then accepted and answered, in order, without
	 * any new connection arriving.
	 */
	for (i = 1; i <= EMFILE_CLIENTS; i++) {
		th_expect_reply(fds[i], i, "");
		close(fds[i]);
	}
	th_ping_ok(fds[0]);
	assert_true(th_status_await(fds[0], "clients", 1, 10000));
	close(fds[0]);

	assert_int_equal(write(to_child[1], "q", 1), 1);
	end = th_now_ms() + 20000;
	while ((wp = waitpid(pid, &st, WNOHANG)) == 0 && th_now_ms() < end)
		th_sleep_ms(10);
	if (wp == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		fail_msg("EMFILE child did not exit");
	}
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	close(to_child[1]);
	close(from_child[0]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		/* First, while this process has no other threads. */
		cmocka_unit_test(test_emfile),
		cmocka_unit_test(test_max_clients),
		cmocka_unit_test(test_handshake_timeout),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_overloaded),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_cancel_queued),
		cmocka_unit_test(test_cancel_running),
		cmocka_unit_test(test_cancel_early_and_bad),
		cmocka_unit_test(test_slow_reader_soft),
		cmocka_unit_test(test_slow_reader_hard),
		cmocka_unit_test(test_reset_in_flight),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
