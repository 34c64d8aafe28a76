/*
 * peer/peer.c: the peer table, the peer thread and the life cycle.
 * Sending, snapshots and queries are in send.c, links in link.c, the
 * peer endpoints in wire.c; the
 * design (one link per pair, statuses, bounds) is doc/internals/peer.md.
 *
 * Status is decided in one place: the peer thread (manager()) looks at
 * every row each quarter heartbeat interval and derives its status from
 * the time it was last heard on its link (last_ns, written by whoever
 * heard it: a heartbeat reply on a link thread, a peer_ping on the
 * reactor).  Only the peer thread changes status, so status callbacks
 * and peer_status events come from one thread, in order.  The change is
 * noted under p->mtx and told after the unlock (no callback ever runs
 * with the mutex held, so a callback may call any function here).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "peer/peer_int.h"

static const char *status_names[] = {
	[WITCH_PEER_CONNECTING] = "connecting",
	[WITCH_PEER_ALIVE] = "alive",
	[WITCH_PEER_SUSPECT] = "suspect",
	[WITCH_PEER_DEAD] = "dead",
	[WITCH_PEER_INCOMPATIBLE] = "incompatible",
};

const char *
witch_peer_status_name(enum witch_peer_status s)
{
	if ((unsigned)s < sizeof(status_names) / sizeof(status_names[0]) &&
	    status_names[s] != NULL)
		return status_names[s];
	return "unknown";
}

void
witch__peer_opts_defaults(struct witch__peer_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->hb_ms = WITCH_PEER_DEFAULT_HEARTBEAT_MS;
	o->suspect = WITCH_PEER_DEFAULT_SUSPECT;
	o->dead = WITCH_PEER_DEFAULT_DEAD;
	o->queue = WITCH_PEER_DEFAULT_QUEUE;
}

int
witch__peer_parse_hostport(const char *s, char *host, size_t hostlen,
    unsigned *port)
{
	const char *colon, *h = s, *he;
	char *end;
	unsigned long v;

	if (s == NULL || *s == '\0')
		return WITCH_EINVAL;
	if (*s == '[') {
		if ((he = strchr(s, ']')) == NULL || he[1] != ':')
			return WITCH_EINVAL;
		h = s + 1;
		colon = he + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL ||
		    memchr(s, ':', (size_t)(colon - s)) != NULL)
			return WITCH_EINVAL;
		he = colon;
	}
	if (he == h || (size_t)(he - h) >= hostlen ||
	    (size_t)(he - h) > WITCH__PEER_HOST_MAX)
		return WITCH_EINVAL;
	errno = 0;
	v = strtoul(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno != 0 ||
	    v < 1 || v > 65535)
		return WITCH_EINVAL;
	memcpy(host, h, (size_t)(he - h));
	host[he - h] = '\0';
	*port = (unsigned)v;
	return 0;
}

uint64_t
witch__peer_random(uint64_t n)
{
	return ((uint64_t)arc4random() << 32 | arc4random()) % n;
}

uint64_t
witch__peer_iv_ns(const struct witch__peers *p)
{
	return (uint64_t)p->o.hb_ms * 1000000u;
}

/* ---- the table ([M]) -------------------------------------------------- */

struct witch__peer_link *
witch__peer_find(struct witch__peers *p, const char *id)
{
	size_t i;

	for (i = 0; i < WITCH_PEER_MAX; i++)
		if (p->tab[i].used && !p->tab[i].removed &&
		    strcmp(p->tab[i].id, id) == 0)
			return &p->tab[i];
	return NULL;
}

struct witch__peer_link *
witch__peer_by_client(struct witch__peers *p, uint64_t client_id)
{
	size_t i;

	for (i = 0; i < WITCH_PEER_MAX; i++)
		if (p->tab[i].used && !p->tab[i].removed && !p->tab[i].dial &&
		    p->tab[i].linked && p->tab[i].client_id == client_id)
			return &p->tab[i];
	return NULL;
}

void
witch__peer_drop_queue(struct witch__peer_link *l)
{
	struct witch__peer_msg *m, *next;

	for (m = l->qh; m != NULL; m = next) {
		next = m->next;
		json_decref(m->body);
		witch__free(m);
		l->dropped++;
	}
	l->qh = l->qt = NULL;
	l->qn = 0;
}

