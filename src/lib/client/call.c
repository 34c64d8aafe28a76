/*
 * client/call.c: the requests of the witch client API: asynchronous and
 * synchronous calls, cancel, notify (include/witch/client.h).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <witch/client.h>
#include <witch/server.h>

#include "client/client_int.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "poll/wakeup.h"
#include "proto/frame.h"

/* ---- requests ----------------------------------------------------------- */

/* json_dump_callback() into a capped buffer; keeps why it stopped. */
struct dumpto {
	struct witch__buf	*b;
	int			 rc;	/* WITCH_ETOO_LARGE, WITCH_ENOMEM */
};

static int
dump_cb(const char *p, size_t n, void *ud)
{
	struct dumpto *d = ud;

	return (d->rc = witch__buf_append(d->b, p, n)) == 0 ? 0 : -1;
}

/*
 * Room for the deadline a call gets when it is written,
 * ,"deadline_ms":N} (build_frame), whatever N.
 */
#define DEADLINE_TAIL_MAX	40

/*
 * The largest body a request may have: what the server said in hello
 * (the ceiling before any hello), less the deadline's room.  Lock held.
 */
static size_t
body_limit(const struct witch_client *c)
{
	size_t mf = c->server_max_frame ? c->server_max_frame :
	    WITCH_MAX_FRAME_CEILING;

	return mf > DEADLINE_TAIL_MAX ? mf - DEADLINE_TAIL_MAX : 1;
}

/*
 * The payload of a call without its closing brace, so the deadline can be
 * appended when it is written: {"id":N,"endpoint":E[,"data":D]
 */
static int
encode_body(struct witch__buf *b, uint64_t id, const char *endpoint,
    json_t *data, bool oneway)
{
	struct dumpto d = { b, 0 };
	char num[32];
	json_t *ep;
	int rc = 0;

	if (oneway)
		rc = witch__buf_append_str(b, "{\"oneway\":true");
	else {
		snprintf(num, sizeof(num), "{\"id\":%" PRIu64, id);
		rc = witch__buf_append_str(b, num);
	}
	if (rc == 0)
		rc = witch__buf_append_str(b, ",\"endpoint\":");
	if (rc != 0)
		return rc;
	if ((ep = json_string(endpoint)) == NULL)
		return WITCH_EINVAL;
	rc = json_dump_callback(ep, dump_cb, &d, JSON_ENCODE_ANY);
	json_decref(ep);
	if (rc != 0)
		return d.rc != 0 ? d.rc : WITCH_EINVAL;
	if (data != NULL) {
		/* Stops at the cap: an oversized request is never built. */
		if ((rc = witch__buf_append_str(b, ",\"data\":")) != 0)
			return rc;
		if (json_dump_callback(data, dump_cb, &d, JSON_ENCODE_ANY |
		    JSON_COMPACT) != 0)
			return d.rc != 0 ? d.rc : WITCH_EINVAL;
	}
	if (oneway)
		return witch__buf_append_str(b, "}");
	return 0;
}

static bool
accepting(const struct witch_client *c)
{
	return c->state == WITCH_CLIENT_CONNECTING ||
	    c->state == WITCH_CLIENT_CONNECTED ||
	    c->state == WITCH_CLIENT_RECONNECTING;
}

/*
 * Queue a call; cb runs exactly once on the driving thread.  0 (id in
 * *id), WITCH_EINVAL, WITCH_ENOMEM, WITCH_ETOO_LARGE or WITCH_ECONNECTION
 * (not connected, connecting or reconnecting).  Any thread.
 */
