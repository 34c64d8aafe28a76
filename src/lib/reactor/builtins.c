/*
 * reactor/builtins.c: the connection built-ins (protocol.md): hello,
 * auth, cancel, clients, kill_client and monitor read or change connection
 * state, which the reactor owns, so the reactor answers them, in order
 * with the frames around them.  clients, kill_client and monitor reveal
 * or act on other clients: they are served only to trusted connections
 * (the unix control socket, or loopback).  The built-ins that need no
 * connection state (ping, echo, info, ...) are in server/builtins.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <witch/version.h>

#include "core/alloc.h"
#include "proto/scan.h"
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

/*
 * A reactor-side built-in's data, looked at without a tree (protocol.md,
 * doc/internals/reactor.md).  The envelope leaves it as text (data_raw);
 * that text must be at most max bytes, checked before anything looks
 * inside, then one scan gives the type of the data (*top, WITCH__J_NONE
 * without data) and the spans of the members m of a data object.  True:
 * refused, the invalid_request reply naming the limit is in out and *rc
 * is its result.
 */
static bool
bi_data_refused(struct witch__request_env *env, struct witch__buf *out,
    const char *name, size_t max, struct witch__jmember *m, size_t nm,
    enum witch__jtype *top, int *rc)
{
	char msg[128];
	size_t i;
	bool kesc;
	int err;

	*top = WITCH__J_NONE;
	for (i = 0; i < nm; i++)
		memset(m[i].span, 0, sizeof(*m[i].span));
	if (env->data_raw == NULL)
		return false;
	if (env->data_len > max) {
		snprintf(msg, sizeof(msg), "%s: data larger than %zu bytes",
		    name, max);
		*rc = witch__reply_error(out, env->id, WITCH_EINVALID_REQUEST,
		    msg);
		return true;
	}
	if ((err = witch__json_scan(env->data_raw, env->data_len, top, m, nm,
	    &kesc)) != 0) {		/* validated with the request */
		*rc = witch__reply_error(out, env->id, err, NULL);
		return true;
	}
	return false;
}

/* Index of the first of the client's protocols the server speaks. */
static int
pick_protocol(const struct witch__reactor *r, const struct witch__jspan *list)
{
	struct witch__jspan v;
	char name[64];
	size_t pos = 0, p;

	while (witch__json_array_next(list, &pos, &v)) {
		if (v.type != WITCH__J_STRING ||
		    witch__json_string_copy(&v, name, sizeof(name)) >=
		    sizeof(name))
			continue;
		for (p = 0; p < r->opt.nprotocols; p++)
			if (strcmp(name, r->opt.protocols[p]) == 0)
				return (int)p;
	}
	return -1;
}

/* At most WITCH__BUILTIN_DATA_MAX bytes of data, scanned, no tree. */
static int
builtin_hello(struct witch__conn *c, struct witch__request_env *env,
    struct witch__buf *out)
{
	struct witch__reactor *r = c->r;
	struct witch__jspan protos, hash, name;
	struct witch__jmember m[] = { { "protocols", 9, &protos },
	    { "source_hash", 11, &hash }, { "name", 4, &name } };
	enum witch__jtype top;
	char msg[256], h[WITCH__ID_MAX], nhex[WITCH__AUTH_HEX + 1];
	json_t *res;
	int p, rc;

