/*
 * reactor/reactor.c: the reactor thread.  It owns every socket: it
 * accepts, reads until EAGAIN (or a per-turn budget), decodes frames,
 * parses requests, answers the cheap connection-level built-ins inline,
 * hands everything else to the worker pool in one batch per turn, and
 * drains the per-connection output queues with batched writes.
 *
 * One turn of the loop:
 *   1. wait for events (timeout 0 when work is carried over, else the
 *      housekeeping tick);
 *   2. handle events: wakeup, listener, connections;
 *   3. the ready list: connections whose workers queued replies;
 *   4. the turn list: connections carried over (read budget spent,
 *      inline replies to flush, reading resumed);
 *   5. submit the batch of parsed requests to the pool;
 *   6. housekeeping when the tick is due: timeouts, deadlines, accept;
 *   7. reap: drop the reactor's reference of connections closed this turn.
 * See doc/internals/reactor.md.
 */
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "server/server_int.h"
#include "net/sock.h"

#define MAX_EVENTS 256
#define MAX_IOV 64
/* on_frame: c's output passed the hard limit; stop decoding, drop it. */
#define OUTPUT_OVER_HARD (-100000)

static void conn_abort(struct witch__conn *, const char *);
static void conn_flush(struct witch__conn *);
static void output_drop(struct witch__conn *);
static void conn_read(struct witch__conn *);
static void conn_settle(struct witch__conn *);

/* ---- jobs: what workers do with a request ---------------------------- */

/* A job ended (ran or dropped): account it, wake the reactor if it asked. */
static void
job_done(struct witch__conn *c)
{
	atomic_fetch_sub(&c->inflight, 1);
	/*
	 * seq_cst pairs with the reactor's store of want_done followed by
	 * its load of inflight: one of the two sides sees the other.
	 */
	if (atomic_load(&c->want_done))
		witch__conn_schedule(c);
}

/*
 * Account the handler's outcome and append its reply frame to b.
 * False: nothing appended (oneway, or no memory for the frame; b is then
 * as it was).
 */
static bool
reply_frame(struct witch__reqjob *rj, struct witch_request *req, int rc,
    struct witch__buf *b)
{
	struct witch_server *srv = rj->conn->srv;
	int code = req->err != 0 ? req->err : rc;
	bool ok = code >= 0 && rc >= 0;

	if (ok)
		atomic_fetch_add(&srv->ctr.requests_served, 1);
	else
		atomic_fetch_add(&srv->ctr.requests_failed, 1);
	witch__count_call(rj->ep, ok, srv, rj->t0_ns);
	if (rj->oneway) {
		if (!ok)
			witch__count_error(srv, code);
		return false;
	}
	if (ok && req->raw_echo) {
		const char *parts[] = { "{\"echo\":", rj->raw, "}" };
		size_t lens[] = { 8, rj->raw_len, 1 };

		rc = witch__reply_result_raw(b, rj->id, parts, lens, 3,
		    WITCH_MAX_FRAME_CEILING);
		if (rc == WITCH_ETOO_LARGE)
			rc = witch__reply_error(b, rj->id, WITCH_EHANDLER,
			    "result larger than the 64 MiB frame ceiling");
	} else if (ok) {
		rc = witch__reply_result(b, rj->id, req->result,
		    WITCH_MAX_FRAME_CEILING);
		if (rc == WITCH_ETOO_LARGE)
			rc = witch__reply_error(b, rj->id, WITCH_EHANDLER,
			    "result larger than the 64 MiB frame ceiling");
	} else {
		if (strcmp(witch_err_name(code), "unknown") == 0)
			code = WITCH_EHANDLER;
		witch__count_error(srv, code);
		rc = witch__reply_error(b, rj->id, code, req->msg[0] != '\0' ?
		    req->msg : witch_strerror(code));
	}
	return rc == 0;
}

/* The server whose handler this thread is running, if any. */
_Thread_local struct witch_server *witch__tls_handler_srv;

/* Call the endpoint's handler; the caller owns req->result afterwards. */
static int
handler_call(struct witch__reqjob *rj, struct witch_request *req)
{
	int rc;

	memset(req, 0, sizeof(*req));
	req->rj = rj;
	witch__tls_handler_srv = rj->conn->srv;
	rc = rj->ep->fn(req, rj->ep->ud);
	witch__tls_handler_srv = NULL;
	return rc;
}

static void
job_run(struct witch__job *job)
{
	struct witch__reqjob *rj = (struct witch__reqjob *)job;
	struct witch_request req;
	struct witch__buf b;
	int rc;

	rc = handler_call(rj, &req);
	witch__omsg_buf_init(&b);
	if (reply_frame(rj, &req, rc, &b))
		witch__conn_send_buf(rj->conn, &b);
	else
		witch__buf_free(&b);
	json_decref(req.result);
	job_done(rj->conn);
}