static bool
valid_id(const char *id)
{
	size_t i;

	if (id == NULL || strlen(id) != WITCH__PEER_ID_MAX)
		return false;
	for (i = 0; i < WITCH__PEER_ID_MAX; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		    (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

struct witch__peer_link *
witch__peer_candidate(struct witch__peers *p, const char *id,
    const char *name, const char *addr, unsigned port, const char *project,
    const char *hash)
{
	struct witch__peer_link *l, *old;
	size_t i;
	int rc;

	if (!p->running || p->stopping || !valid_id(id) ||
	    strcmp(id, p->self.server_id) == 0 || project == NULL ||
	    strcmp(project, p->self.project_id) != 0 || addr == NULL ||
	    *addr == '\0' || port == 0 || port > 65535)
		return NULL;
	if ((l = witch__peer_find(p, id)) != NULL) {
		if (name != NULL && *name != '\0')
			strlcpy(l->name, name, sizeof(l->name));
		if (hash != NULL && *hash != '\0' && l->hash[0] == '\0')
			strlcpy(l->hash, hash, sizeof(l->hash));
		if (!l->linked) {
			strlcpy(l->addr, addr, sizeof(l->addr));
			l->port = port;
		}
		if (l->hash[0] != '\0' &&
		    strcmp(l->hash, p->self.source_hash) != 0)
			l->status = WITCH_PEER_INCOMPATIBLE;
		return l;
	}
	/*
	 * The same server restarted has a new id: a row with its name,
	 * address and port that is dead (or never linked) leaves.
	 */
	for (i = 0; i < WITCH_PEER_MAX; i++) {
		old = &p->tab[i];
		if (old->used && !old->removed && name != NULL &&
		    strcmp(old->name, name) == 0 && old->port == port &&
		    strcmp(old->addr, addr) == 0 &&
		    (old->status == WITCH_PEER_DEAD || !old->linked)) {
			witch__plog(p, WITCH_LOG_NOTICE, "peer %s (%.8s) "
			    "replaced by %.8s at the same address", old->name,
			    old->id, id);
			witch__peer_drop_queue(old);
			old->removed = true;
		}
	}
	for (i = 0; i < WITCH_PEER_MAX; i++)
		if (!p->tab[i].used)
			break;
	if (i == WITCH_PEER_MAX) {
		witch__plog(p, WITCH_LOG_WARNING, "peer table full (%d): "
		    "%.8s ignored", WITCH_PEER_MAX, id);
		return NULL;
	}
	l = &p->tab[i];
	memset(l, 0, sizeof(*l));
	l->used = true;
	l->p = p;
	strlcpy(l->id, id, sizeof(l->id));
	strlcpy(l->name, name != NULL && *name != '\0' ? name : "?",
	    sizeof(l->name));
	strlcpy(l->addr, addr, sizeof(l->addr));
	l->port = port;
	if (hash != NULL)
		strlcpy(l->hash, hash, sizeof(l->hash));
	l->status = WITCH_PEER_CONNECTING;
	l->told = l->status;
	l->rtt_us = -1;
	l->dial = strcmp(p->self.server_id, id) < 0;
	if (l->hash[0] != '\0' && strcmp(l->hash, p->self.source_hash) != 0) {
		l->status = WITCH_PEER_INCOMPATIBLE;
		witch__plog(p, WITCH_LOG_WARNING, "peer %s (%.8s) at %s:%u "
		    "is incompatible: source hash %.32s, ours %s", l->name,
		    id, addr, port, l->hash, p->self.source_hash);
		l->told = l->status;	/* logged here, at its first sight */
	} else
		witch__plog(p, WITCH_LOG_INFO, "peer %s (%.8s) at %s:%u "
		    "found; %s", l->name, id, addr, port,
		    l->dial ? "dialing it" : "it dials us");
	if (l->dial) {
		if ((rc = pthread_create(&l->thr, NULL,
		    witch__peer_link_main, l)) != 0) {
			witch__plog(p, WITCH_LOG_ERR, "peer %.8s: link thread: "
			    "%s", id, strerror(rc));
			l->used = false;
			return NULL;
		}
		l->thr_on = true;
	}
	pthread_cond_broadcast(&p->cv);
	return l;
}

bool
witch__peer_inbox(struct witch__peers *p, struct witch__peer_link *l,
    json_t *message)
{
	struct witch__peer_msg *m;

	if (p->inn >= WITCH__PEER_INBOX_MAX ||
	    (m = witch__calloc(1, sizeof(*m))) == NULL) {
		p->in_dropped++;
		return false;
	}
	if ((m->body = json_deep_copy(message != NULL ? message :
	    json_null())) == NULL) {
		witch__free(m);
		p->in_dropped++;
		return false;
	}
	strlcpy(m->from_id, l->id, sizeof(m->from_id));
	strlcpy(m->from_name, l->name, sizeof(m->from_name));
	if (p->intl != NULL)
		p->intl->next = m;
	else
		p->inh = m;
	p->intl = m;
	p->inn++;
	l->received++;
	l->last_ns = witch__now_ns();
	pthread_cond_broadcast(&p->cv);
	return true;
}

/* ---- the peer thread -------------------------------------------------- */

static void
fill_info(const struct witch__peer_note *n, witch_peer_info_t *pi)
{
	memset(pi, 0, sizeof(*pi));
	pi->server_id = n->id;
	pi->name = n->name;
	pi->addr = n->addr;
	pi->port = n->port;
	pi->status = n->now;
	pi->last_seen_ms = n->last_seen_ms;
	pi->rtt_us = n->rtt_us;
	pi->sent = n->sent;
	pi->received = n->received;
	pi->dropped = n->dropped;
}

/* [M] Note l's state for the peer thread (status change or drops). */
static void
note(struct witch__peers *p, struct witch__peer_link *l,
    enum witch_peer_status old, uint64_t now)
{
	struct witch__peer_note *n;

	if ((n = witch__calloc(1, sizeof(*n))) == NULL)
		return;
	n->old = old;
	n->now = l->status;
	strlcpy(n->id, l->id, sizeof(n->id));
	strlcpy(n->name, l->name, sizeof(n->name));
	strlcpy(n->addr, l->addr, sizeof(n->addr));
	n->port = l->port;
	n->last_seen_ms = l->last_ns ? (int64_t)((now - l->last_ns) /
	    1000000u) : -1;
	n->rtt_us = l->rtt_us;
	n->sent = l->sent;
	n->received = l->received;
	n->dropped = l->dropped;
	l->dropped_told = l->dropped;
	if (p->nt != NULL)
		p->nt->next = n;
	else
		p->nh = n;
	p->nt = n;
}

/*
 * [M] Status of l from its silence; notes changes and drops.  Only this
 * function tells a change (log, status callback, peer_status event), and
 * it tells every change since the last it told: also those made under
 * the mutex by another thread (a row found incompatible by the
 * discovery listener, a seed or a link: l->status set there, l->told
 * not), so subscribers see each transition once, from this thread.
 */
static void
judge(struct witch__peers *p, struct witch__peer_link *l, uint64_t now)
{
	enum witch_peer_status old = l->status, s = old, told = l->told;
	uint64_t iv = witch__peer_iv_ns(p), age;

	if (old != WITCH_PEER_INCOMPATIBLE) {
		if (l->last_ns == 0)
			s = WITCH_PEER_CONNECTING;
		else {
			/*
			 * Only a linked peer heard recently is alive; a
			 * dead one stays dead until then (a link that comes
			 * up and drops at once does not flap the status).
			 */
			age = now > l->last_ns ? now - l->last_ns : 0;
			if (age > iv * p->o.dead)
				s = WITCH_PEER_DEAD;
			else if (l->linked && age <= iv * p->o.suspect)
				s = WITCH_PEER_ALIVE;
			else if (old == WITCH_PEER_DEAD ||
			    old == WITCH_PEER_CONNECTING)
				s = old;
			else
				s = WITCH_PEER_SUSPECT;
		}
	}
	if (s != old) {
		l->status = s;
		if (s == WITCH_PEER_DEAD) {
			l->dead_ns = now;
			/* Nobody will take them: drop, count, tell. */
			witch__peer_drop_queue(l);
			if (!l->dial)
				l->linked = false;
		}
	}
	if (l->status != told) {
		/* An incompatible peer gets no messages: drop, count, tell. */
		if (l->status == WITCH_PEER_INCOMPATIBLE)
			witch__peer_drop_queue(l);
		witch__plog(p, l->status == WITCH_PEER_ALIVE ?
		    WITCH_LOG_NOTICE : WITCH_LOG_WARNING,
		    "peer %s (%.8s) at %s:%u: %s -> %s", l->name, l->id,
		    l->addr, l->port, witch_peer_status_name(told),
		    witch_peer_status_name(l->status));
		l->told = l->status;
		note(p, l, told, now);
		pthread_cond_broadcast(&p->cv);
	} else if (l->dropped != l->dropped_told)
		note(p, l, old, now);
}

/* Send an event to every subscriber (outside the lock). */
static void
tell_subscribers(struct witch__peers *p, const uint64_t *subs,
    const char *event, json_t *data)
{
	size_t i;

	for (i = 0; i < WITCH__PEER_SUBS_MAX && data != NULL; i++)
		if (subs[i] != 0)
			(void)witch_server_send_event(p->srv, subs[i], event,
			    data);
}

/* Output of the links peers dialed in on: one message, outside the lock. */
struct outgoing {
	uint64_t		 client_id;
	struct witch__peer_msg	*m;
};

/* Set on the peer thread: its callbacks may not stop the server. */
static _Thread_local bool on_peer_thread;

bool
witch__peers_on_own_thread(void)
{
	return on_peer_thread;
}

/* Peer thread, no lock: hand the inbox messages in to the handler, then
 * to the subscribers, in order, and free them. */
static void
deliver(struct witch__peers *p, struct witch__peer_msg *in,
    const uint64_t *subs)
{
	struct witch__peer_msg *m, *mn;
	json_t *d;

	for (m = in; m != NULL; m = mn) {
		mn = m->next;
		if (p->o.msg_fn != NULL)
			p->o.msg_fn(p->srv, m->from_id, m->from_name,
			    m->body, p->o.msg_ud);
		d = json_pack("{s:s, s:s, s:O}", "from", m->from_id,
		    "name", m->from_name, "message", m->body);
		tell_subscribers(p, subs, "peer_message", d);
		json_decref(d);
		json_decref(m->body);
		witch__free(m);
	}
}

static void *
manager(void *arg)
{
	struct witch__peers *p = arg;
	struct witch__peer_note *notes, *n, *nn;
	struct witch__peer_msg *in, *m;
	uint64_t subs[WITCH__PEER_SUBS_MAX], now, next_judge = 0;
	struct outgoing *out = NULL;
	size_t nout, cap = 0, i;
	witch_peer_info_t pi;
	struct timespec ts;
	json_t *d;
	int rc;

	on_peer_thread = true;
	pthread_mutex_lock(&p->mtx);
	while (!p->stopping) {
		now = witch__now_ns();
		if (now >= next_judge) {
			for (i = 0; i < WITCH_PEER_MAX; i++) {
				struct witch__peer_link *l = &p->tab[i];

				if (!l->used)
					continue;
				if (l->removed && (!l->thr_on || l->thr_done)) {
					if (l->thr_on) {
						pthread_mutex_unlock(&p->mtx);
						pthread_join(l->thr, NULL);
						pthread_mutex_lock(&p->mtx);
					}
					witch__peer_drop_queue(l);
					l->used = false;
					continue;
				}
				if (!l->removed)
					judge(p, l, now);
			}
			next_judge = now + witch__peer_iv_ns(p) / 4;
		}
		/* Take the output of accept links, the inbox, the notes. */
		nout = 0;
		for (i = 0; i < WITCH_PEER_MAX; i++) {
			struct witch__peer_link *l = &p->tab[i];

			while (l->used && !l->dial && l->linked &&
			    l->qh != NULL) {
				if (nout == cap) {
					struct outgoing *o = witch__realloc(out,
					    (cap * 2 + 16) * sizeof(*out));

					if (o == NULL)
						break;
					out = o;
					cap = cap * 2 + 16;
				}
				m = l->qh;
				if ((l->qh = m->next) == NULL)
					l->qt = NULL;
				l->qn--;
				l->sent++;
				m->next = NULL;
				out[nout].client_id = l->client_id;
				out[nout++].m = m;
			}
		}
		in = p->inh;
		p->inh = p->intl = NULL;
		p->inn = 0;
		notes = p->nh;
		p->nh = p->nt = NULL;
		memcpy(subs, p->subs, sizeof(subs));
		pthread_mutex_unlock(&p->mtx);

		for (i = 0; i < nout; i++) {
			m = out[i].m;
			d = json_pack("{s:s, s:s, s:I, s:o}", "from",
			    p->self.server_id, "name", p->self.name, "seq",
			    (json_int_t)m->seq, "message", m->body);
			m->body = NULL;
			rc = d != NULL ? witch_server_send_event(p->srv,
			    out[i].client_id, "peer_msg", d) : WITCH_ENOMEM;
			json_decref(d);
			if (rc != 0) {
				pthread_mutex_lock(&p->mtx);
				for (size_t k = 0; k < WITCH_PEER_MAX; k++)
					if (p->tab[k].used &&
					    p->tab[k].client_id ==
					    out[i].client_id && !p->tab[k].dial)
						p->tab[k].dropped++;
				pthread_mutex_unlock(&p->mtx);
			}
			witch__free(m);
		}
		for (n = notes; n != NULL; n = nn) {
			nn = n->next;
			fill_info(n, &pi);
			if (p->o.st_fn != NULL)
				p->o.st_fn(p->srv, &pi, n->old, p->o.st_ud);
			d = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:I}",
			    "server_id", n->id, "name", n->name, "address",
			    n->addr, "port", (json_int_t)n->port, "status",
			    witch_peer_status_name(n->now), "old",
			    witch_peer_status_name(n->old), "dropped",
			    (json_int_t)n->dropped);
			tell_subscribers(p, subs, "peer_status", d);
			json_decref(d);
			witch__free(n);
		}
		deliver(p, in, subs);

		pthread_mutex_lock(&p->mtx);
		if (p->stopping || p->inh != NULL || p->nh != NULL)
			continue;
		now = witch__now_ns();
		if (next_judge > now) {
			clock_gettime(CLOCK_REALTIME, &ts);
			now = next_judge - now;
			ts.tv_sec += (time_t)(now / 1000000000u);
			ts.tv_nsec += (long)(now % 1000000000u);
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&p->cv, &p->mtx, &ts);
		}
	}
	/*
	 * Stopping: what the inbox holds was received (and counted) before
	 * the stop; deliver it rather than drop it.  Messages that links
	 * put there from now until they are joined are dropped by
	 * witch__peers_stop and counted in in_dropped.
	 */
	in = p->inh;
	p->inh = p->intl = NULL;
	p->inn = 0;
	memcpy(subs, p->subs, sizeof(subs));
	pthread_mutex_unlock(&p->mtx);
	deliver(p, in, subs);
	witch__free(out);
	return NULL;
}

