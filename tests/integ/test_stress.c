/*
 * test_stress: the concurrency paths of the server under load, meant to
 * run under TSan as well as plain and ASan+UBSan.
 *
 * One in-process server (2 workers, queue_depth 64) with a "slow" endpoint
 * that sleeps a few hundred microseconds in small steps and stops early
 * when witch_request_cancelled() says so.  Eight client threads each run
 * bounded rounds: connect, pipeline a random mix (fixed seeds) of echo,
 * slow, oneway, cancel (of earlier and of not-yet-sent ids of the same
 * connection) and small deadline_ms requests, then end the round one of
 * several ways: read every reply, half-close and read to EOF, read some
 * and close, close at once, or reset (SO_LINGER 0) with replies in flight.
 *
 * Checked: on a connection read to the end every non-oneway request gets
 * exactly one reply carrying its id, of an allowed kind; no reply names an
 * id that was not sent or was oneway; the server's requests_served +
 * requests_failed covers every reply received; slow results never exceed
 * slow handler calls; `clients' returns to 0 (awaited by bounded polling)
 * once every client has gone.  Finally witch_server_stop() runs while two
 * clients are still sending, then witch_server_free().
 *
 * Client threads never call cmocka asserts (they longjmp to the main
 * thread's stack); they record the first failure and the main thread
 * asserts on it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/time.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "integ/harness.h"

/* The first failure of a client thread, kept in c->fail. */
#define failf(c, ...) \
	th_fail_first((c)->fail, sizeof((c)->fail), __VA_ARGS__)

#if defined(__SANITIZE_THREAD__)
#define STRESS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STRESS_TSAN 1
#endif
#endif

#ifdef STRESS_TSAN
#define ROUNDS 300		/* per client thread */
#define MAX_REQ 24		/* requests per round, at most */
#else
#define ROUNDS 300
#define MAX_REQ 32
#endif
#define NCLIENTS 8
#define NSPAMMERS 2
#define QUEUE_DEPTH 64
#define MAX_IDS (2 * MAX_REQ + 2)
#define READ_MS 15000		/* per reply on a connection read to the end */
#define SETTLE_MS 20000		/* for clients to return to 0 */

/* ---- the server side --------------------------------------------------- */

