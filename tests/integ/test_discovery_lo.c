/*
 * test_discovery_lo: announcer and listener over loopback, no root.
 *
 * lo has no broadcast, so the announcer uses its test hook (unicast to
 * 127.0.0.1 at the listener's port, which is picked free).  Shows: the
 * server is found and verified by a real hello + ping against an
 * in-process server; garbage does not disturb the listener; a flood is
 * rate limited; stop gives LOST at once (leaving); silence gives LOST
 * after the expiry; a wrong port or another server's id fails
 * verification; a loopback-bound announcer sends nothing and says so.
 * Signed discovery: with a key, the real server is found and verified
 * (verification authenticates); unsigned, badly signed, replayed and
 * stale announcements are dropped and counted, leaving ones included;
 * the largest announcement fits 1,200 bytes signed.
 *
 * Every listener here binds a loopback address (never the wildcard of the
 * host's namespace).  The bind option itself: a bad address fails in the
 * setter; a listener bound to 127.0.0.2 has that address and no IPv6
 * socket, hears what is sent to 127.0.0.2 and nothing of an announcer
 * sending to 127.0.0.1 at its port; one bound to ::1 hears an announcer
 * sending there; an address not on this host fails at start.
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

#include <witch/witch.h>

#include "integ/harness.h"
#include "discovery/discovery_int.h"
#include "discovery/listener_int.h"
#include "proto/auth.h"

#define MAXEV 256

struct rec {
	enum witch_discovery_event ev;
	char			 server_id[64];
	char			 addr[80];
	unsigned		 port;
	enum witch_discovery_verify verify;
	bool			 leaving;
	uint64_t		 at;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct rec evs[MAXEV];
static size_t nev;
static atomic_int said_loopback;

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
msleep(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void
on_event(witch_listener_t *l, enum witch_discovery_event ev,
    const witch_discovered_t *d, void *ud)
{
	json_t *snap = NULL;

	(void)ud;
	/* Callbacks may take a snapshot (no deadlock). */
	assert_int_equal(witch_listener_snapshot(l, &snap), 0);
	json_decref(snap);
	pthread_mutex_lock(&mu);
	if (nev < MAXEV) {
		evs[nev].ev = ev;
		snprintf(evs[nev].server_id, sizeof(evs[0].server_id), "%s",
		    d->server_id);
		snprintf(evs[nev].addr, sizeof(evs[0].addr), "%s", d->addr);
		evs[nev].port = d->port;
		evs[nev].verify = d->verify;
		evs[nev].leaving = d->leaving;
		evs[nev].at = now_ms();
		nev++;
	}
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void
on_log(int level, const char *msg, void *ud)
{
	(void)level;
	(void)ud;
	if (strstr(msg, "nothing to announce") != NULL)
		said_loopback = 1;
}

/* Wait (bounded) for an event ev about id; returns its index or -1. */
static int
await_ev(enum witch_discovery_event ev, const char *id, unsigned ms)
{
	uint64_t end = now_ms() + ms;
	size_t i;
	int found = -1;

	pthread_mutex_lock(&mu);
	while (found < 0) {
		for (i = 0; i < nev && found < 0; i++)
			if (evs[i].ev == ev &&
			    strcmp(evs[i].server_id, id) == 0)
				found = (int)i;
		if (found >= 0 || now_ms() >= end)
			break;
		pthread_mutex_unlock(&mu);
		msleep(10);
		pthread_mutex_lock(&mu);
	}
	pthread_mutex_unlock(&mu);
	return found;
}

static size_t
count_ev(enum witch_discovery_event ev, const char *id)
{
	size_t i, n = 0;

	pthread_mutex_lock(&mu);
	for (i = 0; i < nev; i++)
		if (evs[i].ev == ev && strcmp(evs[i].server_id, id) == 0)
			n++;
	pthread_mutex_unlock(&mu);
	return n;
}

static void
reset_ev(void)
{
	pthread_mutex_lock(&mu);
	nev = 0;
	pthread_mutex_unlock(&mu);
}

/* A started listener bound to addr at a free port. */
static witch_listener_t *
listener_at(const char *addr, unsigned expiry, bool verify)
{
	witch_listener_config_t *cfg;
	witch_listener_t *l;
	witch_error_t err;

	assert_int_equal(witch_listener_config_new(&cfg), 0);
	assert_int_equal(witch_listener_config_set_port(cfg, 0), 0);
	assert_int_equal(witch_listener_config_set_bind(cfg, addr), 0);
	assert_int_equal(witch_listener_config_set_expiry(cfg, expiry), 0);
	assert_int_equal(witch_listener_config_set_verify(cfg, verify), 0);
	assert_int_equal(witch_listener_config_set_ipv6(cfg, false), 0);
	assert_int_equal(witch_listener_config_set_callback(cfg, on_event,
	    NULL), 0);
	assert_int_equal(witch_listener_new(&l, cfg), 0);
	witch_listener_config_free(cfg);
	if (witch_listener_start(l, &err) != 0)
		fail_msg("listener: %s", err.text);
	assert_true(witch_listener_port(l) > 0);
	return l;
}

