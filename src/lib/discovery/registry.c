/*
 * discovery/registry.c: the discovery wire codec, registry and rate limits.
 *
 * Everything here is pure (memory in, memory out, time passed in), so the
 * unit tests drive it without sockets or a clock.  The announcer and the
 * listener (announcer.c, listener.c) wrap sockets and threads around it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/alloc.h"
#include "discovery/discovery_int.h"
#include "net/sock.h"
#include "proto/auth.h"

/* Monotonic ms.  Any thread. */
uint64_t
witch__disc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wall clock ms (signed announcements' time).  Any thread. */
uint64_t
witch__disc_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- field checks ---------------------------------------------------- */

/* printable text of at most max bytes (min bytes at least). */
static int
valid_text(const char *s, size_t min, size_t max)
{
	size_t n;

	if (s == NULL)
		return 0;
	for (n = 0; s[n] != '\0'; n++)
		if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f || n >= max)
			return 0;
	return n >= min;
}

/* 1..63 bytes without control characters.  Pure. */
int
witch__disc_valid_name(const char *s)
{
	return valid_text(s, 1, 63);
}

/* 1..63 bytes of [A-Za-z0-9._-].  Pure. */
int
witch__disc_valid_id(const char *s)
{
	size_t n;

	if (s == NULL || *s == '\0')
		return 0;
	for (n = 0; s[n] != '\0'; n++) {
		if (n >= 63)
			return 0;
		if (!((s[n] >= '0' && s[n] <= '9') ||
		    (s[n] >= 'a' && s[n] <= 'z') ||
		    (s[n] >= 'A' && s[n] <= 'Z') || s[n] == '-' ||
		    s[n] == '_' || s[n] == '.'))
			return 0;
	}
	return 1;
}

/* "" or 32 hex digits.  Pure. */
int
witch__disc_valid_hash(const char *s)
{
	size_t n;

	if (s == NULL)
		return 0;
	if (*s == '\0')
		return 1;
	for (n = 0; s[n] != '\0'; n++)
		if (n >= 32 || !((s[n] >= '0' && s[n] <= '9') ||
		    (s[n] >= 'a' && s[n] <= 'f') ||
		    (s[n] >= 'A' && s[n] <= 'F')))
			return 0;
	return n == 32;
}

/* ---- codec ----------------------------------------------------------- */

static int
perr(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errbuf != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	return WITCH_EPROTOCOL;
}

/* A required (or optional) string field through check; copied to dst. */
static int
get_str(json_t *o, const char *key, int required, int (*check)(const char *),
    char *dst, size_t dlen, char *errbuf, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL) {
		if (required)
			return perr(errbuf, errlen, "missing \"%s\"", key);
		dst[0] = '\0';
		return 0;
	}
	if (!json_is_string(v))
		return perr(errbuf, errlen, "\"%s\" is not a string", key);
	if (!check(json_string_value(v)) ||
	    strlcpy(dst, json_string_value(v), dlen) >= dlen)
		return perr(errbuf, errlen, "\"%s\" is not valid", key);
	return 0;
}

static int
valid_project(const char *s)
{
	return valid_text(s, 0, 63);
}


/* A protocol name: 1..15 printable bytes (as the server accepts). */
int
witch__disc_valid_proto(const char *s)
{
	return valid_text(s, 1, 15);
}

static int
get_int(json_t *o, const char *key, json_int_t lo, json_int_t hi,
    json_int_t *out, char *errbuf, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL)
		return perr(errbuf, errlen, "missing \"%s\"", key);
	if (!json_is_integer(v))
		return perr(errbuf, errlen, "\"%s\" is not an integer", key);
	*out = json_integer_value(v);
	if (*out < lo || *out > hi)
		return perr(errbuf, errlen, "\"%s\" out of range", key);
	return 0;
}

static int
get_protocols(json_t *o, struct witch__disc_msg *m, char *errbuf,
    size_t errlen)
{
	json_t *a = json_object_get(o, "protocols"), *p;
	size_t i;

	if (a == NULL)
		return perr(errbuf, errlen, "missing \"protocols\"");
	if (!json_is_array(a))
		return perr(errbuf, errlen, "\"protocols\" is not an array");
	if (json_array_size(a) == 0 ||
	    json_array_size(a) > WITCH__DISC_MAX_PROTOS)
		return perr(errbuf, errlen, "\"protocols\" has %zu entries",
		    json_array_size(a));
	json_array_foreach(a, i, p) {
		if (!json_is_string(p) ||
		    !witch__disc_valid_proto(json_string_value(p)))
			return perr(errbuf, errlen,
			    "\"protocols\"[%zu] is not valid", i);
		strlcpy(m->protocols[i], json_string_value(p),
		    sizeof(m->protocols[i]));
	}
	m->nprotocols = json_array_size(a);
	return 0;
}

