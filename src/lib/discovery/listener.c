/*
 * discovery/listener.c: the discovery listener (see witch/discovery.h).
 *
 * One thread owns the UDP sockets (IPv4 0.0.0.0:port, IPv6 [::]:port
 * joined to ff02::114 on every interface; or, with a bind address, one
 * socket bound to it) in an edge-triggered poller with a wakeup.  Reading
 * is itself rate limited (a token bucket of recvfrom calls): past it, the
 * socket is left alone and the kernel drops the excess, so a flood costs
 * a bounded amount of CPU.  Each datagram read then passes a per-source
 * and an overall bucket before it is parsed.  Nothing is ever sent.
 *
 * Verification runs on VERIFIERS helper threads with the client library
 * (hello + ping, bounded by the verify timeout); jobs and results cross
 * under the listener's lock, and the wakeup brings results back to the
 * listener thread, which updates the registry and calls the callback.
 */
#include "discovery/listener_int.h"

/* ---- events ----------------------------------------------------------- */

static void
emit(struct witch_listener *l, const struct witch__disc_event *ev,
    uint64_t now)
{
	const char *protos[WITCH__DISC_MAX_PROTOS];
	witch_discovered_t d;
	size_t i;

	if (l->cfg.cb == NULL)
		return;
	for (i = 0; i < ev->e.msg.nprotocols; i++)
		protos[i] = ev->e.msg.protocols[i];
	memset(&d, 0, sizeof(d));
	d.name = ev->e.msg.name;
	d.server_id = ev->e.msg.server_id;
	d.addr = ev->e.addr;
	d.port = ev->e.msg.port;
	d.protocols = protos;
	d.nprotocols = ev->e.msg.nprotocols;
	d.project_id = ev->e.msg.project_id;
	d.source_hash = ev->e.msg.source_hash;
	d.verify = ev->e.verify;
	d.leaving = ev->e.msg.leaving != 0;
	d.seq = ev->e.msg.seq;
	d.age_ms = now > ev->e.last_seen ? now - ev->e.last_seen : 0;
	l->cfg.cb(l, ev->ev, &d, l->cfg.cb_ud);
}

/*
 * Queue a verification of e (under mu), unless one is queued or running
 * (given up on after twice the timeout and a second, in case its result
 * was lost); a full queue or the start rate waits for a later refresh.
 */
static void
queue_verify(struct witch_listener *l, struct witch__disc_entry *e,
    uint64_t now)
{
	if (e->verify_queued != 0 &&
	    now - e->verify_queued < 2 * (uint64_t)l->cfg.verify_timeout_ms +
	    1000)
		return;
	if (l->njobs == VJOBS_MAX || !witch__disc_bucket_take(&l->vstart, now))
		return;
	e->verify_queued = now;
	l->jobs[l->njobs].msg = e->msg;
	strlcpy(l->jobs[l->njobs].addr, e->addr, sizeof(l->jobs[0].addr));
	l->njobs++;
	pthread_cond_signal(&l->vcv);
}

/* ---- verification (helper threads) ------------------------------------ */

