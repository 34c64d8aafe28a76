/*
 * discovery/announcer.c: the discovery announcer (see witch/discovery.h).
 *
 * One thread per announcer.  Each round it rescans the interfaces
 * (getifaddrs), chooses those the server is reachable through, and sends
 * one datagram to each: IPv4 from a socket bound to the interface's
 * address to its broadcast address (so listeners see that address as the
 * source), IPv6 to ff02::114 out of that interface (IPV6_MULTICAST_IF).
 * Sockets are opened per round and closed at once: there is nothing to
 * keep in step when interfaces come and go, and nothing is ever read.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/setter.h"
#include "core/log.h"
#include "net/sock.h"
#include "discovery/discovery_int.h"
#include "poll/wakeup.h"

struct witch_announcer_config {
	struct witch__disc_msg	 msg;		/* seq, state unused */
	unsigned		 disc_port;
	unsigned		 interval_ms;
	char			 bind[INET6_ADDRSTRLEN];
	char			 target[INET6_ADDRSTRLEN];
	struct witch__key	 key;		/* len 0: unsigned */
	witch_log_fn		 log_fn;
	void			*log_ud;
};

struct witch_announcer {
	struct witch_announcer_config cfg;
	pthread_mutex_t		 mu;		/* started, thread */
	struct witch__wakeup	 wk;
	int			 started;
	atomic_bool		 stopping;
	pthread_t		 thread;
	atomic_uint_least64_t	 sent;
	uint64_t		 seq;		/* announcer thread only */
	char			 lastset[512];	/* last interface set logged */
	int			 said_loopback;
};

/* Log through the configured logger (core/log.c formats the line). */
#define alog(a, level, ...) \
	witch__log_to((a)->cfg.log_fn, (a)->cfg.log_ud, (level), __VA_ARGS__)

/* ---- configuration ---------------------------------------------------- */

/* A project id: "" (none) or a valid name. */
static int
valid_project(const char *s)
{
	return *s == '\0' || witch__disc_valid_name(s);
}

/* The fields with a one-value setter (core/setter.h). */
enum {
	F_NAME, F_SERVER_ID, F_PORT, F_PROJECT_ID, F_SOURCE_HASH,
	F_DISC_PORT, F_INTERVAL, F_BIND, F_ADVERTISE, F_TARGET
};

#define UINT_F(m, lo, hi) \
	WITCH__FIELD_NUM(struct witch_announcer_config, \
	    WITCH__FIELD_UNSIGNED, m, lo, hi)
#define TEXT_F(m, valid, null_clears) \
	WITCH__FIELD_STR(struct witch_announcer_config, m, valid, null_clears)

static const struct witch__field fields[] = {
	[F_NAME] = TEXT_F(msg.name, witch__disc_valid_name, false),
	[F_SERVER_ID] = TEXT_F(msg.server_id, witch__disc_valid_id, false),
	[F_PORT] = UINT_F(msg.port, 1, 65535),
	[F_PROJECT_ID] = TEXT_F(msg.project_id, valid_project, true),
	[F_SOURCE_HASH] = TEXT_F(msg.source_hash, witch__disc_valid_hash,
	    true),
	[F_DISC_PORT] = UINT_F(disc_port, 1, 65535),
	[F_INTERVAL] = UINT_F(interval_ms, WITCH_DISCOVERY_INTERVAL_MIN_MS,
	    WITCH_DISCOVERY_INTERVAL_MAX_MS),
	[F_BIND] = TEXT_F(bind, witch__addr_is_numeric, false),
	[F_ADVERTISE] = TEXT_F(msg.advertise, witch__addr_is_numeric, true),
	[F_TARGET] = TEXT_F(target, witch__addr_is_numeric, true),
};


/* New announcer configuration with defaults; 0 or WITCH_ENOMEM. */
int
witch_announcer_config_new(witch_announcer_config_t **ret)
{
	witch_announcer_config_t *cfg;

	if (ret == NULL)
		return WITCH_EINVAL;
	if ((cfg = witch__calloc(1, sizeof(*cfg))) == NULL)
		return WITCH_ENOMEM;
	strlcpy(cfg->msg.protocols[0], "v1", sizeof(cfg->msg.protocols[0]));
	cfg->msg.nprotocols = 1;
	cfg->disc_port = WITCH_DISCOVERY_DEFAULT_PORT;
	cfg->interval_ms = WITCH_DISCOVERY_DEFAULT_INTERVAL_MS;
	strlcpy(cfg->bind, "0.0.0.0", sizeof(cfg->bind));
	*ret = cfg;
	return 0;
}

