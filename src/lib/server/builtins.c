/*
 * server/builtins.c: the built-in endpoints that need no connection
 * state (protocol.md): ping and echo run on the reactor thread (as
 * WITCH_ENDPOINT_INLINE endpoints; on workers when the config's
 * inline_builtins is off); info, status, stats and peer_list run on
 * workers like any handler.  They are handlers like an application's,
 * written against the witch_request_* API; they read the server's
 * counters and endpoint table directly.  The connection built-ins
 * (hello, cancel, clients, kill_client, monitor) are the reactor's:
 * reactor/builtins.c.
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
	const char *text;
	size_t len;

	/* Data still as validated text: splice it, no DOM at all. */
	if ((text = witch__request_data_text(req, &len)) != NULL) {
		const char *parts[] = { "{\"echo\":", text, "}" };
		size_t lens[] = { 8, len, 1 };

		witch__request_reply_parts(req, parts, lens, 3);
		return 0;
	}
	return witch_request_reply(req, json_pack("{s:O}", "echo",
	    witch_request_data(req)));
}

static int
bi_info(witch_request_t *req, void *ud)
{
	const struct witch_server *srv = witch_request_server(req);
	json_t *eps, *protos, *o;
	size_t i, p;

	if ((eps = json_object()) == NULL)
		return WITCH_ENOMEM;
	for (i = 0; i < srv->r.neps; i++) {
		protos = json_array();
		for (p = 0; protos != NULL && p < srv->cfg.nprotocols; p++)
			if (srv->r.eps[i].proto_mask & (1u << p))
				json_array_append_new(protos,
				    json_string(srv->cfg.protocols[p]));
		json_object_set_new(eps, srv->r.eps[i].name, protos);
	}
	o = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:o, s:i}",
	    "name", srv->cfg.name, "server_id", srv->server_id,
	    "version", witch_version(),
	    "protocols", witch__protocols_json(&srv->r),
	    "source_hash", srv->source_hash, "project_id", srv->cfg.project_id,
	    "endpoints", eps, "wire_version", WITCH_WIRE_VERSION);
	if (o == NULL)
		return WITCH_ENOMEM;
	return witch_request_reply(req, o);
}

/*
 * What status and stats both report: uptime, clients, the pool's queue
 * and the request and connection counters.  NULL: no memory.
 */
static json_t *
counters_json(const struct witch_server *srv)
{
	const struct witch__counters *c = &srv->r.ctr;
	json_t *o, *b;

	o = json_pack("{s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:I, s:s, s:I, s:I}",
	    "uptime", (witch__now_ns() - srv->r.start_ns) / 1e9,
	    "clients", (json_int_t)atomic_load(&c->clients),
	    "queue_depth", (json_int_t)witch__pool_depth(srv->r.pool),
	    "running", (json_int_t)witch__pool_running(srv->r.pool),
	    "requests_served", (json_int_t)atomic_load(&c->requests_served),
	    "requests_failed", (json_int_t)atomic_load(&c->requests_failed),
	    "connections_accepted", (json_int_t)atomic_load(&c->conns_accepted),
	    "connections_rejected", (json_int_t)atomic_load(&c->conns_rejected),
	    "output_limit_drops", (json_int_t)atomic_load(&c->output_drops),
	    "emfile_pauses", (json_int_t)atomic_load(&c->emfile_pauses),
	    "overloaded", (json_int_t)atomic_load(&c->overloaded),
	    "poll_errors", (json_int_t)atomic_load(&c->poll_errors),
	    "auth", witch__key_on(&srv->cfg.key) ? "key" :
	    srv->cfg.unprotected ? "unprotected" : "protected",
	    "auth_failed", (json_int_t)atomic_load(&srv->r.auth_failed),
	    "unauthorized", (json_int_t)atomic_load(&srv->r.auth_refused));
	/* The memory budgets (reactor.md, "Budgets"): what each refused. */
	b = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "frame_bytes_held", (json_int_t)atomic_load(&c->frame_bytes_held),
	    "frame_timeouts", (json_int_t)atomic_load(&c->frame_timeouts),
	    "frame_budget_drops",
	    (json_int_t)atomic_load(&c->frame_budget_drops),
	    "preauth_frame_refusals",
	    (json_int_t)atomic_load(&c->preauth_frame_refusals),
	    "address_refusals", (json_int_t)atomic_load(&c->address_refusals),
	    "depth_refusals", (json_int_t)atomic_load(&c->depth_refusals),
	    "decode_refusals", (json_int_t)atomic_load(&c->decode_refusals),
	    "direct_writes", (json_int_t)atomic_load(&c->direct_writes),
	    "direct_short_writes", (json_int_t)atomic_load(&c->direct_short));
	if (o == NULL || b == NULL || json_object_update(o, b) != 0) {
		json_decref(o);
		o = NULL;
	}
	json_decref(b);
	return o;
}

