/*
 * witch/discovery.h: finding witch servers on the local networks.
 *
 * An announcer tells the LANs a server is there: one small UDP datagram
 * (JSON, at most 1,200 bytes; see witch-protocol(7) and
 * doc/internals/discovery.md) on every up, broadcast-capable IPv4
 * interface to its broadcast address, and on every multicast-capable IPv6
 * interface to the link-local group ff02::114, at start, then every
 * interval (+-25% jitter), and once with state "leaving" on
 * witch_announcer_stop().  It never reads from the network.
 *
 * A listener receives announcements, keeps a registry of servers with
 * expiry, reports each server found, changed, verified and lost once, and
 * can verify a server with a real TCP hello and ping.  It never sends a
 * datagram (no amplification, by construction).
 *
 * Threads.  Each announcer and each listener runs on its own library
 * thread between _start() and _stop().  Listener callbacks run on the
 * listener's thread; they may call witch_listener_snapshot() but not
 * witch_listener_stop() or witch_listener_free().  Other functions may be
 * called from any thread, except _free(), which must not race with other
 * calls on the same object.  Configurations are not thread-safe.
 */
#ifndef WITCH_DISCOVERY_H
#define WITCH_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <witch/export.h>
#include <witch/error.h>
#include <witch/server.h>

WITCH_BEGIN_DECLS

typedef struct witch_announcer witch_announcer_t;
typedef struct witch_announcer_config witch_announcer_config_t;
typedef struct witch_listener witch_listener_t;
typedef struct witch_listener_config witch_listener_config_t;

#define WITCH_DISCOVERY_DEFAULT_PORT 8889
#define WITCH_DISCOVERY_DEFAULT_INTERVAL_MS 2000
#define WITCH_DISCOVERY_INTERVAL_MIN_MS 100
#define WITCH_DISCOVERY_INTERVAL_MAX_MS 3600000
#define WITCH_DISCOVERY_DEFAULT_EXPIRY_MS 6000	/* 3 intervals */
#define WITCH_DISCOVERY_V6_GROUP "ff02::114"
#define WITCH_DISCOVERY_MAX_DATAGRAM 1200

/* ---- announcer ------------------------------------------------------- */

/*
 * Announcer configuration: defaults set (port 8889, interval 2000 ms,
 * bind "0.0.0.0"); setters copy strings and return 0 or WITCH_EINVAL
 * (configuration unchanged).  name and server_id must be set before
 * witch_announcer_new(); with witch_server, take them from the server:
 * witch_server_id(), witch_server_port(), witch_server_source_hash().
 */
WITCH_EXTERN int witch_announcer_config_new(witch_announcer_config_t **ret);
WITCH_EXTERN void witch_announcer_config_free(witch_announcer_config_t *cfg);
/* Server name (1..63 bytes, no control characters). */
WITCH_EXTERN int witch_announcer_config_set_name(
    witch_announcer_config_t *cfg, const char *name);
/* Server id (1..63 bytes of letters, digits, '-' and '_'). */
WITCH_EXTERN int witch_announcer_config_set_server_id(
    witch_announcer_config_t *cfg, const char *server_id);
/* TCP port of the server (1..65535). */
WITCH_EXTERN int witch_announcer_config_set_port(
    witch_announcer_config_t *cfg, unsigned port);
/* Protocols (1..16 printable names of 1..15 bytes; default "v1"). */
WITCH_EXTERN int witch_announcer_config_set_protocols(
    witch_announcer_config_t *cfg, const char *const *protocols,
    size_t count);
/* Project id (0..63 bytes; default ""). */
WITCH_EXTERN int witch_announcer_config_set_project_id(
    witch_announcer_config_t *cfg, const char *project_id);
/* Source hash (32 hex digits, or "" / NULL for none). */
WITCH_EXTERN int witch_announcer_config_set_source_hash(
    witch_announcer_config_t *cfg, const char *hex);
/* UDP port to announce to (1..65535, default 8889). */
WITCH_EXTERN int witch_announcer_config_set_discovery_port(
    witch_announcer_config_t *cfg, unsigned port);
/* Announcement interval (100..3600000 ms, default 2000); +-25% jitter. */
WITCH_EXTERN int witch_announcer_config_set_interval(
    witch_announcer_config_t *cfg, unsigned ms);
/*
 * Numeric address the server is bound to; decides where to announce:
 * "0.0.0.0" every IPv4 interface, "::" every IPv6 interface, a loopback
 * address nowhere (logged), another address only its own interface.
 */
WITCH_EXTERN int witch_announcer_config_set_bind(
    witch_announcer_config_t *cfg, const char *addr);
