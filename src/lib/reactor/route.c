/*
 * reactor/route.c: the endpoint table and the path of one request on the
 * reactor: scan the frame, look the endpoint up, then answer at once
 * (errors, connection built-ins, inline endpoints) or make a job of it
 * for this turn's batch to the pool.  Reactor thread; the table is built
 * before start and read-only afterwards.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "reactor/reactor.h"

/* Endpoint names: letters, digits and "_.-:/", 1..63 bytes. */
static bool
valid_endpoint_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > WITCH__NAME_MAX)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-:/") == n;
}

int
witch__endpoint_add(struct witch__reactor *r, const char *name,
    uint32_t mask, witch_handler_fn fn, void *ud, bool run_inline,
    witch__conn_builtin_fn conn_builtin)
{
	struct witch__endpoint *eps, *ep;
	size_t n;

	if (name == NULL || (fn == NULL) == (conn_builtin == NULL) ||
	    !valid_endpoint_name(name) || mask == 0)
		return WITCH_EINVAL;
	if (atomic_load(&r->phase) != WITCH__PHASE_NEW)
		return WITCH_ESTATE;
	for (n = 0; n < r->neps; n++)
		if (strcmp(r->eps[n].name, name) == 0)
			return WITCH_EEXISTS;
	eps = witch__reallocarray(r->eps, r->neps + 1, sizeof(*eps));
	if (eps == NULL)
		return WITCH_ENOMEM;
	r->eps = eps;
	ep = &eps[r->neps++];
	memset(ep, 0, sizeof(*ep));
	strlcpy(ep->name, name, sizeof(ep->name));
	ep->fn = fn;
	ep->ud = ud;
	ep->proto_mask = mask;
	ep->run_inline = run_inline;
	ep->conn_builtin = conn_builtin;
	return 0;
}

const struct witch__endpoint *
witch__endpoint_find(const struct witch__reactor *r, const char *name,
    int proto)
{
	size_t i;

	for (i = 0; i < r->neps; i++)
		if (r->eps[i].name[0] == name[0] &&
		    strcmp(r->eps[i].name, name) == 0)
			return (r->eps[i].proto_mask & (1u << proto)) ?
			    &r->eps[i] : NULL;
	return NULL;
}

/*
 * One count per read.  A job holds a reference to its connection and
 * counts in its inflight and decode_held; the worker that ends it takes
 * them back.  dispatch() (inlined into witch__route_frame) does not add
 * them per request: each is a locked read-modify-write, a full barrier
 * on x86 that waits for the stores into the job just written, cache
 * lines a worker last held (doc/performance.md, 2026-12-06 evening).
 * dispatch() counts the jobs of the read being decoded in c->acc_jobs
 * and c->acc_cost, plain fields of the reactor's, and witch__acc_flush
 * adds them with one atomic add each: once per read, plus once before
 * each connection built-in in it (a built-in submits first).
 *
 * Why that is safe:
 *   - No job reaches a worker before its counts are added: the reactor
 *     flushes in witch__batch_submit, before any job goes to the pool.
 *     The pool's mutex (or the reactor itself, for jobs it ends) then
 *     orders the adds before the subtractions of whoever ends the job,
 *     as it ordered the per-request adds.
 *     Workers ending earlier jobs subtract concurrently; until the
 *     flush they see the counters low by the pending jobs, which only
 *     the reactor acts on.
 *   - The connection cannot be freed with counts pending: the reactor
 *     holds its own reference until reap (loop.c), which runs after
 *     the turn's witch__batch_submit, and a connection reaches the
 *     dead list only through witch__conn_drop, which flushes.
 *   - What the reactor itself reads sees the pending jobs: admission
 *     adds acc_cost to decode_held; the decoder's return in
 *     witch__conn_read flushes, so the inflight high-water check below
 *     runs once per read; witch__conn_settle, witch__conn_close and
 *     witch__conn_drop flush first (defensive: the read already
 *     flushed).  Inline handlers run in the middle of a read with the
 *     counts pending; no public call reads them.
 *   - Only one connection is pending at a time (r->acc_conn); a read
 *     decodes one connection's frames, so the flush in dispatch() for
 *     another connection is a safeguard that does not run.
 *
 * Orders of each counter are unchanged: refs relaxed (a reference is
 * taken while another is held), inflight and decode_held seq_cst.  The
 * pairing witch__job_done documents is the reactor's store of want_done
 * then its load of inflight, against the worker's subtraction then its
 * load of want_done.  The add is not part of it: any store of want_done
 * (output_check's before the flush, the high-water one below after it)
 * comes before the reactor's load of inflight in witch__conn_settle,
 * which flushes first.
 */