	if (bi_data_refused(env, out, "hello", WITCH__BUILTIN_DATA_MAX, m, 3,
	    &top, &rc))
		return rc;
	if (top != WITCH__J_NONE && top != WITCH__J_NULL &&
	    top != WITCH__J_OBJECT)
		return witch__reply_error(out, env->id, WITCH_EINVALID_REQUEST,
		    "hello: data must be an object");
	if ((protos.type != WITCH__J_NONE && protos.type != WITCH__J_ARRAY) ||
	    (hash.type != WITCH__J_NONE && hash.type != WITCH__J_STRING) ||
	    (name.type != WITCH__J_NONE && name.type != WITCH__J_STRING))
		return witch__reply_error(out, env->id, WITCH_EINVALID_REQUEST,
		    "hello: protocols must be an array of strings, "
		    "source_hash and name strings");
	if (hash.type == WITCH__J_STRING &&
	    (witch__json_string_copy(&hash, h, sizeof(h)) >= sizeof(h) ||
	    strcmp(h, r->opt.source_hash) != 0)) {
		snprintf(msg, sizeof(msg), "source hash mismatch: client "
		    "expects %.40s, server has %s", h, r->opt.source_hash);
		return witch__reply_error(out, env->id, WITCH_EINCOMPATIBLE,
		    msg);
	}
	if (protos.type == WITCH__J_ARRAY) {
		if ((p = pick_protocol(r, &protos)) < 0) {
			snprintf(msg, sizeof(msg), "no protocol in common; "
			    "this server speaks %s%s", r->opt.protocols[0],
			    r->opt.nprotocols > 1 ? " and others (see info)" :
			    "");
			return witch__reply_error(out, env->id,
			    WITCH_EUNSUPPORTED_PROTOCOL, msg);
		}
		c->proto = p;
	}
	if (name.type == WITCH__J_STRING)
		(void)witch__json_string_copy(&name, c->client_name,
		    sizeof(c->client_name));
	res = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:I, s:I}",
	    "name", r->opt.name, "server_id", r->opt.server_id,
	    "version", witch_version(), "protocol", r->opt.protocols[c->proto],
	    "protocols", witch__protocols_json(r),
	    "source_hash", r->opt.source_hash,
	    "project_id", r->opt.project_id, "client_id", (json_int_t)c->id,
	    "max_frame", (json_int_t)r->opt.max_frame);
	/* A key: a fresh challenge per hello; the previous one is void. */
	if (res != NULL && witch__key_on(&r->opt.key)) {
		arc4random_buf(c->auth_nonce, sizeof(c->auth_nonce));
		c->auth_pending = true;
		witch__hex_encode(c->auth_nonce, sizeof(c->auth_nonce), nhex);
		json_object_set_new(res, "auth", json_pack("{s:s, s:s, s:b}",
		    "method", WITCH__AUTH_METHOD, "nonce", nhex,
		    "authenticated", c->authed));
	}
	return inline_reply(out, env->id, res);
}

/* The source address of c without its port (the limiter's key). */
static void
peer_addr(const struct witch__conn *c, char *buf, size_t len)
{
	char *colon;

	strlcpy(buf, c->peer, len);
	if ((colon = strrchr(buf, ':')) != NULL && !c->local)
		*colon = '\0';
}

/*
 * auth: the client's nonce and proof for the nonce of the last hello
 * (witch-protocol(7), doc/internals/auth.md).  Success: c is
 * authenticated and the reply carries the server's proof.  Failure: an
 * unauthorized reply, the connection closed, the failure logged and
 * counted against the source address; past its budget a source is
 * refused without a check.  No allocation beyond the reply.
 */
static int
builtin_auth(struct witch__conn *c, struct witch__request_env *env,
    struct witch__buf *out)
{
	struct witch__reactor *r = c->r;
	char proof[WITCH__AUTH_HEX + 1], msg[160], addr[64];
	int rc;

	peer_addr(c, addr, sizeof(addr));
	if (!witch__auth_limit_allow(&r->auth_limit, addr, r->now_ns)) {
		atomic_fetch_add(&r->auth_failed, 1);
		witch__stats_error(&r->ctr, WITCH_EUNAUTHORIZED);
		rc = witch__reply_error(out, env->id, WITCH_EUNAUTHORIZED,
		    "too many failed authentication attempts from this "
		    "address; retry later");
		witch__conn_close(c, 0, "auth_rate_limited", 1000);
		return rc;
	}
	if (env->data_raw != NULL && env->data_len > WITCH__BUILTIN_DATA_MAX)
		rc = WITCH_EINVALID_REQUEST;
	else
		rc = witch__auth_server_check(&r->opt.key,
		    r->opt.protocols[c->proto],
		    c->auth_pending ? c->auth_nonce : NULL, env->data_raw,
		    env->data_raw != NULL ? env->data_len : 0, proof, msg,
		    sizeof(msg));
	/* One proof per challenge, right or wrong. */
	c->auth_pending = false;
	explicit_bzero(c->auth_nonce, sizeof(c->auth_nonce));
	if (rc == 0) {
		c->authed = true;
		witch__conn_set_authenticated(c);	/* lifts the frame cap */
		witch__rlog(r, WITCH_LOG_INFO, "client %llu (%s) "
		    "authenticated", (unsigned long long)c->id, c->peer);
		return inline_reply(out, env->id, json_pack("{s:s}", "proof",
		    proof));
	}
	if (rc == WITCH_EINVALID_REQUEST && env->data_raw != NULL &&
	    env->data_len > WITCH__BUILTIN_DATA_MAX)
		strlcpy(msg, "auth: data too large", sizeof(msg));
	atomic_fetch_add(&r->auth_failed, 1);
	witch__stats_error(&r->ctr, rc);
	if (witch__auth_limit_fail(&r->auth_limit, addr, r->now_ns))
		witch__rlog(r, WITCH_LOG_WARNING, "auth: %s failed %d times; "
		    "its attempts are refused for a while and no longer "
		    "logged", addr, WITCH__AUTH_LIMIT_BURST);
	else if (witch__auth_limit_allow(&r->auth_limit, addr, r->now_ns))
		witch__rlog(r, WITCH_LOG_WARNING, "auth: client %llu (%s) "
		    "failed: %s", (unsigned long long)c->id, c->peer, msg);
	rc = witch__reply_error(out, env->id, rc, msg);
	witch__conn_close(c, 0, "auth_failed", 1000);
	return rc;
}

