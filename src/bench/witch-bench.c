/*
 * witch-bench: closed-loop load generator for witch servers and, speaking
 * RESP, for Redis, so that both are driven by the same client (see
 * witch-bench(1)).
 *
 * -c connections are split over --threads threads, each with its own epoll
 * loop.  Every connection keeps -P requests in flight; a reply frees its
 * slot, which is refilled at once while requests remain (closed loop).
 * Witch request ids are slot-based (id mod P is the slot), so replies may
 * come in any order; RESP replies come in order, so a ring of slots is
 * enough.  Latencies go into a log-linear histogram (32 buckets per power
 * of two, about 3% wide) per thread, merged at the end.
 *
 * It links no libwitch code: it speaks the wire protocols itself, and
 * validates witch replies cheaply (the server writes {"id":N, first, then
 * "result" or "error").
 *
 * Exit status: 0 success, 1 error replies, 2 usage, 3 connection or
 * protocol failure (refused, closed by the server, no reply for 10 s).
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

struct conn {
	int		 fd;
	bool		 want_out;	/* EPOLLOUT is registered */
	unsigned char	*in;
	size_t		 inlen, incap;
	unsigned char	*out;
	size_t		 outlen, outoff, outcap;
	uint64_t	*sent;		/* send time per slot, ns */
	uint64_t	*ids;		/* witch: id sent per slot */
	unsigned	 head;		/* RESP: oldest slot */
	unsigned	 inflight;
	uint64_t	 gen;
	struct worker	*w;
};

struct worker {
	pthread_t	 tid;
	int		 ep;
	struct conn	*cs;
	unsigned	 nconns;
	unsigned	 active;	/* connections with requests out */
	struct hist	 h;
	uint64_t	 done, errors, events;
	uint64_t	 t_end;
};

struct bench_opts o = {
	.host = "127.0.0.1", .port = "8888", .endpoint = "echo",
	.conns = 50, .pipeline = 1, .threads = 1, .total = 100000,
	.dsize = 32, .pid = -1
};

static atomic_uint_fast64_t issued;	/* requests claimed, all threads */
unsigned char	*tmpl;			/* witch: after the id */
size_t		 tmpllen;
static atomic_flag	 err_shown = ATOMIC_FLAG_INIT;

