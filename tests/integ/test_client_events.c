/*
 * test_client_events: the client's event callback over real sockets.  A
 * real server streams "monitor" events and "closing" notices; a small
 * scripted fake server puts events and replies in one write to prove the
 * order; a client is freed while events stream in (no call after free;
 * run under ASan and TSan: the callback runs on the I/O thread).
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
#include <unistd.h>

#include <witch/client.h>

#include "integ/harness.h"

#define LOG_MAX	1024

/* What the callbacks saw, in order: "ev:NAME" with data, or "reply". */
struct evlog {
	pthread_mutex_t	 mu;
	size_t		 n;
	char		 what[LOG_MAX][48];
	json_t		*data[LOG_MAX];	/* references kept by the callback */
	atomic_int	 events;
	atomic_int	 after_free;
	atomic_int	 freed;
};

static void
log_init(struct evlog *l)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->mu, NULL);
}

static void
log_clear(struct evlog *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		json_decref(l->data[i]);
	pthread_mutex_destroy(&l->mu);
}

static void
log_add(struct evlog *l, const char *what, json_t *data)
{
	pthread_mutex_lock(&l->mu);
	if (l->n < LOG_MAX) {
		snprintf(l->what[l->n], sizeof(l->what[0]), "%s", what);
		l->data[l->n] = json_incref(data);
		l->n++;
	}
	pthread_mutex_unlock(&l->mu);
}

static void
on_event(witch_client_t *c, const char *event, json_t *data, void *ud)
{
	struct evlog *l = ud;
	char what[48];

	if (atomic_load(&l->freed))
		atomic_fetch_add(&l->after_free, 1);
	assert_non_null(event);
	assert_non_null(data);
	snprintf(what, sizeof(what), "ev:%s", event);
	log_add(l, what, data);
	atomic_fetch_add(&l->events, 1);
}

static void
on_reply(witch_client_t *c, int status, json_t *result,
    const witch_error_t *err, void *ud)
{
	struct evlog *l = ud;
	json_t *e;

	if (status == 0)
		log_add(l, "reply", result);
	else {
		e = json_pack("{s:i, s:s}", "code", status, "text", err->text);
		log_add(l, "fail", e);
		json_decref(e);
	}
}

/* Wait (bounded: 10 s) until *v >= want. */
static int
await_int(atomic_int *v, int want)
{
	int i;

	for (i = 0; i < 2000; i++) {
		if (atomic_load(v) >= want)
			return 1;
		th_sleep_ms(5);
	}
	return 0;
}

static witch_client_t *
client_new(unsigned port, struct evlog *l, bool reconnect)
{
	witch_client_config_t *cfg;
	witch_client_t *c;

	assert_int_equal(witch_client_config_new(&cfg), 0);
	assert_int_equal(witch_client_config_set_port(cfg, port), 0);
	assert_int_equal(witch_client_config_set_auto_reconnect(cfg,
	    reconnect), 0);
	if (l != NULL)
		assert_int_equal(witch_client_config_set_event_callback(cfg,
		    on_event, l), 0);
	assert_int_equal(witch_client_new(&c, cfg), 0);
	witch_client_config_free(cfg);
	return c;
}

static witch_client_t *
monitoring_client(unsigned port, struct evlog *l)
{
	witch_client_t *c = client_new(port, l, false);
	witch_error_t err;
	json_t *res = NULL;

	assert_int_equal(witch_client_start_thread(c), 0);
	assert_int_equal(witch_client_connect(c, &err), 0);
	assert_int_equal(witch_client_call(c, "monitor", NULL, 0, &res, &err),
	    0);
	assert_true(json_is_true(json_object_get(res, "monitoring")));
	json_decref(res);
	return c;
}

/* The monitor line i of the log: an echo request with data {"k": i}. */
static void
check_monitor(const struct evlog *l, size_t at, int k)
{
	json_t *d = l->data[at];

	assert_string_equal(l->what[at], "ev:monitor");
	assert_string_equal(json_string_value(json_object_get(d,
	    "endpoint")), "echo");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    d, "data"), "k")), k);
	assert_true(json_real_value(json_object_get(d, "time")) > 1e9);
}

/* ---- a real server ------------------------------------------------------ */

/*
 * Monitor events reach the callback on the I/O thread: exactly the hello
 * and the 50 requests of another client, in order, with their data; the
 * monitoring client's own requests are not among them.
 */
