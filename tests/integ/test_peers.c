/*
 * test_peers: server peers over loopback, in-process servers joined by
 * seeds (loopback has no broadcast).  Three servers of project A (a
 * chain of seeds: one seed is enough to join), one of project B seeded
 * to an A server (never linked, never listed); broadcasts reach each
 * other A server exactly once, targeted messages only their target, an
 * unknown peer is a clear error; a query of all peers names every
 * answer; heartbeats of a server whose pool is saturated keep it alive;
 * a fake peer that stops reading fills a bounded queue, the drops are
 * counted and reported, and it ends dead; a stop delivers what the
 * inbox already holds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <witch/witch.h>

#include "integ/harness.h"

#define HB_MS 100
#define MAX_SEEN 256

/* What one server's callbacks saw. */
struct seen {
	pthread_mutex_t	 mu;
	char		 name[16];
	size_t		 nmsg;
	char		 from[MAX_SEEN][64];
	json_t		*msg[MAX_SEEN];
	atomic_int	 not_alive;	/* transitions of a watched peer */
	char		 watch[64];	/* name watched ("" none) */
	atomic_ullong	 dropped;	/* largest drop count reported */
	atomic_int	 dead_seen;
	atomic_int	 slow_ms;	/* the handler sleeps this long */
	atomic_int	 entered;	/* handler calls begun */
};

static void
on_msg(witch_server_t *srv, const char *from_id, const char *from_name,
    json_t *message, void *ud)
{
	struct seen *s = ud;

	atomic_fetch_add(&s->entered, 1);
	if (atomic_load(&s->slow_ms) > 0)
		th_sleep_ms((unsigned)atomic_load(&s->slow_ms));
	pthread_mutex_lock(&s->mu);
	if (s->nmsg < MAX_SEEN) {
		strlcpy(s->from[s->nmsg], from_name, sizeof(s->from[0]));
		s->msg[s->nmsg++] = json_incref(message);
	}
	pthread_mutex_unlock(&s->mu);
}

static void
on_status(witch_server_t *srv, const witch_peer_info_t *pi,
    enum witch_peer_status old, void *ud)
{
	struct seen *s = ud;

	if (s->watch[0] != '\0' && strcmp(pi->name, s->watch) == 0 &&
	    old == WITCH_PEER_ALIVE && pi->status != WITCH_PEER_ALIVE)
		atomic_fetch_add(&s->not_alive, 1);
	if (pi->dropped > atomic_load(&s->dropped))
		atomic_store(&s->dropped, pi->dropped);
	if (pi->status == WITCH_PEER_DEAD)
		atomic_fetch_add(&s->dead_seen, 1);
}

static void
seen_init(struct seen *s, const char *name)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	strlcpy(s->name, name, sizeof(s->name));
}

static void
seen_free(struct seen *s)
{
	size_t i;

	for (i = 0; i < s->nmsg; i++)
		json_decref(s->msg[i]);
	pthread_mutex_destroy(&s->mu);
}

/* Messages s got from from_name whose "n" is n. */
static int
count_msgs(struct seen *s, const char *from_name, int n)
{
	size_t i;
	int k = 0;

	pthread_mutex_lock(&s->mu);
	for (i = 0; i < s->nmsg; i++)
		if (strcmp(s->from[i], from_name) == 0 &&
		    json_integer_value(json_object_get(s->msg[i], "n")) == n)
			k++;
	pthread_mutex_unlock(&s->mu);
	return k;
}

/* Slow endpoint: holds a worker for 300 ms. */
static int
h_slow(witch_request_t *req, void *ud)
{
	usleep(300000);
	return witch_request_reply(req, json_true());
}

static void
reg_slow(witch_server_t *srv, void *arg)
{
	assert_int_equal(witch_server_register_endpoint(srv, "slow", h_slow,
	    NULL), 0);
}

/* WITCH_TEST_LOG=1: the servers' logs on stderr. */
static void
log_stderr(int level, const char *msg, void *ud)
{
	fprintf(stderr, "[%s] %s\n", (const char *)ud, msg);
}

static witch_server_t *
start_peer(const char *name, const char *project, unsigned seed_port,
    struct seen *s, unsigned workers)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	char seed[64];

	assert_int_equal(witch_server_config_set_name(cfg, name), 0);
	assert_int_equal(witch_server_config_set_project_id(cfg, project), 0);
	assert_int_equal(witch_server_config_set_peering(cfg, true), 0);
	assert_int_equal(witch_server_config_set_peer_heartbeat(cfg, HB_MS),
	    0);
	if (workers > 0)
		assert_int_equal(witch_server_config_set_workers(cfg, workers),
		    0);
	if (seed_port != 0) {
		snprintf(seed, sizeof(seed), "127.0.0.1:%u", seed_port);
		assert_int_equal(witch_server_config_add_peer_seed(cfg, seed),
		    0);
	}
	if (getenv("WITCH_TEST_LOG") != NULL)
		witch_server_config_set_logger(cfg, log_stderr, s->name);
	witch_server_config_set_peer_message_handler(cfg, on_msg, s);
	witch_server_config_set_peer_status_callback(cfg, on_status, s);
	/* Every server has the slow endpoint: the same source hash. */
	srv = th_server_start(cfg, reg_slow, NULL);
	witch_server_config_free(cfg);
	return srv;
}