void
fail(const char *fmt, ...)
{
	va_list ap;

	fputs("witch-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_FAIL);
}

void *
xmalloc(size_t n)
{
	void *p;

	if ((p = malloc(n)) == NULL)
		fail("out of memory");
	return p;
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Requests */

/* Build the fixed part of a request: for witch, what follows the id; for
 * RESP, the whole command. */
/* Write one request with this id into buf (room: tmpllen + 32); return
 * its length. */
size_t
format_req(unsigned char *buf, uint64_t id)
{
	char dig[24];
	size_t nd = 0, len;

	if (o.resp) {
		memcpy(buf, tmpl, tmpllen);
		return tmpllen;
	}
	do {
		dig[sizeof(dig) - ++nd] = (char)('0' + id % 10);
		id /= 10;
	} while (id != 0);
	len = 6 + nd + tmpllen;
	buf[0] = (unsigned char)(len >> 24);
	buf[1] = (unsigned char)(len >> 16);
	buf[2] = (unsigned char)(len >> 8);
	buf[3] = (unsigned char)len;
	memcpy(buf + 4, "{\"id\":", 6);
	memcpy(buf + 10, dig + sizeof(dig) - nd, nd);
	memcpy(buf + 10 + nd, tmpl, tmpllen);
	return 4 + len;
}

static void
show_error(const unsigned char *p, size_t len)
{
	if (atomic_flag_test_and_set(&err_shown))
		return;
	fprintf(stderr, "witch-bench: first error reply: %.*s\n",
	    (int)(len > 300 ? 300 : len), (const char *)p);
}

/*
 * Parse one witch reply frame at p.  Returns 1 and sets *used, *kind and
 * *id when a whole frame is there, 0 when more bytes are needed (*used is
 * then the frame size), and fails on a frame that is not a reply to us.
 */
int
witch_reply(const unsigned char *p, size_t len, size_t *used,
    enum reply_kind *kind, uint64_t *id)
{
	const unsigned char *q, *end;
	uint32_t fl;

	if (len < 4) {
		*used = 4;
		return 0;
	}
	fl = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
	if (fl == 0 || fl > FRAME_CEILING)
		fail("bad frame length %u from the server", fl);
	*used = 4 + (size_t)fl;
	if (len - 4 < fl)
		return 0;
	q = p + 4;
	end = q + fl;
	if (fl > 9 && memcmp(q, "{\"event\":", 9) == 0) {
		*kind = REPLY_EVENT;
		return 1;
	}
	if (fl < 7 || memcmp(q, "{\"id\":", 6) != 0 ||
	    q[6] < '0' || q[6] > '9')
		fail("unexpected frame: %.*s", (int)(fl > 300 ? 300 : fl),
		    (const char *)q);
	*id = 0;
	for (q += 6; q < end && *q >= '0' && *q <= '9'; q++)
		*id = *id * 10 + (uint64_t)(*q - '0');
	if (end - q > 9 && memcmp(q, ",\"result\"", 9) == 0)
		*kind = REPLY_OK;
	else if (end - q > 8 && memcmp(q, ",\"error\"", 8) == 0) {
		*kind = REPLY_ERROR;
		show_error(p + 4, fl);
	} else
		fail("reply without result or error: %.*s",
		    (int)(fl > 300 ? 300 : fl), (const char *)p + 4);
	return 1;
}

/* Parse one RESP reply at p, as witch_reply() does.  Arrays are not
 * expected from ECHO or PING, so they are a failure. */
int
resp_reply(const unsigned char *p, size_t len, size_t *used,
    enum reply_kind *kind)
{
	const unsigned char *nl;
	long long bl;
	size_t ll;
	char *e;

	if ((nl = memchr(p, '\n', len)) == NULL) {
		*used = len + 1;
		return 0;
	}
	ll = (size_t)(nl - p) + 1;
	*used = ll;
	switch (p[0]) {
	case '+':
	case ':':
		*kind = REPLY_OK;
		return 1;
	case '-':
		*kind = REPLY_ERROR;
		show_error(p, ll);
		return 1;
	case '$':
		bl = strtoll((const char *)p + 1, &e, 10);
		if (bl < -1 || bl > (long long)FRAME_CEILING)
			fail("bad RESP bulk length");
		*kind = REPLY_OK;
		if (bl == -1)
			return 1;
		*used = ll + (size_t)bl + 2;
		return len >= *used;
	default:
		fail("unexpected RESP reply: %.*s", (int)(ll > 300 ? 300 : ll),
		    (const char *)p);
	}
}

/* Connections */

static bool
claim(void)
{
	return atomic_fetch_add_explicit(&issued, 1,
	    memory_order_relaxed) < o.total;
}

/* Append a request for slot s, sent at time t, to c's output. */
static void
queue_req(struct conn *c, unsigned s, uint64_t t)
{
	size_t need = tmpllen + 32;

	if (c->outlen + need > c->outcap) {
		memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
		c->outlen -= c->outoff;
		c->outoff = 0;
	}
	if (c->outlen + need > c->outcap) {
		c->outcap = (c->outlen + need) * 2;
		if ((c->out = realloc(c->out, c->outcap)) == NULL)
			fail("out of memory");
	}
	if (!o.resp)
		c->ids[s] = c->gen++ * o.pipeline + s;
	c->outlen += format_req(c->out + c->outlen, o.resp ? 0 : c->ids[s]);
	c->sent[s] = t;
	c->inflight++;
}

static void
set_out(struct conn *c, bool on)
{
	struct epoll_event ev;

	ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
	ev.data.ptr = c;
	if (epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &ev) == -1)
		fail("epoll_ctl: %s", strerror(errno));
	c->want_out = on;
}

static void
flush_out(struct conn *c)
{
	ssize_t w;

	while (c->outoff < c->outlen) {
		w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
		    MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (!c->want_out)
					set_out(c, true);
				return;
			}
			fail("send: %s", strerror(errno));
		}
		c->outoff += (size_t)w;
	}
	c->outoff = c->outlen = 0;
	if (c->want_out)
		set_out(c, false);
}

/* One reply for slot s arrived at time t: record it, refill the slot. */
static void
complete(struct conn *c, unsigned s, enum reply_kind k, uint64_t t)
{
	struct worker *w = c->w;

	hist_add(&w->h, t - c->sent[s]);
	c->sent[s] = 0;
	w->done++;
	if (k == REPLY_ERROR)
		w->errors++;
	c->inflight--;
	if (claim())
		queue_req(c, s, t);
	else if (c->inflight == 0)
		w->active--;
}