static void
test_monitor_events(void **state)
{
	witch_server_t *srv = th_server_start(NULL, NULL, NULL);
	unsigned port = witch_server_port(srv);
	struct evlog l;
	witch_client_t *m, *b;
	witch_error_t err;
	json_t *d, *res;
	size_t i;

	log_init(&l);
	m = monitoring_client(port, &l);
	b = client_new(port, NULL, false);
	assert_int_equal(witch_client_connect(b, &err), 0);
	for (i = 0; i < 50; i++) {
		d = json_pack("{s:i}", "k", (int)i);
		assert_int_equal(witch_client_call(b, "echo", d, 0, &res, &err),
		    0);
		json_decref(res);
		json_decref(d);
	}
	assert_true(await_int(&l.events, 51));
	assert_int_equal(witch_client_call(m, "ping", NULL, 0, &res, &err), 0);
	json_decref(res);
	th_sleep_ms(100);
	assert_int_equal(atomic_load(&l.events), 51);
	pthread_mutex_lock(&l.mu);
	assert_string_equal(json_string_value(json_object_get(l.data[0],
	    "endpoint")), "hello");
	for (i = 0; i < 50; i++)
		check_monitor(&l, i + 1, (int)i);
	pthread_mutex_unlock(&l.mu);
	witch_client_free(b);
	witch_client_free(m);
	witch_server_free(srv);
	log_clear(&l);
}

struct echoes {
	atomic_int	 ok, bad;
};

static void
on_echo(witch_client_t *c, int status, json_t *result,
    const witch_error_t *err, void *ud)
{
	struct echoes *e = ud;

	if (status == 0 && json_is_object(json_object_get(result, "echo")))
		atomic_fetch_add(&e->ok, 1);
	else
		atomic_fetch_add(&e->bad, 1);
}

struct matcher {
	atomic_int	*ok, *bad;
	int		 want;
};

static void
on_match(witch_client_t *c, int status, json_t *result,
    const witch_error_t *err, void *ud)
{
	struct matcher *m = ud;

	if (status == 0 && json_integer_value(json_object_get(result,
	    "echo")) == m->want)
		atomic_fetch_add(m->ok, 1);
	else
		atomic_fetch_add(m->bad, 1);
}

struct flood {
	unsigned	 port;
	int		 n;
};

static void *
flood_main(void *arg)
{
	struct flood *f = arg;
	witch_client_t *b = client_new(f->port, NULL, false);
	struct echoes e = { 0, 0 };
	witch_error_t err;
	json_t *d;
	int i;

	if (witch_client_connect(b, &err) != 0)
		return NULL;
	for (i = 0; i < f->n; i++) {
		d = json_pack("{s:i}", "k", i);
		witch_client_call_async(b, "echo", d, 10000, on_echo, &e,
		    NULL);
		json_decref(d);
	}
	witch_client_start_thread(b);
	await_int(&e.ok, f->n);
	witch_client_free(b);
	return NULL;
}

/*
 * 300 pipelined calls of the monitoring client while another client's
 * 300 requests stream in as events: every reply matched to its own call,
 * no event lost or doubled, nothing counted as unknown.
 */
static void
test_events_interleaved(void **state)
{
	witch_server_t *srv = th_server_start(NULL, NULL, NULL);
	unsigned port = witch_server_port(srv);
	struct matcher mt[300];
	struct flood fl = { port, 300 };
	atomic_int ok = 0, bad = 0;
	struct evlog l;
	witch_client_t *m;
	pthread_t t;
	json_t *d;
	int i;

	log_init(&l);
	m = monitoring_client(port, &l);
	assert_int_equal(pthread_create(&t, NULL, flood_main, &fl), 0);
	for (i = 0; i < 300; i++) {
		mt[i].ok = &ok;
		mt[i].bad = &bad;
		mt[i].want = 1000 + i;
		d = json_integer(1000 + i);
		assert_int_equal(witch_client_call_async(m, "echo", d, 10000,
		    on_match, &mt[i], NULL), 0);
		json_decref(d);
	}
	assert_true(await_int(&ok, 300));
	assert_true(await_int(&l.events, 301));	/* hello + 300 */
	pthread_join(t, NULL);
	th_sleep_ms(100);
	assert_int_equal(atomic_load(&bad), 0);
	assert_int_equal(atomic_load(&l.events), 301);
	assert_int_equal(witch_client_unknown_replies(m), 0);
	pthread_mutex_lock(&l.mu);
	for (i = 0; i < 300; i++)
		check_monitor(&l, (size_t)i + 1, i);
	pthread_mutex_unlock(&l.mu);
	witch_client_free(m);
	witch_server_free(srv);
	log_clear(&l);
}

