/*
 * reactor/conn.c: connection objects and their cross-thread entry points.
 *
 * Lifetime.  A connection is reference counted.  The reactor holds one
 * reference from accept until it closes the socket; every queued or
 * running request (struct witch__reqjob) holds one; and the connection
 * holds one for itself while it sits on the server's ready list.  The
 * reactor closes asynchronously: it marks the connection closed (fd = -1,
 * closed = true), removes it from the poller and its lists, and drops its
 * reference at the end of the loop turn.  Whoever drops the last reference
 * frees the memory; by then nothing can reach it any more: the reactor no
 * longer lists it and no job refers to it.  A reply finished after the
 * close is discarded by witch__conn_send(), never written to another
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
 */
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "server/server_int.h"

struct witch__conn *
witch__conn_new(struct witch_server *srv, int fd, const char *peer)
{
	struct witch__conn *c;

	if ((c = witch__calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->srv = srv;
	c->id = srv->next_conn_id++;
	atomic_init(&c->refs, 1);
	atomic_init(&c->closed, false);
	atomic_init(&c->scheduled, false);
	atomic_init(&c->inflight, 0);
	witch__oqueue_init(&c->oq);
	witch__buf_init(&c->obuf, 0);
	c->fd = fd;
	c->state = WITCH__CONN_OPEN;
	c->writable = true;
	witch__decoder_init(&c->dec, (uint32_t)srv->cfg.max_frame);
	c->created_ns = c->active_ns = srv->now_ns;
	strlcpy(c->peer, peer, sizeof(c->peer));
	return c;
}

void
witch__conn_ref(struct witch__conn *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void
witch__conn_unref(struct witch__conn *c)
{
	/*
	 * acq_rel: every access by the other holders happens-before the
	 * free, which the thread that drops the last reference performs.
	 */
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	witch__decoder_clear(&c->dec);
	witch__omsg_free_list(c->out_head);
	witch__buf_free(&c->obuf);
	witch__oqueue_destroy(&c->oq);
	witch__free(c->precancel);
	witch__free(c);
}

void
witch__conn_schedule(struct witch__conn *c)
{
	struct witch_server *srv = c->srv;
	struct witch__conn *head;

	if (atomic_exchange_explicit(&c->scheduled, true,
	    memory_order_acq_rel))
		return;
	witch__conn_ref(c);
	head = atomic_load_explicit(&srv->ready, memory_order_relaxed);
	do {
		c->ready_next = head;
	} while (!atomic_compare_exchange_weak_explicit(&srv->ready, &head, c,
	    memory_order_release, memory_order_relaxed));
	witch__wakeup_signal(&srv->wakeup);
}

void
witch__conn_send_buf(struct witch__conn *c, struct witch__buf *b)
{
	struct witch__omsg *m;

	if (atomic_load_explicit(&c->closed, memory_order_acquire)) {
		witch__buf_free(b);
		return;
	}
	if ((m = witch__omsg_from_buf(b)) == NULL)
		return;		/* counted by the caller as a failure */
	witch__oqueue_push(&c->oq, m);
	witch__conn_schedule(c);
}

void
witch__conn_send_error(struct witch__conn *c, const char *id, int code,
    const char *msg)
{
	struct witch__buf b;

	witch__count_error(c->srv, code);
	witch__omsg_buf_init(&b);
	if (witch__reply_error(&b, id, code, msg) != 0) {
		witch__buf_free(&b);
		return;
	}
	witch__conn_send_buf(c, &b);
}
