/*
 * client/wire.c: the wire of the witch client: writing frames, reading
 * and decoding replies, dispatching them to their requests.  Lock held
 * everywhere.  See doc/internals/client.md.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <witch/server.h>

#include "client/client_int.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "net/sock.h"
#include "poll/poller.h"
#include "proto/frame.h"

/* ---- the link: writing ------------------------------------------------ */

/* Build the frame of a call with its remaining time as deadline_ms. */
static int
build_frame(struct witch__creq *r, uint64_t now)
{
	char tail[48];
	uint64_t rem = r->deadline_ns > now ?
	    (r->deadline_ns - now + MS - 1) / MS : 1;
	size_t tl;

	tl = (size_t)snprintf(tail, sizeof(tail), ",\"deadline_ms\":%" PRIu64
	    "}", rem ? rem : 1);
	if ((r->frame = witch__malloc(4 + r->blen + tl)) == NULL)
		return WITCH_ENOMEM;
	r->flen = 4 + r->blen + tl;
	witch__frame_put_header(r->frame, (uint32_t)(r->blen + tl));
	memcpy(r->frame + 4, r->body, r->blen);
	memcpy(r->frame + 4 + r->blen, tail, tl);
	return 0;
}

/* Gather what may be written now into iov; returns the count. */
static int
gather(struct witch_client *c, struct iovec *iov, uint64_t now)
{
	struct witch__creq *r, *nx;
	int n = 0;

	if (c->pfr != NULL) {
		iov[n].iov_base = c->pfr + c->pfoff;
		iov[n++].iov_len = c->pflen - c->pfoff;
	}
	for (r = c->sendq.head; r != NULL && n < NIOV; r = nx) {
		nx = r->next;
		if (!c->hello_done && r->kind != RQ_HELLO)
			break;
		if (r->frame == NULL && build_frame(r, now) != 0) {
			witch__client_fail(c, r, WITCH_ENOMEM, 0,
			    "out of memory");
			continue;
		}
		iov[n].iov_base = r->frame + r->woff;
		iov[n++].iov_len = r->flen - r->woff;
	}
	return n;
}

/* Account for n bytes written from the front of the output. */
static void
consumed(struct witch_client *c, size_t n)
{
	struct witch__creq *r;
	size_t left;

	if (c->pfr != NULL) {
		left = c->pflen - c->pfoff;
		if (n < left) {
			c->pfoff += n;
			return;
		}
		n -= left;
		witch__free(c->pfr);
		c->pfr = NULL;
	}
	while (n > 0 && (r = c->sendq.head) != NULL) {
		left = r->flen - r->woff;
		if (n < left) {
			r->woff += n;
			return;
		}
		n -= left;
		witch__client_lst_remove(&c->sendq, r);
		if (r->kind == RQ_CALL) {
			witch__free(r->frame);
			witch__free(r->body);
			r->frame = r->body = NULL;
			r->woff = 1;	/* written */
			r->state = RS_SENT;
			witch__client_lst_push(&c->sentq, r);
		} else
			witch__client_rq_free(r);
	}
}

/* Write until EAGAIN or nothing is left (lock held). */
void
witch__client_flush(struct witch_client *c)
{
	struct iovec iov[NIOV];
	uint64_t now = witch__now_ns();
	ssize_t w;
	int n, rounds;

	for (rounds = 0; rounds < READ_BUDGET; rounds++) {
		if (c->fd < 0 || c->connecting || !c->writable)
			return;
		if ((n = gather(c, iov, now)) == 0)
			return;
		w = witch__sock_writev(c->fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				c->writable = false;
				return;
			}
			witch__client_link_lost(c, WITCH_ECONNECTION, 0, false,
			    strerror(errno));
			return;
		}
		consumed(c, (size_t)w);
	}
	c->io_pending = true;
}

/* ---- the link: reading ------------------------------------------------ */

static void
ffail(struct witch_client *c, int code, int remote, bool fatal,
    const char *fmt, ...)
{
	va_list ap;

	c->ffail = true;
	c->ffatal = fatal;
	c->ferr.code = code;
	c->ferr.remote = remote;
	va_start(ap, fmt);
	vsnprintf(c->ferr.text, sizeof(c->ferr.text), fmt, ap);
	va_end(ap);
}

