/*
 * test_auth: authentication (hello + auth, HMAC-SHA256) and protected
 * mode over real sockets.  The client library with the right key, a
 * wrong key and no key; then hand-made frames for what a library never
 * sends: truncated and malformed auth, a replayed proof, a reused or
 * reflected nonce, a proof for the other role or another protocol, and
 * a flood of failures (rate limited while an authenticated client is
 * still served).  The pre-authentication frame cap of a keyed server: on
 * loopback TCP until the exchange, lifted by it, never on the control
 * socket.  Protected mode needs a remote client: tests/daemon/test_auth.sh
 * checks it across two network namespaces.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/un.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <witch/witch.h>

#include "integ/harness.h"
#include "proto/auth.h"

static const char KEY[] = "0123456789abcdef0123456789abcdef-test-key";
static const char BADKEY[] = "0123456789abcdef0123456789abcdeX-test-key";

static witch_server_t *
keyed_server(const char *key)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;

	if (key != NULL)
		assert_int_equal(witch_server_config_set_key(cfg, key,
		    strlen(key)), 0);
	srv = th_server_start(cfg, NULL, NULL);
	witch_server_config_free(cfg);	/* the server has its copy */
	return srv;
}

static witch_client_t *
client(unsigned port, const char *key)
{
	witch_client_config_t *cc;
	witch_client_t *c;

	assert_int_equal(witch_client_config_new(&cc), 0);
	witch_client_config_set_port(cc, port);
	witch_client_config_set_connect_timeout(cc, 3000);
	witch_client_config_set_request_timeout(cc, 3000);
	witch_client_config_set_auto_reconnect(cc, false);
	if (key != NULL)
		assert_int_equal(witch_client_config_set_key(cc, key,
		    strlen(key)), 0);
	assert_int_equal(witch_client_new(&c, cc), 0);
	witch_client_config_free(cc);
	return c;
}

/* ---- the library -------------------------------------------------------- */

static void
test_key_setters(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_client_config_t *cc;

	(void)state;
	/* Too short, too long: refused; NULL: no key. */
	assert_int_equal(witch_server_config_set_key(cfg, "short", 5),
	    WITCH_EINVAL);
	assert_int_equal(witch_server_config_set_key(cfg, KEY,
	    WITCH_KEY_MAX + 1), WITCH_EINVAL);
	assert_int_equal(witch_server_config_set_key(cfg, NULL, 0), 0);
	witch_server_config_free(cfg);
	assert_int_equal(witch_client_config_new(&cc), 0);
	assert_int_equal(witch_client_config_set_key(cc, KEY, 31),
	    WITCH_EINVAL);
	witch_client_config_free(cc);
}

static void
test_right_key_passes(void **state)
{
	witch_server_t *srv = keyed_server(KEY);
	witch_client_t *c = client(witch_server_port(srv), KEY);
	witch_error_t err;
	json_t *res = NULL, *data;

	(void)state;
	assert_int_equal(witch_client_connect(c, &err), 0);
	assert_int_equal(witch_client_state(c), WITCH_CLIENT_CONNECTED);
	data = json_string("hi");	/* borrowed by the call */
	assert_int_equal(witch_client_call(c, "echo", data, 0, &res, &err),
	    0);
	json_decref(data);
	assert_string_equal(json_string_value(json_object_get(res, "echo")),
	    "hi");
	json_decref(res);
	witch_client_free(c);
	witch_server_free(srv);
}

static void
test_wrong_key_fails(void **state)
{
	witch_server_t *srv = keyed_server(KEY);
	witch_client_t *c = client(witch_server_port(srv), BADKEY);
	witch_error_t err;
	json_t *res = NULL;

	(void)state;
	assert_int_equal(witch_client_connect(c, &err), WITCH_EUNAUTHORIZED);
	assert_int_equal(err.code, WITCH_EUNAUTHORIZED);
	assert_non_null(strstr(err.text, "wrong proof"));
	assert_int_not_equal(witch_client_state(c), WITCH_CLIENT_CONNECTED);
	witch_client_free(c);
	/* Counted: status, asked with the right key. */
	c = client(witch_server_port(srv), KEY);
	assert_int_equal(witch_client_connect(c, &err), 0);
	assert_int_equal(witch_client_call(c, "status", NULL, 0, &res, &err),
	    0);
	assert_int_equal(json_integer_value(json_object_get(res,
	    "auth_failed")), 1);
	assert_string_equal(json_string_value(json_object_get(res, "auth")),
	    "key");
	json_decref(res);
	witch_client_free(c);
	witch_server_free(srv);
}

