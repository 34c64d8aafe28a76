/*
 * reactor/job.c: what workers do with a request (the pool's job
 * operations), the reply each handler's outcome becomes, and the
 * witch_request_* accessors handlers call.  Worker threads, and the
 * reactor for inline endpoints.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "proto/scan.h"
#include "reactor/reactor.h"

/* The server whose handler this thread is running, if any. */
_Thread_local struct witch__reactor *witch__tls_handler
    __attribute__((tls_model("initial-exec")));

/* witch__count_call with the clock already read (now_ns). */
static inline void
count_call_at(struct witch__reactor *r, const struct witch__endpoint *ep,
    bool ok, uint64_t t0_ns, uint64_t now_ns)
{
	struct witch__endpoint *e = (struct witch__endpoint *)(uintptr_t)ep;

	atomic_fetch_add_explicit(&e->calls, 1, memory_order_relaxed);
	if (!ok)
		atomic_fetch_add_explicit(&e->failures, 1,
		    memory_order_relaxed);
	witch__stats_latency(&r->ctr, (now_ns - t0_ns) / 1000u);
}

void
witch__count_call(struct witch__reactor *r, const struct witch__endpoint *ep,
    bool ok, uint64_t t0_ns)
{
	count_call_at(r, ep, ok, t0_ns, witch__now_ns());
}

/* Whether a handler's outcome (its return code and request) succeeded. */
static inline bool
job_ok(const struct witch_request *req, int rc)
{
	int code = req->err != 0 ? req->err : rc;

	return code >= 0 && rc >= 0;
}

/*
 * Append the reply of the handler's outcome to b (its calls and latency
 * are the caller's to count; an error reply's code is counted here).
 * False: nothing appended (oneway, or no memory for the frame; b is
 * then as it was).
 */
static inline bool
job_reply_frame(struct witch__reqjob *rj, struct witch_request *req, int rc,
    struct witch__buf *b)
{
	struct witch__reactor *r = rj->conn->r;
	int code = req->err != 0 ? req->err : rc;
	bool ok = job_ok(req, rc);

	if (rj->oneway) {
		if (!ok)
			witch__stats_error(&r->ctr, code);
		return false;
	}
	if (ok && req->nraw > 0) {
		rc = witch__reply_result_raw(b, rj->id, req->raw, req->raw_len,
		    req->nraw, WITCH_MAX_FRAME_CEILING);
		if (rc == WITCH_ETOO_LARGE)
			rc = witch__reply_error(b, rj->id, WITCH_EHANDLER,
			    "result larger than the 64 MiB frame ceiling");
	} else if (ok) {
		rc = witch__reply_result(b, rj->id, req->result,
		    WITCH_MAX_FRAME_CEILING);
		if (rc == WITCH_ETOO_LARGE)
			rc = witch__reply_error(b, rj->id, WITCH_EHANDLER,
			    "result larger than the 64 MiB frame ceiling");
		else if (rc == WITCH_EINVAL)	/* a handler's bug, not memory */
			rc = witch__reply_error(b, rj->id, WITCH_EHANDLER,
			    "result cannot be written as JSON");
	} else {
		if (!witch__err_known(code))
			code = WITCH_EHANDLER;
		witch__stats_error(&r->ctr, code);
		rc = witch__reply_error(b, rj->id, code, req->msg[0] != '\0' ?
		    req->msg : witch_strerror(code));
	}
	return rc == 0;
}

bool
witch__job_reply(struct witch__reqjob *rj, struct witch_request *req, int rc,
    struct witch__buf *b)
{
	struct witch__reactor *r = rj->conn->r;
	bool ok = job_ok(req, rc);

	if (ok)
		atomic_fetch_add(&r->ctr.requests_served, 1);
	else
		atomic_fetch_add(&r->ctr.requests_failed, 1);
	count_call_at(r, rj->ep, ok, rj->t0_ns, witch__now_ns());
	return job_reply_frame(rj, req, rc, b);
}