/* Status of the peer named name in srv's table ("" if not listed). */
static const char *
peer_status(witch_server_t *srv, const char *name, int *nlisted)
{
	static __thread char st[32];
	json_t *a, *v;
	size_t i;

	st[0] = '\0';
	assert_int_equal(witch_server_peers(srv, &a), 0);
	if (nlisted != NULL)
		*nlisted = (int)json_array_size(a);
	json_array_foreach(a, i, v) {
		if (strcmp(json_string_value(json_object_get(v, "name")),
		    name) == 0)
			strlcpy(st, json_string_value(json_object_get(v,
			    "status")), sizeof(st));
	}
	json_decref(a);
	return st;
}

/* Wait until srv lists each of names alive and exactly that many rows. */
static bool
await_alive(witch_server_t *srv, const char *const *names, int n,
    unsigned ms)
{
	uint64_t end = th_now_ms() + ms;
	int i, listed;
	bool ok;

	do {
		ok = true;
		for (i = 0; i < n && ok; i++)
			ok = strcmp(peer_status(srv, names[i], &listed),
			    "alive") == 0;
		if (ok && listed == n)
			return true;
		th_sleep_ms(20);
	} while (th_now_ms() < end);
	return false;
}

static void
test_mesh(void **state)
{
	struct seen sa, sb, sc, sx;
	witch_server_t *a, *b, *c, *x;
	const char *ab[] = { "b", "c" }, *ba[] = { "a", "c" };
	const char *ca[] = { "a", "b" };
	json_t *msg, *res, *ans;
	uint64_t t0;
	int rc, listed;

	seen_init(&sa, "a");
	seen_init(&sb, "b");
	seen_init(&sc, "c");
	seen_init(&sx, "x");
	a = start_peer("a", "projA", 0, &sa, 0);
	b = start_peer("b", "projA", witch_server_port(a), &sb, 0);
	/* c knows only b: it learns a from b's peer list. */
	c = start_peer("c", "projA", witch_server_port(b), &sc, 0);
	/* x is of project B and seeded to a: never linked, never listed. */
	x = start_peer("x", "projB", witch_server_port(a), &sx, 0);
	t0 = th_now_ms();
	assert_true(await_alive(a, ab, 2, 10000));
	assert_true(await_alive(b, ba, 2, 10000));
	assert_true(await_alive(c, ca, 2, 10000));
	print_message("# mesh of three alive after %llu ms\n",
	    (unsigned long long)(th_now_ms() - t0));
	th_sleep_ms(3 * HB_MS);
	assert_string_equal(peer_status(a, "x", &listed), "");
	assert_int_equal(listed, 2);
	assert_string_equal(peer_status(x, "a", &listed), "");
	assert_int_equal(listed, 0);

	/* A broadcast reaches b and c once each, never x. */
	msg = json_pack("{s:i}", "n", 1);
	assert_int_equal(witch_server_broadcast_to_peers(a, msg), 2);
	json_decref(msg);
	t0 = th_now_ms();
	while ((count_msgs(&sb, "a", 1) < 1 || count_msgs(&sc, "a", 1) < 1) &&
	    th_now_ms() - t0 < 5000)
		th_sleep_ms(10);
	th_sleep_ms(3 * HB_MS);
	assert_int_equal(count_msgs(&sb, "a", 1), 1);
	assert_int_equal(count_msgs(&sc, "a", 1), 1);
	assert_int_equal(count_msgs(&sx, "a", 1), 0);
	assert_int_equal(count_msgs(&sa, "a", 1), 0);

	/* c broadcasts too (whatever the link's direction). */
	msg = json_pack("{s:i}", "n", 2);
	assert_int_equal(witch_server_broadcast_to_peers(c, msg), 2);
	json_decref(msg);
	/* A targeted message by name reaches only its target. */
	msg = json_pack("{s:i}", "n", 3);
	assert_int_equal(witch_server_send_to_peer(b, "c", msg), 0);
	rc = witch_server_send_to_peer(b, "nobody", msg);
	assert_int_equal(rc, WITCH_ENO_PEER);
	assert_int_equal(witch_server_send_to_peer(a, "x", msg),
	    WITCH_ENO_PEER);
	assert_int_equal(witch_server_broadcast_to_peers(x, msg), 0);
	json_decref(msg);
	t0 = th_now_ms();
	while ((count_msgs(&sa, "c", 2) < 1 || count_msgs(&sb, "c", 2) < 1 ||
	    count_msgs(&sc, "b", 3) < 1) && th_now_ms() - t0 < 5000)
		th_sleep_ms(10);
	th_sleep_ms(3 * HB_MS);
	assert_int_equal(count_msgs(&sa, "c", 2), 1);
	assert_int_equal(count_msgs(&sb, "c", 2), 1);
	assert_int_equal(count_msgs(&sc, "b", 3), 1);
	assert_int_equal(count_msgs(&sa, "b", 3), 0);

	/* Order per sender: 50 messages from a to b arrive in order. */
	for (rc = 100; rc < 150; rc++) {
		msg = json_pack("{s:i}", "n", rc);
		assert_int_equal(witch_server_send_to_peer(a, "b", msg), 0);
		json_decref(msg);
	}
	t0 = th_now_ms();
	while (count_msgs(&sb, "a", 149) < 1 && th_now_ms() - t0 < 5000)
		th_sleep_ms(10);
	{
		size_t i;
		int want = 100;

		pthread_mutex_lock(&sb.mu);
		for (i = 0; i < sb.nmsg; i++) {
			json_int_t n = json_integer_value(json_object_get(
			    sb.msg[i], "n"));

			if (strcmp(sb.from[i], "a") == 0 && n >= 100)
				assert_int_equal(n, want++);
		}
		pthread_mutex_unlock(&sb.mu);
		assert_int_equal(want, 150);
	}

	/* A query of all peers: both answer. */
	assert_int_equal(witch_server_query_peers(a, "info", NULL, 2000,
	    &res), 0);
	ans = json_object_get(res, "answers");
	assert_int_equal(json_array_size(ans), 2);
	assert_int_equal(json_array_size(json_object_get(res, "missing")), 0);
	{
		size_t i;
		json_t *v;

		json_array_foreach(ans, i, v)
			assert_string_equal(json_string_value(json_object_get(
			    json_object_get(v, "result"), "project_id")),
			    "projA");
	}
	json_decref(res);
	/* An endpoint that is slower than the timeout: named missing. */
	assert_int_equal(witch_server_query_peers(a, "slow", NULL, 100,
	    &res), 0);
	assert_int_equal(json_array_size(json_object_get(res, "missing")), 2);
	json_decref(res);
	/* An unknown endpoint: each peer's error. */
	assert_int_equal(witch_server_query_peers(a, "nope", NULL, 2000,
	    &res), 0);
	ans = json_object_get(res, "answers");
	assert_int_equal(json_array_size(ans), 2);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_array_get(ans, 0), "error"), "code")), "unknown_endpoint");
	json_decref(res);

	/* b stops: a and c see it dead within dead intervals + a check. */
	t0 = th_now_ms();
	witch_server_free(b);
	while ((strcmp(peer_status(a, "b", NULL), "dead") != 0 ||
	    strcmp(peer_status(c, "b", NULL), "dead") != 0) &&
	    th_now_ms() - t0 < 5000)
		th_sleep_ms(5);
	print_message("# stopped peer dead after %llu ms (bound %d)\n",
	    (unsigned long long)(th_now_ms() - t0), 4 * HB_MS);
	assert_string_equal(peer_status(a, "b", NULL), "dead");
	assert_string_equal(peer_status(c, "b", NULL), "dead");
	assert_true(th_now_ms() - t0 <= 4 * HB_MS + 200);
	msg = json_pack("{s:i}", "n", 4);
	assert_int_equal(witch_server_send_to_peer(a, "b", msg),
	    WITCH_EPEER_DOWN);
	json_decref(msg);

	witch_server_free(a);
	witch_server_free(c);
	witch_server_free(x);
	seen_free(&sa);
	seen_free(&sb);
	seen_free(&sc);
	seen_free(&sx);
}