/* A client with a key refuses a server without one (a stripped challenge). */
static void
test_keyless_server_refused(void **state)
{
	witch_server_t *srv = keyed_server(NULL);
	witch_client_t *c = client(witch_server_port(srv), KEY);
	witch_error_t err;

	(void)state;
	assert_int_equal(witch_client_connect(c, &err), WITCH_EUNAUTHORIZED);
	assert_non_null(strstr(err.text, "cannot prove"));
	witch_client_free(c);
	witch_server_free(srv);
}

/* No key: connected; ping answered, anything else unauthorized. */
static void
test_no_key_client(void **state)
{
	witch_server_t *srv = keyed_server(KEY);
	witch_client_t *c = client(witch_server_port(srv), NULL);
	witch_error_t err;
	json_t *res = NULL, *data;

	(void)state;
	assert_int_equal(witch_client_connect(c, &err), 0);
	assert_int_equal(witch_client_call(c, "ping", NULL, 0, &res, &err), 0);
	json_decref(res);
	res = NULL;
	data = json_string("x");
	assert_int_not_equal(witch_client_call(c, "echo", data, 0, &res,
	    &err), 0);
	json_decref(data);
	assert_int_equal(err.remote, WITCH_EUNAUTHORIZED);
	assert_non_null(strstr(err.text, "authentication required"));
	assert_int_not_equal(witch_client_call(c, "info", NULL, 0, &res,
	    &err), 0);
	assert_int_equal(err.remote, WITCH_EUNAUTHORIZED);
	witch_client_free(c);
	witch_server_free(srv);
}

/* ---- hand-made exchanges ------------------------------------------------ */

static struct witch__key the_key;

/* hello on fd: the server's nonce into ns. */
static void
hello(int fd, int id, uint8_t ns[WITCH__AUTH_NONCE])
{
	json_t *r, *a;
	const char *n;

	th_sendf(fd, "{\"id\":%d,\"endpoint\":\"hello\",\"data\":"
	    "{\"protocols\":[\"v1\"]}}", id);
	r = th_recv_ok(fd, 0);
	assert_int_equal(th_id(r), id);
	a = json_object_get(json_object_get(r, "result"), "auth");
	assert_string_equal(json_string_value(json_object_get(a, "method")),
	    "hmac-sha256");
	n = json_string_value(json_object_get(a, "nonce"));
	assert_non_null(n);
	assert_int_equal(strlen(n), 64);
	assert_true(witch__hex_decode(n, 64, ns, WITCH__AUTH_NONCE));
	json_decref(r);
}

/* Send auth with nonce nc and a proof by role over protocol. */
static void
send_auth(int fd, int id, const struct witch__key *k, int role,
    const char *proto, const uint8_t ns[WITCH__AUTH_NONCE],
    const uint8_t nc[WITCH__AUTH_NONCE])
{
	uint8_t p[WITCH__AUTH_MAC];
	char nh[65], ph[65];

	witch__auth_proof(k, (enum witch__auth_role)role, proto, ns, nc, p);
	witch__hex_encode(nc, WITCH__AUTH_NONCE, nh);
	witch__hex_encode(p, WITCH__AUTH_MAC, ph);
	th_sendf(fd, "{\"id\":%d,\"endpoint\":\"auth\",\"data\":"
	    "{\"nonce\":\"%s\",\"proof\":\"%s\"}}", id, nh, ph);
}

static void
expect_closed(int fd)
{
	assert_int_equal(th_wait_eof(fd, 3000), 1);
	close(fd);
}

static void
test_raw_exchange(void **state)
{
	witch_server_t *srv = keyed_server(KEY);
	unsigned port = witch_server_port(srv);
	uint8_t ns[32], nc[32], want[32];
	json_t *r;
	const char *proof;
	int fd;

	(void)state;
	witch__key_set(&the_key, KEY, strlen(KEY));
	memset(nc, 0x5a, sizeof(nc));
	fd = th_connect(port);
	/* Before auth: ping yes, echo and info no. */
	th_ping_ok(fd);
	th_send(fd, "{\"id\":2,\"endpoint\":\"echo\",\"data\":1}");
	th_expect_reply(fd, 2, "unauthorized");
	th_send(fd, "{\"id\":3,\"endpoint\":\"no_such\"}");
	th_expect_reply(fd, 3, "unauthorized");
	hello(fd, 4, ns);
	send_auth(fd, 5, &the_key, WITCH__AUTH_CLIENT, "v1", ns, nc);
	r = th_recv_ok(fd, 0);
	assert_int_equal(th_id(r), 5);
	proof = json_string_value(json_object_get(json_object_get(r,
	    "result"), "proof"));
	assert_non_null(proof);
	/* The server's proof is its role's, not an echo of ours. */
	witch__auth_proof(&the_key, WITCH__AUTH_SERVER, "v1", ns, nc, want);
	assert_true(witch__auth_client_check(&the_key, "v1", ns, nc, proof,
	    strlen(proof)));
	json_decref(r);
	th_send(fd, "{\"id\":6,\"endpoint\":\"echo\",\"data\":1}");
	th_expect_reply(fd, 6, NULL);
	close(fd);
	witch_server_free(srv);
}