static witch_listener_t *
listener(unsigned expiry, bool verify)
{
	return listener_at("127.0.0.1", expiry, verify);
}

/* An announcer of srv sending to target at disc_port every 200 ms. */
static witch_announcer_t *
announcer_to(witch_server_t *srv, const char *target, unsigned disc_port)
{
	witch_announcer_config_t *cfg;
	witch_announcer_t *a;

	assert_int_equal(witch_announcer_config_new(&cfg), 0);
	assert_int_equal(witch_announcer_config_set_name(cfg, "lo-test"), 0);
	assert_int_equal(witch_announcer_config_set_server_id(cfg,
	    witch_server_id(srv)), 0);
	assert_int_equal(witch_announcer_config_set_port(cfg,
	    witch_server_port(srv)), 0);
	assert_int_equal(witch_announcer_config_set_source_hash(cfg,
	    witch_server_source_hash(srv)), 0);
	assert_int_equal(witch_announcer_config_set_discovery_port(cfg,
	    disc_port), 0);
	assert_int_equal(witch_announcer_config_set_interval(cfg, 200), 0);
	assert_int_equal(witch_announcer_config_set_bind(cfg, "127.0.0.1"),
	    0);
	assert_int_equal(witch_announcer_config_set_target(cfg, target), 0);
	assert_int_equal(witch_announcer_new(&a, cfg), 0);
	witch_announcer_config_free(cfg);
	return a;
}

static witch_announcer_t *
announcer(witch_server_t *srv, unsigned disc_port)
{
	return announcer_to(srv, "127.0.0.1", disc_port);
}

/* Send one datagram to the numeric address addr at port. */
static void
send_dgram_to(const char *addr, unsigned port, const void *p, size_t n)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		len = sizeof(*sin);
	} else {
		assert_int_equal(inet_pton(AF_INET6, addr, &sin6->sin6_addr),
		    1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		len = sizeof(*sin6);
	}
	fd = socket(ss.ss_family, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	(void)sendto(fd, p, n, 0, (struct sockaddr *)&ss, len);
	close(fd);
}

static void
send_dgram(unsigned port, const void *p, size_t n)
{
	send_dgram_to("127.0.0.1", port, p, n);
}

static void
send_str(unsigned port, const char *s)
{
	send_dgram(port, s, strlen(s));
}

/* An announcement of the server "here1" sent to addr at port. */
static void
send_str_to(const char *addr, unsigned port)
{
	static const char dg[] = "{\"witch\":1,\"name\":\"here\","
	    "\"server_id\":\"here1\",\"port\":1,\"protocols\":[\"v1\"],"
	    "\"state\":\"up\",\"seq\":1}";

	send_dgram_to(addr, port, dg, strlen(dg));
}

/* Found, verified by a real ping, visible in the snapshot; then garbage
 * changes nothing; stop gives LOST (leaving) at once. */
static void
test_found_verified_leaving(void **state)
{
	static const char *const garbage[] = {
		"", "x", "{", "[]", "{\"witch\":2}", "{\"witch\":1}",
		"{\"witch\":1,\"name\":1,\"server_id\":\"a\",\"port\":1,"
		    "\"protocols\":[\"v1\"],\"state\":\"up\",\"seq\":1}",
		"\xff\xfe\xfd",
	};
	witch_server_t *srv;
	witch_listener_t *l;
	witch_announcer_t *a;
	json_t *snap = NULL, *e;
	char big[1500];
	uint64_t bad0, bad1, t0;
	const char *id;
	size_t i;
	int k;

	(void)state;
	reset_ev();
	srv = th_server_start(NULL, NULL, NULL);
	id = witch_server_id(srv);
	l = listener(30000, true);
	a = announcer(srv, witch_listener_port(l));
	assert_int_equal(witch_announcer_start(a), 0);
	assert_int_equal(witch_announcer_start(a), WITCH_ESTATE);
	assert_true(await_ev(WITCH_DISCOVERY_FOUND, id, 5000) >= 0);
	k = await_ev(WITCH_DISCOVERY_VERIFIED, id, 10000);
	assert_true(k >= 0);
	assert_int_equal(evs[k].verify, WITCH_VERIFY_OK);
	assert_string_equal(evs[k].addr, "127.0.0.1");
	assert_int_equal(witch_listener_snapshot(l, &snap), 0);
	assert_int_equal(json_array_size(snap), 1);
	e = json_array_get(snap, 0);
	assert_string_equal(json_string_value(json_object_get(e, "verified")),
	    "ok");
	assert_string_equal(json_string_value(json_object_get(e, "name")),
	    "lo-test");
	assert_string_equal(json_string_value(json_object_get(e,
	    "source_hash")), witch_server_source_hash(srv));
	assert_int_equal(json_integer_value(json_object_get(e, "port")),
	    witch_server_port(srv));
	json_decref(snap);

	/* Garbage of every kind: counted, nothing else happens. */
	witch_listener_counters(l, NULL, NULL, &bad0, NULL);
	for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++)
		send_dgram(witch_listener_port(l), garbage[i],
		    strlen(garbage[i]));
	memset(big, ' ', sizeof(big));
	big[0] = '{';
	send_dgram(witch_listener_port(l), big, sizeof(big));
	t0 = now_ms();
	do {
		msleep(20);
		witch_listener_counters(l, NULL, NULL, &bad1, NULL);
	} while (bad1 < bad0 + 8 && now_ms() - t0 < 5000);
	assert_true(bad1 >= bad0 + 8);	/* "" may not arrive as a read */
	msleep(500);
	assert_int_equal(count_ev(WITCH_DISCOVERY_FOUND, id), 1);
	assert_int_equal(count_ev(WITCH_DISCOVERY_LOST, id), 0);
	assert_int_equal(count_ev(WITCH_DISCOVERY_CHANGED, id), 0);
	assert_int_equal(witch_listener_snapshot(l, &snap), 0);
	assert_int_equal(json_array_size(snap), 1);
	json_decref(snap);

	/* Clean stop: LOST with leaving, long before the 30 s expiry. */
	t0 = now_ms();
	witch_announcer_stop(a);
	k = await_ev(WITCH_DISCOVERY_LOST, id, 5000);
	assert_true(k >= 0);
	assert_true(evs[k].leaving);
	assert_true(evs[k].at - t0 < 5000);
	assert_int_equal(witch_listener_snapshot(l, &snap), 0);
	assert_int_equal(json_array_size(snap), 0);
	json_decref(snap);
	assert_true(witch_announcer_sent(a) >= 2);
	witch_announcer_free(a);
	witch_listener_free(l);
	witch_server_stop(srv, 0);
	witch_server_free(srv);
}