void
witch__acc_flush_slow(struct witch__reactor *r)
{
	struct witch__conn *c = r->acc_conn;
	unsigned n = c->acc_jobs;

	r->acc_conn = NULL;
	c->acc_jobs = 0;
	atomic_fetch_add_explicit(&c->refs, n, memory_order_relaxed);
	atomic_fetch_add(&c->decode_held, c->acc_cost);
	c->acc_cost = 0;
	if (atomic_fetch_add(&c->inflight, n) + n >= WITCH__INFLIGHT_HIGH &&
	    !c->read_paused) {
		c->read_paused = true;
		witch__want_done(c);
	}
}

/* Submit every request parsed this turn; answer the excess overloaded. */
void
witch__batch_submit(struct witch__reactor *r)
{
	struct witch__reqjob *rj;
	size_t i, n, ok;
	bool stopping;

	witch__acc_flush(r);
	if (r->nbatch == 0)
		return;
	/* Requests of clients that left this turn are not worth running. */
	for (i = n = 0; i < r->nbatch; i++) {
		rj = (struct witch__reqjob *)r->batch[i];
		if (rj->conn->fd >= 0) {
			r->batch[n++] = &rj->job;
			continue;
		}
		atomic_fetch_add(&r->ctr.requests_failed, 1);
		witch__job_done(rj->conn);
		witch__job_release(&rj->job);
	}
	r->nbatch = n;
	ok = witch__pool_submit(r->pool, r->batch, r->nbatch);
	/* A pool that refuses because stop began is not overloaded. */
	stopping = atomic_load(&r->phase) != WITCH__PHASE_RUNNING;
	for (i = ok; i < r->nbatch; i++) {
		rj = (struct witch__reqjob *)r->batch[i];
		if (!stopping)
			atomic_fetch_add(&r->ctr.overloaded, 1);
		atomic_fetch_add(&r->ctr.requests_failed, 1);
		if (!rj->oneway)
			witch__conn_reply_error(rj->conn, rj->id, stopping ?
			    WITCH_ESHUTTING_DOWN : WITCH_EOVERLOADED, stopping ?
			    "server is shutting down" :
			    "request queue is full; retry later");
		witch__job_done(rj->conn);
		witch__job_release(&rj->job);
	}
	r->nbatch = 0;
}

/* True (and forgotten) if id was cancelled before it arrived. */
static bool
precancelled(struct witch__conn *c, const char *id)
{
	size_t i;

	for (i = 0; i < c->nprecancel; i++) {
		if (c->precancel[i].expires_ns > c->r->now_ns &&
		    strcmp(c->precancel[i].id, id) == 0) {
			c->precancel[i].expires_ns = 0;
			return true;
		}
	}
	return false;
}

/*
 * The common case of witch__conn_admit() without a call: within both
 * budgets.  Anything else (a refusal, or a check that must be redone
 * with its error reply) goes to witch__conn_admit(), which decides
 * again from the same fields; decode_held only falls meanwhile (workers
 * release), so a request admitted here is admitted there too.
 */
static inline bool
admit(struct witch__conn *c, const struct witch__request_env *env,
    bool is_inline)
{
	const struct witch__reactor *r = c->r;
	size_t budget = r->opt.decode_budget;

	if ((r->opt.max_depth == 0 || env->depth <= r->opt.max_depth) &&
	    (budget == 0 || (env->decode_cost <= budget && (is_inline ||
	    atomic_load_explicit(&c->decode_held, memory_order_relaxed) +
	    c->acc_cost + env->decode_cost <= budget))))
		return true;
	return witch__conn_admit(c, env, is_inline);
}