bool
witch__auth_gate(struct witch__conn *c, struct witch__request_env *env)
{
	struct witch__reactor *r = c->r;
	const char *e = env->endpoint;

	if (strcmp(e, "hello") == 0 || strcmp(e, "ping") == 0 ||
	    strcmp(e, "auth") == 0)
		return true;
	atomic_fetch_add(&r->auth_refused, 1);
	atomic_fetch_add(&r->ctr.requests_failed, 1);
	if (env->oneway)
		return false;
	witch__conn_reply_error(c, env->id, WITCH_EUNAUTHORIZED,
	    witch__key_on(&r->opt.key) ?
	    "authentication required: this server has a key; authenticate "
	    "with the auth exchange after hello (witchctl --key-file FILE)" :
	    "protected mode: this server has no key and serves only loopback "
	    "and its control socket; give the server a key (witchd --key-file "
	    "FILE, key-file in witchd.conf) and the client the same key, or "
	    "run witchd --unprotected");
	return false;
}

/* The ids of one cancel, sorted, for one walk of the pool's queue. */
struct cancel_id {
	char	id[WITCH__ID_MAX + 1];
	bool	matched;
};

struct cancel_set {
	const struct witch__conn	*conn;
	struct cancel_id		*ids;
	size_t				 n;
};

static int
cancel_id_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cancel_id *)a)->id,
	    ((const struct cancel_id *)b)->id);
}

