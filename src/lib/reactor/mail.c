/*
 * reactor/mail.c: event frames posted to one connection by threads other
 * than the reactor (witch_server_send_event(), used by the peer layer to
 * reach a peer that dialed in, and by the subscribe endpoint).
 *
 * Any thread builds the frame and appends it to the reactor's mailbox,
 * a FIFO under mail_mtx, then signals the wakeup.  The reactor takes the
 * whole list each turn (one lock), looks each connection up by id on its
 * own live list and appends the frame to that connection's output like
 * its own frames, so events posted by one thread reach a connection in
 * the order they were posted.  A connection gone or closing by then: the
 * frame is discarded (a connection id is never reused, so it can never
 * reach another client).  The mailbox is bounded (WITCH__MAIL_MAX); the
 * connection's output limits bound the rest as for any reply.
 *
 * Memory ordering: the mutex orders the poster's writes of the frame
 * before the reactor's reads of it.  The wakeup is signalled after the
 * unlock; the reactor takes the list after every wait, so a frame posted
 * while the reactor is busy is seen at the latest on the next turn.
 */
#include <pthread.h>

#include "core/alloc.h"
#include "reactor/reactor.h"

struct witch__mail {
	struct witch__mail	*next;
	uint64_t		 client_id;
	struct witch__buf	 b;	/* an omsg buffer holding one frame */
};

int
witch__mail_post(struct witch__reactor *r, uint64_t client_id,
    const char *event, const json_t *data)
{
	struct witch__mail *m;
	int phase = atomic_load(&r->phase), rc;

	if (phase != WITCH__PHASE_RUNNING && phase != WITCH__PHASE_DRAINING)
		return WITCH_ESTATE;
	if ((m = witch__calloc(1, sizeof(*m))) == NULL)
		return WITCH_ENOMEM;
	m->client_id = client_id;
	witch__omsg_buf_init(&m->b);
	if ((rc = witch__reply_event(&m->b, event, data)) != 0) {
		witch__buf_free(&m->b);
		witch__free(m);
		return rc;
	}
	pthread_mutex_lock(&r->mail_mtx);
	if (r->nmail >= WITCH__MAIL_MAX) {
		pthread_mutex_unlock(&r->mail_mtx);
		witch__buf_free(&m->b);
		witch__free(m);
		return WITCH_EOVERLOADED;
	}
	if (r->mail_tail != NULL)
		r->mail_tail->next = m;
	else
		r->mail_head = m;
	r->mail_tail = m;
	r->nmail++;
	pthread_mutex_unlock(&r->mail_mtx);
	witch__wakeup_signal(&r->wakeup);
	return 0;
}

void
witch__mail_deliver(struct witch__reactor *r)
{
	struct witch__mail *m, *next;
	struct witch__conn *c;

	pthread_mutex_lock(&r->mail_mtx);
	m = r->mail_head;
	r->mail_head = r->mail_tail = NULL;
	r->nmail = 0;
	pthread_mutex_unlock(&r->mail_mtx);
	for (; m != NULL; m = next) {
		next = m->next;
		for (c = r->conns; c != NULL; c = c->next)
			if (c->id == m->client_id)
				break;
		if (c != NULL && c->fd >= 0 && c->state == WITCH__CONN_OPEN)
			witch__conn_reply_buf(c, &m->b);
		else
			witch__buf_free(&m->b);
		witch__free(m);
	}
}

void
witch__mail_clear(struct witch__reactor *r)
{
	struct witch__mail *m, *next;

	pthread_mutex_lock(&r->mail_mtx);
	m = r->mail_head;
	r->mail_head = r->mail_tail = NULL;
	r->nmail = 0;
	pthread_mutex_unlock(&r->mail_mtx);
	for (; m != NULL; m = next) {
		next = m->next;
		witch__buf_free(&m->b);
		witch__free(m);
	}
}
