/*
 * client/reqtab.c: the request table of the witch client: the send and
 * sent lists, the id map, the timer heap, and completion.  Lock held
 * everywhere.  See doc/internals/client.md.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client/client_int.h"
#include "core/alloc.h"

/* ---- small helpers --------------------------------------------------- */

/*
 * Fill *e (NULL: nothing) with code, remote and the formatted text.  Any
 * thread.
 */
void
witch__client_seterr(witch_error_t *e, int code, int remote, const char *fmt,
    ...)
{
	va_list ap;

	if (e == NULL)
		return;
	e->code = code;
	e->remote = remote;
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
}

/* Append r to l.  Lock held. */
void
witch__client_lst_push(struct rqlist *l, struct witch__creq *r)
{
	r->next = NULL;
	r->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
}

/* Put r first in l.  Lock held. */
void
witch__client_lst_push_front(struct rqlist *l, struct witch__creq *r)
{
	r->prev = NULL;
	r->next = l->head;
	if (l->head != NULL)
		l->head->prev = r;
	else
		l->tail = r;
	l->head = r;
}

/* Unlink r from l.  Lock held. */
void
witch__client_lst_remove(struct rqlist *l, struct witch__creq *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		l->head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	else
		l->tail = r->prev;
	r->next = r->prev = NULL;
}

/* Free a request with its body, frame and result; NULL is a no-op. */
void
witch__client_rq_free(struct witch__creq *r)
{
	if (r == NULL)
		return;
	witch__free(r->body);
	witch__free(r->frame);
	json_decref(r->result);
	witch__free(r);
}

/* ---- id map: open addressing, linear probing, backward-shift delete --- */

static size_t
map_slot(uint64_t id, size_t cap)
{
	id ^= id >> 33;
	id *= UINT64_C(0xff51afd7ed558ccd);
	id ^= id >> 33;
	return (size_t)id & (cap - 1);
}

static int
map_grow(struct witch_client *c)
{
	struct witch__creq **old = c->map, **nm;
	size_t oldcap = c->mapcap, ncap = oldcap ? oldcap * 2 : 64, i, j;

	if ((nm = witch__calloc(ncap, sizeof(*nm))) == NULL)
		return WITCH_ENOMEM;
	for (i = 0; i < oldcap; i++) {
		if (old[i] == NULL)
			continue;
		for (j = map_slot(old[i]->id, ncap); nm[j] != NULL;
		    j = (j + 1) & (ncap - 1))
			;
		nm[j] = old[i];
	}
	witch__free(old);
	c->map = nm;
	c->mapcap = ncap;
	return 0;
}

/*
 * Add r to the id map, growing it at load 1/2.  0 or WITCH_ENOMEM.
 * Lock held.
 */
int
witch__client_map_put(struct witch_client *c, struct witch__creq *r)
{
	size_t j;
	int rc;

	if ((c->mapn + 1) * 2 > c->mapcap && (rc = map_grow(c)) != 0)
		return rc;
	for (j = map_slot(r->id, c->mapcap); c->map[j] != NULL;
	    j = (j + 1) & (c->mapcap - 1))
		;
	c->map[j] = r;
	c->mapn++;
	return 0;
}

static size_t
map_index(const struct witch_client *c, uint64_t id)
{
	size_t j;

	if (c->mapcap == 0)
		return SIZE_MAX;
	for (j = map_slot(id, c->mapcap); c->map[j] != NULL;
	    j = (j + 1) & (c->mapcap - 1))
		if (c->map[j]->id == id)
			return j;
	return SIZE_MAX;
}

/* The request of id (borrowed), or NULL.  Lock held. */
struct witch__creq *
witch__client_map_get(const struct witch_client *c, uint64_t id)
{
	size_t j = map_index(c, id);

	return j == SIZE_MAX ? NULL : c->map[j];
}

/* Remove id from the map (backward-shift deletion).  Lock held. */
void
witch__client_map_del(struct witch_client *c, uint64_t id)
{
	size_t i = map_index(c, id), j, k, m = c->mapcap - 1;

	if (i == SIZE_MAX)
		return;
	c->map[i] = NULL;
	c->mapn--;
	/* Shift back later entries of the cluster that may now be lost. */
	for (j = (i + 1) & m; c->map[j] != NULL; j = (j + 1) & m) {
		k = map_slot(c->map[j]->id, c->mapcap);
		if ((j > i && (k <= i || k > j)) ||
		    (j < i && (k <= i && k > j))) {
			c->map[i] = c->map[j];
			c->map[j] = NULL;
			i = j;
		}
	}
}

/* ---- timer heap ------------------------------------------------------ */

static void
heap_set(struct witch_client *c, size_t i, struct witch__creq *r)
{
	c->heap[i] = r;
	r->hidx = i;
}

static void
heap_up(struct witch_client *c, size_t i)
{
	struct witch__creq *r = c->heap[i];
	size_t p;

	while (i > 0) {
		p = (i - 1) / 2;
		if (c->heap[p]->deadline_ns <= r->deadline_ns)
			break;
		heap_set(c, i, c->heap[p]);
		i = p;
	}
	heap_set(c, i, r);
}