/* Saturate srv's one worker with slow requests for ms. */
struct flood {
	unsigned	 port;
	unsigned	 ms;
};

static void *
flood_main(void *arg)
{
	struct flood *f = arg;
	uint64_t end = th_now_ms() + f->ms;
	int fd = th_connect(f->port), i = 0;
	json_t *r;

	th_send(fd, "{\"id\":0,\"endpoint\":\"hello\"}");
	json_decref(th_recv(fd, 0));
	while (th_now_ms() < end) {
		/* Keep about 20 waiting: the pool is never idle. */
		for (; i < 20; i++)
			th_sendf(fd, "{\"id\":%d,\"endpoint\":\"slow\"}",
			    i + 1);
		if ((r = th_recv(fd, 1000)) != NULL) {
			json_decref(r);
			i--;
		}
	}
	close(fd);
	return NULL;
}

static void
test_busy_not_dead(void **state)
{
	struct seen sa, sb;
	witch_server_t *a, *b;
	const char *na[] = { "b" }, *nb[] = { "a" };
	struct flood f;
	pthread_t t;

	seen_init(&sa, "a");
	seen_init(&sb, "b");
	strlcpy(sa.watch, "b", sizeof(sa.watch));
	strlcpy(sb.watch, "a", sizeof(sb.watch));
	a = start_peer("a", "projA", 0, &sa, 1);
	b = start_peer("b", "projA", witch_server_port(a), &sb, 1);
	assert_true(await_alive(a, na, 1, 10000));
	assert_true(await_alive(b, nb, 1, 10000));
	/* Both pools busy for 20 heartbeat intervals. */
	f.port = witch_server_port(a);
	f.ms = 20 * HB_MS;
	assert_int_equal(pthread_create(&t, NULL, flood_main, &f), 0);
	{
		struct flood g = { witch_server_port(b), 20 * HB_MS };
		pthread_t u;

		assert_int_equal(pthread_create(&u, NULL, flood_main, &g), 0);
		pthread_join(u, NULL);
	}
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&sa.not_alive), 0);
	assert_int_equal(atomic_load(&sb.not_alive), 0);
	assert_string_equal(peer_status(a, "b", NULL), "alive");
	witch_server_free(a);
	witch_server_free(b);
	seen_free(&sa);
	seen_free(&sb);
}

