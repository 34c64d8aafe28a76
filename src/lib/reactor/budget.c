/*
 * reactor/budget.c: the memory budgets of connections (reactor.md,
 * "Budgets"): the server-wide gauge of bytes held in partial frames and
 * the frame budget that bounds it, the frame timeout, the
 * pre-authentication frame cap, and the per-request nesting depth and
 * decode-cost checks.  Reactor thread only.
 */
#include <stdatomic.h>
#include <stdio.h>

#include "reactor/reactor.h"

/*
 * Account the change of c's partial-frame memory since the last call in
 * the server-wide gauge (what the frame budget compares).
 */
void
witch__conn_held_update(struct witch__conn *c)
{
	struct witch__reactor *r = c->r;
	size_t now = witch__decoder_memory(&c->dec);

	if (now == c->held)
		return;
	r->frame_bytes = r->frame_bytes - c->held + now;
	c->held = now;
	atomic_store_explicit(&r->ctr.frame_bytes_held, r->frame_bytes,
	    memory_order_relaxed);
}

/* Free c's partial frame, if any (c takes no more input). */
void
witch__conn_partial_release(struct witch__conn *c)
{
	witch__decoder_clear(&c->dec);
	witch__conn_held_update(c);
	c->frame_since_ns = 0;
}

/*
 * Lift the pre-authentication frame cap once c is past it: when the
 * server requires a key, once c authenticated; without a key, at once for
 * a trusted peer (loopback, unix socket) and after the first complete
 * frame for a remote one.
 */
void
witch__conn_frame_cap(struct witch__conn *c)
{
	const struct witch__reactor_opts *o = &c->r->opt;

	if (c->dec.max_frame >= o->max_frame)
		return;
	if (o->auth_required ? c->authenticated :
	    c->trusted || c->got_frame)
		c->dec.max_frame = (uint32_t)o->max_frame;
}

void
witch__conn_set_authenticated(struct witch__conn *c)
{
	c->authenticated = true;
	witch__conn_frame_cap(c);
}

/*
 * After a feed: when a partial frame is held, note when it began (a new
 * one when the decoder delivered frames since), for the frame timeout.
 */
void
witch__conn_frame_track(struct witch__conn *c)
{
	if (!witch__decoder_partial(&c->dec)) {
		c->frame_since_ns = 0;
		return;
	}
	if (c->frame_since_ns == 0 || c->frame_seen != c->dec.frames) {
		c->frame_since_ns = c->r->now_ns;
		c->frame_seen = c->dec.frames;
	}
}

void
witch__conn_frame_expired(struct witch__conn *c)
{
	struct witch__reactor *r = c->r;

	atomic_fetch_add(&r->ctr.frame_timeouts, 1);
	if (c->dec.body != NULL)
		witch__rlog(r, WITCH_LOG_INFO, "client %llu (%s) closed: frame "
		    "of %zu bytes not complete after %u ms (%zu received)",
		    (unsigned long long)c->id, c->peer, c->dec.body_need,
		    atomic_load(&r->live.frame_ms), c->dec.body_len);
	else
		witch__rlog(r, WITCH_LOG_INFO, "client %llu (%s) closed: frame "
		    "header not complete after %u ms (%zu of 4 bytes)",
		    (unsigned long long)c->id, c->peer,
		    atomic_load(&r->live.frame_ms), c->dec.hdr_len);
	witch__conn_partial_release(c);
	witch__conn_close(c, 0, "frame_timeout", 1000);
}

/*
 * Past the frame budget: close the connections holding the largest
 * partial frames until the total is back under it.  O(connections) per
 * connection closed; runs only over the budget.
 */
void
witch__frame_budget_enforce(struct witch__reactor *r)
{
	struct witch__conn *c, *big;

	while (r->frame_bytes > r->opt.frame_budget) {
		big = NULL;
		for (c = r->conns; c != NULL; c = c->next)
			if (c->held > 0 && (big == NULL || c->held > big->held))
				big = c;
		if (big == NULL)
			return;
		atomic_fetch_add(&r->ctr.frame_budget_drops, 1);
		witch__rlog(r, WITCH_LOG_WARNING, "client %llu (%s) closed: "
		    "holds %zu bytes of a partial frame, %zu held in all over "
		    "the frame budget of %zu", (unsigned long long)big->id,
		    big->peer, big->held, r->frame_bytes,
		    r->opt.frame_budget);
		witch__conn_partial_release(big);
		witch__conn_close(big, 0, "frame_budget", 1000);
	}
}

bool
witch__conn_admit(struct witch__conn *c, const struct witch__request_env *env,
    bool is_inline)
{
	struct witch__reactor *r = c->r;
	char msg[160];
	size_t held;

	if (r->opt.max_depth > 0 && env->depth > r->opt.max_depth) {
		atomic_fetch_add(&r->ctr.depth_refusals, 1);
		snprintf(msg, sizeof(msg), "request nested %u deep, over "
		    "max_depth (%u)", env->depth, r->opt.max_depth);
		goto refuse;
	}
	if (r->opt.decode_budget == 0)
		return true;
	if (env->decode_cost > r->opt.decode_budget) {
		atomic_fetch_add(&r->ctr.decode_refusals, 1);
		snprintf(msg, sizeof(msg), "decoding the request would take "
		    "about %zu bytes, over decode_budget (%zu)",
		    env->decode_cost, r->opt.decode_budget);
		goto refuse;
	}
	if (is_inline)
		return true;
	held = atomic_load(&c->decode_held) + c->acc_cost;
	if (held + env->decode_cost > r->opt.decode_budget) {
		atomic_fetch_add(&r->ctr.decode_refusals, 1);
		atomic_fetch_add(&r->ctr.requests_failed, 1);
		if (!env->oneway)
			witch__conn_reply_error(c, env->id, WITCH_EOVERLOADED,
			    "decode budget of this connection in use by "
			    "requests in flight; retry");
		return false;
	}
	return true;
refuse:
	atomic_fetch_add(&r->ctr.requests_failed, 1);
	if (!env->oneway)
		witch__conn_reply_error(c, env->id, WITCH_EINVALID_REQUEST, msg);
	return false;
}
