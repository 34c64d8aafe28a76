/*
 * reactor/reactor.h: the reactor's internal structures, shared by its
 * own files (loop.c, conn.c, accept.c, route.c, job.c, builtins.c) and
 * handed up to the server API (server/), which embeds a struct
 * witch__reactor and fills its options.  Nothing here includes a
 * header above the reactor; see doc/internals/architecture.md.
 *
 * Threads: fields marked [R] belong to the reactor thread alone (the last
 * unref may free them on a worker: safe through its acq_rel); [A] are
 * atomics any thread may touch; [I] are immutable once the server has
 * started, and workers read them freely (eps, opt, pool).  "reactor only"
 * fields are also written by the application thread before the reactor
 * starts and after it is joined.
 *
 * Closing a connection, one vocabulary:
 *   close  (witch__conn_close)  the orderly close: stop reading, write the
 *          replies owed, then the final frame (an error, or a "closing"
 *          event), shut down our side and linger for the peer's FIN;
 *   final frame                 the last frame a close sends (queue_final
 *          in conn.c), one step of close;
 *   drop   (witch__conn_drop)   the immediate close: the socket is closed
 *          now and unwritten output is discarded.  A close ends in a
 *          drop; errors, timeouts and the hard output limit drop at once.
 * A TCP or unix socket the reactor accepts on is an acceptor (accept.c);
 * "listener" is the UDP discovery listener only (the public
 * witch_server_adopt_listener() keeps its name for the ABI).
 */
#ifndef WITCH__REACTOR_REACTOR_H
#define WITCH__REACTOR_REACTOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <witch/server.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/key.h"
#include "core/log.h"
#include "core/stats.h"
#include "pool/pool.h"
#include "poll/poller.h"
#include "poll/wakeup.h"
#include "proto/auth.h"
#include "proto/envelope.h"
#include "proto/frame.h"
#include "queue/blkcache.h"
#include "queue/freelist.h"
#include "queue/oqueue.h"

#define WITCH__NAME_MAX 63		/* names, project ids, endpoints */
#define WITCH__PROTO_MAX 16		/* protocols per server */
#define WITCH__PROTO_NAME_MAX 15
#define WITCH__HASH_HEX 32		/* XXH3-128 as lower-case hex */

/* Per-connection flow control (see doc/internals/reactor.md). */
#define WITCH__INFLIGHT_HIGH 1024	/* stop reading at this many jobs */
#define WITCH__INFLIGHT_LOW 512		/* resume below this */
#define WITCH__READ_BUDGET (256u << 10)	/* bytes per connection per turn */
#define WITCH__SCRATCH (64u << 10)	/* reactor read buffer */
#define WITCH__LINGER_MS 2000		/* wait for the peer's FIN */
#define WITCH__TICK_MS 100		/* housekeeping period */
/* A connection's output buffer: room for a turn's replies, usually. */
#define WITCH__OBUF_BLOCK 4096
#define WITCH__PRECANCEL_MAX 64		/* remembered early cancels */
#define WITCH__PRECANCEL_MS 5000	/* ...and for how long */
/*
 * What the built-ins the reactor answers itself accept (protocol.md):
 * data of at most WITCH__BUILTIN_DATA_MAX bytes of JSON text, and for
 * cancel at most WITCH__CANCEL_IDS_MAX ids in at most
 * WITCH__CANCEL_DATA_MAX bytes.  Beyond them: invalid_request, without
 * looking inside the data.
 */
#define WITCH__BUILTIN_DATA_MAX 4096
#define WITCH__CANCEL_IDS_MAX 1024
#define WITCH__CANCEL_DATA_MAX (WITCH__CANCEL_IDS_MAX * (WITCH__ID_MAX + 8))
#define WITCH__CLOSE_WAIT_MS 5000	/* replies owed before a close */
#define WITCH__JOB_DATA_SMALL 256	/* job data kept in the job cache */
#define WITCH__JOB_CACHE 1024		/* most cached jobs per server */

#define WITCH__ADDR_BUCKETS 256	/* per-address connection counts */

#define WITCH__ACCEPTORS_MAX 8
#define WITCH__UNIX_PATH_MAX 107

