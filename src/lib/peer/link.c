/*
 * peer/link.c: the links this server dials (one thread per peer with a
 * larger server_id) and the seed thread (seeds, introductions).
 *
 * A link thread: connect with the client library (its I/O thread does
 * the socket work), say peer_hello, then every heartbeat interval send a
 * peer_ping (an inline endpoint at the other end: answered on its
 * reactor, never behind its pool) and move queued messages onto the
 * link, at most WITCH__PEER_WINDOW unanswered at a time, so a peer that
 * stops reading fills our bounded queue (drops counted) instead of
 * memory.  When the peer thread judges the peer dead, or the client
 * reports the link lost, the link is dropped and dialed again after a
 * backoff with full jitter (doubling from the heartbeat interval up to
 * 30 s; reset after a link that lived a while).  Logged once per change
 * of state, never per attempt.
 *
 * Locking: the client object is used outside p->mtx (its own lock makes
 * its functions safe from any thread); its callbacks (I/O thread) take
 * p->mtx only for table updates.  l->c is set while linked so that no
 * other thread frees it: only the link thread creates and frees it.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "peer/peer_int.h"

#define BACKOFF_MAX_MS 30000u

/* [M] Wait on p->cv for up to ms (stopping wakes it). */
static void
wait_ms(struct witch__peers *p, uint64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&p->cv, &p->mtx, &ts);
}

/*
 * [M] Sleep ms on p->cv, to the end: other wakeups (the cv is shared)
 * do not cut it short; stop, or l leaving the table (l may be NULL), do.
 */
static void
sleep_ms(struct witch__peers *p, const struct witch__peer_link *l,
    uint64_t ms)
{
	uint64_t end = witch__now_ns() + ms * 1000000u, now;

	while (!p->stopping && (l == NULL || !l->removed) &&
	    (now = witch__now_ns()) < end)
		wait_ms(p, (end - now) / 1000000u + 1);
}

/*
 * Full jitter over a doubling ceiling: [base, min(max, base * 2^n)],
 * max being ten heartbeat intervals (at most 30 s): a peer back from a
 * long outage is linked again within about ten intervals.
 */
static uint64_t
backoff_ms(unsigned base, unsigned n)
{
	uint64_t hi = base, max = 10 * (uint64_t)base;

	if (max > BACKOFF_MAX_MS)
		max = BACKOFF_MAX_MS;
	while (n-- > 0 && hi < max)
		hi *= 2;
	if (hi > max)
		hi = max;
	return base + witch__peer_random(hi - base + 1);
}

/* The hello we say on a link and in introductions. */
static json_t *
hello_json(const struct witch__peers *p)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:s}", "server_id",
	    p->self.server_id, "name", p->self.name, "port",
	    (json_int_t)p->self.port, "project_id", p->self.project_id,
	    "source_hash", p->self.source_hash);
}

/* Client event callback (client I/O thread): a peer_msg from the peer. */
static void
on_event(witch_client_t *c, const char *event, json_t *data, void *ud)
{
	struct witch__peer_link *l = ud;
	struct witch__peers *p = l->p;

	if (strcmp(event, "peer_msg") != 0)
		return;
	pthread_mutex_lock(&p->mtx);
	if (l->linked && l->status != WITCH_PEER_INCOMPATIBLE)
		(void)witch__peer_inbox(p, l, json_object_get(data,
		    "message"));
	pthread_mutex_unlock(&p->mtx);
}

struct ping {
	struct witch__peer_link	*l;
	uint64_t		 t0;
};

/* A heartbeat answered or failed (client I/O thread). */
static void
on_pong(witch_client_t *c, int status, json_t *result,
    const witch_error_t *err, void *ud)
{
	struct ping *pg = ud;
	struct witch__peer_link *l = pg->l;
	struct witch__peers *p = l->p;
	uint64_t now = witch__now_ns();

	pthread_mutex_lock(&p->mtx);
	if (status == 0) {
		l->last_ns = now;
		l->rtt_us = (int64_t)((now - pg->t0) / 1000u);
	} else if (status == WITCH_EREMOTE && err->remote == WITCH_ESTATE)
		l->rehello = true;	/* the acceptor forgot this link */
	pthread_mutex_unlock(&p->mtx);
	witch__free(pg);
}