/*
 * Address listeners should use instead of the datagram's source (NAT,
 * containers): numeric IPv4/IPv6 address, or NULL for none.  With an
 * advertised address the announcer announces on every interface even
 * when the server is bound to loopback.
 */
WITCH_EXTERN int witch_announcer_config_set_advertise(
    witch_announcer_config_t *cfg, const char *addr);
/*
 * Test and diagnostic hook: send announcements by unicast to this numeric
 * address (at the discovery port) instead of to the interfaces (NULL:
 * back to interfaces).  The loopback tests use it, since lo has no
 * broadcast.
 */
WITCH_EXTERN int witch_announcer_config_set_target(
    witch_announcer_config_t *cfg, const char *addr);
/* Logger (NULL: silent); called on the announcer's thread. */
/*
 * Sign announcements with the project's key (len WITCH_KEY_MIN..
 * WITCH_KEY_MAX bytes, copied; NULL: unsigned): each carries its wall
 * clock time and an HMAC-SHA256 over its bytes (witch-protocol(7)).
 */
WITCH_EXTERN int witch_announcer_config_set_key(
    witch_announcer_config_t *cfg, const void *key, size_t len);
WITCH_EXTERN int witch_announcer_config_set_logger(
    witch_announcer_config_t *cfg, witch_log_fn fn, void *userdata);

/*
 * Create an announcer from cfg (copied).  Returns 0, WITCH_EINVAL (name or
 * server_id or port missing) or WITCH_ENOMEM.
 */
WITCH_EXTERN int witch_announcer_new(witch_announcer_t **ret,
    const witch_announcer_config_t *cfg);
/*
 * Start the announcer thread; the first announcement goes out at once.
 * Returns 0, WITCH_ESTATE (already started) or WITCH_ESYSTEM.
 */
WITCH_EXTERN int witch_announcer_start(witch_announcer_t *a);
/*
 * Send the "leaving" announcement on every interface and stop the thread
 * (waits for it).  A no-op when not started.  Any thread but the
 * announcer's.
 */
WITCH_EXTERN void witch_announcer_stop(witch_announcer_t *a);
/* Stop (if started) and free; NULL is a no-op. */
WITCH_EXTERN void witch_announcer_free(witch_announcer_t *a);
/* Announcements sent so far (datagrams), a snapshot.  Any thread. */
WITCH_EXTERN uint64_t witch_announcer_sent(const witch_announcer_t *a);

/* ---- listener --------------------------------------------------------- */

enum witch_discovery_event {
	WITCH_DISCOVERY_FOUND = 1,	/* first announcement from it */
	WITCH_DISCOVERY_CHANGED,	/* name, port, protocols, hashes... */
	WITCH_DISCOVERY_VERIFIED,	/* verification ended: see verify */
	WITCH_DISCOVERY_LOST		/* leaving, or silent past expiry */
};

enum witch_discovery_verify {
	WITCH_VERIFY_OFF = 0,		/* verification disabled */
	WITCH_VERIFY_PENDING,		/* queued or running */
	WITCH_VERIFY_OK,		/* hello + ping answered, ids match */
	WITCH_VERIFY_FAILED		/* no answer, or another server */
};

/*
 * A discovered server, as the callback sees it.  Every pointer is
 * borrowed and valid only during the callback.  One server reachable at
 * two addresses (two LANs, IPv4 and IPv6) is two entries with the same
 * server_id.  Fields may be appended in later versions.
 */
typedef struct witch_discovered {
	const char		*name;
	const char		*server_id;
	const char		*addr;	/* numeric; IPv6 link-local: "%if" */
	unsigned		 port;
	const char *const	*protocols;
	size_t			 nprotocols;
	const char		*project_id;
	const char		*source_hash;	/* "" when not announced */
	enum witch_discovery_verify verify;
	bool			 leaving;	/* LOST by a leaving message */
	uint64_t		 seq;
	uint64_t		 age_ms;	/* since last announced */
} witch_discovered_t;

/* Event callback; runs on the listener's thread. */
typedef void (*witch_discovery_fn)(witch_listener_t *l,
    enum witch_discovery_event ev, const witch_discovered_t *srv,
    void *userdata);

/* Listener configuration; as above. */
WITCH_EXTERN int witch_listener_config_new(witch_listener_config_t **ret);
WITCH_EXTERN void witch_listener_config_free(witch_listener_config_t *cfg);
/* UDP port (0..65535, default 8889; 0 picks a free one, for tests). */
WITCH_EXTERN int witch_listener_config_set_port(witch_listener_config_t *cfg,
    unsigned port);