/*
 * What a poller event's udata points at: the first member of an acceptor
 * and of a connection (the wakeup is told apart by its address).
 */
enum witch__ev_kind {
	WITCH__EV_ACCEPTOR = 1,
	WITCH__EV_CONN
};

/* A listening socket the reactor accepts on (TCP, unix, or adopted). */
struct witch__acceptor {
	enum witch__ev_kind	 kind;		/* WITCH__EV_ACCEPTOR */
	int			 fd;
	bool			 local;		/* unix: peers have creds */
	char			 path[WITCH__UNIX_PATH_MAX + 1]; /* unlink */
};

struct witch__conn;

/*
 * Connections from one remote address (max_clients_per_address): a
 * chained hash table in the reactor, [R].  A slot lives while n > 0.
 */
struct witch__addr_slot {
	unsigned char		 ip[16];	/* IPv4 as v4-mapped IPv6 */
	unsigned		 n;
	struct witch__addr_slot	*next;
};

/*
 * Connection built-in (hello, cancel, ...): reads or changes connection
 * state, so the reactor answers it into out (a frame) in order with the
 * frames around it.
 */
typedef int (*witch__conn_builtin_fn)(struct witch__conn *c,
    struct witch__request_env *env, struct witch__buf *out);

struct witch__endpoint {
	char			 name[WITCH__NAME_MAX + 1];
	witch_handler_fn	 fn;		/* NULL for conn_builtin */
	void			*ud;
	uint32_t		 proto_mask;	/* bit i: server protocol i */
	bool			 run_inline;	/* fn runs on the reactor */
	witch__conn_builtin_fn	 conn_builtin;	/* answered by the reactor */
	atomic_uint_fast64_t	 calls;		/* [A] answered */
	atomic_uint_fast64_t	 failures;	/* [A] of which errors */
};

/* Connection states, in order of the close sequence. */
enum witch__conn_state {
	WITCH__CONN_OPEN = 0,	/* reading requests */
	WITCH__CONN_CLOSING,	/* not reading; replies owed, then final */
	WITCH__CONN_LINGER,	/* final frame written, SHUT_WR, await FIN */
	WITCH__CONN_CLOSED	/* fd closed; freed at refcount zero */
};

struct witch__conn {
	enum witch__ev_kind	 kind;			/* [I] EV_CONN */
	struct witch__reactor	*r;			/* [I] */
	uint64_t		 id;			/* [I] */
	atomic_uint		 refs;			/* [A] */
	atomic_bool		 closed;		/* [A] set once */
	atomic_bool		 scheduled;		/* [A] on the ready list */
	atomic_uint		 inflight;		/* [A] jobs queued/running */
	atomic_bool		 want_done;		/* [A] notify when a job ends */
	atomic_bool		 reply_lost;		/* [A] no memory for a
							 * reply: close c */
	int			 proto;			/* [R] index, set on hello */
	struct witch__conn	*ready_next;		/* ready list link: written
							 * by the thread that set
							 * scheduled, read by the
							 * reactor after its
							 * acquire exchange */
	struct witch__oqueue	 oq;			/* [A] output queue */
	/*
	 * [A] Who may write to the socket (direct.c, "Direct writes"): a
	 * worker while WITCH__WOWN_W is set, the reactor while
	 * WITCH__WOWN_R is; WITCH__WOWN_C once the reactor dropped c.
	 */
	atomic_uint		 wown;
	_Atomic(struct witch__omsg *) wrest;		/* [A] what a worker's
							 * short direct write
							 * left: written next */
	int			 wfd;			/* [I] the socket, for
							 * direct writes */