/* A message answered or failed (client I/O thread). */
static void
on_sent(witch_client_t *c, int status, json_t *result,
    const witch_error_t *err, void *ud)
{
	struct witch__peer_link *l = ud;
	struct witch__peers *p = l->p;

	pthread_mutex_lock(&p->mtx);
	if (l->inflight > 0)
		l->inflight--;
	if (status == 0)
		l->sent++;
	else
		l->dropped++;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mtx);
}

/* Make the client of a dial link (outside the lock). */
static int
new_client(struct witch__peers *p, const char *host, unsigned port,
    unsigned timeout_ms, struct witch__peer_link *l, witch_client_t **c)
{
	witch_client_config_t *cc;
	int rc;

	if ((rc = witch_client_config_new(&cc)) != 0)
		return rc;
	witch_client_config_set_host(cc, host);
	witch_client_config_set_port(cc, port);
	witch_client_config_set_connect_timeout(cc, timeout_ms);
	witch_client_config_set_request_timeout(cc, timeout_ms);
	witch_client_config_set_auto_reconnect(cc, false);
	witch_client_config_set_name(cc, p->self.name);
	if (l != NULL)
		witch_client_config_set_event_callback(cc, on_event, l);
	rc = witch_client_new(c, cc);
	witch_client_config_free(cc);
	if (rc == 0 && l != NULL && (rc = witch_client_start_thread(*c)) != 0) {
		witch_client_free(*c);
		*c = NULL;
	}
	return rc;
}

/* Connect and say peer_hello.  0, or an error with why filled. */
static int
dial(struct witch__peers *p, struct witch__peer_link *l, const char *host,
    unsigned port, const char *expect_id, witch_client_t **cp,
    witch_error_t *err)
{
	witch_client_t *c = NULL;
	json_t *hello, *res = NULL;
	const char *id, *name;
	unsigned tmo = p->o.hb_ms * 2 < 1000 ? 1000 : p->o.hb_ms * 2;
	int rc;

	if (tmo > 5000)
		tmo = 5000;
	memset(err, 0, sizeof(*err));
	if ((rc = new_client(p, host, port, tmo, l, &c)) != 0) {
		err->code = rc;
		strlcpy(err->text, witch_strerror(rc), sizeof(err->text));
		return rc;
	}
	if ((rc = witch_client_connect(c, err)) != 0)
		goto fail;
	hello = hello_json(p);
	rc = witch_client_call(c, "peer_hello", hello, tmo, &res, err);
	json_decref(hello);
	if (rc != 0)
		goto fail;
	id = json_string_value(json_object_get(res, "server_id"));
	name = json_string_value(json_object_get(res, "name"));
	if (id == NULL || strcmp(id, expect_id) != 0) {
		rc = WITCH_EPROTOCOL;
		err->code = rc;
		snprintf(err->text, sizeof(err->text), "it answers as %.32s, "
		    "not %.32s", id != NULL ? id : "nobody", expect_id);
		goto fail;
	}
	pthread_mutex_lock(&p->mtx);
	if (name != NULL && *name != '\0')
		strlcpy(l->name, name, sizeof(l->name));
	pthread_mutex_unlock(&p->mtx);
	json_decref(res);
	*cp = c;
	return 0;
fail:
	json_decref(res);
	witch_client_free(c);
	return rc;
}