int
witch_client_call_async(witch_client_t *c, const char *endpoint,
    json_t *data, unsigned timeout_ms, witch_reply_fn cb, void *userdata,
    uint64_t *id)
{
	struct witch__creq *r;
	struct witch__buf b;
	size_t limit;
	int rc;

	if (c == NULL || endpoint == NULL || endpoint[0] == '\0')
		return WITCH_EINVAL;
	if ((r = witch__calloc(1, sizeof(*r))) == NULL)
		return WITCH_ENOMEM;
	r->id = atomic_fetch_add(&c->next_id, 1);
	pthread_mutex_lock(&c->mu);
	limit = body_limit(c);
	pthread_mutex_unlock(&c->mu);
	witch__buf_init(&b, limit);
	if ((rc = encode_body(&b, r->id, endpoint, data, false)) != 0) {
		witch__buf_free(&b);
		witch__free(r);
		return rc;
	}
	r->body = witch__buf_steal(&b, &r->blen);
	r->kind = RQ_CALL;
	r->cb = cb;
	r->ud = userdata;
	r->hidx = SIZE_MAX;
	pthread_mutex_lock(&c->mu);
	r->timeout_ms = timeout_ms ? timeout_ms : c->cfg.request_timeout;
	r->deadline_ns = witch__now_ns() + (uint64_t)r->timeout_ms * MS;
	if (!accepting(c))
		rc = WITCH_ECONNECTION;
	else if ((rc = witch__client_map_put(c, r)) == 0 &&
	    (rc = witch__client_heap_push(c, r)) != 0)
		witch__client_map_del(c, r->id);
	if (rc != 0) {
		pthread_mutex_unlock(&c->mu);
		witch__client_rq_free(r);
		return rc;
	}
	witch__client_lst_push(&c->sendq, r);
	if (id != NULL)
		*id = r->id;
	pthread_mutex_unlock(&c->mu);
	witch__wakeup_signal(&c->wk);
	return 0;
}

struct syncwait {
	bool		 done;
	int		 status;
	json_t		*result;
	witch_error_t	 err;
};

/*
 * The callback of a synchronous call: run_callbacks() recognises it and
 * hands the outcome over with witch__client_sync_finish() instead; if
 * called, it does the same with a new reference.  Lock not held.
 */
