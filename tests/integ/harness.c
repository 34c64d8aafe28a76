/*
 * tests/integ/harness.c: see harness.h.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <time.h>
#include <cmocka.h>

#include "integ/harness.h"

static void
die(const char *what)
{
	fprintf(stderr, "harness: %s: %s\n", what, strerror(errno));
	abort();
}

witch_server_config_t *
th_config(void)
{
	witch_server_config_t *cfg;

	if (witch_server_config_new(&cfg) != 0)
		die("config");
	return cfg;
}

witch_server_t *
th_server_start(witch_server_config_t *cfg,
    void (*reg)(witch_server_t *, void *), void *arg)
{
	witch_server_t *srv;
	witch_error_t err;
	int own = 0;

	if (cfg == NULL) {
		cfg = th_config();
		own = 1;
	}
	witch_server_config_set_bind(cfg, "127.0.0.1");
	witch_server_config_set_port(cfg, 0);
	if (witch_server_new(&srv, cfg) != 0)
		die("server_new");
	if (own)
		witch_server_config_free(cfg);
	if (reg != NULL)
		reg(srv, arg);
	if (witch_server_start(srv, &err) != 0) {
		fprintf(stderr, "harness: start: %s\n", err.text);
		abort();
	}
	return srv;
}

int
th_connect(unsigned port)
{
	int fd = th_dial(port);

	if (fd == -1)
		die("connect");
	return fd;
}

int
th_dial(unsigned port)
{
	struct sockaddr_in sin;
	int fd, on = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	return fd;
}

uint64_t
th_rand(uint64_t *state)
{
	/* xorshift64*: a fixed seed gives a reproducible sequence. */
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 2685821657736338717ull;
}

unsigned
th_randn(uint64_t *state, unsigned n)
{
	return (unsigned)(th_rand(state) >> 33) % n;
}