static void
job_drop(struct witch__job *job, int reason)
{
	struct witch__reqjob *rj = (struct witch__reqjob *)job;
	struct witch__conn *c = rj->conn;
	const char *msg;

	atomic_fetch_add(&c->srv->ctr.requests_failed, 1);
	witch__count_call(rj->ep, false, c->srv, rj->t0_ns);
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
	job_done(c);
}

static void
job_release(struct witch__job *job)
{
	struct witch__reqjob *rj = (struct witch__reqjob *)job;
	struct witch_server *srv = rj->conn->srv;	/* outlives its jobs */

	json_decref(rj->root);
	witch__conn_unref(rj->conn);
	/* Back to the reactor's cache: the job is not touched after this. */
	if (rj->cached)
		witch__freelist_put(&srv->jobs, rj);
	else
		witch__free(rj);
}

const struct witch__job_ops witch__reqjob_ops = {
	job_run, job_drop, job_release
};

/* ---- small helpers ---------------------------------------------------- */

/* Output limits in force (witch_server_reconfigure may change them). */
static inline size_t
out_soft(struct witch_server *srv)
{
	return atomic_load_explicit(&srv->live.out_soft, memory_order_relaxed);
}

static inline size_t
out_hard(struct witch_server *srv)
{
	return atomic_load_explicit(&srv->live.out_hard, memory_order_relaxed);
}

/* Carry c over to the turn list (flush and/or continue reading). */
static void
turn_add(struct witch__conn *c)
{
	struct witch_server *srv = c->srv;

	if (c->on_turn || c->fd < 0)
		return;
	witch__conn_ref(c);
	c->on_turn = true;
	c->turn_next = srv->turn;
	srv->turn = c;
}

/* Room for the frames of a batch: one allocation per flush, usually. */
#define OBUF_INITIAL 4096

/*
 * The connection's reactor output buffer, ready for frames to be
 * appended (an omsg header in front).  False: out of memory.
 */
static bool
obuf_ready(struct witch__conn *c)
{
	static const struct witch__omsg hdr;

	if (c->obuf.len == 0) {
		/* One malloc: the batch's room first, then the header. */
		witch__buf_free(&c->obuf);
		witch__buf_init(&c->obuf, 0);
		(void)witch__buf_reserve(&c->obuf, OBUF_INITIAL);
		if (witch__buf_append(&c->obuf, &hdr, sizeof(hdr)) != 0)
			return false;
	}
	return true;
}

/*
 * Frames in c->obuf not yet handed to the output queue.  A buffer holding
 * only its header (a reply that failed to serialise) is nothing owed.
 */
static bool
obuf_pending(const struct witch__conn *c)
{
	return c->obuf.len > sizeof(struct witch__omsg);
}

/* Hand the reactor's frames to the output queue, as one message. */
static void
obuf_push(struct witch__conn *c)
{
	struct witch__omsg *m;

	if (c->obuf.len == 0)
		return;
	if ((m = witch__omsg_from_buf(&c->obuf)) != NULL)
		witch__oqueue_push(&c->oq, m);
	witch__buf_init(&c->obuf, 0);
}

/* Queue a frame built by the reactor itself and flush it this turn. */
void
witch__conn_reply_buf(struct witch__conn *c, struct witch__buf *b)
{
	size_t hdr = sizeof(struct witch__omsg);

	if (b->len > hdr && obuf_ready(c) &&
	    witch__buf_append(&c->obuf, b->data + hdr, b->len - hdr) == 0)
		turn_add(c);
	witch__buf_free(b);
}

/*
 * An error reply from the reactor (respecting nothing but the id), built
 * straight into the connection's output buffer.
 */
static void
reply_error(struct witch__conn *c, const char *id, int code, const char *msg)
{
	witch__count_error(c->srv, code);
	if (obuf_ready(c) && witch__reply_error(&c->obuf, id, code, msg) == 0)
		turn_add(c);
}

/* Ask workers to notify us when jobs end, then look ourselves. */
static void
want_done(struct witch__conn *c)
{
	atomic_store(&c->want_done, true);
}

/*
 * Stop taking requests from c: once the replies it is owed are written,
 * send the final frame (an error when code != 0, else a closing event
 * with reason, or nothing when both are 0/NULL), shut down our side and
 * wait briefly for the peer's FIN.
 */
static void
conn_finish(struct witch__conn *c, int code, const char *reason,
    unsigned wait_ms)
{
	if (c->fd < 0 || c->state != WITCH__CONN_OPEN)
		return;
	c->state = WITCH__CONN_CLOSING;
	c->final_code = code;
	c->final_reason = reason;
	c->deadline_ns = c->srv->now_ns + (uint64_t)wait_ms * 1000000u;
	want_done(c);
	turn_add(c);
}