/* The fields of an announcement object, in wire order. */
static int
parse_fields(json_t *o, struct witch__disc_msg *m, char *errbuf, size_t errlen)
{
	json_int_t iv;
	json_t *st;
	int rc;

	if ((rc = get_int(o, "witch", 0, INT64_MAX, &iv, errbuf, errlen)) != 0)
		return rc;
	if (iv != WITCH__DISC_VERSION)
		return perr(errbuf, errlen, "unsupported version %lld",
		    (long long)iv);
	if ((rc = get_str(o, "name", 1, witch__disc_valid_name, m->name,
	    sizeof(m->name), errbuf, errlen)) != 0 ||
	    (rc = get_str(o, "server_id", 1, witch__disc_valid_id,
	    m->server_id, sizeof(m->server_id), errbuf, errlen)) != 0 ||
	    (rc = get_int(o, "port", 1, 65535, &iv, errbuf, errlen)) != 0)
		return rc;
	m->port = (unsigned)iv;
	if ((rc = get_protocols(o, m, errbuf, errlen)) != 0 ||
	    (rc = get_str(o, "project_id", 0, valid_project, m->project_id,
	    sizeof(m->project_id), errbuf, errlen)) != 0 ||
	    (rc = get_str(o, "source_hash", 0, witch__disc_valid_hash,
	    m->source_hash, sizeof(m->source_hash), errbuf, errlen)) != 0 ||
	    (rc = get_str(o, "advertise", 0, witch__addr_is_numeric, m->advertise,
	    sizeof(m->advertise), errbuf, errlen)) != 0 ||
	    (rc = get_int(o, "seq", 0, INT64_MAX, &iv, errbuf, errlen)) != 0)
		return rc;
	m->seq = (uint64_t)iv;
	m->time_ms = 0;
	if ((st = json_object_get(o, "time")) != NULL) {
		if (!json_is_integer(st) || json_integer_value(st) <= 0)
			return perr(errbuf, errlen, "\"time\" is not a "
			    "positive integer");
		m->time_ms = (uint64_t)json_integer_value(st);
	}
	st = json_object_get(o, "state");
	if (st == NULL)
		return perr(errbuf, errlen, "missing \"state\"");
	if (!json_is_string(st))
		return perr(errbuf, errlen, "\"state\" is not a string");
	if (strcmp(json_string_value(st), "up") == 0)
		m->leaving = 0;
	else if (strcmp(json_string_value(st), "leaving") == 0)
		m->leaving = 1;
	else
		return perr(errbuf, errlen, "\"state\" is not up or leaving");
	return 0;
}

/* Decode one datagram (see discovery_int.h).  Pure; any thread. */
int
witch__disc_parse(const void *buf, size_t len, struct witch__disc_msg *out,
    char *errbuf, size_t errlen)
{
	struct witch__disc_msg m;
	json_error_t jerr;
	json_t *o;
	int rc;

	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	if (buf == NULL || len == 0)
		return perr(errbuf, errlen, "empty datagram");
	if (len > WITCH_DISCOVERY_MAX_DATAGRAM)
		return perr(errbuf, errlen, "datagram of %zu bytes (max %d)",
		    len, WITCH_DISCOVERY_MAX_DATAGRAM);
	/* Strict JSON (framing.md): jansson takes "1\0" for "1". */
	if (memchr(buf, '\0', len) != NULL)
		return perr(errbuf, errlen, "not JSON: raw NUL byte");
	o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL)
		return perr(errbuf, errlen, "not JSON: %s", jerr.text);
	if (!json_is_object(o)) {
		json_decref(o);
		return perr(errbuf, errlen, "not a JSON object");
	}
	memset(&m, 0, sizeof(m));
	rc = parse_fields(o, &m, errbuf, errlen);
	json_decref(o);
	if (rc == 0)
		*out = m;
	return rc;
}