static atomic_uint slow_calls;		/* slow handler invocations */
static atomic_uint slow_saw_cancel;	/* ... that returned early */

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
sleep_us(unsigned us)
{
	struct timespec ts = { 0, (long)us * 1000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* data: microseconds to spend (capped); returns {"slow": data}. */
static int
h_slow(witch_request_t *req, void *ud)
{
	json_int_t us = json_integer_value(witch_request_data(req));
	json_int_t spent;

	(void)ud;
	atomic_fetch_add(&slow_calls, 1);
	if (us < 0 || us > 2000)
		us = 2000;
	for (spent = 0; spent < us; spent += 50) {
		if (witch_request_cancelled(req)) {
			atomic_fetch_add(&slow_saw_cancel, 1);
			return witch_request_error(req, WITCH_ECANCELLED,
			    "slow: cancelled after %lld us", (long long)spent);
		}
		sleep_us(50);
	}
	return witch_request_reply(req, json_pack("{s:I}", "slow", us));
}

static void
reg(witch_server_t *srv, void *arg)
{
	(void)arg;
	assert_int_equal(witch_server_register_endpoint(srv, "slow", h_slow,
	    NULL), 0);
}

/* ---- client helpers (no cmocka in threads) ----------------------------- */

struct client {
	pthread_t	 tid;
	int		 idx;
	unsigned	 port;
	uint64_t	 rng;
	/* results */
	char		 fail[256];	/* first failure, "" if none */
	unsigned	 replies;	/* replies to non-cancel requests */
	unsigned	 slow_results;	/* successful slow replies */
	unsigned	 slow_sent;	/* slow requests sent (incl. oneway) */
	unsigned	 full_rounds;	/* rounds read to the end */
	unsigned	 modes[5];
};

/* Append one frame holding the printf-formatted payload to a buffer. */
struct obuf {
	unsigned char	*p;
	size_t		 len, cap;
};

static int
obuf_framef(struct obuf *b, const char *fmt, ...)
{
	char payload[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(payload, sizeof(payload), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(payload))
		return -1;
	if (b->len + 4 + (size_t)n > b->cap) {
		size_t cap = (b->cap ? b->cap * 2 : 4096) + 4 + (size_t)n;
		unsigned char *q = realloc(b->p, cap);

		if (q == NULL)
			return -1;
		b->p = q;
		b->cap = cap;
	}
	th_frame(b->p + b->len, payload, (uint32_t)n);
	b->len += 4 + (size_t)n;
	return 0;
}

enum kind { K_NONE = 0, K_ECHO, K_SLOW, K_CANCEL };

struct req {
	enum kind	 kind;
	bool		 expect;	/* a reply is owed */
	bool		 got;
	long long	 echo;		/* echo payload */
	json_int_t	 slow_us;
};

/* Is code one a request of this kind may legitimately get? */
static bool
code_ok(enum kind k, const char *code)
{
	/* A cancel can itself be the target of an earlier cancel. */
	if (k == K_CANCEL)
		return strcmp(code, "cancelled") == 0;
	return strcmp(code, "timeout") == 0 ||
	    strcmp(code, "cancelled") == 0 ||
	    strcmp(code, "overloaded") == 0;
}

/*
 * Check one reply frame against the round's table; counts it.  Returns
 * false (and records why) when it is not a reply we may get.
 */
static bool
check_reply(struct client *c, struct req *rq, int nids, json_t *r)
{
	json_t *idv = json_object_get(r, "id"), *res;
	const char *code;
	json_int_t id;
	struct req *q;

	if (!json_is_integer(idv)) {
		char *s = json_dumps(r, JSON_COMPACT);

		failf(c, "reply without integer id: %s", s ? s : "?");
		free(s);
		return false;
	}
	id = json_integer_value(idv);
	if (id < 1 || id > nids || !rq[id].expect) {
		failf(c, "reply for id %lld that owes none", (long long)id);
		return false;
	}
	q = &rq[id];
	if (q->got) {
		failf(c, "second reply for id %lld", (long long)id);
		return false;
	}
	q->got = true;
	if (q->kind != K_CANCEL)
		c->replies++;
	if ((code = th_err_code(r)) != NULL) {
		if (!code_ok(q->kind, code)) {
			failf(c, "id %lld (kind %d): error %s", (long long)id,
			    q->kind, code);
			return false;
		}
		return true;
	}
	if ((res = json_object_get(r, "result")) == NULL) {
		failf(c, "id %lld: neither result nor error", (long long)id);
		return false;
	}
	switch (q->kind) {
	case K_ECHO:
		if (json_integer_value(json_object_get(res, "echo")) !=
		    q->echo) {
			failf(c, "id %lld: wrong echo", (long long)id);
			return false;
		}
		break;
	case K_SLOW:
		if (json_integer_value(json_object_get(res, "slow")) !=
		    q->slow_us) {
			failf(c, "id %lld: wrong slow result", (long long)id);
			return false;
		}
		c->slow_results++;
		break;
	case K_CANCEL:
		if (!json_is_integer(json_object_get(res, "matched"))) {
			failf(c, "id %lld: bad cancel result", (long long)id);
			return false;
		}
		break;
	default:
		return false;
	}
	return true;
}

/* Build a random pipelined round into b and the table rq[1..*nids]. */
static void
build_round(struct client *c, struct obuf *b, struct req *rq, int *nids)
{
	int n = 1 + (int)th_randn(&c->rng, MAX_REQ), i, id = 0, target;
	unsigned r;
	bool oneway;
	long long echo;

	memset(rq, 0, sizeof(*rq) * MAX_IDS);
	for (i = 0; i < n; i++) {
		id++;
		r = th_randn(&c->rng, 100);
		oneway = th_randn(&c->rng, 8) == 0;
		if (r < 40) {
			echo = (long long)(th_rand(&c->rng) >> 20);
			rq[id].kind = K_ECHO;
			rq[id].echo = echo;
			obuf_framef(b, "{\"id\":%d,\"endpoint\":\"echo\","
			    "\"data\":%lld%s}", id, echo,
			    oneway ? ",\"oneway\":true" : "");
		} else if (r < 80) {
			rq[id].kind = K_SLOW;
			rq[id].slow_us = 100 + th_randn(&c->rng, 400);
			c->slow_sent++;
			if (th_randn(&c->rng, 3) == 0)
				obuf_framef(b, "{\"id\":%d,\"endpoint\":"
				    "\"slow\",\"data\":%lld,\"deadline_ms\":%u"
				    "%s}", id, (long long)rq[id].slow_us,
				    th_randn(&c->rng, 4), oneway ? ",\"oneway\":true" :
				    "");
			else
				obuf_framef(b, "{\"id\":%d,\"endpoint\":"
				    "\"slow\",\"data\":%lld%s}", id,
				    (long long)rq[id].slow_us,
				    oneway ? ",\"oneway\":true" : "");
		} else {
			/*
			 * Cancel an earlier id, or one not sent yet (it is
			 * remembered and cancels the request on arrival).
			 */
			rq[id].kind = K_CANCEL;
			if (id > 1 && th_randn(&c->rng, 4) != 0)
				target = 1 + (int)th_randn(&c->rng, (unsigned)id - 1);
			else
				target = id + 1 + (int)th_randn(&c->rng, 3);
			oneway = th_randn(&c->rng, 6) == 0;
			obuf_framef(b, "{\"id\":%d,\"endpoint\":\"cancel\","
			    "\"data\":{\"ids\":[%d, 99999]}%s}", id, target,
			    oneway ? ",\"oneway\":true" : "");
		}
		rq[id].expect = !oneway;
	}
	*nids = id;
}

enum mode { M_FULL, M_HALFCLOSE, M_PARTIAL, M_CLOSE, M_RESET };

/* Read until every owed reply arrived (M_FULL) or EOF (M_HALFCLOSE). */
static void
read_all(struct client *c, int fd, struct req *rq, int nids, bool to_eof)
{
	json_t *r;
	int i, owed = 0;

	for (i = 1; i <= nids; i++)
		owed += rq[i].expect;
	while (owed > 0) {
		if ((r = th_recv(fd, READ_MS)) == NULL) {
			for (i = 1; i <= nids; i++)
				if (rq[i].expect && !rq[i].got)
					break;
			failf(c, "%s: %d replies missing (EOF or timeout), "
			    "first id %d kind %d", to_eof ? "half-close" :
			    "full", owed, i, i <= nids ? (int)rq[i].kind : -1);
			return;
		}
		if (!check_reply(c, rq, nids, r)) {
			json_decref(r);
			return;
		}
		json_decref(r);
		owed--;
	}
	if (to_eof) {
		/* Nothing more may come: the server closes after replies. */
		if ((r = th_recv(fd, READ_MS)) != NULL) {
			char *s = json_dumps(r, JSON_COMPACT);

			failf(c, "half-close: extra frame %s", s ? s : "?");
			free(s);
			json_decref(r);
		}
	}
	c->full_rounds++;
}

static void
do_round(struct client *c)
{
	struct req rq[MAX_IDS];
	struct obuf b = { NULL, 0, 0 };
	struct linger lg = { 1, 0 };
	enum mode m;
	json_t *r;
	unsigned k, i;
	int fd, nids;

	build_round(c, &b, rq, &nids);
	k = th_randn(&c->rng, 100);
	m = k < 35 ? M_FULL : k < 50 ? M_HALFCLOSE : k < 70 ? M_PARTIAL :
	    k < 85 ? M_CLOSE : M_RESET;
	c->modes[m]++;
	if ((fd = th_dial(c->port)) == -1) {
		failf(c, "connect: %s", strerror(errno));
		free(b.p);
		return;
	}
	/* Sometimes in two pieces, split inside a frame. */
	if (b.len > 8 && th_randn(&c->rng, 2) == 0) {
		size_t cut = 1 + th_randn(&c->rng, (unsigned)b.len - 1);

		if (th_send_raw(fd, b.p, cut) != 0 ||
		    th_send_raw(fd, b.p + cut, b.len - cut) != 0)
			failf(c, "send: %s", strerror(errno));
	} else if (th_send_raw(fd, b.p, b.len) != 0)
		failf(c, "send: %s", strerror(errno));
	free(b.p);
	switch (m) {
	case M_FULL:
		read_all(c, fd, rq, nids, false);
		break;
	case M_HALFCLOSE:
		shutdown(fd, SHUT_WR);
		read_all(c, fd, rq, nids, true);
		break;
	case M_PARTIAL:
		for (i = th_randn(&c->rng, 6); i > 0; i--) {
			if ((r = th_recv(fd, 200)) == NULL)
				break;
			check_reply(c, rq, nids, r);
			json_decref(r);
		}
		break;
	case M_CLOSE:
		break;
	case M_RESET:
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		if (th_randn(&c->rng, 2) == 0)
			sleep_us(th_randn(&c->rng, 500));
		break;
	}
	close(fd);
}

static void *
client_main(void *arg)
{
	struct client *c = arg;
	int i;

	for (i = 0; i < ROUNDS && c->fail[0] == '\0'; i++)
		do_round(c);
	return NULL;
}

/* ---- the last phase: stop while clients are still sending --------------- */

struct spammer {
	pthread_t	 tid;
	unsigned	 port;
	atomic_bool	 connected;
	atomic_uint	 sent;
	bool		 saw_end;	/* EOF, reset or send error */
	bool		 saw_closing;	/* closing event */
	unsigned	 frames;
};

static void *
spammer_main(void *arg)
{
	struct spammer *s = arg;
	struct timeval tv = { 0, 200000 };
	struct pollfd pfd;
	unsigned char hdr[4];
	json_t *r;
	ssize_t n;
	int fd, id = 0, i;
	uint64_t t0;

	if ((fd = th_dial(s->port)) == -1)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	atomic_store(&s->connected, true);
	t0 = now_ms();
	while (now_ms() - t0 < 15000) {
		for (i = 0; i < 4; i++, id++)
			if (th_sendf(fd, "{\"id\":%d,\"endpoint\":\"%s\","
			    "\"data\":%d}", id, (id & 1) ? "slow" : "echo",
			    200) != 0) {
				s->saw_end = true;
				goto out;
			}
		atomic_fetch_add(&s->sent, 4);
		/* Read whatever is there; stop at EOF or reset. */
		for (;;) {
			pfd.fd = fd;
			pfd.events = POLLIN;
			if (poll(&pfd, 1, 1) <= 0)
				break;
			n = recv(fd, hdr, 1, MSG_PEEK);
			if (n <= 0) {
				s->saw_end = true;
				goto out;
			}
			if ((r = th_recv(fd, 1000)) == NULL) {
				s->saw_end = true;
				goto out;
			}
			s->frames++;
			if (json_object_get(r, "event") != NULL)
				s->saw_closing = true;
			json_decref(r);
		}
	}
out:
	close(fd);
	return NULL;
}

/* ---- the test ----------------------------------------------------------- */

/* Ask the server for status on a fresh connection. */
static json_t *
status(unsigned port)
{
	json_t *r, *res;
	int fd = th_connect(port);

	th_send(fd, "{\"id\":1,\"endpoint\":\"status\"}");
	r = th_recv(fd, 0);
	close(fd);
	if (r == NULL)
		return NULL;
	res = json_incref(json_object_get(r, "result"));
	json_decref(r);
	return res;
}

static json_int_t
jint(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static void
test_stress(void **state)
{
	static struct client cl[NCLIENTS];
	static struct spammer sp[NSPAMMERS];
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	json_t *st = NULL;
	unsigned port, replies = 0, slow_results = 0, slow_sent = 0;
	unsigned full = 0, modes[5] = { 0 };
	uint64_t t0;
	int i, j;

	(void)state;
	assert_int_equal(witch_server_config_set_workers(cfg, 2), 0);
	assert_int_equal(witch_server_config_set_queue_depth(cfg,
	    QUEUE_DEPTH), 0);
	assert_int_equal(witch_server_config_set_drain_timeout(cfg, 200), 0);
	srv = th_server_start(cfg, reg, NULL);
	witch_server_config_free(cfg);
	port = witch_server_port(srv);

	for (i = 0; i < NCLIENTS; i++) {
		cl[i].idx = i;
		cl[i].port = port;
		cl[i].rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
		assert_int_equal(pthread_create(&cl[i].tid, NULL, client_main,
		    &cl[i]), 0);
	}
	for (i = 0; i < NCLIENTS; i++) {
		assert_int_equal(pthread_join(cl[i].tid, NULL), 0);
		if (cl[i].fail[0] != '\0')
			fail_msg("client %d: %s", i, cl[i].fail);
		replies += cl[i].replies;
		slow_results += cl[i].slow_results;
		slow_sent += cl[i].slow_sent;
		full += cl[i].full_rounds;
		for (j = 0; j < 5; j++)
			modes[j] += cl[i].modes[j];
	}

	/* Every client has closed: clients must come back to 0 (1: us). */
	t0 = now_ms();
	for (;;) {
		json_decref(st);
		assert_non_null(st = status(port));
		if (jint(st, "clients") == 1)
			break;
		if (now_ms() - t0 > SETTLE_MS)
			fail_msg("clients stuck at %lld (want 1: the status "
			    "connection)", (long long)jint(st, "clients") - 1);
		sleep_us(20000);
	}
	/* Every reply counted; no slow result without a handler call. */
	assert_true((json_int_t)replies <= jint(st, "requests_served") +
	    jint(st, "requests_failed"));
	assert_true(slow_results <= atomic_load(&slow_calls));
	assert_true(atomic_load(&slow_calls) <= slow_sent);
	assert_int_equal(jint(st, "queue_depth"), 0);
	fprintf(stderr, "stress: %d clients x %d rounds (full %u half %u "
	    "partial %u close %u reset %u; %u read to the end): %u replies, "
	    "served %lld failed %lld overloaded %lld; slow sent %u called %u "
	    "(%u saw cancel) ok %u\n", NCLIENTS, ROUNDS, modes[M_FULL],
	    modes[M_HALFCLOSE], modes[M_PARTIAL], modes[M_CLOSE],
	    modes[M_RESET], full, replies,
	    (long long)jint(st, "requests_served"),
	    (long long)jint(st, "requests_failed"),
	    (long long)jint(st, "overloaded"), slow_sent,
	    atomic_load(&slow_calls), atomic_load(&slow_saw_cancel),
	    slow_results);
	json_decref(st);
	assert_true(full > 0);

	/* Stop while two clients are still sending. */
	for (i = 0; i < NSPAMMERS; i++) {
		sp[i].port = port;
		atomic_init(&sp[i].connected, false);
		atomic_init(&sp[i].sent, 0);
		assert_int_equal(pthread_create(&sp[i].tid, NULL, spammer_main,
		    &sp[i]), 0);
	}
	t0 = now_ms();
	for (i = 0; i < NSPAMMERS; i++)
		while (atomic_load(&sp[i].sent) < 16) {
			if (now_ms() - t0 > 10000)
				fail_msg("spammer %d never got going", i);
			sleep_us(1000);
		}
	assert_int_equal(witch_server_stop(srv, 50), 0);
	for (i = 0; i < NSPAMMERS; i++) {
		assert_int_equal(pthread_join(sp[i].tid, NULL), 0);
		assert_true(atomic_load(&sp[i].connected));
		/* The server closed on them; nobody waited for 15 s. */
		assert_true(sp[i].saw_end);
	}
	assert_int_equal(witch_server_stop(srv, 0), 0);	/* idempotent */
	witch_server_free(srv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stress),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