void
witch__conn_kill(struct witch__conn *c, const char *reason)
{
	conn_finish(c, 0, reason, 1000);
}

/* Submit every request parsed this turn; answer the excess overloaded. */
static void
submit_batch(struct witch_server *srv)
{
	struct witch__reqjob *rj;
	size_t i, n, ok;
	bool stopping;

	if (srv->nbatch == 0)
		return;
	/* Requests of clients that left this turn are not worth running. */
	for (i = n = 0; i < srv->nbatch; i++) {
		rj = (struct witch__reqjob *)srv->batch[i];
		if (rj->conn->fd >= 0) {
			srv->batch[n++] = &rj->job;
			continue;
		}
		atomic_fetch_add(&srv->ctr.requests_failed, 1);
		job_done(rj->conn);
		job_release(&rj->job);
	}
	srv->nbatch = n;
	ok = witch__pool_submit(srv->pool, srv->batch, srv->nbatch);
	/* A pool that refuses because stop began is not overloaded. */
	stopping = atomic_load(&srv->phase) != WITCH__PHASE_RUNNING;
	for (i = ok; i < srv->nbatch; i++) {
		rj = (struct witch__reqjob *)srv->batch[i];
		if (!stopping)
			atomic_fetch_add(&srv->ctr.overloaded, 1);
		atomic_fetch_add(&srv->ctr.requests_failed, 1);
		if (!rj->oneway)
			reply_error(rj->conn, rj->id, stopping ?
			    WITCH_ESHUTTING_DOWN : WITCH_EOVERLOADED, stopping ?
			    "server is shutting down" :
			    "request queue is full; retry later");
		job_done(rj->conn);
		job_release(&rj->job);
	}
	srv->nbatch = 0;
}

/* True (and forgotten) if id was cancelled before it arrived. */
static bool
precancelled(struct witch__conn *c, const char *id)
{
	size_t i;

	for (i = 0; i < c->nprecancel; i++) {
		if (c->precancel[i].expires_ns > c->srv->now_ns &&
		    strcmp(c->precancel[i].id, id) == 0) {
			c->precancel[i].expires_ns = 0;
			return true;
		}
	}
	return false;
}

/* Make a job of a valid request and add it to this turn's batch. */
static void
dispatch(struct witch__conn *c, struct witch__request_env *env,
    const struct witch__endpoint *ep)
{
	struct witch_server *srv = c->srv;
	struct witch__reqjob *rj;
	struct witch__job **nb;

	if (srv->nbatch == srv->batch_cap) {
		nb = witch__reallocarray(srv->batch, srv->batch_cap * 2,
		    sizeof(*nb));
		if (nb == NULL)
			goto overloaded;
		srv->batch = nb;
		srv->batch_cap *= 2;
	}
	/*
	 * One allocation: the job and, on the fast path, the data text;
	 * small ones recycled through srv->jobs (no malloc, and no chunk
	 * wandering from the reactor's allocator cache to a worker's).
	 */
	if (env->data_len <= WITCH__JOB_DATA_SMALL)
		rj = witch__freelist_get(&srv->jobs);
	else
		rj = witch__malloc(sizeof(*rj) + env->data_len);
	if (rj == NULL)
		goto overloaded;
	memset(rj, 0, sizeof(*rj));
	rj->cached = env->data_len <= WITCH__JOB_DATA_SMALL;
	if (rj->cached)		/* ASan: past the data is out of bounds */
		witch__freelist_poison_tail(&srv->jobs, rj,
		    sizeof(*rj) + env->data_len);
	if (env->data_raw != NULL) {
		memcpy(rj + 1, env->data_raw, env->data_len);
		rj->raw = (const char *)(rj + 1);
		rj->raw_len = env->data_len;
	}
	rj->job.ops = &witch__reqjob_ops;
	atomic_init(&rj->job.cancelled, false);
	if (env->has_deadline)
		rj->job.deadline_ns = srv->now_ns +
		    (uint64_t)env->deadline_ms * 1000000u;
	rj->conn = c;
	witch__conn_ref(c);
	rj->ep = ep;
	rj->root = env->root;		/* the job owns the request now */
	env->root = NULL;
	rj->data = env->data;
	rj->oneway = env->oneway;
	rj->proto = c->proto;
	rj->t0_ns = srv->now_ns;
	memcpy(rj->id, env->id, sizeof(rj->id));
	if (atomic_fetch_add(&c->inflight, 1) + 1 >= WITCH__INFLIGHT_HIGH &&
	    !c->read_paused) {
		c->read_paused = true;
		want_done(c);
	}
	srv->batch[srv->nbatch++] = &rj->job;
	return;
overloaded:
	atomic_fetch_add(&srv->ctr.overloaded, 1);
	atomic_fetch_add(&srv->ctr.requests_failed, 1);
	if (!env->oneway)
		reply_error(c, env->id, WITCH_EOVERLOADED, "out of memory");
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
	rj.t0_ns = c->srv->now_ns;
	memcpy(rj.id, env->id, sizeof(rj.id));
	if (!rj.oneway && !obuf_ready(c)) {
		/* No memory for the reply: do not run what cannot answer. */
		atomic_fetch_add(&c->srv->ctr.requests_failed, 1);
		witch__count_call(ep, false, c->srv, rj.t0_ns);
		witch__count_error(c->srv, WITCH_ENOMEM);
		json_decref(rj.root);
		return;
	}
	rc = handler_call(&rj, &req);
	/* Straight into this turn's output: no allocation per reply. */
	if (reply_frame(&rj, &req, rc, &c->obuf))
		turn_add(c);
	json_decref(req.result);
	json_decref(rj.root);
}

