/*
 * test_client: the client library (include/witch/client.h) against a real
 * in-process server over loopback: sync, async, cancel, notify, the three
 * ways of driving, state callbacks, handshake refusals, unix sockets, and
 * several threads sharing one client (run under TSan too).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <witch/client.h>

#include "integ/harness.h"

static atomic_int slow_started, slow_cancelled, notified;

static void
msleep(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

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

/* Runs until cancelled (at most 10 s). */
static int
h_slow(witch_request_t *req, void *ud)
{
	int i;

	atomic_fetch_add(&slow_started, 1);
	for (i = 0; i < 2000 && !witch_request_cancelled(req); i++)
		msleep(5);
	if (witch_request_cancelled(req))
		atomic_fetch_add(&slow_cancelled, 1);
	return witch_request_reply(req, json_string("slow done"));
}

static int
h_count(witch_request_t *req, void *ud)
{
	atomic_fetch_add(&notified, 1);
	return 0;
}

static void
reg(witch_server_t *srv, void *arg)
{
	assert_int_equal(witch_server_register_endpoint(srv, "slow", h_slow,
	    NULL), 0);
	assert_int_equal(witch_server_register_endpoint(srv, "count",
	    h_count, NULL), 0);
}

static witch_server_t *srv;

static int
setup(void **state)
{
	srv = th_server_start(NULL, reg, NULL);
	return 0;
}

static int
teardown(void **state)
{
	witch_server_free(srv);
	srv = NULL;
	return 0;
}

static witch_client_config_t *
ccfg(unsigned port)
{
	witch_client_config_t *cfg;

	assert_int_equal(witch_client_config_new(&cfg), 0);
	assert_int_equal(witch_client_config_set_port(cfg, port), 0);
	assert_int_equal(witch_client_config_set_connect_timeout(cfg, 5000),
	    0);
	return cfg;
}

static witch_client_t *
connected_client(witch_client_config_t *cfg)
{
	witch_client_t *c;
	witch_error_t err;
	int own = 0;

	if (cfg == NULL) {
		cfg = ccfg(witch_server_port(srv));
		own = 1;
	}
	assert_int_equal(witch_client_new(&c, cfg), 0);
	if (own)
		witch_client_config_free(cfg);
	assert_int_equal(witch_client_connect(c, &err), 0);
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_CONNECTED);
	return c;
}

static void
test_sync_builtins(void **state)
{
	witch_client_t *c = connected_client(NULL);
	witch_error_t err;
	json_t *res = NULL, *d, *info;

	info = witch_client_server_info(c);
	assert_non_null(info);
	assert_string_equal(json_string_value(json_object_get(info,
	    "protocol")), "v1");
	json_decref(info);
	d = json_string("Hello");
	assert_int_equal(witch_client_call(c, "echo", d, 0, &res, &err), 0);
	json_decref(d);
	assert_string_equal(json_string_value(json_object_get(res, "echo")),
	    "Hello");
	json_decref(res);
	assert_int_equal(witch_client_call(c, "ping", NULL, 0, &res, &err),
	    0);
	assert_true(json_is_true(json_object_get(res, "pong")));
	json_decref(res);
	assert_int_equal(witch_client_call(c, "info", NULL, 0, &res, &err),
	    0);
	assert_string_equal(json_string_value(json_object_get(res,
	    "source_hash")), witch_server_source_hash(srv));
	json_decref(res);
	assert_int_equal(witch_client_unknown_replies(c), 0);
	witch_client_free(c);
}

static void
test_remote_error(void **state)
{
	witch_client_t *c = connected_client(NULL);
	witch_error_t err;
	json_t *res = (json_t *)1;

	assert_int_equal(witch_client_call(c, "ecko", NULL, 0, &res, &err),
	    WITCH_EREMOTE);
	assert_null(res);
	assert_int_equal(err.code, WITCH_EREMOTE);
	assert_int_equal(err.remote, WITCH_EUNKNOWN_ENDPOINT);
	assert_non_null(strstr(err.text, "ecko"));
	/* The link is fine afterwards. */
	assert_int_equal(witch_client_call(c, "ping", NULL, 0, &res, &err),
	    0);
	json_decref(res);
	assert_int_equal(witch_client_call(c, "", NULL, 0, &res, &err),
	    WITCH_EINVAL);
	witch_client_free(c);
}

struct slot {
	atomic_int	*count;
	int		 calls;
	int		 want;
	int		 status;
};