/* Make a job of a valid request and add it to this turn's batch. */
static void
dispatch(struct witch__conn *c, struct witch__request_env *env,
    const struct witch__endpoint *ep)
{
	struct witch__reactor *r = c->r;
	struct witch__reqjob *rj;
	struct witch__job **nb;

	if (r->nbatch == r->batch_cap) {
		nb = witch__reallocarray(r->batch, r->batch_cap * 2,
		    sizeof(*nb));
		if (nb == NULL)
			goto overloaded;
		r->batch = nb;
		r->batch_cap *= 2;
	}
	/*
	 * One allocation: the job and, on the fast path, the data text;
	 * small ones recycled through r->jobs (no malloc, and no chunk
	 * wandering from the reactor's allocator cache to a worker's).
	 */
	if (env->data_len <= WITCH__JOB_DATA_SMALL)
		rj = witch__freelist_get(&r->jobs);
	else
		rj = witch__malloc(sizeof(*rj) + env->data_len);
	if (rj == NULL)
		goto overloaded;
	/* Every field is set below (no memset of the 240-byte struct). */
	rj->job.next = rj->job.prev = NULL;
	rj->job.deadline_ns = 0;
	rj->raw = NULL;
	rj->raw_len = 0;
	rj->cached = env->data_len <= WITCH__JOB_DATA_SMALL;
	if (rj->cached)		/* ASan: past the data is out of bounds */
		witch__freelist_poison_tail(&r->jobs, rj,
		    sizeof(*rj) + env->data_len);
	if (env->data_raw != NULL) {
		memcpy(rj + 1, env->data_raw, env->data_len);
		rj->raw = (const char *)(rj + 1);
		rj->raw_len = env->data_len;
	}
	rj->job.ops = &witch__reqjob_ops;
	atomic_init(&rj->job.cancelled, false);
	if (env->has_deadline)
		rj->job.deadline_ns = r->now_ns +
		    (uint64_t)env->deadline_ms * 1000000u;
	rj->conn = c;
	rj->ep = ep;
	rj->root = env->root;		/* the job owns the request now */
	env->root = NULL;
	rj->data = env->data;
	rj->oneway = env->oneway;
	rj->proto = c->proto;
	rj->t0_ns = r->now_ns;
	rj->decode_cost = env->decode_cost;	/* released with the job */
	memcpy(rj->id, env->id, sizeof(rj->id));
	/* Its reference, inflight and decode cost: counted per read. */
	if (r->acc_conn != c) {
		witch__acc_flush(r);
		r->acc_conn = c;
	}
	c->acc_jobs++;
	c->acc_cost += rj->decode_cost;
	r->batch[r->nbatch++] = &rj->job;
	return;
overloaded:
	atomic_fetch_add(&r->ctr.overloaded, 1);
	atomic_fetch_add(&r->ctr.requests_failed, 1);
	if (!env->oneway)
		witch__conn_reply_error(c, env->id, WITCH_EOVERLOADED,
		    "out of memory");
}

/*
 * Run an inline endpoint's handler here, on the reactor, with the request
 * still in the read buffer: the job lives on the stack, "data" is parsed
 * only if the handler asks, and the reply joins this turn's write.
 */
static void
run_inline(struct witch__conn *c, struct witch__request_env *env,
    const struct witch__endpoint *ep)
{
	struct witch__reqjob rj;
	struct witch_request req;
	int rc;

	memset(&rj.job, 0, sizeof(rj.job));
	atomic_init(&rj.job.cancelled, false);
	rj.conn = c;
	rj.ep = ep;
	rj.root = env->root;		/* ours until the end of this call */
	env->root = NULL;
	rj.data = env->data;
	rj.raw = env->data_raw;
	rj.raw_len = env->data_raw != NULL ? env->data_len : 0;
	rj.oneway = env->oneway;
	rj.proto = c->proto;
	rj.t0_ns = c->r->now_ns;
	memcpy(rj.id, env->id, sizeof(rj.id));
	if (!rj.oneway && !witch__obuf_ready(c)) {
		/* No memory for the reply: do not run what cannot answer. */
		atomic_fetch_add(&c->r->ctr.requests_failed, 1);
		witch__count_call(c->r, ep, false, rj.t0_ns);
		witch__stats_error(&c->r->ctr, WITCH_ENOMEM);
		json_decref(rj.root);
		witch__conn_reply_lost(c);
		return;
	}
	rc = witch__handler_call(&rj, &req);
	/* Straight into this turn's output: no allocation per reply. */
	if (witch__job_reply(&rj, &req, rc, &c->obuf))
		witch__turn_add(c);
	else if (!rj.oneway)
		witch__conn_reply_lost(c);
	json_decref(req.result);
	witch__request_raw_free(&req);
	json_decref(rj.root);
}