static void
heap_down(struct witch_client *c, size_t i)
{
	struct witch__creq *r = c->heap[i];
	size_t k;

	for (;;) {
		k = 2 * i + 1;
		if (k >= c->hn)
			break;
		if (k + 1 < c->hn &&
		    c->heap[k + 1]->deadline_ns < c->heap[k]->deadline_ns)
			k++;
		if (r->deadline_ns <= c->heap[k]->deadline_ns)
			break;
		heap_set(c, i, c->heap[k]);
		i = k;
	}
	heap_set(c, i, r);
}

/* Add r to the timer heap by deadline.  0 or WITCH_ENOMEM.  Lock held. */
int
witch__client_heap_push(struct witch_client *c, struct witch__creq *r)
{
	struct witch__creq **nh;
	size_t ncap;

	if (c->hn == c->hcap) {
		ncap = c->hcap ? c->hcap * 2 : 64;
		nh = witch__reallocarray(c->heap, ncap, sizeof(*nh));
		if (nh == NULL)
			return WITCH_ENOMEM;
		c->heap = nh;
		c->hcap = ncap;
	}
	heap_set(c, c->hn++, r);
	heap_up(c, c->hn - 1);
	return 0;
}

static void
heap_del(struct witch_client *c, struct witch__creq *r)
{
	struct witch__creq *m;
	size_t i = r->hidx;

	if (i >= c->hn || c->heap[i] != r)
		return;
	c->hn--;
	if (i != c->hn) {
		m = c->heap[c->hn];
		heap_set(c, i, m);
		heap_up(c, i);
		heap_down(c, m->hidx);
	}
	r->hidx = SIZE_MAX;
}

/* ---- state and completion (lock held) ---------------------------------- */

/*
 * Change state, recording the change for the state callback and waking
 * waiters.  Lock held.
 */
void
witch__client_set_state(struct witch_client *c, enum witch_client_state ns)
{
	if (c->state == ns)
		return;
	if (c->nsev < NSEV_MAX) {
		c->sev[c->nsev].old = c->state;
		c->sev[c->nsev].new = ns;
		c->nsev++;
	} else
		c->sev[NSEV_MAX - 1].new = ns;
	c->state = ns;
	pthread_cond_broadcast(&c->cv);
}

/* Append r to the done list, whose callbacks run in order. */
static void
done_push(struct witch_client *c, struct witch__creq *r)
{
	r->dnext = NULL;
	if (c->done_tail != NULL)
		c->done_tail->dnext = r;
	else
		c->done_head = r;
	c->done_tail = r;
}

/*
 * Complete a call: out of the map, the heap and its list, onto the done
 * list.  A call whose frame is partly written hands the rest of the frame
 * to c->pfr so the stream stays in sync.  result is stolen.
 */
void
witch__client_complete(struct witch_client *c, struct witch__creq *r,
    int status, json_t *result, const witch_error_t *err)
{
	if (r->state == RS_DONE) {
		json_decref(result);
		return;
	}
	witch__client_map_del(c, r->id);
	heap_del(c, r);
	if (r->state == RS_QUEUED) {
		if (r->woff > 0) {
			c->pfr = r->frame;
			c->pflen = r->flen;
			c->pfoff = r->woff;
			r->frame = NULL;
		}
		witch__client_lst_remove(&c->sendq, r);
	} else
		witch__client_lst_remove(&c->sentq, r);
	witch__free(r->frame);
	witch__free(r->body);
	r->frame = r->body = NULL;
	r->state = RS_DONE;
	r->status = status;
	r->result = result;
	if (err != NULL)
		r->err = *err;
	else
		memset(&r->err, 0, sizeof(r->err));
	done_push(c, r);
}

/* Complete r with error code, remote and text.  Lock held. */
void
witch__client_fail(struct witch_client *c, struct witch__creq *r, int code,
    int remote, const char *text)
{
	witch_error_t e;

	witch__client_seterr(&e, code, remote, "%s", text);
	witch__client_complete(c, r, code, NULL, &e);
}

/* Fail every call not yet fully written (lock held). */
void
witch__client_fail_queued(struct witch_client *c, int code, const char *text)
{
	struct witch__creq *r, *nx;

	for (r = c->sendq.head; r != NULL; r = nx) {
		nx = r->next;
		if (r->kind == RQ_CALL)
			witch__client_fail(c, r, code, 0, text);
		else {
			witch__client_lst_remove(&c->sendq, r);
			witch__client_rq_free(r);
		}
	}
}

/*
 * Queue a server event for the event callback, behind the completions
 * already on the done list, so callbacks run in the order the frames
 * arrived.  name is copied; data (NULL: JSON null) gets a reference.  0 or
 * WITCH_ENOMEM (the event is then lost).  Lock held.
 */
int
witch__client_queue_event(struct witch_client *c, const char *name,
    json_t *data)
{
	struct witch__creq *r;
	size_t n = strlen(name);

	if ((r = witch__calloc(1, sizeof(*r))) == NULL)
		return WITCH_ENOMEM;
	if ((r->body = witch__malloc(n + 1)) == NULL) {
		witch__free(r);
		return WITCH_ENOMEM;
	}
	memcpy(r->body, name, n + 1);
	r->blen = n;
	r->kind = RQ_EVENT;
	r->state = RS_DONE;
	r->hidx = SIZE_MAX;
	r->result = json_incref(data != NULL ? data : json_null());
	done_push(c, r);
	return 0;
}