static void
slot_cb(witch_client_t *c, int status, json_t *result,
    const witch_error_t *err, void *ud)
{
	struct slot *s = ud;

	s->calls++;
	s->status = status;
	if (status == 0 && json_integer_value(json_object_get(result,
	    "echo")) != s->want)
		s->status = 1;
	if (status != 0)
		assert_int_equal(err->code, status);
	atomic_fetch_add(s->count, 1);
}

#define NASYNC 1000

/* Integration API: poll(witch_client_fd()) + witch_client_process(). */
static void
test_async_1000_poll(void **state)
{
	static struct slot slots[NASYNC];
	atomic_int count = 0;
	witch_client_t *c = connected_client(NULL);
	struct pollfd pfd;
	json_t *d;
	uint64_t id, last = 0;
	int i, t;

	for (i = 0; i < NASYNC; i++) {
		slots[i] = (struct slot){ &count, 0, i, -1 };
		d = json_integer(i);
		assert_int_equal(witch_client_call_async(c, "echo", d, 20000,
		    slot_cb, &slots[i], &id), 0);
		json_decref(d);
		assert_true(id > last);
		last = id;
	}
	pfd.fd = witch_client_fd(c);
	pfd.events = POLLIN;
	for (i = 0; i < 100000 && atomic_load(&count) < NASYNC; i++) {
		t = witch_client_timeout(c);
		if (t < 0 || t > 100)
			t = 100;
		poll(&pfd, 1, t);
		assert_int_equal(witch_client_process(c, 0), 0);
	}
	assert_int_equal(atomic_load(&count), NASYNC);
	for (i = 0; i < NASYNC; i++) {
		assert_int_equal(slots[i].calls, 1);
		assert_int_equal(slots[i].status, 0);
	}
	assert_int_equal(witch_client_unknown_replies(c), 0);
	assert_int_equal(witch_client_fd(c), pfd.fd);
	witch_client_free(c);
}

struct outcome {
	atomic_int	done;
	atomic_int	status;
};

static void
outcome_cb(witch_client_t *c, int status, json_t *result,
    const witch_error_t *err, void *ud)
{
	struct outcome *o = ud;

	atomic_store(&o->status, status);
	atomic_fetch_add(&o->done, 1);
}

/* Cancel of a running request (I/O thread mode): the handler sees it. */
static void
test_cancel_slow(void **state)
{
	witch_client_t *c = connected_client(NULL);
	struct outcome o = { 0, 1 };
	json_t *res;
	uint64_t id;

	atomic_store(&slow_started, 0);
	atomic_store(&slow_cancelled, 0);
	assert_int_equal(witch_client_start_thread(c), 0);
	assert_int_equal(witch_client_start_thread(c), 0);
	assert_int_equal(witch_client_process(c, 0), WITCH_ESTATE);
	assert_int_equal(witch_client_call_async(c, "slow", NULL, 20000,
	    outcome_cb, &o, &id), 0);
	assert_true(await_int(&slow_started, 1));
	assert_int_equal(witch_client_cancel(c, id), 0);
	assert_true(await_int(&o.done, 1));
	assert_int_equal(atomic_load(&o.status), WITCH_ECANCELLED);
	assert_true(await_int(&slow_cancelled, 1));
	/* Cancelled once; the id is gone now. */
	assert_int_equal(witch_client_cancel(c, id), WITCH_EINVAL);
	assert_int_equal(witch_client_cancel(c, 999999), WITCH_EINVAL);
	/* The late reply is counted as unknown; the stream stays in sync. */
	assert_int_equal(witch_client_call(c, "ping", NULL, 0, &res, NULL),
	    0);
	json_decref(res);
	for (int i = 0; i < 2000 && witch_client_unknown_replies(c) < 1; i++)
		msleep(5);
	assert_int_equal(witch_client_unknown_replies(c), 1);
	assert_int_equal(atomic_load(&o.done), 1);
	witch_client_free(c);
}