/* Encode one announcement (see discovery_int.h).  Pure; any thread. */
int
witch__disc_encode(const struct witch__disc_msg *m, char *buf, size_t cap,
    size_t *len)
{
	json_t *o = NULL, *protos = NULL;
	char *s = NULL;
	size_t i, n;
	int rc = WITCH_ENOMEM;

	if ((protos = json_array()) == NULL)
		goto fail;
	for (i = 0; i < m->nprotocols; i++)
		if (json_array_append_new(protos,
		    json_string(m->protocols[i])) != 0)
			goto fail;
	o = json_pack("{s:i, s:s, s:s, s:i, s:O, s:s, s:s, s:s, s:I}",
	    "witch", WITCH__DISC_VERSION, "name", m->name,
	    "server_id", m->server_id, "port", (int)m->port,
	    "protocols", protos, "project_id", m->project_id,
	    "source_hash", m->source_hash,
	    "state", m->leaving ? "leaving" : "up", "seq", (json_int_t)m->seq);
	if (o == NULL)
		goto fail;
	if (m->advertise[0] != '\0' &&
	    json_object_set_new(o, "advertise", json_string(m->advertise)) != 0)
		goto fail;
	if (m->time_ms != 0 && json_object_set_new(o, "time",
	    json_integer((json_int_t)m->time_ms)) != 0)
		goto fail;
	if ((s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		goto fail;
	n = strlen(s);
	rc = WITCH_ETOO_LARGE;
	if (n > WITCH_DISCOVERY_MAX_DATAGRAM || n >= cap)
		goto fail;
	memcpy(buf, s, n + 1);
	*len = n;
	rc = 0;
fail:
	free(s);
	json_decref(o);
	json_decref(protos);
	return rc;
}

int
witch__disc_encode_signed(const struct witch__disc_msg *m,
    const struct witch__key *k, char *buf, size_t cap, size_t *len)
{
	char mac[WITCH__AUTH_HEX + 1];
	size_t n;
	int rc;

	if ((rc = witch__disc_encode(m, buf, cap, &n)) != 0)
		return rc;
	if (witch__key_on(k)) {
		/* Drop the closing brace, sign, append the hmac member. */
		n--;
		if (n + WITCH__SIG_TAIL_LEN > WITCH_DISCOVERY_MAX_DATAGRAM ||
		    n + WITCH__SIG_TAIL_LEN >= cap)
			return WITCH_ETOO_LARGE;
		witch__disc_sign(k, buf, n, mac);
		n += (size_t)snprintf(buf + n, cap - n, "%s%s\"}",
		    WITCH__SIG_MEMBER, mac);
	}
	*len = n;
	return 0;
}

enum witch__disc_verdict
witch__disc_check(const struct witch__key *k, const void *buf, size_t len,
    uint64_t now_ms, struct witch__disc_msg *out, char *errbuf,
    size_t errlen)
{
	enum witch__sig_verdict v;

	if (witch__key_on(k) && len <= WITCH_DISCOVERY_MAX_DATAGRAM) {
		v = witch__disc_verify(k, buf, len);
		if (v == WITCH__SIG_UNSIGNED) {
			perr(errbuf, errlen, "unsigned");
			return WITCH__DISC_UNSIGNED;
		}
		if (v == WITCH__SIG_BAD) {
			perr(errbuf, errlen, "bad signature");
			return WITCH__DISC_BADSIG;
		}
	}
	if (witch__disc_parse(buf, len, out, errbuf, errlen) != 0)
		return WITCH__DISC_MALFORMED;
	if (witch__key_on(k) && (out->time_ms == 0 ||
	    out->time_ms + WITCH__DISC_WINDOW_MS < now_ms ||
	    out->time_ms > now_ms + WITCH__DISC_WINDOW_MS)) {
		perr(errbuf, errlen, "time outside the %d s window",
		    WITCH__DISC_WINDOW_MS / 1000);
		return WITCH__DISC_STALE;
	}
	return WITCH__DISC_OK;
}

/* ---- registry -------------------------------------------------------- */

/* An empty registry.  The owner serialises all registry calls. */
void
witch__disc_reg_init(struct witch__disc_registry *r, uint64_t expiry_ms,
    int verify)
{
	memset(r, 0, sizeof(*r));
	r->expiry_ms = expiry_ms;
	r->verify = verify;
}

/* Release the entries; the registry is empty afterwards. */
void
witch__disc_reg_free(struct witch__disc_registry *r)
{
	witch__free(r->v);
	r->v = NULL;
	r->n = r->cap = 0;
}

/* The entry (server_id, addr), borrowed until the next update, or NULL. */
struct witch__disc_entry *
witch__disc_reg_find(struct witch__disc_registry *r, const char *server_id,
    const char *addr)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->v[i].msg.server_id, server_id) == 0 &&
		    strcmp(r->v[i].addr, addr) == 0)
			return &r->v[i];
	return NULL;
}