/* A server that falls silent (kill -9) is lost after the expiry. */
static void
test_expiry(void **state)
{
	witch_listener_t *l;
	uint64_t t0;
	int k;

	(void)state;
	reset_ev();
	l = listener(800, false);
	t0 = now_ms();
	send_str(witch_listener_port(l), "{\"witch\":1,\"name\":\"ghost\","
	    "\"server_id\":\"ghost1\",\"port\":1,\"protocols\":[\"v1\"],"
	    "\"state\":\"up\",\"seq\":1}");
	assert_true(await_ev(WITCH_DISCOVERY_FOUND, "ghost1", 5000) >= 0);
	k = await_ev(WITCH_DISCOVERY_LOST, "ghost1", 10000);
	assert_true(k >= 0);
	assert_false(evs[k].leaving);
	assert_int_equal(evs[k].verify, WITCH_VERIFY_OFF);
	assert_true(evs[k].at - t0 >= 800);
	assert_int_equal(count_ev(WITCH_DISCOVERY_LOST, "ghost1"), 1);
	witch_listener_free(l);
}

/* No server at the port, or another server there: verification fails. */
static void
test_verify_fails(void **state)
{
	witch_server_t *srv;
	witch_listener_t *l;
	char dg[512];
	int k;

	(void)state;
	reset_ev();
	srv = th_server_start(NULL, NULL, NULL);
	l = listener(30000, true);
	send_str(witch_listener_port(l), "{\"witch\":1,\"name\":\"nobody\","
	    "\"server_id\":\"nobody1\",\"port\":1,\"protocols\":[\"v1\"],"
	    "\"state\":\"up\",\"seq\":1}");
	snprintf(dg, sizeof(dg), "{\"witch\":1,\"name\":\"impostor\","
	    "\"server_id\":\"impostor1\",\"port\":%u,\"protocols\":[\"v1\"],"
	    "\"state\":\"up\",\"seq\":1}", witch_server_port(srv));
	send_str(witch_listener_port(l), dg);
	k = await_ev(WITCH_DISCOVERY_VERIFIED, "nobody1", 10000);
	assert_true(k >= 0);
	assert_int_equal(evs[k].verify, WITCH_VERIFY_FAILED);
	k = await_ev(WITCH_DISCOVERY_VERIFIED, "impostor1", 10000);
	assert_true(k >= 0);
	assert_int_equal(evs[k].verify, WITCH_VERIFY_FAILED);
	witch_listener_free(l);
	witch_server_stop(srv, 0);
	witch_server_free(srv);
}

