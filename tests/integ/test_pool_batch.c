/*
 * test_pool_batch: a worker's batched replies (reactor/job.c, "pend"),
 * under load, meant to run under TSan as well as plain and ASan+UBSan.
 *
 * One in-process server with 2 workers and the built-ins on the pool
 * (inline_builtins false), so every request crosses reactor -> worker ->
 * reactor.  Six client threads each run bounded rounds: connect, write a
 * pipeline of 1..MAX_REQ requests in one go (echo of the request's
 * number, a "big" reply of a few KiB so that batches cross the 16 KiB
 * push threshold, an endpoint that fails, oneway echoes), then end the
 * round one of four ways: read every reply; half-close and read to EOF
 * (the close sequence must still write every reply owed: a batch's jobs
 * are counted out only after its replies were pushed); read half and
 * close; or reset at once.
 *
 * Checked on rounds read to the end: every non-oneway request gets
 * exactly one reply with its id and the right content (echo payload,
 * big length, error code), nothing else arrives; `clients' returns to 0
 * once every client has gone; the server stops and frees cleanly.
 *
 * Client threads never call cmocka asserts; they record the first
 * failure and the main thread asserts on it.
 *
 * one_push_per_read: a worker woken for a read's requests publishes
 * their replies as one batch.  One worker, asleep before each round; the
 * client writes two pool echoes and an inline endpoint that holds the
 * reactor's turn for STALL_MS, in one write, so the echoes reach the
 * worker STALL_MS after the turn began (their t0).  The worker's rule
 * "flush when a handler may have been slow" once took that wait for the
 * first handler's run time and pushed every such read's replies in two
 * batches (2 pushes a round; at c=50 P=16, 1.26 send(2) per read and 10%
 * fewer requests per second).  The test counts the worker's pushes with
 * a test hook: one per round.  The rule's 20 us is raised to 2 ms for
 * this test (witch__pend_ns; the stall is 20 ms), so that a sanitizer's
 * slowness or a preemption on a loaded machine is not taken for a slow
 * handler (at 20 us, TSan runs two at once pushed 27-37 times in 20
 * rounds); room is left for a worker kept off the CPU that long, up to
 * 1.5 a round, where the split made exactly 2.
 *
 * batch_counts: a worker adds a batch's calls to the server's counters
 * in runs (one endpoint, one latency bucket), not per request.  One
 * worker; rounds of pipelined echo, fail and big requests in one write,
 * mixed so that runs change endpoint inside a batch; after them every
 * call is in the statistics exactly once: requests served and failed,
 * each endpoint's calls and errors, the latency histogram's count.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integ/harness.h"
#include "reactor/reactor.h"	/* witch__pend_push_hook */

/* The first failure of a client thread, kept in c->fail. */
#define failf(c, ...) \
	th_fail_first((c)->fail, sizeof((c)->fail), __VA_ARGS__)

#if defined(__SANITIZE_THREAD__)
#define BATCH_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BATCH_TSAN 1
#endif
#endif

#ifdef BATCH_TSAN
#define ROUNDS 60
#else
#define ROUNDS 200
#endif
#define NCLIENTS 6
#define MAX_REQ 96
#define READ_MS 15000

/* ---- the server side --------------------------------------------------- */

/* data: a length (capped at 8000): replies with a string of that many x. */
static int
h_big(witch_request_t *req, void *ud)
{
	json_int_t n = json_integer_value(witch_request_data(req));
	char *s;
	int rc;

	(void)ud;
	if (n < 0 || n > 8000)
		n = 8000;
	if ((s = malloc((size_t)n + 1)) == NULL)
		return witch_request_error(req, WITCH_ENOMEM, NULL);
	memset(s, 'x', (size_t)n);
	s[n] = '\0';
	rc = witch_request_reply(req, json_string(s));
	free(s);
	return rc;
}

static int
h_fail(witch_request_t *req, void *ud)
{
	(void)ud;
	return witch_request_error(req, WITCH_EINVAL, "fails on purpose");
}

static void
reg(witch_server_t *srv, void *arg)
{
	(void)arg;
	assert_int_equal(witch_server_register_endpoint(srv, "big", h_big,
	    NULL), 0);
	assert_int_equal(witch_server_register_endpoint(srv, "fail", h_fail,
	    NULL), 0);
}

