/*
 * server/server_int.h: the server's internal structures, shared by the
 * server API (core/server.c), the built-in endpoints (core/builtins.c)
 * and the reactor (reactor/reactor.c, reactor/conn.c).
 *
 * Threads: fields marked [R] belong to the reactor thread alone (the last
 * unref may free them on a worker: safe through its acq_rel); [A] are
 * atomics any thread may touch; [I] are immutable once the server has
 * started, and workers read them freely (eps, server_id, source_hash,
 * pool, cfg).  "reactor only" fields of the server are also written by the
 * application thread before the reactor starts and after it is joined.
 */
#ifndef WITCH__SERVER_SERVER_INT_H
#define WITCH__SERVER_SERVER_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <witch/server.h>
#include <witch/discovery.h>

#include "core/buf.h"
#include "core/log.h"
#include "pool/pool.h"
#include "poll/poller.h"
#include "proto/envelope.h"
#include "proto/frame.h"
#include "queue/freelist.h"
#include "queue/oqueue.h"
#include "poll/wakeup.h"

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
#define WITCH__PRECANCEL_MAX 64		/* remembered early cancels */
#define WITCH__PRECANCEL_MS 5000	/* ...and for how long */
#define WITCH__CLOSE_WAIT_MS 5000	/* replies owed before a close */
#define WITCH__JOB_DATA_SMALL 256	/* job data kept in the job cache */
#define WITCH__JOB_CACHE 1024		/* most cached jobs per server */

#define WITCH__LISTENERS_MAX 8
#define WITCH__UNIX_PATH_MAX 107

/* A listening socket (TCP, unix, or adopted from socket activation). */
struct witch__listener {
	int		 fd;
	bool		 local;		/* unix: peers have credentials */
	char		 path[WITCH__UNIX_PATH_MAX + 1]; /* unlink at stop */
};

struct witch_server_config {
	bool		 tcp;		/* listen on bind:port */
	char		 unix_path[WITCH__UNIX_PATH_MAX + 1];	/* "" none */
	unsigned	 unix_mode;
	unsigned	 port;
	char		 bind[64];
	char		 name[WITCH__NAME_MAX + 1];
	char		 project_id[WITCH__NAME_MAX + 1];
	unsigned	 max_clients;
	char		 protocols[WITCH__PROTO_MAX][WITCH__PROTO_NAME_MAX + 1];
	size_t		 nprotocols;
	unsigned	 workers;
	bool		 inline_builtins;	/* ping, echo on the reactor */
	unsigned	 queue_depth;
	size_t		 max_frame;
	unsigned	 idle_ms;
	unsigned	 handshake_ms;
	size_t		 out_soft;
	size_t		 out_hard;
	bool		 has_source_hash;
	char		 source_hash[WITCH__HASH_HEX + 1];
	unsigned	 drain_ms;
	bool		 discovery;
	unsigned	 disc_port;
	unsigned	 disc_interval_ms;
	char		 advertise[64];
	char		 disc_target[64];	/* tests: unicast target */
	witch_log_fn	 log_fn;
	void		*log_ud;
};

struct witch__conn;

/* Reactor-side built-in: answers into out (a frame) on the reactor. */
typedef int (*witch__inline_fn)(struct witch__conn *c,
    struct witch__request_env *env, struct witch__buf *out);

struct witch__endpoint {
	char			 name[WITCH__NAME_MAX + 1];
	witch_handler_fn	 fn;
	void			*ud;
	uint32_t		 proto_mask;	/* bit i: server protocol i */
	bool			 builtin;
	bool			 run_inline;	/* fn runs on the reactor */
	witch__inline_fn	 inl;		/* answered on the reactor */
	atomic_uint_fast64_t	 calls;		/* [A] answered */
	atomic_uint_fast64_t	 failures;	/* [A] of which errors */
};


#define WITCH__LAT_BUCKETS 64	/* latency: bucket i ends at 2^(i/4) us */