/*
 * Output limits for the reactor's own frames, checked as they are built:
 * above the soft limit stop reading (conn_read looks before each read;
 * conn_settle resumes below half), above the hard limit stop decoding
 * (OUTPUT_OVER_HARD: conn_read then drops the client, output_drop).
 */
static int
output_check(struct witch__conn *c)
{
	size_t pending = c->obuf.len + witch__oqueue_bytes(&c->oq);

	if (pending > out_hard(c->srv))
		return OUTPUT_OVER_HARD;
	if (pending > out_soft(c->srv) && !c->read_paused) {
		c->read_paused = true;
		want_done(c);
	}
	return 0;
}

/* Decoder callback: one complete payload from c. */
static int
on_frame(void *ud, const char *payload, size_t len)
{
	struct witch__conn *c = ud;
	struct witch_server *srv = c->srv;
	struct witch__request_env env;
	const struct witch__endpoint *ep;
	struct witch__buf b;
	char msg[160];
	int rc;

	if (c->state != WITCH__CONN_OPEN)
		return 0;	/* closing: input is discarded */
	c->got_frame = true;
	c->active_ns = srv->now_ns;
	c->nrequests++;
	rc = witch__request_scan(payload, len, &env, msg, sizeof(msg));
	if (rc != 0) {
		atomic_fetch_add(&srv->ctr.protocol_errors, 1);
		atomic_fetch_add(&srv->ctr.requests_failed, 1);
		if (!env.oneway)
			reply_error(c, env.id, rc, msg);
		return 0;
	}
	if (srv->nmonitors > 0)
		witch__monitor_feed(c, &env);
	if (env.has_id && c->nprecancel > 0 && precancelled(c, env.id)) {
		atomic_fetch_add(&srv->ctr.requests_failed, 1);
		if (!env.oneway)
			reply_error(c, env.id, WITCH_ECANCELLED,
			    "cancelled before it arrived");
		goto done;
	}
	/* One lookup; built-ins answered here are served while draining. */
	ep = witch__endpoint_find(srv, env.endpoint, c->proto);
	if (ep != NULL && ep->inl != NULL) {
		/* Earlier requests must be in the pool before a cancel. */
		submit_batch(srv);
		witch__omsg_buf_init(&b);
		ep->inl(c, &env, &b);
		if (env.oneway)
			witch__buf_free(&b);
		else
			witch__conn_reply_buf(c, &b);
		goto done;
	}
	if (atomic_load(&srv->phase) != WITCH__PHASE_RUNNING) {
		atomic_fetch_add(&srv->ctr.requests_failed, 1);
		if (!env.oneway)
			reply_error(c, env.id, WITCH_ESHUTTING_DOWN,
			    "server is shutting down");
		goto done;
	}
	if (ep == NULL) {
		atomic_fetch_add(&srv->ctr.requests_failed, 1);
		snprintf(msg, sizeof(msg), "no endpoint named '%.63s' in "
		    "protocol %s", env.endpoint, srv->cfg.protocols[c->proto]);
		if (!env.oneway)
			reply_error(c, env.id, WITCH_EUNKNOWN_ENDPOINT, msg);
		goto done;
	}
	if (env.has_deadline && env.deadline_ms == 0) {
		atomic_fetch_add(&srv->ctr.requests_failed, 1);
		if (!env.oneway)
			reply_error(c, env.id, WITCH_ETIMEOUT,
			    "deadline_ms is 0: no time to run");
		goto done;
	}
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
	if (c->obuf.len > out_soft(srv))
		return output_check(c);
	return 0;
}

/* ---- connection I/O ---------------------------------------------------- */

