/*
 * client/client.c: the witch client (include/witch/client.h).
 *
 * One mutex guards the whole object.  The driving thread (whoever runs
 * witch_client_process(), a synchronous call, or the library's I/O thread)
 * waits on the poller without the lock, then does I/O, timers and the
 * state machine with it, collects completions and state changes, and runs
 * their callbacks after unlocking.  Other threads only queue work and
 * signal the wakeup registered in the poller.  See doc/internals/client.md.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netdb.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <witch/client.h>
#include <witch/server.h>

#include "client/client_int.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "net/sock.h"
#include "poll/poller.h"
#include "pool/pool.h"
#include "proto/frame.h"
#include "poll/wakeup.h"

#define NPROTO_MAX	16
#define PROTO_LEN	16
#define HOST_LEN	256
#define NAME_LEN	64
#define NADDR_MAX	8
#define NSEV_MAX	16
#define NEV		64
#define NIOV		64
#define READ_BUDGET	64		/* reads per turn before requeueing */
#define RBUF_SIZE	65536
#define MS		UINT64_C(1000000)
#define UNIX_PATH_LEN	sizeof(((struct sockaddr_un *)0)->sun_path)

struct witch_client_config {
	char			 host[HOST_LEN];
	unsigned		 port;
	char			 unix_path[UNIX_PATH_LEN];
	unsigned		 connect_timeout;
	unsigned		 request_timeout;
	bool			 auto_reconnect;
	unsigned		 max_attempts;
	unsigned		 delay;
	unsigned		 delay_max;
	unsigned		 stability;
	uint64_t		 seed;
	char			 hash[33];	/* "" = none */
	char			 name[NAME_LEN];
	char			 protocols[NPROTO_MAX][PROTO_LEN];
	size_t			 nprotocols;
	size_t			 max_frame;
	witch_client_state_fn	 state_fn;
	void			*state_ud;
};

enum rq_kind { RQ_CALL, RQ_HELLO, RQ_ONEWAY };
enum rq_state { RS_QUEUED, RS_SENT, RS_DONE };

/*
 * A request.  A call is in the id map and the timer heap from acceptance
 * to completion, and in exactly one list: sendq (not fully written) or
 * sentq (written, awaiting its reply).  Hello and oneway frames live only
 * in sendq.  Once completed it is on the done list until its callback ran.
 */
struct witch__creq {
	struct witch__creq	*next, *prev;	/* sendq or sentq */
	struct witch__creq	*dnext;		/* done list */
	uint64_t		 id;
	enum rq_kind		 kind;
	enum rq_state		 state;
	unsigned char		*body;	/* payload; calls: without final '}' */
	size_t			 blen;
	unsigned char		*frame;	/* built when first writable */
	size_t			 flen;
	size_t			 woff;	/* bytes of frame written */
	uint64_t		 deadline_ns;
	unsigned		 timeout_ms;
	size_t			 hidx;	/* index in the heap */
	witch_reply_fn		 cb;
	void			*ud;
	int			 status;
	json_t			*result;
	witch_error_t		 err;
};

struct rqlist {
	struct witch__creq	*head, *tail;
};

struct caddr {
	struct sockaddr_storage	 ss;
	socklen_t		 len;
};

struct sev {
	enum witch_client_state	 old, new;
};

struct witch_client {
	struct witch_client_config cfg;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct witch__poller	*poller;
	struct witch__wakeup	 wk;
	bool			 wk_ok;
	/*
	 * udata of the socket: alternates with each new socket, so events
	 * of a socket closed by another thread while the driver waited
	 * are never taken for events of its successor.
	 */
	char			 link_tag[2];
	unsigned		 sock_seq;

	/* The link. */
	int			 fd;
	bool			 connecting;	/* connect(2) in progress */
	bool			 writable;
	bool			 hello_done;
	bool			 io_pending;	/* budget spent: go on */
	unsigned		 link_gen;
	uint64_t		 hello_id;
	struct witch__decoder	 dec;
	unsigned char		*pfr;		/* rest of an orphaned frame */
	size_t			 pflen, pfoff;
	struct caddr		 addrs[NADDR_MAX];
	size_t			 naddrs, next_addr;
	uint64_t		 link_deadline_ns;	/* connect + hello */
	uint64_t		 reconnect_at_ns;
	uint64_t		 up_since_ns;
	unsigned		 attempt;
	bool			 ever_up;
	uint64_t		 rng;
	enum witch_client_state	 state;
	witch_error_t		 last_err;
	/* Failure noticed inside the decoder callback. */
	bool			 ffail;
	bool			 ffatal;
	witch_error_t		 ferr;

	/* Requests. */
	atomic_uint_least64_t	 next_id;
	struct rqlist		 sendq, sentq;
	struct witch__creq	**map;		/* open addressing by id */
	size_t			 mapcap, mapn;
	struct witch__creq	**heap;		/* min-heap by deadline */
	size_t			 hn, hcap;
	struct witch__creq	*done_head, *done_tail;
	struct sev		 sev[NSEV_MAX];
	size_t			 nsev;
	json_t			*info;
	uint64_t		 unknown;

	/* Driving. */
	bool			 driving;
	pthread_t		 driver;	/* valid while driving */
	bool			 thread_on;
	bool			 thread_stop;
	pthread_t		 thread;
	unsigned char		 rbuf[RBUF_SIZE];
};

static void	link_lost(struct witch_client *, int, int, bool, const char *);
static void	start_attempt(struct witch_client *);

/* ---- small helpers --------------------------------------------------- */

static void
seterr(witch_error_t *e, int code, int remote, const char *fmt, ...)
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