void *
witch__peer_link_main(void *arg)
{
	struct witch__peer_link *l = arg;
	struct witch__peers *p = l->p;
	struct witch__peer_msg *batch[WITCH__PEER_WINDOW], *m;
	char host[WITCH__PEER_HOST_MAX + 1], id[WITCH__PEER_ID_MAX + 1];
	char last_err[WITCH_ERROR_TEXT_MAX] = "";
	witch_client_t *c;
	witch_error_t err;
	struct ping *pg;
	uint64_t now, next_ping, up_ns, iv = witch__peer_iv_ns(p);
	unsigned fails = 0, port;
	size_t nb, i;
	json_t *d;
	int rc;

	pthread_mutex_lock(&p->mtx);
	while (!p->stopping && !l->removed) {
		if (l->status == WITCH_PEER_INCOMPATIBLE) {
			sleep_ms(p, l, BACKOFF_MAX_MS);
			continue;
		}
		strlcpy(host, l->addr, sizeof(host));
		strlcpy(id, l->id, sizeof(id));
		port = l->port;
		pthread_mutex_unlock(&p->mtx);

		rc = dial(p, l, host, port, id, &c, &err);

		pthread_mutex_lock(&p->mtx);
		if (rc != 0) {
			if (err.code == WITCH_EREMOTE &&
			    err.remote == WITCH_EINCOMPATIBLE) {
				l->status = WITCH_PEER_INCOMPATIBLE;
				witch__plog(p, WITCH_LOG_WARNING, "peer %s "
				    "(%.8s): incompatible: %s", l->name, id,
				    err.text);
				continue;
			}
			if (err.code == WITCH_EREMOTE &&
			    err.remote == WITCH_EUNAUTHORIZED) {
				/* Another project after all: never listed. */
				witch__plog(p, WITCH_LOG_WARNING, "peer %.8s "
				    "refused us: %s", id, err.text);
				l->removed = true;
				break;
			}
			if (strcmp(last_err, err.text) != 0)
				witch__plog(p, WITCH_LOG_WARNING, "peer %s "
				    "(%.8s) at %s:%u: cannot link: %s; "
				    "retrying with backoff", l->name, id, host,
				    port, err.text);
			strlcpy(last_err, err.text, sizeof(last_err));
			sleep_ms(p, l, backoff_ms(p->o.hb_ms, fails++));
			continue;
		}
		if (p->stopping || l->removed) {
			pthread_mutex_unlock(&p->mtx);
			witch_client_free(c);
			pthread_mutex_lock(&p->mtx);
			break;
		}
		last_err[0] = '\0';
		l->c = c;
		l->linked = true;
		l->rehello = false;
		l->inflight = 0;
		l->last_ns = up_ns = witch__now_ns();
		next_ping = up_ns;
		/* A flapping link logs its first round only. */
		witch__plog(p, fails == 0 ? WITCH_LOG_INFO : WITCH_LOG_DEBUG,
		    "peer %s (%.8s) at %s:%u: linked", l->name, id, host,
		    port);
		pthread_cond_broadcast(&p->cv);
		/*
		 * Until the peer thread judges this link (a quarter
		 * interval), the status may still say dead from before:
		 * only a death judged after the link came up ends it.
		 */
		while (!p->stopping && !l->removed && !l->rehello &&
		    !(l->status == WITCH_PEER_DEAD && l->dead_ns > up_ns) &&
		    l->status != WITCH_PEER_INCOMPATIBLE) {
			/* Take what the window allows. */
			nb = 0;
			while (l->qh != NULL && nb < WITCH__PEER_WINDOW &&
			    l->inflight < WITCH__PEER_WINDOW) {
				m = l->qh;
				if ((l->qh = m->next) == NULL)
					l->qt = NULL;
				l->qn--;
				l->inflight++;
				batch[nb++] = m;
			}
			pthread_mutex_unlock(&p->mtx);
			if (witch_client_state(c) != WITCH_CLIENT_CONNECTED) {
				pthread_mutex_lock(&p->mtx);
				for (i = 0; i < nb; i++) {
					l->inflight--;
					l->dropped++;
					json_decref(batch[i]->body);
					witch__free(batch[i]);
				}
				break;
			}
			for (i = 0; i < nb; i++) {
				d = json_pack("{s:I, s:o}", "seq",
				    (json_int_t)batch[i]->seq, "message",
				    batch[i]->body);
				rc = d != NULL ? witch_client_call_async(c,
				    "peer_msg", d, 0, on_sent, l, NULL) :
				    WITCH_ENOMEM;
				json_decref(d);
				if (rc != 0) {
					pthread_mutex_lock(&p->mtx);
					l->inflight--;
					l->dropped++;
					pthread_mutex_unlock(&p->mtx);
				}
				witch__free(batch[i]);
			}
			now = witch__now_ns();
			if (now >= next_ping) {
				next_ping = now + iv;
				if ((pg = witch__calloc(1, sizeof(*pg))) !=
				    NULL) {
					pg->l = l;
					pg->t0 = now;
					pthread_mutex_lock(&p->mtx);
					d = json_pack("{s:s, s:I}",
					    "server_id", p->self.server_id,
					    "rtt_us", (json_int_t)l->rtt_us);
					pthread_mutex_unlock(&p->mtx);
					if (witch_client_call_async(c,
					    "peer_ping", d, (unsigned)(iv /
					    1000000u) * p->o.dead, on_pong, pg,
					    NULL) != 0)
						witch__free(pg);
					json_decref(d);
				}
			}
			pthread_mutex_lock(&p->mtx);
			if (l->qh != NULL && l->inflight < WITCH__PEER_WINDOW)
				continue;
			now = witch__now_ns();
			if (next_ping > now)
				wait_ms(p, (next_ping - now) / 1000000u + 1);
		}
		/* The link is over: drop it, dial again later. */
		l->c = NULL;
		l->linked = false;
		if (l->rehello)
			witch__plog(p, WITCH_LOG_NOTICE, "peer %s (%.8s): it "
			    "forgot our link; saying hello again", l->name,
			    id);
		else if (!p->stopping && !l->removed)
			witch__plog(p, fails == 0 ? WITCH_LOG_WARNING :
			    WITCH_LOG_DEBUG, "peer %s (%.8s) at %s:%u: link "
			    "dropped (%s)%s", l->name, id, host, port,
			    l->status == WITCH_PEER_DEAD && l->dead_ns > up_ns ?
			    "dead" : "connection lost",
			    witch__now_ns() - up_ns <= 10 * iv ? "; it flaps: "
			    "redialing with backoff, logged at debug level" :
			    "");
		pthread_mutex_unlock(&p->mtx);
		witch_client_free(c);	/* completions run: inflight back */
		pthread_mutex_lock(&p->mtx);
		l->inflight = 0;
		if (witch__now_ns() - up_ns > 10 * iv)
			fails = 0;
		sleep_ms(p, l, backoff_ms(p->o.hb_ms, fails++));
	}
	l->linked = false;
	l->thr_done = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mtx);
	return NULL;
}

