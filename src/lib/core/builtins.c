/*
 * core/builtins.c: the built-in endpoints every server has (protocol.md).
 *
 * ping, echo, info, status and peer_list run on workers like any handler.
 * hello and cancel change the state of the calling connection, so the
 * reactor answers them inline, in order with the frames around them.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <witch/server.h>
#include <witch/version.h>

#include "core/alloc.h"
#include "core/server_int.h"

static double
wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
bi_ping(witch_request_t *req, void *ud)
{
	return witch_request_reply(req, json_pack("{s:b, s:f}", "pong", 1,
	    "time", wall_now()));
}

static int
bi_echo(witch_request_t *req, void *ud)
{
	return witch_request_reply(req, json_pack("{s:O}", "echo",
	    witch_request_data(req)));
}

/* JSON array of the server's protocol names. */
static json_t *
protocols_json(const struct witch_server *srv)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a != NULL && i < srv->cfg.nprotocols; i++)
		json_array_append_new(a, json_string(srv->cfg.protocols[i]));
	return a;
}

static int
bi_info(witch_request_t *req, void *ud)
{
	const struct witch_server *srv = witch_request_server(req);
	json_t *eps, *protos, *o;
	size_t i, p;

	if ((eps = json_object()) == NULL)
		return WITCH_ENOMEM;
	for (i = 0; i < srv->neps; i++) {
		protos = json_array();
		for (p = 0; protos != NULL && p < srv->cfg.nprotocols; p++)
			if (srv->eps[i].proto_mask & (1u << p))
				json_array_append_new(protos,
				    json_string(srv->cfg.protocols[p]));
		json_object_set_new(eps, srv->eps[i].name, protos);
	}
	o = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:o, s:i}",
	    "name", srv->cfg.name, "server_id", srv->server_id,
	    "version", witch_version(), "protocols", protocols_json(srv),
	    "source_hash", srv->source_hash, "project_id", srv->cfg.project_id,
	    "endpoints", eps, "wire_version", WITCH_WIRE_VERSION);
	if (o == NULL)
		return WITCH_ENOMEM;
	return witch_request_reply(req, o);
}

static int
bi_status(witch_request_t *req, void *ud)
{
	struct witch_server *srv = witch_request_server(req);
	const struct witch__counters *c = &srv->ctr;
	double up = (witch__now_ns() - srv->start_ns) / 1e9;
	json_t *o;

	o = json_pack("{s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:I, s:I, s:[]}",
	    "uptime", up,
	    "clients", (json_int_t)atomic_load(&c->clients),
	    "max_clients", (json_int_t)atomic_load(&srv->live.max_clients),
	    "workers", (json_int_t)srv->nworkers,
	    "queue_depth", (json_int_t)witch__pool_depth(srv->pool),
	    "running", (json_int_t)witch__pool_running(srv->pool),
	    "requests_served", (json_int_t)atomic_load(&c->requests_served),
	    "requests_failed", (json_int_t)atomic_load(&c->requests_failed),
	    "connections_accepted", (json_int_t)atomic_load(&c->conns_accepted),
	    "connections_rejected", (json_int_t)atomic_load(&c->conns_rejected),
	    "output_limit_drops", (json_int_t)atomic_load(&c->output_drops),
	    "emfile_pauses", (json_int_t)atomic_load(&c->emfile_pauses),
	    "overloaded", (json_int_t)atomic_load(&c->overloaded),
	    "peers");
	if (o == NULL)
		return WITCH_ENOMEM;
	return witch_request_reply(req, o);
}

static int
bi_peer_list(witch_request_t *req, void *ud)
{
	/* Peering is not built yet: this server knows no peers. */
	return witch_request_reply(req, json_array());
}

/* Placeholder handler for the reactor-side built-ins (never called). */
static int
bi_inline(witch_request_t *req, void *ud)
{
	return WITCH_EHANDLER;
}

int
witch__builtins_register(struct witch_server *srv)
{
	static const struct {
		const char		*name;
		witch_handler_fn	 fn;
	} tab[] = {
		{ "ping", bi_ping }, { "echo", bi_echo }, { "info", bi_info },
		{ "status", bi_status }, { "peer_list", bi_peer_list },
		{ "hello", bi_inline }, { "cancel", bi_inline },
	};
	size_t i;
	int rc;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if ((rc = witch__endpoint_add_builtin(srv, tab[i].name,
		    tab[i].fn)) != 0)
			return rc;
	return 0;
}

const struct witch__endpoint *
witch__endpoint_find(const struct witch_server *srv, const char *name,
    int proto)
{
	size_t i;

	for (i = 0; i < srv->neps; i++)
		if (strcmp(srv->eps[i].name, name) == 0)
			return (srv->eps[i].proto_mask & (1u << proto)) ?
			    &srv->eps[i] : NULL;
	return NULL;
}

/* ---- reactor-side built-ins ------------------------------------------ */

/* Reply to a reactor-side built-in; on failure an error reply instead. */
static int
inline_reply(struct witch__buf *out, const char *id, json_t *result)
{
	int rc;

	if (result == NULL)
		return witch__reply_error(out, id, WITCH_ENOMEM,
		    "out of memory");
	rc = witch__reply_result(out, id, result, WITCH_MAX_FRAME_CEILING);
	json_decref(result);
	return rc;
}