static void
lst_push(struct rqlist *l, struct witch__creq *r)
{
	r->next = NULL;
	r->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
}

static void
lst_push_front(struct rqlist *l, struct witch__creq *r)
{
	r->prev = NULL;
	r->next = l->head;
	if (l->head != NULL)
		l->head->prev = r;
	else
		l->tail = r;
	l->head = r;
}

static void
lst_remove(struct rqlist *l, struct witch__creq *r)
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

static void
rq_free(struct witch__creq *r)
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

static int
map_put(struct witch_client *c, struct witch__creq *r)
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

static struct witch__creq *
map_get(const struct witch_client *c, uint64_t id)
{
	size_t j = map_index(c, id);

	return j == SIZE_MAX ? NULL : c->map[j];
}

static void
map_del(struct witch_client *c, uint64_t id)
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

static int
heap_push(struct witch_client *c, struct witch__creq *r)
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

static void
set_state(struct witch_client *c, enum witch_client_state ns)
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

/*
 * Complete a call: out of the map, the heap and its list, onto the done
 * list.  A call whose frame is partly written hands the rest of the frame
 * to c->pfr so the stream stays in sync.  result is stolen.
 */
static void
complete(struct witch_client *c, struct witch__creq *r, int status,
    json_t *result, const witch_error_t *err)
{
	if (r->state == RS_DONE) {
		json_decref(result);
		return;
	}
	map_del(c, r->id);
	heap_del(c, r);
	if (r->state == RS_QUEUED) {
		if (r->woff > 0) {
			c->pfr = r->frame;
			c->pflen = r->flen;
			c->pfoff = r->woff;
			r->frame = NULL;
		}
		lst_remove(&c->sendq, r);
	} else
		lst_remove(&c->sentq, r);
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
	r->dnext = NULL;
	if (c->done_tail != NULL)
		c->done_tail->dnext = r;
	else
		c->done_head = r;
	c->done_tail = r;
}

static void
fail(struct witch_client *c, struct witch__creq *r, int code, int remote,
    const char *text)
{
	witch_error_t e;

	seterr(&e, code, remote, "%s", text);
	complete(c, r, code, NULL, &e);
}

/* Fail every call not yet fully written (lock held). */
static void
fail_queued(struct witch_client *c, int code, const char *text)
{
	struct witch__creq *r, *nx;

	for (r = c->sendq.head; r != NULL; r = nx) {
		nx = r->next;
		if (r->kind == RQ_CALL)
			fail(c, r, code, 0, text);
		else {
			lst_remove(&c->sendq, r);
			rq_free(r);
		}
	}
}

static uint64_t
next_timer_ns(const struct witch_client *c)
{
	uint64_t t = UINT64_MAX;

	if (c->hn > 0)
		t = c->heap[0]->deadline_ns;
	if (c->link_deadline_ns != 0 && c->link_deadline_ns < t)
		t = c->link_deadline_ns;
	if (c->reconnect_at_ns != 0 && c->reconnect_at_ns < t)
		t = c->reconnect_at_ns;
	return t;
}

/* Milliseconds to wait at most (lock held); -1: no timer. */
static int
timeout_ms(const struct witch_client *c)
{
	uint64_t t, now;

	if (c->done_head != NULL || c->nsev > 0 || c->io_pending)
		return 0;
	if ((t = next_timer_ns(c)) == UINT64_MAX)
		return -1;
	now = witch__now_ns();
	if (t <= now)
		return 0;
	t = (t - now + MS - 1) / MS;
	return t > INT32_MAX ? INT32_MAX : (int)t;
}

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
		seterr(e, WITCH_ECONNECTION, 0, "cannot resolve %s: %s",
		    c->cfg.host, gai_strerror(rc));
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
		seterr(e, WITCH_ECONNECTION, 0, "no address for %s",
		    c->cfg.host);
		return WITCH_ECONNECTION;
	}
	return 0;
}

static void
close_socket(struct witch_client *c)
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