/*
 * Replies a worker has built but not yet pushed: all for one connection.
 *
 * A worker that goes straight on from one job of a connection to the
 * next job of the same connection (a pipelined batch: the reactor submits
 * a read's requests together) appends each reply to one buffer and
 * pushes it as one message when the batch ends: when the next job is for
 * another connection, when the pool finds its queue empty (the job ops'
 * idle hook, called before the last job's release), when a job is
 * dropped on this worker, when the buffer is big or old (PEND_BYTES,
 * PEND_NS), or when a handler was slow (PEND_NS: a reply must not wait
 * for a slow handler of the next job).  One allocation, one push, one
 * schedule and one inflight update per batch instead of per request;
 * the reactor frees the message on its own thread as before.
 *
 * Ordering: `pend' is thread-local, so it needs no synchronisation of
 * its own.  What other threads see is unchanged in kind: the buffer is
 * published with witch__conn_send_buf (the output queue's release CAS
 * and the scheduled flag, output-queue.md), and only after that push
 * are the batch's jobs counted out of c->inflight (one seq_cst
 * fetch_sub for all of them, then the seq_cst load of want_done, the
 * pairing witch__job_done documents).  So the reactor still never sees
 * inflight at zero while one of those replies is unpublished, which is
 * what its close sequence relies on.  A pending batch holds its own
 * reference to the connection; the jobs' releases may drop theirs.
 */
#define PEND_BYTES	16384	/* push when the batch is this big */
#define PEND_NS		20000	/* ... or its first reply this old (ns) */

/* reactor.h: PEND_NS, unless a test changed it. */
_Atomic uint64_t witch__pend_ns = PEND_NS;

struct pend {
	struct witch__conn	*conn;	/* referenced; NULL: nothing pending */
	struct witch__buf	 b;	/* omsg header, then frames */
	unsigned		 ndone;	/* jobs ended, not yet counted out */
	unsigned		 nconns;	/* connections served since the
						 * pool last had no work */
	uint64_t		 first_ns;	/* when the batch started */
	uint64_t		 last_ns;	/* when its last handler ended */
	size_t			 hint;	/* frame bytes of the last batch */
	/* A run of calls not yet added to the shared counters: */
	const struct witch__endpoint *ep;	/* their endpoint */
	unsigned		 calls;	/* how many (0: no run) */
	unsigned		 fails;	/* of which failed */
	unsigned		 lat_b;	/* their latency bucket */
};

/*
 * initial-exec: in a shared library the default model makes every access
 * a __tls_get_addr call (four per request here); this one is a load from
 * %fs.  It takes 96 bytes of the static TLS block (libwitch's
 * initial-exec variables: 160 bytes in all, with rel below (48),
 * witch__tls_handler and witch__pool_resumed_ns; the module's TLS
 * block, all of which is static, is 161 with the peer thread's flag:
 * `readelf -lW libwitch.so | grep TLS`), which glibc keeps a surplus of
 * for libraries that are dlopen()ed, as libwitch may be.
 */
static _Thread_local struct pend pend
    __attribute__((tls_model("initial-exec")));

void (*_Atomic witch__pend_push_hook)(void);

/*
 * Add pd's run of calls to the shared counters (r: the server of the
 * connection pd serves).  The run's calls share one endpoint and one
 * latency bucket, so a pipelined batch costs five atomic adds, not three
 * per request (c=50 P=16: one in seven of the worker's locked
 * instructions per request; doc/performance.md).  Called before the
 * batch's replies are published, so that a client that has a reply
 * also finds its call counted in the server's statistics.
 */
static void
pend_count_flush(struct pend *pd, struct witch__reactor *r)
{
	struct witch__endpoint *e;

	if (pd->calls == 0)
		return;
	e = (struct witch__endpoint *)(uintptr_t)pd->ep;
	atomic_fetch_add(&r->ctr.requests_served, pd->calls - pd->fails);
	atomic_fetch_add_explicit(&e->calls, pd->calls, memory_order_relaxed);
	if (pd->fails > 0) {
		atomic_fetch_add(&r->ctr.requests_failed, pd->fails);
		atomic_fetch_add_explicit(&e->failures, pd->fails,
		    memory_order_relaxed);
	}
	witch__stats_latency_n(&r->ctr, pd->lat_b, pd->calls);
	pd->calls = 0;
	pd->fails = 0;
}