/* A flood from one source is cut by the rate limits; afterwards the
 * listener still takes announcements. */
static void
test_flood(void **state)
{
	witch_listener_t *l;
	struct sockaddr_in sin;
	uint64_t recv, ok, rate, t0;
	char dg[256];
	int fd, i;

	(void)state;
	reset_ev();
	l = listener(30000, false);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(witch_listener_port(l));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	for (i = 0; i < 3000; i++) {
		snprintf(dg, sizeof(dg), "{\"witch\":1,\"name\":\"f\","
		    "\"server_id\":\"flood%d\",\"port\":1,\"protocols\":"
		    "[\"v1\"],\"state\":\"up\",\"seq\":1}", i);
		(void)sendto(fd, dg, strlen(dg), 0, (struct sockaddr *)&sin,
		    sizeof(sin));
	}
	close(fd);
	t0 = now_ms();
	do {
		msleep(50);
		witch_listener_counters(l, &recv, &ok, NULL, &rate);
	} while (rate == 0 && now_ms() - t0 < 5000);
	assert_true(rate > 0);
	assert_true(ok <= 3000);
	/* Per source: at most the burst plus what refilled meanwhile. */
	assert_true(ok < 1000);
	msleep(2500);		/* the source's bucket refills */
	send_str(witch_listener_port(l), "{\"witch\":1,\"name\":\"after\","
	    "\"server_id\":\"after1\",\"port\":1,\"protocols\":[\"v1\"],"
	    "\"state\":\"up\",\"seq\":1}");
	assert_true(await_ev(WITCH_DISCOVERY_FOUND, "after1", 5000) >= 0);
	witch_listener_free(l);
}

/* Bound to loopback without a target: nothing is sent, and it says so. */
static void
test_loopback_bind_silent(void **state)
{
	witch_announcer_config_t *cfg;
	witch_announcer_t *a;
	int i;

	(void)state;
	said_loopback = 0;
	assert_int_equal(witch_announcer_config_new(&cfg), 0);
	assert_int_equal(witch_announcer_new(&a, cfg), WITCH_EINVAL);
	assert_int_equal(witch_announcer_config_set_name(cfg, "quiet"), 0);
	assert_int_equal(witch_announcer_config_set_server_id(cfg, "q1"), 0);
	assert_int_equal(witch_announcer_config_set_port(cfg, 1), 0);
	assert_int_equal(witch_announcer_config_set_bind(cfg, "127.0.0.1"),
	    0);
	assert_int_equal(witch_announcer_config_set_bind(cfg, "nope"),
	    WITCH_EINVAL);
	assert_int_equal(witch_announcer_config_set_name(cfg, ""),
	    WITCH_EINVAL);
	assert_int_equal(witch_announcer_config_set_source_hash(cfg, "12"),
	    WITCH_EINVAL);
	assert_int_equal(witch_announcer_config_set_interval(cfg, 10),
	    WITCH_EINVAL);
	assert_int_equal(witch_announcer_config_set_logger(cfg, on_log, NULL),
	    0);
	assert_int_equal(witch_announcer_new(&a, cfg), 0);
	witch_announcer_config_free(cfg);
	assert_int_equal(witch_announcer_start(a), 0);
	for (i = 0; i < 500 && !said_loopback; i++)
		msleep(10);
	witch_announcer_stop(a);
	assert_true(said_loopback);
	assert_int_equal(witch_announcer_sent(a), 0);
	witch_announcer_free(a);
}

/*
 * The server's own discovery option: witch_server_start announces (here
 * by the unicast test hook), witch_server_stop says leaving first.
 */
static void
test_server_option(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	witch_listener_t *l;
	char id[64];
	int i;

	reset_ev();
	l = listener(5000, true);
	assert_int_equal(witch_server_config_set_discovery(cfg, true), 0);
	assert_int_equal(witch_server_config_set_discovery_port(cfg,
	    witch_listener_port(l)), 0);
	assert_int_equal(witch_server_config_set_discovery_interval(cfg, 200),
	    0);
	assert_int_equal(witch_server_config_set_discovery_target(cfg,
	    "127.0.0.1"), 0);
	assert_int_equal(witch_server_config_set_discovery_interval(cfg, 50),
	    WITCH_EINVAL);
	assert_int_equal(witch_server_config_set_advertise(cfg, "not-an-ip"),
	    WITCH_EINVAL);
	srv = th_server_start(cfg, NULL, NULL);
	witch_server_config_free(cfg);
	snprintf(id, sizeof(id), "%s", witch_server_id(srv));
	i = await_ev(WITCH_DISCOVERY_FOUND, id, 5000);
	assert_true(i >= 0);
	assert_int_equal(evs[i].port, witch_server_port(srv));
	assert_true(await_ev(WITCH_DISCOVERY_VERIFIED, id, 5000) >= 0);
	witch_server_stop(srv, 0);
	i = await_ev(WITCH_DISCOVERY_LOST, id, 5000);
	assert_true(i >= 0);
	assert_true(evs[i].leaving);
	assert_int_equal(count_ev(WITCH_DISCOVERY_FOUND, id), 1);
	witch_server_free(srv);
	witch_listener_free(l);
}


