/*
 * client/link.c: the link of the witch client: resolve, connect, hello,
 * losing the link and scheduling the reconnect.  Lock held everywhere.
 * See doc/internals/client.md.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netdb.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client_int.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "net/sock.h"
#include "poll/poller.h"
#include "proto/frame.h"

/* ---- the link: connecting -------------------------------------------- */

static int
resolve(struct witch_client *c, witch_error_t *e)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct sockaddr_un *sun;
	char port[8];
	int rc;

	c->naddrs = c->next_addr = 0;
	if (c->cfg.unix_path[0] != '\0') {
		memset(&c->addrs[0], 0, sizeof(c->addrs[0]));
		sun = (struct sockaddr_un *)&c->addrs[0].ss;
		sun->sun_family = AF_UNIX;
		strlcpy(sun->sun_path, c->cfg.unix_path,
		    sizeof(sun->sun_path));
		c->addrs[0].len = sizeof(*sun);
		c->naddrs = 1;
		return 0;
	}
	snprintf(port, sizeof(port), "%u", c->cfg.port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	/* Numeric fast path: no resolver round trip for addresses. */
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	rc = getaddrinfo(c->cfg.host, port, &hints, &res);
	if (rc != 0) {
		hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
		rc = getaddrinfo(c->cfg.host, port, &hints, &res);
	}
	if (rc != 0) {
		witch__client_seterr(e, WITCH_ECONNECTION, 0,
		    "cannot resolve %s: %s", c->cfg.host, gai_strerror(rc));
		return WITCH_ECONNECTION;
	}
	for (ai = res; ai != NULL && c->naddrs < NADDR_MAX; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(c->addrs[0].ss))
			continue;
		memcpy(&c->addrs[c->naddrs].ss, ai->ai_addr, ai->ai_addrlen);
		c->addrs[c->naddrs].len = ai->ai_addrlen;
		c->naddrs++;
	}
	freeaddrinfo(res);
	if (c->naddrs == 0) {
		witch__client_seterr(e, WITCH_ECONNECTION, 0,
		    "no address for %s", c->cfg.host);
		return WITCH_ECONNECTION;
	}
	return 0;
}

/* Close the link's socket, if any, and forget its I/O state.  Lock held. */
void
witch__client_close_socket(struct witch_client *c)
{
	if (c->fd >= 0) {
		witch__poller_del(c->poller, c->fd);
		close(c->fd);
	}
	c->fd = -1;
	c->connecting = false;
	c->writable = false;
	c->io_pending = false;
	c->link_gen++;
}

/* The server's address for messages, into buf; returns buf.  Lock held. */
const char *
witch__client_target(const struct witch_client *c, char *buf, size_t len)
{
	if (c->cfg.unix_path[0] != '\0')
		snprintf(buf, len, "%.120s", c->cfg.unix_path);
	else
		snprintf(buf, len, "%.120s port %u", c->cfg.host, c->cfg.port);
	return buf;
}

/*
 * Start connect(2) to the remaining addresses in turn until one is in
 * progress or connected.  0, or WITCH_ECONNECTION with e set.
 */
int
witch__client_try_addrs(struct witch_client *c, witch_error_t *e)
{
	const struct caddr *a;
	char where[160];
	int fd, family;

	while (c->next_addr < c->naddrs) {
		a = &c->addrs[c->next_addr++];
		family = a->ss.ss_family;
		fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
		if (fd == -1) {
			witch__client_seterr(e, WITCH_ECONNECTION, 0,
			    "socket: %s", strerror(errno));
			continue;
		}
		if (family != AF_UNIX)
			witch__sock_tune(fd);
		if (connect(fd, (const struct sockaddr *)&a->ss, a->len) ==
		    -1 && errno != EINPROGRESS) {
			witch__client_seterr(e, WITCH_ECONNECTION, 0,
			    "connect to %s: %s", witch__client_target(c, where,
			    sizeof(where)), strerror(errno));
			close(fd);
			continue;
		}
		c->sock_seq++;
		if (witch__poller_add(c->poller, fd,
		    &c->link_tag[c->sock_seq & 1], 0) != 0) {
			witch__client_seterr(e, WITCH_ECONNECTION, 0,
			    "poller: %s", strerror(errno));
			close(fd);
			continue;
		}
		c->fd = fd;
		c->connecting = true;
		c->link_gen++;
		return 0;
	}
	return WITCH_ECONNECTION;
}

/*
 * Build a handshake request (hello, auth) with data (taken) and put it
 * first in sendq; its id in *id (lock held).  0 or ENOMEM.
 */
int
witch__client_queue_builtin(struct witch_client *c, const char *endpoint,
    json_t *data, uint64_t *id)
{
	struct witch__creq *r;
	json_t *o;
	char *s;

	if (data == NULL || (r = witch__calloc(1, sizeof(*r))) == NULL) {
		json_decref(data);
		return WITCH_ENOMEM;
	}
	r->id = atomic_fetch_add(&c->next_id, 1);
	o = json_pack("{s:I, s:s, s:o}", "id", (json_int_t)r->id,
	    "endpoint", endpoint, "data", data);
	s = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) :
	    NULL;
	json_decref(o);
	if (s == NULL || (r->frame = witch__malloc(strlen(s) + 4)) == NULL) {
		free(s);	/* jansson's allocator */
		witch__free(r);
		return WITCH_ENOMEM;
	}
	r->flen = strlen(s) + 4;
	witch__frame_put_header(r->frame, (uint32_t)(r->flen - 4));
	memcpy(r->frame + 4, s, r->flen - 4);
	explicit_bzero(s, r->flen - 4);
	free(s);
	r->kind = RQ_HELLO;
	r->hidx = SIZE_MAX;
	*id = r->id;
	witch__client_lst_push_front(&c->sendq, r);
	return 0;
}

