/*
 * witch-bench: closed-loop load generator for witch servers.
 *
 *   witch-bench [-H host] [-p port] [-c conns] [-P pipeline] [-n requests]
 *               [-d payload_bytes] [-e endpoint] [--csv]
 *
 * One thread, epoll, -c connections each keeping -P requests in flight
 * (request ids are slot numbers, so out-of-order replies are matched).
 * Latency of every request is kept and sorted for exact percentiles.
 * It links no libwitch internals: it speaks the wire protocol itself.
 */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct bconn {
	int		 fd;
	unsigned char	*in;
	size_t		 inlen, incap;
	unsigned char	*out;
	size_t		 outlen, outoff, outcap;
	uint64_t	*sent;		/* send time per slot */
	uint64_t	 gen;
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static void
die(const char *m)
{
	fprintf(stderr, "witch-bench: %s: %s\n", m, strerror(errno));
	exit(3);
}

static const char *payload;
static const char *endpoint = "echo";
static unsigned pipeline = 1;

/* Append one request for slot s to c's output. */
static void
queue_req(struct bconn *c, unsigned s)
{
	char hdr[128];
	size_t plen = strlen(payload), n;
	uint64_t id = c->gen++ * pipeline + s;
	int h;

	h = snprintf(hdr, sizeof(hdr), "{\"id\":%llu,\"endpoint\":\"%s\","
	    "\"data\":\"", (unsigned long long)id, endpoint);
	n = 4 + (size_t)h + plen + 2;
	if (c->outlen + n > c->outcap) {
		c->outcap = (c->outlen + n) * 2;
		if ((c->out = realloc(c->out, c->outcap)) == NULL)
			die("realloc");
	}
	n -= 4;
	c->out[c->outlen++] = n >> 24;
	c->out[c->outlen++] = n >> 16;
	c->out[c->outlen++] = n >> 8;
	c->out[c->outlen++] = n;
	memcpy(c->out + c->outlen, hdr, h);
	c->outlen += h;
	memcpy(c->out + c->outlen, payload, plen);
	c->outlen += plen;
	memcpy(c->out + c->outlen, "\"}", 2);
	c->outlen += 2;
	c->sent[s] = now_ns();
}

static void
flush_out(struct bconn *c)
{
	ssize_t w;

	while (c->outoff < c->outlen) {
		w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
		    MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			die("send");
		}
		c->outoff += (size_t)w;
	}
	c->outoff = c->outlen = 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "csv", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *host = "127.0.0.1";
	unsigned port = 8888, conns = 50, dsize = 32, i, s;
	uint64_t total = 100000, issued = 0, done = 0, errors = 0, *lat;
	uint64_t t0, t1;
	struct epoll_event ev, evs[256];
	struct sockaddr_in sin;
	struct bconn *cs;
	char *pl;
	int ch, ep, n, k, csv = 0, on = 1;

	while ((ch = getopt_long(argc, argv, "H:p:c:P:n:d:e:h", lo,
	    NULL)) != -1) {
		switch (ch) {
		case 'H': host = optarg; break;
		case 'p': port = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'c': conns = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'P': pipeline = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'n': total = strtoull(optarg, NULL, 10); break;
		case 'd': dsize = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'e': endpoint = optarg; break;
		case 'C': csv = 1; break;
		default:
			fprintf(stderr, "usage: witch-bench [-H host] [-p port] "
			    "[-c conns] [-P pipeline] [-n requests] "
			    "[-d bytes] [-e endpoint] [--csv]\n");
			return ch == 'h' ? 0 : 2;
		}
	}
	if (conns == 0 || pipeline == 0 || total == 0)
		return 2;
	if ((pl = malloc(dsize + 1)) == NULL)
		die("malloc");
	memset(pl, 'x', dsize);
	pl[dsize] = '\0';
	payload = pl;
	if ((lat = malloc(total * sizeof(*lat))) == NULL ||
	    (cs = calloc(conns, sizeof(*cs))) == NULL)
		die("malloc");
	if ((ep = epoll_create1(0)) < 0)
		die("epoll");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		die("host must be a numeric IPv4 address");
	for (i = 0; i < conns; i++) {
		cs[i].fd = socket(AF_INET, SOCK_STREAM, 0);
		if (cs[i].fd < 0 || connect(cs[i].fd, (void *)&sin,
		    sizeof(sin)) < 0)
			die("connect");
		setsockopt(cs[i].fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
		if ((cs[i].sent = calloc(pipeline, sizeof(uint64_t))) == NULL)
			die("calloc");
		cs[i].incap = 1 << 16;
		if ((cs[i].in = malloc(cs[i].incap)) == NULL)
			die("malloc");
		ev.events = EPOLLIN;
		ev.data.ptr = &cs[i];
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
	}
	t0 = now_ns();
	for (i = 0; i < conns; i++) {
		for (s = 0; s < pipeline && issued < total; s++, issued++)
			queue_req(&cs[i], s);
		flush_out(&cs[i]);
	}
	while (done < total) {
		n = epoll_wait(ep, evs, 256, 10000);
		if (n <= 0) {
			fprintf(stderr, "witch-bench: no reply for 10 s "
			    "(%llu of %llu done)\n", (unsigned long long)done,
			    (unsigned long long)total);
			return 3;
		}
		for (k = 0; k < n; k++) {
			struct bconn *c = evs[k].data.ptr;
			ssize_t r;
			size_t off = 0;

			r = recv(c->fd, c->in + c->inlen, c->incap - c->inlen,
			    0);
			if (r <= 0) {
				if (r < 0 && errno == EINTR)
					continue;
				die("server closed the connection");
			}
			c->inlen += (size_t)r;
			for (;;) {
				uint32_t len;
				unsigned long long id;
				const unsigned char *p = c->in + off;
				char *end;

				if (c->inlen - off < 4)
					break;
				len = (uint32_t)p[0] << 24 | p[1] << 16 |
				    p[2] << 8 | p[3];
				if (c->inlen - off - 4 < len) {
					if (len + 4 > c->incap) {
						c->incap = len + 4;
						c->in = realloc(c->in,
						    c->incap);
					}
					break;
				}
				/* The server writes {"id":N,... first. */
				id = strtoull((const char *)p + 10, &end, 10);
				if (strncmp(end, ",\"error\"", 8) == 0)
					errors++;
				s = (unsigned)(id % pipeline);
				lat[done++] = now_ns() - c->sent[s];
				if (issued < total) {
					queue_req(c, s);
					issued++;
				}
				off += 4 + len;
			}
			memmove(c->in, c->in + off, c->inlen - off);
			c->inlen -= off;
			flush_out(c);
		}
	}
	t1 = now_ns();
	qsort(lat, total, sizeof(*lat), cmp_u64);
#define PCT(q) (lat[(size_t)((double)(total - 1) * (q))] / 1000.0)
	if (csv)
		printf("%s,%u,%u,%u,%llu,%.0f,%.1f,%.1f,%.1f,%.1f,%.1f,%llu\n",
		    endpoint, conns, pipeline, dsize,
		    (unsigned long long)total,
		    total / ((t1 - t0) / 1e9), PCT(0.5), PCT(0.9), PCT(0.99),
		    PCT(0.999), lat[total - 1] / 1000.0,
		    (unsigned long long)errors);
	else
		printf("%s c=%u P=%u d=%u n=%llu: %.0f req/s  p50 %.1f us  "
		    "p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  errors %llu\n",
		    endpoint, conns, pipeline, dsize,
		    (unsigned long long)total, total / ((t1 - t0) / 1e9),
		    PCT(0.5), PCT(0.9), PCT(0.99), PCT(0.999),
		    lat[total - 1] / 1000.0, (unsigned long long)errors);
	return errors ? 1 : 0;
}