/* An error object of a reply into e; false if malformed. */
static bool
parse_error(json_t *eo, witch_error_t *e)
{
	json_t *code = json_object_get(eo, "code");
	json_t *msg = json_object_get(eo, "message");
	int rc;

	if (!json_is_object(eo) || !json_is_string(code))
		return false;
	rc = witch_err_from_name(json_string_value(code));
	if (rc == WITCH_EINVAL &&
	    strcmp(json_string_value(code), "invalid_argument") != 0)
		rc = WITCH_EREMOTE;	/* a code this library does not know */
	e->remote = rc;
	switch (rc) {
	case WITCH_ECANCELLED:
	case WITCH_ETIMEOUT:
		e->code = rc;
		break;
	default:
		e->code = WITCH_EREMOTE;
		break;
	}
	snprintf(e->text, sizeof(e->text), "%s",
	    json_is_string(msg) ? json_string_value(msg) :
	    json_string_value(code));
	return true;
}

/* Hello (and auth, if any) done: the link is up. */
static int
link_up(struct witch_client *c)
{
	c->hello_done = true;
	c->auth_id = 0;
	c->link_deadline_ns = 0;
	c->up_since_ns = witch__now_ns();
	c->ever_up = true;
	memset(&c->last_err, 0, sizeof(c->last_err));
	witch__client_set_state(c, WITCH_CLIENT_CONNECTED);
	return 0;
}

/*
 * The client has a key: answer the hello reply's challenge with auth
 * (doc/internals/auth.md).  A server that offers none cannot prove it
 * holds the key, so it is refused: a stripped challenge must not pass.
 */
static int
start_auth(struct witch_client *c, json_t *res)
{
	json_t *a = json_object_get(res, "auth");
	json_t *nonce = json_object_get(a, "nonce");
	json_t *proto = json_object_get(res, "protocol");
	uint8_t proof[WITCH__AUTH_MAC];
	char nh[WITCH__AUTH_HEX + 1], ph[WITCH__AUTH_HEX + 1];

	if (!json_is_object(a) || !json_is_string(nonce) ||
	    !json_is_string(json_object_get(a, "method")) ||
	    strcmp(json_string_value(json_object_get(a, "method")),
	    WITCH__AUTH_METHOD) != 0 ||
	    !witch__hex_decode(json_string_value(nonce),
	    json_string_length(nonce), c->auth_ns, sizeof(c->auth_ns))) {
		ffail(c, WITCH_EUNAUTHORIZED, 0, true, "the server offers no "
		    "authentication (it has no key?) but this client has a "
		    "key: refusing to talk to a server that cannot prove it "
		    "holds the key");
		return WITCH_EUNAUTHORIZED;
	}
	if (!json_is_string(proto) || strlcpy(c->auth_proto,
	    json_string_value(proto), sizeof(c->auth_proto)) >=
	    sizeof(c->auth_proto)) {
		ffail(c, WITCH_EPROTOCOL, 0, false, "malformed hello reply");
		return WITCH_EPROTOCOL;
	}
	do
		arc4random_buf(c->auth_nc, sizeof(c->auth_nc));
	while (memcmp(c->auth_nc, c->auth_ns, sizeof(c->auth_nc)) == 0);
	witch__auth_proof(&c->cfg.key, WITCH__AUTH_CLIENT, c->auth_proto,
	    c->auth_ns, c->auth_nc, proof);
	witch__hex_encode(c->auth_nc, sizeof(c->auth_nc), nh);
	witch__hex_encode(proof, sizeof(proof), ph);
	explicit_bzero(proof, sizeof(proof));
	if (witch__client_queue_builtin(c, "auth", json_pack("{s:s, s:s}",
	    "nonce", nh, "proof", ph), &c->auth_id) != 0) {
		ffail(c, WITCH_ECONNECTION, 0, false, "out of memory "
		    "building auth");
		return WITCH_ECONNECTION;
	}
	return 0;
}