/* Each bad auth: an error reply with code, then the connection closes. */
static void
bad_auth(unsigned port, const char *code, void (*send)(int fd,
    const uint8_t ns[32], void *arg), void *arg)
{
	uint8_t ns[32];
	int fd = th_connect(port);

	hello(fd, 1, ns);
	send(fd, ns, arg);
	th_expect_reply(fd, 9, code);
	expect_closed(fd);
}

static void
s_truncated_nonce(int fd, const uint8_t ns[32], void *arg)
{
	th_send(fd, "{\"id\":9,\"endpoint\":\"auth\",\"data\":{\"nonce\":"
	    "\"abcd\",\"proof\":\"00\"}}");
}

static void
s_no_proof(int fd, const uint8_t ns[32], void *arg)
{
	th_send(fd, "{\"id\":9,\"endpoint\":\"auth\",\"data\":{\"nonce\":"
	    "\"000000000000000000000000000000000000000000000000000000000000"
	    "0000\"}}");
}

static void
s_not_object(int fd, const uint8_t ns[32], void *arg)
{
	th_send(fd, "{\"id\":9,\"endpoint\":\"auth\",\"data\":[1,2]}");
}

static void
s_wrong_key(int fd, const uint8_t ns[32], void *arg)
{
	struct witch__key bad;
	uint8_t nc[32];

	witch__key_set(&bad, BADKEY, strlen(BADKEY));
	memset(nc, 1, sizeof(nc));
	send_auth(fd, 9, &bad, WITCH__AUTH_CLIENT, "v1", ns, nc);
}

/* The server's own nonce sent back as the client's. */
static void
s_reflected_nonce(int fd, const uint8_t ns[32], void *arg)
{
	send_auth(fd, 9, &the_key, WITCH__AUTH_CLIENT, "v1", ns, ns);
}

/* A proof made for the server's role. */
static void
s_server_role(int fd, const uint8_t ns[32], void *arg)
{
	uint8_t nc[32];

	memset(nc, 2, sizeof(nc));
	send_auth(fd, 9, &the_key, WITCH__AUTH_SERVER, "v1", ns, nc);
}

/* A proof bound to another protocol than the one hello chose. */
static void
s_other_protocol(int fd, const uint8_t ns[32], void *arg)
{
	uint8_t nc[32];

	memset(nc, 3, sizeof(nc));
	send_auth(fd, 9, &the_key, WITCH__AUTH_CLIENT, "v0", ns, nc);
}

static void
test_bad_auth_messages(void **state)
{
	witch_server_t *srv = keyed_server(KEY);
	unsigned port = witch_server_port(srv);
	int fd;

	(void)state;
	witch__key_set(&the_key, KEY, strlen(KEY));
	bad_auth(port, "invalid_request", s_truncated_nonce, NULL);
	bad_auth(port, "invalid_request", s_no_proof, NULL);
	bad_auth(port, "invalid_request", s_not_object, NULL);
	bad_auth(port, "unauthorized", s_wrong_key, NULL);
	bad_auth(port, "unauthorized", s_reflected_nonce, NULL);
	/* Wait out the limiter (5 failures, then one per 2 s). */
	th_sleep_ms(2 * 2000 + 100);
	bad_auth(port, "unauthorized", s_server_role, NULL);
	bad_auth(port, "unauthorized", s_other_protocol, NULL);
	/* auth without hello: no challenge outstanding. */
	th_sleep_ms(2 * 2000 + 100);
	fd = th_connect(port);
	th_send(fd, "{\"id\":9,\"endpoint\":\"auth\",\"data\":{\"nonce\":"
	    "\"1111111111111111111111111111111111111111111111111111111111111111"
	    "\",\"proof\":\"22222222222222222222222222222222222222222222222222"
	    "22222222222222\"}}");
	th_expect_reply(fd, 9, "unauthorized");
	expect_closed(fd);
	witch_server_free(srv);
}

