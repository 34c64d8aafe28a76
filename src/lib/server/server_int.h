/*
 * server/server_int.h: the server API's internals (server.c, config.c,
 * builtins.c, sourcehash.c).  A server embeds the reactor it runs
 * (reactor/reactor.h) and hands it its options; the reactor never sees
 * this header.  See doc/internals/architecture.md.
 *
 * Threads: [I] immutable once the server has started (workers read them
 * freely); the rest belongs to the application thread, under stop_mtx
 * for start and stop.
 */
#ifndef WITCH__SERVER_SERVER_INT_H
#define WITCH__SERVER_SERVER_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <witch/server.h>
#include <witch/discovery.h>

#include "core/log.h"
#include "peer/peer.h"
#include "reactor/reactor.h"

struct witch_server_config {
	bool		 tcp;		/* listen on bind:port */
	char		 unix_path[WITCH__UNIX_PATH_MAX + 1];	/* "" none */
	unsigned	 unix_mode;
	unsigned	 port;
	char		 bind[64];
	char		 name[WITCH__NAME_MAX + 1];
	char		 project_id[WITCH__NAME_MAX + 1];
	unsigned	 max_clients;
	char		 protocols[WITCH__PROTO_MAX][WITCH__PROTO_NAME_MAX + 1];
	size_t		 nprotocols;
	unsigned	 workers;
	bool		 inline_builtins;	/* ping, echo on the reactor */
	unsigned	 queue_depth;
	size_t		 max_frame;
	unsigned	 idle_ms;
	unsigned	 handshake_ms;
	size_t		 out_soft;
	size_t		 out_hard;
	bool		 has_source_hash;
	char		 source_hash[WITCH__HASH_HEX + 1];
	unsigned	 drain_ms;
	bool		 discovery;
	unsigned	 disc_port;
	unsigned	 disc_interval_ms;
	char		 advertise[64];
	char		 disc_target[64];	/* diagnostic: unicast target */
	witch_log_fn	 log_fn;
	void		*log_ud;
	struct witch__peer_opts peer;	/* peering (peer/peer.h) */
};

struct witch_server {
	struct witch__reactor		 r;		/* what runs it */
	struct witch_server_config	 cfg;		/* [I] */
	char				 server_id[WITCH__HASH_HEX + 1];
	char				 source_hash[WITCH__HASH_HEX + 1];
	double				 start_wall;	/* [I] */
	unsigned			 port;		/* [I] */
	unsigned			 nworkers;	/* [I] */
	pthread_mutex_t			 stop_mtx;	/* serialises stop */
	pthread_t			 reactor_thr;
	bool				 reactor_started;
	struct witch_announcer		*announcer;	/* or NULL */
	struct witch__peers		*peers;		/* peer/ state */
	int				 adopted[WITCH__ACCEPTORS_MAX];
	size_t				 nadopted;
};

/* Log a line through the server's logger (none: nothing).  Any thread. */
#define witch__log(srv, ...) \
	witch__log_to((srv)->cfg.log_fn, (srv)->cfg.log_ud, __VA_ARGS__)

/* server/config.c */
void witch__config_defaults(struct witch_server_config *cfg);

/* server/sourcehash.c: XXH3-128 of the interface, as protocol.md defines. */
void witch__source_hash(const struct witch_server *srv,
    char out[WITCH__HASH_HEX + 1]);

/* server/builtins.c: register ping, echo, info, status, stats, peer_list. */
int witch__builtins_register(struct witch_server *srv);

#endif