/* Index of the first of the client's protocols the server speaks. */
static int
pick_protocol(const struct witch_server *srv, json_t *list)
{
	json_t *v;
	size_t i, p;

	json_array_foreach(list, i, v) {
		if (!json_is_string(v))
			continue;
		for (p = 0; p < srv->cfg.nprotocols; p++)
			if (strcmp(json_string_value(v),
			    srv->cfg.protocols[p]) == 0)
				return (int)p;
	}
	return -1;
}

int
witch__builtin_hello(struct witch__conn *c, struct witch__request_env *env,
    struct witch__buf *out)
{
	struct witch_server *srv = c->srv;
	json_t *d = env->data, *protos, *hash, *name;
	char msg[256];
	int p;

	if (d != NULL && !json_is_null(d) && !json_is_object(d))
		return witch__reply_error(out, env->id, WITCH_EINVALID_REQUEST,
		    "hello: data must be an object");
	protos = d ? json_object_get(d, "protocols") : NULL;
	hash = d ? json_object_get(d, "source_hash") : NULL;
	name = d ? json_object_get(d, "name") : NULL;
	if ((protos != NULL && !json_is_array(protos)) ||
	    (hash != NULL && !json_is_string(hash)) ||
	    (name != NULL && !json_is_string(name)))
		return witch__reply_error(out, env->id, WITCH_EINVALID_REQUEST,
		    "hello: protocols must be an array of strings, "
		    "source_hash and name strings");
	if (hash != NULL &&
	    strcmp(json_string_value(hash), srv->source_hash) != 0) {
		snprintf(msg, sizeof(msg), "source hash mismatch: client "
		    "expects %.40s, server has %s", json_string_value(hash),
		    srv->source_hash);
		return witch__reply_error(out, env->id, WITCH_EINCOMPATIBLE,
		    msg);
	}
	if (protos != NULL) {
		if ((p = pick_protocol(srv, protos)) < 0) {
			snprintf(msg, sizeof(msg), "no protocol in common; "
			    "this server speaks %s%s", srv->cfg.protocols[0],
			    srv->cfg.nprotocols > 1 ? " and others (see info)" :
			    "");
			return witch__reply_error(out, env->id,
			    WITCH_EUNSUPPORTED_PROTOCOL, msg);
		}
		c->proto = p;
	}
	if (name != NULL)
		strlcpy(c->client_name, json_string_value(name),
		    sizeof(c->client_name));
	return inline_reply(out, env->id, json_pack(
	    "{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:I}",
	    "name", srv->cfg.name, "server_id", srv->server_id,
	    "version", witch_version(), "protocol", srv->cfg.protocols[c->proto],
	    "protocols", protocols_json(srv), "source_hash", srv->source_hash,
	    "project_id", srv->cfg.project_id, "client_id", (json_int_t)c->id));
}

struct cancel_match {
	const struct witch__conn	*conn;
	const char			*id;
};

static bool
match_job(const struct witch__job *job, void *arg)
{
	const struct witch__reqjob *rj = (const struct witch__reqjob *)job;
	const struct cancel_match *m = arg;

	return rj->conn == m->conn && strcmp(rj->id, m->id) == 0;
}

/* Remember id so that the request, if it comes later, is cancelled. */
static void
precancel_add(struct witch__conn *c, const char *id, uint64_t now)
{
	size_t i, slot = 0;

	if (c->precancel == NULL) {
		c->precancel = witch__calloc(WITCH__PRECANCEL_MAX,
		    sizeof(*c->precancel));
		if (c->precancel == NULL)
			return;
		c->nprecancel = WITCH__PRECANCEL_MAX;
	}
	/* A free or expired slot, else the one that expires first. */
	for (i = 0; i < c->nprecancel; i++) {
		if (c->precancel[i].expires_ns <= now) {
			slot = i;
			break;
		}
		if (c->precancel[i].expires_ns <
		    c->precancel[slot].expires_ns)
			slot = i;
	}
	strlcpy(c->precancel[slot].id, id, sizeof(c->precancel[slot].id));
	c->precancel[slot].expires_ns = now +
	    (uint64_t)WITCH__PRECANCEL_MS * 1000000u;
}

int
witch__builtin_cancel(struct witch__conn *c, struct witch__request_env *env,
    struct witch__buf *out)
{
	struct cancel_match m;
	char id[WITCH__ID_MAX + 1];
	json_t *ids, *v;
	size_t i, matched = 0, remembered = 0;

	ids = env->data != NULL ? json_object_get(env->data, "ids") : NULL;
	if (!json_is_array(ids))
		return witch__reply_error(out, env->id, WITCH_EINVALID_REQUEST,
		    "cancel: data must be {\"ids\": [...]}");
	json_array_foreach(ids, i, v) {
		if (witch__id_format(v, id, sizeof(id)) != 0)
			return witch__reply_error(out, env->id,
			    WITCH_EINVALID_REQUEST,
			    "cancel: ids must be integers or strings");
	}
	m.conn = c;
	json_array_foreach(ids, i, v) {
		witch__id_format(v, id, sizeof(id));
		m.id = id;
		if (witch__pool_cancel(c->srv->pool, match_job, &m) > 0)
			matched++;
		else {
			precancel_add(c, id, c->srv->now_ns);
			remembered++;
		}
	}
	return inline_reply(out, env->id, json_pack("{s:I, s:I}",
	    "matched", (json_int_t)matched,
	    "remembered", (json_int_t)remembered));
}