/*
 * A fake peer: accepts a's link, answers hello and peer_hello, then
 * never reads again.  Its id is all 'f': larger than any, so a dials it.
 */
struct fake {
	int		 lfd;
	unsigned	 port;
	const char	*hash;
	atomic_int	 hello_done;
	atomic_int	 stop;
};

static void *
fake_main(void *arg)
{
	struct fake *fk = arg;
	json_t *req;
	int fd, n;

	if ((fd = accept(fk->lfd, NULL, NULL)) < 0)
		return NULL;
	for (n = 0; n < 2; n++) {
		if ((req = th_recv(fd, 5000)) == NULL)
			break;
		if (strcmp(json_string_value(json_object_get(req,
		    "endpoint")), "hello") == 0)
			th_sendf(fd, "{\"id\":%lld,\"result\":{\"name\":"
			    "\"fake\",\"server_id\":\"%s\",\"protocol\":\"v1\","
			    "\"protocols\":[\"v1\"],\"source_hash\":\"%s\","
			    "\"project_id\":\"projA\",\"client_id\":1}}",
			    (long long)th_id(req),
			    "ffffffffffffffffffffffffffffffff", fk->hash);
		else
			th_sendf(fd, "{\"id\":%lld,\"result\":{\"server_id\":"
			    "\"%s\",\"name\":\"fake\"}}", (long long)th_id(req),
			    "ffffffffffffffffffffffffffffffff");
		json_decref(req);
	}
	atomic_store(&fk->hello_done, 1);
	/* Never read again; hold the socket until told. */
	while (!atomic_load(&fk->stop))
		usleep(10000);
	close(fd);
	return NULL;
}