/* ---- life cycle ------------------------------------------------------- */

int
witch__peers_new(struct witch__peers **ret, witch_server_t *srv,
    const struct witch__peer_opts *o)
{
	struct witch__peers *p;
	int rc;

	if ((p = witch__calloc(1, sizeof(*p))) == NULL)
		return WITCH_ENOMEM;
	p->srv = srv;
	p->o = *o;
	pthread_mutex_init(&p->mtx, NULL);
	pthread_cond_init(&p->cv, NULL);
	if ((rc = witch__peer_endpoints(p, srv)) != 0) {
		witch__peers_free(p);
		return rc;
	}
	*ret = p;
	return 0;
}

bool
witch__peers_enabled(const struct witch__peers *p)
{
	return p != NULL && p->o.on;
}

/* Discovery: a server announced itself (listener thread). */
static void
on_discovery(witch_listener_t *lis, enum witch_discovery_event ev,
    const witch_discovered_t *d, void *ud)
{
	struct witch__peers *p = ud;

	if (ev != WITCH_DISCOVERY_FOUND && ev != WITCH_DISCOVERY_CHANGED)
		return;
	pthread_mutex_lock(&p->mtx);
	(void)witch__peer_candidate(p, d->server_id, d->name, d->addr,
	    d->port, d->project_id, d->source_hash);
	pthread_mutex_unlock(&p->mtx);
}