/* Free a configuration; NULL is a no-op. */
void
witch_announcer_config_free(witch_announcer_config_t *cfg)
{
	if (cfg != NULL)
		witch__key_clear(&cfg->key);
	witch__free(cfg);
}

/* Sign announcements with key (NULL: unsigned). */
int
witch_announcer_config_set_key(witch_announcer_config_t *cfg,
    const void *key, size_t len)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	return witch__key_set(&cfg->key, key, len);
}

/* Set the announced server name. */
int
witch_announcer_config_set_name(witch_announcer_config_t *cfg,
    const char *name)
{
	return witch__set_text(cfg, &fields[F_NAME], name);
}

/* Set the announced server id. */
int
witch_announcer_config_set_server_id(witch_announcer_config_t *cfg,
    const char *id)
{
	return witch__set_text(cfg, &fields[F_SERVER_ID], id);
}

/* Set the announced TCP port. */
int
witch_announcer_config_set_port(witch_announcer_config_t *cfg, unsigned port)
{
	return witch__set_num(cfg, &fields[F_PORT], port);
}

/* Set the announced protocols (copied). */
int
witch_announcer_config_set_protocols(witch_announcer_config_t *cfg,
    const char *const *protocols, size_t count)
{
	struct witch__disc_msg m;
	size_t i;

	if (cfg == NULL || protocols == NULL || count < 1 ||
	    count > WITCH__DISC_MAX_PROTOS)
		return WITCH_EINVAL;
	for (i = 0; i < count; i++) {
		if (protocols[i] == NULL)
			return WITCH_EINVAL;
		if (!witch__disc_valid_proto(protocols[i]))
			return WITCH_EINVAL;
		strlcpy(m.protocols[i], protocols[i], sizeof(m.protocols[i]));
	}
	memcpy(cfg->msg.protocols, m.protocols, sizeof(m.protocols));
	cfg->msg.nprotocols = count;
	return 0;
}

/* Set the announced project id ("" for none). */
int
witch_announcer_config_set_project_id(witch_announcer_config_t *cfg,
    const char *project_id)
{
	return witch__set_text(cfg, &fields[F_PROJECT_ID], project_id);
}

/* Set the announced source hash (NULL or "" for none). */
int
witch_announcer_config_set_source_hash(witch_announcer_config_t *cfg,
    const char *hex)
{
	return witch__set_text(cfg, &fields[F_SOURCE_HASH], hex);
}

/* Set the UDP port announcements go to. */
int
witch_announcer_config_set_discovery_port(witch_announcer_config_t *cfg,
    unsigned port)
{
	return witch__set_num(cfg, &fields[F_DISC_PORT], port);
}

/* Set the interval between announcements. */
int
witch_announcer_config_set_interval(witch_announcer_config_t *cfg,
    unsigned ms)
{
	return witch__set_num(cfg, &fields[F_INTERVAL], ms);
}


/* Set the server's bind address (decides the interfaces). */
int
witch_announcer_config_set_bind(witch_announcer_config_t *cfg,
    const char *addr)
{
	return witch__set_text(cfg, &fields[F_BIND], addr);
}

/* Set (or clear, NULL) the advertised address. */
int
witch_announcer_config_set_advertise(witch_announcer_config_t *cfg,
    const char *addr)
{
	return witch__set_text(cfg, &fields[F_ADVERTISE], addr);
}

/* Set (or clear, NULL) the unicast target of the test hook. */
int
witch_announcer_config_set_target(witch_announcer_config_t *cfg,
    const char *addr)
{
	return witch__set_text(cfg, &fields[F_TARGET], addr);
}

/* Set the logger. */
int
witch_announcer_config_set_logger(witch_announcer_config_t *cfg,
    witch_log_fn fn, void *userdata)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->log_fn = fn;
	cfg->log_ud = userdata;
	return 0;
}

/* ---- sending ---------------------------------------------------------- */

/* One datagram from a fresh socket; from (may be NULL) is bound first. */
static int
send_one(struct witch_announcer *a, const char *buf, size_t len,
    const struct sockaddr *from, const struct sockaddr *to, unsigned ifindex,
    const char *what)
{
	int fd, on = 1, hops = 1, rc = -1;
	socklen_t slen = to->sa_family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);

	fd = socket(to->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	if (to->sa_family == AF_INET)
		setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof(on));
	else if (ifindex != 0) {
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex,
		    sizeof(ifindex)) == -1)
			goto fail;
		setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops,
		    sizeof(hops));
	}
	if (from != NULL && bind(fd, from, slen) == -1)
		goto fail;
	/*
	 * Counted before the send: on loopback the listener may have the
	 * datagram (and its owner may read this counter) before sendto()
	 * returns.  Uncounted again if it fails.
	 */
	atomic_fetch_add(&a->sent, 1);
	if (sendto(fd, buf, len, 0, to, slen) != (ssize_t)len) {
		atomic_fetch_sub(&a->sent, 1);
		goto fail;
	}
	rc = 0;