/*
 * A server with one worker and the built-ins on the pool, endpoints
 * registered by regf; *fdp a connection to it whose ping was answered.
 */
static witch_server_t *
start_one_worker(void (*regf)(witch_server_t *, void *), int *fdp)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;

	assert_int_equal(witch_server_config_set_workers(cfg, 1), 0);
	assert_int_equal(witch_server_config_set_inline_builtins(cfg, false),
	    0);
	srv = th_server_start(cfg, regf, NULL);
	witch_server_config_free(cfg);
	*fdp = th_connect(witch_server_port(srv));
	th_ping_ok(*fdp);
	return srv;
}

/* ---- client side (no cmocka in threads) -------------------------------- */

enum kind { K_ECHO, K_BIG, K_FAIL, K_ONEWAY };

struct client {
	pthread_t	 tid;
	unsigned	 port;
	uint64_t	 rng;
	char		 fail[256];
	unsigned	 checked;	/* replies verified */
	unsigned	 full;		/* rounds read to the end */
};

/* Read exactly n bytes within READ_MS; 1 ok, 0 EOF first, -1 error. */
static int
read_n(int fd, unsigned char *p, size_t n)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	ssize_t r;

	while (n > 0) {
		if (poll(&pfd, 1, READ_MS) != 1)
			return -1;
		if ((r = recv(fd, p, n, 0)) == 0)
			return 0;
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 1;
}

/* One frame, parsed; NULL and *eof set at a clean EOF, NULL on error. */
static json_t *
read_frame(int fd, bool *eof)
{
	unsigned char h[4], *p;
	uint32_t len;
	json_t *j;
	int rc;

	*eof = false;
	if ((rc = read_n(fd, h, 4)) <= 0) {
		*eof = rc == 0;
		return NULL;
	}
	len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
	    (uint32_t)h[2] << 8 | h[3];
	if (len == 0 || len > (1u << 20) || (p = malloc(len)) == NULL)
		return NULL;
	if (read_n(fd, p, len) != 1) {
		free(p);
		return NULL;
	}
	j = json_loadb((const char *)p, len, 0, NULL);
	free(p);
	return j;
}

/* Append one frame to out (room assumed). */
static size_t
put_frame(unsigned char *out, const char *payload)
{
	size_t n = strlen(payload);

	th_frame(out, payload, (uint32_t)n);
	return 4 + n;
}

/* Check one reply against the round's table (kinds, sizes, got flags). */
static void
check(struct client *c, json_t *r, const enum kind *k, const unsigned *arg,
    bool *got, unsigned n)
{
	json_t *idv = json_object_get(r, "id"), *res;
	json_int_t id;
	const char *code;

	if (!json_is_integer(idv)) {
		char *d = json_dumps(r, JSON_COMPACT);

		failf(c, "reply without an integer id: %.200s",
		    d != NULL ? d : "?");
		free(d);
		return;
	}
	id = json_integer_value(idv);
	if (id < 1 || id > (json_int_t)n || k[id - 1] == K_ONEWAY) {
		failf(c, "reply with id %lld not sent", (long long)id);
		return;
	}
	if (got[id - 1]) {
		failf(c, "two replies for id %lld", (long long)id);
		return;
	}
	got[id - 1] = true;
	res = json_object_get(r, "result");
	code = th_err_code(r);
	switch (k[id - 1]) {
	case K_ECHO:
		res = json_object_get(res, "echo");
		if (!json_is_integer(res) ||
		    json_integer_value(res) != (json_int_t)arg[id - 1])
			failf(c, "echo %lld: wrong result", (long long)id);
		break;
	case K_BIG:
		if (!json_is_string(res) ||
		    json_string_length(res) != arg[id - 1])
			failf(c, "big %lld: wrong result", (long long)id);
		break;
	case K_FAIL:
		if (code == NULL || strcmp(code, "invalid_argument") != 0)
			failf(c, "fail %lld: code %s", (long long)id,
			    code != NULL ? code : "(none)");
		break;
	default:
		break;
	}
	c->checked++;
}