static int
start_listener(struct witch__peers *p)
{
	witch_listener_config_t *lc = NULL;
	witch_error_t err;
	int rc;

	if ((rc = witch_listener_config_new(&lc)) != 0)
		return rc;
	witch_listener_config_set_port(lc, p->self.disc_port);
	witch_listener_config_set_callback(lc, on_discovery, p);
	if (witch__key_on(&p->self.key))	/* signed announcements only */
		witch_listener_config_set_key(lc, p->self.key.b,
		    p->self.key.len);
	witch_listener_config_set_logger(lc, p->self.log_fn, p->self.log_ud);
	rc = witch_listener_new(&p->lis, lc);
	witch_listener_config_free(lc);
	if (rc == 0 && (rc = witch_listener_start(p->lis, &err)) != 0) {
		witch__plog(p, WITCH_LOG_WARNING, "peers: discovery listener: "
		    "%s (seeds only)", err.text);
		witch_listener_free(p->lis);
		p->lis = NULL;
	}
	return rc;
}

int
witch__peers_start(struct witch__peers *p,
    const struct witch__peer_self *self)
{
	size_t i;
	int rc;

	if (!p->o.on)
		return 0;
	p->self = *self;
	for (i = 0; i < p->o.nseeds; i++) {
		if (witch__peer_parse_hostport(p->o.seeds[i],
		    p->seeds[p->nseeds].host, sizeof(p->seeds[0].host),
		    &p->seeds[p->nseeds].port) == 0)
			p->nseeds++;
	}
	pthread_mutex_lock(&p->mtx);
	p->running = true;
	p->stopping = false;
	pthread_mutex_unlock(&p->mtx);
	if ((rc = pthread_create(&p->mgr, NULL, manager, p)) != 0)
		goto fail;
	p->mgr_on = true;
	if ((rc = pthread_create(&p->seeder, NULL, witch__peer_seed_main,
	    p)) != 0)
		goto fail;
	p->seeder_on = true;
	if (self->discovery)
		(void)start_listener(p);
	witch__plog(p, WITCH_LOG_NOTICE, "peers: on (project \"%s\", "
	    "heartbeat %u ms, suspect after %u, dead after %u silent "
	    "intervals, %zu seed%s%s)", self->project_id, p->o.hb_ms,
	    p->o.suspect, p->o.dead, p->nseeds, p->nseeds == 1 ? "" : "s",
	    p->lis != NULL ? ", discovery" : "");
	return 0;
fail:
	witch__plog(p, WITCH_LOG_ERR, "peers: thread: %s", strerror(rc));
	witch__peers_stop(p);
	return WITCH_ESYSTEM;
}