/* Count a call of rj's endpoint that ended at now_ns into pd's run. */
static inline void
pend_count(struct pend *pd, const struct witch__reqjob *rj, bool ok,
    uint64_t now_ns)
{
	unsigned b = witch__stats_lat_bucket((now_ns - rj->t0_ns) / 1000u);

	if (pd->calls > 0 && (pd->ep != rj->ep || pd->lat_b != b))
		pend_count_flush(pd, rj->conn->r);
	pd->ep = rj->ep;
	pd->lat_b = b;
	pd->calls++;
	if (!ok)
		pd->fails++;
}

/*
 * Push this worker's pending replies and count their jobs out.  may_direct:
 * the worker served only this connection since the pool last had no
 * work for it, and the batch ends because the queue is empty or the
 * batch is big or old, not because another connection's job is next:
 * the one case where it may write the replies to the socket itself
 * (witch__conn_write_direct).  Replies for
 * several connections go to the reactor, which writes them in one batch
 * (c=50 P=1: 25-35% more server CPU per request when workers wrote
 * them, the reactor waking more often for fewer events).
 */
static void
pend_flush(struct pend *pd, bool may_direct)
{
	struct witch__conn *c = pd->conn;
	void (*hook)(void);

	if (c == NULL)
		return;
	pd->conn = NULL;
	pend_count_flush(pd, c->r);
	if (pd->b.len > sizeof(struct witch__omsg)) {
		/*
		 * The next batch starts with room for this one's frames, so
		 * it is allocated once rather than grown by realloc from
		 * 256 bytes; a buffer less than half used is cut to its
		 * length before it is queued, so a hint from a big batch
		 * never holds more than twice a small one's bytes.
		 */
		pd->hint = pd->b.len - sizeof(struct witch__omsg);
		if (pd->hint > PEND_BYTES)
			pd->hint = PEND_BYTES;
		witch__buf_fit(&pd->b);
		if ((hook = atomic_load_explicit(&witch__pend_push_hook,
		    memory_order_relaxed)) != NULL)
			hook();
		may_direct = may_direct || atomic_load_explicit(
		    &witch__direct_always, memory_order_relaxed);
		if (!may_direct || !witch__conn_write_direct(c, &pd->b))
			witch__conn_send_buf(c, &pd->b);
	}
	else
		witch__buf_free(&pd->b);
	witch__job_done_n(c, pd->ndone);
	pd->ndone = 0;
	witch__conn_unref(c);
}

static void
job_run(struct witch__job *job)
{
	struct witch__reqjob *rj = (struct witch__reqjob *)job;
	struct witch__conn *c = rj->conn;
	struct pend *pd = &pend;
	struct witch_request req;
	uint64_t now, start, pend_ns;
	int rc;

	if (pd->conn != c) {
		pend_flush(pd, false);
		pd->nconns++;
		pd->conn = c;
		witch__conn_ref(c);
		witch__omsg_buf_init_hint(&pd->b, pd->hint);
	}
	rc = witch__handler_call(rj, &req);
	now = witch__now_ns();
	pend_count(pd, rj, job_ok(&req, rc), now);
	if (!job_reply_frame(rj, &req, rc, &pd->b) && !rj->oneway) {
		/* Earlier replies first, then the gap that closes c. */
		pd->ndone++;
		pend_flush(pd, false);
		witch__conn_reply_lost(c);
	} else {
		/*
		 * A reply waits for the next job's handler, whose length is
		 * unknown: keep batching only while handlers are quick.  This
		 * one ran at most since the latest of the request's read, the
		 * previous handler's end and the worker's return from idle
		 * (an upper bound).  Without the last, a worker woken for a
		 * turn's jobs took its wakeup (and the turn: t0 is when the
		 * reactor's turn began) for a slow handler and flushed after
		 * the first reply of every batch: c=50 P=16 sent 1.26 send(2)
		 * per read, not 1, and served 10% fewer requests per second
		 * (doc/performance.md).
		 */
		start = rj->t0_ns > pd->last_ns ? rj->t0_ns : pd->last_ns;
		if (witch__pool_resumed_ns > start)
			start = witch__pool_resumed_ns;
		if (pd->ndone++ == 0)
			pd->first_ns = now;
		pd->last_ns = now;
		pend_ns = atomic_load_explicit(&witch__pend_ns,
		    memory_order_relaxed);
		if (pd->b.len >= PEND_BYTES || now - pd->first_ns >= pend_ns ||
		    now - start >= pend_ns)
			pend_flush(pd, pd->nconns <= 1);
	}
	json_decref(req.result);
	witch__request_raw_free(&req);
}

