/*
 * discovery/listener_int.h: the listener's object, its configuration and
 * their limits, shared by listener.c (threads, datagrams, life cycle) and
 * listener_config.c (the configuration object and its setters).
 */
#ifndef WITCH__DISCOVERY_LISTENER_INT_H
#define WITCH__DISCOVERY_LISTENER_INT_H

#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <witch/client.h>

#include "core/alloc.h"
#include "core/setter.h"
#include "core/log.h"
#include "discovery/discovery_int.h"
#include "poll/poller.h"
#include "poll/wakeup.h"

#define VERIFIERS	2	/* verification threads */
#define VJOBS_MAX	64	/* queued verifications (more wait) */
#define READ_RATE	2000.0	/* recvfrom calls per second */
#define READ_BURST	256.0
#define RESCAN_MS	2000	/* IPv6 group joins on new interfaces */
#define EVBATCH		32
#define VERIFY_RATE	5.0	/* verifications started per second */
#define VERIFY_BURST	20.0

struct witch_listener_config {
	unsigned		 port;
	char			 bind[INET6_ADDRSTRLEN];	/* "": any */
	unsigned		 expiry_ms;
	unsigned		 verify_timeout_ms;
	bool			 verify;
	bool			 ipv6;
	struct witch__key	 key;		/* len 0: accept unsigned */
	witch_discovery_fn	 cb;
	void			*cb_ud;
	witch_log_fn		 log_fn;
	void			*log_ud;
};

struct vjob {
	struct witch__disc_msg	 msg;
	char			 addr[WITCH__DISC_ADDR_MAX];
	enum witch_discovery_verify result;
};

struct sockslot {
	int			 fd;
	int			 pending;	/* readable, not drained */
};

struct witch_listener {
	struct witch_listener_config cfg;
	struct sockslot		 s4, s6;
	unsigned		 port;
	struct witch__poller	*poller;
	struct witch__wakeup	 wk;
	int			 wk_ok;
	pthread_t		 thread;
	int			 started;
	atomic_bool		 stopping;

	pthread_mutex_t		 mu;	/* reg, jobs, results, verifiers */
	pthread_cond_t		 vcv;
	struct witch__disc_registry reg;
	struct vjob		 jobs[VJOBS_MAX];
	size_t			 njobs;
	struct vjob		 results[VJOBS_MAX];
	size_t			 nresults;
	pthread_t		 vthr[VERIFIERS];
	size_t			 nvthr;
	struct witch__disc_bucket vstart;	/* verification starts */

	/* listener thread only */
	struct witch__disc_limiter lim;
	struct witch__disc_bucket reads;
	uint64_t		 last_scan;
	uint64_t		 last_badlog;

	atomic_uint_least64_t	 n_recv, n_ok, n_bad, n_rate;
	/* With a key: dropped unsigned, badly signed, replayed, stale. */
	atomic_uint_least64_t	 n_unsigned, n_badsig, n_replay, n_stale;
};

/* Log through the configured logger (core/log.c formats the line). */
#define llog(l, level, ...) \
	witch__log_to((l)->cfg.log_fn, (l)->cfg.log_ud, (level), __VA_ARGS__)

#endif /* WITCH__DISCOVERY_LISTENER_INT_H */