static const char *
target(const struct witch_client *c, char *buf, size_t len)
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
static int
try_addrs(struct witch_client *c, witch_error_t *e)
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
			seterr(e, WITCH_ECONNECTION, 0, "socket: %s",
			    strerror(errno));
			continue;
		}
		if (family != AF_UNIX)
			witch__sock_tune(fd);
		if (connect(fd, (const struct sockaddr *)&a->ss, a->len) ==
		    -1 && errno != EINPROGRESS) {
			seterr(e, WITCH_ECONNECTION, 0, "connect to %s: %s",
			    target(c, where, sizeof(where)), strerror(errno));
			close(fd);
			continue;
		}
		c->sock_seq++;
		if (witch__poller_add(c->poller, fd,
		    &c->link_tag[c->sock_seq & 1], 0) != 0) {
			seterr(e, WITCH_ECONNECTION, 0, "poller: %s",
			    strerror(errno));
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

/* Build hello and put it first in sendq (lock held).  0 or ENOMEM. */
static int
queue_hello(struct witch_client *c)
{
	struct witch__creq *r;
	json_t *protos, *d, *o;
	char *s;
	size_t i;

	if ((r = witch__calloc(1, sizeof(*r))) == NULL)
		return WITCH_ENOMEM;
	protos = json_array();
	for (i = 0; protos != NULL && i < c->cfg.nprotocols; i++)
		json_array_append_new(protos,
		    json_string(c->cfg.protocols[i]));
	d = json_pack("{s:o, s:s}", "protocols", protos, "name",
	    c->cfg.name);
	if (d != NULL && c->cfg.hash[0] != '\0')
		json_object_set_new(d, "source_hash",
		    json_string(c->cfg.hash));
	r->id = atomic_fetch_add(&c->next_id, 1);
	o = json_pack("{s:I, s:s, s:o}", "id", (json_int_t)r->id,
	    "endpoint", "hello", "data", d);
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
	free(s);
	r->kind = RQ_HELLO;
	r->hidx = SIZE_MAX;
	c->hello_id = r->id;
	lst_push_front(&c->sendq, r);
	return 0;
}

/* The socket connected: say hello (lock held). */
static void
connected(struct witch_client *c)
{
	c->connecting = false;
	if (queue_hello(c) != 0)
		link_lost(c, WITCH_ECONNECTION, 0, false,
		    "out of memory building hello");
}

/* Begin a connect attempt (lock held); failures go through link_lost. */
static void
start_attempt(struct witch_client *c)
{
	witch_error_t e;

	c->reconnect_at_ns = 0;
	c->link_deadline_ns = witch__now_ns() +
	    (uint64_t)c->cfg.connect_timeout * MS;
	witch__decoder_init(&c->dec, (uint32_t)c->cfg.max_frame);
	seterr(&e, WITCH_ECONNECTION, 0, "no address to connect to");
	if (resolve(c, &e) != 0 || try_addrs(c, &e) != 0) {
		link_lost(c, e.code, 0, false, e.text);
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
		seterr(&c->last_err, WITCH_ECONNECTION, 0, "gave up after %u "
		    "reconnect attempts; last: %s", c->attempt, last);
		set_state(c, WITCH_CLIENT_CLOSED);
		fail_queued(c, WITCH_ECONNECTION, c->last_err.text);
		return;
	}
	d = witch__client_backoff_ms(c->attempt, c->cfg.delay,
	    c->cfg.delay_max, &c->rng);
	c->attempt++;
	c->reconnect_at_ns = witch__now_ns() + d * MS;
	set_state(c, WITCH_CLIENT_RECONNECTING);
}

/*
 * The link is gone or the attempt failed (lock held).  Calls written even
 * in part fail with code; calls never written stay queued for the next
 * link unless nothing will come (then they fail too).  fatal: a handshake
 * refusal, after which the client does not reconnect.
 */
static void
link_lost(struct witch_client *c, int code, int remote, bool fatal,
    const char *why)
{
	struct witch__creq *r, *nx;
	bool was_up = c->hello_done;
	uint64_t now = witch__now_ns();
	char text[WITCH_ERROR_TEXT_MAX];

	strlcpy(text, why, sizeof(text));	/* why may be c->last_err */
	close_socket(c);
	witch__decoder_clear(&c->dec);
	witch__decoder_init(&c->dec, (uint32_t)c->cfg.max_frame);
	witch__free(c->pfr);
	c->pfr = NULL;
	c->hello_done = false;
	c->link_deadline_ns = 0;
	seterr(&c->last_err, code, remote, "%s", text);
	while ((r = c->sentq.head) != NULL)
		fail(c, r, code == WITCH_EPROTOCOL ? code : WITCH_ECONNECTION,
		    0, text);
	for (r = c->sendq.head; r != NULL; r = nx) {
		nx = r->next;
		if (r->kind != RQ_CALL) {
			lst_remove(&c->sendq, r);
			rq_free(r);
		} else if (r->woff > 0)
			fail(c, r, code == WITCH_EPROTOCOL ? code :
			    WITCH_ECONNECTION, 0, text);
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
		set_state(c, WITCH_CLIENT_CLOSED);
		fail_queued(c, code, text);
	} else if (!c->ever_up) {
		/* The first connect failed: report, do not retry. */
		set_state(c, WITCH_CLIENT_DISCONNECTED);
		fail_queued(c, code, text);
	} else if (!c->cfg.auto_reconnect) {
		set_state(c, WITCH_CLIENT_DISCONNECTED);
		fail_queued(c, WITCH_ECONNECTION, text);
	} else {
		if (was_up && now - c->up_since_ns >=
		    (uint64_t)c->cfg.stability * MS)
			c->attempt = 0;
		schedule_reconnect(c);
	}
}

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
			fail(c, r, WITCH_ENOMEM, 0, "out of memory");
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
		lst_remove(&c->sendq, r);
		if (r->kind == RQ_CALL) {
			witch__free(r->frame);
			witch__free(r->body);
			r->frame = r->body = NULL;
			r->woff = 1;	/* written */
			r->state = RS_SENT;
			lst_push(&c->sentq, r);
		} else
			rq_free(r);
	}
}

