/*
 * peer/send.c: what the peer API asks of the table: sending (broadcast
 * and targeted messages through each link's bounded queue), snapshots and
 * counts of the table, and queries of every alive peer.  The table and
 * the peer thread are in peer.c; see doc/internals/peer.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "peer/peer_int.h"

/* A row for name (not id) by server id or by name: NULL if none. */
static struct witch__peer_link *
find_named(struct witch__peers *p, const char *peer)
{
	struct witch__peer_link *l;
	size_t i;

	if ((l = witch__peer_find(p, peer)) != NULL)
		return l;
	for (i = 0; i < WITCH_PEER_MAX; i++)
		if (p->tab[i].used && !p->tab[i].removed &&
		    strcmp(p->tab[i].name, peer) == 0)
			return &p->tab[i];
	return NULL;
}

/* ---- sending ---------------------------------------------------------- */

/* [M] Queue a copy of msg for l: 0, WITCH_EOVERLOADED or WITCH_ENOMEM. */
static int
enqueue(struct witch__peers *p, struct witch__peer_link *l, json_t *msg)
{
	struct witch__peer_msg *m;

	if (l->qn >= p->o.queue) {
		l->dropped++;
		return WITCH_EOVERLOADED;
	}
	if ((m = witch__calloc(1, sizeof(*m))) == NULL)
		return WITCH_ENOMEM;
	if ((m->body = json_deep_copy(msg)) == NULL) {
		witch__free(m);
		return WITCH_ENOMEM;
	}
	m->seq = ++l->seq_out;
	if (l->qt != NULL)
		l->qt->next = m;
	else
		l->qh = m;
	l->qt = m;
	l->qn++;
	return 0;
}

int
witch__peers_broadcast(struct witch__peers *p, json_t *msg, json_t *ids)
{
	size_t i;
	int n = 0;

	if (msg == NULL)
		return WITCH_EINVAL;
	pthread_mutex_lock(&p->mtx);
	if (!p->running || p->stopping) {
		pthread_mutex_unlock(&p->mtx);
		return WITCH_ESTATE;
	}
	for (i = 0; i < WITCH_PEER_MAX; i++) {
		struct witch__peer_link *l = &p->tab[i];

		if (!l->used || l->removed || l->status != WITCH_PEER_ALIVE)
			continue;
		if (enqueue(p, l, msg) == 0) {
			n++;
			if (ids != NULL)
				json_array_append_new(ids, json_string(l->id));
		}
	}
	if (n > 0)
		pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mtx);
	return n;
}

int
witch__peers_send(struct witch__peers *p, const char *peer, json_t *msg)
{
	struct witch__peer_link *l;
	int rc;

	if (peer == NULL || msg == NULL)
		return WITCH_EINVAL;
	pthread_mutex_lock(&p->mtx);
	if (!p->running || p->stopping)
		rc = WITCH_ESTATE;
	else if ((l = find_named(p, peer)) == NULL)
		rc = WITCH_ENO_PEER;
	else if (l->status == WITCH_PEER_INCOMPATIBLE)
		rc = WITCH_EINCOMPATIBLE;
	else if (l->status != WITCH_PEER_ALIVE)
		rc = WITCH_EPEER_DOWN;
	else if ((rc = enqueue(p, l, msg)) == 0)
		pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mtx);
	return rc;
}

/* ---- looking ---------------------------------------------------------- */

int
witch__peers_snapshot(struct witch__peers *p, json_t **array)
{
	json_t *a, *o;
	uint64_t now = witch__now_ns();
	size_t i;

	if (array == NULL)
		return WITCH_EINVAL;
	if ((a = json_array()) == NULL)
		return WITCH_ENOMEM;
	pthread_mutex_lock(&p->mtx);
	for (i = 0; i < WITCH_PEER_MAX; i++) {
		const struct witch__peer_link *l = &p->tab[i];

		if (!l->used || l->removed)
			continue;
		o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:o, s:o, s:s, s:s, "
		    "s:I, s:I, s:I}",
		    "name", l->name, "server_id", l->id, "address", l->addr,
		    "port", (json_int_t)l->port,
		    "status", witch_peer_status_name(l->status),
		    "last_seen", l->last_ns ? json_real((now - l->last_ns) /
		    1e9) : json_null(),
		    "rtt_ms", l->rtt_us >= 0 ? json_real(l->rtt_us / 1e3) :
		    json_null(),
		    "role", l->dial ? "dial" : "accept",
		    "source_hash", l->hash,
		    "sent", (json_int_t)l->sent,
		    "received", (json_int_t)l->received,
		    "dropped", (json_int_t)l->dropped);
		if (o == NULL || json_array_append_new(a, o) != 0) {
			pthread_mutex_unlock(&p->mtx);
			json_decref(a);
			return WITCH_ENOMEM;
		}
	}
	pthread_mutex_unlock(&p->mtx);
	*array = a;
	return 0;
}

json_t *
witch__peers_counts(struct witch__peers *p)
{
	unsigned n[WITCH_PEER_INCOMPATIBLE + 1] = { 0 };
	size_t i;

	pthread_mutex_lock(&p->mtx);
	for (i = 0; i < WITCH_PEER_MAX; i++)
		if (p->tab[i].used && !p->tab[i].removed)
			n[p->tab[i].status]++;
	pthread_mutex_unlock(&p->mtx);
	return json_pack("{s:b, s:I, s:I, s:I, s:I, s:I}", "enabled",
	    p->o.on, "alive", (json_int_t)n[WITCH_PEER_ALIVE],
	    "suspect", (json_int_t)n[WITCH_PEER_SUSPECT],
	    "dead", (json_int_t)n[WITCH_PEER_DEAD],
	    "connecting", (json_int_t)n[WITCH_PEER_CONNECTING],
	    "incompatible", (json_int_t)n[WITCH_PEER_INCOMPATIBLE]);
}