/* A good auth replayed: on another connection, and after a new hello. */
static void
test_replay(void **state)
{
	witch_server_t *srv = keyed_server(KEY);
	unsigned port = witch_server_port(srv);
	uint8_t ns1[32], ns2[32], nc[32];
	int a, b;

	(void)state;
	witch__key_set(&the_key, KEY, strlen(KEY));
	memset(nc, 0x77, sizeof(nc));
	a = th_connect(port);
	hello(a, 1, ns1);
	send_auth(a, 2, &the_key, WITCH__AUTH_CLIENT, "v1", ns1, nc);
	th_expect_reply(a, 2, NULL);
	/* The same bytes on a second connection: its nonce differs. */
	b = th_connect(port);
	hello(b, 1, ns2);
	assert_memory_not_equal(ns1, ns2, 32);
	send_auth(b, 9, &the_key, WITCH__AUTH_CLIENT, "v1", ns1, nc);
	th_expect_reply(b, 9, "unauthorized");
	expect_closed(b);
	/* The nonce is used up: the same auth again on a, no hello. */
	send_auth(a, 9, &the_key, WITCH__AUTH_CLIENT, "v1", ns1, nc);
	th_expect_reply(a, 9, "unauthorized");
	expect_closed(a);
	/* A new hello voids the previous nonce. */
	a = th_connect(port);
	hello(a, 1, ns1);
	hello(a, 2, ns2);
	send_auth(a, 9, &the_key, WITCH__AUTH_CLIENT, "v1", ns1, nc);
	th_expect_reply(a, 9, "unauthorized");
	expect_closed(a);
	witch_server_free(srv);
}

/* A flood of failures is limited; an authenticated client is served. */
static void
test_flood(void **state)
{
	witch_server_t *srv = keyed_server(KEY);
	unsigned port = witch_server_port(srv);
	witch_client_t *good = client(port, KEY), *late;
	witch_error_t err;
	json_t *res = NULL, *r, *data;
	uint8_t ns[32], nc[32];
	int i, fd, limited = 0;
	uint64_t t0, start;

	(void)state;
	witch__key_set(&the_key, KEY, strlen(KEY));
	assert_int_equal(witch_client_connect(good, &err), 0);
	start = th_now_ms();
	for (i = 0; i < 50; i++) {
		fd = th_connect(port);
		hello(fd, 1, ns);
		memset(nc, i + 1, sizeof(nc));
		send_auth(fd, 9, &the_key, WITCH__AUTH_CLIENT, "v9", ns, nc);
		r = th_recv_ok(fd, 0);
		assert_string_equal(th_err_code(r), "unauthorized");
		if (strstr(json_string_value(json_object_get(json_object_get(r,
		    "error"), "message")), "too many") != NULL)
			limited++;
		json_decref(r);
		expect_closed(fd);
		/* The authenticated client is still served, promptly. */
		t0 = th_now_ms();
		data = json_integer(i);
		assert_int_equal(witch_client_call(good, "echo", data, 0, &res,
		    &err), 0);
		assert_true(th_now_ms() - t0 < 1000);
		json_decref(data);
		json_decref(res);
		res = NULL;
	}
	/*
	 * 5 failures are checked, then one per 2 s: the rest are refused
	 * unchecked (a slow run, as under TSan, earns a few more checks).
	 */
	assert_true(50 - limited >= 5);
	assert_true(50 - limited <= 5 + (int)((th_now_ms() - start) / 2000) +
	    1);
	/* While limited even the right key is refused from this address. */
	late = client(port, KEY);
	assert_int_equal(witch_client_connect(late, &err),
	    WITCH_EUNAUTHORIZED);
	assert_non_null(strstr(err.text, "too many"));
	witch_client_free(late);
	witch_client_free(good);
	witch_server_free(srv);
}

/* ---- the pre-authentication frame cap with a key ------------------- */

#define CAP	WITCH_DEFAULT_PREAUTH_MAX_FRAME

/* The next frame on fd is the final frame_too_large error, then EOF. */
static void
expect_too_large(int fd)
{
	json_t *r = th_recv_ok(fd, 0);

	assert_true(json_is_null(json_object_get(r, "id")));
	assert_string_equal(th_err_code(r), "frame_too_large");
	assert_non_null(strstr(json_string_value(json_object_get(
	    json_object_get(r, "error"), "message")),
	    "before authentication (preauth_max_frame)"));
	json_decref(r);
	expect_closed(fd);
}