static void
test_slow_reader(void **state)
{
	struct seen sa;
	witch_server_t *a;
	struct fake fk;
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	pthread_t t;
	json_t *msg, *intro, *r;
	uint64_t t0;
	int fd, i, over = 0, rc;
	char big[4096];

	seen_init(&sa, "a");
	{
		witch_server_config_t *cfg = th_config();

		witch_server_config_set_name(cfg, "a");
		witch_server_config_set_project_id(cfg, "projA");
		witch_server_config_set_peering(cfg, true);
		witch_server_config_set_peer_heartbeat(cfg, HB_MS);
		assert_int_equal(witch_server_config_set_peer_queue(cfg, 16),
		    0);
		assert_int_equal(witch_server_config_set_peer_queue(cfg, 0),
		    WITCH_EINVAL);
		witch_server_config_set_peer_status_callback(cfg, on_status,
		    &sa);
		a = th_server_start(cfg, reg_slow, NULL);
		witch_server_config_free(cfg);
	}
	memset(&fk, 0, sizeof(fk));
	fk.hash = witch_server_source_hash(a);
	fk.lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fk.lfd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	assert_int_equal(listen(fk.lfd, 4), 0);
	getsockname(fk.lfd, (struct sockaddr *)&sin, &sl);
	fk.port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&t, NULL, fake_main, &fk), 0);
	/* Introduce the fake to a (as a seed contact would). */
	fd = th_connect(witch_server_port(a));
	intro = json_pack("{s:s, s:{s:s, s:s, s:i, s:s, s:s}}", "endpoint",
	    "peer_introduce", "data", "server_id",
	    "ffffffffffffffffffffffffffffffff", "name", "fake", "port",
	    fk.port, "project_id", "projA", "source_hash", fk.hash);
	{
		char *txt = json_dumps(intro, 0);

		th_sendf(fd, "{\"id\":1,%s", txt + 1);
		free(txt);
	}
	json_decref(intro);
	r = th_recv_ok(fd, 0);
	assert_null(th_err_code(r));
	json_decref(r);
	t0 = th_now_ms();
	while (strcmp(peer_status(a, "fake", NULL), "alive") != 0 &&
	    th_now_ms() - t0 < 5000)
		th_sleep_ms(5);
	assert_string_equal(peer_status(a, "fake", NULL), "alive");
	/* Flood it: the window and the queue of 16 fill, the rest drop. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	msg = json_pack("{s:s}", "blob", big);
	for (i = 0; i < 2000; i++) {
		rc = witch_server_send_to_peer(a, "fake", msg);
		if (rc == WITCH_EOVERLOADED)
			over++;
		else if (rc != 0)
			break;	/* it went suspect */
	}
	json_decref(msg);
	print_message("# %d of %d sends refused: queue full\n", over, i);
	assert_true(over > 0);
	/* Dropped messages are reported; the silent peer ends dead. */
	t0 = th_now_ms();
	while ((atomic_load(&sa.dropped) == 0 ||
	    atomic_load(&sa.dead_seen) == 0) && th_now_ms() - t0 < 5000)
		th_sleep_ms(10);
	assert_true(atomic_load(&sa.dropped) >= (unsigned long long)over);
	assert_true(atomic_load(&sa.dead_seen) > 0);
	atomic_store(&fk.stop, 1);
	pthread_join(t, NULL);
	close(fk.lfd);
	close(fd);
	witch_server_free(a);
	seen_free(&sa);
}

/*
 * A fake peer that answers hello and peer_hello, then sends garbage and
 * hangs up, every time: the dialer drops the link, redials with backoff
 * (never spins), and keeps serving.
 */
struct garbage {
	int		 lfd;
	const char	*hash;
	atomic_int	 accepts;
	atomic_int	 stop;
};

