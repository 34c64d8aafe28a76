/*
 * test_lifecycle: how a server starts, stops and is freed: stop drains
 * what is in flight, a short drain deadline answers the rest
 * shutting_down and cancels what runs, the API refuses calls in the wrong
 * state, a busy port is reported, many connect/disconnect cycles with
 * requests in flight leave nothing behind, and the error table matches
 * the wire contract.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
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


/* "short": a brief handler for the connect/disconnect stress. */
static int
h_short(witch_request_t *req, void *ud)
{
	th_sleep_ms(1);
	return witch_request_reply(req, json_pack("{s:O}", "echo",
	    witch_request_data(req)));
}

static void
reg_all(witch_server_t *srv, void *arg)
{
	assert_int_equal(witch_server_register_endpoint(srv, "block",
	    th_h_block, NULL), 0);
	assert_int_equal(witch_server_register_endpoint(srv, "short",
	    h_short, NULL), 0);
}

static witch_server_t *
start(witch_server_config_t *cfg)
{
	witch_server_t *srv;

	th_gate_reset();
	srv = th_server_start(cfg, reg_all, NULL);
	if (cfg != NULL)
		witch_server_config_free(cfg);
	return srv;
}

/* ---- wire helpers ------------------------------------------------------ */

static void
expect_closing(int fd, const char *reason)
{
	json_t *r = th_recv_ok(fd, 0);

	assert_string_equal(json_string_value(json_object_get(r, "event")),
	    "closing");
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(r, "data"), "reason")), reason);
	json_decref(r);
	assert_int_equal(th_wait_eof(fd, 5000), 1);
}