/* An echo of n bytes on fd (id) comes back whole. */
static void
expect_echo(int fd, json_int_t id, size_t n)
{
	json_t *r = th_recv_ok(fd, 0);
	const char *s;

	assert_int_equal(th_id(r), id);
	assert_null(th_err_code(r));
	s = json_string_value(json_object_get(json_object_get(r, "result"),
	    "echo"));
	assert_non_null(s);
	assert_true(strlen(s) > n - 64 && strspn(s, "y") == strlen(s));
	json_decref(r);
}

/*
 * With a key, every TCP client, loopback included (loopback is exempt
 * only without a key), is held to preauth_max_frame until it has
 * authenticated: its first frames, hello included, do not lift the cap.
 */
static void
test_preauth_cap_keyed(void **state)
{
	witch_server_t *srv = keyed_server(KEY);
	unsigned port = witch_server_port(srv);
	witch_client_t *c;
	witch_error_t err;
	json_t *res = NULL;
	uint8_t ns[32];
	int fd;

	(void)state;
	/* Over the cap as the first frame: refused, closed. */
	fd = th_connect(port);
	assert_int_equal(th_send_echo(fd, 1, CAP + 1), 0);
	expect_too_large(fd);
	/* After ping and hello (frames done, no auth): still refused. */
	fd = th_connect(port);
	th_ping_ok(fd);
	hello(fd, 1, ns);
	assert_int_equal(th_send_echo(fd, 2, CAP + 1), 0);
	expect_too_large(fd);
	/* Counted, as seen by an authenticated client. */
	c = client(port, KEY);
	assert_int_equal(witch_client_connect(c, &err), 0);
	assert_int_equal(witch_client_call(c, "status", NULL, 0, &res, &err),
	    0);
	assert_int_equal(json_integer_value(json_object_get(res,
	    "preauth_frame_refusals")), 2);
	json_decref(res);
	witch_client_free(c);
	witch_server_free(srv);
}

/*
 * At the cap: read and answered (unauthorized: echo is not open before
 * authentication), the connection stays.  After the auth exchange the
 * same connection sends 100 KiB and gets its echo; an auth pipelined with
 * the large frame behind it (no wait for the reply) lifts the cap in time.
 */
static void
test_preauth_cap_lifted(void **state)
{
	witch_server_t *srv = keyed_server(KEY);
	unsigned port = witch_server_port(srv);
	uint8_t ns[32], nc[32];
	int fd;

	(void)state;
	witch__key_set(&the_key, KEY, strlen(KEY));
	fd = th_connect(port);
	assert_int_equal(th_send_echo(fd, 1, CAP), 0);
	th_expect_reply(fd, 1, "unauthorized");
	th_ping_ok(fd);
	hello(fd, 2, ns);
	memset(nc, 0x41, sizeof(nc));
	send_auth(fd, 3, &the_key, WITCH__AUTH_CLIENT, "v1", ns, nc);
	th_expect_reply(fd, 3, NULL);
	assert_int_equal(th_send_echo(fd, 4, 100u << 10), 0);
	expect_echo(fd, 4, 100u << 10);
	assert_int_equal(th_status_get(fd, "preauth_frame_refusals"), 0);
	close(fd);
	/* Pipelined: auth, then at once the large frame. */
	fd = th_connect(port);
	hello(fd, 1, ns);
	memset(nc, 0x42, sizeof(nc));
	send_auth(fd, 2, &the_key, WITCH__AUTH_CLIENT, "v1", ns, nc);
	assert_int_equal(th_send_echo(fd, 3, 100u << 10), 0);
	th_expect_reply(fd, 2, NULL);
	expect_echo(fd, 3, 100u << 10);
	close(fd);
	witch_server_free(srv);
}

