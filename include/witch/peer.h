/*
 * witch/peer.h: server peers.
 *
 * A server with peering on links to the other servers of its project:
 * those its discovery listener hears with the same project_id (see
 * witch_server_config_set_discovery()), and those named as seeds (and
 * the peers the seeds know).  One link per pair: the server with the
 * smaller server_id dials the other with the client library and says
 * "peer_hello"; messages the other way travel as event frames on that
 * same connection.  Heartbeats ("peer_ping", answered on the reactor
 * thread, never queued behind the worker pool) judge each peer alive,
 * suspect or dead on the data connection; a server whose source hash
 * differs is listed incompatible and gets no messages; a server of
 * another project is never linked and never listed.
 * doc/internals/peer.md has the design; witch-protocol(7) the frames.
 *
 * Threads.  Every callback of this header (message handler, status
 * callback) runs on the server's peer thread, one call at a time, never
 * on the reactor thread and never on a worker: a slow callback delays
 * the delivery of later peer messages, not the server's requests or its
 * heartbeats.  The functions may be called from any thread while the
 * server runs, callbacks and handlers included (witch_server_query_peers()
 * blocks: not from an WITCH_ENDPOINT_INLINE handler).
 */
#ifndef WITCH_PEER_H
#define WITCH_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <witch/export.h>
#include <witch/error.h>
#include <witch/server.h>

WITCH_BEGIN_DECLS

/* Defaults and bounds (documented in witchd(8) too). */
#define WITCH_PEER_DEFAULT_HEARTBEAT_MS 1000
#define WITCH_PEER_HEARTBEAT_MIN_MS 50
#define WITCH_PEER_HEARTBEAT_MAX_MS 60000
#define WITCH_PEER_DEFAULT_SUSPECT 2	/* silent intervals: suspect */
#define WITCH_PEER_DEFAULT_DEAD 3	/* silent intervals: dead */
#define WITCH_PEER_DEAD_MAX 10
#define WITCH_PEER_DEFAULT_QUEUE 1024	/* messages waiting per peer */
#define WITCH_PEER_QUEUE_MAX 65536
#define WITCH_PEER_SEEDS_MAX 16
#define WITCH_PEER_MAX 64		/* peers in the table */

enum witch_peer_status {
	WITCH_PEER_CONNECTING = 1,	/* known, link not up yet */
	WITCH_PEER_ALIVE,		/* heard within the suspect bound */
	WITCH_PEER_SUSPECT,		/* silent past suspect intervals */
	WITCH_PEER_DEAD,		/* silent past dead intervals */
	WITCH_PEER_INCOMPATIBLE		/* another source hash: no messages */
};

/*
 * A peer as a callback sees it: pointers borrowed, valid during the call
 * only.  Fields may be appended in later versions.
 */
typedef struct witch_peer_info {
	const char		*server_id;
	const char		*name;
	const char		*addr;		/* numeric address */
	unsigned		 port;		/* its TCP port */
	enum witch_peer_status	 status;
	int64_t			 last_seen_ms;	/* age; -1: never heard */
	int64_t			 rtt_us;	/* last heartbeat; -1: none */
	uint64_t		 sent;		/* messages handed to the link */
	uint64_t		 received;	/* messages delivered from it */
	uint64_t		 dropped;	/* messages to it dropped */
} witch_peer_info_t;

/*
 * A message from a peer: from_id and from_name name the sender (as its
 * link proved it, not as the message claims), message is the JSON value
 * it sent (borrowed; json_incref() to keep).  On the peer thread.
 */
typedef void (*witch_peer_message_fn)(witch_server_t *srv,
    const char *from_id, const char *from_name, json_t *message,
    void *userdata);
/*
 * A peer changed status (old != peer->status), or messages to it were
 * dropped (old == peer->status, peer->dropped grew: a full queue or a
 * link that failed under them).  On the peer thread.
 */
typedef void (*witch_peer_status_fn)(witch_server_t *srv,
    const witch_peer_info_t *peer, enum witch_peer_status old,
    void *userdata);

/* ---- configuration (before witch_server_new()) ---------------------- */

/* Turn peering on (default off). */
WITCH_EXTERN int witch_server_config_set_peering(witch_server_config_t *cfg,
    bool on);