	int			 fd;			/* [R] -1 once closed */
	enum witch__conn_state	 state;			/* [R] */
	struct witch__conn	*prev, *next;		/* [R] live list */
	struct witch__conn	*turn_next;		/* [R] requeue/flush */
	bool			 on_turn;		/* [R] */
	struct witch__conn	*dead_next;		/* [R] dropped this turn */
	struct witch__decoder	 dec;			/* [R] */
	struct witch__omsg	*out_head, *out_tail;	/* [R] taken, unwritten */
	/*
	 * [R] Frames the reactor itself built this turn (inline replies,
	 * built-ins, errors, the final frame), in order, behind an omsg
	 * header: one allocation and one iovec for a whole batch.  Pushed
	 * on the output queue as one message when the connection flushes.
	 */
	struct witch__buf	 obuf;
	bool			 writable;		/* [R] */
	bool			 read_paused;		/* [R] flow control */
	bool			 want_read;		/* [R] unread input */
	bool			 eof;			/* [R] peer shut down */
	bool			 got_frame;		/* [R] */
	bool			 rdhup;			/* [R] HUP reported */
	bool			 counted;		/* [R] in ctr.clients */
	bool			 local;			/* [I] unix socket peer */
	bool			 monitor;		/* [R] gets monitor events */
	uint64_t		 nrequests;		/* [R] frames received */
	bool			 trusted;		/* [I] unix or loopback */
	bool			 authed;		/* [R] may call anything */
	bool			 auth_pending;		/* [R] auth_nonce is live */
	uint8_t			 auth_nonce[WITCH__AUTH_NONCE]; /* [R] hello's */
	long			 uid, pid;		/* [I] -1: unknown */
	bool			 final_queued;		/* [R] */
	int			 final_code;		/* [R] close with this */
	const char		*final_reason;		/* [R] closing event */
	const char		*final_msg;		/* [R] error text, or
							 * NULL: the code's */
	/*
	 * [R] Budgets (reactor.md, "Budgets").  authenticated: set by the
	 * authentication exchange (witch__conn_set_authenticated); until
	 * then, and before the first frame when the server requires no
	 * key, frames are capped at opt.preauth_max_frame.
	 */
	bool			 authenticated;
	uint64_t		 frame_since_ns;	/* partial frame began;
							 * 0: none */
	uint64_t		 frame_seen;		/* dec.frames then */
	size_t			 held;			/* partial bytes counted
							 * in frame_bytes */
	struct witch__addr_slot	*addr;			/* [R] or NULL */
	atomic_size_t		 decode_held;		/* [A] decode cost of
							 * jobs in flight */
	/*
	 * [R] Jobs of this read not yet counted into refs, inflight and
	 * decode_held (witch__acc_flush): one atomic add each per read,
	 * not per request.
	 */
	unsigned		 acc_jobs;
	size_t			 acc_cost;
	uint64_t		 created_ns;		/* [R] */
	uint64_t		 active_ns;		/* [R] last frame */
	uint64_t		 deadline_ns;		/* [R] closing/linger */
	char			 peer[64];		/* [I] "addr:port" */
	char			 client_name[WITCH__NAME_MAX + 1]; /* [R] */
	struct {
		char		 id[WITCH__ID_MAX + 1];
		uint64_t	 expires_ns;
	}			*precancel;		/* [R] */
	size_t			 nprecancel;		/* [R] */
};

/* Bits of witch__conn.wown. */
#define WITCH__WOWN_W	1u	/* a worker is writing to the socket */
#define WITCH__WOWN_R	2u	/* the reactor has output to write */
#define WITCH__WOWN_C	4u	/* dropped: the socket is (to be) closed */

/* A request on its way through the pool. */
struct witch__reqjob {
	struct witch__job		 job;	/* first: pool link */
	struct witch__conn		*conn;	/* holds a reference */
	const struct witch__endpoint	*ep;
	json_t				*root;	/* owned (or NULL) */
	json_t				*data;	/* borrowed from root */
	/*
	 * Fast path: the JSON text of "data", copied after the struct;
	 * parsed into root/data only if the handler asks for it.
	 */
	const char			*raw;	/* NULL: no text kept */
	size_t				 raw_len;
	bool				 oneway;
	bool				 cached;	/* from r->jobs */
	size_t				 decode_cost;	/* in conn's
							 * decode_held */
	int				 proto;	/* connection's, at dispatch */
	uint64_t			 t0_ns;	/* read by the reactor */
	char				 id[WITCH__ID_MAX + 1];
};

#define WITCH__RAW_PARTS 3

