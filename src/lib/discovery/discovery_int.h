/*
 * discovery/discovery_int.h: internals of discovery, testable without sockets.
 *
 * The wire codec (witch__disc_parse/encode), the registry with an
 * injected clock, the token bucket and the interface selection (net/ifaces.h) are pure
 * functions over memory; discovery.c puts sockets and threads around
 * them.  See doc/internals/discovery.md.
 */
#ifndef WITCH__DISCOVERY_DISCOVERY_INT_H
#define WITCH__DISCOVERY_DISCOVERY_INT_H

#include <sys/types.h>
#include <sys/socket.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include <witch/discovery.h>

#include "core/key.h"
#include "net/ifaces.h"

#define WITCH__DISC_VERSION	1
#define WITCH__DISC_MAX_PROTOS	16
#define WITCH__DISC_ADDR_MAX	WITCH__ADDR_STR_MAX
#define WITCH__DISC_REG_MAX	1024	/* servers kept; more are dropped */

/* Rate limits of a listener (datagrams per second, burst). */
#define WITCH__DISC_RATE_SRC	20.0	/* per source address */
#define WITCH__DISC_BURST_SRC	40.0
#define WITCH__DISC_RATE_ALL	500.0	/* all sources together */
#define WITCH__DISC_BURST_ALL	1000.0
#define WITCH__DISC_SRC_SLOTS	64	/* sources tracked (LRU) */

/* One announcement, decoded. */
struct witch__disc_msg {
	char		 name[64];
	char		 server_id[64];
	unsigned	 port;
	char		 protocols[WITCH__DISC_MAX_PROTOS][16];
	size_t		 nprotocols;
	char		 project_id[64];
	char		 source_hash[33];
	char		 advertise[INET6_ADDRSTRLEN];	/* "" when none */
	int		 leaving;
	uint64_t	 seq;
	uint64_t	 time_ms;	/* wall clock ms; 0: not sent */
};

/*
 * Decode one datagram of len bytes.  Returns 0 and fills *out, or
 * WITCH_EPROTOCOL with a reason in errbuf (errlen bytes, may be NULL):
 * empty, oversized (> WITCH_DISCOVERY_MAX_DATAGRAM), not a JSON object,
 * wrong version, missing or ill-typed fields.  Unknown fields are
 * ignored (room for "hmac").  Pure; any thread.
 */
int witch__disc_parse(const void *buf, size_t len, struct witch__disc_msg *out,
    char *errbuf, size_t errlen);
/*
 * Encode m into buf (cap bytes) as one JSON object; *len gets its length.
 * Returns 0, WITCH_ETOO_LARGE (over WITCH_DISCOVERY_MAX_DATAGRAM or cap)
 * or WITCH_ENOMEM.  Pure; any thread.
 */
int witch__disc_encode(const struct witch__disc_msg *m, char *buf, size_t cap,
    size_t *len);
/* Field checks shared by the codec and the setters: 1 if valid. */
/*
 * Signed discovery (doc/internals/auth.md): with a key (k->len != 0)
 * encode m with its "time" and an "hmac" member last; without, as
 * witch__disc_encode.  0, WITCH_ENOMEM or WITCH_ETOO_LARGE.
 */
int witch__disc_encode_signed(const struct witch__disc_msg *m,
    const struct witch__key *k, char *buf, size_t cap, size_t *len);

/* How far a signed announcement's time may be from ours. */
#define WITCH__DISC_WINDOW_MS	30000

enum witch__disc_verdict {
	WITCH__DISC_OK = 0,
	WITCH__DISC_MALFORMED,
	WITCH__DISC_UNSIGNED,		/* a key, and no hmac */
	WITCH__DISC_BADSIG,		/* an hmac that does not match */
	WITCH__DISC_STALE		/* time missing or outside the window */
};

/*
 * Check and decode one datagram for a listener that holds key k (len 0:
 * no key: parse only): signature, then content, then the time against
 * now_ms (wall clock) within WITCH__DISC_WINDOW_MS.  Replays inside the
 * window are caught by the registry's sequence numbers.  Pure: bytes in,
 * verdict out (the fuzz target's entry point).
 */