static int
on_hello(struct witch_client *c, json_t *res, json_t *eo)
{
	witch_error_t e;
	json_int_t mf;

	if (res != NULL) {
		json_decref(c->info);
		c->info = json_deep_copy(res);
		/* The largest request the server takes (older ones: unsaid). */
		mf = json_integer_value(json_object_get(res, "max_frame"));
		c->server_max_frame = mf > 0 && mf <= WITCH_MAX_FRAME_CEILING ?
		    (size_t)mf : 0;
		if (witch__key_on(&c->cfg.key))
			return start_auth(c, res);
		return link_up(c);
	}
	if (!parse_error(eo, &e)) {
		ffail(c, WITCH_EPROTOCOL, 0, false, "malformed hello reply");
		return WITCH_EPROTOCOL;
	}
	switch (e.remote) {
	case WITCH_EINCOMPATIBLE:
	case WITCH_EUNSUPPORTED_PROTOCOL:
	case WITCH_EUNAUTHORIZED:
		ffail(c, e.remote, 0, true, "%s", e.text);
		break;
	default:
		ffail(c, WITCH_EREMOTE, e.remote, false, "hello: %s", e.text);
		break;
	}
	return WITCH_ECONNECTION;
}

/*
 * The auth reply: the server's proof, checked before the link is up.
 * Any failure is final (a wrong key does not get better by retrying).
 */
static int
on_auth(struct witch_client *c, json_t *res, json_t *eo)
{
	json_t *p = json_object_get(res, "proof");
	witch_error_t e;
	bool ok;

	if (res != NULL) {
		ok = json_is_string(p) && witch__auth_client_check(&c->cfg.key,
		    c->auth_proto, c->auth_ns, c->auth_nc, json_string_value(p),
		    json_string_length(p));
		explicit_bzero(c->auth_nc, sizeof(c->auth_nc));
		if (ok)
			return link_up(c);
		ffail(c, WITCH_EUNAUTHORIZED, 0, true, "the server's proof "
		    "is wrong: it does not hold this key");
		return WITCH_EUNAUTHORIZED;
	}
	if (!parse_error(eo, &e)) {
		ffail(c, WITCH_EPROTOCOL, 0, false, "malformed auth reply");
		return WITCH_EPROTOCOL;
	}
	ffail(c, WITCH_EUNAUTHORIZED, 0, true, "authentication failed: %s",
	    e.text);
	return WITCH_EUNAUTHORIZED;
}

/*
 * A frame with an "event" and no id: queued for the event callback (if
 * any), in order with the replies; "closing" then drops the link.
 */
static int
on_event(struct witch_client *c, json_t *o, json_t *ev)
{
	json_t *reason, *data = json_object_get(o, "data");

	if (!json_is_string(ev)) {
		ffail(c, WITCH_EPROTOCOL, 0, false, "event is not a string");
		return WITCH_EPROTOCOL;
	}
	/* Best effort: without memory the event is lost, the link kept. */
	if (c->cfg.event_fn != NULL && !c->freeing)
		(void)witch__client_queue_event(c, json_string_value(ev), data);
	if (strcmp(json_string_value(ev), "closing") != 0)
		return 0;
	reason = json_object_get(data, "reason");
	ffail(c, WITCH_ECONNECTION, 0, false, "server closing: %s",
	    json_is_string(reason) ? json_string_value(reason) : "?");
	return WITCH_ECONNECTION;
}

/* A reply whose id is null: the server's word about the connection. */
static int
on_null_id(struct witch_client *c, json_t *eo)
{
	witch_error_t e;

	if (!parse_error(eo, &e)) {
		ffail(c, WITCH_EPROTOCOL, 0, false, "reply with id null "
		    "and no error");
		return WITCH_EPROTOCOL;
	}
	if (e.remote == WITCH_EPARSE || e.remote == WITCH_EINVALID_REQUEST) {
		c->unknown++;	/* the stream is still in sync */
		return 0;
	}
	ffail(c, WITCH_ECONNECTION, 0, false, "server: %s: %s",
	    witch_err_name(e.remote), e.text);
	return WITCH_ECONNECTION;
}

