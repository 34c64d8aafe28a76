/*
 * peer/wire.c: the peer endpoints (witch-protocol(7), "Peers"),
 * registered through the public server API at witch_server_new, whether
 * peering is on or not (so the source hash does not depend on it; with
 * peering off they answer invalid_state).
 *
 *   between servers   peer_hello (worker), peer_ping and peer_msg (inline:
 *                     on the reactor, never behind the pool),
 *                     peer_introduce (worker);
 *   for clients       peer_broadcast, peer_send, peer_query, subscribe,
 *                     unsubscribe (workers; peer_query waits for its
 *                     answers on the worker).
 * peer_list is the server's built-in (server/builtins.c) over
 * witch__peers_snapshot().
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "peer/peer_int.h"

static int
off(witch_request_t *req, struct witch__peers *p)
{
	if (!p->o.on)
		return witch_request_error(req, WITCH_ESTATE, "peering is off "
		    "on this server");
	return witch_request_error(req, WITCH_ESTATE, "peering is not "
	    "running");
}

/* Copy the address part of "ADDR:PORT" ("[v6]:PORT") into out. */
static void
addr_of(const char *remote, char *out, size_t outlen)
{
	const char *colon;
	size_t n;

	if (*remote == '[') {
		remote++;
		colon = strchr(remote, ']');
	} else
		colon = strrchr(remote, ':');
	n = colon != NULL ? (size_t)(colon - remote) : strlen(remote);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, remote, n);
	out[n] = '\0';
}

/* The fields of a hello or introduction; NULL: a bad one (error set). */
static const char *
hello_fields(witch_request_t *req, const char **id, const char **name,
    const char **project, const char **hash, unsigned *port)
{
	json_t *d = witch_request_data(req), *pv;

	*id = json_string_value(json_object_get(d, "server_id"));
	*name = json_string_value(json_object_get(d, "name"));
	*project = json_string_value(json_object_get(d, "project_id"));
	*hash = json_string_value(json_object_get(d, "source_hash"));
	pv = json_object_get(d, "port");
	if (*id == NULL || *name == NULL || *project == NULL ||
	    *hash == NULL || !json_is_integer(pv) ||
	    json_integer_value(pv) < 1 || json_integer_value(pv) > 65535 ||
	    strlen(*id) != WITCH__PEER_ID_MAX || strlen(*name) == 0 ||
	    strlen(*name) > WITCH__PEER_NAME_MAX)
		return NULL;
	*port = (unsigned)json_integer_value(pv);
	return *id;
}

/* peer_hello: a peer with a smaller server_id dials us. */
static int
ep_hello(witch_request_t *req, void *ud)
{
	struct witch__peers *p = ud;
	struct witch__peer_link *l;
	const char *id, *name, *project, *hash;
	char addr[64];
	unsigned port;
	json_t *res;

	if (hello_fields(req, &id, &name, &project, &hash, &port) == NULL)
		return witch_request_error(req, WITCH_EINVALID_REQUEST,
		    "peer_hello: data must be {server_id (32 hex digits), "
		    "name, port, project_id, source_hash}");
	addr_of(witch_request_remote_addr(req), addr, sizeof(addr));
	pthread_mutex_lock(&p->mtx);
	if (!p->running || p->stopping) {
		pthread_mutex_unlock(&p->mtx);
		return off(req, p);
	}
	if (strcmp(project, p->self.project_id) != 0) {
		pthread_mutex_unlock(&p->mtx);
		return witch_request_error(req, WITCH_EUNAUTHORIZED,
		    "peer_hello: another project");
	}
	if (strcmp(id, p->self.server_id) >= 0) {
		pthread_mutex_unlock(&p->mtx);
		return witch_request_error(req, WITCH_EINVALID_REQUEST,
		    "peer_hello: the server with the smaller id dials, and "
		    "ours is smaller");
	}
	if ((l = witch__peer_candidate(p, id, name, addr, port, project,
	    hash)) == NULL) {
		pthread_mutex_unlock(&p->mtx);
		return witch_request_error(req, WITCH_EINVALID_REQUEST,
		    "peer_hello: not accepted (bad id or table full)");
	}
	if (strcmp(hash, p->self.source_hash) != 0) {
		pthread_mutex_unlock(&p->mtx);
		return witch_request_error(req, WITCH_EINCOMPATIBLE,
		    "peer_hello: source hash %.32s, ours %s", hash,
		    p->self.source_hash);
	}
	/* The last hello wins: the old connection may be half dead. */
	strlcpy(l->addr, addr, sizeof(l->addr));
	l->port = port;
	l->client_id = witch_request_client_id(req);
	l->linked = true;
	l->intro_fails = 0;
	l->last_ns = witch__now_ns();
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mtx);
	res = json_pack("{s:s, s:s, s:s, s:s}", "server_id",
	    p->self.server_id, "name", p->self.name, "project_id",
	    p->self.project_id, "source_hash", p->self.source_hash);
	return witch_request_reply(req, res);
}