/* Handle every whole reply in c's input; return the bytes consumed. */
static size_t
parse_replies(struct conn *c, uint64_t t)
{
	enum reply_kind k;
	uint64_t id;
	size_t off = 0, used;
	unsigned s;
	int r;

	while (off < c->inlen) {
		if (o.resp)
			r = resp_reply(c->in + off, c->inlen - off, &used, &k);
		else
			r = witch_reply(c->in + off, c->inlen - off, &used,
			    &k, &id);
		if (r == 0) {
			if (used > c->incap) {
				c->incap = used;
				if ((c->in = realloc(c->in, c->incap)) == NULL)
					fail("out of memory");
			}
			break;
		}
		off += used;
		if (k == REPLY_EVENT) {
			c->w->events++;
			continue;
		}
		if (c->inflight == 0)
			fail("reply to no request");
		if (o.resp) {
			s = c->head;
			c->head = (c->head + 1) % o.pipeline;
		} else {
			s = (unsigned)(id % o.pipeline);
			if (c->ids[s] != id || c->sent[s] == 0)
				fail("reply with unknown id %llu",
				    (unsigned long long)id);
		}
		complete(c, s, k, t);
	}
	return off;
}

static void
conn_event(struct conn *c, uint32_t events)
{
	ssize_t r;
	size_t off;

	if ((events & EPOLLOUT) && c->want_out)
		flush_out(c);
	if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		return;
	if (c->inlen == c->incap)
		fail("input buffer full");	/* parse_replies() grows it */
	r = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, 0);
	if (r == 0)
		fail("the server closed a connection (%u requests in flight)",
		    c->inflight);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		fail("recv: %s", strerror(errno));
	}
	c->inlen += (size_t)r;
	off = parse_replies(c, now_ns());
	if (off > 0) {
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
	}
	flush_out(c);
}

/* Open one blocking connection to the server, or fail. */
int
dial(void)
{
	struct addrinfo hints, *res, *ai;
	struct sockaddr_un sun;
	int fd = -1, on = 1, rc, saved = 0;

	if (o.upath != NULL) {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (strlcpy(sun.sun_path, o.upath, sizeof(sun.sun_path)) >=
		    sizeof(sun.sun_path))
			fail("%s: path too long", o.upath);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
			fail("socket: %s", strerror(errno));
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
			fail("connect to %s: %s", o.upath, strerror(errno));
		return fd;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(o.host, o.port, &hints, &res)) != 0)
		fail("%s port %s: %s", o.host, o.port, gai_strerror(rc));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		saved = errno;
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		fail("connect to %s port %s: %s", o.host, o.port,
		    strerror(saved));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	return fd;
}

static void
conn_init(struct conn *c, struct worker *w)
{
	struct epoll_event ev;

	c->w = w;
	c->fd = dial();
	if (fcntl(c->fd, F_SETFL, O_NONBLOCK) == -1)
		fail("fcntl: %s", strerror(errno));
	c->incap = 2 * (size_t)o.pipeline * (tmpllen + 256);
	if (c->incap < 65536)
		c->incap = 65536;
	c->in = xmalloc(c->incap);
	c->outcap = (size_t)o.pipeline * (tmpllen + 32);
	c->out = xmalloc(c->outcap);
	c->sent = calloc(o.pipeline, sizeof(*c->sent));
	c->ids = calloc(o.pipeline, sizeof(*c->ids));
	if (c->sent == NULL || c->ids == NULL)
		fail("out of memory");
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) == -1)
		fail("epoll_ctl: %s", strerror(errno));
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[256];
	uint64_t t = now_ns();
	unsigned i, s;
	int n, k;

	for (i = 0; i < w->nconns; i++) {
		for (s = 0; s < o.pipeline && claim(); s++)
			queue_req(&w->cs[i], s, t);
		if (w->cs[i].inflight > 0)
			w->active++;
		flush_out(&w->cs[i]);
	}
	while (w->active > 0) {
		n = epoll_wait(w->ep, evs, 256, STALL_MS);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("epoll_wait: %s", strerror(errno));
		if (n == 0)
			fail("no reply for %d s (%llu of %llu requests done "
			    "by this thread)", STALL_MS / 1000,
			    (unsigned long long)w->done,
			    (unsigned long long)o.total);
		for (k = 0; k < n; k++)
			conn_event(evs[k].data.ptr, evs[k].events);
	}
	w->t_end = now_ns();
	return NULL;
}

