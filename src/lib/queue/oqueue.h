/*
 * queue/oqueue.h: per-connection lock-free output queue (no JSON).
 *
 * Multi-producer (worker threads, and the reactor itself), single-consumer
 * (the reactor).  Producers push finished frames onto an atomic list head
 * with a CAS (release); the consumer takes the whole list with one exchange
 * (acquire) and reverses it into FIFO order.  Byte accounting is kept
 * alongside so the reactor can apply output limits.
 * See doc/internals/output-queue.md for the memory-ordering argument.
 */
#ifndef WITCH__QUEUE_OQUEUE_H
#define WITCH__QUEUE_OQUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/alloc.h"

/* One queued message: len bytes at data, off of them already written. */
struct witch__omsg {
	struct witch__omsg	*next;
	size_t			 len;
	size_t			 off;
	unsigned char		*data;	/* owned (witch__malloc) */
	bool			 obuf;	/* a block of the reactor's output
					 * buffers, for their cache (conn.c) */
};

struct witch__oqueue {
	_Atomic(struct witch__omsg *)	head;	/* LIFO of pushed messages */
	atomic_size_t			bytes;	/* pushed, not yet released */
};

/*
 * Wrap data (len bytes, allocated with witch__malloc) in a message.  Takes
 * ownership of data on every path: on failure (NULL) data is freed.  For
 * the unit tests (the library builds messages with witch__omsg_from_buf):
 * inline, so it is not compiled into the library.  Any thread.
 */
static inline struct witch__omsg *
witch__omsg_new(unsigned char *data, size_t len)
{
	struct witch__omsg *m;

	if ((m = witch__malloc(sizeof(*m))) == NULL) {
		witch__free(data);
		return NULL;
	}
	m->next = NULL;
	m->len = len;
	m->off = 0;
	m->data = data;
	m->obuf = false;
	return m;
}
struct witch__buf;
/*
 * One allocation per message: start a buffer with room for the message
 * header in front, append the frame after it, then turn the buffer into
 * a message with witch__omsg_from_buf() (which takes its bytes; the
 * buffer is empty afterwards).  from_buf returns NULL for an empty or
 * failed buffer, which it frees.  If the header cannot be allocated,
 * every append to the buffer fails too (WITCH_ENOMEM), so a frame is
 * never built without its header.
 */
void witch__omsg_buf_init(struct witch__buf *b);
/* The same with room for hint bytes after the header (0: none). */
void witch__omsg_buf_init_hint(struct witch__buf *b, size_t hint);
struct witch__omsg *witch__omsg_from_buf(struct witch__buf *b);
/* Free one message and its data; NULL is a no-op. */
void witch__omsg_free(struct witch__omsg *m);
/* Free a whole list linked by next. */
void witch__omsg_free_list(struct witch__omsg *m);

/* Initialise an empty queue. */
void witch__oqueue_init(struct witch__oqueue *q);
/*
 * Push m (ownership passes to the queue).  Any thread.  Adds m->len to the
 * byte count before publishing m.  Returns the byte count after the push.
 */
size_t witch__oqueue_push(struct witch__oqueue *q, struct witch__omsg *m);
/*
 * Consumer only: take everything pushed so far, oldest first (NULL if
 * empty).  The caller owns the list; it must call witch__oqueue_release()
 * for the bytes of each message once written or dropped.
 */
struct witch__omsg *witch__oqueue_take(struct witch__oqueue *q);
/* Account n bytes as gone (written or dropped).  Consumer only. */
void witch__oqueue_release(struct witch__oqueue *q, size_t n);
/* Bytes pushed and not yet released.  Any thread (a snapshot). */
size_t witch__oqueue_bytes(const struct witch__oqueue *q);
/*
 * Count n bytes owed outside the queue (a message the consumer will get
 * another way) in q's byte count; the consumer releases them with
 * witch__oqueue_release as for a pushed message.  Any thread.
 */
void witch__oqueue_charge(struct witch__oqueue *q, size_t n);
/*
 * Free every message still queued.  Only once no producer can push any
 * more (after the last reference to the owner is gone).
 */
void witch__oqueue_destroy(struct witch__oqueue *q);

#endif
