/*
 * server/builtins.c: the built-in endpoints every server has (protocol.md).
 *
 * ping and echo are handlers run on the reactor thread (as
 * WITCH_ENDPOINT_INLINE endpoints; on workers when the config's
 * inline_builtins is off); info, status, stats and peer_list run on
 * workers like any handler.  hello, cancel, clients, kill_client and monitor read or change
 * connection state, which the reactor owns, so the reactor answers them
 * inline, in order with the frames around them.  clients, kill_client and
 * monitor reveal or act on other clients: they are served only to trusted
 * connections (the unix control socket, or loopback).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <witch/server.h>
#include <witch/version.h>

#include "core/alloc.h"
#include "server/server_int.h"

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
	/* Data still as validated text: splice it, no DOM at all. */
	if (req->rj->data == NULL && req->rj->raw != NULL) {
		req->raw_echo = true;
		return 0;
	}
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

/* Upper bound (us) of latency bucket i: 2^(i/4). */
static double
bucket_us(size_t i)
{
	return exp2(i / 4.0);
}

/* Latency percentiles (ms) from the log-bucket histogram. */
static json_t *
latency_json(const struct witch_server *srv)
{
	static const double qs[] = { 0.5, 0.9, 0.99, 0.999 };
	static const char *names[] = { "p50_ms", "p90_ms", "p99_ms",
	    "p999_ms" };
	uint64_t h[WITCH__LAT_BUCKETS], total = 0, acc;
	json_t *o = json_object();
	size_t i, q;

	for (i = 0; i < WITCH__LAT_BUCKETS; i++)
		total += h[i] = atomic_load(&srv->ctr.latency[i]);
	json_object_set_new(o, "count", json_integer((json_int_t)total));
	for (q = 0; q < 4; q++) {
		acc = 0;
		for (i = 0; i < WITCH__LAT_BUCKETS; i++) {
			acc += h[i];
			if (total > 0 && acc >= (uint64_t)(qs[q] * total))
				break;
		}
		json_object_set_new(o, names[q], total == 0 ? json_null() :
		    json_real(bucket_us(i < WITCH__LAT_BUCKETS ? i :
		    WITCH__LAT_BUCKETS - 1) / 1000.0));
	}
	return o;
}

static int
bi_stats(witch_request_t *req, void *ud)
{
	struct witch_server *srv = witch_request_server(req);
	const struct witch__counters *c = &srv->ctr;
	json_t *eps = json_object(), *errs = json_object(), *o;
	uint64_t n;
	size_t i;

	for (i = 0; i < srv->neps; i++) {
		n = atomic_load(&srv->eps[i].calls);
		if (n > 0)
			json_object_set_new(eps, srv->eps[i].name, json_pack(
			    "{s:I, s:I}", "calls", (json_int_t)n, "errors",
			    (json_int_t)atomic_load(&srv->eps[i].failures)));
	}
	for (i = 1; i < 32; i++) {
		n = atomic_load(&c->errors[i]);
		if (n > 0)
			json_object_set_new(errs, witch_err_name(-(int)i),
			    json_integer((json_int_t)n));
	}
	o = json_pack("{s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:I, s:o, s:o, s:o}",
	    "uptime", (witch__now_ns() - srv->start_ns) / 1e9,
	    "clients", (json_int_t)atomic_load(&c->clients),
	    "connections_accepted", (json_int_t)atomic_load(&c->conns_accepted),
	    "connections_rejected", (json_int_t)atomic_load(&c->conns_rejected),
	    "requests_served", (json_int_t)atomic_load(&c->requests_served),
	    "requests_failed", (json_int_t)atomic_load(&c->requests_failed),
	    "protocol_errors", (json_int_t)atomic_load(&c->protocol_errors),
	    "output_limit_drops", (json_int_t)atomic_load(&c->output_drops),
	    "emfile_pauses", (json_int_t)atomic_load(&c->emfile_pauses),
	    "overloaded", (json_int_t)atomic_load(&c->overloaded),
	    "queue_depth", (json_int_t)witch__pool_depth(srv->pool),
	    "running", (json_int_t)witch__pool_running(srv->pool),
	    "endpoints", eps, "errors", errs, "latency", latency_json(srv));
	if (o == NULL)
		return WITCH_ENOMEM;
	return witch_request_reply(req, o);
}

void
witch__count_error(struct witch_server *srv, int code)
{
	if (code < 0 && code > -32)
		atomic_fetch_add_explicit(&srv->ctr.errors[-code], 1,
		    memory_order_relaxed);
}