/*
 * Output limits for the reactor's own frames, checked as they are built:
 * above the soft limit stop reading (conn_read looks before each read;
 * conn_settle resumes below half), above the hard limit stop decoding
 * (WITCH__OUTPUT_OVER_HARD: conn_read then drops the client, output_drop).
 */
static int
output_check(struct witch__conn *c)
{
	size_t pending = c->obuf.len + witch__oqueue_bytes(&c->oq);

	if (pending > witch__out_hard(c->r))
		return WITCH__OUTPUT_OVER_HARD;
	if (pending > witch__out_soft(c->r) && !c->read_paused) {
		c->read_paused = true;
		witch__want_done(c);
	}
	return 0;
}

/* Decoder callback: one complete payload from c. */
int
witch__route_frame(void *ud, const char *payload, size_t len)
{
	struct witch__conn *c = ud;
	struct witch__reactor *r = c->r;
	struct witch__request_env env;
	const struct witch__endpoint *ep;
	struct witch__buf b;
	char msg[160];
	int rc;

	if (c->state != WITCH__CONN_OPEN)
		return 0;	/* closing: input is discarded */
	c->got_frame = true;
	c->active_ns = r->now_ns;
	c->nrequests++;
	rc = witch__request_scan(payload, len, &env, msg, sizeof(msg));
	if (rc != 0) {
		atomic_fetch_add(&r->ctr.protocol_errors, 1);
		atomic_fetch_add(&r->ctr.requests_failed, 1);
		if (!env.oneway)
			witch__conn_reply_error(c, env.id, rc, msg);
		return 0;
	}
	if (r->nmonitors > 0)
		witch__monitor_feed(c, &env);
	if (env.has_id && c->nprecancel > 0 && precancelled(c, env.id)) {
		atomic_fetch_add(&r->ctr.requests_failed, 1);
		if (!env.oneway)
			witch__conn_reply_error(c, env.id, WITCH_ECANCELLED,
			    "cancelled before it arrived");
		goto done;
	}
	/* Before authentication: hello, ping and auth only (auth.md). */
	if (!c->authed && !witch__auth_gate(c, &env))
		goto done;
	/* One lookup; built-ins answered here are served while draining. */
	ep = witch__endpoint_find(r, env.endpoint, c->proto);
	if (ep != NULL && ep->conn_builtin != NULL) {
		/* Earlier requests must be in the pool before a cancel. */
		witch__batch_submit(r);
		witch__omsg_buf_init(&b);
		ep->conn_builtin(c, &env, &b);
		if (env.oneway)
			witch__buf_free(&b);
		else
			witch__conn_reply_buf(c, &b);
		goto done;
	}
	if (atomic_load(&r->phase) != WITCH__PHASE_RUNNING) {
		atomic_fetch_add(&r->ctr.requests_failed, 1);
		if (!env.oneway)
			witch__conn_reply_error(c, env.id, WITCH_ESHUTTING_DOWN,
			    "server is shutting down");
		goto done;
	}
	if (ep == NULL) {
		atomic_fetch_add(&r->ctr.requests_failed, 1);
		snprintf(msg, sizeof(msg), "no endpoint named '%.63s' in "
		    "protocol %s", env.endpoint, r->opt.protocols[c->proto]);
		if (!env.oneway)
			witch__conn_reply_error(c, env.id,
			    WITCH_EUNKNOWN_ENDPOINT, msg);
		goto done;
	}
	if (env.has_deadline && env.deadline_ms == 0) {
		atomic_fetch_add(&r->ctr.requests_failed, 1);
		if (!env.oneway)
			witch__conn_reply_error(c, env.id, WITCH_ETIMEOUT,
			    "deadline_ms is 0: no time to run");
		goto done;
	}
	if (!admit(c, &env, ep->run_inline))
		goto done;
	if (ep->run_inline)
		run_inline(c, &env, ep);
	else
		dispatch(c, &env, ep);
done:
	witch__request_env_clear(&env);
	/*
	 * Replies built here (inline handlers above all) grow c->obuf while
	 * the rest of this read is decoded: apply the output limits now,
	 * per frame, as Redis does per reply, not only at the next flush.
	 */
	if (c->obuf.len > witch__out_soft(r))
		return output_check(c);
	return 0;
}