/* "closing" at the idle timeout: delivered once, then the link drops. */
static void
test_closing_idle(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	witch_client_t *c;
	witch_error_t err;
	struct evlog l;
	int i;

	assert_int_equal(witch_server_config_set_idle_timeout(cfg, 200), 0);
	srv = th_server_start(cfg, NULL, NULL);
	witch_server_config_free(cfg);
	log_init(&l);
	c = client_new(witch_server_port(srv), &l, false);
	assert_int_equal(witch_client_start_thread(c), 0);
	assert_int_equal(witch_client_connect(c, &err), 0);
	assert_true(await_int(&l.events, 1));
	for (i = 0; i < 200 && witch_client_state(c) !=
	    WITCH_CLIENT_DISCONNECTED; i++)
		th_sleep_ms(10);
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_DISCONNECTED);
	th_sleep_ms(50);
	assert_int_equal(atomic_load(&l.events), 1);
	assert_string_equal(l.what[0], "ev:closing");
	assert_string_equal(json_string_value(json_object_get(l.data[0],
	    "reason")), "idle_timeout");
	witch_client_free(c);
	witch_server_free(srv);
	log_clear(&l);
}

/* "closing" at server stop, with the client driven by process(). */
static void
test_closing_shutdown(void **state)
{
	witch_server_t *srv = th_server_start(NULL, NULL, NULL);
	witch_client_t *c;
	witch_error_t err;
	struct evlog l;
	int i;

	log_init(&l);
	c = client_new(witch_server_port(srv), &l, false);
	assert_int_equal(witch_client_connect(c, &err), 0);
	assert_int_equal(witch_server_stop(srv, 0), 0);
	for (i = 0; i < 500 && witch_client_state(c) ==
	    WITCH_CLIENT_CONNECTED; i++)
		assert_int_equal(witch_client_process(c, 10), 0);
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_DISCONNECTED);
	assert_int_equal(atomic_load(&l.events), 1);
	assert_string_equal(l.what[0], "ev:closing");
	assert_string_equal(json_string_value(json_object_get(l.data[0],
	    "reason")), "shutdown");
	witch_client_free(c);
	witch_server_free(srv);
	log_clear(&l);
}

/*
 * A client freed while events stream in: free returns, and the callback
 * never runs again (ASan would see a use after free; the flag counts
 * calls that start after free returned).  Other clients are unaffected.
 */
static void
test_free_while_streaming(void **state)
{
	witch_server_t *srv = th_server_start(NULL, NULL, NULL);
	unsigned port = witch_server_port(srv);
	struct flood fl = { port, 2000 };
	struct evlog l, l2;
	witch_client_t *m, *m2;
	pthread_t t;

	log_init(&l);
	log_init(&l2);
	m = monitoring_client(port, &l);
	m2 = monitoring_client(port, &l2);
	assert_int_equal(pthread_create(&t, NULL, flood_main, &fl), 0);
	assert_true(await_int(&l.events, 50));
	witch_client_free(m);
	atomic_store(&l.freed, 1);
	pthread_join(t, NULL);
	assert_true(await_int(&l2.events, 2000));
	assert_int_equal(atomic_load(&l.after_free), 0);
	witch_client_free(m2);
	witch_server_free(srv);
	log_clear(&l);
	log_clear(&l2);
}

struct reent {
	atomic_int	 events;
	atomic_int	 call_rc, connect_rc, process_rc, async_rc, cancel_rc;
	atomic_int	 cancelled;
	atomic_int	 disconnected;
};

static void
on_cancelled(witch_client_t *c, int status, json_t *result,
    const witch_error_t *err, void *ud)
{
	struct reent *r = ud;

	if (status == WITCH_ECANCELLED)
		atomic_fetch_add(&r->cancelled, 1);
}

/*
 * First monitor event: the waiting functions refuse, queueing and
 * cancelling work.  Second: disconnect from inside the callback.
 */
static void
reenter_event(witch_client_t *c, const char *event, json_t *data, void *ud)
{
	struct reent *r = ud;
	json_t *res = NULL;
	uint64_t id = 0;
	int n;

	if (strcmp(event, "monitor") != 0)
		return;
	n = atomic_fetch_add(&r->events, 1) + 1;
	if (n == 1) {
		atomic_store(&r->call_rc, witch_client_call(c, "ping", NULL, 0,
		    &res, NULL));
		json_decref(res);
		atomic_store(&r->connect_rc, witch_client_connect(c, NULL));
		atomic_store(&r->process_rc, witch_client_process(c, 0));
		atomic_store(&r->async_rc, witch_client_call_async(c, "ping",
		    NULL, 0, on_cancelled, r, &id));
		atomic_store(&r->cancel_rc, witch_client_cancel(c, id));
	} else if (n == 2) {
		witch_client_disconnect(c);
		atomic_store(&r->disconnected, 1);
	}
}