/* Write until EAGAIN or nothing is left (lock held). */
static void
flush(struct witch_client *c)
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
			link_lost(c, WITCH_ECONNECTION, 0, false,
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

static int
on_hello(struct witch_client *c, json_t *res, json_t *eo)
{
	witch_error_t e;

	if (res != NULL) {
		json_decref(c->info);
		c->info = json_deep_copy(res);
		c->hello_done = true;
		c->link_deadline_ns = 0;
		c->up_since_ns = witch__now_ns();
		c->ever_up = true;
		memset(&c->last_err, 0, sizeof(c->last_err));
		set_state(c, WITCH_CLIENT_CONNECTED);
		return 0;
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

/* A frame with an "event" and no id. */
static int
on_event(struct witch_client *c, json_t *o, json_t *ev)
{
	json_t *reason;

	if (!json_is_string(ev)) {
		ffail(c, WITCH_EPROTOCOL, 0, false, "event is not a string");
		return WITCH_EPROTOCOL;
	}
	if (strcmp(json_string_value(ev), "closing") != 0)
		return 0;	/* peer messages etc.: not for this API */
	reason = json_object_get(json_object_get(o, "data"), "reason");
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
		ffail(c, WITCH_EPROTOCOL, 0, false, "reply before hello");
		return WITCH_EPROTOCOL;
	}
	if ((r = map_get(c, (uint64_t)v)) == NULL || r->state != RS_SENT) {
		c->unknown++;
		return 0;
	}
	if (res != NULL) {
		complete(c, r, 0, json_incref(res), NULL);
		return 0;
	}
	if (!parse_error(eo, &e)) {
		ffail(c, WITCH_EPROTOCOL, 0, false, "malformed error object");
		return WITCH_EPROTOCOL;
	}
	complete(c, r, e.code, NULL, &e);
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
			link_lost(c, WITCH_ECONNECTION, 0, false,
			    "server closed the connection");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			link_lost(c, WITCH_ECONNECTION, 0, false,
			    strerror(errno));
			return;
		}
		c->ffail = false;
		rc = witch__decoder_feed(&c->dec, c->rbuf, (size_t)n,
		    on_frame, c);
		if (c->ffail) {
			link_lost(c, c->ferr.code, c->ferr.remote, c->ffatal,
			    c->ferr.text);
			return;
		}
		if (rc != 0) {
			link_lost(c, rc == WITCH_ENOMEM ? WITCH_ECONNECTION :
			    WITCH_EPROTOCOL, 0, false,
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
static void
link_io(struct witch_client *c, unsigned ev)
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
			seterr(&c->last_err, WITCH_ECONNECTION, 0,
			    "connect to %s: %s", target(c, where,
			    sizeof(where)), strerror(soerr));
			close_socket(c);
			if (try_addrs(c, &c->last_err) != 0)
				link_lost(c, WITCH_ECONNECTION, 0, false,
				    c->last_err.text);
			return;
		}
		connected(c);
		if (c->fd < 0)
			return;
	}
	if (ev & WITCH__POLL_OUT)
		c->writable = true;
	c->io_pending = false;
	if (ev & WITCH__POLL_IN)
		do_read(c);
	if (c->fd >= 0)
		flush(c);
}

/* ---- timers ---------------------------------------------------------- */

static void
run_timers(struct witch_client *c)
{
	uint64_t now = witch__now_ns();
	struct witch__creq *r;
	char msg[96];

	while (c->hn > 0 && c->heap[0]->deadline_ns <= now) {
		r = c->heap[0];
		snprintf(msg, sizeof(msg), "no reply within %u ms",
		    r->timeout_ms);
		fail(c, r, WITCH_ETIMEOUT, 0, msg);
	}
	if (c->link_deadline_ns != 0 && c->link_deadline_ns <= now) {
		snprintf(msg, sizeof(msg), "%s not complete within %u ms",
		    c->connecting ? "connect" : "hello",
		    c->cfg.connect_timeout);
		link_lost(c, WITCH_ETIMEOUT, 0, false, msg);
	}
	if (c->reconnect_at_ns != 0 && c->reconnect_at_ns <= now &&
	    c->state == WITCH_CLIENT_RECONNECTING)
		start_attempt(c);
}

/* ---- one turn of the driving thread ----------------------------------- */

static void	sync_cb(witch_client_t *, int, json_t *,
		    const witch_error_t *, void *);
static void	sync_finish(struct witch_client *, struct witch__creq *);

static void
run_callbacks(struct witch_client *c, struct sev *sev, size_t nsev,
    struct witch__creq *done)
{
	struct witch__creq *r, *nx;
	size_t i;

	for (i = 0; i < nsev; i++)
		if (c->cfg.state_fn != NULL)
			c->cfg.state_fn(c, sev[i].old, sev[i].new,
			    c->cfg.state_ud);
	for (r = done; r != NULL; r = nx) {
		nx = r->dnext;
		if (r->cb == sync_cb)
			sync_finish(c, r);
		else if (r->cb != NULL)
			r->cb(c, r->status, r->status == 0 ? (r->result ?
			    r->result : json_null()) : NULL,
			    r->status == 0 ? NULL : &r->err, r->ud);
		rq_free(r);
	}
}

/* Take the collected callbacks and run them with the lock released. */
static void
deliver(struct witch_client *c)
{
	struct sev sev[NSEV_MAX];
	struct witch__creq *done;
	size_t nsev;

	while (c->done_head != NULL || c->nsev > 0) {
		done = c->done_head;
		c->done_head = c->done_tail = NULL;
		nsev = c->nsev;
		memcpy(sev, c->sev, nsev * sizeof(sev[0]));
		c->nsev = 0;
		pthread_mutex_unlock(&c->mu);
		run_callbacks(c, sev, nsev, done);
		pthread_mutex_lock(&c->mu);
	}
}

/*
 * One iteration: wait up to tmo ms, do I/O and timers, run callbacks.
 * Called with the lock held by the thread that holds c->driving; returns
 * with it held.
 */
static void
turn(struct witch_client *c, int tmo)
{
	struct witch__poll_event ev[NEV];
	unsigned gen;
	int t, n, i;

	t = timeout_ms(c);
	if (tmo >= 0 && (t < 0 || tmo < t))
		t = tmo;
	pthread_mutex_unlock(&c->mu);
	n = witch__poller_wait(c->poller, ev, NEV, t);
	pthread_mutex_lock(&c->mu);
	gen = c->link_gen;
	for (i = 0; i < n; i++) {
		if (ev[i].udata == &c->wk)
			witch__wakeup_clear(&c->wk);
		else if (ev[i].udata == &c->link_tag[c->sock_seq & 1] &&
		    c->fd >= 0 && c->link_gen == gen)
			link_io(c, ev[i].events);
	}
	if (c->io_pending && c->fd >= 0 && !c->connecting)
		link_io(c, WITCH__POLL_IN);
	run_timers(c);
	if (c->fd >= 0)
		flush(c);
	deliver(c);
}

/* ---- driving helpers --------------------------------------------------- */

/* Take the driving role (lock held, role free). */
static void
claim(struct witch_client *c)
{
	c->driving = true;
	c->driver = pthread_self();
}

/* Give the driving role back and wake whoever waits for it. */
static void
release(struct witch_client *c)
{
	c->driving = false;
	pthread_cond_broadcast(&c->cv);
}

/* True when this thread is driving c (so it must not wait for c). */
static bool
driving_here(const struct witch_client *c)
{
	return c->driving && pthread_equal(c->driver, pthread_self());
}

/*
 * Until done(c, arg) or deadline_ns (0: none): drive the client on this
 * thread when nobody else does, else wait for whoever does.  Lock held.
 * Returns false when the deadline passed first.
 */
static bool
drive_until(struct witch_client *c, bool (*done)(struct witch_client *,
    void *), void *arg, uint64_t deadline_ns)
{
	struct timespec ts;
	uint64_t now;
	int slice;

	for (;;) {
		if (done(c, arg))
			return true;
		now = witch__now_ns();
		if (deadline_ns != 0 && now >= deadline_ns)
			return false;
		slice = 100;
		if (deadline_ns != 0 && (deadline_ns - now) / MS < 100)
			slice = (int)((deadline_ns - now + MS - 1) / MS);
		if (c->thread_on || c->driving) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += (long)slice * 1000000L;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&c->cv, &c->mu, &ts);
			continue;
		}
		claim(c);
		turn(c, slice);
		release(c);
	}
}