/* What a handler sees (witch_request_t), on the worker's stack. */
struct witch_request {
	struct witch__reqjob	*rj;
	json_t			*result;
	/*
	 * A result given as JSON text (witch_request_reply_raw): nraw
	 * pieces, concatenated, borrowed until the handler returns.
	 */
	const char		*raw[WITCH__RAW_PARTS];
	size_t			 raw_len[WITCH__RAW_PARTS];
	size_t			 nraw;
	char			*raw_own;	/* witch_request_reply_raw */
	int			 err;
	char			 msg[WITCH_ERROR_TEXT_MAX];
};

/* Settings witch_server_reconfigure() may change while running. */
struct witch__live {
	atomic_uint	max_clients;
	atomic_uint	idle_ms;
	atomic_uint	handshake_ms;
	atomic_size_t	out_soft;
	atomic_size_t	out_hard;
	atomic_uint	frame_ms;	/* frame timeout, 0: none */
};

enum witch__phase {
	WITCH__PHASE_NEW = 0,
	WITCH__PHASE_RUNNING,
	WITCH__PHASE_DRAINING,	/* acceptors closed, new requests refused */
	WITCH__PHASE_CLOSING,	/* pool stopped: say goodbye, close all */
	WITCH__PHASE_STOPPED
};

/*
 * What the reactor needs to know of the server, handed down by the
 * server API (server/server.c) before start: [I] afterwards.
 */
struct witch__reactor_opts {
	char		 name[WITCH__NAME_MAX + 1];
	char		 project_id[WITCH__NAME_MAX + 1];
	char		 server_id[WITCH__HASH_HEX + 1];
	char		 source_hash[WITCH__HASH_HEX + 1];
	char		 protocols[WITCH__PROTO_MAX][WITCH__PROTO_NAME_MAX + 1];
	size_t		 nprotocols;
	size_t		 max_frame;
	/* Budgets (reactor.md, "Budgets"); 0 turns one off. */
	size_t		 preauth_max_frame;	/* before authentication */
	size_t		 decode_budget;		/* per connection */
	size_t		 frame_budget;		/* all partial frames */
	unsigned	 max_depth;		/* JSON nesting */
	unsigned	 max_per_address;	/* remote connections */
	bool		 auth_required;		/* a key is configured */
	struct witch__key key;		/* len 0: no key */
	bool		 unprotected;	/* no key, yet serve remote */
	witch_log_fn	 log_fn;
	void		*log_ud;
};

struct witch__reactor {
	struct witch__reactor_opts	 opt;		/* [I] */
	struct witch_server		*owner;		/* [I] public handle */
	struct witch__endpoint		*eps;		/* [I] */
	size_t				 neps;
	uint64_t			 start_ns;	/* [I] */

	atomic_int			 phase;		/* [A] */
	struct witch__pool		*pool;		/* [I] while running */
	struct witch__poller		*poller;
	struct witch__wakeup		 wakeup;
	_Atomic(struct witch__conn *)	 ready;		/* [A] MPSC stack */
	/*
	 * [A] The reactor is in (or about to enter) a blocking wait in the
	 * poller.  Only a hint, read relaxed: workers write replies to an
	 * idle connection themselves while the reactor sleeps, and leave
	 * them to its batched writes while it is awake (conn.c).
	 */
	atomic_bool			 asleep;
	struct witch__counters		 ctr;
	struct witch__live		 live;		/* [A] */