/*
 * An event callback that calls back into its client, on the I/O thread
 * (mode 1) and in witch_client_process() (mode 0): call, connect and
 * process return WITCH_ESTATE, call_async and cancel work (the cancelled
 * call's callback runs), and disconnect closes the client; nothing
 * deadlocks.
 */
static void
test_event_callback_reentry(void **state)
{
	witch_server_t *srv = th_server_start(NULL, NULL, NULL);
	unsigned port = witch_server_port(srv);
	witch_client_config_t *cfg;
	witch_client_t *m, *b;
	witch_error_t err;
	struct reent r;
	json_t *res;
	int mode, i;

	for (mode = 0; mode < 2; mode++) {
		memset(&r, 0, sizeof(r));
		assert_int_equal(witch_client_config_new(&cfg), 0);
		assert_int_equal(witch_client_config_set_port(cfg, port), 0);
		assert_int_equal(witch_client_config_set_event_callback(cfg,
		    reenter_event, &r), 0);
		assert_int_equal(witch_client_new(&m, cfg), 0);
		witch_client_config_free(cfg);
		if (mode == 1)
			assert_int_equal(witch_client_start_thread(m), 0);
		assert_int_equal(witch_client_connect(m, &err), 0);
		assert_int_equal(witch_client_call(m, "monitor", NULL, 0, &res,
		    &err), 0);
		json_decref(res);
		b = client_new(port, NULL, false);
		assert_int_equal(witch_client_connect(b, &err), 0);
		for (i = 0; i < 5; i++) {
			assert_int_equal(witch_client_call(b, "ping", NULL, 0,
			    &res, &err), 0);
			json_decref(res);
		}
		for (i = 0; i < 1000 && (atomic_load(&r.disconnected) == 0 ||
		    atomic_load(&r.cancelled) == 0); i++) {
			if (mode == 0)
				assert_int_equal(witch_client_process(m, 10),
				    0);
			else
				th_sleep_ms(10);
		}
		assert_int_equal(atomic_load(&r.disconnected), 1);
		assert_int_equal(atomic_load(&r.call_rc), WITCH_ESTATE);
		assert_int_equal(atomic_load(&r.connect_rc), WITCH_ESTATE);
		assert_int_equal(atomic_load(&r.process_rc), WITCH_ESTATE);
		assert_int_equal(atomic_load(&r.async_rc), 0);
		assert_int_equal(atomic_load(&r.cancel_rc), 0);
		assert_int_equal(atomic_load(&r.cancelled), 1);
		assert_int_equal(witch_client_state(m), WITCH_CLIENT_CLOSED);
		witch_client_free(b);
		witch_client_free(m);
	}
	witch_server_free(srv);
}

/* ---- a scripted server: events and replies in one write --------------- */

struct fake {
	int		 lfd;
	unsigned	 port;
	pthread_t	 t;
	atomic_int	 done;
};

/* Append a frame of the JSON text s to buf at *len. */
static void
put_frame(unsigned char *buf, size_t *len, const char *s)
{
	th_frame(buf + *len, s, (uint32_t)strlen(s));
	*len += 4 + strlen(s);
}

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	unsigned char buf[1024];
	char s[256];
	size_t len = 0;
	json_t *h;
	int fd;

	if ((fd = accept(f->lfd, NULL, NULL)) < 0)
		return NULL;
	h = th_recv(fd, 5000);	/* hello */
	if (h == NULL)
		goto out;
	th_sendf(fd, "{\"id\":%lld,\"result\":{\"name\":\"fake\","
	    "\"protocol\":\"v1\"}}", (long long)th_id(h));
	json_decref(h);
	if ((h = th_recv(fd, 5000)) == NULL)	/* the first call */
		goto out;
	put_frame(buf, &len, "{\"event\":\"peer_message\",\"data\":"
	    "{\"from\":\"x\",\"n\":1}}");
	snprintf(s, sizeof(s), "{\"id\":%lld,\"result\":\"r1\"}",
	    (long long)th_id(h));
	put_frame(buf, &len, s);
	put_frame(buf, &len, "{\"event\":\"peer_status\",\"data\":[2]}");
	put_frame(buf, &len, "{\"event\":\"bare\"}");
	json_decref(h);
	th_send_raw(fd, buf, len);
	if ((h = th_recv(fd, 5000)) == NULL)	/* the second call */
		goto out;
	json_decref(h);
	th_send(fd, "{\"event\":\"closing\",\"data\":{\"reason\":\"test\"}}");
	th_wait_eof(fd, 5000);