/* Connection states, in order of the close sequence. */
enum witch__conn_state {
	WITCH__CONN_OPEN = 0,	/* reading requests */
	WITCH__CONN_CLOSING,	/* not reading; replies owed, then final */
	WITCH__CONN_LINGER,	/* final frame written, SHUT_WR, await FIN */
	WITCH__CONN_CLOSED	/* fd closed; freed at refcount zero */
};

struct witch__conn {
	struct witch_server	*srv;			/* [I] */
	uint64_t		 id;			/* [I] */
	atomic_uint		 refs;			/* [A] */
	atomic_bool		 closed;		/* [A] set once */
	atomic_bool		 scheduled;		/* [A] on the ready list */
	atomic_uint		 inflight;		/* [A] jobs queued/running */
	atomic_bool		 want_done;		/* [A] notify when a job ends */
	int			 proto;			/* [R] index, set on hello */
	struct witch__conn	*ready_next;		/* ready list link: written
							 * by the thread that set
							 * scheduled, read by the
							 * reactor after its
							 * acquire exchange */
	struct witch__oqueue	 oq;			/* [A] output queue */

	int			 fd;			/* [R] -1 once closed */
	enum witch__conn_state	 state;			/* [R] */
	struct witch__conn	*prev, *next;		/* [R] live list */
	struct witch__conn	*turn_next;		/* [R] requeue/flush */
	bool			 on_turn;		/* [R] */
	struct witch__conn	*dead_next;		/* [R] close list */
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
	long			 uid, pid;		/* [I] -1: unknown */
	bool			 final_queued;		/* [R] */
	int			 final_code;		/* [R] close with this */
	const char		*final_reason;		/* [R] closing event */
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
	bool				 cached;	/* from srv->jobs */
	int				 proto;	/* connection's, at dispatch */
	uint64_t			 t0_ns;	/* read by the reactor */
	char				 id[WITCH__ID_MAX + 1];
};

/* What a handler sees (witch_request_t), on the worker's stack. */
struct witch_request {
	struct witch__reqjob	*rj;
	json_t			*result;
	bool			 raw_echo;	/* reply {"echo": raw data} */
	int			 err;
	char			 msg[WITCH_ERROR_TEXT_MAX];
};

struct witch__counters {
	atomic_uint_fast64_t	conns_accepted;
	atomic_uint_fast64_t	conns_rejected;
	atomic_uint_fast64_t	requests_served;
	atomic_uint_fast64_t	requests_failed;
	atomic_uint_fast64_t	output_drops;
	atomic_uint_fast64_t	emfile_pauses;
	atomic_uint_fast64_t	overloaded;
	atomic_uint_fast64_t	protocol_errors;
	atomic_uint_fast64_t	errors[32];	/* by -code */
	atomic_uint_fast64_t	latency[WITCH__LAT_BUCKETS];
	atomic_uint			clients;
};

/* Settings witch_server_reconfigure() may change while running. */
struct witch__live {
	atomic_uint	max_clients;
	atomic_uint	idle_ms;
	atomic_uint	handshake_ms;
	atomic_size_t	out_soft;
	atomic_size_t	out_hard;
};

enum witch__phase {
	WITCH__PHASE_NEW = 0,
	WITCH__PHASE_RUNNING,
	WITCH__PHASE_DRAINING,	/* listener closed, new requests refused */
	WITCH__PHASE_CLOSING,	/* pool stopped: say goodbye, close all */
	WITCH__PHASE_STOPPED
};

struct witch_server {
	struct witch_server_config	 cfg;		/* [I] */
	char				 server_id[WITCH__HASH_HEX + 1];
	char				 source_hash[WITCH__HASH_HEX + 1];
	struct witch__endpoint		*eps;		/* [I] */
	size_t				 neps;
	uint64_t			 start_ns;	/* [I] */
	double				 start_wall;	/* [I] */
	unsigned			 port;		/* [I] */
	unsigned			 nworkers;	/* [I] */

	atomic_int			 phase;		/* [A] */
	pthread_mutex_t			 stop_mtx;	/* serialises stop */
	pthread_t			 reactor_thr;
	bool				 reactor_started;
	struct witch__pool		*pool;
	struct witch_announcer		*announcer;	/* or NULL */
	struct witch__poller		*poller;
	struct witch__wakeup		 wakeup;
	_Atomic(struct witch__conn *)	 ready;		/* [A] MPSC stack */
	struct witch__counters		 ctr;
	struct witch__live		 live;		/* [A] */