/* Connect without aborting; the socket, or -1 with errno. */
static int
try_connect(unsigned port)
{
	struct sockaddr_in sin;
	int fd, saved;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Await the listener's close (stop began): connects are refused. */
static bool
await_refused(unsigned port, unsigned timeout_ms)
{
	uint64_t end = th_now_ms() + timeout_ms;
	int fd;

	while (th_now_ms() < end) {
		/*
		 * A connection caught in the backlog while the listener
		 * closes is reset (ECONNRESET) or accepted: try again; only
		 * a refusal proves the listener is gone.
		 */
		if ((fd = try_connect(port)) == -1 && errno == ECONNREFUSED)
			return true;
		if (fd != -1)
			close(fd);
		th_sleep_ms(5);
	}
	return false;
}

/* witch_server_stop() on its own thread. */
struct stopper {
	witch_server_t	*srv;
	int		 drain_ms;
	int		 rc;
	uint64_t	 took_ms;
	pthread_t	 tid;
};

static void *
stopper_main(void *arg)
{
	struct stopper *s = arg;
	uint64_t t0 = th_now_ms();

	s->rc = witch_server_stop(s->srv, s->drain_ms);
	s->took_ms = th_now_ms() - t0;
	return NULL;
}

static void
stopper_start(struct stopper *s, witch_server_t *srv, int drain_ms)
{
	s->srv = srv;
	s->drain_ms = drain_ms;
	s->rc = 1;
	assert_int_equal(pthread_create(&s->tid, NULL, stopper_main, s), 0);
}

/* ---- stop -------------------------------------------------------------- */

/*
 * Stop drains: two requests run, two wait; stop(5000) lets all four
 * finish once the gate opens.  A request sent after stop began is
 * answered shutting_down (the connection stays until the drain ends),
 * then every client gets the closing event (reason shutdown) and EOF.
 */
static void
test_stop_drains(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	struct stopper st;
	unsigned port;
	int fd, i;
	json_t *r;
	bool seen[5] = { false };

	assert_int_equal(witch_server_config_set_workers(cfg, 2), 0);
	srv = start(cfg);
	port = witch_server_port(srv);
	fd = th_connect(port);
	for (i = 1; i <= 4; i++)
		assert_int_equal(th_sendf(fd, "{\"id\":%d,\"endpoint\":"
		    "\"block\"}", i), 0);
	assert_true(th_gate_await(TH_GATE_STARTED, 2, 5000));

	stopper_start(&st, srv, 5000);
	assert_true(await_refused(port, 5000));
	/* Draining: new requests are refused, the rest still runs. */
	assert_int_equal(th_send(fd, "{\"id\":50,\"endpoint\":\"block\"}"), 0);
	th_expect_reply(fd, 50, "shutting_down");
	assert_int_equal(th_send(fd, "{\"id\":51,\"endpoint\":\"ping\"}"), 0);
	th_expect_reply(fd, 51, "shutting_down");
	assert_int_equal(th_gate_get(TH_GATE_DONE), 0);

	th_gate_open();
	for (i = 0; i < 4; i++) {
		r = th_recv_ok(fd, 0);
		assert_null(th_err_code(r));
		assert_true(th_id(r) >= 1 && th_id(r) <= 4);
		assert_false(seen[th_id(r)]);
		seen[th_id(r)] = true;
		/* Drained in time: nobody was cancelled. */
		assert_true(json_is_false(json_object_get(json_object_get(r,
		    "result"), "cancelled")));
		json_decref(r);
	}
	expect_closing(fd, "shutdown");
	close(fd);
	assert_int_equal(pthread_join(st.tid, NULL), 0);
	assert_int_equal(st.rc, 0);
	assert_int_equal(th_gate_get(TH_GATE_STARTED), 4);
	assert_int_equal(th_gate_get(TH_GATE_SAW_CANCEL), 0);
	witch_server_free(srv);
}

/*
 * A drain deadline shorter than the handler: the queued requests are
 * answered shutting_down, the running handler sees cancelled and
 * returns, and stop returns long before the handler's own 10 s limit.
 */
static void
test_stop_deadline(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	struct stopper st;
	bool got[4] = { false };
	json_t *r;
	int fd, i;

	assert_int_equal(witch_server_config_set_workers(cfg, 1), 0);
	srv = start(cfg);
	fd = th_connect(witch_server_port(srv));
	assert_int_equal(th_send(fd, "{\"id\":1,\"endpoint\":\"block\"}"), 0);
	assert_true(th_gate_await(TH_GATE_STARTED, 1, 5000));
	assert_int_equal(th_send(fd, "{\"id\":2,\"endpoint\":\"block\"}"), 0);
	assert_int_equal(th_send(fd, "{\"id\":3,\"endpoint\":\"block\"}"), 0);
	/*
	 * 2 and 3 wait behind 1 (one worker); whether they reach the queue
	 * before the drain begins or not, they must not run.
	 */
	stopper_start(&st, srv, 200);

	for (i = 0; i < 3; i++) {
		r = th_recv_ok(fd, 0);
		if (th_id(r) == 1) {
			assert_null(th_err_code(r));
			assert_true(json_is_true(json_object_get(
			    json_object_get(r, "result"), "cancelled")));
		} else {
			assert_true(th_id(r) == 2 || th_id(r) == 3);
			assert_string_equal(th_err_code(r), "shutting_down");
		}
		assert_false(got[th_id(r)]);
		got[th_id(r)] = true;
		json_decref(r);
	}
	expect_closing(fd, "shutdown");
	close(fd);
	assert_int_equal(pthread_join(st.tid, NULL), 0);
	assert_int_equal(st.rc, 0);
	assert_true(st.took_ms < 5000);
	assert_int_equal(th_gate_get(TH_GATE_STARTED), 1);
	assert_int_equal(th_gate_get(TH_GATE_SAW_CANCEL), 1);
	witch_server_free(srv);
}

static int
h_noop(witch_request_t *req, void *ud)
{
	return 0;
}

/* Calls in the wrong state are refused; stop is idempotent. */
static void
test_states(void **state)
{
	witch_server_t *srv;
	witch_error_t err;
	int fd;

	srv = start(NULL);
	memset(&err, 0, sizeof(err));
	assert_int_equal(witch_server_start(srv, &err), WITCH_ESTATE);
	assert_int_equal(err.code, WITCH_ESTATE);
	assert_true(err.text[0] != '\0');
	assert_int_equal(witch_server_register_endpoint(srv, "late", h_noop,
	    NULL), WITCH_ESTATE);
	fd = th_connect(witch_server_port(srv));
	th_ping_ok(fd);
	/* "late" was not added. */
	assert_int_equal(th_send(fd, "{\"id\":1,\"endpoint\":\"late\"}"), 0);
	th_expect_reply(fd, 1, "unknown_endpoint");

	assert_int_equal(witch_server_stop(srv, 1000), 0);
	assert_int_equal(th_wait_eof(fd, 5000), 1);
	close(fd);
	assert_int_equal(witch_server_stop(srv, 1000), 0);
	assert_int_equal(witch_server_stop(srv, -1), 0);
	/* A stopped server does not start again. */
	assert_int_equal(witch_server_start(srv, NULL), WITCH_ESTATE);
	assert_int_equal(witch_server_register_endpoint(srv, "later", h_noop,
	    NULL), WITCH_ESTATE);
	witch_server_free(srv);

	/* Free without stop, with a client connected. */
	srv = start(NULL);
	fd = th_connect(witch_server_port(srv));
	th_ping_ok(fd);
	witch_server_free(srv);
	assert_int_equal(th_wait_eof(fd, 5000), 1);
	close(fd);

	/* Free of a server never started, and of NULL. */
	assert_int_equal(witch_server_new(&srv, NULL), 0);
	witch_server_free(srv);
	witch_server_free(NULL);
	assert_int_equal(witch_server_stop(NULL, 0), WITCH_EINVAL);
}

static void
test_port_in_use(void **state)
{
	witch_server_config_t *cfg;
	witch_server_t *a, *b;
	witch_error_t err;
	char portstr[16];

	a = start(NULL);
	assert_int_equal(witch_server_config_new(&cfg), 0);
	assert_int_equal(witch_server_config_set_bind(cfg, "127.0.0.1"), 0);
	assert_int_equal(witch_server_config_set_port(cfg,
	    witch_server_port(a)), 0);
	assert_int_equal(witch_server_new(&b, cfg), 0);
	witch_server_config_free(cfg);
	memset(&err, 0, sizeof(err));
	assert_int_equal(witch_server_start(b, &err), WITCH_EADDRINUSE);
	assert_int_equal(err.code, WITCH_EADDRINUSE);
	snprintf(portstr, sizeof(portstr), "%u", witch_server_port(a));
	assert_non_null(strstr(err.text, portstr));
	assert_non_null(strstr(err.text, strerror(EADDRINUSE)));
	assert_int_equal(witch_server_port(b), 0);
	witch_server_free(b);
	witch_server_free(a);
}

/* ---- many connect/disconnect cycles -------------------------------------- */

#define CYCLE_THREADS 4
#define CYCLES 500

struct cycler {
	unsigned	 port;
	int		 first, n;
	unsigned	 replies;	/* to orderly closes */
	unsigned	 bad;		/* anything unexpected */
	pthread_t	 tid;
};

/*
 * Even cycles shut down their side after two requests and must still
 * get both replies, then EOF; odd cycles reset with the requests in
 * flight.
 */
static void *
cycler_main(void *arg)
{
	struct cycler *c = arg;
	struct linger l = { 1, 0 };
	json_t *r;
	int i, k, fd;

	for (i = c->first; i < c->first + c->n; i++) {
		if ((fd = try_connect(c->port)) == -1) {
			c->bad++;
			continue;
		}
		for (k = 0; k < 2; k++)
			if (th_sendf(fd, "{\"id\":%d,\"endpoint\":\"short\","
			    "\"data\":%d}", k, i) != 0)
				c->bad++;
		if (i % 2 == 1) {
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
			close(fd);
			continue;
		}
		shutdown(fd, SHUT_WR);
		for (k = 0; k < 2; k++) {
			if ((r = th_recv(fd, 10000)) == NULL) {
				c->bad++;
				break;
			}
			if (th_err_code(r) == NULL &&
			    json_integer_value(json_object_get(
			    json_object_get(r, "result"), "echo")) == i)
				c->replies++;
			else
				c->bad++;
			json_decref(r);
		}
		if (th_wait_eof(fd, 10000) != 1)
			c->bad++;
		close(fd);
	}
	return NULL;
}

static void
test_connect_cycles(void **state)
{
	witch_server_config_t *cfg = th_config();
	struct cycler cy[CYCLE_THREADS];
	witch_server_t *srv;
	unsigned replies = 0;
	int i, fd;

	assert_int_equal(witch_server_config_set_workers(cfg, 3), 0);
	srv = start(cfg);
	for (i = 0; i < CYCLE_THREADS; i++) {
		memset(&cy[i], 0, sizeof(cy[i]));
		cy[i].port = witch_server_port(srv);
		cy[i].first = i * (CYCLES / CYCLE_THREADS);
		cy[i].n = CYCLES / CYCLE_THREADS;
		assert_int_equal(pthread_create(&cy[i].tid, NULL, cycler_main,
		    &cy[i]), 0);
	}
	for (i = 0; i < CYCLE_THREADS; i++) {
		assert_int_equal(pthread_join(cy[i].tid, NULL), 0);
		assert_int_equal(cy[i].bad, 0);
		replies += cy[i].replies;
	}
	/* Every orderly client got both of its replies. */
	assert_int_equal(replies, CYCLES);

	fd = th_connect(witch_server_port(srv));
	th_ping_ok(fd);
	/* Only this client is left (it counts itself). */
	assert_true(th_status_await(fd, "clients", 1, 10000));
	assert_true(th_status_get(fd, "connections_accepted") >= CYCLES + 1);
	close(fd);
	witch_server_free(srv);
}

/* ---- the error table --------------------------------------------------- */

static void
test_errors(void **state)
{
	static const struct {
		int		 code;
		const char	*slug, *text;
	} tab[] = {
#define E(n, name, slug, text) { WITCH_E##name, slug, text },
		WITCH_ERRORS(E)
#undef E
	};
	/* The slugs protocol.md names at least. */
	static const char *wire[] = { "parse_error", "invalid_request",
	    "invalid_frame", "frame_too_large", "unknown_endpoint",
	    "handler_error", "timeout", "overloaded", "server_full",
	    "unauthorized", "incompatible", "unsupported_protocol",
	    "shutting_down", "cancelled" };
	size_t i, j, n = sizeof(tab) / sizeof(tab[0]);

	for (i = 0; i < n; i++) {
		/* Numbered 1, 2, 3 ... in list order, negative. */
		assert_int_equal(tab[i].code, -(int)(i + 1));
		assert_string_equal(witch_err_name(tab[i].code), tab[i].slug);
		assert_int_equal(witch_err_from_name(tab[i].slug),
		    tab[i].code);
		assert_string_equal(witch_strerror(tab[i].code),
		    tab[i].text);
		for (j = 0; j < i; j++) {
			assert_string_not_equal(tab[i].slug, tab[j].slug);
			assert_string_not_equal(tab[i].text, tab[j].text);
		}
		/* Slugs are lower-case words joined by '_'. */
		for (j = 0; tab[i].slug[j] != '\0'; j++)
			assert_true((tab[i].slug[j] >= 'a' &&
			    tab[i].slug[j] <= 'z') || tab[i].slug[j] == '_');
	}
	for (i = 0; i < sizeof(wire) / sizeof(wire[0]); i++) {
		int c = witch_err_from_name(wire[i]);

		assert_true(c < 0 && c != WITCH_EINVAL);
		assert_string_equal(witch_err_name(c), wire[i]);
	}
	assert_int_equal(witch_err_from_name("server_full"),
	    WITCH_ESERVER_FULL);
	assert_int_equal(witch_err_from_name("cancelled"), WITCH_ECANCELLED);
	/* Unknown values and slugs. */
	assert_string_equal(witch_err_name(-(int)n - 1), "unknown");
	assert_string_equal(witch_err_name(1), "unknown");
	assert_int_equal(witch_err_from_name("no_such_slug"), WITCH_EINVAL);
	assert_int_equal(witch_err_from_name(""), WITCH_EINVAL);
	assert_non_null(witch_strerror(0));
	assert_non_null(witch_strerror(-(int)n - 1));
	assert_non_null(witch_strerror(12345));
}

/* A handler that tries to stop or free its own server is refused. */
static int
h_stop_self(witch_request_t *req, void *ud)
{
	witch_server_t *srv = witch_request_server(req);

	witch_server_free(srv);		/* must be a no-op here */
	return witch_request_reply(req, json_integer(witch_server_stop(srv,
	    0)));
}

static void
reg_stop_self(witch_server_t *srv, void *arg)
{
	assert_int_equal(witch_server_register_endpoint(srv, "stop_self",
	    h_stop_self, NULL), 0);
}

static void
test_stop_from_handler(void **state)
{
	witch_server_t *srv = th_server_start(NULL, reg_stop_self, NULL);
	json_t *r;
	int fd = th_connect(witch_server_port(srv));

	th_send(fd, "{\"id\":1,\"endpoint\":\"stop_self\"}");
	r = th_recv(fd, 0);
	assert_non_null(r);
	assert_int_equal(json_integer_value(json_object_get(r, "result")),
	    WITCH_ESTATE);
	json_decref(r);
	/* The server is still serving. */
	th_send(fd, "{\"id\":2,\"endpoint\":\"ping\"}");
	r = th_recv(fd, 0);
	assert_non_null(r);
	assert_int_equal(th_id(r), 2);
	json_decref(r);
	close(fd);
	witch_server_free(srv);
}

/* Live settings change without a restart; open connections are kept. */
static void
test_reconfigure(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	json_t *r;
	int a, b, c;

	witch_server_config_set_max_clients(cfg, 1);
	srv = th_server_start(cfg, NULL, NULL);
	a = th_connect(witch_server_port(srv));
	th_send(a, "{\"id\":1,\"endpoint\":\"ping\"}");
	r = th_recv(a, 0);
	assert_int_equal(th_id(r), 1);
	json_decref(r);
	b = th_connect(witch_server_port(srv));
	assert_string_equal(th_recv_code(b, NULL), "server_full");
	close(b);
	assert_int_equal(witch_server_clients(srv), 1);

	witch_server_config_set_max_clients(cfg, 2);
	assert_int_equal(witch_server_reconfigure(srv, cfg), 0);
	c = th_connect(witch_server_port(srv));
	th_send(c, "{\"id\":2,\"endpoint\":\"status\"}");
	r = th_recv(c, 0);
	assert_int_equal(th_id(r), 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r,
	    "result"), "max_clients")), 2);
	json_decref(r);
	assert_int_equal(witch_server_clients(srv), 2);
	close(a);
	close(c);
	witch_server_config_free(cfg);
	witch_server_free(srv);
}