static enum witch_discovery_verify
verify_one(struct witch_listener *l, const struct vjob *j)
{
	const char *protos[WITCH__DISC_MAX_PROTOS];
	witch_client_config_t *cc = NULL;
	witch_client_t *c = NULL;
	witch_error_t err;
	json_t *res = NULL, *info = NULL, *v;
	enum witch_discovery_verify rc = WITCH_VERIFY_FAILED;
	unsigned t = l->cfg.verify_timeout_ms;
	size_t i;

	for (i = 0; i < j->msg.nprotocols; i++)
		protos[i] = j->msg.protocols[i];
	if (witch_client_config_new(&cc) != 0 ||
	    witch_client_config_set_host(cc, j->addr) != 0 ||
	    witch_client_config_set_port(cc, j->msg.port) != 0 ||
	    witch_client_config_set_connect_timeout(cc, t) != 0 ||
	    witch_client_config_set_request_timeout(cc, t) != 0 ||
	    witch_client_config_set_auto_reconnect(cc, false) != 0 ||
	    witch_client_config_set_name(cc, "witch-discovery") != 0 ||
	    witch_client_config_set_protocols(cc, protos,
	    j->msg.nprotocols) != 0 ||
	    (j->msg.source_hash[0] != '\0' &&
	    witch_client_config_set_expected_source_hash(cc,
	    j->msg.source_hash) != 0) ||
	    (witch__key_on(&l->cfg.key) && witch_client_config_set_key(cc,
	    l->cfg.key.b, l->cfg.key.len) != 0) ||
	    witch_client_new(&c, cc) != 0)
		goto out;
	if (witch_client_connect(c, &err) != 0) {
		llog(l, WITCH_LOG_INFO, "discovery: verify %s:%u: %s", j->addr,
		    j->msg.port, err.text);
		goto out;
	}
	if (witch_client_call(c, "ping", NULL, t, &res, &err) != 0) {
		llog(l, WITCH_LOG_INFO, "discovery: verify %s:%u: ping: %s",
		    j->addr, j->msg.port, err.text);
		goto out;
	}
	info = witch_client_server_info(c);
	v = info != NULL ? json_object_get(info, "server_id") : NULL;
	if (v == NULL || !json_is_string(v) ||
	    strcmp(json_string_value(v), j->msg.server_id) != 0) {
		llog(l, WITCH_LOG_NOTICE, "discovery: verify %s:%u: another "
		    "server answers (server_id differs)", j->addr,
		    j->msg.port);
		goto out;
	}
	rc = WITCH_VERIFY_OK;
out:
	json_decref(info);
	json_decref(res);
	witch_client_free(c);
	witch_client_config_free(cc);
	return rc;
}