void
witch__client_sync_cb(witch_client_t *c, int status, json_t *result,
    const witch_error_t *err, void *ud)
{
	struct syncwait *sw = ud;

	pthread_mutex_lock(&c->mu);
	sw->status = status;
	sw->result = json_incref(result);
	if (err != NULL)
		sw->err = *err;
	sw->done = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/*
 * Hand a synchronous call's outcome to its waiter.  The result reference
 * moves to the waiter (no json_incref here and json_decref on the driving
 * thread racing the waiter's use of the same object).
 */
void
witch__client_sync_finish(struct witch_client *c, struct witch__creq *r)
{
	struct syncwait *sw = r->ud;

	pthread_mutex_lock(&c->mu);
	sw->status = r->status;
	if (r->status == 0) {
		sw->result = r->result != NULL ? r->result : json_null();
		r->result = NULL;
	} else
		sw->err = r->err;
	sw->done = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static bool
sync_done(struct witch_client *c, void *arg)
{
	return ((struct syncwait *)arg)->done;
}

/*
 * Synchronous call: see client.h.  Any thread but a callback.  The wait
 * has no deadline of its own: the request's timer completes it.
 */
int
witch_client_call(witch_client_t *c, const char *endpoint, json_t *data,
    unsigned timeout_ms, json_t **result, witch_error_t *err)
{
	struct syncwait sw;
	size_t limit;
	int rc;

	memset(&sw, 0, sizeof(sw));
	if (result != NULL)
		*result = NULL;
	if (c == NULL)
		return WITCH_EINVAL;
	pthread_mutex_lock(&c->mu);
	rc = witch__client_driving_here(c) ? WITCH_ESTATE : 0;
	pthread_mutex_unlock(&c->mu);
	if (rc != 0) {		/* from a callback: would wait for itself */
		witch__client_seterr(err, rc, 0,
		    "synchronous call from a callback");
		return rc;
	}
	rc = witch_client_call_async(c, endpoint, data, timeout_ms,
	    witch__client_sync_cb, &sw, NULL);
	if (rc == WITCH_ETOO_LARGE) {
		pthread_mutex_lock(&c->mu);
		limit = c->server_max_frame;
		pthread_mutex_unlock(&c->mu);
		if (limit != 0)
			witch__client_seterr(err, rc, 0, "request larger than "
			    "the server's max_frame of %zu bytes", limit);
		else
			witch__client_seterr(err, rc, 0, "request larger than "
			    "the %u-byte frame ceiling",
			    (unsigned)WITCH_MAX_FRAME_CEILING);
		return rc;
	}
	if (rc != 0) {
		witch__client_seterr(err, rc, 0, "%s", rc == WITCH_ECONNECTION ?
		    "not connected" : witch_strerror(rc));
		return rc;
	}
	pthread_mutex_lock(&c->mu);
	witch__client_drive_until(c, sync_done, &sw, 0);
	pthread_mutex_unlock(&c->mu);
	if (sw.status != 0) {
		if (err != NULL)
			*err = sw.err;
		json_decref(sw.result);
		return sw.status;
	}
	if (result != NULL)
		*result = sw.result;
	else
		json_decref(sw.result);
	return 0;
}

/* Queue a oneway frame (lock held). */
static int
queue_oneway(struct witch_client *c, unsigned char *body, size_t blen)
{
	struct witch__creq *r;

	if ((r = witch__calloc(1, sizeof(*r))) == NULL)
		return WITCH_ENOMEM;
	if ((r->frame = witch__malloc(blen + 4)) == NULL) {
		witch__free(r);
		return WITCH_ENOMEM;
	}
	witch__frame_put_header(r->frame, (uint32_t)blen);
	memcpy(r->frame + 4, body, blen);
	r->flen = blen + 4;
	r->kind = RQ_ONEWAY;
	r->hidx = SIZE_MAX;
	witch__client_lst_push(&c->sendq, r);
	return 0;
}

/*
 * Cancel a call: see client.h.  The callback runs on the driving thread
 * during its next turn, never inside this call.  Any thread.
 */
int
witch_client_cancel(witch_client_t *c, uint64_t id)
{
	struct witch__creq *r;
	char msg[96];
	int n;

	if (c == NULL)
		return WITCH_EINVAL;
	pthread_mutex_lock(&c->mu);
	if ((r = witch__client_map_get(c, id)) == NULL) {
		pthread_mutex_unlock(&c->mu);
		return WITCH_EINVAL;
	}
	if (r->state == RS_QUEUED && r->woff == 0)
		witch__client_fail(c, r, WITCH_ECANCELLED, 0,
		    "cancelled before it was sent");
	else {
		n = snprintf(msg, sizeof(msg), "{\"endpoint\":\"cancel\","
		    "\"oneway\":true,\"data\":{\"ids\":[%" PRIu64 "]}}", id);
		/* Best effort: without memory the server just runs it. */
		(void)queue_oneway(c, (unsigned char *)msg, (size_t)n);
		witch__client_fail(c, r, WITCH_ECANCELLED, 0, "cancelled");
	}
	pthread_mutex_unlock(&c->mu);
	witch__wakeup_signal(&c->wk);
	return 0;
}

/*
 * Send a oneway request.  0, WITCH_EINVAL, WITCH_ENOMEM, WITCH_ETOO_LARGE
 * (larger than the server's max_frame), or WITCH_ECONNECTION unless
 * connected.  Any thread.
 */
int
witch_client_notify(witch_client_t *c, const char *endpoint, json_t *data)
{
	struct witch__buf b;
	int rc;

	if (c == NULL || endpoint == NULL || endpoint[0] == '\0')
		return WITCH_EINVAL;
	pthread_mutex_lock(&c->mu);
	witch__buf_init(&b, body_limit(c) + DEADLINE_TAIL_MAX);
	pthread_mutex_unlock(&c->mu);
	if ((rc = encode_body(&b, 0, endpoint, data, true)) != 0) {
		witch__buf_free(&b);
		return rc;
	}
	pthread_mutex_lock(&c->mu);
	if (c->state != WITCH_CLIENT_CONNECTED)
		rc = WITCH_ECONNECTION;
	else
		rc = queue_oneway(c, b.data, b.len);
	pthread_mutex_unlock(&c->mu);
	witch__buf_free(&b);
	if (rc == 0)
		witch__wakeup_signal(&c->wk);
	return rc;
}