/* Cancel before it is sent: completes at the next process, not inside. */
static void
test_cancel_unsent(void **state)
{
	witch_client_t *c = connected_client(NULL);
	struct outcome o = { 0, 1 };
	uint64_t id;
	int i;

	assert_int_equal(witch_client_call_async(c, "echo", NULL, 5000,
	    outcome_cb, &o, &id), 0);
	assert_int_equal(witch_client_cancel(c, id), 0);
	assert_int_equal(atomic_load(&o.done), 0);	/* not synchronously */
	for (i = 0; i < 100 && atomic_load(&o.done) == 0; i++)
		assert_int_equal(witch_client_process(c, 10), 0);
	assert_int_equal(atomic_load(&o.done), 1);
	assert_int_equal(atomic_load(&o.status), WITCH_ECANCELLED);
	for (i = 0; i < 10; i++)
		witch_client_process(c, 5);
	assert_int_equal(witch_client_unknown_replies(c), 0);
	witch_client_free(c);
}

static void
test_notify(void **state)
{
	witch_client_t *c = connected_client(NULL);
	json_t *res;
	int i;

	atomic_store(&notified, 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(witch_client_notify(c, "count", NULL), 0);
	assert_int_equal(witch_client_call(c, "ping", NULL, 0, &res, NULL),
	    0);
	json_decref(res);
	for (i = 0; i < 2000 && atomic_load(&notified) < 3; i++)
		witch_client_process(c, 5);
	assert_int_equal(atomic_load(&notified), 3);
	/* No reply came for them, not even an error. */
	for (i = 0; i < 10; i++)
		witch_client_process(c, 5);
	assert_int_equal(witch_client_unknown_replies(c), 0);
	witch_client_disconnect(c);
	assert_int_equal(witch_client_notify(c, "count", NULL),
	    WITCH_ECONNECTION);
	witch_client_free(c);
}

struct trace {
	pthread_mutex_t	mu;
	int		n;
	int		ev[16][2];
};

static void
trace_cb(witch_client_t *c, enum witch_client_state o,
    enum witch_client_state n, void *ud)
{
	struct trace *t = ud;

	pthread_mutex_lock(&t->mu);
	if (t->n < 16) {
		t->ev[t->n][0] = o;
		t->ev[t->n][1] = n;
	}
	t->n++;
	pthread_mutex_unlock(&t->mu);
}

static int
trace_n(struct trace *t)
{
	int n;

	pthread_mutex_lock(&t->mu);
	n = t->n;
	pthread_mutex_unlock(&t->mu);
	return n;
}

/* Exact state sequence: connect, server gone, disconnect. */
static void
test_state_sequence(void **state)
{
	static struct trace t = { PTHREAD_MUTEX_INITIALIZER, 0, { { 0 } } };
	static const int want[][2] = {
		{ WITCH_CLIENT_DISCONNECTED, WITCH_CLIENT_CONNECTING },
		{ WITCH_CLIENT_CONNECTING, WITCH_CLIENT_CONNECTED },
		{ WITCH_CLIENT_CONNECTED, WITCH_CLIENT_RECONNECTING },
		{ WITCH_CLIENT_RECONNECTING, WITCH_CLIENT_CLOSED },
	};
	witch_server_t *s2 = th_server_start(NULL, NULL, NULL);
	witch_client_config_t *cfg = ccfg(witch_server_port(s2));
	witch_client_t *c;
	int i;

	witch_client_config_set_state_callback(cfg, trace_cb, &t);
	witch_client_config_set_reconnect_delay(cfg, 10);
	witch_client_config_set_reconnect_delay_max(cfg, 50);
	c = connected_client(cfg);
	witch_client_config_free(cfg);
	assert_int_equal(witch_client_start_thread(c), 0);
	witch_server_free(s2);
	for (i = 0; i < 2000 && trace_n(&t) < 3; i++)
		msleep(5);
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_RECONNECTING);
	msleep(100);	/* a few failed attempts: no state change */
	witch_client_disconnect(c);
	for (i = 0; i < 2000 && trace_n(&t) < 4; i++)
		msleep(5);
	witch_client_free(c);
	assert_int_equal(t.n, 4);
	for (i = 0; i < 4; i++) {
		assert_int_equal(t.ev[i][0], want[i][0]);
		assert_int_equal(t.ev[i][1], want[i][1]);
	}
}