static void
round_run(struct client *c)
{
	enum kind k[MAX_REQ];
	unsigned arg[MAX_REQ], i, n, owed = 0, seen = 0, mode;
	bool got[MAX_REQ], eof;
	unsigned char *buf;
	char pl[128];
	size_t len = 0;
	struct linger lg = { 1, 0 };
	json_t *r;
	int fd;

	if ((fd = th_dial(c->port)) == -1) {
		failf(c, "connect: %s", strerror(errno));
		return;
	}
	n = 1 + th_randn(&c->rng, MAX_REQ);
	if ((buf = malloc((size_t)n * 160)) == NULL) {
		close(fd);
		failf(c, "out of memory");
		return;
	}
	for (i = 0; i < n; i++) {
		got[i] = false;
		switch (th_randn(&c->rng, 10)) {
		case 0:
			k[i] = K_BIG;
			arg[i] = 100 + th_randn(&c->rng, 7900);
			snprintf(pl, sizeof(pl), "{\"id\":%u,\"endpoint\":"
			    "\"big\",\"data\":%u}", i + 1, arg[i]);
			break;
		case 1:
			k[i] = K_FAIL;
			arg[i] = 0;
			snprintf(pl, sizeof(pl), "{\"id\":%u,\"endpoint\":"
			    "\"fail\"}", i + 1);
			break;
		case 2:
			k[i] = K_ONEWAY;
			arg[i] = 0;
			snprintf(pl, sizeof(pl), "{\"oneway\":true,"
			    "\"endpoint\":\"echo\",\"data\":%u}", i + 1);
			break;
		default:
			k[i] = K_ECHO;
			arg[i] = (unsigned)th_randn(&c->rng, 1000000);
			snprintf(pl, sizeof(pl), "{\"id\":%u,\"endpoint\":"
			    "\"echo\",\"data\":%u}", i + 1, arg[i]);
			break;
		}
		if (k[i] != K_ONEWAY)
			owed++;
		len += put_frame(buf + len, pl);
	}
	if (send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len) {
		failf(c, "send: %s", strerror(errno));
		goto out;
	}
	mode = th_randn(&c->rng, 8);
	if (mode == 0) {		/* reset with replies in flight */
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		goto out;
	}
	if (mode == 1) {		/* read some, then close */
		for (i = 0; i < owed / 2; i++) {
			if ((r = read_frame(fd, &eof)) == NULL)
				break;
			json_decref(r);
		}
		goto out;
	}
	if (mode == 2)			/* half-close: all still owed */
		shutdown(fd, SHUT_WR);
	while (seen < owed && c->fail[0] == '\0') {
		if ((r = read_frame(fd, &eof)) == NULL) {
			failf(c, "reply %u of %u: %s", seen + 1, owed,
			    eof ? "EOF" : "timeout or error");
			goto out;
		}
		check(c, r, k, arg, got, n);
		json_decref(r);
		seen++;
	}
	if (mode == 2 && c->fail[0] == '\0') {
		/* After every reply: at most a closing event, then EOF. */
		while ((r = read_frame(fd, &eof)) != NULL) {
			if (json_object_get(r, "event") == NULL)
				failf(c, "a frame after the last reply");
			json_decref(r);
		}
		if (!eof)
			failf(c, "no EOF after a half-close");
	}
	c->full++;
out:
	free(buf);
	close(fd);
}

static void *
client_main(void *arg)
{
	struct client *c = arg;
	unsigned i;

	for (i = 0; i < ROUNDS && c->fail[0] == '\0'; i++)
		round_run(c);
	return NULL;
}

static void
test_batched_replies(void **state)
{
	struct client cl[NCLIENTS];
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	unsigned i, checked = 0, full = 0;
	int fd;

	(void)state;
	assert_int_equal(witch_server_config_set_workers(cfg, 2), 0);
	assert_int_equal(witch_server_config_set_inline_builtins(cfg, false),
	    0);
	assert_int_equal(witch_server_config_set_queue_depth(cfg, 4096), 0);
	srv = th_server_start(cfg, reg, NULL);
	witch_server_config_free(cfg);
	memset(cl, 0, sizeof(cl));
	for (i = 0; i < NCLIENTS; i++) {
		cl[i].port = witch_server_port(srv);
		cl[i].rng = 0x9e3779b97f4a7c15ull * (i + 1);
		assert_int_equal(pthread_create(&cl[i].tid, NULL, client_main,
		    &cl[i]), 0);
	}
	for (i = 0; i < NCLIENTS; i++) {
		pthread_join(cl[i].tid, NULL);
		if (cl[i].fail[0] != '\0')
			fail_msg("client %u: %s", i, cl[i].fail);
		checked += cl[i].checked;
		full += cl[i].full;
	}
	assert_true(full > NCLIENTS * ROUNDS / 2);
	assert_true(checked > full);
	fd = th_connect(witch_server_port(srv));
	assert_true(th_status_await(fd, "clients", 1, 20000));
	close(fd);
	assert_int_equal(witch_server_stop(srv, 2000), 0);
	witch_server_free(srv);
}