/* ---- seeds and introductions ----------------------------------------- */

/*
 * Contact host:port with a short-lived client: learn who it is (info),
 * introduce ourselves (peer_introduce: it dials us if its id is the
 * smaller), and, when learn, its peer list.  0 or an error (err).
 */
static int
contact(struct witch__peers *p, const char *host, unsigned port,
    bool learn, witch_error_t *err)
{
	witch_client_t *c = NULL;
	json_t *info = NULL, *list = NULL, *hello, *v;
	unsigned tmo = p->o.hb_ms * 2 < 1000 ? 1000 : p->o.hb_ms * 2;
	size_t i;
	int rc;

	if (tmo > 5000)
		tmo = 5000;
	memset(err, 0, sizeof(*err));
	if ((rc = new_client(p, host, port, tmo, NULL, &c)) != 0)
		return rc;
	if ((rc = witch_client_connect(c, err)) != 0 ||
	    (rc = witch_client_call(c, "info", NULL, tmo, &info, err)) != 0)
		goto out;
	hello = hello_json(p);
	rc = witch_client_call(c, "peer_introduce", hello, tmo, &v, err);
	json_decref(hello);
	if (rc != 0)
		goto out;
	json_decref(v);
	if (learn && witch_client_call(c, "peer_list", NULL, tmo, &list,
	    err) != 0)
		list = NULL;
	pthread_mutex_lock(&p->mtx);
	(void)witch__peer_candidate(p,
	    json_string_value(json_object_get(info, "server_id")),
	    json_string_value(json_object_get(info, "name")), host, port,
	    json_string_value(json_object_get(info, "project_id")),
	    json_string_value(json_object_get(info, "source_hash")));
	/* Its peers are of its project, which is ours (checked above). */
	if (json_is_array(list) && json_is_string(json_object_get(info,
	    "project_id")) && strcmp(json_string_value(json_object_get(info,
	    "project_id")), p->self.project_id) == 0)
		json_array_foreach(list, i, v) {
			const char *st = json_string_value(json_object_get(v,
			    "status"));

			if (st == NULL || strcmp(st, "alive") != 0)
				continue;
			(void)witch__peer_candidate(p, json_string_value(
			    json_object_get(v, "server_id")),
			    json_string_value(json_object_get(v, "name")),
			    json_string_value(json_object_get(v, "address")),
			    (unsigned)json_integer_value(json_object_get(v,
			    "port")), p->self.project_id, json_string_value(
			    json_object_get(v, "source_hash")));
		}
	pthread_mutex_unlock(&p->mtx);
out:
	json_decref(info);
	json_decref(list);
	witch_client_free(c);
	return rc;
}