/* A handler that takes a little time, so thousands stay in flight. */
static int
h_slowish(witch_request_t *req, void *ud)
{
	struct timespec ts = { 0, 200000 };

	nanosleep(&ts, NULL);
	return witch_request_reply(req, json_true());
}

static void
reg_slowish(witch_server_t *srv, void *arg)
{
	assert_int_equal(witch_server_register_endpoint(srv, "slowish",
	    h_slowish, NULL), 0);
}

struct flood {
	int		 fd;
	int		 n;
	int		 results, refused, other;
	int		 max_answered;
	bool		 closing, dup, bad_id;
	pthread_t	 tid;
};

/* Read one connection to EOF, accounting every reply by id. */
static void *
flood_reader(void *arg)
{
	struct flood *f = arg;
	unsigned char *seen = calloc((size_t)f->n + 1, 1);
	const char *code;
	json_int_t id;
	json_t *r;

	while ((r = th_recv(f->fd, 20000)) != NULL) {
		if (json_object_get(r, "event") != NULL) {
			f->closing = true;
			json_decref(r);
			continue;
		}
		id = th_id(r);
		if (id < 1 || id > f->n)
			f->bad_id = true;
		else if (seen[id]++)
			f->dup = true;
		else if (id > f->max_answered)
			f->max_answered = (int)id;
		code = th_err_code(r);
		if (code == NULL)
			f->results++;
		else if (strcmp(code, "shutting_down") == 0)
			f->refused++;
		else
			f->other++;
		json_decref(r);
	}
	/* None vanish: what the server read was answered, in order. */
	for (id = 1; id <= f->max_answered; id++)
		if (!seen[id])
			f->bad_id = true;
	free(seen);
	return NULL;
}

