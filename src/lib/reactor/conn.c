/*
 * reactor/conn.c: connection objects and their cross-thread entry points.
 *
 * Lifetime.  A connection is reference counted.  The reactor holds one
 * reference from accept until it closes the socket; every queued or
 * running request (struct witch__reqjob) holds one, until its release
 * (a worker's deferred release drops a run's references of one
 * connection at once, witch__conn_unref_n, at its flush); a worker holds
 * one while it batches replies for it (reactor/job.c, struct pend); and
 * the connection holds one for itself while it sits on the server's ready
 * list, and one while on the reactor's turn list.  The
 * reactor closes asynchronously: it marks the connection closed (fd = -1,
 * closed = true), removes it from the poller and its lists, and drops its
 * reference at the end of the loop turn.  Whoever drops the last reference
 * frees the memory; by then nothing can reach it any more: the reactor no
 * longer lists it and no job refers to it.  A reply finished after the
 * close is discarded by witch__conn_send_buf(), never written to another
 * client that reused the descriptor: replies travel by connection object,
 * never by fd number.
 *
 * Memory ordering.  Producers (workers) push a reply onto the connection's
 * output queue (release CAS, see queue/oqueue.c) and then exchange
 * scheduled to true with acq_rel.  Only the producer that saw false pushes
 * the connection onto the server's ready stack (a Treiber stack: CAS with
 * release) and signals the wakeup.  The reactor pops the whole ready
 * stack with an acquire exchange, and for each connection first exchanges
 * scheduled back to false (acq_rel) and only then takes the output queue
 * (acquire).  Both exchanges on scheduled are read-modify-writes of one
 * atomic, so they are totally ordered: either the producer's exchange comes
 * first, and the reactor's clearing exchange reads its value, which makes
 * the producer's push happen-before the reactor's take (the push is
 * therefore seen); or the reactor's clear comes first, and the producer
 * reads false and schedules the connection again.  No reply is left in a
 * queue that nobody will look at.  The reference taken for the ready list
 * is taken before the connection is published on it and dropped by the
 * reactor after it has processed the entry.
 *
 * Direct writes by workers: reactor/direct.c.
 */
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "net/sock.h"
#include "reactor/reactor.h"

#define MAX_IOV 64

static void output_drop(struct witch__conn *);