void *
witch__peer_seed_main(void *arg)
{
	struct witch__peers *p = arg;
	struct witch__peer_seed *s;
	char host[WITCH__PEER_HOST_MAX + 1];
	uint64_t now, period = 10 * witch__peer_iv_ns(p);
	uint64_t quick = 2 * witch__peer_iv_ns(p);
	witch_error_t err;
	unsigned port;
	size_t i;
	int rc;

	if (period < 5000000000u)
		period = 5000000000u;
	pthread_mutex_lock(&p->mtx);
	while (!p->stopping) {
		pthread_mutex_unlock(&p->mtx);
		for (i = 0; i < p->nseeds && !p->stopping; i++) {
			s = &p->seeds[i];
			now = witch__now_ns();
			if (now < s->next_ns)
				continue;
			rc = contact(p, s->host, s->port, true, &err);
			if (rc == 0) {
				if (!s->reached || !s->tried)
					witch__plog(p, WITCH_LOG_NOTICE, "peer "
					    "seed %s:%u reached", s->host,
					    s->port);
				s->fails = 0;
				/*
				 * The first contacts come quickly: the
				 * seed's own links may not be up yet.
				 */
				s->next_ns = witch__now_ns() +
				    (s->contacts++ < 5 ? quick : period);
			} else {
				if (s->reached || !s->tried)
					witch__plog(p, WITCH_LOG_WARNING,
					    "peer seed %s:%u: %s: %s; "
					    "retrying with backoff", s->host,
					    s->port, rc == WITCH_EREMOTE ?
					    "refused" : "unreachable",
					    err.text[0] ? err.text :
					    witch_strerror(rc));
				s->next_ns = witch__now_ns() + backoff_ms(
				    p->o.hb_ms, s->fails++) * 1000000u;
			}
			s->reached = rc == 0;
			s->tried = true;
		}
		/* Peers that should dial us but do not: introduce us. */
		pthread_mutex_lock(&p->mtx);
		for (i = 0; i < WITCH_PEER_MAX && !p->stopping; i++) {
			struct witch__peer_link *l = &p->tab[i];

			now = witch__now_ns();
			if (!l->used || l->removed || l->dial || l->linked ||
			    l->status == WITCH_PEER_INCOMPATIBLE ||
			    now < l->next_intro_ns)
				continue;
			strlcpy(host, l->addr, sizeof(host));
			port = l->port;
			/* Give its discovery a chance first. */
			l->next_intro_ns = now + backoff_ms(p->o.hb_ms * 2,
			    l->intro_fails++) * 1000000u;
			if (l->intro_fails == 1)
				continue;
			pthread_mutex_unlock(&p->mtx);
			(void)contact(p, host, port, false, &err);
			pthread_mutex_lock(&p->mtx);
		}
		if (!p->stopping)
			wait_ms(p, p->o.hb_ms);
	}
	pthread_mutex_unlock(&p->mtx);
	return NULL;
}
