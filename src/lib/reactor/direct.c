/*
 * reactor/direct.c: a worker writes its replies to the client's socket
 * itself (doc/internals/output-queue.md, "Direct writes").  Worker
 * threads; the reactor's side (the R and C bits, the rest taken first)
 * is in conn.c.
 *
 * Direct writes.  A worker that has replies for c and finds c's output
 * idle writes them to the socket itself (witch__conn_write_direct), so
 * the reply goes out without waking the reactor: at one request in flight
 * that is the reactor's wakeup, epoll_wait, eventfd read and send per
 * request.  One atomic word, c->wown, decides who may write:
 *
 *   W  a worker is writing.  Taken only by a CAS from 0: no other worker
 *      writing, the reactor holding no output, c not dropped.
 *   R  the reactor has output for c (set in witch__conn_flush before it
 *      writes, cleared when everything it held is written).
 *   C  the reactor dropped c.
 *
 * Every change is a read-modify-write (acq_rel) of the one word, so the
 * changes are totally ordered and each sees the one before it:
 * - The reactor writes only after an RMW that set R and read no W; from
 *   then on no worker can take W until R is cleared, and it clears R
 *   only with nothing of its own left unwritten (out_head empty, so no
 *   frame is ever half written when a worker starts).  A worker writes
 *   only with W, taken from 0.  So the two never write at once, and
 *   frames interleave on the stream only at frame boundaries.
 * - If the reactor's RMW reads W, it writes nothing now; the worker's
 *   release (an RMW clearing W) then reads R and schedules c, so the
 *   reactor comes back.  No output is left behind.
 * - A short write: the worker stores the rest as an omsg in c->wrest,
 *   charges its bytes to the output queue's count, and sets R in the same
 *   RMW that clears W, then schedules c.  The reactor takes wrest (acquire
 *   exchange) in its next flush right after its RMW that set R and read
 *   no W (never before it: rest_take), ahead of everything queued,
 *   so the rest of the frame is what follows on the stream.  A worker
 *   cannot write again before the reactor has cleared R, i.e. before the
 *   rest is out.
 * - Close: witch__conn_drop sets C with an RMW.  If that reads W, a
 *   worker is in send(2) on the descriptor, and the worker, whose
 *   releasing RMW then reads C, closes it; otherwise the reactor closes
 *   it at once.  Exactly one of them closes, and never while the other
 *   may use it; a worker never takes W once C is set.  Workers use
 *   c->wfd, which never changes, not c->fd, which the reactor clears.
 * - The close sequence: the worker releases W (and charges a rest)
 *   before its jobs are counted out of c->inflight (seq_cst), so the
 *   reactor, reading inflight == 0 first, then sees the rest's bytes,
 *   and never queues the final frame while a reply is in a worker.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdatomic.h>
#include <unistd.h>

#include "reactor/reactor.h"

void (*_Atomic witch__direct_write_hook)(void);
atomic_bool witch__direct_always;

/* A worker lets go of c's socket, setting `set' (0 or R) as it does. */
static void
direct_release(struct witch__conn *c, unsigned set)
{
	unsigned old = atomic_load_explicit(&c->wown, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(&c->wown, &old,
	    (old & ~WITCH__WOWN_W) | set, memory_order_acq_rel,
	    memory_order_relaxed))
		;
	if (old & WITCH__WOWN_C)
		close(c->wfd);		/* the reactor left it to us */
	else if ((old | set) & WITCH__WOWN_R)
		witch__conn_schedule(c);
}

bool
witch__conn_write_direct(struct witch__conn *c, struct witch__buf *b)
{
	size_t hdr = sizeof(struct witch__omsg), len;
	struct witch__omsg *m;
	unsigned idle = 0;
	ssize_t w;

	/*
	 * Only while the reactor sleeps: that is the wakeup saved.  An
	 * awake reactor writes it in its batch, cheaper than a send(2) per
	 * worker batch (c=50 P=1: 25% fewer requests per second with
	 * every reply written by the worker).
	 */
	if (!atomic_load_explicit(&c->r->asleep, memory_order_relaxed) &&
	    !atomic_load_explicit(&witch__direct_always, memory_order_relaxed))
		return false;
	if (b->len <= hdr || !atomic_compare_exchange_strong_explicit(
	    &c->wown, &idle, WITCH__WOWN_W, memory_order_acq_rel,
	    memory_order_relaxed))
		return false;
	len = b->len - hdr;
	if (atomic_load_explicit(&witch__direct_write_hook,
	    memory_order_relaxed) != NULL)
		atomic_load(&witch__direct_write_hook)();
	do
		w = send(c->wfd, b->data + hdr, len, MSG_NOSIGNAL |
		    MSG_DONTWAIT);
	while (w < 0 && errno == EINTR);
	atomic_fetch_add_explicit(&c->r->ctr.direct_writes, 1,
	    memory_order_relaxed);
	if (w >= 0 && (size_t)w == len) {
		witch__buf_free(b);
		direct_release(c, 0);
		return true;
	}
	/*
	 * Short write, a full socket or an error: the reactor writes the
	 * rest first (and meets the error itself, and drops c).  A buffer
	 * that holds frames always becomes a message: no allocation.
	 */
	atomic_fetch_add_explicit(&c->r->ctr.direct_short, 1,
	    memory_order_relaxed);
	m = witch__omsg_from_buf(b);
	m->off = w > 0 ? (size_t)w : 0;
	witch__oqueue_charge(&c->oq, m->len);
	atomic_store_explicit(&c->wrest, m, memory_order_relaxed);
	direct_release(c, WITCH__WOWN_R);	/* its release publishes m */
	return true;
}
