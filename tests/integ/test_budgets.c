/*
 * tests/integ/test_budgets.c: the memory budgets over real sockets
 * (doc/internals/reactor.md, "Budgets"; witchd.conf(5), "MEMORY BUDGETS").
 *
 * Each bad input of the security issue: 1,000 half-open connections that
 * never finish a frame (a normal client is still served; they are closed
 * at the handshake timeout), a client trickling a large frame (closed at
 * the frame timeout with a closing event), many clients each holding a
 * nearly complete large frame (the frame budget closes the largest
 * holders, counted), nesting depth, the decode budget.  The figures
 * (latency, time to close, RSS) are printed for the record; timing is
 * never asserted tightly.
 *
 * The per-address connection cap and a keyless server's cap on a remote
 * client's first frame need a client that is not on loopback (loopback
 * is exempt from both): tests/daemon/test_budgets_netns.sh runs this
 * program in a server namespace it creates (its path in
 * WITCH_NETNS_SERVER), with WITCH_NETNS_CLIENT the path of a client
 * namespace joined to it by a veth pair and WITCH_NETNS_ADDR the server's
 * address on that link; then only those
 * two tests run, the server bound to 0.0.0.0 inside the namespace and the
 * remote clients' sockets made in the client namespace.  Never in the
 * host's own namespace: there the program runs every other test.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <witch/witch.h>

#include "harness.h"

#define HALF_OPEN	1000

/* Resident set of this process (server and test clients), in KiB. */
static long
rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f;

	if ((f = fopen("/proc/self/status", "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/*
 * Whether this run is the namespace run: WITCH_NETNS_SERVER,
 * WITCH_NETNS_CLIENT and WITCH_NETNS_ADDR set, and this process in the
 * namespace WITCH_NETNS_SERVER names (one the script made), so that a
 * bind to 0.0.0.0 stays inside it.  Exits on a mismatch.
 */
static bool
netns_run(void)
{
	const char *srv = getenv("WITCH_NETNS_SERVER");
	struct stat self, ns;

	if (srv == NULL || getenv("WITCH_NETNS_CLIENT") == NULL ||
	    getenv("WITCH_NETNS_ADDR") == NULL)
		return false;
	if (stat("/proc/self/ns/net", &self) != 0 || stat(srv, &ns) != 0 ||
	    self.st_ino != ns.st_ino || self.st_dev != ns.st_dev) {
		fprintf(stderr, "test_budgets: not in the network namespace "
		    "%s\n", srv);
		exit(1);
	}
	return true;
}

/*
 * A TCP socket made in the client namespace (this thread enters it for
 * the socket() call only; the socket keeps it), connected to the
 * server's address on the link, port port.  -1 on failure.
 */
static int
remote_connect(unsigned port)
{
	struct sockaddr_in sin;
	int fd, here, there, on = 1;

	here = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	there = open(getenv("WITCH_NETNS_CLIENT"), O_RDONLY | O_CLOEXEC);
	assert_true(here >= 0 && there >= 0);
	assert_int_equal(setns(there, CLONE_NEWNET), 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(setns(here, CLONE_NEWNET), 0);
	close(here);
	close(there);
	if (fd == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	if (inet_pton(AF_INET, getenv("WITCH_NETNS_ADDR"),
	    &sin.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	return fd;
}

/* Start a server with cfg on bind (port 0), endpoint "gate" registered. */
static witch_server_t *
start(witch_server_config_t *cfg, const char *bind)
{
	witch_server_t *srv;
	witch_error_t err;

	assert_int_equal(witch_server_config_set_bind(cfg, bind), 0);
	assert_int_equal(witch_server_config_set_port(cfg, 0), 0);
	assert_int_equal(witch_server_config_set_workers(cfg, 1), 0);
	assert_int_equal(witch_server_new(&srv, cfg), 0);
	assert_int_equal(witch_server_register_endpoint(srv, "gate",
	    th_h_block, NULL), 0);
	if (witch_server_start(srv, &err) != 0)
		fail_msg("start: %s", err.text);
	witch_server_config_free(cfg);
	return srv;
}

/* The frame header of a payload of n bytes. */
static void
header(unsigned char h[4], uint32_t n)
{
	h[0] = (unsigned char)(n >> 24);
	h[1] = (unsigned char)(n >> 16);
	h[2] = (unsigned char)(n >> 8);
	h[3] = (unsigned char)n;
}

/* The next frame on fd is a closing event with this reason. */
static void
expect_closing(int fd, const char *reason, int timeout_ms)
{
	json_t *r = th_recv(fd, timeout_ms);
	const char *ev, *got;

	if (r == NULL)
		fail_msg("no closing event (%s)", reason);
	ev = json_string_value(json_object_get(r, "event"));
	got = json_string_value(json_object_get(json_object_get(r, "data"),
	    "reason"));
	if (ev == NULL || strcmp(ev, "closing") != 0 || got == NULL ||
	    strcmp(got, reason) != 0)
		fail_msg("expected closing event %s", reason);
	json_decref(r);
}

/* ---- half-open connections (slowloris before the first frame) -------- */

static void
test_half_open(void **state)
{
	witch_server_config_t *cfg = th_config();
	struct rlimit rl;
	witch_server_t *srv;
	uint64_t t0, dt;
	long rss0, rss1;
	int fds[HALF_OPEN], fd, i, closed = 0;
	json_t *r;

	(void)state;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 2 *
	    HALF_OPEN + 64) {
		rl.rlim_cur = rl.rlim_max < 2 * HALF_OPEN + 64 ?
		    rl.rlim_max : 2 * HALF_OPEN + 64;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		if (getrlimit(RLIMIT_NOFILE, &rl) != 0 ||
		    rl.rlim_cur < 2 * HALF_OPEN + 64) {
			print_message("skip: ulimit -n is %lu, 2 x %d "
			    "descriptors needed\n",
			    (unsigned long)rl.rlim_cur, HALF_OPEN);
			skip();
		}
	}
	assert_int_equal(witch_server_config_set_handshake_timeout(cfg, 2000),
	    0);
	srv = start(cfg, "127.0.0.1");
	rss0 = rss_kib();
	for (i = 0; i < HALF_OPEN; i++) {
		fds[i] = th_connect(witch_server_port(srv));
		/* Two bytes of a header announcing 64 KiB: never finished. */
		assert_int_equal(th_send_raw(fds[i], "\0\1", 2), 0);
	}
	assert_true(th_status_await(fd = th_connect(witch_server_port(srv)),
	    "clients", HALF_OPEN + 1, 5000));
	rss1 = rss_kib();
	t0 = th_now_ms();
	th_ping_ok(fd);
	dt = th_now_ms() - t0;
	print_message("%d half-open connections: a normal client's ping "
	    "answered in %llu ms; RSS %ld -> %ld KiB (server and clients "
	    "in one process)\n", HALF_OPEN, (unsigned long long)dt, rss0,
	    rss1);
	/* Each stalled one gets the closing event, then EOF. */
	t0 = th_now_ms();
	for (i = 0; i < HALF_OPEN; i++) {
		r = th_recv(fds[i], 5000);
		if (r != NULL && strcmp(json_string_value(json_object_get(
		    json_object_get(r, "data"), "reason")),
		    "handshake_timeout") == 0)
			closed++;
		json_decref(r);
		close(fds[i]);
	}
	print_message("%d of %d closed with handshake_timeout (2 s): all "
	    "read within %llu ms of the ping\n", closed, HALF_OPEN,
	    (unsigned long long)(th_now_ms() - t0));
	assert_int_equal(closed, HALF_OPEN);
	/* The normal client sent a frame: it stays. */
	th_ping_ok(fd);
	close(fd);
	witch_server_free(srv);
}

/* ---- a frame trickled in (slowloris after the first frame) ----------- */

static void
test_trickle_frame_timeout(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	unsigned char h[4], chunk[100];
	uint64_t t0;
	size_t sent = 0;
	int fd, ctl;

	(void)state;
	assert_int_equal(witch_server_config_set_frame_timeout(cfg, 1000), 0);
	srv = start(cfg, "127.0.0.1");
	fd = th_connect(witch_server_port(srv));
	th_ping_ok(fd);		/* past the handshake */
	header(h, 512u << 10);
	assert_int_equal(th_send_raw(fd, h, 4), 0);
	memset(chunk, ' ', sizeof(chunk));
	t0 = th_now_ms();
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 100) > 0)
			break;		/* the closing event */
		if (th_send_raw(fd, chunk, sizeof(chunk)) != 0)
			break;
		sent += sizeof(chunk);
		if (th_now_ms() - t0 > 10000)
			fail_msg("not closed after 10 s of trickling");
	}
	expect_closing(fd, "frame_timeout", 2000);
	print_message("trickled frame (100 B / 100 ms of 512 KiB): closed "
	    "with frame_timeout after %llu ms, %zu bytes sent\n",
	    (unsigned long long)(th_now_ms() - t0), sent);
	assert_int_equal(th_wait_eof(fd, 3000), 1);
	close(fd);
	/* Half a header after a complete frame: the same. */
	fd = th_connect(witch_server_port(srv));
	th_ping_ok(fd);
	assert_int_equal(th_send_raw(fd, "\0\0", 2), 0);
	expect_closing(fd, "frame_timeout", 3000);
	close(fd);
	ctl = th_connect(witch_server_port(srv));
	assert_int_equal(th_status_get(ctl, "frame_timeouts"), 2);
	close(ctl);
	witch_server_free(srv);
}

/* ---- many nearly complete large frames ------------------------------- */

#define BIG	(1u << 20)
#define SMALL	(128u << 10)
#define NBIG	8
#define NSMALL	8

/* Send header and all but 16 bytes of an echo frame of n bytes. */
static void
almost_frame(int fd, char *p, size_t n, int id)
{
	unsigned char h[4];
	int k;

	k = snprintf(p, n, "{\"id\":%d,\"endpoint\":\"echo\",\"data\":\"",
	    id);
	memset(p + k, 'x', n - (size_t)k - 2);
	p[n - 2] = '"';
	p[n - 1] = '}';
	header(h, (uint32_t)n);
	assert_int_equal(th_send_raw(fd, h, 4), 0);
	assert_int_equal(th_send_raw(fd, p, n - 16), 0);
}

static void
test_frame_budget(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	int big[NBIG], small[NSMALL], ctl, i, dropped = 0, served = 0;
	char *p = malloc(BIG);
	long rss0, rss1;
	json_t *r;

	(void)state;
	assert_non_null(p);
	/* Room for the small ones and four big ones. */
	assert_int_equal(witch_server_config_set_frame_budget(cfg,
	    NSMALL * SMALL + 4 * BIG), 0);
	srv = start(cfg, "127.0.0.1");
	ctl = th_connect(witch_server_port(srv));
	rss0 = rss_kib();
	for (i = 0; i < NSMALL; i++) {
		small[i] = th_connect(witch_server_port(srv));
		th_ping_ok(small[i]);
		almost_frame(small[i], p, SMALL, 100 + i);
	}
	for (i = 0; i < NBIG; i++) {
		big[i] = th_connect(witch_server_port(srv));
		th_ping_ok(big[i]);
		almost_frame(big[i], p, BIG, 200 + i);
	}
	assert_true(th_status_await(ctl, "frame_budget_drops", NBIG - 4,
	    5000));
	rss1 = rss_kib();
	print_message("frame budget %u KiB: held %lld KiB in partial frames, "
	    "%lld holders dropped; RSS %ld -> %ld KiB (server and clients "
	    "in one process)\n", (NSMALL * SMALL + 4 * BIG) >> 10,
	    (long long)th_status_get(ctl, "frame_bytes_held") >> 10,
	    (long long)th_status_get(ctl, "frame_budget_drops"), rss0,
	    rss1);
	assert_true(th_status_get(ctl, "frame_bytes_held") <=
	    (json_int_t)(NSMALL * SMALL + 4 * BIG));
	/* The largest holders went, with the closing event. */
	for (i = 0; i < NBIG; i++) {
		struct pollfd pf = { .fd = big[i], .events = POLLIN };

		if (poll(&pf, 1, 0) > 0) {
			expect_closing(big[i], "frame_budget", 1000);
			dropped++;
		} else {
			/* Finish the frame: echoed. */
			assert_int_equal(th_send_raw(big[i],
			    p + BIG - 16, 16), 0);
			r = th_recv_ok(big[i], 0);
			assert_int_equal(th_id(r), 200 + i);
			assert_null(th_err_code(r));
			json_decref(r);
			served++;
		}
		close(big[i]);
	}
	assert_int_equal(dropped, NBIG - 4);
	assert_int_equal(served, 4);
	/* The small holders were never the largest: all served. */
	for (i = 0; i < NSMALL; i++) {
		assert_int_equal(th_send_raw(small[i], "xxxxxxxxxxxxxx\"}",
		    16), 0);
		r = th_recv_ok(small[i], 0);
		assert_int_equal(th_id(r), 100 + i);
		assert_null(th_err_code(r));
		json_decref(r);
		close(small[i]);
	}
	close(ctl);
	ctl = th_connect(witch_server_port(srv));
	assert_int_equal(th_status_get(ctl, "frame_budget_drops"), NBIG - 4);
	assert_int_equal(th_status_get(ctl, "frame_bytes_held"), 0);
	close(ctl);
	free(p);
	witch_server_free(srv);
}

/* ---- nesting depth ---------------------------------------------------- */

/* {"id":id,"endpoint":"echo","data":[[...]]} with n arrays. */
static void
send_nested(int fd, int id, size_t n)
{
	size_t len = 64 + 2 * n, k;
	char *p = malloc(len);

	assert_non_null(p);
	k = (size_t)snprintf(p, len, "{\"id\":%d,\"endpoint\":\"echo\","
	    "\"data\":", id);
	memset(p + k, '[', n);
	memset(p + k + n, ']', n);
	p[k + 2 * n] = '}';
	p[k + 2 * n + 1] = '\0';
	assert_int_equal(th_send(fd, p), 0);
	free(p);
}

static void
test_max_depth(void **state)
{
	witch_server_t *srv = start(th_config(), "127.0.0.1");
	json_t *r;
	int fd = th_connect(witch_server_port(srv));

	(void)state;
	/* The object is depth 1: 127 arrays reach the default 128. */
	send_nested(fd, 1, WITCH_DEFAULT_MAX_DEPTH - 1);
	th_expect_reply(fd, 1, NULL);
	send_nested(fd, 2, WITCH_DEFAULT_MAX_DEPTH);
	r = th_recv_ok(fd, 0);
	assert_int_equal(th_id(r), 2);
	assert_string_equal(th_err_code(r), "invalid_request");
	assert_non_null(strstr(json_string_value(json_object_get(
	    json_object_get(r, "error"), "message")), "max_depth"));
	json_decref(r);
	/* The connection goes on. */
	th_ping_ok(fd);
	assert_int_equal(th_status_get(fd, "depth_refusals"), 1);
	close(fd);
	witch_server_free(srv);
}

/* ---- connections per address, and the pre-authentication cap -------- */

static void
test_max_clients_per_address(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	int fds[3], lo[5], extra, i;
	json_t *r;

	(void)state;
	assert_int_equal(witch_server_config_set_max_clients_per_address(cfg,
	    3), 0);
	srv = start(cfg, "0.0.0.0");	/* in the namespace: netns_run() */
	for (i = 0; i < 3; i++) {
		assert_true((fds[i] = remote_connect(witch_server_port(srv))) >=
		    0);
		th_ping_ok(fds[i]);
	}
	assert_true((extra = remote_connect(witch_server_port(srv))) >= 0);
	r = th_recv_ok(extra, 0);
	assert_string_equal(th_err_code(r), "server_full");
	assert_non_null(strstr(json_string_value(json_object_get(
	    json_object_get(r, "error"), "message")), "address"));
	json_decref(r);
	assert_int_equal(th_wait_eof(extra, 3000), 1);
	close(extra);
	/* Loopback is exempt. */
	for (i = 0; i < 5; i++) {
		lo[i] = th_connect(witch_server_port(srv));
		th_ping_ok(lo[i]);
	}
	assert_int_equal(th_status_get(lo[0], "address_refusals"), 1);
	/* A slot freed is a slot again. */
	close(fds[0]);
	assert_true(th_status_await(lo[0], "clients", 2 + 5, 3000));
	assert_true((fds[0] = remote_connect(witch_server_port(srv))) >= 0);
	th_ping_ok(fds[0]);
	for (i = 0; i < 3; i++)
		close(fds[i]);
	for (i = 0; i < 5; i++)
		close(lo[i]);
	witch_server_free(srv);
}

static void
test_preauth_frame_cap(void **state)
{
	witch_server_config_t *cfg;
	witch_server_t *srv;
	json_t *r;
	int fd, lo;

	(void)state;
	/*
	 * No key and protected mode off, so a remote client is served at all
	 * (protected mode would answer its echo "unauthorized"): the cap on a
	 * keyless server's remote first frame is what this test is about
	 * (test_auth checks the cap of a server with a key).
	 */
	cfg = th_config();
	assert_int_equal(witch_server_config_set_unprotected(cfg, true), 0);
	srv = start(cfg, "0.0.0.0");	/* in the namespace: netns_run() */
	/* A remote client's first frame: at most 16 KiB. */
	assert_true((fd = remote_connect(witch_server_port(srv))) >= 0);
	assert_int_equal(th_send_echo(fd, 1,
	    WITCH_DEFAULT_PREAUTH_MAX_FRAME + 1), 0);
	r = th_recv_ok(fd, 0);
	assert_string_equal(th_err_code(r), "frame_too_large");
	assert_non_null(strstr(json_string_value(json_object_get(
	    json_object_get(r, "error"), "message")), "preauth_max_frame"));
	json_decref(r);
	assert_int_equal(th_wait_eof(fd, 3000), 1);
	close(fd);
	/* Exactly the cap is fine, and after it max_frame applies. */
	assert_true((fd = remote_connect(witch_server_port(srv))) >= 0);
	assert_int_equal(th_send_echo(fd, 2, WITCH_DEFAULT_PREAUTH_MAX_FRAME),
	    0);
	th_expect_reply(fd, 2, NULL);
	assert_int_equal(th_send_echo(fd, 3, 512u << 10), 0);
	th_expect_reply(fd, 3, NULL);
	close(fd);
	/* Loopback is trusted: no cap on its first frame. */
	lo = th_connect(witch_server_port(srv));
	assert_int_equal(th_send_echo(lo, 4, 512u << 10), 0);
	th_expect_reply(lo, 4, NULL);
	assert_int_equal(th_status_get(lo, "preauth_frame_refusals"), 1);
	close(lo);
	witch_server_free(srv);
}

/* ---- the decode budget ------------------------------------------------ */

/*
 * {"id":id,"endpoint":ep,"data":[item,item,...]} of about n bytes: a
 * string to free, its length into *len.
 */
static char *
array_json(const char *ep, int id, const char *item, size_t n, size_t *len)
{
	size_t il = strlen(item), k, cap = n + 128;
	char *p = malloc(cap);

	assert_non_null(p);
	k = (size_t)snprintf(p, cap, "{\"id\":%d,\"endpoint\":\"%s\","
	    "\"data\":[", id, ep);
	while (k + il + 3 < n) {
		memcpy(p + k, item, il);
		k += il;
		p[k++] = ',';
	}
	memcpy(p + k, item, il);
	k += il;
	memcpy(p + k, "]}", 3);
	*len = k + 2;
	return p;
}

/* Send array_json(ep, id, item, n) as one frame. */
static void
send_array(int fd, const char *ep, int id, const char *item, size_t n)
{
	size_t len;
	char *p = array_json(ep, id, item, n, &len);

	assert_int_equal(th_send(fd, p), 0);
	free(p);
}

static void
test_decode_budget(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	json_t *r;
	int fd;

	(void)state;
	srv = start(cfg, "127.0.0.1");
	fd = th_connect(witch_server_port(srv));
	/* 1 MiB of [{},{},...]: ~95 MB as a jansson tree, over 64 MiB. */
	send_array(fd, "echo", 1, "{}", (1u << 20) - 64);
	r = th_recv_ok(fd, 0);
	assert_int_equal(th_id(r), 1);
	assert_string_equal(th_err_code(r), "invalid_request");
	assert_non_null(strstr(json_string_value(json_object_get(
	    json_object_get(r, "error"), "message")), "decode_budget"));
	json_decref(r);
	/* 1 MiB of numbers (~38 MB as a tree) passes. */
	send_array(fd, "echo", 2, "1", (1u << 20) - 64);
	th_expect_reply(fd, 2, NULL);
	assert_int_equal(th_status_get(fd, "decode_refusals"), 1);
	close(fd);
	witch_server_free(srv);

	/* Per connection: what its requests in flight may cost together. */
	cfg = th_config();
	assert_int_equal(witch_server_config_set_decode_budget(cfg,
	    2u << 20), 0);
	srv = start(cfg, "127.0.0.1");
	th_gate_reset();
	fd = th_connect(witch_server_port(srv));
	send_array(fd, "gate", 10, "{}", 10000);	/* ~0.92 MB */
	assert_true(th_gate_await(TH_GATE_STARTED, 1, 5000));
	send_array(fd, "gate", 11, "{}", 10000);	/* 1.84 MB: fits */
	send_array(fd, "gate", 12, "{}", 10000);	/* 2.75 MB: over */
	th_expect_reply(fd, 12, "overloaded");
	th_gate_open();
	th_expect_results(fd, 10, 2);		/* in any order */
	/* Released with the jobs: room again. */
	send_array(fd, "gate", 13, "{}", 10000);
	th_expect_reply(fd, 13, NULL);
	close(fd);
	witch_server_free(srv);
}

/* Append the frame of array_json(ep, id, item, n) to buf at *len. */
static void
frame_array(unsigned char *buf, size_t *len, const char *ep, int id,
    const char *item, size_t n)
{
	size_t k;
	char *p = array_json(ep, id, item, n, &k);

	th_frame(buf + *len, p, (uint32_t)k);
	*len += 4 + k;
	free(p);
}

/*
 * Requests read together count against the budget together: the
 * reactor counts a read's jobs into decode_held once, when the read is
 * decoded, and admission must add what the read has dispatched so far.
 * Three ~0.45 MB requests in one write against a 1 MiB budget: two fit,
 * the third is refused, although none of them reached decode_held yet.
 */
static void
test_decode_budget_one_read(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	unsigned char buf[3 * 5200];
	size_t len = 0;
	int fd;

	(void)state;
	assert_int_equal(witch_server_config_set_decode_budget(cfg,
	    1u << 20), 0);
	srv = start(cfg, "127.0.0.1");
	th_gate_reset();
	fd = th_connect(witch_server_port(srv));
	frame_array(buf, &len, "gate", 21, "{}", 5000);
	frame_array(buf, &len, "gate", 22, "{}", 5000);
	frame_array(buf, &len, "gate", 23, "{}", 5000);
	assert_true(len <= sizeof(buf));
	assert_int_equal(th_send_raw(fd, buf, len), 0);
	th_expect_reply(fd, 23, "overloaded");
	assert_true(th_gate_await(TH_GATE_STARTED, 1, 5000));
	th_gate_open();
	th_expect_results(fd, 21, 2);		/* in any order */
	assert_int_equal(th_status_get(fd, "decode_refusals"), 1);
	close(fd);
	witch_server_free(srv);
}

/* ---- jobs in flight per connection ---------------------------------- */

/*
 * The clients row with the most jobs in flight, asked on fd: its
 * "inflight" and "requests" into *inflight and *requests.
 */
static void
busiest_client(int fd, json_int_t *inflight, json_int_t *requests)
{
	json_t *r, *row;
	size_t i;

	*inflight = *requests = -1;
	r = th_ask(fd, "{\"id\":77,\"endpoint\":\"clients\"}", 77);
	json_array_foreach(json_object_get(r, "result"), i, row) {
		if (json_integer_value(json_object_get(row, "inflight")) >
		    *inflight) {
			*inflight = json_integer_value(json_object_get(row,
			    "inflight"));
			*requests = json_integer_value(json_object_get(row,
			    "requests"));
		}
	}
	json_decref(r);
}

/*
 * A connection with 1024 jobs in flight is not read until they fall
 * below 512 (reactor.md, "Flow control and limits").  The reactor
 * counts a read's jobs into inflight once, when the read is decoded;
 * the pause must still come at the end of the read that crossed the
 * mark.  2000 gated requests of about 70 bytes (141 KB) arrive in reads
 * of up to 64 KiB, about 930 requests each: the read that takes the
 * count past 1024 (about 1860 with full reads) pauses the connection,
 * the rest stay unread while the gate is shut, and every request is
 * answered once it opens.
 */
#define FLOW_N 2000

static void
test_inflight_pause(void **state)
{
	witch_server_t *srv;
	unsigned char *buf, *p;
	char json[96];
	json_int_t inflight, requests, before;
	size_t len = 0;
	int fd, ctl, i, n;
	uint64_t t0;

	(void)state;
	srv = start(th_config(), "127.0.0.1");
	th_gate_reset();
	fd = th_connect(witch_server_port(srv));
	ctl = th_connect(witch_server_port(srv));
	buf = malloc((size_t)FLOW_N * (4 + sizeof(json)));
	assert_non_null(buf);
	for (i = 1; i <= FLOW_N; i++) {
		n = snprintf(json, sizeof(json), "{\"id\":%d,\"endpoint\":"
		    "\"gate\",\"data\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}", i);
		p = buf + len;
		th_frame(p, json, (uint32_t)n);
		len += 4 + (size_t)n;
	}
	assert_int_equal(th_send_raw(fd, buf, len), 0);
	free(buf);
	assert_true(th_gate_await(TH_GATE_STARTED, 1, 5000));
	/* Paused: at least the mark in flight, the rest not decoded. */
	t0 = th_now_ms();
	do {
		busiest_client(ctl, &inflight, &before);
	} while (inflight < 1024 && th_now_ms() - t0 < 5000);
	assert_true(inflight >= 1024);
	assert_true(before < FLOW_N);
	th_sleep_ms(200);
	busiest_client(ctl, &inflight, &requests);
	assert_int_equal(requests, before);
	assert_int_equal(inflight, before);
	/* Opened: every one of them answered. */
	th_gate_open();
	th_expect_results(fd, 1, FLOW_N);
	/* A job is counted out just after its reply is pushed: wait. */
	t0 = th_now_ms();
	do {
		busiest_client(ctl, &inflight, &requests);
	} while (inflight != 0 && th_now_ms() - t0 < 5000);
	assert_int_equal(inflight, 0);		/* the most of any client */
	close(ctl);
	close(fd);
	witch_server_free(srv);
}

/* ---- the setters: ranges, and the defaults in status ---------------- */

static void
test_setters(void **state)
{
	witch_server_config_t *cfg = th_config();

	(void)state;
	assert_int_equal(witch_server_config_set_max_depth(cfg,
	    WITCH_MAX_DEPTH_CEILING + 1), WITCH_EINVAL);
	assert_int_equal(witch_server_config_set_max_depth(cfg,
	    WITCH_MAX_DEPTH_CEILING), 0);
	assert_int_equal(witch_server_config_set_preauth_max_frame(cfg,
	    WITCH_MAX_FRAME_CEILING + 1u), WITCH_EINVAL);
	assert_int_equal(witch_server_config_set_max_clients_per_address(cfg,
	    1000001), WITCH_EINVAL);
	assert_int_equal(witch_server_config_set_frame_timeout(NULL, 1),
	    WITCH_EINVAL);
	assert_int_equal(witch_server_config_set_decode_budget(NULL, 1),
	    WITCH_EINVAL);
	assert_int_equal(witch_server_config_set_frame_budget(NULL, 1),
	    WITCH_EINVAL);
	/* 0 turns each off. */
	assert_int_equal(witch_server_config_set_frame_timeout(cfg, 0), 0);
	assert_int_equal(witch_server_config_set_preauth_max_frame(cfg, 0), 0);
	assert_int_equal(witch_server_config_set_decode_budget(cfg, 0), 0);
	assert_int_equal(witch_server_config_set_frame_budget(cfg, 0), 0);
	assert_int_equal(witch_server_config_set_max_depth(cfg, 0), 0);
	assert_int_equal(witch_server_config_set_max_clients_per_address(cfg,
	    0), 0);
	witch_server_config_free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_setters),
		cmocka_unit_test(test_half_open),
		cmocka_unit_test(test_frame_budget),
		cmocka_unit_test(test_trickle_frame_timeout),
		cmocka_unit_test(test_max_depth),
		cmocka_unit_test(test_decode_budget),
		cmocka_unit_test(test_decode_budget_one_read),
		cmocka_unit_test(test_inflight_pause),
	};
	/* From a remote namespace (tests/daemon/test_budgets_netns.sh). */
	const struct CMUnitTest remote[] = {
		cmocka_unit_test(test_preauth_frame_cap),
		cmocka_unit_test(test_max_clients_per_address),
	};

	if (netns_run())
		return cmocka_run_group_tests_name("remote", remote, NULL,
		    NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