/* peer_ping (inline): a heartbeat from a peer that dialed us. */
static int
ep_ping(witch_request_t *req, void *ud)
{
	struct witch__peers *p = ud;
	struct witch__peer_link *l;
	json_t *rtt = json_object_get(witch_request_data(req), "rtt_us");

	pthread_mutex_lock(&p->mtx);
	if (!p->running || p->stopping) {
		pthread_mutex_unlock(&p->mtx);
		return off(req, p);
	}
	if ((l = witch__peer_by_client(p,
	    witch_request_client_id(req))) == NULL) {
		pthread_mutex_unlock(&p->mtx);
		return witch_request_error(req, WITCH_ESTATE,
		    "peer_ping: not a peer link (say peer_hello)");
	}
	l->last_ns = witch__now_ns();
	/* The dialer measures the round trip; we show its last one. */
	if (json_is_integer(rtt) && json_integer_value(rtt) >= 0)
		l->rtt_us = (int64_t)json_integer_value(rtt);
	pthread_mutex_unlock(&p->mtx);
	return witch_request_reply(req, json_pack("{s:s}", "server_id",
	    p->self.server_id));
}

/* peer_msg (inline): a message from a peer that dialed us. */
static int
ep_msg(witch_request_t *req, void *ud)
{
	struct witch__peers *p = ud;
	struct witch__peer_link *l;
	json_t *m = json_object_get(witch_request_data(req), "message");
	bool ok;

	if (m == NULL)
		return witch_request_error(req, WITCH_EINVALID_REQUEST,
		    "peer_msg: data must be {seq, message}");
	pthread_mutex_lock(&p->mtx);
	if (!p->running || p->stopping) {
		pthread_mutex_unlock(&p->mtx);
		return off(req, p);
	}
	if ((l = witch__peer_by_client(p,
	    witch_request_client_id(req))) == NULL ||
	    l->status == WITCH_PEER_INCOMPATIBLE) {
		pthread_mutex_unlock(&p->mtx);
		return witch_request_error(req, WITCH_ESTATE,
		    "peer_msg: not a peer link (say peer_hello)");
	}
	ok = witch__peer_inbox(p, l, m);
	pthread_mutex_unlock(&p->mtx);
	if (!ok)
		return witch_request_error(req, WITCH_EOVERLOADED,
		    "peer_msg: inbox full, message dropped");
	return witch_request_reply(req, json_object());
}

/* peer_introduce: a server of the project tells us it exists. */
static int
ep_introduce(witch_request_t *req, void *ud)
{
	struct witch__peers *p = ud;
	const char *id, *name, *project, *hash;
	char addr[64];
	unsigned port;

	if (hello_fields(req, &id, &name, &project, &hash, &port) == NULL)
		return witch_request_error(req, WITCH_EINVALID_REQUEST,
		    "peer_introduce: data must be {server_id, name, port, "
		    "project_id, source_hash}");
	addr_of(witch_request_remote_addr(req), addr, sizeof(addr));
	pthread_mutex_lock(&p->mtx);
	if (!p->running || p->stopping) {
		pthread_mutex_unlock(&p->mtx);
		return off(req, p);
	}
	if (strcmp(project, p->self.project_id) != 0) {
		pthread_mutex_unlock(&p->mtx);
		return witch_request_error(req, WITCH_EUNAUTHORIZED,
		    "peer_introduce: another project");
	}
	(void)witch__peer_candidate(p, id, name, addr, port, project, hash);
	pthread_mutex_unlock(&p->mtx);
	return witch_request_reply(req, json_pack("{s:s}", "server_id",
	    p->self.server_id));
}

static int
ep_broadcast(witch_request_t *req, void *ud)
{
	struct witch__peers *p = ud;
	json_t *m = json_object_get(witch_request_data(req), "message");
	json_t *ids;
	int n;

	if (m == NULL)
		return witch_request_error(req, WITCH_EINVALID_REQUEST,
		    "peer_broadcast: data must be {\"message\": ...}");
	if ((ids = json_array()) == NULL)
		return WITCH_ENOMEM;
	if ((n = witch__peers_broadcast(p, m, ids)) < 0) {
		json_decref(ids);
		return n == WITCH_ESTATE ? off(req, p) : n;
	}
	return witch_request_reply(req, json_pack("{s:i, s:o}", "queued", n,
	    "peers", ids));
}