static void *
verifier_main(void *arg)
{
	struct witch_listener *l = arg;
	struct vjob j;

	pthread_mutex_lock(&l->mu);
	for (;;) {
		while (l->njobs == 0 && !atomic_load(&l->stopping))
			pthread_cond_wait(&l->vcv, &l->mu);
		if (atomic_load(&l->stopping))
			break;
		j = l->jobs[0];
		memmove(&l->jobs[0], &l->jobs[1],
		    (l->njobs - 1) * sizeof(l->jobs[0]));
		l->njobs--;
		pthread_mutex_unlock(&l->mu);
		j.result = verify_one(l, &j);
		pthread_mutex_lock(&l->mu);
		if (l->nresults < VJOBS_MAX)
			l->results[l->nresults++] = j;
		witch__wakeup_signal(&l->wk);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* Apply verification results (listener thread). */
static void
take_results(struct witch_listener *l, uint64_t now)
{
	struct witch__disc_event evs[VJOBS_MAX];
	struct witch__disc_entry *e;
	size_t i, k = 0;

	pthread_mutex_lock(&l->mu);
	for (i = 0; i < l->nresults; i++) {
		e = witch__disc_reg_find(&l->reg, l->results[i].msg.server_id,
		    l->results[i].addr);
		if (e != NULL)
			e->verify_queued = 0;
		/* Gone, or changed since: a newer job decides. */
		if (e == NULL || e->verify != WITCH_VERIFY_PENDING ||
		    strcmp(e->msg.source_hash,
		    l->results[i].msg.source_hash) != 0 ||
		    e->msg.port != l->results[i].msg.port)
			continue;
		e->verify = l->results[i].result;
		if (e->verify == WITCH_VERIFY_FAILED)
			e->verify_after = now + 5 * (uint64_t)l->cfg.expiry_ms;
		evs[k].ev = WITCH_DISCOVERY_VERIFIED;
		evs[k].e = *e;
		k++;
	}
	l->nresults = 0;
	pthread_mutex_unlock(&l->mu);
	for (i = 0; i < k; i++)
		emit(l, &evs[i], now);
}

/* ---- datagrams -------------------------------------------------------- */

static void
handle(struct witch_listener *l, const char *buf, size_t n,
    const struct sockaddr *src, uint64_t now)
{
	struct witch__disc_event ev;
	struct witch__disc_entry *e;
	struct witch__disc_msg m;
	char err[128], addr[WITCH__DISC_ADDR_MAX];
	int k;

	if (!witch__disc_limiter_take(&l->lim, src, now)) {
		atomic_fetch_add(&l->n_rate, 1);
		return;
	}
	witch__addr_str(src, addr, sizeof(addr));
	switch (witch__disc_check(&l->cfg.key, buf, n, witch__disc_wall_ms(),
	    &m, err, sizeof(err))) {
	case WITCH__DISC_OK:
		break;
	case WITCH__DISC_UNSIGNED:
		atomic_fetch_add(&l->n_unsigned, 1);
		goto dropped;
	case WITCH__DISC_BADSIG:
		atomic_fetch_add(&l->n_badsig, 1);
		goto dropped;
	case WITCH__DISC_STALE:
		atomic_fetch_add(&l->n_stale, 1);
		goto dropped;
	default:
		atomic_fetch_add(&l->n_bad, 1);
	dropped:
		if (now - l->last_badlog >= 1000 || l->last_badlog == 0) {
			l->last_badlog = now;
			llog(l, WITCH_LOG_DEBUG, "discovery: bad datagram "
			    "from %s: %s", addr, err);
		}
		return;
	}
	if (m.advertise[0] != '\0')
		strlcpy(addr, m.advertise, sizeof(addr));
	pthread_mutex_lock(&l->mu);
	/* Signed: a sequence number not above the last one is a replay. */
	if (witch__key_on(&l->cfg.key) && (e = witch__disc_reg_find(&l->reg,
	    m.server_id, addr)) != NULL && m.seq <= e->msg.seq) {
		pthread_mutex_unlock(&l->mu);
		atomic_fetch_add(&l->n_replay, 1);
		if (now - l->last_badlog >= 1000 || l->last_badlog == 0) {
			l->last_badlog = now;
			llog(l, WITCH_LOG_DEBUG, "discovery: replayed "
			    "announcement from %s dropped", addr);
		}
		return;
	}
	atomic_fetch_add(&l->n_ok, 1);
	k = witch__disc_reg_update(&l->reg, &m, addr, now, &ev);
	e = witch__disc_reg_find(&l->reg, m.server_id, addr);
	if (e != NULL && l->cfg.verify && !m.leaving) {
		if (e->verify == WITCH_VERIFY_FAILED && now >= e->verify_after)
			e->verify = WITCH_VERIFY_PENDING;
		if (e->verify == WITCH_VERIFY_PENDING)
			queue_verify(l, e, now);
	}
	pthread_mutex_unlock(&l->mu);
	if (k != 0)
		emit(l, &ev, now);
}

/* Read one socket while it has data and the read bucket allows. */
static void
drain(struct witch_listener *l, struct sockslot *s)
{
	char buf[WITCH_DISCOVERY_MAX_DATAGRAM + 1];
	struct sockaddr_storage src;
	socklen_t slen;
	ssize_t n;
	uint64_t now;

	while (s->fd != -1 && s->pending && !atomic_load(&l->stopping)) {
		now = witch__disc_now();
		if (!witch__disc_bucket_take(&l->reads, now))
			return;		/* come back later; kernel drops */
		slen = sizeof(src);
		n = recvfrom(s->fd, buf, sizeof(buf), 0,
		    (struct sockaddr *)&src, &slen);
		if (n == -1) {
			if (errno != EINTR)
				s->pending = 0;	/* EAGAIN or an error */
			continue;
		}
		atomic_fetch_add(&l->n_recv, 1);
		handle(l, buf, (size_t)n, (struct sockaddr *)&src, now);
	}
}

/* Join the IPv6 group on every multicast interface (new ones too). */
static void
join_groups(struct witch_listener *l)
{
	struct witch__iface *v = NULL;
	struct ipv6_mreq mr;
	size_t n = 0, i;

	/* A socket bound to an address gets nothing sent to the group. */
	if (l->s6.fd == -1 || l->cfg.bind[0] != '\0' ||
	    witch__ifaces_scan(&v, &n) != 0)
		return;
	memset(&mr, 0, sizeof(mr));
	inet_pton(AF_INET6, WITCH_DISCOVERY_V6_GROUP, &mr.ipv6mr_multiaddr);
	for (i = 0; i < n; i++) {
		if (v[i].family != AF_INET6 || !(v[i].flags & IFF_UP) ||
		    !(v[i].flags & IFF_MULTICAST) || v[i].index == 0)
			continue;
		mr.ipv6mr_interface = v[i].index;
		/* EADDRINUSE: joined already. */
		setsockopt(l->s6.fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr,
		    sizeof(mr));
	}
	witch__free(v);
}

static void
expire(struct witch_listener *l, uint64_t now)
{
	struct witch__disc_event evs[EVBATCH];
	size_t n, i;

	do {
		pthread_mutex_lock(&l->mu);
		n = witch__disc_reg_expire(&l->reg, now, evs, EVBATCH);
		pthread_mutex_unlock(&l->mu);
		for (i = 0; i < n; i++)
			emit(l, &evs[i], now);
	} while (n == EVBATCH);
}

static int
wait_ms(struct witch_listener *l, uint64_t now)
{
	uint64_t t = RESCAN_MS, x;

	pthread_mutex_lock(&l->mu);
	x = witch__disc_reg_next(&l->reg, now);
	pthread_mutex_unlock(&l->mu);
	if (x < t)
		t = x;
	if (l->s4.pending || l->s6.pending)
		t = t < 5 ? t : 5;	/* read bucket refills */
	return (int)t;
}

static void *
listener_main(void *arg)
{
	struct witch_listener *l = arg;
	struct witch__poll_event ev[8];
	uint64_t now;
	int n, i;

	while (!atomic_load(&l->stopping)) {
		now = witch__disc_now();
		if (now - l->last_scan >= RESCAN_MS) {
			l->last_scan = now;
			join_groups(l);
		}
		n = witch__poller_wait(l->poller, ev, 8, wait_ms(l, now));
		for (i = 0; i < n; i++) {
			if (ev[i].udata == &l->wk)
				witch__wakeup_clear(&l->wk);
			else
				((struct sockslot *)ev[i].udata)->pending = 1;
		}
		drain(l, &l->s4);
		drain(l, &l->s6);
		now = witch__disc_now();
		take_results(l, now);
		expire(l, now);
	}
	return NULL;
}

/* ---- life cycle ------------------------------------------------------- */

/* Create a listener; see witch/discovery.h. */
int
witch_listener_new(witch_listener_t **ret, const witch_listener_config_t *cfg)
{
	struct witch_listener *l;
	witch_listener_config_t *def = NULL;
	int rc;

	if (ret == NULL)
		return WITCH_EINVAL;
	if (cfg == NULL) {
		if ((rc = witch_listener_config_new(&def)) != 0)
			return rc;
		cfg = def;
	}
	if ((l = witch__calloc(1, sizeof(*l))) == NULL) {
		witch_listener_config_free(def);
		return WITCH_ENOMEM;
	}
	l->cfg = *cfg;
	witch_listener_config_free(def);
	l->s4.fd = l->s6.fd = -1;
	atomic_init(&l->stopping, false);
	atomic_init(&l->n_recv, 0);
	atomic_init(&l->n_ok, 0);
	atomic_init(&l->n_bad, 0);
	atomic_init(&l->n_rate, 0);
	atomic_init(&l->n_unsigned, 0);
	atomic_init(&l->n_badsig, 0);
	atomic_init(&l->n_replay, 0);
	atomic_init(&l->n_stale, 0);
	witch__disc_reg_init(&l->reg, l->cfg.expiry_ms, l->cfg.verify);
	if (pthread_mutex_init(&l->mu, NULL) != 0)
		goto fail;
	if (pthread_cond_init(&l->vcv, NULL) != 0) {
		pthread_mutex_destroy(&l->mu);
		goto fail;
	}
	*ret = l;
	return 0;
fail:
	witch__free(l);
	return WITCH_ESYSTEM;
}

/* The family of a bind address: AF_UNSPEC for "" (the wildcard). */
static int
bind_family(const char *addr)
{
	struct in_addr a4;

	if (*addr == '\0')
		return AF_UNSPEC;
	return inet_pton(AF_INET, addr, &a4) == 1 ? AF_INET : AF_INET6;
}

/*
 * A non-blocking UDP socket of family bound to addr ("": the wildcard)
 * and port; stores the bound port.  The fd, or -1 with errno set.
 */
static int
open_udp(int family, const char *addr, unsigned port, unsigned *bound)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, on = 1, saved;

	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		if (*addr != '\0')
			inet_pton(AF_INET, addr, &sin->sin_addr);
		len = sizeof(*sin);
	} else {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		if (*addr != '\0')
			inet_pton(AF_INET6, addr, &sin6->sin6_addr);
		len = sizeof(*sin6);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	*bound = ntohs(family == AF_INET ? sin->sin_port : sin6->sin6_port);
	return fd;
}

/*
 * Open the sockets the bind address asks for: with the wildcard, IPv4
 * and (if configured and available) IPv6 at the same port; with an
 * address, one socket of its family.  0, or WITCH_EADDRINUSE or
 * WITCH_ESYSTEM with errno set and nothing left open.
 */
static int
open_sockets(struct witch_listener *l)
{
	int fam = bind_family(l->cfg.bind), saved;
	unsigned p6;

	if (fam != AF_INET6 && (l->s4.fd = open_udp(AF_INET, l->cfg.bind,
	    l->cfg.port, &l->port)) == -1)
		goto fail;
	if (fam == AF_INET6) {
		if ((l->s6.fd = open_udp(AF_INET6, l->cfg.bind, l->cfg.port,
		    &l->port)) == -1)
			goto fail;
	} else if (fam == AF_UNSPEC && l->cfg.ipv6 &&
	    (l->s6.fd = open_udp(AF_INET6, "", l->port, &p6)) == -1)
		llog(l, WITCH_LOG_INFO, "discovery: no IPv6 listener: %s",
		    strerror(errno));
	return 0;
fail:
	saved = errno;
	if (l->s4.fd != -1)
		close(l->s4.fd);
	l->s4.fd = -1;
	errno = saved;
	return saved == EADDRINUSE ? WITCH_EADDRINUSE : WITCH_ESYSTEM;
}

static int
start_fail(struct witch_listener *l, witch_error_t *err, int rc,
    const char *what)
{
	if (err != NULL) {
		err->code = rc;
		snprintf(err->text, sizeof(err->text), "discovery: %s: %s",
		    what, strerror(errno));
	}
	return rc;
}

static void
close_all(struct witch_listener *l)
{
	if (l->s4.fd != -1)
		close(l->s4.fd);
	if (l->s6.fd != -1)
		close(l->s6.fd);
	l->s4.fd = l->s6.fd = -1;
	if (l->wk_ok)
		witch__wakeup_destroy(&l->wk);
	l->wk_ok = 0;
	witch__poller_free(l->poller);
	l->poller = NULL;
}

/* Bind and start; see witch/discovery.h. */
int
witch_listener_start(witch_listener_t *l, witch_error_t *err)
{
	char what[INET6_ADDRSTRLEN + 32];
	int rc, saved;

	if (l == NULL)
		return WITCH_EINVAL;
	if (l->started)
		return start_fail(l, err, WITCH_ESTATE, "already started");
	if ((rc = open_sockets(l)) != 0) {
		saved = errno;
		snprintf(what, sizeof(what), "udp bind %s port %u",
		    l->cfg.bind[0] != '\0' ? l->cfg.bind : "*", l->cfg.port);
		errno = saved;
		return start_fail(l, err, rc, what);
	}
	if ((rc = witch__poller_new(&l->poller)) != 0 ||
	    (rc = witch__wakeup_init(&l->wk)) != 0)
		goto fail;
	l->wk_ok = 1;
	if ((rc = witch__poller_add(l->poller, l->wk.rfd, &l->wk, 1)) != 0 ||
	    (l->s4.fd != -1 &&
	    (rc = witch__poller_add(l->poller, l->s4.fd, &l->s4, 1)) != 0) ||
	    (l->s6.fd != -1 &&
	    (rc = witch__poller_add(l->poller, l->s6.fd, &l->s6, 1)) != 0))
		goto fail;
	l->s4.pending = l->s6.pending = 1;
	witch__disc_limiter_init(&l->lim, witch__disc_now());
	witch__disc_bucket_init(&l->reads, READ_RATE, READ_BURST,
	    witch__disc_now());
	witch__disc_bucket_init(&l->vstart, VERIFY_RATE, VERIFY_BURST,
	    witch__disc_now());
	atomic_store(&l->stopping, false);
	for (l->nvthr = 0; l->cfg.verify && l->nvthr < VERIFIERS; l->nvthr++) {
		/* Without its verifiers, verification would never end. */
		if (pthread_create(&l->vthr[l->nvthr], NULL, verifier_main,
		    l) != 0) {
			rc = WITCH_ESYSTEM;
			goto fail;
		}
	}
	if (pthread_create(&l->thread, NULL, listener_main, l) != 0) {
		rc = WITCH_ESYSTEM;
		goto fail;
	}
	l->started = 1;
	return 0;
fail:
	witch_listener_stop(l);
	close_all(l);
	return start_fail(l, err, rc, "start");
}

/* The bound port. */
unsigned
witch_listener_port(const witch_listener_t *l)
{
	return l != NULL ? l->port : 0;
}

/* Stop the threads (verifiers finish their current job first). */
void
witch_listener_stop(witch_listener_t *l)
{
	size_t i;

	if (l == NULL)
		return;
	pthread_mutex_lock(&l->mu);
	atomic_store(&l->stopping, true);
	pthread_cond_broadcast(&l->vcv);
	pthread_mutex_unlock(&l->mu);
	if (l->wk_ok)
		witch__wakeup_signal(&l->wk);
	if (l->started)
		pthread_join(l->thread, NULL);
	for (i = 0; i < l->nvthr; i++)
		pthread_join(l->vthr[i], NULL);
	l->nvthr = 0;
	if (l->started)
		close_all(l);
	l->started = 0;
}

/* Stop and free. */
void
witch_listener_free(witch_listener_t *l)
{
	if (l == NULL)
		return;
	witch_listener_stop(l);
	close_all(l);
	witch__disc_reg_free(&l->reg);
	pthread_cond_destroy(&l->vcv);
	pthread_mutex_destroy(&l->mu);
	witch__key_clear(&l->cfg.key);
	witch__free(l);
}

/* The registry as JSON. */
int
witch_listener_snapshot(witch_listener_t *l, json_t **array)
{
	json_t *a, *o;
	uint64_t now = witch__disc_now();
	size_t i;

	if (l == NULL || array == NULL)
		return WITCH_EINVAL;
	if ((a = json_array()) == NULL)
		return WITCH_ENOMEM;
	pthread_mutex_lock(&l->mu);
	for (i = 0; i < l->reg.n; i++) {
		o = witch__disc_entry_json(&l->reg.v[i], now);
		if (o == NULL || json_array_append_new(a, o) != 0) {
			pthread_mutex_unlock(&l->mu);
			json_decref(a);
			return WITCH_ENOMEM;
		}
	}
	pthread_mutex_unlock(&l->mu);
	*array = a;
	return 0;
}

/* Counters. */
void
witch_listener_counters(const witch_listener_t *cl, uint64_t *received,
    uint64_t *accepted, uint64_t *malformed, uint64_t *rate_limited)
{
	struct witch_listener *l = (struct witch_listener *)cl;

	if (received != NULL)
		*received = l ? atomic_load(&l->n_recv) : 0;
	if (accepted != NULL)
		*accepted = l ? atomic_load(&l->n_ok) : 0;
	if (malformed != NULL)
		*malformed = l ? atomic_load(&l->n_bad) : 0;
	if (rate_limited != NULL)
		*rate_limited = l ? atomic_load(&l->n_rate) : 0;
}

/* Counters of signed discovery. */
void
witch_listener_auth_counters(const witch_listener_t *cl, uint64_t *unsigned_,
    uint64_t *bad_signature, uint64_t *replayed, uint64_t *stale)
{
	struct witch_listener *l = (struct witch_listener *)cl;

	if (unsigned_ != NULL)
		*unsigned_ = l ? atomic_load(&l->n_unsigned) : 0;
	if (bad_signature != NULL)
		*bad_signature = l ? atomic_load(&l->n_badsig) : 0;
	if (replayed != NULL)
		*replayed = l ? atomic_load(&l->n_replay) : 0;
	if (stale != NULL)
		*stale = l ? atomic_load(&l->n_stale) : 0;
}