/* The pool found its queue empty after this job: publish the batch. */
static void
job_idle(struct witch__job *job)
{
	(void)job;
	/*
	 * Direct only if this worker served no other connection since it
	 * was last idle: replies it pushed for others have woken the
	 * reactor already, which then writes this one in the same batch.
	 */
	pend_flush(&pend, pend.nconns <= 1);
	pend.nconns = 0;
}

static void
job_drop(struct witch__job *job, int reason)
{
	struct witch__reqjob *rj = (struct witch__reqjob *)job;
	struct witch__conn *c = rj->conn;
	const char *msg;

	pend_flush(&pend, false);	/* a worker's batch goes out first */
	atomic_fetch_add(&c->r->ctr.requests_failed, 1);
	witch__count_call(c->r, rj->ep, false, rj->t0_ns);
	if (!rj->oneway) {
		switch (reason) {
		case WITCH_ETIMEOUT:
			msg = "deadline passed before a worker was free";
			break;
		case WITCH_ECANCELLED:
			msg = "cancelled before it ran";
			break;
		case WITCH_ESHUTTING_DOWN:
			msg = "server is shutting down";
			break;
		default:
			msg = witch_strerror(reason);
			break;
		}
		witch__conn_send_error(c, rj->id, reason, msg);
	}
	witch__job_done(c);
}

void
witch__job_release(struct witch__job *job)
{
	struct witch__reqjob *rj = (struct witch__reqjob *)job;
	struct witch__reactor *r = rj->conn->r;	/* outlives its jobs */

	json_decref(rj->root);
	atomic_fetch_sub(&rj->conn->decode_held, rj->decode_cost);
	witch__conn_unref(rj->conn);
	/* Back to the reactor's cache: the job is not touched after this. */
	if (rj->cached)
		witch__freelist_put(&r->jobs, rj);
	else
		witch__free(rj);
}

/*
 * What a worker's releases left to do (release_defer): a run of
 * references to one connection, and a chain of job blocks for one
 * server's cache, finished by job_release_flush, which the pool calls
 * before it counts the jobs out (pool.h).  Thread-local, like pend.
 * decode_held is not deferred: the reactor refuses a request that would
 * exceed the connection's decode budget, so the cost of a job whose
 * reply the client may already hold goes back at once, as before.
 */
struct rel {
	struct witch__conn	*conn;	/* references to drop; NULL: none */
	unsigned		 nrefs;
	struct witch__freelist	*fl;	/* the blocks' cache */
	struct witch__flnode	*head, *tail;
	size_t			 nblocks;
};

/* initial-exec, as pend above. */
static _Thread_local struct rel rel
    __attribute__((tls_model("initial-exec")));

static void
rel_blocks_flush(struct rel *rl)
{
	if (rl->nblocks == 0)
		return;
	witch__freelist_put_chain(rl->fl, rl->head, rl->tail, rl->nblocks);
	rl->head = rl->tail = NULL;
	rl->nblocks = 0;
}

static void
rel_conn_flush(struct rel *rl)
{
	if (rl->conn == NULL)
		return;
	witch__conn_unref_n(rl->conn, rl->nrefs);
	rl->conn = NULL;
	rl->nrefs = 0;
}

static void
job_release_flush(void)
{
	/*
	 * Either order: the blocks' cache is the server's (r->jobs), which
	 * is destroyed only after the workers were joined, and the
	 * connection's last reference may go with this unref, but the
	 * blocks hold nothing of it.
	 */
	rel_blocks_flush(&rel);
	rel_conn_flush(&rel);
}

