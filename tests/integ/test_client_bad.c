/*
 * test_client_bad: the client against servers that are down, silent,
 * broken or restarting.  Fake servers are small scripted threads on
 * 127.0.0.1 port 0 that speak exactly the bytes each case needs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <witch/client.h>

#include "integ/harness.h"

static void
msleep(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- fake servers ------------------------------------------------------ */

struct fake {
	int		 lfd;
	unsigned	 port;
	pthread_t	 t;
	void		(*script)(struct fake *, int fd);
	atomic_int	 step;		/* script -> test */
	atomic_int	 go;		/* test -> script */
	atomic_int	 saw_eof;
	atomic_int	 accepted;
	long long	 ids[3];	/* requests of the first link */
	atomic_int	 resent;	/* seen again on the second */
	atomic_int	 served;
};

/* Wait (bounded: 10 s) until *v >= want. */
static int
await_int(atomic_int *v, int want)
{
	int i;

	for (i = 0; i < 2000; i++) {
		if (atomic_load(v) >= want)
			return 1;
		msleep(5);
	}
	return 0;
}

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	int fd;

	fd = accept(f->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	atomic_fetch_add(&f->accepted, 1);
	f->script(f, fd);
	close(fd);
	return NULL;
}

static void
fake_start(struct fake *f, void (*script)(struct fake *, int))
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int on = 1;

	memset(f, 0, sizeof(*f));
	f->script = script;
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	assert_int_equal(listen(f->lfd, 8), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sin, &sl),
	    0);
	f->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&f->t, NULL, fake_main, f), 0);
}

static void
fake_stop(struct fake *f)
{
	shutdown(f->lfd, SHUT_RDWR);	/* wakes accept() if never used */
	pthread_join(f->t, NULL);
	close(f->lfd);
}

/* Read the client's hello and answer it; returns 0 or -1. */
static int
fake_hello(int fd)
{
	json_t *h = th_recv(fd, 5000);
	int rc;

	if (h == NULL || strcmp(json_string_value(json_object_get(h,
	    "endpoint")), "hello") != 0) {
		json_decref(h);
		return -1;
	}
	rc = th_sendf(fd, "{\"id\":%lld,\"result\":{\"name\":\"fake\","
	    "\"protocol\":\"v1\"}}", (long long)th_id(h));
	json_decref(h);
	return rc;
}

/* Read one request; its id, or -1. */
static long long
fake_request(int fd)
{
	json_t *r = th_recv(fd, 5000);
	long long id;

	if (r == NULL)
		return -1;
	id = th_id(r);
	json_decref(r);
	return id;
}

static void
fake_wait_eof(struct fake *f, int fd)
{
	if (th_wait_eof(fd, 10000))
		atomic_store(&f->saw_eof, 1);
}

static witch_client_t *
client_for(unsigned port, unsigned connect_ms, bool reconnect)
{
	witch_client_config_t *cfg;
	witch_client_t *c;

	assert_int_equal(witch_client_config_new(&cfg), 0);
	witch_client_config_set_port(cfg, port);
	witch_client_config_set_connect_timeout(cfg, connect_ms);
	witch_client_config_set_auto_reconnect(cfg, reconnect);
	assert_int_equal(witch_client_new(&c, cfg), 0);
	witch_client_config_free(cfg);
	return c;
}

/* ---- cases ------------------------------------------------------------- */

/* Nobody listens: ECONNECTION well within the timeout, no hang. */
static void
test_server_down(void **state)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	witch_client_t *c;
	witch_error_t err;
	unsigned port;
	uint64_t t0;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	getsockname(fd, (struct sockaddr *)&sin, &sl);
	port = ntohs(sin.sin_port);
	close(fd);	/* bound, never listened: refused */

	c = client_for(port, 5000, true);
	t0 = now_ms();
	assert_int_equal(witch_client_connect(c, &err), WITCH_ECONNECTION);
	assert_int_equal(err.code, WITCH_ECONNECTION);
	assert_true(now_ms() - t0 < 5000);
	/* Never up: no automatic reconnection. */
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_DISCONNECTED);
	witch_client_free(c);
}

static void
script_silent(struct fake *f, int fd)
{
	fake_wait_eof(f, fd);
}

