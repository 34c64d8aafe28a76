/*
 * queue/oqueue.c: per-connection lock-free output queue (MPSC).
 *
 * Memory ordering
 * ---------------
 * Producers (any thread) push with a CAS loop on q->head.  The CAS that
 * succeeds is a release operation: every write the producer made before it
 * (the message, its data, m->next) happens-before any acquire operation
 * that reads the value it stored.  The initial load of the old head may be
 * relaxed: the producer never dereferences it, it only stores it into
 * m->next, and a stale value just makes the CAS fail and retry with the
 * value the CAS returned.  A failed CAS publishes nothing, so it is
 * relaxed too.
 *
 * The consumer (the reactor) takes the whole list with one
 * atomic_exchange(head, NULL) with acquire ordering.  It reads the value
 * written by the last successful push.  All pushes and the exchange are
 * read-modify-writes on the same object, so every earlier push is the head
 * of a release sequence that continues through the later pushes up to the
 * value the exchange read: the exchange synchronizes with every producer
 * whose message is in the list, not just the last one.  Hence the consumer
 * sees each message fully written, all the way down the list, without any
 * fence.  The consumer then reverses the list (private memory) into FIFO
 * order.
 *
 * No ABA problem: the classic Treiber-stack ABA bug is in pop, which reads
 * head->next and then CASes head from a node it no longer owns.  There is
 * no pop here.  Only the single consumer removes messages, and it removes
 * the whole list with an unconditional exchange, never a CAS based on a
 * stale next pointer.  A producer's CAS only installs m with m->next equal
 * to the exact value it verified to be the current head; even if that
 * address had been freed and reused by another push in the meantime, the
 * link made is still the correct one (to whatever is head right now).  So
 * a recycled expected value is harmless: nothing is lost or linked twice.
 *
 * Byte accounting: a producer adds m->len to q->bytes (relaxed) before its
 * release CAS.  A consumer that took m therefore also sees that addition
 * (it happens-before the take), so the later fetch_sub in
 * witch__oqueue_release() is ordered after it in the modification order of
 * q->bytes: the count never underflows and the consumer never sees a
 * message whose bytes are not yet counted.  Readers of the count get a
 * snapshot; it is only used for output limits, never for memory safety.
 */
#include <stdatomic.h>
#include <stddef.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "queue/oqueue.h"

/*
 * A buffer whose first bytes are the header of the message to be.  When
 * the header cannot be allocated the failure is sticky: every append
 * fails too, so no frame is ever built where the header should be (the
 * message would lose the frame's first bytes), and from_buf sees none.
 */
void
witch__omsg_buf_init(struct witch__buf *b)
{
	witch__omsg_buf_init_hint(b, 0);
}

/*
 * The same, with room for hint bytes of frames from the start, so a
 * buffer that will grow to about that size is allocated once instead of
 * growing by realloc from 256 bytes.
 */
void
witch__omsg_buf_init_hint(struct witch__buf *b, size_t hint)
{
	static const struct witch__omsg zero;

	witch__buf_init(b, 0);
	if ((hint > 0 && witch__buf_reserve(b, sizeof(zero) + hint) != 0) ||
	    witch__buf_append(b, &zero, sizeof(zero)) != 0)
		witch__buf_fail(b);
}

/* The buffer's bytes as one message (header in front).  Any thread. */
struct witch__omsg *
witch__omsg_from_buf(struct witch__buf *b)
{
	struct witch__omsg *m;
	size_t len;

	if (b->len <= sizeof(*m)) {
		witch__buf_free(b);
		return NULL;
	}
	m = (struct witch__omsg *)(void *)witch__buf_steal(b, &len);
	m->next = NULL;
	m->len = len - sizeof(*m);
	m->off = 0;
	m->data = (unsigned char *)(m + 1);
	m->obuf = false;
	return m;
}

/* Free one message and its data; NULL is a no-op.  Owner's thread. */
void
witch__omsg_free(struct witch__omsg *m)
{
	if (m == NULL)
		return;
	if (m->data != (unsigned char *)(m + 1))
		witch__free(m->data);	/* not built in place */
	witch__free(m);
}

/* Free a whole list linked by next; NULL is a no-op.  Owner's thread. */
void
witch__omsg_free_list(struct witch__omsg *m)
{
	struct witch__omsg *next;

	for (; m != NULL; m = next) {
		next = m->next;
		witch__omsg_free(m);
	}
}

/* Initialise an empty queue.  Before the queue is shared. */
void
witch__oqueue_init(struct witch__oqueue *q)
{
	atomic_init(&q->head, NULL);
	atomic_init(&q->bytes, 0);
}

/*
 * Push m; ownership passes to the queue.  Counts m->len before m becomes
 * visible to the consumer.  Returns the byte count right after this push.
 * Any thread.
 */
size_t
witch__oqueue_push(struct witch__oqueue *q, struct witch__omsg *m)
{
	struct witch__omsg *old;
	size_t len = m->len, after;

	after = atomic_fetch_add_explicit(&q->bytes, len,
	    memory_order_relaxed) + len;
	old = atomic_load_explicit(&q->head, memory_order_relaxed);
	do {
		m->next = old;
	} while (!atomic_compare_exchange_weak_explicit(&q->head, &old, m,
	    memory_order_release, memory_order_relaxed));
	/* m belongs to the consumer now: do not touch it again. */
	return after;
}

/*
 * Take everything pushed so far, oldest first; NULL if empty.  The caller
 * owns the list and must witch__oqueue_release() each message's bytes.
 * Consumer only.
 */
struct witch__omsg *
witch__oqueue_take(struct witch__oqueue *q)
{
	struct witch__omsg *m, *next, *fifo = NULL;

	m = atomic_exchange_explicit(&q->head, NULL, memory_order_acquire);
	for (; m != NULL; m = next) {
		next = m->next;
		m->next = fifo;
		fifo = m;
	}
	return fifo;
}

/* Account n bytes as written or dropped.  Consumer only. */
void
witch__oqueue_release(struct witch__oqueue *q, size_t n)
{
	atomic_fetch_sub_explicit(&q->bytes, n, memory_order_relaxed);
}

/* Count n bytes owed outside the queue (see oqueue.h).  Any thread. */
void
witch__oqueue_charge(struct witch__oqueue *q, size_t n)
{
	/*
	 * Relaxed, as in push: the charger publishes the message by a
	 * release operation sequenced after this (conn.c's direct write
	 * releases the socket with an acq_rel RMW and then counts its jobs
	 * out with seq_cst), so a consumer that sees the message, or the
	 * jobs' end, also sees these bytes counted.
	 */
	atomic_fetch_add_explicit(&q->bytes, n, memory_order_relaxed);
}

/* Bytes pushed and not yet released: a snapshot.  Any thread. */
size_t
witch__oqueue_bytes(const struct witch__oqueue *q)
{
	return atomic_load_explicit(&q->bytes, memory_order_relaxed);
}

/*
 * Free every message still queued and zero the byte count.  Only once no
 * producer can push any more.  Consumer (owner) only.
 */
void
witch__oqueue_destroy(struct witch__oqueue *q)
{
	witch__omsg_free_list(atomic_exchange_explicit(&q->head, NULL,
	    memory_order_acquire));
	atomic_store_explicit(&q->bytes, 0, memory_order_relaxed);
}