	/* reactor only */
	struct witch__acceptor		 acc[WITCH__ACCEPTORS_MAX];
	size_t				 nacc;
	int				 reserve_fd;
	bool				 accept_paused;
	bool				 accept_retry;
	uint64_t			 closing_deadline_ns;
	struct witch__conn		*conns;		/* live list */
	struct witch__conn		*turn;		/* requeue/flush list */
	struct witch__conn		*dead;		/* dropped this turn */
	size_t				 nconns;	/* incl. lingering */
	size_t				 nmonitors;
	uint64_t			 next_conn_id;
	struct witch__job		**batch;
	size_t				 nbatch, batch_cap;
	/*
	 * The connection whose jobs of this read are not yet counted
	 * (acc_jobs, acc_cost), or NULL: witch__acc_flush.
	 */
	struct witch__conn		*acc_conn;
	/*
	 * Request jobs with up to WITCH__JOB_DATA_SMALL bytes of data come
	 * from here: the reactor takes them, whoever releases the job (a
	 * worker, mostly) gives them back.  [owner: reactor; put: any]
	 */
	struct witch__freelist		 jobs;
	/*
	 * The blocks of the connections' output buffers (c->obuf, one
	 * WITCH__OBUF_BLOCK each), given back by the flush that wrote them
	 * and trimmed every tick to what the tick used (conn.c).
	 */
	struct witch__blkcache		 obufs;
	unsigned char			*scratch;
	uint64_t			 now_ns;	/* cached per turn */
	struct witch__auth_limit	 auth_limit;	/* failed auth, per source */
	atomic_uint_fast64_t		 auth_failed;	/* [A] attempts failed */
	atomic_uint_fast64_t		 auth_refused;	/* [A] unauthorized replies */
	uint64_t			 next_tick_ns;
	size_t				 frame_bytes;	/* held in partial
							 * frames */
	struct witch__addr_slot		*addrs[WITCH__ADDR_BUCKETS];
	/*
	 * Events posted to one connection by other threads
	 * (witch_server_send_event): a FIFO under mail_mtx, taken whole by
	 * the reactor each turn (reactor/mail.c).
	 */
	pthread_mutex_t			 mail_mtx;
	struct witch__mail		*mail_head, *mail_tail;	/* mail_mtx */
	size_t				 nmail;			/* mail_mtx */
};

/* Most events waiting in the mailbox; past it: WITCH_EOVERLOADED. */
#define WITCH__MAIL_MAX 65536

/* Log a line through the server's logger (none: nothing).  Any thread. */
#define witch__rlog(r, ...) \
	witch__log_to((r)->opt.log_fn, (r)->opt.log_ud, __VA_ARGS__)

/* ---- small inline helpers of the request path --------------------- */