static const char DKEY[] = "discovery-test-key-0123456789abcdef";

static witch_listener_t *
keyed_listener(const char *key, bool verify)
{
	witch_listener_config_t *cfg;
	witch_listener_t *l;
	witch_error_t err;

	assert_int_equal(witch_listener_config_new(&cfg), 0);
	assert_int_equal(witch_listener_config_set_port(cfg, 0), 0);
	assert_int_equal(witch_listener_config_set_bind(cfg, "127.0.0.1"), 0);
	assert_int_equal(witch_listener_config_set_expiry(cfg, 30000), 0);
	assert_int_equal(witch_listener_config_set_verify(cfg, verify), 0);
	assert_int_equal(witch_listener_config_set_ipv6(cfg, false), 0);
	assert_int_equal(witch_listener_config_set_callback(cfg, on_event,
	    NULL), 0);
	if (key != NULL)
		assert_int_equal(witch_listener_config_set_key(cfg, key,
		    strlen(key)), 0);
	assert_int_equal(witch_listener_new(&l, cfg), 0);
	witch_listener_config_free(cfg);
	if (witch_listener_start(l, &err) != 0)
		fail_msg("listener: %s", err.text);
	return l;
}

/* A forged announcement for id, signed with key (NULL: unsigned). */
static void
send_forged(unsigned port, const char *key, const char *id, uint64_t seq,
    uint64_t time_ms, bool leaving)
{
	struct witch__disc_msg m;
	struct witch__key k;
	char buf[WITCH_DISCOVERY_MAX_DATAGRAM + 1];
	size_t len;

	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "forged");
	snprintf(m.server_id, sizeof(m.server_id), "%s", id);
	m.port = 9;
	snprintf(m.protocols[0], sizeof(m.protocols[0]), "v1");
	m.nprotocols = 1;
	m.seq = seq;
	m.time_ms = time_ms;
	m.leaving = leaving;
	memset(&k, 0, sizeof(k));
	if (key != NULL)
		witch__key_set(&k, key, strlen(key));
	assert_int_equal(witch__disc_encode_signed(&m, &k, buf, sizeof(buf),
	    &len), 0);
	send_dgram(port, buf, len);
}

/* Wait until the auth counters reach at least the given values. */
static void
await_drops(witch_listener_t *l, uint64_t u, uint64_t b, uint64_t r,
    uint64_t st)
{
	uint64_t cu, cb, cr, cs, end = now_ms() + 5000;

	do {
		witch_listener_auth_counters(l, &cu, &cb, &cr, &cs);
		if (cu >= u && cb >= b && cr >= r && cs >= st)
			break;
		msleep(10);
	} while (now_ms() < end);
	assert_int_equal(cu, u);
	assert_int_equal(cb, b);
	assert_int_equal(cr, r);
	assert_int_equal(cs, st);
}