static void *
garbage_main(void *arg)
{
	struct garbage *g = arg;
	json_t *req;
	int fd, n;

	while (!atomic_load(&g->stop)) {
		struct pollfd pfd = { g->lfd, POLLIN, 0 };

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		if ((fd = accept(g->lfd, NULL, NULL)) < 0)
			continue;
		atomic_fetch_add(&g->accepts, 1);
		for (n = 0; n < 2; n++) {
			if ((req = th_recv(fd, 2000)) == NULL)
				break;
			if (n == 0)
				th_sendf(fd, "{\"id\":%lld,\"result\":{\"name\":"
				    "\"junk\",\"server_id\":\"%s\",\"protocol\":"
				    "\"v1\",\"protocols\":[\"v1\"],\"source_hash\":"
				    "\"%s\",\"project_id\":\"projA\","
				    "\"client_id\":1}}", (long long)th_id(req),
				    "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", g->hash);
			else
				th_sendf(fd, "{\"id\":%lld,\"result\":{"
				    "\"server_id\":\"%s\",\"name\":\"junk\"}}",
				    (long long)th_id(req),
				    "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
			json_decref(req);
		}
		th_send(fd, "this is not JSON");
		close(fd);
	}
	return NULL;
}

static void
test_garbage_peer(void **state)
{
	struct seen sa;
	struct garbage g;
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	witch_server_t *a;
	pthread_t t;
	char intro[512];
	int fd, n;
	json_t *r;

	seen_init(&sa, "a");
	a = start_peer("a", "projA", 0, &sa, 0);
	memset(&g, 0, sizeof(g));
	g.hash = witch_server_source_hash(a);
	g.lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(g.lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(g.lfd, 16), 0);
	getsockname(g.lfd, (struct sockaddr *)&sin, &sl);
	assert_int_equal(pthread_create(&t, NULL, garbage_main, &g), 0);
	fd = th_connect(witch_server_port(a));
	snprintf(intro, sizeof(intro), "{\"id\":1,\"endpoint\":"
	    "\"peer_introduce\",\"data\":{\"server_id\":\"%s\",\"name\":"
	    "\"junk\",\"port\":%u,\"project_id\":\"projA\","
	    "\"source_hash\":\"%s\"}}", "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
	    (unsigned)ntohs(sin.sin_port), g.hash);
	th_send(fd, intro);
	th_expect_reply(fd, 1, NULL);
	/* 20 heartbeat intervals: backoff doubles up to 10 intervals. */
	th_sleep_ms(20 * HB_MS);
	n = atomic_load(&g.accepts);
	print_message("# %d links in %d ms to a peer that sends garbage\n", n,
	    20 * HB_MS);
	assert_true(n >= 2);
	assert_true(n <= 10);
	/* a still serves. */
	th_send(fd, "{\"id\":2,\"endpoint\":\"ping\"}");
	r = th_recv_ok(fd, 0);
	assert_null(th_err_code(r));
	json_decref(r);
	atomic_store(&g.stop, 1);
	pthread_join(t, NULL);
	close(g.lfd);
	close(fd);
	witch_server_free(a);
	seen_free(&sa);
}

static void
test_bad_input(void **state)
{
	witch_server_config_t *cfg;
	witch_server_t *off;
	json_t *r, *msg;
	int fd;

	cfg = th_config();
	assert_int_equal(witch_server_config_add_peer_seed(cfg, "nohost"),
	    WITCH_EINVAL);
	assert_int_equal(witch_server_config_add_peer_seed(cfg, "h:0"),
	    WITCH_EINVAL);
	assert_int_equal(witch_server_config_add_peer_seed(cfg, "h:70000"),
	    WITCH_EINVAL);
	assert_int_equal(witch_server_config_add_peer_seed(cfg, "[::1]:9"),
	    0);
	assert_int_equal(witch_server_config_set_peer_heartbeat(cfg, 10),
	    WITCH_EINVAL);
	assert_int_equal(witch_server_config_set_peer_thresholds(cfg, 3, 3),
	    WITCH_EINVAL);
	assert_int_equal(witch_server_config_set_peer_thresholds(cfg, 1, 11),
	    WITCH_EINVAL);
	assert_int_equal(witch_server_config_add_peer_seed(cfg, NULL), 0);
	/* Peering off: the API and the endpoints say so. */
	off = th_server_start(cfg, NULL, NULL);
	witch_server_config_free(cfg);
	msg = json_pack("{s:i}", "n", 1);
	assert_int_equal(witch_server_broadcast_to_peers(off, msg),
	    WITCH_ESTATE);
	assert_int_equal(witch_server_send_to_peer(off, "x", msg),
	    WITCH_ESTATE);
	json_decref(msg);
	fd = th_connect(witch_server_port(off));
	th_send(fd, "{\"id\":1,\"endpoint\":\"peer_broadcast\",\"data\":"
	    "{\"message\":1}}");
	th_expect_reply(fd, 1, "invalid_state");
	th_send(fd, "{\"id\":2,\"endpoint\":\"peer_list\"}");
	r = th_recv_ok(fd, 0);
	assert_int_equal(json_array_size(json_object_get(r, "result")), 0);
	json_decref(r);
	close(fd);
	witch_server_free(off);
}

/* A lying or foreign peer_hello is refused, never listed. */
static void
test_lies(void **state)
{
	struct seen sa;
	witch_server_t *a;
	int fd;
	int listed;
	const char *id;

	seen_init(&sa, "a");
	a = start_peer("a", "projA", 0, &sa, 0);
	id = witch_server_id(a);
	fd = th_connect(witch_server_port(a));
	th_send(fd, "{\"id\":0,\"endpoint\":\"hello\"}");
	json_decref(th_recv_ok(fd, 0));
	/* Another project. */
	th_sendf(fd, "{\"id\":1,\"endpoint\":\"peer_hello\",\"data\":{"
	    "\"server_id\":\"ffffffffffffffffffffffffffffffff\",\"name\":"
	    "\"liar\",\"port\":9,\"project_id\":\"projB\",\"source_hash\":"
	    "\"%s\"}}", witch_server_source_hash(a));
	th_expect_reply(fd, 1, "unauthorized");
	/* A larger id than ours claims to dial: the wrong side. */
	th_sendf(fd, "{\"id\":2,\"endpoint\":\"peer_hello\",\"data\":{"
	    "\"server_id\":\"ffffffffffffffffffffffffffffffff\",\"name\":"
	    "\"liar\",\"port\":9,\"project_id\":\"projA\",\"source_hash\":"
	    "\"%s\"}}", witch_server_source_hash(a));
	assert_true(strcmp(id, "ffffffffffffffffffffffffffffffff") < 0);
	th_expect_reply(fd, 2, "invalid_request");
	/* Garbage. */
	th_send(fd, "{\"id\":3,\"endpoint\":\"peer_hello\",\"data\":[1]}");
	th_expect_reply(fd, 3, "invalid_request");
	/* Heartbeats and messages without a hello. */
	th_send(fd, "{\"id\":4,\"endpoint\":\"peer_ping\"}");
	th_expect_reply(fd, 4, "invalid_state");
	th_send(fd, "{\"id\":5,\"endpoint\":\"peer_msg\",\"data\":{\"seq\":1,"
	    "\"message\":1}}");
	th_expect_reply(fd, 5, "invalid_state");
	/* Another source hash: listed incompatible, no messages. */
	th_sendf(fd, "{\"id\":6,\"endpoint\":\"peer_hello\",\"data\":{"
	    "\"server_id\":\"00000000000000000000000000000000\",\"name\":"
	    "\"other\",\"port\":9,\"project_id\":\"projA\",\"source_hash\":"
	    "\"0123456789abcdef0123456789abcdef\"}}");
	th_expect_reply(fd, 6, "incompatible");
	assert_string_equal(peer_status(a, "liar", &listed), "");
	assert_string_equal(peer_status(a, "other", &listed), "incompatible");
	assert_int_equal(listed, 1);
	{
		json_t *msg = json_pack("{s:i}", "n", 1);

		assert_int_equal(witch_server_send_to_peer(a, "other", msg),
		    WITCH_EINCOMPATIBLE);
		assert_int_equal(witch_server_broadcast_to_peers(a, msg), 0);
		json_decref(msg);
	}
	close(fd);
	witch_server_free(a);
	seen_free(&sa);
}

/*
 * Churn: threads broadcast, send, list and post events to a server while
 * peers join and leave (their links drop) and, at last, while it stops;
 * nothing may race (TSan), crash or block, and every call after the stop
 * is refused with WITCH_ESTATE.
 */
struct churn {
	witch_server_t	*srv;
	atomic_bool	 halt;
	atomic_int	 after;		/* calls that saw the stop */
	int		 k;
};

static void *
churn_main(void *arg)
{
	struct churn *ch = arg;
	json_t *msg = json_pack("{s:i}", "n", ch->k), *a;
	int rc;

	while (!atomic_load(&ch->halt)) {
		rc = witch_server_broadcast_to_peers(ch->srv, msg);
		assert_true(rc >= 0 || rc == WITCH_ESTATE);
		rc = witch_server_send_to_peer(ch->srv, "b", msg);
		assert_true(rc == 0 || rc == WITCH_ENO_PEER ||
		    rc == WITCH_EPEER_DOWN || rc == WITCH_EOVERLOADED ||
		    rc == WITCH_ESTATE);
		/* An id no connection has (or had): discarded quietly. */
		rc = witch_server_send_event(ch->srv, 1u << 20, "x", msg);
		assert_true(rc == 0 || rc == WITCH_ESTATE ||
		    rc == WITCH_EOVERLOADED);
		if (rc == WITCH_ESTATE)
			atomic_fetch_add(&ch->after, 1);
		assert_int_equal(witch_server_peers(ch->srv, &a), 0);
		json_decref(a);
	}
	json_decref(msg);
	return NULL;
}

static void
test_churn(void **state)
{
	struct seen sa, sb;
	struct churn ch[4];
	pthread_t thr[4];
	witch_server_t *a, *b;
	const char *bn[] = { "b" };
	int i, round;

	seen_init(&sa, "a");
	a = start_peer("a", "projA", 0, &sa, 0);
	for (i = 0; i < 4; i++) {
		ch[i].srv = a;
		atomic_init(&ch[i].halt, false);
		atomic_init(&ch[i].after, 0);
		ch[i].k = i;
		assert_int_equal(pthread_create(&thr[i], NULL, churn_main,
		    &ch[i]), 0);
	}
	for (round = 0; round < 4; round++) {
		seen_init(&sb, "b");
		b = start_peer("b", "projA", witch_server_port(a), &sb, 0);
		(void)await_alive(a, bn, 1, 40 * HB_MS);
		th_sleep_ms(2 * HB_MS);
		witch_server_free(b);	/* a's link to it drops */
		seen_free(&sb);
		th_sleep_ms(round * HB_MS);
	}
	/* Stop under fire, then wait for each thread to see it. */
	assert_int_equal(witch_server_stop(a, 0), 0);
	for (i = 0; i < 4; i++) {
		while (atomic_load(&ch[i].after) == 0)
			th_sleep_ms(1);
		atomic_store(&ch[i].halt, true);
		pthread_join(thr[i], NULL);
	}
	witch_server_free(a);
	seen_free(&sa);
}

/* A status callback that tries to stop (and free) its own server. */
static atomic_int stop_rc = 1;

static void
on_status_stop(witch_server_t *srv, const witch_peer_info_t *pi,
    enum witch_peer_status old, void *ud)
{
	if (atomic_load(&stop_rc) == 1) {
		witch_server_free(srv);		/* must do nothing */
		atomic_store(&stop_rc, witch_server_stop(srv, 0));
	}
}

/*
 * A peer callback cannot stop or free its server (they would join the
 * peer thread from itself): WITCH_ESTATE, and the server goes on.
 */
static void
test_stop_from_callback(void **state)
{
	witch_server_config_t *cfg = th_config();
	struct seen sb;
	witch_server_t *a, *b;
	const char *bn[] = { "b" };
	uint64_t t0;

	witch_server_config_set_name(cfg, "a");
	witch_server_config_set_project_id(cfg, "projA");
	witch_server_config_set_peering(cfg, true);
	witch_server_config_set_peer_heartbeat(cfg, HB_MS);
	witch_server_config_set_peer_status_callback(cfg, on_status_stop,
	    NULL);
	a = th_server_start(cfg, reg_slow, NULL);
	witch_server_config_free(cfg);
	seen_init(&sb, "b");
	b = start_peer("b", "projA", witch_server_port(a), &sb, 0);
	t0 = th_now_ms();
	while (atomic_load(&stop_rc) == 1 && th_now_ms() - t0 < 10000)
		th_sleep_ms(10);
	assert_int_equal(atomic_load(&stop_rc), WITCH_ESTATE);
	assert_true(await_alive(a, bn, 1, 10000));
	witch_server_free(b);
	witch_server_free(a);
	seen_free(&sb);
}

/* The "received" count of the peer named name in srv's table. */
static json_int_t
peer_received(witch_server_t *srv, const char *name)
{
	json_int_t n = -1;
	json_t *a, *v;
	size_t i;

	assert_int_equal(witch_server_peers(srv, &a), 0);
	json_array_foreach(a, i, v)
		if (strcmp(json_string_value(json_object_get(v, "name")),
		    name) == 0)
			n = json_integer_value(json_object_get(v, "received"));
	json_decref(a);
	return n;
}

/*
 * Messages a server received before it was stopped reach its handler:
 * the stop delivers the inbox, it does not drop it.  b's handler holds
 * the first message 300 ms; the next two arrive in the inbox meanwhile
 * (counted as received) and b is stopped at once.  Before, the peer
 * thread saw the stop after the first message and dropped the others.
 */
static void
test_stop_delivers_inbox(void **state)
{
	struct seen sa, sb;
	witch_server_t *a, *b;
	const char *an[] = { "a" }, *bn[] = { "b" };
	json_t *msg;
	uint64_t t0;
	int i;

	seen_init(&sa, "a");
	seen_init(&sb, "b");
	a = start_peer("a", "projA", 0, &sa, 0);
	b = start_peer("b", "projA", witch_server_port(a), &sb, 0);
	assert_true(await_alive(a, bn, 1, 10000));
	assert_true(await_alive(b, an, 1, 10000));
	atomic_store(&sb.slow_ms, 300);
	for (i = 1; i <= 3; i++) {
		msg = json_pack("{s:i}", "n", i);
		assert_int_equal(witch_server_send_to_peer(a, "b", msg), 0);
		json_decref(msg);
		if (i == 1) {	/* the handler holds the first one */
			t0 = th_now_ms();
			while (atomic_load(&sb.entered) == 0 &&
			    th_now_ms() - t0 < 10000)
				th_sleep_ms(1);
			assert_int_equal(atomic_load(&sb.entered), 1);
		}
	}
	t0 = th_now_ms();
	while (peer_received(b, "a") < 3 && th_now_ms() - t0 < 10000)
		th_sleep_ms(1);
	assert_int_equal(peer_received(b, "a"), 3);
	/* Still inside the first message's handler: two wait in the inbox. */
	assert_int_equal(atomic_load(&sb.entered), 1);
	assert_int_equal(witch_server_stop(b, 2000), 0);
	assert_int_equal(sb.nmsg, 3);
	for (i = 0; i < 3; i++) {
		assert_string_equal(sb.from[i], "a");
		assert_int_equal(json_integer_value(json_object_get(sb.msg[i],
		    "n")), i + 1);
	}
	witch_server_free(b);
	witch_server_free(a);
	seen_free(&sa);
	seen_free(&sb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_lies),
		cmocka_unit_test(test_mesh),
		cmocka_unit_test(test_busy_not_dead),
		cmocka_unit_test(test_slow_reader),
		cmocka_unit_test(test_garbage_peer),
		cmocka_unit_test(test_churn),
		cmocka_unit_test(test_stop_from_callback),
		cmocka_unit_test(test_stop_delivers_inbox),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