/* ---- queries ---------------------------------------------------------- */

/* One peer asked by one thread of a query. */
struct ask {
	pthread_t	 thr;
	bool		 started;
	char		 id[WITCH__PEER_ID_MAX + 1];
	char		 name[WITCH__PEER_NAME_MAX + 1];
	char		 addr[WITCH__PEER_HOST_MAX + 1];
	unsigned	 port;
	const char	*endpoint;
	json_t		*data;		/* shared, read only: a deep copy */
	unsigned	 timeout_ms;
	const char	*self_name;
	int		 rc;
	json_t		*result;
	witch_error_t	 err;
};

static void *
ask_main(void *arg)
{
	struct ask *a = arg;
	witch_client_config_t *cc = NULL;
	witch_client_t *c = NULL;

	a->rc = witch_client_config_new(&cc);
	if (a->rc == 0) {
		witch_client_config_set_host(cc, a->addr);
		witch_client_config_set_port(cc, a->port);
		witch_client_config_set_connect_timeout(cc, a->timeout_ms);
		witch_client_config_set_auto_reconnect(cc, false);
		witch_client_config_set_name(cc, a->self_name);
		a->rc = witch_client_new(&c, cc);
		witch_client_config_free(cc);
	}
	if (a->rc == 0)
		a->rc = witch_client_connect(c, &a->err);
	if (a->rc == 0)
		a->rc = witch_client_call(c, a->endpoint, a->data,
		    a->timeout_ms, &a->result, &a->err);
	else if (a->rc != WITCH_ETIMEOUT)
		a->err.code = a->rc;
	witch_client_free(c);
	return NULL;
}

int
witch__peers_query(struct witch__peers *p, const char *endpoint,
    json_t *data, unsigned timeout_ms, json_t **result)
{
	struct ask *asks;
	json_t *answers, *missing, *copy, *o;
	size_t i, n = 0;

	if (endpoint == NULL || *endpoint == '\0' || result == NULL)
		return WITCH_EINVAL;
	if (timeout_ms == 0)
		timeout_ms = 2 * p->o.hb_ms;
	if ((asks = witch__calloc(WITCH_PEER_MAX, sizeof(*asks))) == NULL)
		return WITCH_ENOMEM;
	if ((copy = data != NULL ? json_deep_copy(data) : NULL) == NULL &&
	    data != NULL) {
		witch__free(asks);
		return WITCH_ENOMEM;
	}
	pthread_mutex_lock(&p->mtx);
	if (!p->running || p->stopping) {
		pthread_mutex_unlock(&p->mtx);
		json_decref(copy);
		witch__free(asks);
		return WITCH_ESTATE;
	}
	for (i = 0; i < WITCH_PEER_MAX; i++) {
		const struct witch__peer_link *l = &p->tab[i];

		if (!l->used || l->removed || l->status != WITCH_PEER_ALIVE)
			continue;
		strlcpy(asks[n].id, l->id, sizeof(asks[n].id));
		strlcpy(asks[n].name, l->name, sizeof(asks[n].name));
		strlcpy(asks[n].addr, l->addr, sizeof(asks[n].addr));
		asks[n].port = l->port;
		n++;
	}
	pthread_mutex_unlock(&p->mtx);
	for (i = 0; i < n; i++) {
		asks[i].endpoint = endpoint;
		asks[i].data = copy;
		asks[i].timeout_ms = timeout_ms;
		asks[i].self_name = p->self.name;
		asks[i].started = pthread_create(&asks[i].thr, NULL, ask_main,
		    &asks[i]) == 0;
		if (!asks[i].started) {
			asks[i].rc = WITCH_ESYSTEM;
			asks[i].err.code = WITCH_ESYSTEM;
			strlcpy(asks[i].err.text, "no thread for the query",
			    sizeof(asks[i].err.text));
		}
	}
	answers = json_array();
	missing = json_array();
	for (i = 0; i < n; i++) {
		if (asks[i].started)
			pthread_join(asks[i].thr, NULL);
		if (asks[i].rc == 0)
			o = json_pack("{s:s, s:s, s:O}", "server_id",
			    asks[i].id, "name", asks[i].name, "result",
			    asks[i].result);
		else if (asks[i].rc == WITCH_ETIMEOUT &&
		    asks[i].err.remote == 0) {
			json_array_append_new(missing, json_pack("{s:s, s:s}",
			    "server_id", asks[i].id, "name", asks[i].name));
			o = NULL;
		} else {
			int code = asks[i].rc == WITCH_EREMOTE &&
			    asks[i].err.remote != 0 ? asks[i].err.remote :
			    asks[i].rc;

			o = json_pack("{s:s, s:s, s:{s:s, s:s}}", "server_id",
			    asks[i].id, "name", asks[i].name, "error", "code",
			    witch_err_name(code), "message",
			    asks[i].err.text[0] != '\0' ? asks[i].err.text :
			    witch_strerror(code));
		}
		if (o != NULL)
			json_array_append_new(answers, o);
		json_decref(asks[i].result);
	}
	json_decref(copy);
	witch__free(asks);
	*result = json_pack("{s:o, s:o}", "answers", answers, "missing",
	    missing);
	return *result != NULL ? 0 : WITCH_ENOMEM;
}