/* What listeners care about changed (not seq, not state). */
static int
msg_differs(const struct witch__disc_msg *a, const struct witch__disc_msg *b)
{
	size_t i;

	if (strcmp(a->name, b->name) != 0 || a->port != b->port ||
	    strcmp(a->project_id, b->project_id) != 0 ||
	    strcmp(a->source_hash, b->source_hash) != 0 ||
	    strcmp(a->advertise, b->advertise) != 0 ||
	    a->nprotocols != b->nprotocols)
		return 1;
	for (i = 0; i < a->nprotocols; i++)
		if (strcmp(a->protocols[i], b->protocols[i]) != 0)
			return 1;
	return 0;
}

static void
reg_remove(struct witch__disc_registry *r, struct witch__disc_entry *e)
{
	size_t i = (size_t)(e - r->v);

	memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof(r->v[0]));
	r->n--;
}

static struct witch__disc_entry *
reg_add(struct witch__disc_registry *r)
{
	struct witch__disc_entry *nv;
	size_t ncap;

	if (r->n >= WITCH__DISC_REG_MAX) {
		r->full_drops++;
		return NULL;
	}
	if (r->n == r->cap) {
		ncap = r->cap ? r->cap * 2 : 8;
		nv = witch__reallocarray(r->v, ncap, sizeof(*nv));
		if (nv == NULL) {
			r->full_drops++;
			return NULL;
		}
		r->v = nv;
		r->cap = ncap;
	}
	memset(&r->v[r->n], 0, sizeof(r->v[0]));
	return &r->v[r->n++];
}

/* Apply one announcement; see discovery_int.h for the events. */
int
witch__disc_reg_update(struct witch__disc_registry *r,
    const struct witch__disc_msg *m, const char *addr, uint64_t now,
    struct witch__disc_event *out)
{
	struct witch__disc_entry *e;
	int ev;

	e = witch__disc_reg_find(r, m->server_id, addr);
	if (e != NULL && m->seq < e->msg.seq)
		return 0;		/* stale or replayed */
	if (m->leaving) {
		if (e == NULL)
			return 0;
		out->ev = WITCH_DISCOVERY_LOST;
		out->e = *e;
		out->e.msg.leaving = 1;
		out->e.msg.seq = m->seq;
		reg_remove(r, e);
		return WITCH_DISCOVERY_LOST;
	}
	if (e == NULL) {
		if ((e = reg_add(r)) == NULL)
			return 0;
		strlcpy(e->addr, addr, sizeof(e->addr));
		e->verify = r->verify ? WITCH_VERIFY_PENDING : WITCH_VERIFY_OFF;
		ev = WITCH_DISCOVERY_FOUND;
	} else if (msg_differs(&e->msg, m)) {
		ev = WITCH_DISCOVERY_CHANGED;
		if (r->verify)
			e->verify = WITCH_VERIFY_PENDING;
	} else
		ev = 0;
	e->msg = *m;
	e->last_seen = now;
	if (ev != 0) {
		out->ev = ev;
		out->e = *e;
	}
	return ev;
}

/* Remove silent entries; LOST events (copies) into out. */
size_t
witch__disc_reg_expire(struct witch__disc_registry *r, uint64_t now,
    struct witch__disc_event *out, size_t max)
{
	size_t i = 0, k = 0;

	while (i < r->n && k < max) {
		if (now > r->v[i].last_seen &&
		    now - r->v[i].last_seen > r->expiry_ms) {
			out[k].ev = WITCH_DISCOVERY_LOST;
			out[k].e = r->v[i];
			out[k].e.msg.leaving = 0;
			k++;
			reg_remove(r, &r->v[i]);
		} else
			i++;
	}
	return k;
}

/* Time to the next expiry (UINT64_MAX: nothing to expire). */
uint64_t
witch__disc_reg_next(const struct witch__disc_registry *r, uint64_t now)
{
	uint64_t best = UINT64_MAX, due;
	size_t i;

	for (i = 0; i < r->n; i++) {
		due = r->v[i].last_seen + r->expiry_ms + 1;
		due = due > now ? due - now : 0;
		if (due < best)
			best = due;
	}
	return best;
}

