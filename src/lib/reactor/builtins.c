/*
 * reactor/builtins.c: the connection built-ins (protocol.md): hello,
 * cancel, clients, kill_client and monitor read or change connection
 * state, which the reactor owns, so the reactor answers them, in order
 * with the frames around them.  clients, kill_client and monitor reveal
 * or act on other clients: they are served only to trusted connections
 * (the unix control socket, or loopback).  The built-ins that need no
 * connection state (ping, echo, info, ...) are in server/builtins.c.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <witch/version.h>

#include "core/alloc.h"
#include "reactor/reactor.h"

/* JSON array of the server's protocol names (NULL: no memory). */
json_t *
witch__protocols_json(const struct witch__reactor *r)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a != NULL && i < r->opt.nprotocols; i++)
		json_array_append_new(a, json_string(r->opt.protocols[i]));
	return a;
}

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
pick_protocol(const struct witch__reactor *r, json_t *list)
{
	json_t *v;
	size_t i, p;

	json_array_foreach(list, i, v) {
		if (!json_is_string(v))
			continue;
		for (p = 0; p < r->opt.nprotocols; p++)
			if (strcmp(json_string_value(v),
			    r->opt.protocols[p]) == 0)
				return (int)p;
	}
	return -1;
}

static int
builtin_hello(struct witch__conn *c, struct witch__request_env *env,
    struct witch__buf *out)
{
	struct witch__reactor *r = c->r;
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
	    strcmp(json_string_value(hash), r->opt.source_hash) != 0) {
		snprintf(msg, sizeof(msg), "source hash mismatch: client "
		    "expects %.40s, server has %s", json_string_value(hash),
		    r->opt.source_hash);
		return witch__reply_error(out, env->id, WITCH_EINCOMPATIBLE,
		    msg);
	}
	if (protos != NULL) {
		if ((p = pick_protocol(r, protos)) < 0) {
			snprintf(msg, sizeof(msg), "no protocol in common; "
			    "this server speaks %s%s", r->opt.protocols[0],
			    r->opt.nprotocols > 1 ? " and others (see info)" :
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
	    "name", r->opt.name, "server_id", r->opt.server_id,
	    "version", witch_version(), "protocol", r->opt.protocols[c->proto],
	    "protocols", witch__protocols_json(r),
	    "source_hash", r->opt.source_hash,
	    "project_id", r->opt.project_id, "client_id", (json_int_t)c->id));
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
		if (witch__pool_cancel(c->r->pool, match_job, &m) > 0)
			matched++;
		else {
			precancel_add(c, id, c->r->now_ns);
			remembered++;
		}
	}
	return inline_reply(out, env->id, json_pack("{s:I, s:I}",
	    "matched", (json_int_t)matched,
	    "remembered", (json_int_t)remembered));
}

/* unauthorized unless c is on the control socket or loopback. */
static bool
refuse_untrusted(struct witch__conn *c, struct witch__request_env *env,
    struct witch__buf *out)
{
	if (c->trusted)
		return false;
	witch__stats_error(&c->r->ctr, WITCH_EUNAUTHORIZED);
	witch__reply_error(out, env->id, WITCH_EUNAUTHORIZED, "this "
	    "operation is served only on the control socket and to loopback "
	    "clients");
	return true;
}

/* One row of the clients list. */
static json_t *
client_json(const struct witch__conn *c, uint64_t now)
{
	const struct witch__reactor *r = c->r;

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
	    "protocol", r->opt.protocols[c->proto],
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
	for (it = c->r->conns; it != NULL; it = it->next)
		if (it->counted)
			json_array_append_new(list, client_json(it,
			    c->r->now_ns));
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
	for (it = c->r->conns; it != NULL; it = it->next)
		if (it->counted && (json_int_t)it->id == id)
			break;
	if (it == NULL || it->state != WITCH__CONN_OPEN) {
		witch__stats_error(&c->r->ctr, WITCH_EINVAL);
		return witch__reply_error(out, env->id, WITCH_EINVAL,
		    "kill_client: no such client");
	}
	witch__rlog(c->r, WITCH_LOG_NOTICE, "client %llu (%s) killed by "
	    "client %llu (%s)", (unsigned long long)it->id, it->peer,
	    (unsigned long long)c->id, c->peer);
	witch__conn_close(it, 0, "killed", 1000);
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
		c->r->nmonitors++;
	}
	return inline_reply(out, env->id, json_pack("{s:b}", "monitoring",
	    1));
}

void
witch__monitor_feed(struct witch__conn *c, struct witch__request_env *env)
{
	struct witch__reactor *r = c->r;
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
	for (m = r->conns; m != NULL; m = m->next) {
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

int
witch__conn_builtins_register(struct witch__reactor *r)
{
	static const struct {
		const char		*name;
		witch__conn_builtin_fn	 fn;
	} tab[] = {
		{ "hello", builtin_hello },
		{ "cancel", builtin_cancel },
		{ "clients", builtin_clients },
		{ "kill_client", builtin_kill_client },
		{ "monitor", builtin_monitor },
	};
	uint32_t all = (1u << r->opt.nprotocols) - 1;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if ((rc = witch__endpoint_add(r, tab[i].name, all, NULL, NULL,
		    false, tab[i].fn)) != 0)
			return rc;
	return 0;
}