/* Accepts and never answers hello: ETIMEOUT at the connect timeout. */
static void
test_hello_timeout(void **state)
{
	struct fake f;
	witch_client_t *c;
	witch_error_t err;

	fake_start(&f, script_silent);
	c = client_for(f.port, 300, true);
	assert_int_equal(witch_client_connect(c, &err), WITCH_ETIMEOUT);
	assert_int_equal(err.code, WITCH_ETIMEOUT);
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_DISCONNECTED);
	fake_stop(&f);
	assert_int_equal(atomic_load(&f.saw_eof), 1);
	witch_client_free(c);
}

static void
script_garbage(struct fake *f, int fd)
{
	if (fake_hello(fd) != 0 || fake_request(fd) < 0)
		return;
	th_send(fd, "this is not json");
	fake_wait_eof(f, fd);
}

static void
script_oversized(struct fake *f, int fd)
{
	static const unsigned char big[4] = { 0xff, 0xff, 0xff, 0xff };

	if (fake_hello(fd) != 0 || fake_request(fd) < 0)
		return;
	th_send_raw(fd, big, 4);
	fake_wait_eof(f, fd);
}

static void
script_zero(struct fake *f, int fd)
{
	static const unsigned char zero[4] = { 0, 0, 0, 0 };

	if (fake_hello(fd) != 0 || fake_request(fd) < 0)
		return;
	th_send_raw(fd, zero, 4);
	fake_wait_eof(f, fd);
}

static void
script_no_id(struct fake *f, int fd)
{
	if (fake_hello(fd) != 0 || fake_request(fd) < 0)
		return;
	th_send(fd, "{\"result\":1}");
	fake_wait_eof(f, fd);
}

static void
script_array(struct fake *f, int fd)
{
	if (fake_hello(fd) != 0 || fake_request(fd) < 0)
		return;
	th_send(fd, "[1,2,3]");
	fake_wait_eof(f, fd);
}

static void
script_garbage_hello(struct fake *f, int fd)
{
	json_t *h = th_recv(fd, 5000);

	json_decref(h);
	th_send(fd, "{not json");
	fake_wait_eof(f, fd);
}

/* A broken reply: EPROTOCOL for the request, link dropped. */
static void
protocol_case(void (*script)(struct fake *, int), const char *needle)
{
	struct fake f;
	witch_client_t *c;
	witch_error_t err;
	json_t *res;

	fake_start(&f, script);
	c = client_for(f.port, 5000, false);
	assert_int_equal(witch_client_connect(c, &err), 0);
	assert_int_equal(witch_client_call(c, "echo", NULL, 5000, &res, &err),
	    WITCH_EPROTOCOL);
	assert_int_equal(err.code, WITCH_EPROTOCOL);
	if (needle != NULL && strstr(err.text, needle) == NULL)
		fail_msg("error text '%s' lacks '%s'", err.text, needle);
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_DISCONNECTED);
	fake_stop(&f);
	assert_int_equal(atomic_load(&f.saw_eof), 1);	/* link dropped */
	witch_client_free(c);
}

static void
test_garbage(void **state)
{
	protocol_case(script_garbage, "not JSON");
}

/* Length 0xFFFFFFFF: refused from the prefix alone, nothing allocated. */
static void
test_oversized(void **state)
{
	protocol_case(script_oversized, "max_frame");
}

static void
test_zero_length(void **state)
{
	protocol_case(script_zero, "length 0");
}

static void
test_reply_without_id(void **state)
{
	protocol_case(script_no_id, "without id");
}

static void
test_reply_not_object(void **state)
{
	protocol_case(script_array, "not an object");
}

static void
test_garbage_hello(void **state)
{
	struct fake f;
	witch_client_t *c;
	witch_error_t err;

	fake_start(&f, script_garbage_hello);
	c = client_for(f.port, 5000, true);
	assert_int_equal(witch_client_connect(c, &err), WITCH_EPROTOCOL);
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_DISCONNECTED);
	fake_stop(&f);
	witch_client_free(c);
}

static void
script_unknown_id(struct fake *f, int fd)
{
	long long id;

	if (fake_hello(fd) != 0 || (id = fake_request(fd)) < 0)
		return;
	th_sendf(fd, "{\"id\":%lld,\"result\":\"bogus\"}", id + 1000);
	th_send(fd, "{\"id\":\"a-string\",\"result\":\"bogus\"}");
	th_sendf(fd, "{\"id\":%lld,\"result\":\"real\"}", id);
	fake_wait_eof(f, fd);
}

