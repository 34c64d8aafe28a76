/*
 * test_discovery: the discovery codec, registry (fake clock), rate limits
 * and interface selection of net/discovery_int.h.  No sockets, no root.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "discovery/discovery_int.h"

#define HASH "0123456789abcdef0123456789abcdef"
#define GOOD "{\"witch\":1,\"name\":\"alpha\",\"server_id\":\"s1\"," \
	"\"port\":8888,\"protocols\":[\"v1\",\"v2\"],\"project_id\":\"p\"," \
	"\"source_hash\":\"" HASH "\",\"state\":\"up\",\"seq\":7}"

static int
parse(const char *s, struct witch__disc_msg *m, char *err)
{
	return witch__disc_parse(s, strlen(s), m, err, 128);
}

static void
test_parse_good(void **state)
{
	struct witch__disc_msg m;
	char err[128];

	(void)state;
	assert_int_equal(parse(GOOD, &m, err), 0);
	assert_string_equal(m.name, "alpha");
	assert_string_equal(m.server_id, "s1");
	assert_int_equal(m.port, 8888);
	assert_int_equal(m.nprotocols, 2);
	assert_string_equal(m.protocols[1], "v2");
	assert_string_equal(m.project_id, "p");
	assert_string_equal(m.source_hash, HASH);
	assert_int_equal(m.leaving, 0);
	assert_int_equal(m.seq, 7);
	assert_string_equal(m.advertise, "");
	/* Unknown fields (a future "hmac") are ignored. */
	assert_int_equal(parse("{\"witch\":1,\"name\":\"a\",\"server_id\":"
	    "\"x\",\"port\":1,\"protocols\":[\"v1\"],\"state\":\"leaving\","
	    "\"seq\":0,\"hmac\":\"zz\",\"advertise\":\"192.0.2.1\"}", &m, err),
	    0);
	assert_int_equal(m.leaving, 1);
	assert_string_equal(m.advertise, "192.0.2.1");
	assert_string_equal(m.project_id, "");
}