fail:
	if (rc != 0)
		alog(a, WITCH_LOG_DEBUG, "discovery: send on %s: %s", what,
		    strerror(errno));
	if (fd != -1)
		close(fd);
	return rc;
}

static void
send_target(struct witch_announcer *a, const char *buf, size_t len)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, a->cfg.target, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(a->cfg.disc_port);
	} else if (inet_pton(AF_INET6, a->cfg.target, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(a->cfg.disc_port);
	} else
		return;
	send_one(a, buf, len, NULL, (struct sockaddr *)&ss, 0, a->cfg.target);
}

static void
send_iface(struct witch_announcer *a, const char *buf, size_t len,
    struct witch__iface *i)
{
	struct sockaddr_storage to;
	struct sockaddr_in6 *to6 = (struct sockaddr_in6 *)&to, *from6;
	char what[64];

	witch__iface_str(i, what, sizeof(what));
	memset(&to, 0, sizeof(to));
	if (i->family == AF_INET) {
		((struct sockaddr_in *)&i->addr)->sin_port = 0;
		memcpy(&to, &i->bcast, sizeof(struct sockaddr_in));
		((struct sockaddr_in *)&to)->sin_port = htons(a->cfg.disc_port);
	} else {
		from6 = (struct sockaddr_in6 *)&i->addr;
		from6->sin6_port = 0;
		if (IN6_IS_ADDR_LINKLOCAL(&from6->sin6_addr))
			from6->sin6_scope_id = i->index;
		to6->sin6_family = AF_INET6;
		to6->sin6_port = htons(a->cfg.disc_port);
		inet_pton(AF_INET6, WITCH_DISCOVERY_V6_GROUP, &to6->sin6_addr);
		to6->sin6_scope_id = i->index;
	}
	send_one(a, buf, len, (struct sockaddr *)&i->addr,
	    (struct sockaddr *)&to, i->family == AF_INET6 ? i->index : 0, what);
}

/* Log the interface set when it changes. */
static void
log_set(struct witch_announcer *a, struct witch__iface *v, size_t n)
{
	char set[sizeof(a->lastset)], one[80];
	size_t i;

	set[0] = '\0';
	for (i = 0; i < n; i++) {
		witch__iface_str(&v[i], one, sizeof(one));
		if (i > 0)
			strlcat(set, ", ", sizeof(set));
		strlcat(set, one, sizeof(set));
	}
	if (strcmp(set, a->lastset) == 0)
		return;
	strlcpy(a->lastset, set, sizeof(a->lastset));
	if (n == 0)
		alog(a, WITCH_LOG_NOTICE, "discovery: no interface to announce "
		    "on (bound to %s)", a->cfg.bind);
	else
		alog(a, WITCH_LOG_INFO, "discovery: announcing on %s", set);
}

/* One round: every chosen interface (or the test target) gets buf. */
static void
announce(struct witch_announcer *a, int leaving)
{
	struct witch__disc_msg m = a->cfg.msg;
	struct witch__iface *v = NULL;
	char buf[WITCH_DISCOVERY_MAX_DATAGRAM + 1];
	size_t len, n = 0, k, i;
	int lo;

	m.leaving = leaving;
	m.seq = ++a->seq;
	if (witch__key_on(&a->cfg.key))
		m.time_ms = witch__disc_wall_ms();
	if (witch__disc_encode_signed(&m, &a->cfg.key, buf, sizeof(buf),
	    &len) != 0) {
		alog(a, WITCH_LOG_ERR, "discovery: announcement too large");
		return;
	}
	if (a->cfg.target[0] != '\0') {
		send_target(a, buf, len);
		return;
	}
	if (witch__ifaces_scan(&v, &n) != 0) {
		alog(a, WITCH_LOG_WARNING, "discovery: cannot list interfaces");
		return;
	}
	k = witch__ifaces_select(v, n, a->cfg.bind,
	    a->cfg.msg.advertise[0] != '\0', &lo);
	if (lo && k == 0) {
		if (!a->said_loopback)
			alog(a, WITCH_LOG_NOTICE, "discovery: server bound to "
			    "loopback %s: nothing to announce on a LAN",
			    a->cfg.bind);
		a->said_loopback = 1;
	} else
		log_set(a, v, k);
	for (i = 0; i < k; i++)
		send_iface(a, buf, len, &v[i]);
	witch__free(v);
}