/* Replies with ids nobody asked for: ignored and counted. */
static void
test_unknown_id(void **state)
{
	struct fake f;
	witch_client_t *c;
	witch_error_t err;
	json_t *res;

	fake_start(&f, script_unknown_id);
	c = client_for(f.port, 5000, false);
	assert_int_equal(witch_client_connect(c, &err), 0);
	assert_int_equal(witch_client_call(c, "echo", NULL, 5000, &res, &err),
	    0);
	assert_string_equal(json_string_value(res), "real");
	json_decref(res);
	assert_int_equal(witch_client_unknown_replies(c), 2);
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_CONNECTED);
	witch_client_free(c);
	fake_stop(&f);
}

static void
script_half(struct fake *f, int fd)
{
	unsigned char frame[256];
	char payload[128];
	long long id;
	int n, i;

	if (fake_hello(fd) != 0 || (id = fake_request(fd)) < 0)
		return;
	n = snprintf(payload, sizeof(payload),
	    "{\"id\":%lld,\"result\":\"too late\"}", id);
	th_frame(frame, payload, (uint32_t)n);
	th_send_raw(fd, frame, (size_t)(n + 4) / 2);
	atomic_store(&f->step, 1);
	for (i = 0; i < 2000 && atomic_load(&f->go) == 0; i++)
		msleep(5);
	th_send_raw(fd, frame + (n + 4) / 2, (size_t)(n + 4) -
	    (size_t)(n + 4) / 2);
	if ((id = fake_request(fd)) < 0)
		return;
	th_sendf(fd, "{\"id\":%lld,\"result\":\"second\"}", id);
	fake_wait_eof(f, fd);
}

/*
 * The timeout fires while the reply is half received; the rest arrives
 * later, is counted unknown, and the next request still works.
 */
static void
test_timeout_half_reply(void **state)
{
	struct fake f;
	witch_client_t *c;
	witch_error_t err;
	json_t *res;

	fake_start(&f, script_half);
	c = client_for(f.port, 5000, false);
	assert_int_equal(witch_client_connect(c, &err), 0);
	assert_int_equal(witch_client_call(c, "echo", NULL, 300, &res, &err),
	    WITCH_ETIMEOUT);
	assert_int_equal(err.code, WITCH_ETIMEOUT);
	assert_int_equal(atomic_load(&f.step), 1);
	atomic_store(&f.go, 1);
	assert_int_equal(witch_client_call(c, "echo", NULL, 5000, &res, &err),
	    0);
	assert_string_equal(json_string_value(res), "second");
	json_decref(res);
	assert_int_equal(witch_client_unknown_replies(c), 1);
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_CONNECTED);
	witch_client_free(c);
	fake_stop(&f);
}

/* ---- server restart with requests in flight --------------------------- */

#define NKEYS 400

static pthread_mutex_t runs_mu = PTHREAD_MUTEX_INITIALIZER;
static int runs[NKEYS];

static int
h_record(witch_request_t *req, void *ud)
{
	json_int_t k = json_integer_value(witch_request_data(req));

	if (k < 0 || k >= NKEYS)
		return WITCH_EINVAL;
	pthread_mutex_lock(&runs_mu);
	runs[k]++;
	pthread_mutex_unlock(&runs_mu);
	msleep(2);
	return witch_request_reply(req, json_integer(k));
}

static void
reg_record(witch_server_t *srv, void *arg)
{
	assert_int_equal(witch_server_register_endpoint(srv, "record",
	    h_record, NULL), 0);
}

struct rq {
	atomic_int	done;
	atomic_int	status;
	atomic_int	remote;
};

static struct rq rqs[NKEYS];
static atomic_int ndone;

static void
rq_cb(witch_client_t *c, int status, json_t *result,
    const witch_error_t *err, void *ud)
{
	struct rq *r = ud;

	atomic_store(&r->status, status);
	atomic_store(&r->remote, err != NULL ? err->remote : 0);
	atomic_fetch_add(&r->done, 1);
	atomic_fetch_add(&ndone, 1);
}