struct witch__conn *
witch__conn_new(struct witch__reactor *r, int fd, const char *peer)
{
	struct witch__conn *c;

	if ((c = witch__calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->kind = WITCH__EV_CONN;
	c->r = r;
	c->id = r->next_conn_id++;
	atomic_init(&c->refs, 1);
	atomic_init(&c->closed, false);
	atomic_init(&c->scheduled, false);
	atomic_init(&c->inflight, 0);
	atomic_init(&c->reply_lost, false);
	atomic_init(&c->wown, 0);
	atomic_init(&c->wrest, NULL);
	c->wfd = fd;
	witch__oqueue_init(&c->oq);
	witch__buf_init(&c->obuf, 0);
	c->fd = fd;
	c->state = WITCH__CONN_OPEN;
	c->writable = true;
	witch__decoder_init(&c->dec, (uint32_t)r->opt.max_frame);
	/* The pre-authentication cap (lifted by witch__conn_frame_cap). */
	if (r->opt.preauth_max_frame > 0 &&
	    r->opt.preauth_max_frame < r->opt.max_frame)
		c->dec.max_frame = (uint32_t)r->opt.preauth_max_frame;
	atomic_init(&c->decode_held, 0);
	c->created_ns = c->active_ns = r->now_ns;
	strlcpy(c->peer, peer, sizeof(c->peer));
	return c;
}

void
witch__conn_unref(struct witch__conn *c)
{
	witch__conn_unref_n(c, 1);
}

void
witch__conn_unref_n(struct witch__conn *c, unsigned n)
{
	/*
	 * acq_rel: every access by the other holders happens-before the
	 * free, which the thread that drops the last reference performs.
	 * Dropping n at once is dropping them one after the other with no
	 * access in between: the last holder is still the one that reads n.
	 */
	if (atomic_fetch_sub_explicit(&c->refs, n, memory_order_acq_rel) != n)
		return;
	witch__decoder_clear(&c->dec);
	witch__omsg_free_list(c->out_head);
	witch__omsg_free(atomic_load_explicit(&c->wrest,
	    memory_order_relaxed));
	witch__buf_free(&c->obuf);
	witch__oqueue_destroy(&c->oq);
	witch__free(c->precancel);
	witch__free(c);
}

void
witch__conn_schedule(struct witch__conn *c)
{
	struct witch__reactor *r = c->r;
	struct witch__conn *head;

	if (atomic_exchange_explicit(&c->scheduled, true,
	    memory_order_acq_rel))
		return;
	witch__conn_ref(c);
	head = atomic_load_explicit(&r->ready, memory_order_relaxed);
	do {
		c->ready_next = head;
	} while (!atomic_compare_exchange_weak_explicit(&r->ready, &head, c,
	    memory_order_release, memory_order_relaxed));
	witch__wakeup_signal(&r->wakeup);
}

void
witch__conn_send_buf(struct witch__conn *c, struct witch__buf *b)
{
	struct witch__omsg *m;

	if (atomic_load_explicit(&c->closed, memory_order_acquire)) {
		witch__buf_free(b);
		return;
	}
	if ((m = witch__omsg_from_buf(b)) == NULL) {
		witch__conn_reply_lost(c);
		return;
	}
	witch__oqueue_push(&c->oq, m);
	witch__conn_schedule(c);
}

void (*_Atomic witch__flush_hook)(void);

void
witch__conn_reply_lost(struct witch__conn *c)
{
	atomic_store_explicit(&c->reply_lost, true, memory_order_relaxed);
	witch__conn_schedule(c);	/* its release orders the store */
}

void
witch__conn_send_error(struct witch__conn *c, const char *id, int code,
    const char *msg)
{
	struct witch__buf b;

	witch__stats_error(&c->r->ctr, code);
	witch__omsg_buf_init(&b);
	if (witch__reply_error(&b, id, code, msg) != 0) {
		witch__buf_free(&b);
		witch__conn_reply_lost(c);
		return;
	}
	witch__conn_send_buf(c, &b);
}

/* ---- the reactor's own output ---------------------------------------- */

/*
 * Start the connection's reactor output buffer (c->obuf empty): an omsg
 * header in front of room for a batch, in one block from the reactor's
 * cache (r->obufs).  False: out of memory.  The test for an empty buffer
 * is witch__obuf_ready() (inline).
 */
bool
witch__obuf_start(struct witch__conn *c)
{
	static const struct witch__omsg hdr;
	void *p;

	witch__buf_free(&c->obuf);
	witch__buf_init(&c->obuf, 0);
	if ((p = witch__blkcache_get(&c->r->obufs)) != NULL)
		witch__buf_adopt(&c->obuf, p, WITCH__OBUF_BLOCK);
	return witch__buf_append(&c->obuf, &hdr, sizeof(hdr)) == 0;
}

/*
 * A message written out: a block of the reactor's output buffers goes
 * back to their cache (obuf_push), anything else to the allocator.  The
 * reactor only: the cache is not shared (messages freed on other threads,
 * at a connection's last unref, use witch__omsg_free).
 */
static void
omsg_written(struct witch__reactor *r, struct witch__omsg *m)
{
	if (m->obuf)
		witch__blkcache_put(&r->obufs, m);
	else
		witch__omsg_free(m);
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

/*
 * Hand the reactor's frames to the output queue, as one message.  Still
 * in its block of WITCH__OBUF_BLOCK bytes (not grown): marked for the
 * cache of those blocks once written.  Only the reactor's own blocks go
 * there: a block a worker allocated is freed, back to the worker's arena,
 * where the worker will look for its next one.
 */
static void
obuf_push(struct witch__conn *c)
{
	struct witch__omsg *m;
	bool block = c->obuf.cap == WITCH__OBUF_BLOCK;

	if (c->obuf.len == 0)
		return;
	if ((m = witch__omsg_from_buf(&c->obuf)) != NULL) {
		m->obuf = block;
		witch__oqueue_push(&c->oq, m);
	}
	witch__buf_init(&c->obuf, 0);
}

bool
witch__conn_output_pending(const struct witch__conn *c)
{
	return c->out_head != NULL || obuf_pending(c) ||
	    witch__oqueue_bytes(&c->oq) > 0;
}

/* Queue a frame built by the reactor itself and flush it this turn. */
void
witch__conn_reply_buf(struct witch__conn *c, struct witch__buf *b)
{
	size_t hdr = sizeof(struct witch__omsg);

	if (b->len > hdr && witch__obuf_ready(c) &&
	    witch__buf_append(&c->obuf, b->data + hdr, b->len - hdr) == 0)
		witch__turn_add(c);
	else
		witch__conn_reply_lost(c);
	witch__buf_free(b);
}

/*
 * An error reply from the reactor (respecting nothing but the id), built
 * straight into the connection's output buffer.
 */
void
witch__conn_reply_error(struct witch__conn *c, const char *id, int code,
    const char *msg)
{
	witch__stats_error(&c->r->ctr, code);
	if (witch__obuf_ready(c) &&
	    witch__reply_error(&c->obuf, id, code, msg) == 0)
		witch__turn_add(c);
	else
		witch__conn_reply_lost(c);
}

/* Decoder callback: route the frame, then maybe lift the frame cap. */
static int
conn_frame(void *ud, const char *payload, size_t len)
{
	int rc = witch__route_frame(ud, payload, len);

	witch__conn_frame_cap(ud);
	return rc;
}

/* ---- I/O and the close sequence --------------------------------------- */

/*
 * Stop taking requests from c: once the replies it is owed are written,
 * send the final frame (an error when code != 0, else a closing event
 * with reason, or nothing when both are 0/NULL), shut down our side and
 * wait briefly for the peer's FIN.
 */
void
witch__conn_close(struct witch__conn *c, int code, const char *reason,
    unsigned wait_ms)
{
	witch__acc_flush(c->r);		/* its jobs counted (route.c) */
	if (c->fd < 0 || c->state != WITCH__CONN_OPEN)
		return;
	c->state = WITCH__CONN_CLOSING;
	c->final_code = code;
	c->final_reason = reason;
	c->deadline_ns = c->r->now_ns + (uint64_t)wait_ms * 1000000u;
	witch__want_done(c);
	witch__turn_add(c);
}

static void
conn_unlink(struct witch__conn *c)
{
	struct witch__reactor *r = c->r;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		r->conns = c->next;
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
void
witch__conn_drop(struct witch__conn *c, const char *why)
{
	struct witch__reactor *r = c->r;
	struct witch__omsg *m;

	witch__acc_flush(r);		/* its jobs counted (route.c) */
	if (c->fd < 0)
		return;
	witch__rlog(r, WITCH_LOG_DEBUG, "client %llu (%s) closed: %s",
	    (unsigned long long)c->id, c->peer, why);
	witch__poller_del(r->poller, c->fd);
	/* A worker in a direct write closes it when done (see the top). */
	if (!(atomic_fetch_or_explicit(&c->wown, WITCH__WOWN_C,
	    memory_order_acq_rel) & WITCH__WOWN_W))
		close(c->fd);
	c->fd = -1;
	c->state = WITCH__CONN_CLOSED;
	atomic_store_explicit(&c->closed, true, memory_order_release);
	conn_unlink(c);
	r->nconns--;
	if (c->monitor) {
		c->monitor = false;
		r->nmonitors--;
	}
	if (c->counted) {
		atomic_fetch_sub(&r->ctr.clients, 1);
		c->counted = false;
	}
	/* Unwritten output is dropped and its bytes released. */
	witch__buf_free(&c->obuf);
	witch__buf_init(&c->obuf, 0);
	for (m = c->out_head; m != NULL; m = m->next)
		witch__oqueue_release(&c->oq, m->len);
	witch__omsg_free_list(c->out_head);
	c->out_head = c->out_tail = NULL;
	witch__conn_partial_release(c);
	witch__addr_release(c);
	/* Queued requests are dropped; running handlers see cancelled. */
	if (atomic_load(&c->inflight) > 0 && r->pool != NULL)
		witch__pool_cancel(r->pool, match_conn, c);
	c->dead_next = r->dead;
	r->dead = c;
	if (r->accept_paused)
		r->accept_retry = true;
}

/* The decoder refused c's stream (rc): say why, and close. */
static void
feed_failed(struct witch__conn *c, int rc)
{
	struct witch__reactor *r = c->r;

	atomic_fetch_add(&r->ctr.protocol_errors, 1);
	if (rc == WITCH_EFRAME_TOO_LARGE && c->dec.max_frame < r->opt.max_frame) {
		atomic_fetch_add(&r->ctr.preauth_frame_refusals, 1);
		c->final_msg = r->opt.auth_required ?
		    "frame larger than the limit before authentication "
		    "(preauth_max_frame); closing" :
		    "first frame larger than the limit for a remote "
		    "client's first frame (preauth_max_frame); closing";
		witch__rlog(r, WITCH_LOG_INFO, "client %llu (%s) closed: frame "
		    "over the pre-authentication limit of %u bytes",
		    (unsigned long long)c->id, c->peer, c->dec.max_frame);
	}
	witch__conn_close(c, rc, NULL, WITCH__CLOSE_WAIT_MS);
}

/* The peer sent EOF. */
static void
conn_eof(struct witch__conn *c)
{
	c->eof = true;
	if (c->state == WITCH__CONN_OPEN)
		witch__conn_close(c, 0, NULL, WITCH__CLOSE_WAIT_MS);
	else if (c->state == WITCH__CONN_LINGER)
		witch__conn_drop(c, "closed after final frame");
	witch__conn_settle(c);
}

void
witch__conn_read(struct witch__conn *c)
{
	struct witch__reactor *r = c->r;
	size_t total = 0;
	ssize_t n;
	int rc;

	while (c->fd >= 0) {
		if (c->read_paused && c->state == WITCH__CONN_OPEN) {
			c->want_read = true;
			return;
		}
		c->want_read = false;
		n = read(c->fd, r->scratch, WITCH__SCRATCH);
		if (n > 0) {
			total += (size_t)n;
			if (c->state == WITCH__CONN_OPEN) {
				rc = witch__decoder_feed(&c->dec, r->scratch,
				    (size_t)n, conn_frame, c);
				/* This read's jobs counted (route.c). */
				witch__acc_flush(r);
				if (rc == WITCH__OUTPUT_OVER_HARD) {
					output_drop(c);
					return;
				}
				if (rc < 0)
					feed_failed(c, rc);
				/*
				 * Closing (here or by a frame just routed, a
				 * kill_client of itself): input is discarded
				 * from now on, so its partial frame goes.
				 * Not inside the feed: a frame being routed
				 * may live in that buffer.
				 */
				if (c->state != WITCH__CONN_OPEN)
					witch__conn_partial_release(c);
				else {
					witch__conn_held_update(c);
					witch__conn_frame_track(c);
					if (r->opt.frame_budget > 0 &&
					    r->frame_bytes >
					    r->opt.frame_budget)
						witch__frame_budget_enforce(r);
				}
			}
			/* A short read drained the socket (see reactor.md). */
			if ((size_t)n < WITCH__SCRATCH && !c->rdhup)
				return;
			if (total >= WITCH__READ_BUDGET) {
				c->want_read = true;
				witch__turn_add(c);
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
		witch__conn_drop(c, strerror(errno));
		return;
	}
}

/* Move everything workers queued for c to the reactor's own list. */
static void
conn_take(struct witch__conn *c)
{
	struct witch__omsg *m, *last;

	if ((m = witch__oqueue_take(&c->oq)) == NULL)
		return;
	for (last = m; last->next != NULL; last = last->next)
		;
	if (c->out_tail != NULL)
		c->out_tail->next = m;
	else
		c->out_head = m;
	c->out_tail = last;
}

/*
 * Put the rest of a worker's short direct write at the head of the
 * reactor's list: it is what follows on the stream.  Only after the RMW
 * that set R and read no W (witch__conn_flush): a rest taken before it
 * could be missed by this flush while the worker, finishing meanwhile,
 * stores it and clears W, and the flush would then write the frames it
 * took from the queue into the middle of the worker's frame.  After that
 * RMW no worker writes, the rest (if any) is visible, and nothing on the
 * list has been written since R was last clear.
 */
static void
rest_take(struct witch__conn *c)
{
	struct witch__omsg *rest;

	if ((rest = atomic_exchange_explicit(&c->wrest, NULL,
	    memory_order_acquire)) == NULL)
		return;
	rest->next = c->out_head;
	c->out_head = rest;
	if (c->out_tail == NULL)
		c->out_tail = rest;
}

/* Drop c for passing the hard output limit: counted and logged. */
static void
output_drop(struct witch__conn *c)
{
	struct witch__reactor *r = c->r;

	atomic_fetch_add(&r->ctr.output_drops, 1);
	witch__rlog(r, WITCH_LOG_WARNING, "client %llu (%s) dropped: %zu "
	    "bytes of output pending, hard limit %zu",
	    (unsigned long long)c->id, c->peer,
	    witch__oqueue_bytes(&c->oq) + c->obuf.len, witch__out_hard(r));
	witch__conn_drop(c, "output hard limit");
}

/* Write as much queued output as the socket takes, in batches. */
void
witch__conn_flush(struct witch__conn *c)
{
	struct witch__reactor *r = c->r;
	struct iovec iov[MAX_IOV];
	struct witch__omsg *m;
	size_t want, n;
	ssize_t w;
	int cnt;

	if (c->fd < 0)
		return;
	obuf_push(c);
	conn_take(c);
	if (witch__oqueue_bytes(&c->oq) > witch__out_hard(r)) {
		output_drop(c);
		return;
	}
	if (c->out_head == NULL && atomic_load_explicit(&c->wrest,
	    memory_order_relaxed) == NULL)
		return;
	if (atomic_load_explicit(&witch__flush_hook,
	    memory_order_relaxed) != NULL)
		atomic_load(&witch__flush_hook)();
	/* Own the socket's output (see the top); a writing worker calls
	 * us back. */
	if (atomic_fetch_or_explicit(&c->wown, WITCH__WOWN_R,
	    memory_order_acq_rel) & WITCH__WOWN_W)
		return;
	rest_take(c);
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
			witch__conn_drop(c, strerror(errno));
			return;
		}
		c->active_ns = r->now_ns;
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
			omsg_written(r, m);
		}
		if ((size_t)w < want)
			c->writable = false;
	}
	/* All written: workers may write to the socket again. */
	if (c->out_head == NULL)
		atomic_fetch_and_explicit(&c->wown, ~WITCH__WOWN_R,
		    memory_order_acq_rel);
}

/* Queue c's final frame (error or closing event). */
static void
queue_final(struct witch__conn *c)
{
	struct witch__buf b;
	json_t *d;

	witch__omsg_buf_init(&b);
	if (c->final_code != 0)
		witch__stats_error(&c->r->ctr, c->final_code);
	if (c->final_code != 0)
		witch__reply_error(&b, "null", c->final_code,
		    c->final_msg != NULL ? c->final_msg :
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
 * Called on the reactor after every flush or job notification, and after
 * a read that built no replies for the turn's end (handle_event): the
 * limits here count the output queue, not c->obuf, so a read's replies
 * are flushed (pushed to the queue) first.  (conn_eof's call comes with
 * c closing, whose checks count c->obuf.)
 */
void
witch__conn_settle(struct witch__conn *c)
{
	struct witch__reactor *r = c->r;
	size_t out;

	witch__acc_flush(r);		/* inflight read below (route.c) */
	if (c->fd < 0)
		return;
	if (c->state == WITCH__CONN_OPEN &&
	    atomic_load_explicit(&c->reply_lost, memory_order_relaxed)) {
		witch__rlog(r, WITCH_LOG_WARNING, "client %llu (%s) closed: "
		    "no memory for a reply it is owed",
		    (unsigned long long)c->id, c->peer);
		witch__conn_close(c, 0, "out_of_memory", 1000);
	}
	out = witch__oqueue_bytes(&c->oq);
	if (c->state == WITCH__CONN_OPEN) {
		if (!c->read_paused && out > witch__out_soft(r)) {
			c->read_paused = true;
			witch__want_done(c);
		} else if (c->read_paused && out <= witch__out_soft(r) / 2 &&
		    atomic_load(&c->inflight) < WITCH__INFLIGHT_LOW) {
			c->read_paused = false;
			atomic_store(&c->want_done, false);
			if (c->want_read)
				witch__turn_add(c);
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
		witch__conn_drop(c, "peer closed");
		return;
	}
	if (c->final_code == 0 && c->final_reason == NULL) {
		witch__conn_drop(c, "done");
		return;
	}
	if (!c->final_queued) {
		queue_final(c);
		return;
	}
	/* Final frame written: our side is done; await the peer's FIN. */
	if (c->eof) {
		witch__conn_drop(c, "final frame sent");
		return;
	}
	shutdown(c->fd, SHUT_WR);
	c->state = WITCH__CONN_LINGER;
	c->deadline_ns = r->now_ns + (uint64_t)WITCH__LINGER_MS * 1000000u;
}