static inline void
witch__conn_ref(struct witch__conn *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

/* Output limits in force (witch_server_reconfigure may change them). */
static inline size_t
witch__out_soft(const struct witch__reactor *r)
{
	return atomic_load_explicit(&r->live.out_soft, memory_order_relaxed);
}

static inline size_t
witch__out_hard(const struct witch__reactor *r)
{
	return atomic_load_explicit(&r->live.out_hard, memory_order_relaxed);
}

/* Reactor: carry c over to the turn list (flush and/or read on). */
static inline void
witch__turn_add(struct witch__conn *c)
{
	struct witch__reactor *r = c->r;

	if (c->on_turn || c->fd < 0)
		return;
	witch__conn_ref(c);
	c->on_turn = true;
	c->turn_next = r->turn;
	r->turn = c;
}

/* Ask workers to notify the reactor when c's jobs end. */
static inline void
witch__want_done(struct witch__conn *c)
{
	atomic_store(&c->want_done, true);
}

bool witch__obuf_start(struct witch__conn *c);

/*
 * Reactor: c->obuf ready for frames to be appended (an omsg header in
 * front).  False: out of memory.
 */
static inline bool
witch__obuf_ready(struct witch__conn *c)
{
	return c->obuf.len != 0 || witch__obuf_start(c);
}

/* The server whose handler this thread is running, if any. */
extern _Thread_local struct witch__reactor *witch__tls_handler
    __attribute__((tls_model("initial-exec")));	/* job.c */

/* Call ep's handler for rj; the caller owns req->result afterwards. */
static inline int
witch__handler_call(struct witch__reqjob *rj, struct witch_request *req)
{
	int rc;

	/* All but the message text, which only needs its first byte. */
	memset(req, 0, offsetof(struct witch_request, msg));
	req->msg[0] = '\0';
	req->rj = rj;
	witch__tls_handler = rj->conn->r;
	rc = rj->ep->fn(req, rj->ep->ud);
	witch__tls_handler = NULL;
	return rc;
}

/*
 * n jobs of c ended (ran or dropped) and their replies, if any, were
 * pushed: account them, wake the reactor if it waits for them.
 */
void witch__conn_schedule(struct witch__conn *c);
static inline void
witch__job_done_n(struct witch__conn *c, unsigned n)
{
	atomic_fetch_sub(&c->inflight, n);
	/*
	 * seq_cst pairs with the reactor's store of want_done followed by
	 * its load of inflight: one of the two sides sees the other.
	 */
	if (atomic_load(&c->want_done))
		witch__conn_schedule(c);
}

/* One job of c ended: witch__job_done_n(c, 1). */
static inline void
witch__job_done(struct witch__conn *c)
{
	witch__job_done_n(c, 1);
}

/* ---- reactor/loop.c: the reactor's life ----------------------------- */

/* Application thread, at witch_server_new: owner is the public handle. */
void witch__reactor_init(struct witch__reactor *r, struct witch_server *owner);
/*
 * Application thread, at start, after the acceptors were added: the read
 * buffer, job batch, poller and wakeup.  0, or a WITCH_E* code with a
 * reason in why (whylen bytes).
 */
int witch__reactor_prepare(struct witch__reactor *r, char *why,
    size_t whylen);
/* Release what prepare made and close the acceptors (idempotent). */
void witch__reactor_teardown(struct witch__reactor *r);
/* The reactor thread (pthread start routine; arg: the reactor). */
void *witch__reactor_main(void *arg);
/*
 * Test hook: the next n waits for events fail with errno err (0
 * disables); returns the waits that were still to fail.  Any thread.
 */
long witch__reactor_fail_waits(long n, int err);

/* ---- reactor/mail.c: events from other threads to one connection ---- */

/*
 * Any thread, while the reactor runs: queue the event frame (event,
 * data) for the connection whose id is client_id and wake the reactor.
 * 0, WITCH_ESTATE (not running), WITCH_ENOMEM, WITCH_ETOO_LARGE (frame
 * over the ceiling) or WITCH_EOVERLOADED (mailbox full).
 */
int witch__mail_post(struct witch__reactor *r, uint64_t client_id,
    const char *event, const json_t *data);
/* Reactor: deliver what was posted to the connections still open. */
void witch__mail_deliver(struct witch__reactor *r);
/* Free what is left (application thread, reactor joined). */
void witch__mail_clear(struct witch__reactor *r);

/* ---- reactor/accept.c: acceptors, accept, EMFILE -------------------- */

/*
 * Before start: accept on fd (local: a unix socket; path: unlink it at
 * close, or NULL).  0 or WITCH_ETOO_LARGE (fd is then not taken).
 */
int witch__acceptor_add(struct witch__reactor *r, int fd, bool local,
    const char *path);
/* Close every acceptor (reactor at drain, or teardown). */
void witch__acceptors_close(struct witch__reactor *r);
/* Reactor: accept until EAGAIN on a; resume after EMFILE. */
void witch__accept(struct witch__reactor *r, struct witch__acceptor *a);
void witch__accept_resume(struct witch__reactor *r);
/* Reactor: c is closing; forget it in its address's count. */
void witch__addr_release(struct witch__conn *c);

/* ---- reactor/conn.c: connections, their I/O and the close sequence -- */

struct witch__conn *witch__conn_new(struct witch__reactor *r, int fd,
    const char *peer);
void witch__conn_unref(struct witch__conn *c);
/* Any thread: drop n references to c at once (n >= 1, all held). */
void witch__conn_unref_n(struct witch__conn *c, unsigned n);
/*
 * Any thread: queue the frame built in b (started with
 * witch__omsg_buf_init) for the client; b is emptied.
 */
void witch__conn_send_buf(struct witch__conn *c, struct witch__buf *b);
/*
 * A worker thread: write the frames in b (started with
 * witch__omsg_buf_init) to c's socket itself, when nobody else is
 * writing and the reactor holds no output for c.  True: b was taken
 * (written, or its unwritten rest handed to the reactor, which writes it
 * before anything else); b is emptied.  False: b is untouched, queue it
 * with witch__conn_send_buf.
 */
bool witch__conn_write_direct(struct witch__conn *c, struct witch__buf *b);
/*
 * Tests only: when set, a worker calls it while it holds a connection's
 * socket for a direct write, just before send(2) (to widen the window in
 * which the reactor may drop the connection).  NULL in the library.
 */
extern void (*_Atomic witch__direct_write_hook)(void);
/*
 * Tests only: when true, every worker flush writes directly when the
 * socket is free, whether or not the reactor sleeps and however many
 * connections the worker served.  Those two conditions only choose the
 * cheaper path, never a correct one, and they depend on scheduling: the
 * tests that hold a worker inside its write set this so that the write
 * they hold surely happens.  False in the library.
 */
extern atomic_bool witch__direct_always;
/*
 * Tests only: when set, the reactor calls it in witch__conn_flush after
 * taking the output queue, when it holds output, just before it claims
 * the socket (to widen the window in which a worker may finish a short
 * direct write).  NULL in the library.
 */
extern void (*_Atomic witch__flush_hook)(void);
/*
 * Tests only: when set, a worker calls it each time it publishes a batch
 * of replies (reactor/job.c, pend_flush: queued or written directly), so
 * a test can count how a pipelined read's replies were batched.  NULL in
 * the library.
 */
extern void (*_Atomic witch__pend_push_hook)(void);
/*
 * Tests only: the age in ns after which a worker pushes its batch of
 * replies, and the handler time after which it does (reactor/job.c,
 * PEND_NS: 20 us).  A test raises it so that a sanitizer's slowness or a
 * preemption on a loaded machine is not taken for a slow handler.
 */
extern _Atomic uint64_t witch__pend_ns;
/*
 * Any thread: a reply owed to c could not be built (no memory).  The
 * client would wait for it forever, so the reactor closes c (closing
 * event "out_of_memory") once the replies before it are written.
 */
void witch__conn_reply_lost(struct witch__conn *c);
/* Any thread: send an error reply with the given id. */
void witch__conn_send_error(struct witch__conn *c, const char *id, int code,
    const char *msg);
/* Reactor: queue a frame built on the reactor (in a buffer started with
 * witch__omsg_buf_init) and flush it this turn; b is emptied. */
void witch__conn_reply_buf(struct witch__conn *c, struct witch__buf *b);
/* Reactor: an error reply built straight into c's output, counted. */
void witch__conn_reply_error(struct witch__conn *c, const char *id,
    int code, const char *msg);
/* Reactor: the orderly close (see the top of this header). */
void witch__conn_close(struct witch__conn *c, int code, const char *reason,
    unsigned wait_ms);
/* Reactor: the immediate close.  Memory stays valid until the turn ends. */
void witch__conn_drop(struct witch__conn *c, const char *why);
/* Reactor: read until EAGAIN or the budget; write what is queued. */
void witch__conn_read(struct witch__conn *c);
void witch__conn_flush(struct witch__conn *c);
/* Reactor: after I/O, flow control and the next step of a close. */
void witch__conn_settle(struct witch__conn *c);
/* Reactor: anything of c's output waiting to be written. */
bool witch__conn_output_pending(const struct witch__conn *c);
/*
 * Reactor: c passed the authentication exchange; frames up to max_frame
 * are accepted from now on (the pre-authentication cap is lifted).
 */
void witch__conn_set_authenticated(struct witch__conn *c);
/* Reactor: lift c's pre-authentication frame cap if c is past it. */
void witch__conn_frame_cap(struct witch__conn *c);
/*
 * Reactor, per request scanned from c: false when its nesting depth or
 * decode cost is over the budgets (the error reply is queued and
 * counted); inline: whether it runs on the reactor (its cost is then
 * not held past the call).
 */
bool witch__conn_admit(struct witch__conn *c,
    const struct witch__request_env *env, bool is_inline);
/* Reactor (housekeeping): c's partial frame took too long: close it. */
void witch__conn_frame_expired(struct witch__conn *c);
/*
 * Reactor: account the change of c's partial-frame memory since the last
 * call in the server-wide gauge (what the frame budget compares).
 */
void witch__conn_held_update(struct witch__conn *c);
/* Reactor: free c's partial frame, if any (c takes no more input). */
void witch__conn_partial_release(struct witch__conn *c);
/* Reactor, after a feed: note when c's partial frame began, if any. */
void witch__conn_frame_track(struct witch__conn *c);
/* Reactor: past the frame budget, close the largest holders. */
void witch__frame_budget_enforce(struct witch__reactor *r);

/* ---- reactor/route.c: endpoints, request routing and dispatch ------- */

/*
 * Before start: add an endpoint for the protocols of mask.  fn (a
 * handler; run_inline: on the reactor) or conn_builtin must be given.
 * 0, WITCH_EINVAL, WITCH_ESTATE, WITCH_EEXISTS or WITCH_ENOMEM.
 */
int witch__endpoint_add(struct witch__reactor *r, const char *name,
    uint32_t mask, witch_handler_fn fn, void *ud, bool run_inline,
    witch__conn_builtin_fn conn_builtin);
const struct witch__endpoint *witch__endpoint_find(
    const struct witch__reactor *r, const char *name, int proto);
/*
 * Decoder callback: one complete payload from c (ud).  Returns 0, or
 * WITCH__OUTPUT_OVER_HARD when c's output passed the hard limit (stop
 * decoding; the caller drops c).
 */
#define WITCH__OUTPUT_OVER_HARD (-100000)
int witch__route_frame(void *ud, const char *payload, size_t len);
/* Reactor: submit every request parsed this turn to the pool. */
void witch__batch_submit(struct witch__reactor *r);
/*
 * Reactor: count the jobs dispatch made from the read being decoded
 * into their connection's refs, inflight and decode_held (route.c, "One
 * count per read").  Called when that read's frames are decoded, before
 * any job goes to the pool, and before anything reads those counters
 * or may drop the connection; a no-op when nothing is pending.
 */
void witch__acc_flush_slow(struct witch__reactor *r);
static inline void
witch__acc_flush(struct witch__reactor *r)
{
	if (r->acc_conn != NULL)
		witch__acc_flush_slow(r);
}

/* ---- reactor/job.c: jobs on workers, and their replies -------------- */

extern const struct witch__job_ops witch__reqjob_ops;
void witch__job_release(struct witch__job *job);
/*
 * Account the handler's outcome and append its reply frame to b.
 * False: nothing appended (oneway, or no memory for the frame).
 */
bool witch__job_reply(struct witch__reqjob *rj, struct witch_request *req,
    int rc, struct witch__buf *b);
/* Account one answered request of ep that started at t0_ns. */
void witch__count_call(struct witch__reactor *r,
    const struct witch__endpoint *ep, bool ok, uint64_t t0_ns);
/* Release a copy witch_request_reply_raw() made (after the reply). */
static inline void
witch__request_raw_free(witch_request_t *req)
{
	if (req->raw_own != NULL) {
		witch__free(req->raw_own);
		req->raw_own = NULL;
	}
}

/*
 * Reply with JSON text given in n (<= WITCH__RAW_PARTS) pieces: their
 * concatenation is one JSON value the caller vouches for; borrowed until
 * the handler returns.  For handlers inside the library (echo).  Inline:
 * echo calls it per request.
 */
static inline void
witch__request_reply_parts(witch_request_t *req, const char *const *parts,
    const size_t *lens, size_t n)
{
	size_t i;

	if (req->result != NULL) {
		json_decref(req->result);
		req->result = NULL;
	}
	witch__request_raw_free(req);
	for (i = 0; i < n && i < WITCH__RAW_PARTS; i++) {
		req->raw[i] = parts[i];
		req->raw_len[i] = lens[i];
	}
	req->nraw = i;
}

/*
 * The request's "data" as the JSON text the scanner validated, or NULL
 * when there is none or it was parsed already (the tree is the truth).
 */
static inline const char *
witch__request_data_text(const witch_request_t *req, size_t *len)
{
	const struct witch__reqjob *rj = req->rj;

	if (rj->data != NULL || rj->raw == NULL)
		return NULL;
	*len = rj->raw_len;
	return rj->raw;
}

/* ---- reactor/builtins.c: the connection built-ins ------------------- */

/* Register hello, auth, cancel, clients, kill_client and monitor. */
int witch__conn_builtins_register(struct witch__reactor *r);
/*
 * Reactor: may c call endpoint now?  True, or false with the
 * unauthorized reply for env in c's output (see doc/internals/auth.md).
 */
bool witch__auth_gate(struct witch__conn *c, struct witch__request_env *env);
/* JSON array of the server's protocol names (NULL: no memory). */
json_t *witch__protocols_json(const struct witch__reactor *r);
/* Send a monitor event about request env of c to every monitor. */
void witch__monitor_feed(struct witch__conn *c,
    struct witch__request_env *env);

#endif