static void
test_incompatible(void **state)
{
	witch_client_config_t *cfg = ccfg(witch_server_port(srv));
	witch_client_t *c;
	witch_error_t err;
	json_t *res;
	const char *want = "0123456789abcdef0123456789ABCDEF";

	assert_int_equal(witch_client_config_set_expected_source_hash(cfg,
	    "xyz"), WITCH_EINVAL);
	assert_int_equal(witch_client_config_set_expected_source_hash(cfg,
	    want), 0);
	assert_int_equal(witch_client_new(&c, cfg), 0);
	witch_client_config_free(cfg);
	assert_int_equal(witch_client_connect(c, &err), WITCH_EINCOMPATIBLE);
	assert_int_equal(err.code, WITCH_EINCOMPATIBLE);
	assert_non_null(strstr(err.text, "0123456789abcdef0123456789abcdef"));
	assert_non_null(strstr(err.text, witch_server_source_hash(srv)));
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_CLOSED);
	assert_int_equal(witch_client_call(c, "ping", NULL, 100, &res, &err),
	    WITCH_ECONNECTION);
	witch_client_free(c);

	/* The right hash connects. */
	cfg = ccfg(witch_server_port(srv));
	assert_int_equal(witch_client_config_set_expected_source_hash(cfg,
	    witch_server_source_hash(srv)), 0);
	c = connected_client(cfg);
	witch_client_config_free(cfg);
	witch_client_free(c);
}

/* A string of n 'x' (caller decrefs). */
static json_t *
xs(size_t n)
{
	json_t *s;
	char *p = malloc(n + 1);

	assert_non_null(p);
	memset(p, 'x', n);
	p[n] = '\0';
	s = json_string(p);
	free(p);
	assert_non_null(s);
	return s;
}

/*
 * A request larger than the server's max_frame (learned from hello) is
 * refused by the client with WITCH_ETOO_LARGE, naming the limit; the
 * connection stays up and serves the next call.  Beyond the 64 MiB
 * ceiling, too, it is WITCH_ETOO_LARGE, not WITCH_EINVAL.
 */
static void
test_too_large(void **state)
{
	witch_server_config_t *scfg = th_config();
	witch_client_config_t *cfg;
	witch_server_t *s2;
	witch_client_t *c;
	witch_error_t err;
	json_t *res = NULL, *d, *info;
	uint64_t id;

	(void)state;
	assert_int_equal(witch_server_config_set_max_frame(scfg, 4096), 0);
	s2 = th_server_start(scfg, NULL, NULL);
	witch_server_config_free(scfg);
	cfg = ccfg(witch_server_port(s2));
	c = connected_client(cfg);
	witch_client_config_free(cfg);
	info = witch_client_server_info(c);
	assert_int_equal(json_integer_value(json_object_get(info,
	    "max_frame")), 4096);
	json_decref(info);

	d = xs(5000);
	memset(&err, 0, sizeof(err));
	assert_int_equal(witch_client_call(c, "echo", d, 0, &res, &err),
	    WITCH_ETOO_LARGE);
	assert_null(res);
	assert_int_equal(err.code, WITCH_ETOO_LARGE);
	assert_non_null(strstr(err.text, "max_frame of 4096 bytes"));
	assert_int_equal(witch_client_call_async(c, "echo", d, 0, NULL, NULL,
	    &id), WITCH_ETOO_LARGE);
	assert_int_equal(witch_client_notify(c, "echo", d), WITCH_ETOO_LARGE);
	json_decref(d);

	/* Still connected; a request that fits goes through. */
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_CONNECTED);
	d = xs(3000);
	assert_int_equal(witch_client_call(c, "echo", d, 0, &res, &err), 0);
	assert_int_equal(json_string_length(json_object_get(res, "echo")),
	    3000);
	json_decref(res);
	json_decref(d);
	witch_client_free(c);

	/* 64 MiB + 1 (as reported): refused at once, not WITCH_EINVAL. */
	c = connected_client(NULL);
	d = xs(WITCH_MAX_FRAME_CEILING + 1);
	assert_int_equal(witch_client_call(c, "echo", d, 0, &res, &err),
	    WITCH_ETOO_LARGE);
	json_decref(d);
	witch_client_free(c);
	witch_server_free(s2);
}

static void
test_unsupported_protocol(void **state)
{
	witch_client_config_t *cfg = ccfg(witch_server_port(srv));
	const char *p[] = { "v9", "v8" };
	witch_client_t *c;
	witch_error_t err;

	assert_int_equal(witch_client_config_set_protocols(cfg, p, 2), 0);
	assert_int_equal(witch_client_new(&c, cfg), 0);
	witch_client_config_free(cfg);
	assert_int_equal(witch_client_connect(c, &err),
	    WITCH_EUNSUPPORTED_PROTOCOL);
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_CLOSED);
	witch_client_free(c);
}