/* Snapshot object of one entry: a new reference, or NULL. */
json_t *
witch__disc_entry_json(const struct witch__disc_entry *e, uint64_t now)
{
	json_t *o, *protos;
	size_t i;

	if ((protos = json_array()) == NULL)
		return NULL;
	for (i = 0; i < e->msg.nprotocols; i++)
		if (json_array_append_new(protos,
		    json_string(e->msg.protocols[i])) != 0) {
			json_decref(protos);
			return NULL;
		}
	o = json_pack("{s:s, s:s, s:i, s:o, s:s, s:s, s:s, s:s, s:s, s:I, s:I}",
	    "name", e->msg.name, "addr", e->addr, "port", (int)e->msg.port,
	    "protocols", protos, "project_id", e->msg.project_id,
	    "source_hash", e->msg.source_hash, "server_id", e->msg.server_id,
	    "verified", witch_discovery_verify_name(e->verify),
	    "state", e->msg.leaving ? "leaving" : "up",
	    "seq", (json_int_t)e->msg.seq,
	    "last_seen_age", (json_int_t)(now > e->last_seen ?
	    now - e->last_seen : 0));
	return o;
}

/* ---- rate limits ----------------------------------------------------- */

/* A full bucket of burst tokens, refilled at rate per second. */
void
witch__disc_bucket_init(struct witch__disc_bucket *b, double rate,
    double burst, uint64_t now)
{
	b->rate = rate;
	b->burst = burst;
	b->tokens = burst;
	b->last = now;
}

/* Take one token: 1, or 0 when empty.  Owner thread only. */
int
witch__disc_bucket_take(struct witch__disc_bucket *b, uint64_t now)
{
	if (now > b->last) {
		b->tokens += (double)(now - b->last) * b->rate / 1000.0;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
		b->last = now;
	}
	if (b->tokens < 1.0)
		return 0;
	b->tokens -= 1.0;
	return 1;
}

/* Per-source and overall limits, all buckets full. */
void
witch__disc_limiter_init(struct witch__disc_limiter *l, uint64_t now)
{
	memset(l, 0, sizeof(*l));
	witch__disc_bucket_init(&l->all, WITCH__DISC_RATE_ALL,
	    WITCH__DISC_BURST_ALL, now);
}

/* Same host (address only: a flooder may change ports freely). */
static int
same_host(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return 0;
	if (b->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (b->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		    &((const struct sockaddr_in6 *)b)->sin6_addr,
		    sizeof(struct in6_addr)) == 0;
	return 0;
}

/* 1 if a datagram from src may be processed now.  Owner thread. */
int
witch__disc_limiter_take(struct witch__disc_limiter *l,
    const struct sockaddr *src, uint64_t now)
{
	size_t i, k = 0;
	socklen_t len;

	for (i = 0; i < l->nslots; i++)
		if (same_host(&l->slot[i].src, src))
			break;
	if (i == l->nslots) {
		if (l->nslots < WITCH__DISC_SRC_SLOTS)
			i = l->nslots++;
		else {
			/* Reuse the least recently used slot. */
			for (i = 1; i < l->nslots; i++)
				if (l->slot[i].used < l->slot[k].used)
					k = i;
			i = k;
		}
		len = src->sa_family == AF_INET6 ?
		    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
		memset(&l->slot[i].src, 0, sizeof(l->slot[i].src));
		memcpy(&l->slot[i].src, src, len);
		witch__disc_bucket_init(&l->slot[i].b, WITCH__DISC_RATE_SRC,
		    WITCH__DISC_BURST_SRC, now);
	}
	l->slot[i].used = now;
	if (!witch__disc_bucket_take(&l->slot[i].b, now))
		return 0;
	return witch__disc_bucket_take(&l->all, now);
}

/* ---- names ----------------------------------------------------------- */

/* Name of an event; never NULL.  Any thread. */
const char *
witch_discovery_event_name(enum witch_discovery_event ev)
{
	switch (ev) {
	case WITCH_DISCOVERY_FOUND:
		return "found";
	case WITCH_DISCOVERY_CHANGED:
		return "changed";
	case WITCH_DISCOVERY_VERIFIED:
		return "verified";
	case WITCH_DISCOVERY_LOST:
		return "lost";
	}
	return "unknown";
}

/* Name of a verification state; never NULL.  Any thread. */
const char *
witch_discovery_verify_name(enum witch_discovery_verify v)
{
	switch (v) {
	case WITCH_VERIFY_OFF:
		return "off";
	case WITCH_VERIFY_PENDING:
		return "pending";
	case WITCH_VERIFY_OK:
		return "ok";
	case WITCH_VERIFY_FAILED:
		return "failed";
	}
	return "unknown";
}