/* Build hello and put it first in sendq (lock held).  0 or ENOMEM. */
static int
queue_hello(struct witch_client *c)
{
	json_t *protos, *d;
	size_t i;

	protos = json_array();
	for (i = 0; protos != NULL && i < c->cfg.nprotocols; i++)
		json_array_append_new(protos,
		    json_string(c->cfg.protocols[i]));
	d = json_pack("{s:o, s:s}", "protocols", protos, "name",
	    c->cfg.name);
	if (d != NULL && c->cfg.hash[0] != '\0')
		json_object_set_new(d, "source_hash",
		    json_string(c->cfg.hash));
	c->auth_id = 0;
	return witch__client_queue_builtin(c, "hello", d, &c->hello_id);
}

/* The socket connected: say hello (lock held). */
void
witch__client_connected(struct witch_client *c)
{
	c->connecting = false;
	if (queue_hello(c) != 0)
		witch__client_link_lost(c, WITCH_ECONNECTION, 0, false,
		    "out of memory building hello");
}

/* Begin a connect attempt (lock held); failures go through link_lost. */
void
witch__client_start_attempt(struct witch_client *c)
{
	witch_error_t e;

	c->reconnect_at_ns = 0;
	c->link_deadline_ns = witch__now_ns() +
	    (uint64_t)c->cfg.connect_timeout * MS;
	witch__decoder_init(&c->dec, (uint32_t)c->cfg.max_frame);
	witch__client_seterr(&e, WITCH_ECONNECTION, 0,
	    "no address to connect to");
	if (resolve(c, &e) != 0 || witch__client_try_addrs(c, &e) != 0) {
		witch__client_link_lost(c, e.code, 0, false, e.text);
		return;
	}
}

/* ---- the link: losing it --------------------------------------------- */

/* Schedule the next reconnect attempt, or give up (lock held). */
static void
schedule_reconnect(struct witch_client *c)
{
	uint64_t d;
	char last[WITCH_ERROR_TEXT_MAX];

	if (c->cfg.max_attempts != 0 && c->attempt >= c->cfg.max_attempts) {
		strlcpy(last, c->last_err.text, sizeof(last));
		witch__client_seterr(&c->last_err, WITCH_ECONNECTION, 0,
		    "gave up after %u reconnect attempts; last: %s",
		    c->attempt, last);
		witch__client_set_state(c, WITCH_CLIENT_CLOSED);
		witch__client_fail_queued(c, WITCH_ECONNECTION,
		    c->last_err.text);
		return;
	}
	d = witch__client_backoff_ms(c->attempt, c->cfg.delay,
	    c->cfg.delay_max, &c->rng);
	c->attempt++;
	c->reconnect_at_ns = witch__now_ns() + d * MS;
	witch__client_set_state(c, WITCH_CLIENT_RECONNECTING);
}

/*
 * The link is gone or the attempt failed (lock held).  Calls written even
 * in part fail with code; calls never written stay queued for the next
 * link unless nothing will come (then they fail too).  fatal: a handshake
 * refusal, after which the client does not reconnect.
 */
void
witch__client_link_lost(struct witch_client *c, int code, int remote,
    bool fatal, const char *why)
{
	struct witch__creq *r, *nx;
	bool was_up = c->hello_done;
	uint64_t now = witch__now_ns();
	char text[WITCH_ERROR_TEXT_MAX];

	strlcpy(text, why, sizeof(text));	/* why may be c->last_err */
	witch__client_close_socket(c);
	witch__decoder_clear(&c->dec);
	witch__decoder_init(&c->dec, (uint32_t)c->cfg.max_frame);
	witch__free(c->pfr);
	c->pfr = NULL;
	c->hello_done = false;
	c->auth_id = 0;
	explicit_bzero(c->auth_nc, sizeof(c->auth_nc));
	c->link_deadline_ns = 0;
	witch__client_seterr(&c->last_err, code, remote, "%s", text);
	while ((r = c->sentq.head) != NULL)
		witch__client_fail(c, r,
		    code == WITCH_EPROTOCOL ? code : WITCH_ECONNECTION, 0,
		    text);
	for (r = c->sendq.head; r != NULL; r = nx) {
		nx = r->next;
		if (r->kind != RQ_CALL) {
			witch__client_lst_remove(&c->sendq, r);
			witch__client_rq_free(r);
		} else if (r->woff > 0)
			witch__client_fail(c, r,
			    code == WITCH_EPROTOCOL ? code : WITCH_ECONNECTION,
			    0, text);
		else {
			/* Never written: rebuilt with a fresh deadline_ms. */
			witch__free(r->frame);
			r->frame = NULL;
		}
	}
	if (c->state == WITCH_CLIENT_CLOSED ||
	    c->state == WITCH_CLIENT_DISCONNECTED)
		return;
	if (fatal) {
		witch__client_set_state(c, WITCH_CLIENT_CLOSED);
		witch__client_fail_queued(c, code, text);
	} else if (!c->ever_up) {
		/* The first connect failed: report, do not retry. */
		witch__client_set_state(c, WITCH_CLIENT_DISCONNECTED);
		witch__client_fail_queued(c, code, text);
	} else if (!c->cfg.auto_reconnect) {
		witch__client_set_state(c, WITCH_CLIENT_DISCONNECTED);
		witch__client_fail_queued(c, WITCH_ECONNECTION, text);
	} else {
		if (was_up && now - c->up_since_ns >=
		    (uint64_t)c->cfg.stability * MS)
			c->attempt = 0;
		schedule_reconnect(c);
	}
}