	/* reactor only */
	struct witch__listener		 lst[WITCH__LISTENERS_MAX];
	size_t				 nlst;
	int				 adopted[WITCH__LISTENERS_MAX];
	size_t				 nadopted;
	int				 reserve_fd;
	bool				 accept_paused;
	bool				 accept_retry;
	uint64_t			 closing_deadline_ns;
	struct witch__conn		*conns;		/* live list */
	struct witch__conn		*turn;		/* requeue/flush list */
	struct witch__conn		*dead;		/* closed this turn */
	size_t				 nconns;	/* incl. lingering */
	size_t				 nmonitors;
	uint64_t			 next_conn_id;
	struct witch__job		**batch;
	size_t				 nbatch, batch_cap;
	/*
	 * Request jobs with up to WITCH__JOB_DATA_SMALL bytes of data come
	 * from here: the reactor takes them, whoever releases the job (a
	 * worker, mostly) gives them back.  [owner: reactor; put: any]
	 */
	struct witch__freelist		 jobs;
	unsigned char			*scratch;
	uint64_t			 now_ns;	/* cached per turn */
	uint64_t			 next_tick_ns;
};

/* server/config.c */
void witch__config_defaults(struct witch_server_config *cfg);

/* server/server.c: format a line for the server's logger (none: nothing). */
void witch__log(struct witch_server *srv, int level, const char *fmt, ...)
    WITCH_PRINTF(3, 4);
/* witch__log_to(): core/log.h */

/* server/sourcehash.c: XXH3-128 of the interface, as protocol.md defines. */
void witch__source_hash(const struct witch_server *srv,
    char out[WITCH__HASH_HEX + 1]);

/* server/server.c: register a built-in endpoint for every protocol. */
int witch__endpoint_add_builtin(struct witch_server *srv, const char *name,
    witch_handler_fn fn, witch__inline_fn inl, bool run_inline);

/* server/builtins.c */
int witch__builtins_register(struct witch_server *srv);
/* Send a monitor event about request env of c to every monitor. */
void witch__monitor_feed(struct witch__conn *c,
    struct witch__request_env *env);
/* Account one error reply with code; one answered request of ep. */
void witch__count_error(struct witch_server *srv, int code);
void witch__count_call(const struct witch__endpoint *ep, bool ok,
    struct witch_server *srv, uint64_t t0_ns);
const struct witch__endpoint *witch__endpoint_find(
    const struct witch_server *srv, const char *name, int proto);

/* reactor/conn.c */
struct witch__conn *witch__conn_new(struct witch_server *srv, int fd,
    const char *peer);
/* Close every listener (reactor at drain, or teardown). */
void witch__listeners_close(struct witch_server *srv);
void witch__conn_ref(struct witch__conn *c);
void witch__conn_unref(struct witch__conn *c);
/*
 * Any thread: queue the frame built in b (started with
 * witch__omsg_buf_init) for the client; b is emptied.
 */
void witch__conn_send_buf(struct witch__conn *c, struct witch__buf *b);
/* Any thread: make the reactor look at c (coalesced). */
void witch__conn_schedule(struct witch__conn *c);
/* Any thread: send an error reply with the given id (unless oneway). */
void witch__conn_send_error(struct witch__conn *c, const char *id, int code,
    const char *msg);
/* Reactor: queue a frame built on the reactor (in a buffer started with
 * witch__omsg_buf_init) and flush it this turn. */
void witch__conn_reply_buf(struct witch__conn *c, struct witch__buf *b);
/* Reactor: close c after its owed replies, with a closing event. */
void witch__conn_kill(struct witch__conn *c, const char *reason);

/* reactor/reactor.c */
/* Set on a worker while it runs a handler (stop/free refuse there). */
extern _Thread_local struct witch_server *witch__tls_handler_srv;
void *witch__reactor_main(void *arg);
/* The reactor's job operations (request execution on workers). */
extern const struct witch__job_ops witch__reqjob_ops;

#endif