enum witch__disc_verdict witch__disc_check(const struct witch__key *k,
    const void *buf, size_t len, uint64_t now_ms,
    struct witch__disc_msg *out, char *errbuf, size_t errlen);
int witch__disc_valid_name(const char *s);
int witch__disc_valid_id(const char *s);
int witch__disc_valid_hash(const char *s);
int witch__disc_valid_proto(const char *s);

/* ---- registry (owned by one thread, or under the listener's lock) ---- */

struct witch__disc_entry {
	struct witch__disc_msg	 msg;
	char			 addr[WITCH__DISC_ADDR_MAX];
	uint64_t		 last_seen;	/* ms, injected clock */
	enum witch_discovery_verify verify;
	uint64_t		 verify_after;	/* retry failed from then */
	uint64_t		 verify_queued;	/* when last queued (0: not) */
};

struct witch__disc_registry {
	struct witch__disc_entry *v;
	size_t			 n, cap;
	uint64_t		 expiry_ms;
	int			 verify;	/* new entries start PENDING */
	uint64_t		 full_drops;
};

/* An event produced by the registry: a copy, so it outlives the entry. */
struct witch__disc_event {
	enum witch_discovery_event ev;
	struct witch__disc_entry   e;
};

void witch__disc_reg_init(struct witch__disc_registry *r, uint64_t expiry_ms,
    int verify);
void witch__disc_reg_free(struct witch__disc_registry *r);
/*
 * Apply announcement m received from addr at now (ms).  Returns the event
 * (FOUND, CHANGED, LOST for a leaving one) with a copy in *out, or 0 when
 * nothing changed (a refresh, a stale seq, a leaving from an unknown
 * server, or the registry full).  Entries are keyed by (server_id, addr).
 */
int witch__disc_reg_update(struct witch__disc_registry *r,
    const struct witch__disc_msg *m, const char *addr, uint64_t now,
    struct witch__disc_event *out);
/*
 * Remove every entry silent for more than expiry_ms at now and store LOST
 * events in out (at most max).  Returns the number stored; call again
 * while it returns max.
 */
size_t witch__disc_reg_expire(struct witch__disc_registry *r, uint64_t now,
    struct witch__disc_event *out, size_t max);
/* Milliseconds until the next expiry at now (UINT64_MAX: none). */
uint64_t witch__disc_reg_next(const struct witch__disc_registry *r,
    uint64_t now);
/* Find the entry (server_id, addr), or NULL. */
struct witch__disc_entry *witch__disc_reg_find(struct witch__disc_registry *r,
    const char *server_id, const char *addr);
/* The JSON object of an entry at now (new reference, NULL on ENOMEM). */
json_t *witch__disc_entry_json(const struct witch__disc_entry *e,
    uint64_t now);

/* ---- token bucket -------------------------------------------------- */

struct witch__disc_bucket {
	double		 tokens, rate, burst;
	uint64_t	 last;		/* ms */
};

void witch__disc_bucket_init(struct witch__disc_bucket *b, double rate,
    double burst, uint64_t now);
/* Take one token at now: 1 if allowed, 0 if the datagram must be dropped. */
int witch__disc_bucket_take(struct witch__disc_bucket *b, uint64_t now);

/* Per-source and overall limits together (LRU table of sources). */
struct witch__disc_limiter {
	struct witch__disc_bucket all;
	struct {
		struct sockaddr_storage	 src;
		struct witch__disc_bucket b;
		uint64_t		 used;
	} slot[WITCH__DISC_SRC_SLOTS];
	size_t			 nslots;
};

void witch__disc_limiter_init(struct witch__disc_limiter *l, uint64_t now);
/* 1 if a datagram from src may be processed at now, else 0. */
int witch__disc_limiter_take(struct witch__disc_limiter *l,
    const struct sockaddr *src, uint64_t now);

/* Monotonic clock in ms. */
uint64_t witch__disc_now(void);
uint64_t witch__disc_wall_ms(void);

#endif
