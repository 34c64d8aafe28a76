/*
 * peer/peer.h: server peers, the layer's internal header.  The server
 * API (server/) includes it to create, start and stop peering and to
 * answer peer_list and status; peer/ itself speaks to its own server only
 * through the public server API (<witch/server.h>) and to other servers
 * through the client library (<witch/client.h>) and the discovery
 * listener (<witch/discovery.h>).  See doc/internals/peer.md.
 *
 * Threads and locks.  One mutex (p->mtx) guards the whole peer table,
 * the inbox, the subscribers and every field of struct witch__peer_link;
 * it is held only for table work, never across I/O, a client call or a
 * callback.  p->cv (with p->mtx) wakes the peer thread and the link
 * threads when something changed.  Who runs what:
 *  - the peer thread (peer.c, manager()): status transitions, the
 *    status and message callbacks, subscriber events, the output of
 *    links a peer dialed in on (witch_server_send_event);
 *  - a link thread per peer this server dials (link.c): connect,
 *    peer_hello, heartbeats, the output of that link;
 *  - the seed thread (link.c): seeds, introductions;
 *  - the discovery listener's thread: candidates (add only);
 *  - the reactor (inline endpoints peer_ping, peer_msg) and workers
 *    (peer_hello, peer_introduce, ...): table updates, inbox pushes.
 */
#ifndef WITCH__PEER_PEER_H
#define WITCH__PEER_PEER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <witch/client.h>
#include <witch/discovery.h>
#include <witch/peer.h>
#include <witch/server.h>

#define WITCH__PEER_ID_MAX 32
#define WITCH__PEER_NAME_MAX 63
#define WITCH__PEER_HOST_MAX 255
#define WITCH__PEER_SUBS_MAX 64		/* subscribed connections */
#define WITCH__PEER_INBOX_MAX 65536	/* messages waiting for delivery */
#define WITCH__PEER_WINDOW 64		/* messages in flight per dial link */

/* What the server configures (copied into its config; [I] after new). */
struct witch__peer_opts {
	bool			 on;
	char			 seeds[WITCH_PEER_SEEDS_MAX]
				     [WITCH__PEER_HOST_MAX + 8];
	size_t			 nseeds;
	unsigned		 hb_ms;
	unsigned		 suspect, dead;
	unsigned		 queue;
	witch_peer_message_fn	 msg_fn;
	void			*msg_ud;
	witch_peer_status_fn	 st_fn;
	void			*st_ud;
};

/* Who this server is, handed over at start ([I] afterwards). */
struct witch__peer_self {
	char		 name[WITCH__PEER_NAME_MAX + 1];
	char		 project_id[WITCH__PEER_NAME_MAX + 1];
	char		 server_id[WITCH__PEER_ID_MAX + 1];
	char		 source_hash[WITCH__PEER_ID_MAX + 1];
	char		 connect_addr[64];	/* how we reach ourselves */
	unsigned	 port;
	bool		 discovery;		/* listen for announcements */
	unsigned	 disc_port;
	witch_log_fn	 log_fn;
	void		*log_ud;
};

struct witch__peers;

/* Defaults of the options (peering off). */
void witch__peer_opts_defaults(struct witch__peer_opts *o);
/* Parse "HOST:PORT" ("[v6]:PORT"): 0 or WITCH_EINVAL. */
int witch__peer_parse_hostport(const char *s, char *host, size_t hostlen,
    unsigned *port);

/*
 * At witch_server_new (application thread): the peer state, and the peer
 * endpoints registered on srv (always, so the source hash is the same
 * whether peering is on or not).  0 or WITCH_ENOMEM / a registration
 * error.
 */
int witch__peers_new(struct witch__peers **ret, witch_server_t *srv,
    const struct witch__peer_opts *o);
/* After the reactor runs (application thread): start the threads. */
int witch__peers_start(struct witch__peers *p,
    const struct witch__peer_self *self);
/* Stop and join every peer thread (idempotent; application thread). */
void witch__peers_stop(struct witch__peers *p);
/* Stop and free; NULL is a no-op. */
void witch__peers_free(struct witch__peers *p);

/* The public functions of <witch/peer.h>, on the server's peer state. */
int witch__peers_broadcast(struct witch__peers *p, json_t *msg,
    json_t *ids);
int witch__peers_send(struct witch__peers *p, const char *peer,
    json_t *msg);
int witch__peers_snapshot(struct witch__peers *p, json_t **array);
int witch__peers_query(struct witch__peers *p, const char *endpoint,
    json_t *data, unsigned timeout_ms, json_t **result);
/* {"alive": n, "suspect": n, "dead": n, ...} (NULL: no memory). */
json_t *witch__peers_counts(struct witch__peers *p);
bool witch__peers_enabled(const struct witch__peers *p);

#endif