/* The control socket of a keyed server: authenticated at accept, no cap. */
static void
test_preauth_cap_unix(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	struct sockaddr_un sun;
	char dir[] = "/tmp/witch-auth-XXXXXX", path[64];
	int fd, tcp;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/w.sock", dir);
	assert_int_equal(witch_server_config_set_key(cfg, KEY, strlen(KEY)),
	    0);
	assert_int_equal(witch_server_config_set_unix_path(cfg, path, 0600),
	    0);
	srv = th_server_start(cfg, NULL, NULL);
	witch_server_config_free(cfg);
	assert_true((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >=
	    0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)),
	    0);
	/* The first frame, 100 KiB, no exchange: served. */
	assert_int_equal(th_send_echo(fd, 1, 100u << 10), 0);
	expect_echo(fd, 1, 100u << 10);
	/* TCP on the same server is capped (so the cap is on here). */
	tcp = th_connect(witch_server_port(srv));
	assert_int_equal(th_send_echo(tcp, 2, CAP + 1), 0);
	expect_too_large(tcp);
	assert_int_equal(th_status_get(fd, "preauth_frame_refusals"), 1);
	close(fd);
	witch_server_free(srv);
	unlink(path);
	rmdir(dir);
}

/* ---- peers ------------------------------------------------------------- */

static char refused_log[512];		/* under log_mu */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

/* Whether a peer's log said "refused", and the line (any thread). */
static bool
refused_said(const char *what)
{
	bool yes;

	pthread_mutex_lock(&log_mu);
	yes = refused_log[0] != '\0' && (what == NULL ||
	    strstr(refused_log, what) != NULL);
	pthread_mutex_unlock(&log_mu);
	return yes;
}

static void
peer_log(int level, const char *msg, void *ud)
{
	(void)level;
	(void)ud;
	if (getenv("WITCH_TEST_LOG") != NULL)
		fprintf(stderr, "peer log: %s\n", msg);
	pthread_mutex_lock(&log_mu);
	if (strstr(msg, "refused") != NULL && refused_log[0] == '\0')
		snprintf(refused_log, sizeof(refused_log), "%s", msg);
	pthread_mutex_unlock(&log_mu);
}

static witch_server_t *
peer_server(const char *name, const char *key, unsigned seed_port,
    bool log)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	char seed[64];

	witch_server_config_set_name(cfg, name);
	witch_server_config_set_project_id(cfg, "P");
	witch_server_config_set_key(cfg, key, strlen(key));
	witch_server_config_set_peering(cfg, true);
	witch_server_config_set_peer_heartbeat(cfg,
	    WITCH_PEER_HEARTBEAT_MIN_MS);
	if (seed_port != 0) {
		snprintf(seed, sizeof(seed), "127.0.0.1:%u", seed_port);
		witch_server_config_add_peer_seed(cfg, seed);
	}
	if (log)
		witch_server_config_set_logger(cfg, peer_log, NULL);
	srv = th_server_start(cfg, NULL, NULL);
	witch_server_config_free(cfg);
	return srv;
}

static size_t
npeers(witch_server_t *srv)
{
	json_t *a;
	size_t n;

	assert_int_equal(witch_server_peers(srv, &a), 0);
	n = json_array_size(a);
	json_decref(a);
	return n;
}

/* Peers with the same key link; with another key they never do. */
static void
test_peers_keys(void **state)
{
	witch_server_t *a, *b, *c;
	uint64_t end;

	(void)state;
	pthread_mutex_lock(&log_mu);
	refused_log[0] = '\0';
	pthread_mutex_unlock(&log_mu);
	a = peer_server("pa", KEY, 0, false);
	b = peer_server("pb", KEY, witch_server_port(a), false);
	c = peer_server("pc", BADKEY, witch_server_port(a), true);
	end = th_now_ms() + 5000;
	while ((npeers(a) < 1 || npeers(b) < 1 || !refused_said(NULL)) &&
	    th_now_ms() < end)
		th_sleep_ms(50);
	assert_int_equal(npeers(b), 1);		/* pb lists pa */
	assert_true(refused_said("same key-file"));
	/* Ten heartbeats later pc still lists nobody, and pa only pb. */
	th_sleep_ms(10 * WITCH_PEER_HEARTBEAT_MIN_MS);
	assert_int_equal(npeers(c), 0);
	assert_int_equal(npeers(a), 1);
	witch_server_free(c);
	witch_server_free(b);
	witch_server_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_setters),
		cmocka_unit_test(test_right_key_passes),
		cmocka_unit_test(test_wrong_key_fails),
		cmocka_unit_test(test_keyless_server_refused),
		cmocka_unit_test(test_no_key_client),
		cmocka_unit_test(test_raw_exchange),
		cmocka_unit_test(test_bad_auth_messages),
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_flood),
		cmocka_unit_test(test_preauth_cap_keyed),
		cmocka_unit_test(test_preauth_cap_lifted),
		cmocka_unit_test(test_preauth_cap_unix),
		cmocka_unit_test(test_peers_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