out:
	atomic_store(&f->done, 1);
	close(fd);
	return NULL;
}

/*
 * One read brings event, reply, event, event: the callbacks run in that
 * order, with the data the server sent (JSON null when absent).  Then
 * "closing" with a call in flight: the event first, then the call fails
 * with "server closing: test" and the client is DISCONNECTED.
 */
static void
test_order_and_closing(void **state)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	struct fake f;
	struct evlog l;
	witch_client_t *c;
	witch_error_t err;
	int i;

	memset(&f, 0, sizeof(f));
	f.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f.lfd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	assert_int_equal(listen(f.lfd, 1), 0);
	assert_int_equal(getsockname(f.lfd, (struct sockaddr *)&sin, &sl), 0);
	assert_int_equal(pthread_create(&f.t, NULL, fake_main, &f), 0);
	log_init(&l);
	c = client_new(ntohs(sin.sin_port), &l, false);
	assert_int_equal(witch_client_connect(c, &err), 0);
	assert_int_equal(witch_client_call_async(c, "one", NULL, 5000,
	    on_reply, &l, NULL), 0);
	for (i = 0; i < 500 && atomic_load(&l.events) < 3; i++)
		assert_int_equal(witch_client_process(c, 10), 0);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.what[0], "ev:peer_message");
	assert_string_equal(json_string_value(json_object_get(l.data[0],
	    "from")), "x");
	assert_int_equal(json_integer_value(json_object_get(l.data[0], "n")),
	    1);
	assert_string_equal(l.what[1], "reply");
	assert_string_equal(json_string_value(l.data[1]), "r1");
	assert_string_equal(l.what[2], "ev:peer_status");
	assert_int_equal(json_integer_value(json_array_get(l.data[2], 0)), 2);
	assert_string_equal(l.what[3], "ev:bare");
	assert_true(json_is_null(l.data[3]));
	assert_int_equal(witch_client_call_async(c, "two", NULL, 5000,
	    on_reply, &l, NULL), 0);
	for (i = 0; i < 500 && l.n < 6; i++)
		assert_int_equal(witch_client_process(c, 10), 0);
	assert_int_equal(l.n, 6);
	assert_string_equal(l.what[4], "ev:closing");
	assert_string_equal(json_string_value(json_object_get(l.data[4],
	    "reason")), "test");
	assert_string_equal(l.what[5], "fail");
	assert_int_equal(json_integer_value(json_object_get(l.data[5],
	    "code")), WITCH_ECONNECTION);
	assert_string_equal(json_string_value(json_object_get(l.data[5],
	    "text")), "server closing: test");
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_DISCONNECTED);
	witch_client_free(c);
	pthread_join(f.t, NULL);
	close(f.lfd);
	log_clear(&l);
}

/* No callback set: events are ignored, closing still drops the link. */
static void
test_no_callback(void **state)
{
	witch_server_t *srv = th_server_start(NULL, NULL, NULL);
	witch_client_t *c = client_new(witch_server_port(srv), NULL, false);
	witch_error_t err;
	json_t *res = NULL;
	int i;

	assert_int_equal(witch_client_connect(c, &err), 0);
	assert_int_equal(witch_client_call(c, "monitor", NULL, 0, &res, &err),
	    0);
	json_decref(res);
	assert_int_equal(witch_server_stop(srv, 0), 0);
	for (i = 0; i < 500 && witch_client_state(c) ==
	    WITCH_CLIENT_CONNECTED; i++)
		assert_int_equal(witch_client_process(c, 10), 0);
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_DISCONNECTED);
	assert_int_equal(witch_client_config_set_event_callback(NULL, NULL,
	    NULL), WITCH_EINVAL);
	witch_client_free(c);
	witch_server_free(srv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_monitor_events),
		cmocka_unit_test(test_events_interleaved),
		cmocka_unit_test(test_closing_idle),
		cmocka_unit_test(test_closing_shutdown),
		cmocka_unit_test(test_free_while_streaming),
		cmocka_unit_test(test_event_callback_reentry),
		cmocka_unit_test(test_order_and_closing),
		cmocka_unit_test(test_no_callback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