void
witch__peers_stop(struct witch__peers *p)
{
	struct witch__peer_msg *m, *mn;
	struct witch__peer_note *n, *nn;
	size_t i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mtx);
	if (!p->running) {
		pthread_mutex_unlock(&p->mtx);
		return;
	}
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mtx);
	if (p->lis != NULL) {
		witch_listener_stop(p->lis);
		witch_listener_free(p->lis);
		p->lis = NULL;
	}
	if (p->seeder_on)
		pthread_join(p->seeder, NULL);
	if (p->mgr_on)
		pthread_join(p->mgr, NULL);
	p->seeder_on = p->mgr_on = false;
	/* Only link threads are left; they see stopping and end. */
	for (i = 0; i < WITCH_PEER_MAX; i++)
		if (p->tab[i].used && p->tab[i].thr_on)
			pthread_join(p->tab[i].thr, NULL);
	pthread_mutex_lock(&p->mtx);
	for (i = 0; i < WITCH_PEER_MAX; i++) {
		witch__peer_drop_queue(&p->tab[i]);
		memset(&p->tab[i], 0, sizeof(p->tab[i]));
	}
	for (m = p->inh; m != NULL; m = mn) {	/* came after the last look */
		mn = m->next;
		json_decref(m->body);
		witch__free(m);
		p->in_dropped++;
	}
	for (n = p->nh; n != NULL; n = nn) {
		nn = n->next;
		witch__free(n);
	}
	p->inh = p->intl = NULL;
	p->nh = p->nt = NULL;
	p->inn = 0;
	p->running = false;
	pthread_mutex_unlock(&p->mtx);
}

void
witch__peers_free(struct witch__peers *p)
{
	if (p == NULL)
		return;
	witch__peers_stop(p);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mtx);
	witch__key_clear(&p->self.key);
	witch__free(p);
}