/* One malformation per case, each rejected with a reason. */
static void
test_parse_bad(void **state)
{
	static const char *const bad[] = {
		"", "garbage", "\x01\x02\xff", "[]", "1", "\"str\"", "null",
		"{}", "{\"witch\":1",	/* truncated */
		"{\"witch\":2,\"name\":\"a\",\"server_id\":\"x\",\"port\":1,"
		    "\"protocols\":[\"v1\"],\"state\":\"up\",\"seq\":0}",
		"{\"witch\":\"1\",\"name\":\"a\",\"server_id\":\"x\","
		    "\"port\":1,"
		    "\"protocols\":[\"v1\"],\"state\":\"up\",\"seq\":0}",
		"{\"witch\":1,\"name\":5,\"server_id\":\"x\",\"port\":1,"
		    "\"protocols\":[\"v1\"],\"state\":\"up\",\"seq\":0}",
		"{\"witch\":1,\"name\":\"\",\"server_id\":\"x\",\"port\":1,"
		    "\"protocols\":[\"v1\"],\"state\":\"up\",\"seq\":0}",
		"{\"witch\":1,\"name\":\"a\\u0007\",\"server_id\":\"x\","
		    "\"port\":1,\"protocols\":[\"v1\"],\"state\":\"up\","
		    "\"seq\":0}",
		"{\"witch\":1,\"name\":\"a\",\"server_id\":\"x y\",\"port\":1,"
		    "\"protocols\":[\"v1\"],\"state\":\"up\",\"seq\":0}",
		"{\"witch\":1,\"name\":\"a\",\"server_id\":\"x\","
		    "\"port\":\"1\",\"protocols\":[\"v1\"],\"state\":\"up\","
		    "\"seq\":0}",
		"{\"witch\":1,\"name\":\"a\",\"server_id\":\"x\",\"port\":1.5,"
		    "\"protocols\":[\"v1\"],\"state\":\"up\",\"seq\":0}",
		"{\"witch\":1,\"name\":\"a\",\"server_id\":\"x\",\"port\":0,"
		    "\"protocols\":[\"v1\"],\"state\":\"up\",\"seq\":0}",
		"{\"witch\":1,\"name\":\"a\",\"server_id\":\"x\","
		    "\"port\":65536,\"protocols\":[\"v1\"],\"state\":\"up\","
		    "\"seq\":0}",
		"{\"witch\":1,\"name\":\"a\",\"server_id\":\"x\",\"port\":1,"
		    "\"protocols\":\"v1\",\"state\":\"up\",\"seq\":0}",
		"{\"witch\":1,\"name\":\"a\",\"server_id\":\"x\",\"port\":1,"
		    "\"protocols\":[],\"state\":\"up\",\"seq\":0}",
		"{\"witch\":1,\"name\":\"a\",\"server_id\":\"x\",\"port\":1,"
		    "\"protocols\":[1],\"state\":\"up\",\"seq\":0}",
		"{\"witch\":1,\"name\":\"a\",\"server_id\":\"x\",\"port\":1,"
		    "\"protocols\":[\"0123456789abcdef\"],\"state\":\"up\","
		    "\"seq\":0}",
		"{\"witch\":1,\"name\":\"a\",\"server_id\":\"x\",\"port\":1,"
		    "\"protocols\":[\"v1\"],\"state\":\"down\",\"seq\":0}",
		"{\"witch\":1,\"name\":\"a\",\"server_id\":\"x\",\"port\":1,"
		    "\"protocols\":[\"v1\"],\"state\":true,\"seq\":0}",
		"{\"witch\":1,\"name\":\"a\",\"server_id\":\"x\",\"port\":1,"
		    "\"protocols\":[\"v1\"],\"state\":\"up\",\"seq\":-1}",
		"{\"witch\":1,\"name\":\"a\",\"server_id\":\"x\",\"port\":1,"
		    "\"protocols\":[\"v1\"],\"state\":\"up\"}",
		"{\"witch\":1,\"name\":\"a\",\"server_id\":\"x\",\"port\":1,"
		    "\"protocols\":[\"v1\"],\"state\":\"up\",\"seq\":0,"
		    "\"source_hash\":\"xyz\"}",
		"{\"witch\":1,\"name\":\"a\",\"server_id\":\"x\",\"port\":1,"
		    "\"protocols\":[\"v1\"],\"state\":\"up\",\"seq\":0,"
		    "\"advertise\":\"host.example\"}",
		"{\"witch\":1,\"witch\":1,\"name\":\"a\",\"server_id\":\"x\","
		    "\"port\":1,\"protocols\":[\"v1\"],\"state\":\"up\","
		    "\"seq\":0}",
	};
	struct witch__disc_msg m;
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (parse(bad[i], &m, err) != WITCH_EPROTOCOL)
			fail_msg("case %zu accepted: %s", i, bad[i]);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(witch__disc_parse(NULL, 0, &m, NULL, 0),
	    WITCH_EPROTOCOL);
}

/* Oversized: 1201 bytes are refused even if valid JSON; NUL inside too. */
static void
test_parse_sizes(void **state)
{
	char buf[1400], err[128];
	struct witch__disc_msg m;
	size_t n;

	(void)state;
	n = strlen(GOOD);
	memcpy(buf, GOOD, n);
	memset(buf + n, ' ', sizeof(buf) - n);
	assert_int_equal(witch__disc_parse(buf, 1200, &m, err, sizeof(err)),
	    0);
	assert_int_equal(witch__disc_parse(buf, 1201, &m, err, sizeof(err)),
	    WITCH_EPROTOCOL);
	assert_non_null(strstr(err, "1201"));
	buf[n] = '\0';
	assert_int_equal(witch__disc_parse(buf, n + 1, &m, err, sizeof(err)),
	    WITCH_EPROTOCOL);
	/* Every truncation of a good datagram is refused. */
	for (n = 0; n < strlen(GOOD); n++)
		assert_int_equal(witch__disc_parse(GOOD, n, &m, NULL, 0),
		    WITCH_EPROTOCOL);
}