static void
test_signed(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_announcer_config_t *acfg;
	witch_server_t *srv;
	witch_listener_t *l, *plain;
	witch_announcer_t *a;
	unsigned lp;
	uint64_t now = witch__disc_wall_ms(), t0;
	const char *id;
	int k;

	(void)state;
	reset_ev();
	assert_int_equal(witch_server_config_set_key(cfg, DKEY,
	    strlen(DKEY)), 0);
	srv = th_server_start(cfg, NULL, NULL);
	witch_server_config_free(cfg);
	id = witch_server_id(srv);
	l = keyed_listener(DKEY, true);
	lp = witch_listener_port(l);
	/* The real server, signing: found, verified with the key. */
	assert_int_equal(witch_announcer_config_new(&acfg), 0);
	witch_announcer_config_set_name(acfg, "signed");
	witch_announcer_config_set_server_id(acfg, id);
	witch_announcer_config_set_port(acfg, witch_server_port(srv));
	witch_announcer_config_set_discovery_port(acfg, lp);
	witch_announcer_config_set_interval(acfg, 200);
	witch_announcer_config_set_bind(acfg, "127.0.0.1");
	witch_announcer_config_set_target(acfg, "127.0.0.1");
	assert_int_equal(witch_announcer_config_set_key(acfg, DKEY,
	    strlen(DKEY)), 0);
	assert_int_equal(witch_announcer_new(&a, acfg), 0);
	witch_announcer_config_free(acfg);
	assert_int_equal(witch_announcer_start(a), 0);
	assert_true(await_ev(WITCH_DISCOVERY_FOUND, id, 5000) >= 0);
	k = await_ev(WITCH_DISCOVERY_VERIFIED, id, 10000);
	assert_true(k >= 0);
	assert_int_equal(evs[k].verify, WITCH_VERIFY_OK);
	await_drops(l, 0, 0, 0, 0);

	/* Forged: unsigned, a wrong key, stale, from the future. */
	send_forged(lp, NULL, "forged-1", 10, now, false);
	send_forged(lp, "another-key-0123456789abcdef0123", "forged-2", 10,
	    now, false);
	send_forged(lp, DKEY, "forged-3", 10, now - 60000, false);
	send_forged(lp, DKEY, "forged-4", 10, now + 60000, false);
	send_forged(lp, DKEY, "forged-5", 10, 0, false);	/* no time */
	await_drops(l, 1, 1, 0, 3);
	/* An unsigned leaving for the real server: no LOST. */
	send_forged(lp, NULL, id, UINT64_C(1) << 60, now, true);
	await_drops(l, 2, 1, 0, 3);
	assert_int_equal(count_ev(WITCH_DISCOVERY_LOST, id), 0);
	assert_int_equal(count_ev(WITCH_DISCOVERY_FOUND, "forged-1"), 0);
	assert_int_equal(count_ev(WITCH_DISCOVERY_FOUND, "forged-2"), 0);
	assert_int_equal(count_ev(WITCH_DISCOVERY_FOUND, "forged-3"), 0);

	/* Signed and fresh: accepted; replayed (same or lower seq): not. */
	send_forged(lp, DKEY, "signed-x", 100, now, false);
	assert_true(await_ev(WITCH_DISCOVERY_FOUND, "signed-x", 5000) >= 0);
	send_forged(lp, DKEY, "signed-x", 100, now, false);
	send_forged(lp, DKEY, "signed-x", 99, now, false);
	await_drops(l, 2, 1, 2, 3);
	/* A leaving, then that leaving replayed after a new up. */
	send_forged(lp, DKEY, "signed-x", 101, now, true);
	assert_true(await_ev(WITCH_DISCOVERY_LOST, "signed-x", 5000) >= 0);
	send_forged(lp, DKEY, "signed-x", 102, now, false);
	t0 = now_ms();
	while (count_ev(WITCH_DISCOVERY_FOUND, "signed-x") < 2 &&
	    now_ms() - t0 < 5000)
		msleep(10);
	assert_int_equal(count_ev(WITCH_DISCOVERY_FOUND, "signed-x"), 2);
	send_forged(lp, DKEY, "signed-x", 101, now, true);
	await_drops(l, 2, 1, 3, 3);
	msleep(200);
	assert_int_equal(count_ev(WITCH_DISCOVERY_LOST, "signed-x"), 1);

	/* A listener without a key takes signed announcements as they are. */
	plain = keyed_listener(NULL, false);
	send_forged(witch_listener_port(plain), DKEY, "signed-y", 5, now,
	    false);
	assert_true(await_ev(WITCH_DISCOVERY_FOUND, "signed-y", 5000) >= 0);
	witch_listener_free(plain);

	/* The real server's signed leaving: LOST at once. */
	witch_announcer_stop(a);
	k = await_ev(WITCH_DISCOVERY_LOST, id, 5000);
	assert_true(k >= 0);
	assert_true(evs[k].leaving);
	witch_announcer_free(a);
	witch_listener_free(l);
	witch_server_free(srv);
}

/* The largest announcement there can be, signed, fits one datagram. */
static void
test_signed_size(void **state)
{
	struct witch__disc_msg m, back;
	struct witch__key k;
	char buf[WITCH_DISCOVERY_MAX_DATAGRAM + 1], err[128];
	size_t len, i;

	(void)state;
	memset(&m, 0, sizeof(m));
	memset(m.name, 'n', 63);
	memset(m.server_id, 's', 63);
	memset(m.project_id, 'p', 63);
	memset(m.source_hash, 'a', 32);
	for (i = 0; i < WITCH__DISC_MAX_PROTOS; i++)
		memset(m.protocols[i], (int)('a' + i), 15);
	m.nprotocols = WITCH__DISC_MAX_PROTOS;
	snprintf(m.advertise, sizeof(m.advertise),
	    "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
	m.port = 65535;
	m.seq = UINT64_C(9223372036854775807);
	m.time_ms = UINT64_C(9999999999999);
	m.leaving = 1;
	witch__key_set(&k, DKEY, strlen(DKEY));
	assert_int_equal(witch__disc_encode_signed(&m, &k, buf, sizeof(buf),
	    &len), 0);
	assert_true(len <= WITCH_DISCOVERY_MAX_DATAGRAM);
	assert_int_equal(witch__disc_check(&k, buf, len, m.time_ms, &back,
	    err, sizeof(err)), WITCH__DISC_OK);
	assert_string_equal(back.server_id, m.server_id);
	/* One byte changed anywhere before the hmac: bad signature. */
	for (i = 0; i + WITCH__SIG_TAIL_LEN < len; i += 7) {
		buf[i] ^= 1;
		assert_int_equal(witch__disc_check(&k, buf, len, m.time_ms,
		    &back, err, sizeof(err)), WITCH__DISC_BADSIG);
		buf[i] ^= 1;
	}
}

/* "addr port" of the address socket fd is bound to. */
static void
sock_name(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN];
	unsigned port;

	assert_true(fd >= 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a,
		    sizeof(a));
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	} else {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
		    a, sizeof(a));
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	snprintf(buf, len, "%s %u", a, port);
}