static void
job_release_defer(struct witch__job *job)
{
	struct witch__reqjob *rj = (struct witch__reqjob *)job;
	struct witch__conn *c = rj->conn;
	struct witch__reactor *r = c->r;
	struct witch__flnode *n = (struct witch__flnode *)(void *)rj;
	struct rel *rl = &rel;

	json_decref(rj->root);
	atomic_fetch_sub(&c->decode_held, rj->decode_cost);
	if (rl->conn != c) {
		rel_conn_flush(rl);
		rl->conn = c;
	}
	rl->nrefs++;
	if (!rj->cached) {
		witch__free(rj);
		return;
	}
	/*
	 * The job is not touched after this but for its link: poisoned
	 * now (AddressSanitizer builds), not only when its chain is
	 * pushed, so a use after this release is reported at once.
	 */
	if (rl->nblocks > 0 && rl->fl != &r->jobs)
		rel_blocks_flush(rl);
	rl->fl = &r->jobs;
	n->next = NULL;
	witch__freelist_poison_tail(&r->jobs, n, sizeof(*n));
	if (rl->tail != NULL)
		rl->tail->next = n;
	else
		rl->head = n;
	rl->tail = n;
	rl->nblocks++;
}

const struct witch__job_ops witch__reqjob_ops = {
	job_run, job_drop, witch__job_release, job_idle,
	job_release_defer, job_release_flush
};

/* ---- request accessors (worker thread, during the handler) ---------- */

json_t *
witch_request_data(const witch_request_t *req)
{
	struct witch__reqjob *rj = req->rj;

	/* Parsed on first use, on this worker (validated by the scanner). */
	if (rj->data == NULL && rj->raw != NULL && rj->root == NULL) {
		rj->root = json_loadb(rj->raw, rj->raw_len,
		    JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		rj->data = rj->root;
	}
	/* json_null() is a static singleton in jansson: no refcount races. */
	return rj->data != NULL ? rj->data : json_null();
}

const char *
witch_request_endpoint(const witch_request_t *req)
{
	return req->rj->ep->name;
}

uint64_t
witch_request_client_id(const witch_request_t *req)
{
	return req->rj->conn->id;
}

const char *
witch_request_remote_addr(const witch_request_t *req)
{
	return req->rj->conn->peer;
}

const char *
witch_request_protocol(const witch_request_t *req)
{
	return req->rj->conn->r->opt.protocols[req->rj->proto];
}

int64_t
witch_request_remaining_ms(const witch_request_t *req)
{
	uint64_t now, dl = req->rj->job.deadline_ns;

	if (dl == 0)
		return -1;
	now = witch__now_ns();
	return now >= dl ? 0 : (int64_t)((dl - now) / 1000000u);
}

bool
witch_request_cancelled(const witch_request_t *req)
{
	return atomic_load_explicit(&req->rj->job.cancelled,
	    memory_order_acquire) ||
	    atomic_load_explicit(&req->rj->conn->closed,
	    memory_order_acquire);
}

witch_server_t *
witch_request_server(const witch_request_t *req)
{
	return req->rj->conn->r->owner;
}

int
witch_request_reply(witch_request_t *req, json_t *result)
{
	if (req->result != NULL)
		json_decref(req->result);
	req->result = result;
	req->nraw = 0;
	witch__request_raw_free(req);
	return 0;
}

int
witch_request_reply_raw(witch_request_t *req, const char *json_text,
    size_t len)
{
	enum witch__jtype top;
	bool escaped;
	char *copy;

	if (req == NULL || json_text == NULL)
		return WITCH_EINVAL;
	if (len > WITCH_MAX_FRAME_CEILING)
		return WITCH_ETOO_LARGE;
	/* The same validator as requests: what jansson would accept. */
	if (witch__json_scan(json_text, len, &top, NULL, 0, &escaped) != 0)
		return WITCH_EPARSE;
	if ((copy = witch__malloc(len > 0 ? len : 1)) == NULL)
		return WITCH_ENOMEM;
	memcpy(copy, json_text, len);
	witch__request_reply_parts(req, (const char *const *)&copy, &len, 1);
	req->raw_own = copy;
	return 0;
}

int
witch_request_error(witch_request_t *req, int code, const char *fmt, ...)
{
	va_list ap;

	if (!witch__err_known(code))
		code = WITCH_EHANDLER;
	req->err = code;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(req->msg, sizeof(req->msg), fmt, ap);
		va_end(ap);
	} else
		strlcpy(req->msg, witch_strerror(code), sizeof(req->msg));
	return code;
}