/*
 * Numeric address to bind (NULL or "": the wildcard, the default).  An
 * IPv4 address gives one IPv4 socket bound to it and an IPv6 address one
 * IPv6 socket, whatever witch_listener_config_set_ipv6() says.  A socket
 * bound to a unicast address gets no broadcasts (Linux) and no multicast:
 * this is for one interface's address, or loopback for tests with an
 * announcer whose target is that address.  WITCH_EINVAL for anything but
 * a numeric address (copied; unchanged then).
 */
WITCH_EXTERN int witch_listener_config_set_bind(
    witch_listener_config_t *cfg, const char *addr);
/* Forget a server silent for this long (100..86400000 ms, default 6000). */
WITCH_EXTERN int witch_listener_config_set_expiry(
    witch_listener_config_t *cfg, unsigned ms);
/* Verify each server found with hello + ping over TCP (default false). */
WITCH_EXTERN int witch_listener_config_set_verify(
    witch_listener_config_t *cfg, bool on);
/* Timeout of one verification (100..60000 ms, default 2000). */
WITCH_EXTERN int witch_listener_config_set_verify_timeout(
    witch_listener_config_t *cfg, unsigned ms);
/*
 * Also listen on the IPv6 group on every interface (default true);
 * ignored with a bind address.
 */
WITCH_EXTERN int witch_listener_config_set_ipv6(
    witch_listener_config_t *cfg, bool on);
/* Event callback (NULL: none; use witch_listener_snapshot()). */
WITCH_EXTERN int witch_listener_config_set_callback(
    witch_listener_config_t *cfg, witch_discovery_fn fn, void *userdata);
/* Logger (NULL: silent). */
/*
 * Accept only announcements signed with this key (copied; NULL: accept
 * unsigned ones, the default).  Unsigned, badly signed, replayed (a
 * sequence number not above the last one seen) and stale (time more
 * than 30 s from ours) announcements are dropped and counted
 * (witch_listener_auth_counters()).
 */
WITCH_EXTERN int witch_listener_config_set_key(witch_listener_config_t *cfg,
    const void *key, size_t len);
WITCH_EXTERN int witch_listener_config_set_logger(
    witch_listener_config_t *cfg, witch_log_fn fn, void *userdata);

/* Create a listener from cfg (copied; NULL: defaults).  0 or WITCH_ENOMEM. */
WITCH_EXTERN int witch_listener_new(witch_listener_t **ret,
    const witch_listener_config_t *cfg);
/*
 * Bind the discovery port and start the listener thread.  Returns 0,
 * WITCH_EADDRINUSE, WITCH_ESYSTEM or WITCH_ESTATE; err (may be NULL)
 * explains.
 */
WITCH_EXTERN int witch_listener_start(witch_listener_t *l,
    witch_error_t *err);
/* The bound UDP port (useful with port 0), or 0 before start. */
WITCH_EXTERN unsigned witch_listener_port(const witch_listener_t *l);
/*
 * Stop the threads (waits for them, and for a verification in progress:
 * at most twice the verify timeout).  No LOST events are sent.  Not from
 * a callback.
 */
WITCH_EXTERN void witch_listener_stop(witch_listener_t *l);
/* Stop (if started) and free; NULL is a no-op. */
WITCH_EXTERN void witch_listener_free(witch_listener_t *l);
/*
 * The registry now: *array gets a new JSON array (caller decrefs) of
 * objects {name, addr, port, protocols, project_id, source_hash,
 * server_id, verified ("off"|"pending"|"ok"|"failed"), state ("up"),
 * seq, last_seen_age (ms)}.  Returns 0 or WITCH_ENOMEM.  Any thread.
 */
WITCH_EXTERN int witch_listener_snapshot(witch_listener_t *l,
    json_t **array);
/*
 * Counters (a snapshot): datagrams received, accepted, rejected as
 * malformed, and dropped by the rate limits.  Any pointer may be NULL.
 */
WITCH_EXTERN void witch_listener_counters(const witch_listener_t *l,
    uint64_t *received, uint64_t *accepted, uint64_t *malformed,
    uint64_t *rate_limited);
/*
 * Counters of a listener with a key (a snapshot): announcements dropped
 * as unsigned, badly signed, replayed and stale.  Any pointer may be NULL.
 */
WITCH_EXTERN void witch_listener_auth_counters(const witch_listener_t *l,
    uint64_t *unsigned_, uint64_t *bad_signature, uint64_t *replayed,
    uint64_t *stale);
/* Name of an event ("found"...) or verify state ("ok"...); never NULL. */
WITCH_EXTERN const char *witch_discovery_event_name(
    enum witch_discovery_event ev);
WITCH_EXTERN const char *witch_discovery_verify_name(
    enum witch_discovery_verify v);

WITCH_END_DECLS

#endif /* WITCH_DISCOVERY_H */
