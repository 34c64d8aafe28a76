/*
 * bench/idle.c: witch-bench --idle N: open N connections, each served one
 * request, and measure the server's RSS per connection.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* Read one whole reply from blocking fd; return its kind. */
static enum reply_kind
read_reply(int fd, unsigned char *buf, size_t cap)
{
	enum reply_kind k = REPLY_OK;
	uint64_t id;
	size_t len = 0, used = 0;
	ssize_t r;
	int done;

	for (;;) {
		if (len > 0) {
			done = o.resp ? resp_reply(buf, len, &used, &k) :
			    witch_reply(buf, len, &used, &k, &id);
			if (done && k != REPLY_EVENT)
				return k;
			if (done) {
				memmove(buf, buf + used, len - used);
				len -= used;
				continue;
			}
			if (used > cap)
				fail("idle reply larger than %zu bytes", cap);
		}
		r = recv(fd, buf + len, cap - len, 0);
		if (r == 0)
			fail("the server closed an idle connection");
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			fail("no reply for %d s", STALL_MS / 1000);
		if (r < 0)
			fail("recv: %s", strerror(errno));
		len += (size_t)r;
	}
}

/*
 * Open o.idle connections, each sending one request and reading its reply
 * (so the server has seen a complete frame and keeps the connection past
 * its handshake timeout), then measure the server's RSS and hold them.
 */
int
idle(void)
{
	struct timeval tv = { STALL_MS / 1000, 0 };
	unsigned char *req, *buf;
	size_t rl, cap = tmpllen + 65536;
	long long r0 = -1, r1 = -1;
	uint64_t errors = 0;
	unsigned i, j, n;
	int *fds;

	raise_nofile((rlim_t)o.idle + 64);
	fds = xmalloc(o.idle * sizeof(*fds));
	req = xmalloc(tmpllen + 32);
	buf = xmalloc(cap);
	rl = format_req(req, 0);
	if (o.pid > 0 && (r0 = proc_rss(o.pid)) < 0)
		fail("cannot read /proc/%lld/status", o.pid);
	for (i = 0; i < o.idle; i += n) {
		n = o.idle - i < IDLE_BATCH ? o.idle - i : IDLE_BATCH;
		for (j = i; j < i + n; j++) {
			fds[j] = dial();
			setsockopt(fds[j], SOL_SOCKET, SO_RCVTIMEO, &tv,
			    sizeof(tv));
			if (send(fds[j], req, rl, MSG_NOSIGNAL) != (ssize_t)rl)
				fail("send: %s", strerror(errno));
		}
		for (j = i; j < i + n; j++)
			if (read_reply(fds[j], buf, cap) == REPLY_ERROR)
				errors++;
	}
	sleep(1);		/* let the server settle */
	if (o.pid > 0)
		r1 = proc_rss(o.pid);
	if (o.csv) {
		printf("%s,%u,%lld,%lld,", proto_name(), o.idle, r0, r1);
		if (r0 >= 0 && r1 >= 0)
			printf("%.0f", (double)(r1 - r0) * 1024 / o.idle);
		printf(",%llu\n", (unsigned long long)errors);
	} else if (o.pid > 0)
		printf("%s idle: %u connections; server RSS %lld KiB before, "
		    "%lld KiB after: %.0f bytes/connection; errors %llu\n",
		    proto_name(), o.idle, r0, r1,
		    (double)(r1 - r0) * 1024 / o.idle,
		    (unsigned long long)errors);
	else
		printf("%s idle: %u connections open; errors %llu\n",
		    proto_name(), o.idle, (unsigned long long)errors);
	fflush(stdout);
	if (o.hold > 0)
		sleep(o.hold);
	for (i = 0; i < o.idle; i++)
		close(fds[i]);
	return errors ? EXIT_ERRORS : 0;
}