/* Run mode */

const char *
proto_name(void)
{
	return o.resp ? "resp" : "witch";
}

static void
report(const struct hist *h, uint64_t errors, uint64_t events, double secs,
    double srv_cpu, double cli_cpu)
{
	double rps = (double)h->count / secs, scpu = -1, ccpu;

	if (srv_cpu >= 0)
		scpu = srv_cpu * 1e6 / (double)h->count;
	ccpu = cli_cpu * 1e6 / (double)h->count;
	if (o.csv) {
		printf("%s,%s,%u,%u,%zu,%u,%llu,%.3f,%.0f,%.1f,%.1f,%.1f,"
		    "%.1f,%.1f,%llu,", proto_name(), o.endpoint, o.conns,
		    o.pipeline, o.dsize, o.threads,
		    (unsigned long long)h->count, secs, rps,
		    hist_pct(h, 0.5), hist_pct(h, 0.9), hist_pct(h, 0.99),
		    hist_pct(h, 0.999), h->max / 1000.0,
		    (unsigned long long)errors);
		if (scpu >= 0)
			printf("%.2f", scpu);
		printf(",%.2f\n", ccpu);
		return;
	}
	printf("%s %s c=%u P=%u d=%zu threads=%u: %llu requests in %.3f s, "
	    "%.0f req/s\n", proto_name(), o.endpoint, o.conns, o.pipeline,
	    o.dsize, o.threads, (unsigned long long)h->count, secs, rps);
	printf("latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  "
	    "max %.1f\n", hist_pct(h, 0.5), hist_pct(h, 0.9),
	    hist_pct(h, 0.99), hist_pct(h, 0.999), h->max / 1000.0);
	printf("errors %llu", (unsigned long long)errors);
	if (events > 0)
		printf("; events %llu", (unsigned long long)events);
	if (scpu >= 0)
		printf("; server cpu %.2f us/req (pid %lld)", scpu, o.pid);
	printf("; client cpu %.2f us/req\n", ccpu);
}