/* "addr port" for the listener's port. */
static void
want_name(const witch_listener_t *l, const char *addr, char *buf,
    size_t len)
{
	snprintf(buf, len, "%s %u", addr, witch_listener_port(l));
}

/*
 * The bind setter takes numeric addresses and the wildcard (NULL, ""),
 * refuses anything else with WITCH_EINVAL and keeps the last good value;
 * the listener then has one socket, of the address's family, bound to it,
 * though IPv6 is left on.
 */
static void
test_bind_setter(void **state)
{
	static const char *const good[] = {
		"127.0.0.1", "::1", "0.0.0.0", "::", "", "192.0.2.1",
		"::ffff:127.0.0.1",
		"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
	};
	static const char *const bad[] = {
		"nope", "localhost", "127.0.0.256", "127.1", " 127.0.0.1",
		"127.0.0.1 ", "127.0.0.1:8889", "[::1]", "::1%lo",
		"fe80::1%lo", "1.2.3.4.5", "::1::",
	};
	witch_listener_config_t *cfg;
	witch_listener_t *l;
	witch_error_t err;
	char longs[200], got[80], want[80];
	size_t i;

	(void)state;
	assert_int_equal(witch_listener_config_set_bind(NULL, "127.0.0.1"),
	    WITCH_EINVAL);
	assert_int_equal(witch_listener_config_new(&cfg), 0);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(witch_listener_config_set_bind(cfg, good[i]),
		    0);
	assert_int_equal(witch_listener_config_set_bind(cfg, NULL), 0);
	assert_int_equal(witch_listener_config_set_bind(cfg, "127.0.0.2"), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(witch_listener_config_set_bind(cfg, bad[i]),
		    WITCH_EINVAL);
	memset(longs, '1', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	assert_int_equal(witch_listener_config_set_bind(cfg, longs),
	    WITCH_EINVAL);

	/* Still 127.0.0.2, and only an IPv4 socket though IPv6 is on. */
	assert_int_equal(witch_listener_config_set_port(cfg, 0), 0);
	assert_int_equal(witch_listener_config_set_ipv6(cfg, true), 0);
	assert_int_equal(witch_listener_new(&l, cfg), 0);
	witch_listener_config_free(cfg);
	if (witch_listener_start(l, &err) != 0)
		fail_msg("listener: %s", err.text);
	sock_name(l->s4.fd, got, sizeof(got));
	want_name(l, "127.0.0.2", want, sizeof(want));
	assert_string_equal(got, want);
	assert_int_equal(l->s6.fd, -1);
	witch_listener_free(l);
}

/*
 * A listener bound to 127.0.0.2 hears what is sent to 127.0.0.2 and
 * nothing of an announcer sending to 127.0.0.1 at its port, while a
 * listener bound to 127.0.0.1 at that port does hear the announcer.
 */
static void
test_bind_hears_only_its_address(void **state)
{
	witch_listener_config_t *cfg;
	witch_server_t *srv;
	witch_listener_t *l, *l1;
	witch_announcer_t *a;
	witch_error_t err;
	uint64_t recv, t0;
	char got[80], want[80];
	const char *id;
	unsigned port;

	(void)state;
	reset_ev();
	srv = th_server_start(NULL, NULL, NULL);
	id = witch_server_id(srv);
	l = listener_at("127.0.0.2", 30000, false);
	port = witch_listener_port(l);
	sock_name(l->s4.fd, got, sizeof(got));
	want_name(l, "127.0.0.2", want, sizeof(want));
	assert_string_equal(got, want);

	/* What is sent to its address arrives. */
	send_str_to("127.0.0.2", port);
	assert_true(await_ev(WITCH_DISCOVERY_FOUND, "here1", 5000) >= 0);

	/* An announcer sending to 127.0.0.1 at that port is not heard. */
	a = announcer_to(srv, "127.0.0.1", port);
	assert_int_equal(witch_announcer_start(a), 0);
	t0 = now_ms();
	while (witch_announcer_sent(a) < 3 && now_ms() - t0 < 5000)
		msleep(10);
	assert_true(witch_announcer_sent(a) >= 3);
	msleep(200);	/* the last one is past the kernel */
	assert_int_equal(count_ev(WITCH_DISCOVERY_FOUND, id), 0);
	witch_listener_counters(l, &recv, NULL, NULL, NULL);
	assert_int_equal(recv, 1);

	/* It was sending: a listener on 127.0.0.1 at that port hears it. */
	assert_int_equal(witch_listener_config_new(&cfg), 0);
	assert_int_equal(witch_listener_config_set_port(cfg, port), 0);
	assert_int_equal(witch_listener_config_set_bind(cfg, "127.0.0.1"), 0);
	assert_int_equal(witch_listener_config_set_callback(cfg, on_event,
	    NULL), 0);
	assert_int_equal(witch_listener_new(&l1, cfg), 0);
	witch_listener_config_free(cfg);
	if (witch_listener_start(l1, &err) != 0)
		fail_msg("listener: %s", err.text);
	assert_int_equal(witch_listener_port(l1), port);
	assert_true(await_ev(WITCH_DISCOVERY_FOUND, id, 5000) >= 0);
	witch_listener_counters(l, &recv, NULL, NULL, NULL);
	assert_int_equal(recv, 1);

	witch_announcer_free(a);
	witch_listener_free(l1);
	witch_listener_free(l);
	witch_server_stop(srv, 0);
	witch_server_free(srv);
}

/*
 * Bound to ::1: one IPv6 socket there (no IPv4 one), which hears an
 * announcer sending to ::1.  Skipped where the host has no ::1.
 */
static void
test_bind_ipv6(void **state)
{
	witch_listener_config_t *cfg;
	witch_server_t *srv;
	witch_listener_t *l;
	witch_announcer_t *a;
	witch_error_t err;
	char got[80], want[80];
	const char *id;
	int k;

	(void)state;
	reset_ev();
	assert_int_equal(witch_listener_config_new(&cfg), 0);
	assert_int_equal(witch_listener_config_set_port(cfg, 0), 0);
	assert_int_equal(witch_listener_config_set_bind(cfg, "::1"), 0);
	assert_int_equal(witch_listener_config_set_ipv6(cfg, false), 0);
	assert_int_equal(witch_listener_config_set_callback(cfg, on_event,
	    NULL), 0);
	assert_int_equal(witch_listener_new(&l, cfg), 0);
	witch_listener_config_free(cfg);
	if (witch_listener_start(l, &err) != 0) {
		print_message("no ::1 here (%s): skipped\n", err.text);
		witch_listener_free(l);
		skip();
	}
	assert_int_equal(l->s4.fd, -1);
	sock_name(l->s6.fd, got, sizeof(got));
	want_name(l, "::1", want, sizeof(want));
	assert_string_equal(got, want);
	srv = th_server_start(NULL, NULL, NULL);
	id = witch_server_id(srv);
	a = announcer_to(srv, "::1", witch_listener_port(l));
	assert_int_equal(witch_announcer_start(a), 0);
	k = await_ev(WITCH_DISCOVERY_FOUND, id, 5000);
	assert_true(k >= 0);
	assert_string_equal(evs[k].addr, "::1");
	witch_announcer_free(a);
	witch_listener_free(l);
	witch_server_stop(srv, 0);
	witch_server_free(srv);
}

/* An address that is not this host's: WITCH_ESYSTEM at start, named. */
static void
test_bind_not_here(void **state)
{
	witch_listener_config_t *cfg;
	witch_listener_t *l;
	witch_error_t err;

	(void)state;
	assert_int_equal(witch_listener_config_new(&cfg), 0);
	assert_int_equal(witch_listener_config_set_port(cfg, 0), 0);
	assert_int_equal(witch_listener_config_set_bind(cfg, "192.0.2.1"), 0);
	assert_int_equal(witch_listener_new(&l, cfg), 0);
	witch_listener_config_free(cfg);
	memset(&err, 0, sizeof(err));
	assert_int_equal(witch_listener_start(l, &err), WITCH_ESYSTEM);
	assert_int_equal(err.code, WITCH_ESYSTEM);
	assert_non_null(strstr(err.text, "192.0.2.1"));
	assert_int_equal(witch_listener_port(l), 0);
	witch_listener_free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_found_verified_leaving),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_verify_fails),
		cmocka_unit_test(test_flood),
		cmocka_unit_test(test_loopback_bind_silent),
		cmocka_unit_test(test_server_option),
		cmocka_unit_test(test_signed),
		cmocka_unit_test(test_signed_size),
		cmocka_unit_test(test_bind_setter),
		cmocka_unit_test(test_bind_hears_only_its_address),
		cmocka_unit_test(test_bind_ipv6),
		cmocka_unit_test(test_bind_not_here),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