void
witch__count_call(const struct witch__endpoint *ep, bool ok,
    struct witch_server *srv, uint64_t t0_ns)
{
	struct witch__endpoint *e = (struct witch__endpoint *)(uintptr_t)ep;
	uint64_t us = (witch__now_ns() - t0_ns) / 1000u;
	unsigned lg;
	size_t b = 0;

	atomic_fetch_add_explicit(&e->calls, 1, memory_order_relaxed);
	if (!ok)
		atomic_fetch_add_explicit(&e->failures, 1,
		    memory_order_relaxed);
	/*
	 * Bucket 4e + f + 1 for us in [2^e (1 + f/4), 2^e (1 + (f+1)/4)):
	 * the exponent and two mantissa bits, no floating point on the hot
	 * path.  Its reported bound 2^(i/4) is within 6% of the true one.
	 */
	if (us > 0) {
		lg = 63 - (unsigned)__builtin_clzll(us);
		b = 4 * lg + 1 + (lg >= 2 ? (us >> (lg - 2)) & 3 :
		    lg == 1 ? (us & 1) << 1 : 0);
		if (b >= WITCH__LAT_BUCKETS)
			b = WITCH__LAT_BUCKETS - 1;
	}
	atomic_fetch_add_explicit(&srv->ctr.latency[b], 1,
	    memory_order_relaxed);
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

static int builtin_hello(struct witch__conn *, struct witch__request_env *,
    struct witch__buf *);
static int builtin_cancel(struct witch__conn *, struct witch__request_env *,
    struct witch__buf *);
static int builtin_clients(struct witch__conn *,
    struct witch__request_env *, struct witch__buf *);
static int builtin_kill_client(struct witch__conn *,
    struct witch__request_env *, struct witch__buf *);
static int builtin_monitor(struct witch__conn *,
    struct witch__request_env *, struct witch__buf *);

int
witch__builtins_register(struct witch_server *srv)
{
	static const struct {
		const char		*name;
		witch_handler_fn	 fn;
		witch__inline_fn	 inl;
		bool			 cheap;	/* inline_builtins applies */
	} tab[] = {
		{ "ping", bi_ping, NULL, true },
		{ "echo", bi_echo, NULL, true },
		{ "info", bi_info, NULL, false },
		{ "status", bi_status, NULL, false },
		{ "peer_list", bi_peer_list, NULL, false },
		{ "stats", bi_stats, NULL, false },
		{ "hello", bi_inline, builtin_hello, false },
		{ "cancel", bi_inline, builtin_cancel, false },
		{ "clients", bi_inline, builtin_clients, false },
		{ "kill_client", bi_inline, builtin_kill_client, false },
		{ "monitor", bi_inline, builtin_monitor, false },
	};
	size_t i;
	int rc;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if ((rc = witch__endpoint_add_builtin(srv, tab[i].name,
		    tab[i].fn, tab[i].inl,
		    tab[i].cheap && srv->cfg.inline_builtins)) != 0)
			return rc;
	return 0;
}

const struct witch__endpoint *
witch__endpoint_find(const struct witch_server *srv, const char *name,
    int proto)
{
	size_t i;

	for (i = 0; i < srv->neps; i++)
		if (srv->eps[i].name[0] == name[0] &&
		    strcmp(srv->eps[i].name, name) == 0)
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

static int
builtin_hello(struct witch__conn *c, struct witch__request_env *env,
    struct witch__buf *out)
{
	struct witch_server *srv = c->srv;
	json_t *d = witch__request_env_data(env), *protos, *hash, *name;
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

static int
builtin_cancel(struct witch__conn *c, struct witch__request_env *env,
    struct witch__buf *out)
{
	struct cancel_match m;
	char id[WITCH__ID_MAX + 1];
	json_t *ids, *v;
	size_t i, matched = 0, remembered = 0;

	ids = json_object_get(witch__request_env_data(env), "ids");
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

/* ---- operations (trusted connections only) --------------------------- */

/* unauthorized unless c is on the control socket or loopback. */
static bool
refuse_untrusted(struct witch__conn *c, struct witch__request_env *env,
    struct witch__buf *out)
{
	if (c->trusted)
		return false;
	witch__count_error(c->srv, WITCH_EUNAUTHORIZED);
	witch__reply_error(out, env->id, WITCH_EUNAUTHORIZED, "this "
	    "operation is served only on the control socket and to loopback "
	    "clients");
	return true;
}

/* One row of the clients list. */
static json_t *
client_json(const struct witch__conn *c, uint64_t now)
{
	const struct witch_server *srv = c->srv;

	return json_pack("{s:I, s:s, s:s, s:b, s:I, s:I, s:f, s:f, s:I, s:I, "
	    "s:I, s:s, s:s}",
	    "id", (json_int_t)c->id, "addr", c->peer,
	    "name", c->client_name, "local", c->local,
	    "uid", (json_int_t)c->uid, "pid", (json_int_t)c->pid,
	    "age", (now - c->created_ns) / 1e9,
	    "idle", (now - c->active_ns) / 1e9,
	    "inflight", (json_int_t)atomic_load(&c->inflight),
	    "output_bytes", (json_int_t)witch__oqueue_bytes(&c->oq),
	    "requests", (json_int_t)c->nrequests,
	    "protocol", srv->cfg.protocols[c->proto],
	    "state", c->state == WITCH__CONN_OPEN ? "open" : "closing");
}

static int
builtin_clients(struct witch__conn *c, struct witch__request_env *env,
    struct witch__buf *out)
{
	const struct witch__conn *it;
	json_t *list;

	if (refuse_untrusted(c, env, out))
		return 0;
	if ((list = json_array()) == NULL)
		return inline_reply(out, env->id, NULL);
	for (it = c->srv->conns; it != NULL; it = it->next)
		if (it->counted)
			json_array_append_new(list, client_json(it,
			    c->srv->now_ns));
	return inline_reply(out, env->id, list);
}

static int
builtin_kill_client(struct witch__conn *c, struct witch__request_env *env,
    struct witch__buf *out)
{
	struct witch__conn *it;
	json_t *idv;
	json_int_t id;

	if (refuse_untrusted(c, env, out))
		return 0;
	idv = json_object_get(witch__request_env_data(env), "id");
	if (!json_is_integer(idv))
		return witch__reply_error(out, env->id, WITCH_EINVALID_REQUEST,
		    "kill_client: data must be {\"id\": <client id>}");
	id = json_integer_value(idv);
	for (it = c->srv->conns; it != NULL; it = it->next)
		if (it->counted && (json_int_t)it->id == id)
			break;
	if (it == NULL || it->state != WITCH__CONN_OPEN) {
		witch__count_error(c->srv, WITCH_EINVAL);
		return witch__reply_error(out, env->id, WITCH_EINVAL,
		    "kill_client: no such client");
	}
	witch__log(c->srv, WITCH_LOG_NOTICE, "client %llu (%s) killed by "
	    "client %llu (%s)", (unsigned long long)it->id, it->peer,
	    (unsigned long long)c->id, c->peer);
	witch__conn_kill(it, "killed");
	return inline_reply(out, env->id, json_pack("{s:I}", "killed",
	    (json_int_t)id));
}

static int
builtin_monitor(struct witch__conn *c, struct witch__request_env *env,
    struct witch__buf *out)
{
	if (refuse_untrusted(c, env, out))
		return 0;
	if (!c->monitor) {
		c->monitor = true;
		c->srv->nmonitors++;
	}
	return inline_reply(out, env->id, json_pack("{s:b}", "monitoring",
	    1));
}

void
witch__monitor_feed(struct witch__conn *c, struct witch__request_env *env)
{
	struct witch_server *srv = c->srv;
	struct witch__conn *m;
	struct witch__buf b;
	struct timespec ts;
	json_t *d;

	clock_gettime(CLOCK_REALTIME, &ts);
	d = json_pack("{s:f, s:I, s:s, s:s, s:o, s:O?, s:b}",
	    "time", ts.tv_sec + ts.tv_nsec / 1e9, "client", (json_int_t)c->id,
	    "addr", c->peer, "endpoint", env->endpoint,
	    "id", json_loads(env->id, JSON_DECODE_ANY, NULL),
	    "data", witch__request_env_data(env), "oneway", env->oneway);
	if (d == NULL)
		return;
	for (m = srv->conns; m != NULL; m = m->next) {
		if (!m->monitor || m == c || m->state != WITCH__CONN_OPEN)
			continue;
		witch__omsg_buf_init(&b);
		if (witch__reply_event(&b, "monitor", d) == 0)
			witch__conn_reply_buf(m, &b);
		else
			witch__buf_free(&b);
	}
	json_decref(d);
}