static int
run(void)
{
	struct worker *ws;
	struct hist *all;
	uint64_t t0, t1 = 0, errors = 0, events = 0;
	double s0 = -1, s1 = -1, c0, c1;
	unsigned t, i;

	if (o.threads > o.conns)
		o.threads = o.conns;
	raise_nofile((rlim_t)o.conns + 64);
	if ((ws = calloc(o.threads, sizeof(*ws))) == NULL ||
	    (all = calloc(1, sizeof(*all))) == NULL)
		fail("out of memory");
	for (t = 0; t < o.threads; t++) {
		ws[t].nconns = o.conns / o.threads +
		    (t < o.conns % o.threads);
		if ((ws[t].cs = calloc(ws[t].nconns, sizeof(struct conn))) ==
		    NULL)
			fail("out of memory");
		if ((ws[t].ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
			fail("epoll_create1: %s", strerror(errno));
		for (i = 0; i < ws[t].nconns; i++)
			conn_init(&ws[t].cs[i], &ws[t]);
	}
	if (o.pid > 0 && (s0 = proc_cpu(o.pid)) < 0)
		fail("cannot read /proc/%lld/stat", o.pid);
	c0 = self_cpu();
	t0 = now_ns();
	for (t = 0; t < o.threads; t++)
		if ((errno = pthread_create(&ws[t].tid, NULL, worker_run,
		    &ws[t])) != 0)
			fail("pthread_create: %s", strerror(errno));
	for (t = 0; t < o.threads; t++) {
		pthread_join(ws[t].tid, NULL);
		if (ws[t].t_end > t1)
			t1 = ws[t].t_end;
		hist_merge(all, &ws[t].h);
		errors += ws[t].errors;
		events += ws[t].events;
	}
	c1 = self_cpu();
	if (o.pid > 0)
		s1 = proc_cpu(o.pid);
	report(all, errors, events, (double)(t1 - t0) / 1e9,
	    s1 >= 0 ? s1 - s0 : -1, c1 - c0);
	return errors ? EXIT_ERRORS : 0;
}

/* Options */

static void
usage(FILE *f)
{
	fprintf(f,
"usage: witch-bench [-H host] [-p port] [-U path] [-c connections]\n"
"                   [-P pipeline] [-n requests] [-d bytes] [-e endpoint]\n"
"                   [--threads n] [--pid pid] [--resp] [--csv]\n"
"                   [--csv-header] [--idle n [--hold seconds]] [--object]\n"
"Closed-loop load generator for witch servers (--resp: Redis); see\n"
"witch-bench(1).  Exit 0 ok, 1 error replies, 2 usage, 3 failure.\n");
}

/* Report a usage error on one line and exit with status 2. */
static void __attribute__((noreturn, format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("witch-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see 'witch-bench --help')\n", stderr);
	exit(EXIT_USAGE);
}

static unsigned long long
num(const char *s, long long lo, long long hi, const char *what)
{
	const char *errstr;
	long long v;

	v = strtonum(s, lo, hi, &errstr);
	if (errstr != NULL) {
		fprintf(stderr, "witch-bench: %s %s: value is %s (allowed "
		    "%lld to %lld)\n", what, s, errstr, lo, hi);
		exit(EXIT_USAGE);
	}
	return (unsigned long long)v;
}

static void
parse_args(int argc, char *argv[])
{
	enum { O_THREADS = 1000, O_PID, O_RESP, O_CSV, O_CSVH, O_IDLE,
	    O_HOLD, O_OBJECT };
	static const struct option lo[] = {
		{ "threads", required_argument, NULL, O_THREADS },
		{ "pid", required_argument, NULL, O_PID },
		{ "resp", no_argument, NULL, O_RESP },
		{ "csv", no_argument, NULL, O_CSV },
		{ "csv-header", no_argument, NULL, O_CSVH },
		{ "idle", required_argument, NULL, O_IDLE },
		{ "hold", required_argument, NULL, O_HOLD },
		{ "object", no_argument, NULL, O_OBJECT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":H:p:U:c:P:n:d:e:h", lo,
	    NULL)) != -1) {
		switch (ch) {
		case 'H': o.host = optarg; break;
		case 'p':
			num(optarg, 1, 65535, "-p");
			o.port = optarg;
			break;
		case 'U': o.upath = optarg; break;
		case 'c': o.conns = num(optarg, 1, 1000000, "-c"); break;
		case 'P': o.pipeline = num(optarg, 1, 65536, "-P"); break;
		case 'n': o.total = num(optarg, 0, 1LL << 40, "-n"); break;
		case 'd': o.dsize = num(optarg, 0, 1 << 24, "-d"); break;
		case 'e': o.endpoint = optarg; break;
		case O_THREADS: o.threads = num(optarg, 1, 256, "--threads");
			break;
		case O_PID: o.pid = num(optarg, 1, 1LL << 31, "--pid"); break;
		case O_RESP: o.resp = true; break;
		case O_CSV: o.csv = true; break;
		case O_CSVH: o.csv = o.csv_header = true; break;
		case O_IDLE: o.idle = num(optarg, 1, 1000000, "--idle"); break;
		case O_HOLD: o.hold = num(optarg, 0, 86400, "--hold"); break;
		case O_OBJECT: o.object = true; break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			usage_error("option '%s' needs a value",
			    argv[optind - 1]);
		default:
			if (optopt != 0)
				usage_error("unknown option '-%c'", optopt);
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (o.object && o.resp)
		usage_error("--object is for the witch protocol, not --resp");
	if (o.object && o.dsize < 10)
		usage_error("--object needs -d 10 or more");
	if (o.endpoint[0] == '\0' || strlen(o.endpoint) > 63 ||
	    strpbrk(o.endpoint, "\"\\\r\n") != NULL) {
		fprintf(stderr, "witch-bench: -e '%s': expected an endpoint "
		    "name of 1 to 63 bytes without quotes, backslashes or line "
		    "breaks\n", o.endpoint);
		exit(EXIT_USAGE);
	}
}

int
main(int argc, char *argv[])
{
	parse_args(argc, argv);
	if (o.csv_header) {
		if (o.idle > 0)
			puts("proto,connections,rss_before_kib,rss_after_kib,"
			    "bytes_per_conn,errors");
		else
			puts("proto,endpoint,conns,pipeline,bytes,threads,"
			    "requests,seconds,rps,p50_us,p90_us,p99_us,"
			    "p999_us,max_us,errors,server_cpu_us_per_req,"
			    "client_cpu_us_per_req");
		fflush(stdout);
	}
	if (o.total == 0 && o.idle == 0)
		return 0;
	build_template();
	if (o.idle > 0)
		return idle();
	return run();
}