static void
test_unix(void **state)
{
	witch_server_config_t *scfg = th_config();
	witch_client_config_t *cfg = ccfg(1);
	witch_server_t *s2;
	witch_client_t *c;
	witch_error_t err;
	json_t *res;
	char path[64];
	uint64_t t0;

	/* A path with nothing behind it: a clean, quick ECONNECTION. */
	assert_int_equal(witch_client_config_set_unix_path(cfg,
	    "/nonexistent/witch-client-test.sock"), 0);
	assert_int_equal(witch_client_new(&c, cfg), 0);
	t0 = (uint64_t)time(NULL);
	assert_int_equal(witch_client_connect(c, &err), WITCH_ECONNECTION);
	assert_int_equal(err.code, WITCH_ECONNECTION);
	assert_true((uint64_t)time(NULL) - t0 < 5);
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_DISCONNECTED);
	witch_client_free(c);

	/* And a real one. */
	snprintf(path, sizeof(path), "/tmp/witch-client-%ld.sock",
	    (long)getpid());
	assert_int_equal(witch_server_config_set_unix_path(scfg, path, 0600),
	    0);
	s2 = th_server_start(scfg, NULL, NULL);
	witch_server_config_free(scfg);
	assert_int_equal(witch_client_config_set_unix_path(cfg, path), 0);
	c = connected_client(cfg);
	assert_int_equal(witch_client_call(c, "ping", NULL, 0, &res, &err),
	    0);
	json_decref(res);
	witch_client_free(c);
	witch_client_config_free(cfg);
	witch_server_free(s2);
	unlink(path);
}

#define NTHREADS 4
#define PERTHREAD 200

struct worker {
	witch_client_t	*c;
	int		 base;
	int		 ok;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	json_t *d, *res;
	int i;

	for (i = 0; i < PERTHREAD; i++) {
		d = json_integer(w->base + i);
		if (witch_client_call(w->c, "echo", d, 20000, &res,
		    NULL) == 0) {
			if (json_integer_value(json_object_get(res, "echo")) ==
			    w->base + i)
				w->ok++;
			json_decref(res);
		}
		json_decref(d);
	}
	return NULL;
}

static void
run_threads(witch_client_t *c)
{
	struct worker w[NTHREADS];
	pthread_t t[NTHREADS];
	int i;

	for (i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ c, i * 100000, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, worker_main,
		    &w[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].ok, PERTHREAD);
	}
}

/* Four threads share one client, each driving it in turn. */
static void
test_threads_self_driven(void **state)
{
	witch_client_t *c = connected_client(NULL);

	run_threads(c);
	assert_int_equal(witch_client_unknown_replies(c), 0);
	witch_client_free(c);
}

/* Four threads share one client driven by the I/O thread. */
static void
test_threads_io_thread(void **state)
{
	witch_client_t *c = connected_client(NULL);

	assert_int_equal(witch_client_start_thread(c), 0);
	run_threads(c);
	assert_int_equal(witch_client_unknown_replies(c), 0);
	witch_client_free(c);
}

static void
test_config(void **state)
{
	witch_client_config_t *cfg;
	witch_client_t *c;
	witch_error_t err;
	json_t *res;

	assert_int_equal(witch_client_config_new(&cfg), 0);
	assert_int_equal(witch_client_config_set_port(cfg, 0), WITCH_EINVAL);
	assert_int_equal(witch_client_config_set_port(cfg, 65536),
	    WITCH_EINVAL);
	assert_int_equal(witch_client_config_set_connect_timeout(cfg, 0),
	    WITCH_EINVAL);
	assert_int_equal(witch_client_config_set_request_timeout(cfg, 0),
	    WITCH_EINVAL);
	assert_int_equal(witch_client_config_set_host(cfg, ""),
	    WITCH_EINVAL);
	assert_int_equal(witch_client_config_set_name(cfg, NULL),
	    WITCH_EINVAL);
	assert_int_equal(witch_client_config_set_protocols(cfg, NULL, 0),
	    WITCH_EINVAL);
	assert_int_equal(witch_client_config_set_max_frame(cfg, 0),
	    WITCH_EINVAL);
	/* A host name goes through the resolver. */
	assert_int_equal(witch_client_config_set_host(cfg, "localhost"), 0);
	assert_int_equal(witch_client_config_set_port(cfg,
	    witch_server_port(srv)), 0);
	assert_int_equal(witch_client_new(&c, cfg), 0);
	witch_client_config_free(cfg);
	/* Not connected: calls are refused, never queued forever. */
	assert_int_equal(witch_client_call(c, "ping", NULL, 0, &res, &err),
	    WITCH_ECONNECTION);
	assert_null(witch_client_server_info(c));
	assert_int_equal(witch_client_timeout(c), -1);
	if (witch_client_connect(c, &err) == 0) {
		assert_int_equal(witch_client_call(c, "ping", NULL, 0, &res,
		    &err), 0);
		json_decref(res);
	}
	witch_client_free(c);
	witch_client_free(NULL);
}