static void
conn_unlink(struct witch__conn *c)
{
	struct witch_server *srv = c->srv;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static bool
match_conn(const struct witch__job *job, void *arg)
{
	return ((const struct witch__reqjob *)job)->conn == arg;
}

/* Close c now.  Memory stays valid until the end of this turn. */
static void
conn_abort(struct witch__conn *c, const char *why)
{
	struct witch_server *srv = c->srv;
	struct witch__omsg *m;

	if (c->fd < 0)
		return;
	witch__log(srv, WITCH_LOG_DEBUG, "client %llu (%s) closed: %s",
	    (unsigned long long)c->id, c->peer, why);
	witch__poller_del(srv->poller, c->fd);
	close(c->fd);
	c->fd = -1;
	c->state = WITCH__CONN_CLOSED;
	atomic_store_explicit(&c->closed, true, memory_order_release);
	conn_unlink(c);
	srv->nconns--;
	if (c->monitor) {
		c->monitor = false;
		srv->nmonitors--;
	}
	if (c->counted) {
		atomic_fetch_sub(&srv->ctr.clients, 1);
		c->counted = false;
	}
	/* Unwritten output is dropped and its bytes released. */
	witch__buf_free(&c->obuf);
	witch__buf_init(&c->obuf, 0);
	for (m = c->out_head; m != NULL; m = m->next)
		witch__oqueue_release(&c->oq, m->len);
	witch__omsg_free_list(c->out_head);
	c->out_head = c->out_tail = NULL;
	witch__decoder_clear(&c->dec);
	/* Queued requests are dropped; running handlers see cancelled. */
	if (atomic_load(&c->inflight) > 0 && srv->pool != NULL)
		witch__pool_cancel(srv->pool, match_conn, c);
	c->dead_next = srv->dead;
	srv->dead = c;
	if (srv->accept_paused)
		srv->accept_retry = true;
}

/* The peer sent EOF. */
static void
conn_eof(struct witch__conn *c)
{
	c->eof = true;
	if (c->state == WITCH__CONN_OPEN)
		conn_finish(c, 0, NULL, WITCH__CLOSE_WAIT_MS);
	else if (c->state == WITCH__CONN_LINGER)
		conn_abort(c, "closed after final frame");
	conn_settle(c);
}

static void
conn_read(struct witch__conn *c)
{
	struct witch_server *srv = c->srv;
	size_t total = 0;
	ssize_t n;
	int rc;

	while (c->fd >= 0) {
		if (c->read_paused && c->state == WITCH__CONN_OPEN) {
			c->want_read = true;
			return;
		}
		c->want_read = false;
		n = read(c->fd, srv->scratch, WITCH__SCRATCH);
		if (n > 0) {
			total += (size_t)n;
			if (c->state == WITCH__CONN_OPEN) {
				rc = witch__decoder_feed(&c->dec, srv->scratch,
				    (size_t)n, on_frame, c);
				if (rc == OUTPUT_OVER_HARD) {
					output_drop(c);
					return;
				}
				if (rc < 0) {
					atomic_fetch_add(
					    &srv->ctr.protocol_errors, 1);
					conn_finish(c, rc, NULL,
					    WITCH__CLOSE_WAIT_MS);
				}
			}
			/* A short read drained the socket (see reactor.md). */
			if ((size_t)n < WITCH__SCRATCH && !c->rdhup)
				return;
			if (total >= WITCH__READ_BUDGET) {
				c->want_read = true;
				turn_add(c);
				return;
			}
			continue;
		}
		if (n == 0) {
			conn_eof(c);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		conn_abort(c, strerror(errno));
		return;
	}
}

/* Move everything workers queued for c to the reactor's own list. */
static void
conn_take(struct witch__conn *c)
{
	struct witch__omsg *m = witch__oqueue_take(&c->oq), *last;

	if (m == NULL)
		return;
	for (last = m; last->next != NULL; last = last->next)
		;
	if (c->out_tail != NULL)
		c->out_tail->next = m;
	else
		c->out_head = m;
	c->out_tail = last;
}

/* Drop c for passing the hard output limit: counted and logged. */
static void
output_drop(struct witch__conn *c)
{
	struct witch_server *srv = c->srv;

	atomic_fetch_add(&srv->ctr.output_drops, 1);
	witch__log(srv, WITCH_LOG_WARNING, "client %llu (%s) dropped: %zu "
	    "bytes of output pending, hard limit %zu",
	    (unsigned long long)c->id, c->peer,
	    witch__oqueue_bytes(&c->oq) + c->obuf.len, out_hard(srv));
	conn_abort(c, "output hard limit");
}

/* Write as much queued output as the socket takes, in batches. */
static void
conn_flush(struct witch__conn *c)
{
	struct witch_server *srv = c->srv;
	struct iovec iov[MAX_IOV];
	struct witch__omsg *m;
	size_t want, n;
	ssize_t w;
	int cnt;

	if (c->fd < 0)
		return;
	obuf_push(c);
	conn_take(c);
	if (witch__oqueue_bytes(&c->oq) > out_hard(srv)) {
		output_drop(c);
		return;
	}
	while (c->writable && c->out_head != NULL) {
		cnt = 0;
		want = 0;
		for (m = c->out_head; m != NULL && cnt < MAX_IOV; m = m->next) {
			iov[cnt].iov_base = m->data + m->off;
			iov[cnt].iov_len = m->len - m->off;
			want += iov[cnt].iov_len;
			cnt++;
		}
		w = witch__sock_writev(c->fd, iov, cnt);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				c->writable = false;
				break;
			}
			conn_abort(c, strerror(errno));
			return;
		}
		c->active_ns = srv->now_ns;
		for (n = (size_t)w; n > 0 && (m = c->out_head) != NULL;) {
			size_t left = m->len - m->off;

			if (n < left) {
				m->off += n;
				break;
			}
			n -= left;
			c->out_head = m->next;
			if (c->out_head == NULL)
				c->out_tail = NULL;
			witch__oqueue_release(&c->oq, m->len);
			m->next = NULL;
			witch__omsg_free(m);
		}
		if ((size_t)w < want)
			c->writable = false;
	}
}