static witch_server_t *
server_on(unsigned port)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *s;
	witch_error_t err;

	witch_server_config_set_bind(cfg, "127.0.0.1");
	witch_server_config_set_port(cfg, port);
	witch_server_config_set_workers(cfg, 2);
	assert_int_equal(witch_server_new(&s, cfg), 0);
	witch_server_config_free(cfg);
	reg_record(s, NULL);
	if (witch_server_start(s, &err) != 0)
		fail_msg("restart on port %u: %s", port, err.text);
	return s;
}

static void
test_server_restart(void **state)
{
	witch_server_config_t *scfg = th_config();
	witch_client_config_t *cfg;
	witch_server_t *s;
	witch_client_t *c;
	witch_error_t err;
	json_t *d;
	unsigned port;
	int i, ok = 0, conn = 0, down = 0, total_runs = 0, n1 = 300;

	witch_server_config_set_workers(scfg, 2);
	s = th_server_start(scfg, reg_record, NULL);
	witch_server_config_free(scfg);
	port = witch_server_port(s);
	assert_int_equal(witch_client_config_new(&cfg), 0);
	witch_client_config_set_port(cfg, port);
	witch_client_config_set_reconnect_delay(cfg, 20);
	witch_client_config_set_reconnect_delay_max(cfg, 200);
	witch_client_config_set_jitter_seed(cfg, 7);
	assert_int_equal(witch_client_new(&c, cfg), 0);
	witch_client_config_free(cfg);
	assert_int_equal(witch_client_connect(c, &err), 0);
	assert_int_equal(witch_client_start_thread(c), 0);

	/* Phase 1: n1 requests in flight, then the server goes away. */
	for (i = 0; i < n1; i++) {
		d = json_integer(i);
		assert_int_equal(witch_client_call_async(c, "record", d,
		    20000, rq_cb, &rqs[i], NULL), 0);
		json_decref(d);
	}
	assert_true(await_int(&ndone, 20));
	witch_server_stop(s, 50);
	witch_server_free(s);
	for (i = 0; i < 2000 && witch_client_state(c) !=
	    WITCH_CLIENT_RECONNECTING; i++)
		msleep(5);
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_RECONNECTING);
	assert_true(await_int(&ndone, n1));

	/* Phase 2: requests issued while reconnecting wait for the link. */
	for (i = n1; i < NKEYS; i++) {
		d = json_integer(i);
		assert_int_equal(witch_client_call_async(c, "record", d,
		    20000, rq_cb, &rqs[i], NULL), 0);
		json_decref(d);
	}
	s = server_on(port);
	assert_true(await_int(&ndone, NKEYS));
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_CONNECTED);
	witch_client_free(c);
	witch_server_free(s);

	pthread_mutex_lock(&runs_mu);
	for (i = 0; i < NKEYS; i++) {
		assert_int_equal(atomic_load(&rqs[i].done), 1);
		assert_true(runs[i] <= 1);	/* never run twice */
		total_runs += runs[i];
		switch (atomic_load(&rqs[i].status)) {
		case 0:
			ok++;
			assert_int_equal(runs[i], 1);
			break;
		case WITCH_ECONNECTION:
			assert_true(i < n1);
			conn++;
			break;
		case WITCH_EREMOTE:
			/* Refused while the old server drained: never ran. */
			assert_true(i < n1);
			assert_int_equal(atomic_load(&rqs[i].remote),
			    WITCH_ESHUTTING_DOWN);
			assert_int_equal(runs[i], 0);
			down++;
			break;
		default:
			fail_msg("request %d: status %d", i,
			    atomic_load(&rqs[i].status));
		}
		if (i >= n1)
			assert_int_equal(atomic_load(&rqs[i].status), 0);
	}
	pthread_mutex_unlock(&runs_mu);
	printf("restart: %d ok, %d ECONNECTION, %d shutting_down, "
	    "%d handler runs\n", ok, conn, down, total_runs);
	assert_true(total_runs >= ok);
	assert_true(total_runs <= ok + conn);
}