/*
 * Stop with thousands of requests in flight: every request the server
 * read is answered (result or shutting_down) exactly once, then the
 * closing notice covers the rest, then EOF.
 */
static void
test_stop_thousands(void **state)
{
	witch_server_config_t *cfg = th_config();
	struct flood f[4];
	witch_server_t *srv;
	char *buf, *p;
	size_t cap = 1000 * 64;
	int c, i, total = 0;

	witch_server_config_set_workers(cfg, 1);
	witch_server_config_set_drain_timeout(cfg, 300);
	srv = th_server_start(cfg, reg_slowish, NULL);
	witch_server_config_free(cfg);
	buf = malloc(cap);
	for (c = 0; c < 4; c++) {
		memset(&f[c], 0, sizeof(f[c]));
		f[c].n = 1000;
		f[c].fd = th_connect(witch_server_port(srv));
		for (i = 1, p = buf; i <= f[c].n; i++) {
			char json[64];
			int len = snprintf(json, sizeof(json),
			    "{\"id\":%d,\"endpoint\":\"slowish\"}", i);

			th_frame((unsigned char *)p, json, (uint32_t)len);
			p += 4 + len;
		}
		assert_int_equal(pthread_create(&f[c].tid, NULL, flood_reader,
		    &f[c]), 0);
		assert_int_equal(th_send_raw(f[c].fd, buf, (size_t)(p - buf)),
		    0);
	}
	free(buf);
	/* Let some run, then stop with most still queued. */
	for (i = 0; i < 10000 && witch_server_clients(srv) < 4; i++)
		usleep(1000);
	usleep(50000);
	assert_int_equal(witch_server_stop(srv, -1), 0);
	for (c = 0; c < 4; c++) {
		assert_int_equal(pthread_join(f[c].tid, NULL), 0);
		assert_false(f[c].dup);
		assert_false(f[c].bad_id);
		assert_int_equal(f[c].other, 0);
		assert_true(f[c].closing);
		assert_int_equal(f[c].results + f[c].refused,
		    f[c].max_answered);
		total += f[c].results + f[c].refused;
		close(f[c].fd);
	}
	/* Thousands were in flight, and some were refused, not run. */
	assert_true(total >= 1000);
	assert_true(f[0].refused + f[1].refused + f[2].refused +
	    f[3].refused > 0);
	witch_server_free(srv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stop_drains),
		cmocka_unit_test(test_stop_deadline),
		cmocka_unit_test(test_states),
		cmocka_unit_test(test_port_in_use),
		cmocka_unit_test(test_connect_cycles),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_stop_from_handler),
		cmocka_unit_test(test_reconfigure),
		cmocka_unit_test(test_stop_thousands),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