struct reentry {
	atomic_int	done;
	atomic_int	call_rc;
	atomic_int	process_rc;
	atomic_int	async_rc;
};

static void
reentry_cb(witch_client_t *c, int status, json_t *result,
    const witch_error_t *err, void *ud)
{
	struct reentry *r = ud;
	json_t *res = NULL;

	atomic_store(&r->call_rc, witch_client_call(c, "ping", NULL, 0, &res,
	    NULL));
	json_decref(res);
	atomic_store(&r->process_rc, witch_client_process(c, 0));
	/* Queueing from a callback is fine. */
	atomic_store(&r->async_rc, witch_client_call_async(c, "ping", NULL,
	    0, NULL, NULL, NULL));
	atomic_fetch_add(&r->done, 1);
}

/* A callback that calls witch_client_call() gets WITCH_ESTATE, not a
 * deadlock; in both driving modes. */
static void
test_callback_reentry(void **state)
{
	struct reentry r;
	witch_client_t *c;
	int mode, i;

	for (mode = 0; mode < 2; mode++) {
		memset(&r, 0, sizeof(r));
		c = connected_client(NULL);
		if (mode == 1)
			assert_int_equal(witch_client_start_thread(c), 0);
		assert_int_equal(witch_client_call_async(c, "ping", NULL, 0,
		    reentry_cb, &r, NULL), 0);
		for (i = 0; i < 2000 && atomic_load(&r.done) == 0; i++) {
			if (mode == 0)
				witch_client_process(c, 5);
			else
				msleep(5);
		}
		assert_int_equal(atomic_load(&r.done), 1);
		assert_int_equal(atomic_load(&r.call_rc), WITCH_ESTATE);
		assert_int_equal(atomic_load(&r.process_rc), WITCH_ESTATE);
		assert_int_equal(atomic_load(&r.async_rc), 0);
		witch_client_free(c);
	}
}

/*
 * Drivers handing over: threads in witch_client_call() (each drives the
 * client when nobody does), a thread in witch_client_process(), a
 * thread queueing and cancelling asynchronous calls (completions pushed
 * from a thread that is not driving), a disconnect and reconnect from
 * yet another thread, then the I/O thread started while all of them
 * go on.  Callbacks must never overlap, every accepted call completes
 * exactly once, every synchronous reply is its own.  Meant for TSan.
 */
#define MIX_SYNC	2
#define MIX_CALLS	150

struct mix {
	witch_client_t	*c;
	atomic_int	 running;	/* callbacks running now */
	atomic_int	 overlap;	/* callbacks that met another */
	atomic_int	 accepted;	/* call_async returned 0 */
	atomic_int	 completed;	/* their callbacks */
	atomic_int	 stop;
	atomic_int	 sync_bad;	/* a reply that was not ours */
	atomic_int	 sync_done;	/* sync threads finished */
};

static void
mix_cb(witch_client_t *c, int status, json_t *result,
    const witch_error_t *err, void *ud)
{
	struct mix *m = ud;
	int i;

	if (atomic_fetch_add(&m->running, 1) != 0)
		atomic_fetch_add(&m->overlap, 1);
	for (i = 0; i < 50; i++)	/* widen the window */
		sched_yield();
	atomic_fetch_add(&m->completed, 1);
	atomic_fetch_sub(&m->running, 1);
}

static void *
mix_sync(void *arg)
{
	struct mix *m = arg;
	json_t *d, *res;
	int i;

	for (i = 0; i < MIX_CALLS; i++) {
		d = json_integer(i);
		if (witch_client_call(m->c, "echo", d, 20000, &res,
		    NULL) == 0) {
			if (json_integer_value(json_object_get(res, "echo")) !=
			    i)
				atomic_fetch_add(&m->sync_bad, 1);
			json_decref(res);
		}
		json_decref(d);
	}
	atomic_fetch_add(&m->sync_done, 1);
	return NULL;
}