/* Interval +-25%, uniformly. */
static uint64_t
jittered(const struct witch_announcer *a)
{
	unsigned iv = a->cfg.interval_ms;

	return iv - iv / 4 + arc4random_uniform(iv / 2 + 1);
}

/*
 * The announcer thread: announce, then sleep in poll(2) until the next
 * round, a stop (wakeup) or an interface change (netlink).  A change
 * brings the next round forward to 200 ms from now (addresses settle),
 * but never closer than 500 ms to the previous one, so that link churn
 * cannot turn into a datagram storm.
 */
static void *
announcer_main(void *arg)
{
	struct witch_announcer *a = arg;
	struct pollfd pfd[2];
	uint64_t now, next, last = 0, t;
	int nfd, nl;

	nl = witch__ifaces_watch_open();
	pfd[0].fd = a->wk.rfd;
	pfd[0].events = POLLIN;
	pfd[1].fd = nl;
	pfd[1].events = POLLIN;
	nfd = nl != -1 ? 2 : 1;
	next = witch__disc_now();
	while (!atomic_load(&a->stopping)) {
		now = witch__disc_now();
		if (now >= next) {
			announce(a, 0);
			last = now;
			next = now + jittered(a);
			continue;
		}
		pfd[0].revents = pfd[1].revents = 0;
		if (poll(pfd, (nfds_t)nfd, (int)(next - now)) <= 0)
			continue;
		if (pfd[0].revents != 0)
			witch__wakeup_clear(&a->wk);
		if (nfd == 2 && pfd[1].revents != 0 &&
		    witch__ifaces_watch_drain(nl)) {
			now = witch__disc_now();
			t = now + 200 > last + 500 ? now + 200 : last + 500;
			if (t < next)
				next = t;
		}
	}
	if (nl != -1)
		close(nl);
	announce(a, 1);
	return NULL;
}

/* ---- life cycle ------------------------------------------------------- */

/* Create an announcer; see witch/discovery.h. */
int
witch_announcer_new(witch_announcer_t **ret,
    const witch_announcer_config_t *cfg)
{
	struct witch_announcer *a;
	struct timespec ts;
	int rc;

	if (ret == NULL || cfg == NULL || cfg->msg.name[0] == '\0' ||
	    cfg->msg.server_id[0] == '\0' || cfg->msg.port == 0)
		return WITCH_EINVAL;
	if ((a = witch__calloc(1, sizeof(*a))) == NULL)
		return WITCH_ENOMEM;
	a->cfg = *cfg;
	/*
	 * Start seq at the wall clock in ms so that a restarted server with
	 * the same id is not taken for a replay of its former self.
	 */
	clock_gettime(CLOCK_REALTIME, &ts);
	a->seq = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	atomic_init(&a->sent, 0);
	atomic_init(&a->stopping, false);
	if ((rc = witch__wakeup_init(&a->wk)) != 0)
		goto fail;
	if (pthread_mutex_init(&a->mu, NULL) != 0) {
		rc = WITCH_ESYSTEM;
		witch__wakeup_destroy(&a->wk);
		goto fail;
	}
	*ret = a;
	return 0;
fail:
	witch__free(a);
	return rc;
}

/* Start the announcer thread. */
int
witch_announcer_start(witch_announcer_t *a)
{
	int rc = 0;

	if (a == NULL)
		return WITCH_EINVAL;
	pthread_mutex_lock(&a->mu);
	if (a->started)
		rc = WITCH_ESTATE;
	else {
		atomic_store(&a->stopping, false);
		if (pthread_create(&a->thread, NULL, announcer_main, a) != 0)
			rc = WITCH_ESYSTEM;
		else
			a->started = 1;
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

/* Send "leaving" and join the thread. */
void
witch_announcer_stop(witch_announcer_t *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	if (a->started) {
		atomic_store(&a->stopping, true);
		witch__wakeup_signal(&a->wk);
		pthread_join(a->thread, NULL);
		a->started = 0;
	}
	pthread_mutex_unlock(&a->mu);
}

/* Stop and free. */
void
witch_announcer_free(witch_announcer_t *a)
{
	if (a == NULL)
		return;
	witch_announcer_stop(a);
	witch__wakeup_destroy(&a->wk);
	pthread_mutex_destroy(&a->mu);
	witch__key_clear(&a->cfg.key);
	witch__free(a);
}

/* Datagrams sent so far. */
uint64_t
witch_announcer_sent(const witch_announcer_t *a)
{
	if (a == NULL)
		return 0;
	return atomic_load(&((witch_announcer_t *)a)->sent);
}