static void
test_encode_roundtrip(void **state)
{
	struct witch__disc_msg m, r;
	char buf[WITCH_DISCOVERY_MAX_DATAGRAM + 1];
	size_t len, i;

	(void)state;
	memset(&m, 0, sizeof(m));
	strlcpy(m.name, "name with spaces \"q\"", sizeof(m.name));
	strlcpy(m.server_id, "abc", sizeof(m.server_id));
	m.port = 65535;
	m.nprotocols = WITCH__DISC_MAX_PROTOS;
	for (i = 0; i < m.nprotocols; i++)
		snprintf(m.protocols[i], sizeof(m.protocols[i]),
		    "p%013u", (unsigned)i);
	strlcpy(m.source_hash, HASH, sizeof(m.source_hash));
	strlcpy(m.advertise, "2001:db8::1", sizeof(m.advertise));
	m.leaving = 1;
	m.seq = UINT64_C(1) << 62;
	assert_int_equal(witch__disc_encode(&m, buf, sizeof(buf), &len), 0);
	assert_true(len <= WITCH_DISCOVERY_MAX_DATAGRAM);
	memset(&r, 0, sizeof(r));
	assert_int_equal(witch__disc_parse(buf, len, &r, NULL, 0), 0);
	assert_memory_equal(&m, &r, sizeof(m));
	assert_int_equal(witch__disc_encode(&m, buf, 10, &len),
	    WITCH_ETOO_LARGE);
}

static struct witch__disc_msg
msg(const char *id, uint64_t seq)
{
	struct witch__disc_msg m;

	memset(&m, 0, sizeof(m));
	strlcpy(m.name, "n", sizeof(m.name));
	strlcpy(m.server_id, id, sizeof(m.server_id));
	m.port = 8888;
	m.nprotocols = 1;
	strlcpy(m.protocols[0], "v1", sizeof(m.protocols[0]));
	m.seq = seq;
	return m;
}

/* found, refresh, changed, stale, expiry, leaving; a fake clock. */
static void
test_registry(void **state)
{
	struct witch__disc_registry r;
	struct witch__disc_event ev[4];
	struct witch__disc_msg m;

	(void)state;
	witch__disc_reg_init(&r, 6000, 0);
	m = msg("a", 1);
	assert_int_equal(witch__disc_reg_update(&r, &m, "10.0.0.1", 1000,
	    &ev[0]), WITCH_DISCOVERY_FOUND);
	assert_string_equal(ev[0].e.addr, "10.0.0.1");
	assert_int_equal(ev[0].e.verify, WITCH_VERIFY_OFF);
	m.seq = 2;
	assert_int_equal(witch__disc_reg_update(&r, &m, "10.0.0.1", 2000,
	    &ev[0]), 0);
	/* Same server on another LAN: its own entry. */
	assert_int_equal(witch__disc_reg_update(&r, &m, "10.0.1.1", 2000,
	    &ev[0]), WITCH_DISCOVERY_FOUND);
	assert_int_equal(r.n, 2);
	m.seq = 3;
	m.port = 9999;
	assert_int_equal(witch__disc_reg_update(&r, &m, "10.0.0.1", 3000,
	    &ev[0]), WITCH_DISCOVERY_CHANGED);
	assert_int_equal(ev[0].e.msg.port, 9999);
	/* A stale seq changes nothing. */
	m.seq = 1;
	m.port = 1;
	assert_int_equal(witch__disc_reg_update(&r, &m, "10.0.0.1", 3000,
	    &ev[0]), 0);
	assert_int_equal(witch__disc_reg_find(&r, "a", "10.0.0.1")->msg.port,
	    9999);
	/* Expiry: 10.0.1.1 last seen at 2000, 10.0.0.1 at 3000. */
	assert_int_equal(witch__disc_reg_next(&r, 3000), 5001);
	assert_int_equal(witch__disc_reg_expire(&r, 8000, ev, 4), 0);
	assert_int_equal(witch__disc_reg_expire(&r, 8001, ev, 4), 1);
	assert_int_equal(ev[0].ev, WITCH_DISCOVERY_LOST);
	assert_string_equal(ev[0].e.addr, "10.0.1.1");
	assert_int_equal(ev[0].e.msg.leaving, 0);
	/* Leaving: lost at once; a second leaving is nothing. */
	m = msg("a", 10);
	m.port = 9999;
	m.leaving = 1;
	assert_int_equal(witch__disc_reg_update(&r, &m, "10.0.0.1", 3500,
	    &ev[0]), WITCH_DISCOVERY_LOST);
	assert_int_equal(ev[0].e.msg.leaving, 1);
	assert_int_equal(r.n, 0);
	assert_int_equal(witch__disc_reg_update(&r, &m, "10.0.0.1", 3500,
	    &ev[0]), 0);
	assert_int_equal(witch__disc_reg_next(&r, 3500), UINT64_MAX);
	witch__disc_reg_free(&r);
}