/* ---- one push per pipelined read ---------------------------------------- */

#define PUSH_ROUNDS	20
#define STALL_MS	20
#define TEST_PEND_NS	2000000u	/* 2 ms */

static atomic_uint pushes;

static void
count_push(void)
{
	atomic_fetch_add(&pushes, 1);
}

/* Inline, so on the reactor: holds its turn for STALL_MS. */
static int
h_stall(witch_request_t *req, void *ud)
{
	(void)ud;
	th_sleep_ms(STALL_MS);
	return witch_request_reply(req, json_true());
}

static void
reg_stall(witch_server_t *srv, void *arg)
{
	(void)arg;
	assert_int_equal(witch_server_register_endpoint_ex(srv, "stall",
	    NULL, 0, h_stall, NULL, WITCH_ENDPOINT_INLINE), 0);
}

static void
test_one_push_per_read(void **state)
{
	static const char *const req[] = {
		"{\"id\":1,\"endpoint\":\"echo\",\"data\":\"a\"}",
		"{\"id\":2,\"endpoint\":\"echo\",\"data\":\"b\"}",
		"{\"id\":3,\"endpoint\":\"stall\"}",
	};
	witch_server_t *srv;
	unsigned char out[256];
	unsigned i, round, seen, n;
	size_t off;
	json_t *r;
	int fd;

	(void)state;
	for (i = off = 0; i < 3; i++) {
		n = (unsigned)strlen(req[i]);
		th_frame(out + off, req[i], n);
		off += 4 + n;
	}
	srv = start_one_worker(reg_stall, &fd);
	atomic_store(&pushes, 0);
	atomic_store(&witch__pend_push_hook, count_push);
	for (round = 0; round < PUSH_ROUNDS; round++) {
		th_sleep_ms(30);	/* the worker spins µs, then sleeps */
		assert_int_equal(th_send_raw(fd, out, off), 0);
		for (i = seen = 0; i < 3; i++) {
			r = th_recv(fd, 10000);
			assert_non_null(r);
			assert_null(th_err_code(r));
			assert_in_range(th_id(r), 1, 3);
			seen |= 1u << th_id(r);
			json_decref(r);
		}
		assert_int_equal(seen, 0xe);	/* ids 1, 2 and 3 */
	}
	atomic_store(&witch__pend_push_hook, NULL);
	/* Both echoes' replies are pushed before the client reads them. */
	n = atomic_load(&pushes);
	print_message("%u worker pushes in %u rounds\n", n, PUSH_ROUNDS);
	assert_in_range(n, PUSH_ROUNDS, PUSH_ROUNDS * 3 / 2);
	close(fd);
	assert_int_equal(witch_server_stop(srv, 2000), 0);
	witch_server_free(srv);
}

/* ---- a batch's calls counted exactly once -------------------------------- */

#define COUNT_ROUNDS	20
#define COUNT_REQ	45	/* a round: 35 echo, 5 fail, 5 big */

/* An endpoint's field in the stats result (0: no such endpoint yet). */
static json_int_t
ep_get(json_t *res, const char *ep, const char *key)
{
	return json_integer_value(json_object_get(json_object_get(
	    json_object_get(res, "endpoints"), ep), key));
}

/* The stats built-in's result (id 9998; owned by the caller). */
static json_t *
stats_get(int fd)
{
	json_t *r, *res;

	assert_int_equal(th_send(fd, "{\"id\":9998,\"endpoint\":\"stats\"}"),
	    0);
	r = th_recv_ok(fd, 0);
	assert_int_equal(th_id(r), 9998);
	res = json_incref(json_object_get(r, "result"));
	json_decref(r);
	assert_non_null(res);
	return res;
}