/* ---- configuration ---------------------------------------------------- */

static void
config_defaults(struct witch_client_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strlcpy(cfg->host, "127.0.0.1", sizeof(cfg->host));
	cfg->port = WITCH_DEFAULT_PORT;
	cfg->connect_timeout = WITCH_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS;
	cfg->request_timeout = WITCH_CLIENT_DEFAULT_REQUEST_TIMEOUT_MS;
	cfg->auto_reconnect = true;
	cfg->max_attempts = WITCH_CLIENT_DEFAULT_MAX_RECONNECT_ATTEMPTS;
	cfg->delay = WITCH_CLIENT_DEFAULT_RECONNECT_DELAY_MS;
	cfg->delay_max = WITCH_CLIENT_DEFAULT_RECONNECT_DELAY_MAX_MS;
	cfg->stability = WITCH_CLIENT_DEFAULT_STABILITY_MS;
	strlcpy(cfg->name, "libwitch", sizeof(cfg->name));
	strlcpy(cfg->protocols[0], "v1", sizeof(cfg->protocols[0]));
	cfg->nprotocols = 1;
	cfg->max_frame = WITCH_MAX_FRAME_CEILING;
}

/* Create a configuration holding the defaults.  Any thread. */
int
witch_client_config_new(witch_client_config_t **ret)
{
	struct witch_client_config *cfg;

	if (ret == NULL)
		return WITCH_EINVAL;
	if ((cfg = witch__malloc(sizeof(*cfg))) == NULL)
		return WITCH_ENOMEM;
	config_defaults(cfg);
	*ret = cfg;
	return 0;
}

/* Free a configuration; NULL is a no-op. */
void
witch_client_config_free(witch_client_config_t *cfg)
{
	witch__free(cfg);
}

/* Copy a string of 1..size-1 bytes into dst.  0 or WITCH_EINVAL. */
static int
set_str(char *dst, size_t size, const char *s)
{
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n >= size)
		return WITCH_EINVAL;
	memcpy(dst, s, n + 1);
	return 0;
}