static void
script_drop_then_serve(struct fake *f, int fd)
{
	long long id;
	int i, fd2;

	if (fake_hello(fd) != 0)
		return;
	for (i = 0; i < 3; i++)
		if ((f->ids[i] = fake_request(fd)) < 0)
			return;
	shutdown(fd, SHUT_RDWR);	/* the link dies with 3 unanswered */
	if ((fd2 = accept(f->lfd, NULL, NULL)) < 0)
		return;
	if (fake_hello(fd2) == 0) {
		while ((id = fake_request(fd2)) >= 0) {
			for (i = 0; i < 3; i++)
				if (id == f->ids[i])
					atomic_fetch_add(&f->resent, 1);
			atomic_fetch_add(&f->served, 1);
			th_sendf(fd2, "{\"id\":%lld,\"result\":\"ok\"}", id);
		}
	}
	close(fd2);
}

/*
 * Requests written before the link died fail with ECONNECTION and are
 * never sent again; the client reconnects and later requests work.
 */
static void
test_never_resent(void **state)
{
	static struct rq r3[3];
	struct fake f;
	witch_client_t *c;
	witch_client_config_t *cfg;
	witch_error_t err;
	json_t *res;
	int i;

	fake_start(&f, script_drop_then_serve);
	assert_int_equal(witch_client_config_new(&cfg), 0);
	witch_client_config_set_port(cfg, f.port);
	witch_client_config_set_reconnect_delay(cfg, 10);
	witch_client_config_set_reconnect_delay_max(cfg, 50);
	assert_int_equal(witch_client_new(&c, cfg), 0);
	witch_client_config_free(cfg);
	assert_int_equal(witch_client_connect(c, &err), 0);
	assert_int_equal(witch_client_start_thread(c), 0);
	atomic_store(&ndone, 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(witch_client_call_async(c, "echo", NULL,
		    10000, rq_cb, &r3[i], NULL), 0);
	assert_true(await_int(&ndone, 3));
	for (i = 0; i < 3; i++)
		assert_int_equal(atomic_load(&r3[i].status),
		    WITCH_ECONNECTION);
	assert_int_equal(witch_client_call(c, "echo", NULL, 10000, &res,
	    &err), 0);
	assert_string_equal(json_string_value(res), "ok");
	json_decref(res);
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_CONNECTED);
	witch_client_free(c);
	fake_stop(&f);
	assert_int_equal(atomic_load(&f.resent), 0);
	assert_int_equal(atomic_load(&f.served), 1);
}

/* max_reconnect_attempts: CLOSED, and queued requests fail at once. */
static void
test_give_up(void **state)
{
	static struct rq r1;
	witch_server_t *s = th_server_start(NULL, NULL, NULL);
	witch_client_config_t *cfg;
	witch_client_t *c;
	witch_error_t err;
	int i;

	assert_int_equal(witch_client_config_new(&cfg), 0);
	witch_client_config_set_port(cfg, witch_server_port(s));
	witch_client_config_set_reconnect_delay(cfg, 5);
	witch_client_config_set_reconnect_delay_max(cfg, 20);
	witch_client_config_set_max_reconnect_attempts(cfg, 3);
	assert_int_equal(witch_client_new(&c, cfg), 0);
	witch_client_config_free(cfg);
	assert_int_equal(witch_client_connect(c, &err), 0);
	assert_int_equal(witch_client_start_thread(c), 0);
	witch_server_free(s);
	for (i = 0; i < 2000 && witch_client_state(c) ==
	    WITCH_CLIENT_CONNECTED; i++)
		msleep(5);
	atomic_store(&ndone, 0);
	/* Queued while reconnecting (or refused if it already gave up). */
	if (witch_client_call_async(c, "ping", NULL, 20000, rq_cb, &r1,
	    NULL) == 0) {
		assert_true(await_int(&ndone, 1));
		assert_int_equal(atomic_load(&r1.status), WITCH_ECONNECTION);
	}
	for (i = 0; i < 2000 && witch_client_state(c) != WITCH_CLIENT_CLOSED;
	    i++)
		msleep(5);
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_CLOSED);
	witch_client_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_down),
		cmocka_unit_test(test_hello_timeout),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_zero_length),
		cmocka_unit_test(test_reply_without_id),
		cmocka_unit_test(test_reply_not_object),
		cmocka_unit_test(test_garbage_hello),
		cmocka_unit_test(test_unknown_id),
		cmocka_unit_test(test_timeout_half_reply),
		cmocka_unit_test(test_server_restart),
		cmocka_unit_test(test_never_resent),
		cmocka_unit_test(test_give_up),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