void
th_fail_first(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (buf[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

int
th_send_raw(int fd, const void *p, size_t n)
{
	const unsigned char *b = p;
	ssize_t w;

	while (n > 0) {
		w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

void
th_frame(unsigned char *out, const void *payload, uint32_t n)
{
	out[0] = n >> 24;
	out[1] = n >> 16;
	out[2] = n >> 8;
	out[3] = n;
	memcpy(out + 4, payload, n);
}

int
th_send(int fd, const char *json)
{
	size_t n = strlen(json);
	unsigned char *f = malloc(n + 4);
	int rc;

	if (f == NULL)
		return -1;
	th_frame(f, json, (uint32_t)n);
	rc = th_send_raw(fd, f, n + 4);
	free(f);
	return rc;
}

int
th_send_echo(int fd, json_int_t id, size_t n)
{
	unsigned char *f;
	int k, rc;

	if (n < 64 || n > UINT32_MAX || (f = malloc(n + 4)) == NULL)
		return -1;
	k = snprintf((char *)f + 4, n, "{\"id\":%lld,\"endpoint\":\"echo\","
	    "\"data\":\"", (long long)id);
	if (k < 0 || (size_t)k + 2 > n) {
		free(f);
		return -1;
	}
	memset(f + 4 + k, 'y', n - (size_t)k - 2);
	f[4 + n - 2] = '"';
	f[4 + n - 1] = '}';
	f[0] = (unsigned char)(n >> 24);
	f[1] = (unsigned char)(n >> 16);
	f[2] = (unsigned char)(n >> 8);
	f[3] = (unsigned char)n;
	rc = th_send_raw(fd, f, n + 4);
	free(f);
	return rc;
}

int
th_sendf(int fd, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -1;
	rc = th_send(fd, s);
	free(s);
	return rc;
}

/* Read exactly n bytes before the absolute deadline; 0, or -1. */
static int
read_full(int fd, unsigned char *p, size_t n, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t r;

	while (n > 0) {
		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -1;
		r = recv(fd, p, n, 0);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

json_t *
th_recv(int fd, int timeout_ms)
{
	unsigned char h[4], *b;
	uint32_t n;
	json_t *j;

	if (timeout_ms <= 0)
		timeout_ms = TH_TIMEOUT_MS;
	if (read_full(fd, h, 4, timeout_ms) != 0)
		return NULL;
	n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
	    (uint32_t)h[2] << 8 | h[3];
	if (n == 0 || n > (64u << 20) || (b = malloc(n)) == NULL)
		return NULL;
	if (read_full(fd, b, n, timeout_ms) != 0) {
		free(b);
		return NULL;
	}
	j = json_loadb((const char *)b, n, JSON_ALLOW_NUL, NULL);
	free(b);
	return j;
}

int
th_wait_eof(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	unsigned char buf[4096];
	ssize_t r;

	for (;;) {
		if (poll(&pfd, 1, timeout_ms) <= 0)
			return 0;
		r = recv(fd, buf, sizeof(buf), 0);
		if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
			return 1;
	}
}

const char *
th_err_code(const json_t *reply)
{
	json_t *e = json_object_get(reply, "error");

	return e != NULL ? json_string_value(json_object_get(e, "code")) :
	    NULL;
}

json_int_t
th_id(const json_t *reply)
{
	return json_integer_value(json_object_get(reply, "id"));
}

const char *
th_recv_code(int fd, json_t **reply)
{
	static char code[64];
	const char *c;
	json_t *r = th_recv(fd, 0);

	if (r == NULL)
		return NULL;
	c = th_err_code(r);
	snprintf(code, sizeof(code), "%s", c != NULL ? c : "");
	if (reply != NULL)
		*reply = r;
	else
		json_decref(r);
	return code;
}

const char *
th_testdata(void)
{
	const char *d = getenv("WITCH_TESTDATA");

	return d != NULL && access(d, R_OK) == 0 ? d : NULL;
}

/* ---- helpers shared by the integration tests (cmocka asserts) ---- */

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t
th_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sleep ms milliseconds (bounded waits only). */
void
th_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* th_recv() that fails the test when nothing comes. */
json_t *
th_recv_ok(int fd, int timeout_ms)
{
	json_t *r = th_recv(fd, timeout_ms);

	assert_non_null(r);
	return r;
}

/* The next reply has this id and error code (NULL: a result). */
void
th_expect_reply(int fd, json_int_t id, const char *code)
{
	json_t *r = th_recv_ok(fd, 0);
	const char *c = th_err_code(r);

	assert_true(json_is_integer(json_object_get(r, "id")));
	assert_int_equal(th_id(r), id);
	assert_string_equal(c != NULL ? c : "", code != NULL ? code : "");
	json_decref(r);
}

/* harness.h */
void
th_expect_results(int fd, json_int_t first, unsigned n)
{
	unsigned char *seen = calloc(n, 1);
	json_int_t id;
	unsigned i;
	json_t *r;

	assert_non_null(seen);
	for (i = 0; i < n; i++) {
		r = th_recv_ok(fd, 0);
		id = th_id(r);
		assert_true(id >= first && id < first + (json_int_t)n);
		assert_int_equal(seen[id - first], 0);
		seen[id - first] = 1;
		assert_null(th_err_code(r));
		json_decref(r);
	}
	free(seen);
}

/* A ping on fd is answered (id 4242). */
void
th_ping_ok(int fd)
{
	json_t *r;

	assert_int_equal(th_send(fd, "{\"id\":4242,\"endpoint\":\"ping\"}"),
	    0);
	r = th_recv_ok(fd, 0);
	assert_int_equal(th_id(r), 4242);
	assert_true(json_is_true(json_object_get(json_object_get(r,
	    "result"), "pong")));
	json_decref(r);
}

/* harness.h */
json_t *
th_ask(int fd, const char *req, json_int_t id)
{
	json_t *r;

	assert_int_equal(th_send(fd, req), 0);
	r = th_recv_ok(fd, 0);
	assert_int_equal(th_id(r), id);
	return r;
}

/* An integer field of the status built-in (id 9999). */
json_int_t
th_status_get(int fd, const char *key)
{
	json_t *r, *v;
	json_int_t n;

	r = th_ask(fd, "{\"id\":9999,\"endpoint\":\"status\"}", 9999);
	v = json_object_get(json_object_get(r, "result"), key);
	assert_true(json_is_integer(v));
	n = json_integer_value(v);
	json_decref(r);
	return n;
}

/* Poll status until key == want, for at most timeout_ms. */
bool
th_status_await(int fd, const char *key, json_int_t want, unsigned timeout_ms)
{
	uint64_t end = th_now_ms() + timeout_ms;

	for (;;) {
		if (th_status_get(fd, key) == want)
			return true;
		if (th_now_ms() >= end)
			return false;
		th_sleep_ms(20);
	}
}

/* ---- processes (daemon tests) ------------------------------------------ */

pid_t
th_spawn(const char *dir, const char *prog, char *const argv[],
    char *const env[])
{
	char out[512], err[512];
	pid_t pid;
	int fd, i;

	snprintf(out, sizeof(out), "%s/stdout", dir);
	snprintf(err, sizeof(err), "%s/stderr", dir);
	fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	close(fd);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if ((fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 ||
		    dup2(fd, 1) < 0)
			_exit(126);
		close(fd);
		if ((fd = open(err, O_WRONLY | O_TRUNC, 0600)) < 0 ||
		    dup2(fd, 2) < 0)
			_exit(126);
		close(fd);
		unsetenv("NOTIFY_SOCKET");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		unsetenv("JOURNAL_STREAM");
		unsetenv("WATCHDOG_USEC");
		for (i = 0; env != NULL && env[i] != NULL; i++)
			putenv(env[i]);
		execv(prog, argv);
		_exit(127);
	}
	return pid;
}

int
th_wait_exit(pid_t pid, unsigned timeout_ms, const char *dir)
{
	uint64_t end = th_now_ms() + timeout_ms;
	char err[512];
	pid_t w;
	int st = 0;

	while ((w = waitpid(pid, &st, WNOHANG)) == 0 && th_now_ms() < end)
		th_sleep_ms(10);
	if (w == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		snprintf(err, sizeof(err), "%s/stderr", dir);
		fail_msg("process %ld did not exit within %u ms: %s",
		    (long)pid, timeout_ms, th_slurp(err));
	}
	assert_int_equal(w, pid);
	return st;
}

const char *
th_slurp(const char *file)
{
	static char buf[65536];
	size_t n = 0;
	FILE *f;

	if ((f = fopen(file, "r")) != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

/* ---- the gate ---------------------------------------------------------- */

static struct {
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cv;
	bool		 open;
	unsigned	 n[TH_GATE_NCOUNTS];
} gate = { .mtx = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* Absolute CLOCK_REALTIME time ms from now, for pthread_cond_timedwait. */
static struct timespec
abs_in(unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

void
th_gate_reset(void)
{
	pthread_mutex_lock(&gate.mtx);
	gate.open = false;
	memset(gate.n, 0, sizeof(gate.n));
	pthread_mutex_unlock(&gate.mtx);
}

void
th_gate_open(void)
{
	pthread_mutex_lock(&gate.mtx);
	gate.open = true;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.mtx);
}

bool
th_gate_await(enum th_gate_count count, unsigned n, unsigned timeout_ms)
{
	uint64_t end = th_now_ms() + timeout_ms;
	struct timespec ts;
	bool ok;

	pthread_mutex_lock(&gate.mtx);
	while (gate.n[count] < n && th_now_ms() < end) {
		ts = abs_in(20);
		pthread_cond_timedwait(&gate.cv, &gate.mtx, &ts);
	}
	ok = gate.n[count] >= n;
	pthread_mutex_unlock(&gate.mtx);
	return ok;
}

unsigned
th_gate_get(enum th_gate_count count)
{
	unsigned v;

	pthread_mutex_lock(&gate.mtx);
	v = gate.n[count];
	pthread_mutex_unlock(&gate.mtx);
	return v;
}

/* Count one more under the lock and wake awaiters. */
static void
gate_count_locked(enum th_gate_count count)
{
	gate.n[count]++;
	pthread_cond_broadcast(&gate.cv);
}

int
th_h_block(witch_request_t *req, void *ud)
{
	uint64_t end = th_now_ms() + TH_GATE_MAX_MS;
	struct timespec ts;
	bool cancelled = false;

	(void)ud;
	pthread_mutex_lock(&gate.mtx);
	gate_count_locked(TH_GATE_STARTED);
	while (!gate.open && th_now_ms() < end) {
		if ((cancelled = witch_request_cancelled(req)))
			break;
		ts = abs_in(5);
		pthread_cond_timedwait(&gate.cv, &gate.mtx, &ts);
	}
	gate_count_locked(cancelled ? TH_GATE_SAW_CANCEL : TH_GATE_NOCANCEL);
	gate_count_locked(TH_GATE_DONE);
	pthread_mutex_unlock(&gate.mtx);
	return witch_request_reply(req, json_pack("{s:b}", "cancelled",
	    cancelled));
}

int
th_h_count(witch_request_t *req, void *ud)
{
	(void)ud;
	pthread_mutex_lock(&gate.mtx);
	gate_count_locked(TH_GATE_COUNTED);
	pthread_mutex_unlock(&gate.mtx);
	return witch_request_reply(req, json_true());
}