/* Setters: one thread at a time per configuration; 0 or WITCH_EINVAL. */
int
witch_client_config_set_host(witch_client_config_t *cfg, const char *host)
{
	return cfg == NULL ? WITCH_EINVAL :
	    set_str(cfg->host, sizeof(cfg->host), host);
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_port(witch_client_config_t *cfg, unsigned port)
{
	if (cfg == NULL || port == 0 || port > 65535)
		return WITCH_EINVAL;
	cfg->port = port;
	return 0;
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_unix_path(witch_client_config_t *cfg,
    const char *path)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	if (path == NULL) {
		cfg->unix_path[0] = '\0';
		return 0;
	}
	return set_str(cfg->unix_path, sizeof(cfg->unix_path), path);
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_connect_timeout(witch_client_config_t *cfg,
    unsigned ms)
{
	if (cfg == NULL || ms == 0 || ms > INT32_MAX)
		return WITCH_EINVAL;
	cfg->connect_timeout = ms;
	return 0;
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_request_timeout(witch_client_config_t *cfg,
    unsigned ms)
{
	if (cfg == NULL || ms == 0 || ms > INT32_MAX)
		return WITCH_EINVAL;
	cfg->request_timeout = ms;
	return 0;
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_auto_reconnect(witch_client_config_t *cfg, bool on)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->auto_reconnect = on;
	return 0;
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_max_reconnect_attempts(witch_client_config_t *cfg,
    unsigned attempts)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->max_attempts = attempts;
	return 0;
}

/* See witch_client_config_set_host(); ms >= 1. */
int
witch_client_config_set_reconnect_delay(witch_client_config_t *cfg,
    unsigned ms)
{
	if (cfg == NULL || ms == 0)
		return WITCH_EINVAL;
	cfg->delay = ms;
	return 0;
}

/* See witch_client_config_set_host(); ms >= 1. */
int
witch_client_config_set_reconnect_delay_max(witch_client_config_t *cfg,
    unsigned ms)
{
	if (cfg == NULL || ms == 0)
		return WITCH_EINVAL;
	cfg->delay_max = ms;
	return 0;
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_stability_window(witch_client_config_t *cfg,
    unsigned ms)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->stability = ms;
	return 0;
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_jitter_seed(witch_client_config_t *cfg,
    uint64_t seed)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->seed = seed;
	return 0;
}

/* See witch_client_config_set_host(); stored in lower case. */
int
witch_client_config_set_expected_source_hash(witch_client_config_t *cfg,
    const char *hex)
{
	size_t i;
	char h[33];

	if (cfg == NULL)
		return WITCH_EINVAL;
	if (hex == NULL) {
		cfg->hash[0] = '\0';
		return 0;
	}
	if (strlen(hex) != 32)
		return WITCH_EINVAL;
	for (i = 0; i < 32; i++) {
		if (hex[i] >= '0' && hex[i] <= '9')
			h[i] = hex[i];
		else if (hex[i] >= 'a' && hex[i] <= 'f')
			h[i] = hex[i];
		else if (hex[i] >= 'A' && hex[i] <= 'F')
			h[i] = (char)(hex[i] - 'A' + 'a');
		else
			return WITCH_EINVAL;
	}
	h[32] = '\0';
	memcpy(cfg->hash, h, sizeof(h));
	return 0;
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_name(witch_client_config_t *cfg, const char *name)
{
	return cfg == NULL ? WITCH_EINVAL :
	    set_str(cfg->name, sizeof(cfg->name), name);
}

/* See witch_client_config_set_host(): 1..16 names of 1..15 bytes. */
int
witch_client_config_set_protocols(witch_client_config_t *cfg,
    const char *const *protocols, size_t count)
{
	char tmp[NPROTO_MAX][PROTO_LEN];
	size_t i;

	if (cfg == NULL || protocols == NULL || count == 0 ||
	    count > NPROTO_MAX)
		return WITCH_EINVAL;
	for (i = 0; i < count; i++)
		if (set_str(tmp[i], PROTO_LEN, protocols[i]) != 0)
			return WITCH_EINVAL;
	memcpy(cfg->protocols, tmp, sizeof(tmp[0]) * count);
	cfg->nprotocols = count;
	return 0;
}

/* See witch_client_config_set_host(): 1..WITCH_MAX_FRAME_CEILING. */
int
witch_client_config_set_max_frame(witch_client_config_t *cfg,
    size_t max_frame)
{
	if (cfg == NULL || max_frame == 0 ||
	    max_frame > WITCH_MAX_FRAME_CEILING)
		return WITCH_EINVAL;
	cfg->max_frame = max_frame;
	return 0;
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_state_callback(witch_client_config_t *cfg,
    witch_client_state_fn fn, void *userdata)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->state_fn = fn;
	cfg->state_ud = userdata;
	return 0;
}

/* ---- life cycle ------------------------------------------------------- */

/*
 * Create a client (not connected).  cfg is copied (NULL: defaults).
 * 0, WITCH_EINVAL, WITCH_ENOMEM or WITCH_ESYSTEM.  Any thread.
 */
int
witch_client_new(witch_client_t **ret, const witch_client_config_t *cfg)
{
	struct witch_client *c = NULL;
	pthread_condattr_t ca;
	int rc = WITCH_ESYSTEM, mu = 0, cv = 0;

	if (ret == NULL)
		return WITCH_EINVAL;
	if ((c = witch__calloc(1, sizeof(*c))) == NULL)
		return WITCH_ENOMEM;
	if (cfg != NULL)
		c->cfg = *cfg;
	else
		config_defaults(&c->cfg);
	c->fd = -1;
	c->state = WITCH_CLIENT_DISCONNECTED;
	atomic_init(&c->next_id, 1);
	json_object_seed(0);
	c->rng = c->cfg.seed;
	if (c->rng == 0)
		arc4random_buf(&c->rng, sizeof(c->rng));
	witch__decoder_init(&c->dec, (uint32_t)c->cfg.max_frame);
	if (pthread_mutex_init(&c->mu, NULL) != 0)
		goto fail;
	mu = 1;
	if (pthread_condattr_init(&ca) != 0)
		goto fail;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	cv = pthread_cond_init(&c->cv, &ca) == 0;
	pthread_condattr_destroy(&ca);
	if (!cv)
		goto fail;
	if ((rc = witch__poller_new(&c->poller)) != 0)
		goto fail;
	if ((rc = witch__wakeup_init(&c->wk)) != 0)
		goto fail;
	c->wk_ok = true;
	if ((rc = witch__poller_add(c->poller, c->wk.rfd, &c->wk, 1)) != 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	if (c->wk_ok)
		witch__wakeup_destroy(&c->wk);
	witch__poller_free(c->poller);
	if (cv)
		pthread_cond_destroy(&c->cv);
	if (mu)
		pthread_mutex_destroy(&c->mu);
	witch__free(c);
	return rc;
}

static bool
connect_done(struct witch_client *c, void *arg)
{
	return c->state != WITCH_CLIENT_CONNECTING &&
	    c->state != WITCH_CLIENT_RECONNECTING;
}

/*
 * Connect and complete hello within the connect timeout, driving the
 * client on this thread or waiting for its driver.  0 or the error of the
 * last attempt, with err filled.  Any thread but a callback.
 */
int
witch_client_connect(witch_client_t *c, witch_error_t *err)
{
	uint64_t deadline;
	int rc;

	if (c == NULL)
		return WITCH_EINVAL;
	pthread_mutex_lock(&c->mu);
	if (driving_here(c)) {		/* from a callback: would deadlock */
		pthread_mutex_unlock(&c->mu);
		seterr(err, WITCH_ESTATE, 0, "connect from a callback");
		return WITCH_ESTATE;
	}
	if (c->state == WITCH_CLIENT_DISCONNECTED ||
	    c->state == WITCH_CLIENT_CLOSED) {
		c->attempt = 0;
		c->ever_up = false;
		set_state(c, WITCH_CLIENT_CONNECTING);
		start_attempt(c);
		witch__wakeup_signal(&c->wk);
	}
	deadline = witch__now_ns() + (uint64_t)c->cfg.connect_timeout * MS +
	    100 * MS;
	if (!drive_until(c, connect_done, NULL, deadline)) {
		seterr(err, WITCH_ETIMEOUT, 0, "not connected within %u ms",
		    c->cfg.connect_timeout);
		rc = WITCH_ETIMEOUT;
	} else if (c->state == WITCH_CLIENT_CONNECTED)
		rc = 0;
	else {
		rc = c->last_err.code ? c->last_err.code : WITCH_ECONNECTION;
		if (err != NULL) {
			*err = c->last_err;
			err->code = rc;
		}
	}
	if (!c->driving && !c->thread_on && (c->done_head || c->nsev)) {
		claim(c);
		deliver(c);
		release(c);
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/*
 * Close the link for good (state CLOSED); every request fails with
 * WITCH_ECONNECTION.  Callbacks run on the driving thread, or on this one
 * when nobody drives.  Any thread but a callback.
 */
void
witch_client_disconnect(witch_client_t *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	if (c->state != WITCH_CLIENT_CLOSED) {
		set_state(c, WITCH_CLIENT_CLOSED);
		link_lost(c, WITCH_ECONNECTION, 0, false, "disconnected");
		fail_queued(c, WITCH_ECONNECTION, "disconnected");
		c->reconnect_at_ns = 0;
	}
	if (!c->driving && !c->thread_on) {
		claim(c);
		deliver(c);
		release(c);
	} else
		witch__wakeup_signal(&c->wk);
	pthread_mutex_unlock(&c->mu);
}

static void
stop_thread(struct witch_client *c)
{
	pthread_t t;

	pthread_mutex_lock(&c->mu);
	if (!c->thread_on) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	c->thread_stop = true;
	t = c->thread;
	pthread_mutex_unlock(&c->mu);
	witch__wakeup_signal(&c->wk);
	pthread_join(t, NULL);
	pthread_mutex_lock(&c->mu);
	c->thread_on = false;
	c->thread_stop = false;
	pthread_mutex_unlock(&c->mu);
}

/*
 * Stop the I/O thread, fail every request with WITCH_ECONNECTION (their
 * callbacks run here), free.  Must not race with any other call.
 */
void
witch_client_free(witch_client_t *c)
{
	if (c == NULL)
		return;
	stop_thread(c);
	witch_client_disconnect(c);
	pthread_mutex_lock(&c->mu);
	claim(c);
	deliver(c);
	pthread_mutex_unlock(&c->mu);
	witch__decoder_clear(&c->dec);
	witch__poller_del(c->poller, c->wk.rfd);
	witch__wakeup_destroy(&c->wk);
	witch__poller_free(c->poller);
	json_decref(c->info);
	witch__free(c->map);
	witch__free(c->heap);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	witch__free(c);
}

/* Current state.  Any thread. */
enum witch_client_state
witch_client_state(witch_client_t *c)
{
	enum witch_client_state s;

	if (c == NULL)
		return WITCH_CLIENT_CLOSED;
	pthread_mutex_lock(&c->mu);
	s = c->state;
	pthread_mutex_unlock(&c->mu);
	return s;
}

/*
 * The last hello reply (borrowed; valid until the next successful hello
 * or witch_client_free()).  Any thread.
 */
json_t *
witch_client_server_info(witch_client_t *c)
{
	json_t *i;

	if (c == NULL)
		return NULL;
	pthread_mutex_lock(&c->mu);
	i = c->state == WITCH_CLIENT_CONNECTED ? json_incref(c->info) : NULL;
	pthread_mutex_unlock(&c->mu);
	return i;
}

/* ---- requests ----------------------------------------------------------- */

static int
dump_cb(const char *p, size_t n, void *ud)
{
	return witch__buf_append(ud, p, n) == 0 ? 0 : -1;
}

/*
 * The payload of a call without its closing brace, so the deadline can be
 * appended when it is written: {"id":N,"endpoint":E[,"data":D]
 */
static int
encode_body(struct witch__buf *b, uint64_t id, const char *endpoint,
    json_t *data, bool oneway)
{
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
	rc = json_dump_callback(ep, dump_cb, b, JSON_ENCODE_ANY);
	json_decref(ep);
	if (rc != 0)
		return WITCH_EINVAL;
	if (data != NULL) {
		if (witch__buf_append_str(b, ",\"data\":") != 0 ||
		    json_dump_callback(data, dump_cb, b, JSON_ENCODE_ANY |
		    JSON_COMPACT) != 0)
			return WITCH_EINVAL;
	}
	if (oneway && witch__buf_append_str(b, "}") != 0)
		return WITCH_ENOMEM;
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
	int rc;

	if (c == NULL || endpoint == NULL || endpoint[0] == '\0')
		return WITCH_EINVAL;
	if ((r = witch__calloc(1, sizeof(*r))) == NULL)
		return WITCH_ENOMEM;
	r->id = atomic_fetch_add(&c->next_id, 1);
	witch__buf_init(&b, WITCH_MAX_FRAME_CEILING - 64);
	if ((rc = encode_body(&b, r->id, endpoint, data, false)) != 0) {
		witch__buf_free(&b);
		witch__free(r);
		return rc == WITCH_EINVAL && b.len >= b.limit - 64 ?
		    WITCH_ETOO_LARGE : rc;
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
	else if ((rc = map_put(c, r)) == 0 && (rc = heap_push(c, r)) != 0)
		map_del(c, r->id);
	if (rc != 0) {
		pthread_mutex_unlock(&c->mu);
		rq_free(r);
		return rc;
	}
	lst_push(&c->sendq, r);
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

static void
sync_cb(witch_client_t *c, int status, json_t *result,
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
static void
sync_finish(struct witch_client *c, struct witch__creq *r)
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
	int rc;

	memset(&sw, 0, sizeof(sw));
	if (result != NULL)
		*result = NULL;
	if (c == NULL)
		return WITCH_EINVAL;
	pthread_mutex_lock(&c->mu);
	rc = driving_here(c) ? WITCH_ESTATE : 0;
	pthread_mutex_unlock(&c->mu);
	if (rc != 0) {		/* from a callback: would wait for itself */
		seterr(err, rc, 0, "synchronous call from a callback");
		return rc;
	}
	rc = witch_client_call_async(c, endpoint, data, timeout_ms, sync_cb,
	    &sw, NULL);
	if (rc != 0) {
		seterr(err, rc, 0, "%s", rc == WITCH_ECONNECTION ?
		    "not connected" : witch_strerror(rc));
		return rc;
	}
	pthread_mutex_lock(&c->mu);
	drive_until(c, sync_done, &sw, 0);
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
	lst_push(&c->sendq, r);
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
	if ((r = map_get(c, id)) == NULL) {
		pthread_mutex_unlock(&c->mu);
		return WITCH_EINVAL;
	}
	if (r->state == RS_QUEUED && r->woff == 0)
		fail(c, r, WITCH_ECANCELLED, 0, "cancelled before it was sent");
	else {
		n = snprintf(msg, sizeof(msg), "{\"endpoint\":\"cancel\","
		    "\"oneway\":true,\"data\":{\"ids\":[%" PRIu64 "]}}", id);
		/* Best effort: without memory the server just runs it. */
		(void)queue_oneway(c, (unsigned char *)msg, (size_t)n);
		fail(c, r, WITCH_ECANCELLED, 0, "cancelled");
	}
	pthread_mutex_unlock(&c->mu);
	witch__wakeup_signal(&c->wk);
	return 0;
}

/*
 * Send a oneway request.  0, WITCH_EINVAL, WITCH_ENOMEM, or
 * WITCH_ECONNECTION unless connected.  Any thread.
 */
int
witch_client_notify(witch_client_t *c, const char *endpoint, json_t *data)
{
	struct witch__buf b;
	int rc;

	if (c == NULL || endpoint == NULL || endpoint[0] == '\0')
		return WITCH_EINVAL;
	witch__buf_init(&b, WITCH_MAX_FRAME_CEILING);
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

/* ---- driving ------------------------------------------------------------ */

static void *
io_thread(void *arg)
{
	struct witch_client *c = arg;

	pthread_mutex_lock(&c->mu);
	while (!c->thread_stop) {
		if (c->driving) {
			pthread_cond_wait(&c->cv, &c->mu);
			continue;
		}
		claim(c);
		turn(c, 1000);
		release(c);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* Start the I/O thread (idempotent).  0 or WITCH_ESYSTEM.  Any thread. */
int
witch_client_start_thread(witch_client_t *c)
{
	int rc = 0;

	if (c == NULL)
		return WITCH_EINVAL;
	pthread_mutex_lock(&c->mu);
	if (!c->thread_on) {
		c->thread_stop = false;
		if (pthread_create(&c->thread, NULL, io_thread, c) != 0)
			rc = WITCH_ESYSTEM;
		else
			c->thread_on = true;
	}
	pthread_mutex_unlock(&c->mu);
	witch__wakeup_signal(&c->wk);
	return rc;
}

/* The poller's descriptor (stable).  Any thread. */
int
witch_client_fd(witch_client_t *c)
{
	return c == NULL ? -1 : witch__poller_fd(c->poller);
}

/* Milliseconds until witch_client_process() must run (-1: none). */
int
witch_client_timeout(witch_client_t *c)
{
	int t;

	if (c == NULL)
		return -1;
	pthread_mutex_lock(&c->mu);
	t = timeout_ms(c);
	pthread_mutex_unlock(&c->mu);
	return t;
}

/*
 * One turn: wait up to timeout_ms, do I/O, timers and callbacks on this
 * thread.  0, or WITCH_ESTATE when the I/O thread or another thread is
 * driving the client (or when called from one of its callbacks).
 */
int
witch_client_process(witch_client_t *c, int timeout_ms)
{
	if (c == NULL)
		return WITCH_EINVAL;
	pthread_mutex_lock(&c->mu);
	if (c->thread_on || c->driving) {
		pthread_mutex_unlock(&c->mu);
		return WITCH_ESTATE;
	}
	claim(c);
	turn(c, timeout_ms);
	release(c);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

/* Replies that matched no request.  Any thread. */
uint64_t
witch_client_unknown_replies(witch_client_t *c)
{
	uint64_t n;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&c->mu);
	n = c->unknown;
	pthread_mutex_unlock(&c->mu);
	return n;
}