static json_int_t
lat_count(json_t *res)
{
	return json_integer_value(json_object_get(json_object_get(res,
	    "latency"), "count"));
}

static void
test_batch_counts(void **state)
{
	witch_server_t *srv;
	unsigned char out[COUNT_REQ * 64];
	char payload[64];
	unsigned i, round, got;
	json_int_t served, failed;
	json_t *s0, *s1, *r;
	size_t off;
	int fd;

	(void)state;
	for (i = off = 0; i < COUNT_REQ; i++) {
		if (i % 9 == 4)
			snprintf(payload, sizeof(payload),
			    "{\"id\":%u,\"endpoint\":\"fail\"}", i + 1);
		else if (i % 9 == 8)
			snprintf(payload, sizeof(payload),
			    "{\"id\":%u,\"endpoint\":\"big\",\"data\":100}",
			    i + 1);
		else
			snprintf(payload, sizeof(payload),
			    "{\"id\":%u,\"endpoint\":\"echo\",\"data\":%u}",
			    i + 1, i);
		off += put_frame(out + off, payload);
	}
	srv = start_one_worker(reg, &fd);

	/* Each snapshot counts the calls answered before it, not itself. */
	served = th_status_get(fd, "requests_served");
	failed = th_status_get(fd, "requests_failed");
	s0 = stats_get(fd);
	for (round = 0; round < COUNT_ROUNDS; round++) {
		if (round % 4 == 0)
			th_sleep_ms(20);	/* the worker asleep */
		assert_int_equal(th_send_raw(fd, out, off), 0);
		for (i = got = 0; i < COUNT_REQ; i++) {
			r = th_recv(fd, 10000);
			assert_non_null(r);
			assert_in_range(th_id(r), 1, COUNT_REQ);
			if ((th_id(r) - 1) % 9 == 4)
				assert_string_equal(th_err_code(r),
				    "invalid_argument");
			else
				assert_null(th_err_code(r));
			got++;
			json_decref(r);
		}
		assert_int_equal(got, COUNT_REQ);
	}
	s1 = stats_get(fd);
	/* 35 + 5 a round; the two status calls, s0 and s1 before this. */
	assert_int_equal(th_status_get(fd, "requests_served") - served,
	    COUNT_ROUNDS * 40 + 4);
	assert_int_equal(th_status_get(fd, "requests_failed") - failed,
	    COUNT_ROUNDS * 5);
	assert_int_equal(ep_get(s1, "echo", "calls") -
	    ep_get(s0, "echo", "calls"), COUNT_ROUNDS * 35);
	assert_int_equal(ep_get(s1, "echo", "errors") -
	    ep_get(s0, "echo", "errors"), 0);
	assert_int_equal(ep_get(s1, "fail", "calls") -
	    ep_get(s0, "fail", "calls"), COUNT_ROUNDS * 5);
	assert_int_equal(ep_get(s1, "fail", "errors") -
	    ep_get(s0, "fail", "errors"), COUNT_ROUNDS * 5);
	assert_int_equal(ep_get(s1, "big", "calls") -
	    ep_get(s0, "big", "calls"), COUNT_ROUNDS * 5);
	/* s0 itself is in s1's histogram. */
	assert_int_equal(lat_count(s1) - lat_count(s0),
	    COUNT_ROUNDS * COUNT_REQ + 1);
	json_decref(s0);
	json_decref(s1);
	close(fd);
	assert_int_equal(witch_server_stop(srv, 2000), 0);
	witch_server_free(srv);
}

/* The rule's time for this test only; back as it was even on a failure. */
static uint64_t saved_pend_ns;

static int
pend_setup(void **state)
{
	(void)state;
	saved_pend_ns = atomic_exchange(&witch__pend_ns, TEST_PEND_NS);
	return 0;
}

static int
pend_teardown(void **state)
{
	(void)state;
	atomic_store(&witch__pend_push_hook, NULL);
	atomic_store(&witch__pend_ns, saved_pend_ns);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batched_replies),
		cmocka_unit_test(test_batch_counts),
		cmocka_unit_test_setup_teardown(test_one_push_per_read,
		    pend_setup, pend_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