/* Queue c's final frame (error or closing event). */
static void
conn_final(struct witch__conn *c)
{
	struct witch__buf b;
	json_t *d;

	witch__omsg_buf_init(&b);
	if (c->final_code != 0)
		witch__count_error(c->srv, c->final_code);
	if (c->final_code != 0)
		witch__reply_error(&b, "null", c->final_code,
		    c->final_code == WITCH_EFRAME_TOO_LARGE ?
		    "frame length exceeds max_frame; closing" :
		    c->final_code == WITCH_EINVALID_FRAME ?
		    "frame length 0 is invalid; closing" :
		    witch_strerror(c->final_code));
	else {
		d = json_pack("{s:s}", "reason", c->final_reason);
		witch__reply_event(&b, "closing", d);
		json_decref(d);
	}
	c->final_queued = true;
	witch__conn_reply_buf(c, &b);
}

/*
 * After I/O on c: apply flow control and move the close sequence on.
 * Called on the reactor after every flush or job notification.
 */
static void
conn_settle(struct witch__conn *c)
{
	struct witch_server *srv = c->srv;
	size_t out;

	if (c->fd < 0)
		return;
	out = witch__oqueue_bytes(&c->oq);
	if (c->state == WITCH__CONN_OPEN) {
		if (!c->read_paused && out > out_soft(srv)) {
			c->read_paused = true;
			want_done(c);
		} else if (c->read_paused && out <= out_soft(srv) / 2 &&
		    atomic_load(&c->inflight) < WITCH__INFLIGHT_LOW) {
			c->read_paused = false;
			atomic_store(&c->want_done, false);
			if (c->want_read)
				turn_add(c);
		}
		return;
	}
	/*
	 * inflight first: a job whose end we see pushed its reply (and
	 * counted its bytes) before it ended (seq_cst in job_done), so the
	 * byte count read after it includes that reply.
	 */
	if (c->state != WITCH__CONN_CLOSING ||
	    atomic_load(&c->inflight) > 0 ||
	    witch__oqueue_bytes(&c->oq) > 0 || obuf_pending(c))
		return;
	if (c->eof && c->final_code == 0) {
		conn_abort(c, "peer closed");
		return;
	}
	if (c->final_code == 0 && c->final_reason == NULL) {
		conn_abort(c, "done");
		return;
	}
	if (!c->final_queued) {
		conn_final(c);
		return;
	}
	/* Final frame written: our side is done; await the peer's FIN. */
	if (c->eof) {
		conn_abort(c, "final frame sent");
		return;
	}
	shutdown(c->fd, SHUT_WR);
	c->state = WITCH__CONN_LINGER;
	c->deadline_ns = srv->now_ns + (uint64_t)WITCH__LINGER_MS * 1000000u;
}

/* ---- listener ------------------------------------------------------------- */

/* Pause accepting: out of descriptors. */
static void
accept_pause(struct witch_server *srv, int err)
{
	srv->accept_paused = true;
	atomic_fetch_add(&srv->ctr.emfile_pauses, 1);
	witch__log(srv, WITCH_LOG_WARNING, "accept: %s; pausing until a "
	    "descriptor is free", strerror(err));
	/* Give the reserve back so the process has one fd to work with. */
	if (srv->reserve_fd >= 0) {
		close(srv->reserve_fd);
		srv->reserve_fd = -1;
	}
}