/*
 * Add a seed "HOST:PORT" (HOST a name, an IPv4 address or [IPv6]; at
 * most WITCH_PEER_SEEDS_MAX); NULL removes every seed.  WITCH_EINVAL for
 * a malformed one, WITCH_ETOO_LARGE past the limit.
 */
WITCH_EXTERN int witch_server_config_add_peer_seed(
    witch_server_config_t *cfg, const char *host_port);
/* Heartbeat interval (WITCH_PEER_HEARTBEAT_MIN_MS..MAX_MS ms). */
WITCH_EXTERN int witch_server_config_set_peer_heartbeat(
    witch_server_config_t *cfg, unsigned ms);
/*
 * A peer silent for more than suspect intervals is suspect, for more
 * than dead intervals dead (1 <= suspect < dead <= WITCH_PEER_DEAD_MAX).
 * A peer is declared dead at most dead intervals plus one check (a
 * quarter interval) after it fell silent.
 */
WITCH_EXTERN int witch_server_config_set_peer_thresholds(
    witch_server_config_t *cfg, unsigned suspect, unsigned dead);
/* Messages waiting per peer (1..WITCH_PEER_QUEUE_MAX); past it: dropped. */
WITCH_EXTERN int witch_server_config_set_peer_queue(
    witch_server_config_t *cfg, unsigned messages);
/* Handler of peer messages (NULL: none; subscribers still get them). */
WITCH_EXTERN int witch_server_config_set_peer_message_handler(
    witch_server_config_t *cfg, witch_peer_message_fn fn, void *userdata);
/* Status callback (NULL: none). */
WITCH_EXTERN int witch_server_config_set_peer_status_callback(
    witch_server_config_t *cfg, witch_peer_status_fn fn, void *userdata);

/* ---- sending ----------------------------------------------------------- */

/*
 * Queue message (borrowed) for every alive peer.  Returns how many peers
 * it was queued for (0: no alive peer), or WITCH_ESTATE (peering off or
 * not running), WITCH_EINVAL, WITCH_ENOMEM.  A peer whose queue is full
 * does not count (its drop is counted and reported).  Delivery: per
 * sender in order, at most once.
 */
WITCH_EXTERN int witch_server_broadcast_to_peers(witch_server_t *srv,
    json_t *message);
/*
 * Queue message (borrowed) for one peer, named by server id or by name.
 * Returns 0, or WITCH_ENO_PEER (no such peer), WITCH_EPEER_DOWN (known
 * but not alive), WITCH_EINCOMPATIBLE (its source hash differs),
 * WITCH_EOVERLOADED (its queue is full: dropped, counted), WITCH_ESTATE,
 * WITCH_EINVAL, WITCH_ENOMEM.
 */
WITCH_EXTERN int witch_server_send_to_peer(witch_server_t *srv,
    const char *peer, json_t *message);

/* ---- looking ----------------------------------------------------------- */

/*
 * The peer table now: *array gets a new JSON array (caller decrefs) of
 * objects {name, server_id, address, port, status, last_seen (seconds
 * ago, null: never), rtt_ms (null: none), role ("dial" or "accept"),
 * sent, received, dropped}.  Peering off: an empty array.  Returns 0,
 * WITCH_EINVAL or WITCH_ENOMEM.
 */
WITCH_EXTERN int witch_server_peers(witch_server_t *srv, json_t **array);
/*
 * Ask every alive peer endpoint (data borrowed, NULL: none) and wait up
 * to timeout_ms (0: twice the heartbeat interval) for the answers.
 * *result gets {"answers": [{server_id, name, result} or {server_id,
 * name, error: {code, message}}], "missing": [{server_id, name}]}
 * (missing: no answer in time).  Blocks: any thread but the reactor.
 * Returns 0, WITCH_ESTATE, WITCH_EINVAL or WITCH_ENOMEM.
 */
WITCH_EXTERN int witch_server_query_peers(witch_server_t *srv,
    const char *endpoint, json_t *data, unsigned timeout_ms,
    json_t **result);
/* Name of a status ("alive"...); never NULL. */
WITCH_EXTERN const char *witch_peer_status_name(enum witch_peer_status s);

WITCH_END_DECLS

#endif /* WITCH_PEER_H */