/* The registry is capped; verification starts pending; JSON view. */
static void
test_registry_cap_json(void **state)
{
	struct witch__disc_registry r;
	struct witch__disc_event ev;
	struct witch__disc_msg m;
	char id[32];
	json_t *o;
	size_t i;

	(void)state;
	witch__disc_reg_init(&r, 6000, 1);
	for (i = 0; i < WITCH__DISC_REG_MAX + 10; i++) {
		snprintf(id, sizeof(id), "id%zu", i);
		m = msg(id, 1);
		witch__disc_reg_update(&r, &m, "10.0.0.1", 1, &ev);
	}
	assert_int_equal(r.n, WITCH__DISC_REG_MAX);
	assert_int_equal(r.full_drops, 10);
	assert_int_equal(r.v[0].verify, WITCH_VERIFY_PENDING);
	o = witch__disc_entry_json(&r.v[0], 501);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "verified")),
	    "pending");
	assert_int_equal(json_integer_value(json_object_get(o,
	    "last_seen_age")), 500);
	assert_string_equal(json_string_value(json_object_get(o, "addr")),
	    "10.0.0.1");
	json_decref(o);
	i = 0;
	while (witch__disc_reg_expire(&r, 100000, &ev, 1) == 1)
		i++;
	assert_int_equal(i, WITCH__DISC_REG_MAX);
	witch__disc_reg_free(&r);
}

static void
test_bucket(void **state)
{
	struct witch__disc_bucket b;
	int i, ok = 0;

	(void)state;
	witch__disc_bucket_init(&b, 10.0, 5.0, 1000);
	for (i = 0; i < 100; i++)
		ok += witch__disc_bucket_take(&b, 1000);
	assert_int_equal(ok, 5);
	/* 10/s: one token per 100 ms, never above the burst. */
	assert_int_equal(witch__disc_bucket_take(&b, 1050), 0);
	assert_int_equal(witch__disc_bucket_take(&b, 1100), 1);
	assert_int_equal(witch__disc_bucket_take(&b, 1100), 0);
	for (ok = 0, i = 0; i < 100; i++)
		ok += witch__disc_bucket_take(&b, 100000);
	assert_int_equal(ok, 5);
	/* A clock going backwards gives nothing. */
	assert_int_equal(witch__disc_bucket_take(&b, 50), 0);
}

static struct sockaddr_in
v4(const char *a, unsigned port)
{
	struct sockaddr_in s;

	memset(&s, 0, sizeof(s));
	s.sin_family = AF_INET;
	s.sin_port = htons(port);
	inet_pton(AF_INET, a, &s.sin_addr);
	return s;
}

/* A flooding source is cut at its burst; others still pass; overall cap. */
static void
test_limiter(void **state)
{
	struct witch__disc_limiter l;
	struct sockaddr_in a = v4("10.0.0.1", 1), b = v4("10.0.0.2", 1);
	char ip[32];
	int i, ok = 0;

	(void)state;
	witch__disc_limiter_init(&l, 0);
	for (i = 0; i < 1000; i++) {
		a.sin_port = htons(i + 1);	/* ports don't help */
		ok += witch__disc_limiter_take(&l, (struct sockaddr *)&a, 0);
	}
	assert_int_equal(ok, (int)WITCH__DISC_BURST_SRC);
	assert_int_equal(witch__disc_limiter_take(&l, (struct sockaddr *)&b,
	    0), 1);
	/* Many sources: the overall bucket caps them together. */
	witch__disc_limiter_init(&l, 0);
	for (ok = 0, i = 0; i < 5000; i++) {
		snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 250, i % 250 + 1);
		b = v4(ip, 1);
		ok += witch__disc_limiter_take(&l, (struct sockaddr *)&b, 0);
	}
	assert_int_equal(ok, (int)WITCH__DISC_BURST_ALL);
	assert_true(l.nslots <= WITCH__DISC_SRC_SLOTS);
}