static int
ep_send(witch_request_t *req, void *ud)
{
	struct witch__peers *p = ud;
	json_t *d = witch_request_data(req);
	const char *peer = json_string_value(json_object_get(d, "peer"));
	json_t *m = json_object_get(d, "message");
	int rc;

	if (peer == NULL || m == NULL)
		return witch_request_error(req, WITCH_EINVALID_REQUEST,
		    "peer_send: data must be {\"peer\": ID or NAME, "
		    "\"message\": ...}");
	switch ((rc = witch__peers_send(p, peer, m))) {
	case 0:
		return witch_request_reply(req, json_pack("{s:i, s:s}",
		    "queued", 1, "peer", peer));
	case WITCH_ESTATE:
		return off(req, p);
	case WITCH_ENO_PEER:
		return witch_request_error(req, rc, "no peer %.64s", peer);
	case WITCH_EPEER_DOWN:
		return witch_request_error(req, rc, "peer %.64s is not "
		    "alive", peer);
	case WITCH_EINCOMPATIBLE:
		return witch_request_error(req, rc, "peer %.64s has another "
		    "source hash: no messages", peer);
	case WITCH_EOVERLOADED:
		return witch_request_error(req, rc, "queue of peer %.64s is "
		    "full: message dropped", peer);
	default:
		return rc;
	}
}

static int
ep_query(witch_request_t *req, void *ud)
{
	struct witch__peers *p = ud;
	json_t *d = witch_request_data(req), *res, *tv;
	const char *ep = json_string_value(json_object_get(d, "endpoint"));
	unsigned tmo = 0;
	int rc;

	tv = json_object_get(d, "timeout_ms");
	if (ep == NULL || (tv != NULL && (!json_is_integer(tv) ||
	    json_integer_value(tv) < 1 || json_integer_value(tv) > 600000)))
		return witch_request_error(req, WITCH_EINVALID_REQUEST,
		    "peer_query: data must be {\"endpoint\": NAME, \"data\": "
		    "..., \"timeout_ms\": 1..600000}");
	if (tv != NULL)
		tmo = (unsigned)json_integer_value(tv);
	if ((rc = witch__peers_query(p, ep, json_object_get(d, "data"), tmo,
	    &res)) != 0)
		return rc == WITCH_ESTATE ? off(req, p) : rc;
	return witch_request_reply(req, res);
}

static int
ep_subscribe(witch_request_t *req, void *ud)
{
	struct witch__peers *p = ud;
	uint64_t id = witch_request_client_id(req);
	size_t i, slot = WITCH__PEER_SUBS_MAX;

	pthread_mutex_lock(&p->mtx);
	for (i = 0; i < WITCH__PEER_SUBS_MAX; i++) {
		if (p->subs[i] == id) {
			slot = i;
			break;
		}
		if (p->subs[i] == 0 && slot == WITCH__PEER_SUBS_MAX)
			slot = i;
	}
	if (slot == WITCH__PEER_SUBS_MAX) {
		/* Full: the oldest subscription (maybe long gone) yields. */
		memmove(&p->subs[0], &p->subs[1],
		    (WITCH__PEER_SUBS_MAX - 1) * sizeof(p->subs[0]));
		slot = WITCH__PEER_SUBS_MAX - 1;
	}
	p->subs[slot] = id;
	pthread_mutex_unlock(&p->mtx);
	return witch_request_reply(req, json_pack("{s:b, s:b, s:[ss]}",
	    "subscribed", 1, "peering", p->o.on, "events", "peer_message",
	    "peer_status"));
}

static int
ep_unsubscribe(witch_request_t *req, void *ud)
{
	struct witch__peers *p = ud;
	uint64_t id = witch_request_client_id(req);
	size_t i;
	bool was = false;

	pthread_mutex_lock(&p->mtx);
	for (i = 0; i < WITCH__PEER_SUBS_MAX; i++)
		if (p->subs[i] == id) {
			p->subs[i] = 0;
			was = true;
		}
	pthread_mutex_unlock(&p->mtx);
	return witch_request_reply(req, json_pack("{s:b}", "unsubscribed",
	    was));
}

int
witch__peer_endpoints(struct witch__peers *p, witch_server_t *srv)
{
	static const struct {
		const char		*name;
		witch_handler_fn	 fn;
		unsigned		 flags;
	} tab[] = {
		{ "peer_hello", ep_hello, 0 },
		{ "peer_ping", ep_ping, WITCH_ENDPOINT_INLINE },
		{ "peer_msg", ep_msg, WITCH_ENDPOINT_INLINE },
		{ "peer_introduce", ep_introduce, 0 },
		{ "peer_broadcast", ep_broadcast, 0 },
		{ "peer_send", ep_send, 0 },
		{ "peer_query", ep_query, 0 },
		{ "subscribe", ep_subscribe, 0 },
		{ "unsubscribe", ep_unsubscribe, 0 },
	};
	size_t i;
	int rc;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if ((rc = witch_server_register_endpoint_ex(srv, tab[i].name,
		    NULL, 0, tab[i].fn, p, tab[i].flags)) != 0)
			return rc;
	return 0;
}
