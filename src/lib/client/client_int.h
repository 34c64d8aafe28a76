/*
 * client/client_int.h: internals of the witch client, shared by its files
 * and its unit tests.  See include/witch/client.h and
 * doc/internals/client.md.
 *
 * Files: client_config.c (configuration object), reqtab.c (request lists, id
 * map, timer heap, completion), link.c (connect, hello, link loss,
 * reconnect), wire.c (writing, reading, dispatch of replies), call.c (the
 * request API), client.c (life cycle, timers, driving), backoff.c
 * (reconnect delays).  Every function here but the backoff ones runs with
 * the client's lock held unless its comment says otherwise.
 */
#ifndef WITCH__CLIENT_CLIENT_INT_H
#define WITCH__CLIENT_CLIENT_INT_H

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <witch/client.h>

#include "poll/wakeup.h"
#include "proto/frame.h"

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
	witch_client_event_fn	 event_fn;
	void			*event_ud;
};

/* RQ_EVENT: a server event waiting for the event callback (done list). */
enum rq_kind { RQ_CALL, RQ_HELLO, RQ_ONEWAY, RQ_EVENT };
enum rq_state { RS_QUEUED, RS_SENT, RS_DONE };

/*
 * A request.  A call is in the id map and the timer heap from acceptance
 * to completion, and in exactly one list: sendq (not fully written) or
 * sentq (written, awaiting its reply).  Hello and oneway frames live only
 * in sendq.  Once completed it is on the done list until its callback ran.
 * An event is only ever on the done list: body holds its name
 * (NUL-terminated), result its data.
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
	size_t			 server_max_frame; /* from hello; 0 unknown */
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
	bool			 freeing;	/* no event callbacks, no I/O thread */
	pthread_t		 thread;
	unsigned char		 rbuf[RBUF_SIZE];
};

/* ---- reqtab.c ----------------------------------------------------------- */

void	witch__client_seterr(witch_error_t *e, int code, int remote,
	    const char *fmt, ...);
void	witch__client_lst_push(struct rqlist *l, struct witch__creq *r);
void	witch__client_lst_push_front(struct rqlist *l, struct witch__creq *r);
void	witch__client_lst_remove(struct rqlist *l, struct witch__creq *r);
void	witch__client_rq_free(struct witch__creq *r);
int	witch__client_map_put(struct witch_client *c, struct witch__creq *r);
struct witch__creq *witch__client_map_get(const struct witch_client *c,
	    uint64_t id);
void	witch__client_map_del(struct witch_client *c, uint64_t id);
int	witch__client_heap_push(struct witch_client *c, struct witch__creq *r);
void	witch__client_set_state(struct witch_client *c,
	    enum witch_client_state ns);
void	witch__client_complete(struct witch_client *c, struct witch__creq *r,
	    int status, json_t *result, const witch_error_t *err);
void	witch__client_fail(struct witch_client *c, struct witch__creq *r,
	    int code, int remote, const char *text);
void	witch__client_fail_queued(struct witch_client *c, int code,
	    const char *text);
int	witch__client_queue_event(struct witch_client *c, const char *name,
	    json_t *data);

/* ---- link.c ------------------------------------------------------------- */

void	witch__client_close_socket(struct witch_client *c);
const char *witch__client_target(const struct witch_client *c, char *buf,
	    size_t len);
int	witch__client_try_addrs(struct witch_client *c, witch_error_t *e);
void	witch__client_connected(struct witch_client *c);
void	witch__client_start_attempt(struct witch_client *c);
void	witch__client_link_lost(struct witch_client *c, int code, int remote,
	    bool fatal, const char *why);

/* ---- wire.c ------------------------------------------------------------- */

void	witch__client_flush(struct witch_client *c);
void	witch__client_link_io(struct witch_client *c, unsigned ev);

/* ---- call.c ------------------------------------------------------------- */

void	witch__client_sync_cb(witch_client_t *c, int status, json_t *result,
	    const witch_error_t *err, void *ud);
void	witch__client_sync_finish(struct witch_client *c,
	    struct witch__creq *r);

/* ---- client.c ----------------------------------------------------------- */

bool	witch__client_driving_here(const struct witch_client *c);
bool	witch__client_drive_until(struct witch_client *c,
	    bool (*done)(struct witch_client *, void *), void *arg,
	    uint64_t deadline_ns);

/* ---- config.c ----------------------------------------------------------- */

void	witch__client_config_defaults(struct witch_client_config *cfg);

/* ---- backoff.c ---------------------------------------------------------- */

/* Next value of a splitmix64 generator whose state is *state. */
uint64_t witch__client_rng_next(uint64_t *state);

/*
 * Reconnect delay of attempt n (from 0), in ms: uniformly random in
 * [delay, max(delay, min(delay_max, delay * 2^n))] (full jitter above a
 * floor of delay), drawn from the generator *rng.  Pure; any thread that
 * owns *rng.
 */
uint64_t witch__client_backoff_ms(unsigned attempt, unsigned delay,
    unsigned delay_max, uint64_t *rng);

#endif