/* Reply with the counters and the members of extra (taken; NULL: ENOMEM). */
static int
reply_counters(witch_request_t *req, const struct witch_server *srv,
    json_t *extra)
{
	json_t *o = counters_json(srv);

	if (o == NULL || extra == NULL || json_object_update(o, extra) != 0) {
		json_decref(o);
		json_decref(extra);
		return WITCH_ENOMEM;
	}
	json_decref(extra);
	return witch_request_reply(req, o);
}

/* The counters, with the settings and parts of the server's own. */
static int
bi_status(witch_request_t *req, void *ud)
{
	struct witch_server *srv = witch_request_server(req);
	json_t *peers = NULL;

	if (witch__peers_snapshot(srv->peers, &peers) != 0)
		return WITCH_ENOMEM;
	return reply_counters(req, srv, json_pack("{s:I, s:I, s:b, s:o, s:o}",
	    "max_clients", (json_int_t)atomic_load(&srv->r.live.max_clients),
	    "workers", (json_int_t)srv->nworkers,
	    "peering", witch__peers_enabled(srv->peers), "peers", peers,
	    "peer_counts", witch__peers_counts(srv->peers)));
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
		total += h[i] = atomic_load(&srv->r.ctr.latency[i]);
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
	const struct witch__counters *c = &srv->r.ctr;
	json_t *eps = json_object(), *errs = json_object();
	uint64_t n;
	size_t i;

	for (i = 0; i < srv->r.neps; i++) {
		n = atomic_load(&srv->r.eps[i].calls);
		if (n > 0)
			json_object_set_new(eps, srv->r.eps[i].name, json_pack(
			    "{s:I, s:I}", "calls", (json_int_t)n, "errors",
			    (json_int_t)atomic_load(&srv->r.eps[i].failures)));
	}
	for (i = 1; i < WITCH__ERR_SLOTS; i++) {
		n = atomic_load(&c->errors[i]);
		if (n > 0)
			json_object_set_new(errs, witch_err_name(-(int)i),
			    json_integer((json_int_t)n));
	}
	return reply_counters(req, srv, json_pack("{s:I, s:o, s:o, s:o}",
	    "protocol_errors", (json_int_t)atomic_load(&c->protocol_errors),
	    "endpoints", eps, "errors", errs, "latency", latency_json(srv)));
}

static int
bi_peer_list(witch_request_t *req, void *ud)
{
	struct witch_server *srv = witch_request_server(req);
	json_t *a;
	int rc;

	/* The peer table as it is now (peering off: empty). */
	if ((rc = witch__peers_snapshot(srv->peers, &a)) != 0)
		return rc;
	return witch_request_reply(req, a);
}

int
witch__builtins_register(struct witch_server *srv)
{
	static const struct {
		const char		*name;
		witch_handler_fn	 fn;
		bool			 cheap;	/* inline_builtins applies */
	} tab[] = {
		{ "ping", bi_ping, true },
		{ "echo", bi_echo, true },
		{ "info", bi_info, false },
		{ "status", bi_status, false },
		{ "peer_list", bi_peer_list, false },
		{ "stats", bi_stats, false },
	};
	uint32_t all = (1u << srv->cfg.nprotocols) - 1;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if ((rc = witch__endpoint_add(&srv->r, tab[i].name, all,
		    tab[i].fn, NULL, tab[i].cheap && srv->cfg.inline_builtins,
		    NULL)) != 0)
			return rc;
	return 0;
}
