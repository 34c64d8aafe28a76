/*
 * peer/peer_int.h: the peer layer's own structures, shared by peer.c
 * (table, peer thread, sending, queries), link.c (dial links, seeds)
 * and wire.c (the peer endpoints).  Locking: see peer/peer.h; every
 * field marked [M] is read and written under p->mtx only.
 */
#ifndef WITCH__PEER_PEER_INT_H
#define WITCH__PEER_PEER_INT_H

#include "core/log.h"
#include "peer/peer.h"

/* A message waiting in a peer's queue or in the inbox. */
struct witch__peer_msg {
	struct witch__peer_msg	*next;
	json_t			*body;	/* owned; one thread at a time */
	uint64_t		 seq;
	char			 from_id[WITCH__PEER_ID_MAX + 1];
	char			 from_name[WITCH__PEER_NAME_MAX + 1];
};

/* A status change or drop report waiting for the peer thread. */
struct witch__peer_note {
	struct witch__peer_note	*next;
	enum witch_peer_status	 old, now;
	char			 id[WITCH__PEER_ID_MAX + 1];
	char			 name[WITCH__PEER_NAME_MAX + 1];
	char			 addr[64];
	unsigned		 port;
	int64_t			 last_seen_ms, rtt_us;
	uint64_t		 sent, received, dropped;
};

/* One row of the peer table ([M] all). */
struct witch__peer_link {
	bool			 used;
	bool			 removed;	/* leaving the table */
	char			 id[WITCH__PEER_ID_MAX + 1];
	char			 name[WITCH__PEER_NAME_MAX + 1];
	char			 addr[WITCH__PEER_HOST_MAX + 1];
	unsigned		 port;
	char			 hash[WITCH__PEER_ID_MAX + 1];	/* "" unknown */
	enum witch_peer_status	 status;
	enum witch_peer_status	 told;		/* last logged and told */
	bool			 dial;		/* we dial (our id smaller) */
	bool			 linked;	/* peer_hello done, link up */
	uint64_t		 client_id;	/* accept: its connection */
	uint64_t		 last_ns;	/* last heard; 0 never */
	uint64_t		 dead_ns;	/* when last judged dead */
	int64_t			 rtt_us;
	uint64_t		 sent, received, dropped, dropped_told;
	uint64_t		 seq_out;
	struct witch__peer_msg	*qh, *qt;	/* waiting to be sent */
	size_t			 qn;
	/* dial links */
	bool			 thr_on;	/* link thread started */
	bool			 thr_done;	/* ...and finished: join */
	pthread_t		 thr;
	witch_client_t		*c;		/* while linked */
	unsigned		 inflight;	/* peer_msg awaiting replies */
	bool			 rehello;	/* acceptor forgot us */
	/* accept links: introductions (seed thread) */
	uint64_t		 next_intro_ns;
	unsigned		 intro_fails;
	struct witch__peers	*p;
};

struct witch__peer_seed {
	char		 host[WITCH__PEER_HOST_MAX + 1];
	unsigned	 port;
	bool		 reached;	/* last contact worked (for logs) */
	bool		 tried;
	unsigned	 fails;
	unsigned	 contacts;	/* successful ones */
	uint64_t	 next_ns;
};

struct witch__peers {
	witch_server_t		*srv;			/* [I] */
	struct witch__peer_opts	 o;			/* [I] */
	struct witch__peer_self	 self;			/* [I] after start */
	pthread_mutex_t		 mtx;
	pthread_cond_t		 cv;
	bool			 running;		/* [M] */
	bool			 stopping;		/* [M] */
	struct witch__peer_link	 tab[WITCH_PEER_MAX];	/* [M] */
	struct witch__peer_msg	*inh, *intl;		/* [M] inbox */
	size_t			 inn;			/* [M] */
	uint64_t		 in_dropped;		/* [M] */
	struct witch__peer_note	*nh, *nt;		/* [M] notes */
	uint64_t		 subs[WITCH__PEER_SUBS_MAX];	/* [M] 0 free */
	struct witch__peer_seed	 seeds[WITCH_PEER_SEEDS_MAX];	/* seed thr */
	size_t			 nseeds;
	pthread_t		 mgr, seeder;
	bool			 mgr_on, seeder_on;
	witch_listener_t	*lis;
};

#define witch__plog(p, ...) \
	witch__log_to((p)->self.log_fn, (p)->self.log_ud, __VA_ARGS__)

/* peer.c */
uint64_t witch__peer_iv_ns(const struct witch__peers *p);
struct witch__peer_link *witch__peer_find(struct witch__peers *p,
    const char *id);
struct witch__peer_link *witch__peer_by_client(struct witch__peers *p,
    uint64_t client_id);
/*
 * [M] A server heard of (discovery, seed, peer_list, introduction,
 * hello): add or refresh it.  Another project, or ourselves: NULL.
 * May start a dial link.
 */
struct witch__peer_link *witch__peer_candidate(struct witch__peers *p,
    const char *id, const char *name, const char *addr, unsigned port,
    const char *project, const char *hash);
/* [M] Put a message in the inbox (copied); false: full (counted). */
bool witch__peer_inbox(struct witch__peers *p, struct witch__peer_link *l,
    json_t *message);
/* [M] Drop and count every queued message of l. */
void witch__peer_drop_queue(struct witch__peer_link *l);
/* A random number in [0, n) (n > 0). */
uint64_t witch__peer_random(uint64_t n);

/* link.c */
void *witch__peer_link_main(void *arg);
void *witch__peer_seed_main(void *arg);

/* wire.c */
int witch__peer_endpoints(struct witch__peers *p, witch_server_t *srv);

#endif