/* A job of this connection whose id is in the set (marked matched). */
static bool
match_job(const struct witch__job *job, void *arg)
{
	const struct witch__reqjob *rj = (const struct witch__reqjob *)job;
	struct cancel_set *set = arg;
	struct cancel_id *hit, *e;

	if (rj->conn != set->conn || (hit = bsearch(rj->id, set->ids, set->n,
	    sizeof(*set->ids), cancel_id_cmp)) == NULL)
		return false;
	/* The same id may be listed more than once. */
	for (e = hit; e >= set->ids && strcmp(e->id, rj->id) == 0; e--)
		e->matched = true;
	for (e = hit + 1; e < set->ids + set->n && strcmp(e->id, rj->id) == 0;
	    e++)
		e->matched = true;
	return true;
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

/*
 * At most WITCH__CANCEL_IDS_MAX ids in WITCH__CANCEL_DATA_MAX bytes: the
 * ids are scanned from the text, sorted, and matched in one walk of the
 * pool's queue under one lock.
 */
static int
builtin_cancel(struct witch__conn *c, struct witch__request_env *env,
    struct witch__buf *out)
{
	struct witch__jspan ids, v;
	struct witch__jmember m[] = { { "ids", 3, &ids } };
	struct cancel_set set = { c, NULL, 0 };
	enum witch__jtype top;
	size_t i, pos, n = 0, matched = 0;
	char msg[96];
	int rc;

	if (bi_data_refused(env, out, "cancel", WITCH__CANCEL_DATA_MAX, m, 1,
	    &top, &rc))
		return rc;
	if (top != WITCH__J_OBJECT || ids.type != WITCH__J_ARRAY)
		return witch__reply_error(out, env->id, WITCH_EINVALID_REQUEST,
		    "cancel: data must be {\"ids\": [...]}");
	for (pos = 0; witch__json_array_next(&ids, &pos, &v); n++)
		if (n == WITCH__CANCEL_IDS_MAX) {
			snprintf(msg, sizeof(msg), "cancel: at most %d ids "
			    "per request", WITCH__CANCEL_IDS_MAX);
			rc = witch__reply_error(out, env->id,
			    WITCH_EINVALID_REQUEST, msg);
			goto done;
		}
	if (n > 0 && (set.ids = witch__calloc(n, sizeof(*set.ids))) == NULL) {
		rc = witch__reply_error(out, env->id, WITCH_ENOMEM,
		    "out of memory");
		goto done;
	}
	for (pos = 0; witch__json_array_next(&ids, &pos, &v); set.n++)
		if ((rc = witch__id_format_span(&v, set.ids[set.n].id,
		    sizeof(set.ids[set.n].id))) != 0) {
			rc = witch__reply_error(out, env->id, rc,
			    rc == WITCH_ENOMEM ? "out of memory" :
			    "cancel: ids must be integers or strings");
			goto done;
		}
	if (set.n > 0) {
		qsort(set.ids, set.n, sizeof(*set.ids), cancel_id_cmp);
		(void)witch__pool_cancel(c->r->pool, match_job, &set);
	}
	for (i = 0; i < set.n; i++) {
		if (set.ids[i].matched)
			matched++;
		else
			precancel_add(c, set.ids[i].id, c->r->now_ns);
	}
	rc = inline_reply(out, env->id, json_pack("{s:I, s:I}",
	    "matched", (json_int_t)matched,
	    "remembered", (json_int_t)(set.n - matched)));
done:
	witch__free(set.ids);
	return rc;
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
	enum witch__jtype top;
	json_t *list;
	int rc;

	if (refuse_untrusted(c, env, out))
		return 0;
	if (bi_data_refused(env, out, "clients", WITCH__BUILTIN_DATA_MAX,
	    NULL, 0, &top, &rc))
		return rc;
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
	struct witch__jspan idv;
	struct witch__jmember m[] = { { "id", 2, &idv } };
	enum witch__jtype top;
	char num[24];
	json_int_t id;
	int rc;

	if (refuse_untrusted(c, env, out))
		return 0;
	if (bi_data_refused(env, out, "kill_client", WITCH__BUILTIN_DATA_MAX,
	    m, 1, &top, &rc))
		return rc;
	if (top != WITCH__J_OBJECT || idv.type != WITCH__J_INT ||
	    idv.len >= sizeof(num))
		return witch__reply_error(out, env->id, WITCH_EINVALID_REQUEST,
		    "kill_client: data must be {\"id\": <client id>}");
	memcpy(num, idv.p, idv.len);	/* validated: fits int64_t */
	num[idv.len] = '\0';
	id = strtoll(num, NULL, 10);
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
	enum witch__jtype top;
	int rc;

	if (refuse_untrusted(c, env, out))
		return 0;
	if (bi_data_refused(env, out, "monitor", WITCH__BUILTIN_DATA_MAX,
	    NULL, 0, &top, &rc))
		return rc;
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
	json_t *d, *big = NULL;
	char note[64];

	/* Data beyond the built-ins' limit is not parsed here: its size. */
	if (env->data_raw != NULL && env->data_len > WITCH__BUILTIN_DATA_MAX) {
		snprintf(note, sizeof(note), "(%zu bytes, not shown)",
		    env->data_len);
		big = json_string(note);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	d = json_pack("{s:f, s:I, s:s, s:s, s:o, s:O?, s:b}",
	    "time", ts.tv_sec + ts.tv_nsec / 1e9, "client", (json_int_t)c->id,
	    "addr", c->peer, "endpoint", env->endpoint,
	    "id", json_loads(env->id, JSON_DECODE_ANY, NULL),
	    "data", big != NULL ? big : witch__request_env_data(env),
	    "oneway", env->oneway);
	json_decref(big);
	if (d == NULL)
		return;
	for (m = r->conns; m != NULL; m = m->next) {
		if (!m->monitor || m == c || m->state != WITCH__CONN_OPEN)
			continue;
		witch__omsg_buf_init(&b);
		if (witch__reply_event(&b, "monitor", d) == 0)
			witch__conn_reply_buf(m, &b);
		else {
			witch__buf_free(&b);
			witch__conn_reply_lost(m);	/* a gap: close */
		}
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
		{ "auth", builtin_auth },
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
