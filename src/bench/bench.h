/*
 * bench/bench.h: what witch-bench's files share.  witch-bench.c: the
 * options, connections, the run and the report; hist.c: the latency
 * histogram; template.c: the fixed part of the requests; sys.c: process
 * figures (CPU, RSS, descriptor limit); idle.c: the idle-connections
 * mode.
 */
#ifndef WITCH_BENCH_BENCH_H
#define WITCH_BENCH_BENCH_H

#include <sys/resource.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXIT_ERRORS	1
#define EXIT_USAGE	2
#define EXIT_FAIL	3

#define STALL_MS	10000		/* no reply this long: give up */
#define FRAME_CEILING	(64u << 20)	/* largest server frame */
#define IDLE_BATCH	256		/* idle mode: connects per batch */

/* Log-linear histogram: values below H_SUB exact, then H_SUB buckets per
 * power of two. */
#define H_SUB_BITS	5
#define H_SUB		(1u << H_SUB_BITS)
#define H_BUCKETS	((64 - H_SUB_BITS + 1) * H_SUB)

struct hist {
	uint64_t	 n[H_BUCKETS];
	uint64_t	 count;
	uint64_t	 max;
};

enum reply_kind { REPLY_OK, REPLY_ERROR, REPLY_EVENT };

/* The command line (witch-bench.c). */
struct bench_opts {
	const char	*host, *port, *upath, *endpoint;
	unsigned	 conns, pipeline, threads, idle, hold;
	uint64_t	 total;
	size_t		 dsize;
	long long	 pid;
	bool		 resp, csv, csv_header, object;
};
extern struct bench_opts o;
/* The fixed part of a request (template.c): for witch, what follows the
 * id; for RESP, the whole command. */
extern unsigned char	*tmpl;
extern size_t		 tmpllen;

/* witch-bench.c */
void	fail(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));
void	*xmalloc(size_t n);
size_t	format_req(unsigned char *buf, uint64_t id);
int	witch_reply(const unsigned char *p, size_t len, size_t *used,
	    enum reply_kind *k, uint64_t *id);
int	resp_reply(const unsigned char *p, size_t len, size_t *used,
	    enum reply_kind *k);
int	dial(void);
const char *proto_name(void);

/* hist.c */
void	hist_merge(struct hist *to, const struct hist *from);
double	hist_pct(const struct hist *h, double q);

/* template.c */
void	build_template(void);

/* sys.c */
double	proc_cpu(long long pid);
double	self_cpu(void);
long long proc_rss(long long pid);
void	raise_nofile(rlim_t want);

/* idle.c */
int	idle(void);

/* The bucket of a value: exact below H_SUB, then log-linear. */
static inline unsigned
hist_index(uint64_t v)
{
	unsigned e;

	if (v < H_SUB)
		return (unsigned)v;
	e = 63 - (unsigned)__builtin_clzll(v);
	return (e - H_SUB_BITS + 1) * H_SUB +
	    (unsigned)((v >> (e - H_SUB_BITS)) & (H_SUB - 1));
}

static inline void
hist_add(struct hist *h, uint64_t v)
{
	h->n[hist_index(v)]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

#endif