void
witch__listeners_close(struct witch_server *srv)
{
	struct witch__listener *l;

	while (srv->nlst > 0) {
		l = &srv->lst[--srv->nlst];
		if (srv->poller != NULL)
			witch__poller_del(srv->poller, l->fd);
		close(l->fd);
		if (l->path[0] != '\0')
			unlink(l->path);
	}
}

/* Who is on the other end of a new connection. */
static void
identify(struct witch__conn *c, const struct witch__listener *l)
{
	c->uid = c->pid = -1;
	c->local = l->local;
	if (l->local) {
		witch__sock_peer_creds(c->fd, &c->uid, &c->pid);
		snprintf(c->peer, sizeof(c->peer), "unix:uid=%ld,pid=%ld",
		    c->uid, c->pid);
		c->trusted = true;
	} else
		c->trusted = witch__sock_peer_is_loopback(c->fd);
}

static void
accept_loop(struct witch_server *srv, struct witch__listener *l)
{
	struct witch__conn *c;
	char peer[64];
	int fd;

	while (!srv->accept_paused && l->fd >= 0) {
		fd = witch__sock_accept(l->fd, peer, sizeof(peer));
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM)
				accept_pause(srv, errno);
			else if (errno != EAGAIN && errno != EWOULDBLOCK)
				witch__log(srv, WITCH_LOG_ERR, "accept: %s",
				    strerror(errno));
			return;
		}
		if (!l->local)
			witch__sock_tune(fd);
		if ((c = witch__conn_new(srv, fd, peer)) == NULL) {
			close(fd);
			atomic_fetch_add(&srv->ctr.conns_rejected, 1);
			continue;
		}
		if (witch__poller_add(srv->poller, fd, c, 0) != 0) {
			close(fd);
			c->fd = -1;
			witch__conn_unref(c);
			atomic_fetch_add(&srv->ctr.conns_rejected, 1);
			continue;
		}
		identify(c, l);
		c->next = srv->conns;
		if (srv->conns != NULL)
			srv->conns->prev = c;
		srv->conns = c;
		srv->nconns++;
		if (atomic_load(&srv->ctr.clients) >=
		    atomic_load(&srv->live.max_clients)) {
			atomic_fetch_add(&srv->ctr.conns_rejected, 1);
			witch__log(srv, WITCH_LOG_INFO, "client %s refused: "
			    "max_clients (%u) reached", c->peer,
			    atomic_load(&srv->live.max_clients));
			conn_finish(c, WITCH_ESERVER_FULL, NULL, 1000);
			continue;
		}
		c->counted = true;
		atomic_fetch_add(&srv->ctr.clients, 1);
		atomic_fetch_add(&srv->ctr.conns_accepted, 1);
	}
}

/* Resume accepting after a descriptor was freed. */
static void
accept_resume(struct witch_server *srv)
{
	size_t i;

	srv->accept_retry = false;
	if (!srv->accept_paused)
		return;
	srv->accept_paused = false;
	for (i = 0; i < srv->nlst && !srv->accept_paused; i++)
		accept_loop(srv, &srv->lst[i]);
	if (!srv->accept_paused && srv->reserve_fd < 0)
		srv->reserve_fd = witch__sock_reserve_fd();
}

/* ---- the loop --------------------------------------------------------- */

static void
handle_event(struct witch_server *srv, struct witch__poll_event *ev)
{
	struct witch__conn *c;

	if (ev->udata == &srv->wakeup) {
		witch__wakeup_clear(&srv->wakeup);
		return;
	}
	if (ev->udata >= (void *)&srv->lst[0] &&
	    ev->udata < (void *)&srv->lst[WITCH__LISTENERS_MAX]) {
		accept_loop(srv, ev->udata);
		return;
	}
	c = ev->udata;
	if (c->fd < 0)
		return;			/* closed earlier this turn */
	if (ev->events & (WITCH__POLL_HUP | WITCH__POLL_ERR))
		c->rdhup = true;
	if (ev->events & WITCH__POLL_OUT)
		c->writable = true;
	if (ev->events & WITCH__POLL_IN)
		conn_read(c);
	if (c->fd >= 0 && (c->out_head != NULL || obuf_pending(c) ||
	    witch__oqueue_bytes(&c->oq) > 0))
		conn_flush(c);
	conn_settle(c);
}

/* Connections with replies from workers. */
static void
process_ready(struct witch_server *srv)
{
	struct witch__conn *c, *next;

	c = atomic_exchange_explicit(&srv->ready, NULL, memory_order_acquire);
	for (; c != NULL; c = next) {
		next = c->ready_next;
		/* Clear before taking: see the argument in conn.c. */
		atomic_exchange_explicit(&c->scheduled, false,
		    memory_order_acq_rel);
		if (c->fd >= 0) {
			conn_flush(c);
			conn_settle(c);
		}
		witch__conn_unref(c);
	}
}