static void *
mix_process(void *arg)
{
	struct mix *m = arg;

	while (!atomic_load(&m->stop))
		if (witch_client_process(m->c, 1) != 0)
			sched_yield();
	return NULL;
}

static void *
mix_async(void *arg)
{
	struct mix *m = arg;
	uint64_t id;
	json_t *d;
	int i;

	for (i = 0; !atomic_load(&m->stop); i++) {
		/* A bounded backlog: the synchronous calls queue behind it. */
		if (atomic_load(&m->accepted) - atomic_load(&m->completed) >
		    32) {
			msleep(1);
			continue;
		}
		d = json_integer(i);
		if (witch_client_call_async(m->c, "echo", d, 20000, mix_cb, m,
		    &id) == 0) {
			atomic_fetch_add(&m->accepted, 1);
			if (i % 2 == 0)
				(void)witch_client_cancel(m->c, id);
		}
		json_decref(d);
	}
	return NULL;
}

static void
test_driver_handover(void **state)
{
	witch_client_t *c = connected_client(NULL);
	pthread_t ts[MIX_SYNC], tp, ta;
	witch_error_t err;
	struct mix m;
	int i;

	memset(&m, 0, sizeof(m));
	m.c = c;
	for (i = 0; i < MIX_SYNC; i++)
		assert_int_equal(pthread_create(&ts[i], NULL, mix_sync, &m), 0);
	assert_int_equal(pthread_create(&tp, NULL, mix_process, &m), 0);
	assert_int_equal(pthread_create(&ta, NULL, mix_async, &m), 0);
	assert_true(await_int(&m.completed, 50));
	/* Completions of everything in flight, while others drive. */
	witch_client_disconnect(c);
	assert_int_equal(witch_client_connect(c, &err), 0);
	assert_true(await_int(&m.completed, atomic_load(&m.completed) + 50));
	/* The I/O thread takes over from whoever drives. */
	assert_int_equal(witch_client_start_thread(c), 0);
	assert_true(await_int(&m.sync_done, MIX_SYNC));
	atomic_store(&m.stop, 1);
	for (i = 0; i < MIX_SYNC; i++)
		pthread_join(ts[i], NULL);
	pthread_join(tp, NULL);
	pthread_join(ta, NULL);
	witch_client_free(c);
	assert_int_equal(atomic_load(&m.overlap), 0);
	assert_int_equal(atomic_load(&m.completed), atomic_load(&m.accepted));
	assert_int_equal(atomic_load(&m.sync_bad), 0);
}

struct restart {
	atomic_int	calls;
	atomic_int	rc;
};

static void
restart_on_close(witch_client_t *c, enum witch_client_state old_state,
    enum witch_client_state new_state, void *ud)
{
	struct restart *r = ud;

	if (new_state != WITCH_CLIENT_CLOSED)
		return;
	atomic_store(&r->rc, witch_client_start_thread(c));
	atomic_fetch_add(&r->calls, 1);
}

/*
 * witch_client_free() runs the last callbacks (the state change to
 * CLOSED) on its own thread: one that starts the I/O thread there gets
 * WITCH_ESTATE, not a thread that free would never join and that would
 * go on using the freed client.
 */
static void
test_start_thread_during_free(void **state)
{
	witch_client_config_t *cfg = ccfg(witch_server_port(srv));
	struct restart r;
	witch_client_t *c;

	memset(&r, 0, sizeof(r));
	assert_int_equal(witch_client_config_set_state_callback(cfg,
	    restart_on_close, &r), 0);
	c = connected_client(cfg);
	witch_client_config_free(cfg);
	witch_client_free(c);
	assert_int_equal(atomic_load(&r.calls), 1);
	assert_int_equal(atomic_load(&r.rc), WITCH_ESTATE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sync_builtins),
		cmocka_unit_test(test_remote_error),
		cmocka_unit_test(test_async_1000_poll),
		cmocka_unit_test(test_cancel_slow),
		cmocka_unit_test(test_cancel_unsent),
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_state_sequence),
		cmocka_unit_test(test_incompatible),
		cmocka_unit_test(test_unsupported_protocol),
		cmocka_unit_test(test_unix),
		cmocka_unit_test(test_threads_self_driven),
		cmocka_unit_test(test_threads_io_thread),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_callback_reentry),
		cmocka_unit_test(test_start_thread_during_free),
		cmocka_unit_test(test_driver_handover),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