static int
dispatch(struct witch_client *c, json_t *o)
{
	json_t *id, *res, *eo, *ev;
	struct witch__creq *r;
	witch_error_t e;
	json_int_t v;

	if (!json_is_object(o)) {
		ffail(c, WITCH_EPROTOCOL, 0, false, "reply is not an object");
		return WITCH_EPROTOCOL;
	}
	id = json_object_get(o, "id");
	res = json_object_get(o, "result");
	eo = json_object_get(o, "error");
	if (id == NULL) {
		if ((ev = json_object_get(o, "event")) != NULL)
			return on_event(c, o, ev);
		ffail(c, WITCH_EPROTOCOL, 0, false, "reply without id");
		return WITCH_EPROTOCOL;
	}
	if (json_is_null(id))
		return on_null_id(c, eo);
	if ((res == NULL) == (eo == NULL)) {
		ffail(c, WITCH_EPROTOCOL, 0, false,
		    "reply needs exactly one of result and error");
		return WITCH_EPROTOCOL;
	}
	if (!json_is_integer(id) || (v = json_integer_value(id)) <= 0) {
		c->unknown++;
		return 0;
	}
	if (!c->hello_done) {
		if ((uint64_t)v == c->hello_id)
			return on_hello(c, res, eo);
		if (c->auth_id != 0 && (uint64_t)v == c->auth_id)
			return on_auth(c, res, eo);
		ffail(c, WITCH_EPROTOCOL, 0, false, "reply before hello");
		return WITCH_EPROTOCOL;
	}
	if ((r = witch__client_map_get(c, (uint64_t)v)) == NULL ||
	    r->state != RS_SENT) {
		c->unknown++;
		return 0;
	}
	if (res != NULL) {
		witch__client_complete(c, r, 0, json_incref(res), NULL);
		return 0;
	}
	if (!parse_error(eo, &e)) {
		ffail(c, WITCH_EPROTOCOL, 0, false, "malformed error object");
		return WITCH_EPROTOCOL;
	}
	witch__client_complete(c, r, e.code, NULL, &e);
	return 0;
}

/* Decoder callback: one complete reply frame. */
static int
on_frame(void *ud, const char *payload, size_t len)
{
	struct witch_client *c = ud;
	json_error_t je;
	json_t *o;
	int rc;

	if ((o = json_loadb(payload, len, 0, &je)) == NULL) {
		ffail(c, WITCH_EPROTOCOL, 0, false, "reply is not JSON: %s",
		    je.text);
		return WITCH_EPROTOCOL;
	}
	rc = dispatch(c, o);
	json_decref(o);
	return rc;
}

/* Read until EAGAIN or the budget is spent (lock held). */
static void
do_read(struct witch_client *c)
{
	ssize_t n;
	int i, rc;

	for (i = 0; i < READ_BUDGET; i++) {
		n = read(c->fd, c->rbuf, sizeof(c->rbuf));
		if (n == 0) {
			witch__client_link_lost(c, WITCH_ECONNECTION, 0, false,
			    "server closed the connection");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			witch__client_link_lost(c, WITCH_ECONNECTION, 0, false,
			    strerror(errno));
			return;
		}
		c->ffail = false;
		rc = witch__decoder_feed(&c->dec, c->rbuf, (size_t)n,
		    on_frame, c);
		if (c->ffail) {
			witch__client_link_lost(c, c->ferr.code, c->ferr.remote,
			    c->ffatal, c->ferr.text);
			return;
		}
		if (rc != 0) {
			witch__client_link_lost(c, rc == WITCH_ENOMEM ?
			    WITCH_ECONNECTION : WITCH_EPROTOCOL, 0, false,
			    rc == WITCH_EFRAME_TOO_LARGE ?
			    "reply frame larger than max_frame" :
			    rc == WITCH_EINVALID_FRAME ?
			    "reply frame of length 0" :
			    "out of memory reading a reply");
			return;
		}
	}
	c->io_pending = true;
}

/* Socket events (lock held). */
void
witch__client_link_io(struct witch_client *c, unsigned ev)
{
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	char where[160];

	if (c->connecting) {
		if (!(ev & (WITCH__POLL_OUT | WITCH__POLL_ERR |
		    WITCH__POLL_HUP)))
			return;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) ==
		    -1)
			soerr = errno;
		if (soerr != 0) {
			witch__client_seterr(&c->last_err, WITCH_ECONNECTION, 0,
			    "connect to %s: %s", witch__client_target(c, where,
			    sizeof(where)), strerror(soerr));
			witch__client_close_socket(c);
			if (witch__client_try_addrs(c, &c->last_err) != 0)
				witch__client_link_lost(c, WITCH_ECONNECTION, 0,
				    false, c->last_err.text);
			return;
		}
		witch__client_connected(c);
		if (c->fd < 0)
			return;
	}
	if (ev & WITCH__POLL_OUT)
		c->writable = true;
	c->io_pending = false;
	if (ev & WITCH__POLL_IN)
		do_read(c);
	if (c->fd >= 0)
		witch__client_flush(c);
}