static struct witch__iface
ifc(const char *name, unsigned index, unsigned flags, const char *addr,
    const char *bcast)
{
	struct witch__iface i;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&i.addr;

	memset(&i, 0, sizeof(i));
	strlcpy(i.name, name, sizeof(i.name));
	i.index = index;
	i.flags = flags;
	if (strchr(addr, ':') != NULL) {
		i.family = AF_INET6;
		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
	} else {
		i.family = AF_INET;
		*(struct sockaddr_in *)&i.addr = v4(addr, 0);
		if (bcast != NULL)
			*(struct sockaddr_in *)&i.bcast = v4(bcast, 0);
	}
	return i;
}

#define UPB (IFF_UP | IFF_BROADCAST | IFF_MULTICAST)

static size_t
sel(const char *bind, int any, int *lo, struct witch__iface *v)
{
	size_t n = 0;

	v[n++] = ifc("lo", 1, IFF_UP | IFF_LOOPBACK, "127.0.0.1", NULL);
	v[n++] = ifc("eth0", 2, UPB, "10.0.0.2", "10.0.0.255");
	v[n++] = ifc("eth1", 3, UPB, "10.0.1.2", "10.0.1.255");
	v[n++] = ifc("down0", 4, IFF_BROADCAST, "10.0.2.2", "10.0.2.255");
	v[n++] = ifc("tun0", 5, IFF_UP | IFF_POINTOPOINT, "10.8.0.1", NULL);
	v[n++] = ifc("nobc", 6, IFF_UP, "10.0.3.2", NULL);
	v[n++] = ifc("eth0", 2, UPB, "2001:db8::2", NULL);
	v[n++] = ifc("eth0", 2, UPB, "fe80::2", NULL);
	v[n++] = ifc("lo", 1, IFF_UP | IFF_LOOPBACK, "::1", NULL);
	return witch__ifaces_select(v, n, bind, any, lo);
}

static void
test_select(void **state)
{
	struct witch__iface v[16];
	char a[64];
	int lo;

	(void)state;
	/* 0.0.0.0: every up, broadcast IPv4 interface, nothing else. */
	assert_int_equal(sel("0.0.0.0", 0, &lo, v), 2);
	assert_int_equal(lo, 0);
	assert_string_equal(v[0].name, "eth0");
	assert_string_equal(v[1].name, "eth1");
	assert_int_equal(sel(NULL, 0, &lo, v), 2);
	/* Loopback: nothing, and said so; with advertise: everywhere. */
	assert_int_equal(sel("127.0.0.1", 0, &lo, v), 0);
	assert_int_equal(lo, 1);
	assert_int_equal(sel("::1", 0, &lo, v), 0);
	assert_int_equal(lo, 1);
	assert_int_equal(sel("127.0.0.1", 1, &lo, v), 3);
	/* One address: its interface only. */
	assert_int_equal(sel("10.0.1.2", 0, &lo, v), 1);
	assert_string_equal(v[0].name, "eth1");
	assert_int_equal(sel("10.9.9.9", 0, &lo, v), 0);
	/* "::": one IPv6 announcement per interface, from link-local. */
	assert_int_equal(sel("::", 0, &lo, v), 1);
	witch__addr_str((struct sockaddr *)&v[0].addr, a, sizeof(a));
	assert_string_equal(a, "fe80::2");
	assert_int_equal(sel("2001:db8::2", 0, &lo, v), 1);
	witch__addr_str((struct sockaddr *)&v[0].addr, a, sizeof(a));
	assert_string_equal(a, "2001:db8::2");
	assert_int_equal(sel("not-an-address", 0, &lo, v), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_parse_sizes),
		cmocka_unit_test(test_encode_roundtrip),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_registry_cap_json),
		cmocka_unit_test(test_bucket),
		cmocka_unit_test(test_limiter),
		cmocka_unit_test(test_select),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