/* Connections carried over: continue reading, flush inline replies. */
static void
process_turn(struct witch_server *srv)
{
	struct witch__conn *c, *next;

	c = srv->turn;
	srv->turn = NULL;
	for (; c != NULL; c = next) {
		next = c->turn_next;
		c->on_turn = false;
		if (c->fd >= 0 && c->want_read && !c->read_paused)
			conn_read(c);
		if (c->fd >= 0) {
			conn_flush(c);
			conn_settle(c);
		}
		witch__conn_unref(c);
	}
}

/* Timeouts and deadlines, every WITCH__TICK_MS. */
static void
housekeeping(struct witch_server *srv)
{
	struct witch__conn *c, *next;
	uint64_t now = srv->now_ns;
	uint64_t hs = (uint64_t)atomic_load(&srv->live.handshake_ms) * 1000000u;
	uint64_t idle = (uint64_t)atomic_load(&srv->live.idle_ms) * 1000000u;

	srv->next_tick_ns = now + (uint64_t)WITCH__TICK_MS * 1000000u;
	if (srv->pool != NULL)
		witch__pool_expire(srv->pool, now);
	for (c = srv->conns; c != NULL; c = next) {
		next = c->next;
		switch (c->state) {
		case WITCH__CONN_OPEN:
			if (hs && !c->got_frame && now - c->created_ns >= hs)
				conn_finish(c, 0, "handshake_timeout", 1000);
			else if (idle && now - c->active_ns >= idle &&
			    atomic_load(&c->inflight) == 0 &&
			    c->out_head == NULL)
				conn_finish(c, 0, "idle_timeout", 1000);
			break;
		case WITCH__CONN_CLOSING:
		case WITCH__CONN_LINGER:
			if (now >= c->deadline_ns)
				conn_abort(c, c->state == WITCH__CONN_LINGER ?
				    "linger timeout" : "close timeout");
			break;
		default:
			break;
		}
	}
	if (srv->accept_paused)
		accept_resume(srv);
}

/* Drop the reactor's reference of every connection closed this turn. */
static void
reap(struct witch_server *srv)
{
	struct witch__conn *c, *next;

	for (c = srv->dead; c != NULL; c = next) {
		next = c->dead_next;
		witch__conn_unref(c);
	}
	srv->dead = NULL;
}

/* Phase changes requested by witch_server_stop(). */
static bool
phase_step(struct witch_server *srv)
{
	struct witch__conn *c, *next;
	int phase = atomic_load(&srv->phase);

	if (phase >= WITCH__PHASE_DRAINING && srv->nlst > 0)
		witch__listeners_close(srv);
	if (phase < WITCH__PHASE_CLOSING)
		return true;
	if (srv->closing_deadline_ns == 0) {
		srv->closing_deadline_ns = srv->now_ns + 2000000000u;
		for (c = srv->conns; c != NULL; c = next) {
			next = c->next;
			conn_finish(c, 0, "shutdown", 1000);
		}
	}
	if (srv->nconns == 0)
		return false;
	if (srv->now_ns >= srv->closing_deadline_ns) {
		for (c = srv->conns; c != NULL; c = next) {
			next = c->next;
			conn_abort(c, "server stopped");
		}
		return false;
	}
	return true;
}

void *
witch__reactor_main(void *arg)
{
	struct witch_server *srv = arg;
	struct witch__poll_event ev[MAX_EVENTS];
	struct witch__conn *c;
	int i, n, timeout;

	srv->now_ns = witch__now_ns();
	srv->next_tick_ns = srv->now_ns + (uint64_t)WITCH__TICK_MS * 1000000u;
	for (;;) {
		if (!phase_step(srv))
			break;
		if (srv->turn != NULL || srv->accept_retry)
			timeout = 0;
		else if (srv->now_ns >= srv->next_tick_ns)
			timeout = 0;
		else
			timeout = (int)((srv->next_tick_ns - srv->now_ns) /
			    1000000u) + 1;
		n = witch__poller_wait(srv->poller, ev, MAX_EVENTS, timeout);
		srv->now_ns = witch__now_ns();
		for (i = 0; i < n; i++)
			handle_event(srv, &ev[i]);
		process_ready(srv);
		process_turn(srv);
		submit_batch(srv);
		if (srv->accept_retry)
			accept_resume(srv);
		if (srv->now_ns >= srv->next_tick_ns)
			housekeeping(srv);
		reap(srv);
	}
	/* Anything still open is closed now; replies left are dropped. */
	while ((c = srv->conns) != NULL)
		conn_abort(c, "server stopped");
	process_ready(srv);
	reap(srv);
	while (srv->turn != NULL)
		process_turn(srv);
	return NULL;
}
