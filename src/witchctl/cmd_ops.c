/*
 * witchctl/cmd_ops.c: the operations commands clients, kill-client, stats
 * and monitor (the server's operations built-ins, witch-protocol(7)).
 *
 * clients, kill-client and stats are one request each, through libwitch.
 * monitor needs the "monitor" events the server streams to the connection,
 * and libwitch's client ignores events other than "closing"; so monitor
 * speaks the wire protocol itself on a socket of its own: 4-byte big-endian
 * length, then one JSON object.  It sends hello and monitor, then prints
 * the events until SIGINT or SIGTERM (exit 0) or until the connection
 * drops (exit 3).
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <witch/witch.h>

#include "output.h"
#include "prom.h"
#include "witchctl.h"

/* Human monitor lines show at most this much of a request's data. */
#define MONITOR_DATA_MAX	512
/* The receive buffer: a frame of the ceiling and room for a read. */
#define BUF_MAX			((size_t)WITCH_MAX_FRAME_CEILING + 4 + 65536)

/* ---- clients, kill-client, stats ------------------------------------- */

static int
run_clients(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char *argv[])
{
	json_t *res = NULL;
	int status;

	if ((status = ctl_plain_args(cmd, argc, argv, 0, 0)) >= 0)
		return status;
	if ((status = ctl_request(ctl, "clients", NULL, &res)) != CTL_EXIT_OK)
		return status;
	if (ctl->json)
		out_json(res);
	else
		out_clients(res);
	json_decref(res);
	return CTL_EXIT_OK;
}

static int
run_kill_client(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char *argv[])
{
	json_t *data, *res = NULL;
	const char *errstr;
	long long id;
	int status;

	if ((status = ctl_plain_args(cmd, argc, argv, 1, 1)) >= 0)
		return status;
	id = strtonum(argv[optind], 1, LLONG_MAX, &errstr);
	if (errstr != NULL)
		return ctl_usage_error(cmd, "kill-client: '%s': client id is "
		    "%s (expected a positive integer, see 'witchctl clients')",
		    argv[optind], errstr);
	if ((data = json_pack("{s:I}", "id", (json_int_t)id)) == NULL) {
		ctl_warnx("kill-client: out of memory");
		return CTL_EXIT_CONN;
	}
	status = ctl_request(ctl, "kill_client", data, &res);
	json_decref(data);
	if (status != CTL_EXIT_OK)
		return status;
	if (ctl->json)
		out_json(res);
	else
		printf("killed client %lld\n", id);
	json_decref(res);
	return CTL_EXIT_OK;
}

/*
 * stats --prometheus: info, status and stats on one connection, then the
 * metrics; nothing is printed unless all three answered.
 */
static int
stats_prometheus(struct ctl *ctl)
{
	static const char *const eps[] = { "info", "status", "stats" };
	json_t *res[3] = { NULL, NULL, NULL };
	witch_client_t *c;
	witch_error_t err;
	int rc, status;
	size_t i;

	if ((status = ctl_connect(ctl, 0, &c)) != CTL_EXIT_OK)
		return status;
	for (i = 0; i < 3 && status == CTL_EXIT_OK; i++) {
		memset(&err, 0, sizeof(err));
		rc = witch_client_call(c, eps[i], NULL, ctl->timeout_ms,
		    &res[i], &err);
		if (rc != 0)
			status = ctl_request_failed(ctl, eps[i], rc, &err);
	}
	witch_client_free(c);
	if (status == CTL_EXIT_OK)
		prom_write(stdout, res[0], res[1], res[2]);
	for (i = 0; i < 3; i++)
		json_decref(res[i]);
	return status;
}

static int
run_stats(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "prometheus", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	json_t *res = NULL;
	bool prometheus = false;
	int ch, status;

	optind = 0;	/* glibc: start over on the command's argv */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'P':
			prometheus = true;
			break;
		case 'h':
			ctl_cmd_help(cmd);
			return CTL_EXIT_OK;
		default:
			return ctl_bad_option(cmd, ch, argv);
		}
	}
	if (optind != argc)
		return ctl_usage_error(cmd, "stats: unexpected argument '%s' "
		    "(usage: witchctl %s)", argv[optind], cmd->synopsis);
	if (prometheus && ctl->json)
		return ctl_usage_error(cmd, "stats: --prometheus and --json "
		    "are exclusive (choose one output format)");
	if (prometheus)
		return stats_prometheus(ctl);
	if ((status = ctl_request(ctl, "stats", NULL, &res)) != CTL_EXIT_OK)
		return status;
	if (ctl->json)
		out_json(res);
	else
		out_stats(res);
	json_decref(res);
	return CTL_EXIT_OK;
}

/* ---- monitor: a raw connection --------------------------------------- */

struct mon {
	struct ctl	*ctl;
	int		 fd;
	unsigned char	*buf;		/* received, not yet parsed */
	size_t		 len, cap;
};

static int sigpipe[2] = { -1, -1 };

static void
on_signal(int sig)
{
	int saved = errno;
	ssize_t n;
	char c = 1;

	n = write(sigpipe[1], &c, 1);
	(void)n;
	errno = saved;
}

/* SIGINT and SIGTERM write to a self-pipe.  0 or -1. */
static int
catch_signals(struct sigaction old[2])
{
	struct sigaction sa;
	int i, fl;

	if (pipe(sigpipe) == -1)
		return -1;
	for (i = 0; i < 2; i++) {
		fl = fcntl(sigpipe[i], F_GETFL);
		fcntl(sigpipe[i], F_SETFL, fl | O_NONBLOCK);
		fcntl(sigpipe[i], F_SETFD, FD_CLOEXEC);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, &old[0]) == -1 ||
	    sigaction(SIGTERM, &sa, &old[1]) == -1)
		return -1;
	return 0;
}

static void
release_signals(const struct sigaction old[2])
{
	sigaction(SIGINT, &old[0], NULL);
	sigaction(SIGTERM, &old[1], NULL);
	close(sigpipe[0]);
	close(sigpipe[1]);
	sigpipe[0] = sigpipe[1] = -1;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Milliseconds left until deadline (0 when passed). */
static int
left_ms(uint64_t deadline)
{
	uint64_t now = now_ms();

	return now >= deadline ? 0 : (int)(deadline - now);
}

/*
 * Wait until fd is ready for events, a signal came (returns 1) or the
 * deadline passed (returns -1 with errno ETIMEDOUT).  0 when ready.
 */
static int
wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd pfd[2];
	char buf[16];
	int n;

	pfd[0].fd = sigpipe[0];
	pfd[0].events = POLLIN;
	pfd[1].fd = fd;
	pfd[1].events = events;
	for (;;) {
		n = poll(pfd, 2, deadline == 0 ? -1 : left_ms(deadline));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (read(sigpipe[0], buf, sizeof(buf)) > 0)
			return 1;
		if (n == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (pfd[1].revents != 0)
			return 0;
	}
}

/* Start a non-blocking connect of fd to sa; 0, 1 (signal) or -1. */
static int
connect_one(int fd, const struct sockaddr *sa, socklen_t salen,
    uint64_t deadline)
{
	socklen_t len = sizeof(int);
	int err = 0, rc;

	if (connect(fd, sa, salen) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EAGAIN)
		return -1;
	if ((rc = wait_fd(fd, POLLOUT, deadline)) != 0)
		return rc;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		return -1;
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

/* Connect to the unix socket of ctl.  fd, -2 (signal) or -1. */
static int
connect_unix(const struct ctl *ctl, uint64_t deadline, const char **why)
{
	struct sockaddr_un sun;
	int fd, rc;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, ctl->unix_path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path)) {
		*why = "path too long";
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		return -1;
	if ((rc = connect_one(fd, (struct sockaddr *)&sun, sizeof(sun),
	    deadline)) != 0) {
		close(fd);
		return rc == 1 ? -2 : -1;
	}
	return fd;
}

/* Connect to host:port of ctl, trying each address.  As connect_unix. */
static int
connect_tcp(const struct ctl *ctl, uint64_t deadline, const char **why)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port[16];
	int fd = -1, rc = -1, gai, saved = ECONNREFUSED;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", ctl->port);
	if ((gai = getaddrinfo(ctl->host, port, &hints, &res)) != 0) {
		*why = gai_strerror(gai);
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1) {
			saved = errno;
			continue;
		}
		if ((rc = connect_one(fd, ai->ai_addr, ai->ai_addrlen,
		    deadline)) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
		if (rc == 1)
			break;
	}
	freeaddrinfo(res);
	if (fd == -1 && rc == 1)
		return -2;
	errno = saved;
	return fd;
}

/* Send one frame with payload o (borrowed).  0, 1 (signal) or -1. */
static int
send_frame(struct mon *m, const json_t *o, uint64_t deadline)
{
	char *s;
	size_t len, off = 0;
	unsigned char *frame;
	ssize_t n;
	int rc = -1;

	if ((s = json_dumps(o, JSON_COMPACT)) == NULL)
		return -1;
	len = strlen(s);
	if ((frame = malloc(len + 4)) == NULL) {
		free(s);
		return -1;
	}
	frame[0] = (unsigned char)(len >> 24);
	frame[1] = (unsigned char)(len >> 16);
	frame[2] = (unsigned char)(len >> 8);
	frame[3] = (unsigned char)len;
	memcpy(frame + 4, s, len);
	free(s);
	while (off < len + 4) {
		n = send(m->fd, frame + off, len + 4 - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if ((rc = wait_fd(m->fd, POLLOUT, deadline)) != 0)
				goto out;
			continue;
		}
		goto out;
	}
	rc = 0;
out:
	free(frame);
	return rc;
}

/*
 * The next frame from the buffer, parsed, or NULL when none is complete
 * (*bad set if the stream is broken).  The frame is removed.
 */
static json_t *
take_frame(struct mon *m, const char **bad)
{
	json_error_t jerr;
	uint32_t len;
	json_t *o;

	if (m->len < 4)
		return NULL;
	len = (uint32_t)m->buf[0] << 24 | (uint32_t)m->buf[1] << 16 |
	    (uint32_t)m->buf[2] << 8 | m->buf[3];
	if (len == 0 || len > WITCH_MAX_FRAME_CEILING) {
		*bad = "bad frame length";
		return NULL;
	}
	if (m->len < 4 + (size_t)len)
		return NULL;
	o = json_loadb((const char *)m->buf + 4, len, 0, &jerr);
	memmove(m->buf, m->buf + 4 + len, m->len - 4 - len);
	m->len -= 4 + len;
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		*bad = "a frame that is not a JSON object";
		return NULL;
	}
	return o;
}

/*
 * One read from the socket into the buffer (poll said it is readable; the
 * caller takes the complete frames out before the next read, so what is
 * left is less than a frame of the ceiling).  0, or -1 with *why set
 * (end of file or an error).
 */
static int
fill(struct mon *m, const char **why)
{
	unsigned char *nb;
	size_t ncap;
	ssize_t n;

	if (m->cap - m->len < 65536) {
		ncap = m->cap == 0 ? 131072 : m->cap * 2;
		if (ncap > BUF_MAX)
			ncap = BUF_MAX;
		if (ncap <= m->cap || (nb = realloc(m->buf, ncap)) == NULL) {
			*why = "out of memory";
			return -1;
		}
		m->buf = nb;
		m->cap = ncap;
	}
	do
		n = recv(m->fd, m->buf + m->len, m->cap - m->len, 0);
	while (n == -1 && errno == EINTR);
	if (n > 0) {
		m->len += (size_t)n;
		return 0;
	}
	if (n == 0) {
		*why = "closed by the server";
		return -1;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	*why = strerror(errno);
	return -1;
}

/* Print one monitor event's data (borrowed) for people or as JSON. */
static void
print_event(const struct mon *m, json_t *d)
{
	const json_t *t = json_object_get(d, "time");
	char when[32], *s;
	struct tm tm;
	time_t sec;
	size_t n;
	int ms;

	if (m->ctl->json || !json_is_object(d)) {
		out_json(d);
		fflush(stdout);
		return;
	}
	if (json_is_number(t)) {
		sec = (time_t)json_number_value(t);
		ms = (int)((json_number_value(t) - (double)sec) * 1000);
		localtime_r(&sec, &tm);
		n = strftime(when, sizeof(when), "%H:%M:%S", &tm);
		snprintf(when + n, sizeof(when) - n, ".%03d",
		    ms < 0 ? 0 : ms > 999 ? 999 : ms);
	} else
		snprintf(when, sizeof(when), "-");
	printf("%s %" JSON_INTEGER_FORMAT " %s %s ", when,
	    json_integer_value(json_object_get(d, "client")),
	    json_string_value(json_object_get(d, "addr")) ?
	    json_string_value(json_object_get(d, "addr")) : "-",
	    json_string_value(json_object_get(d, "endpoint")) ?
	    json_string_value(json_object_get(d, "endpoint")) : "-");
	s = json_dumps(json_object_get(d, "id"), JSON_COMPACT |
	    JSON_ENCODE_ANY);
	printf("%s ", s != NULL ? s : "-");
	free(s);
	s = json_dumps(json_object_get(d, "data"), JSON_COMPACT |
	    JSON_ENCODE_ANY);
	if (s != NULL && (n = strlen(s)) > MONITOR_DATA_MAX) {
		/* Cut at a character boundary of the UTF-8 text. */
		n = MONITOR_DATA_MAX;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		printf("%.*s...", (int)n, s);
	} else
		fputs(s != NULL ? s : "null", stdout);
	free(s);
	if (json_is_true(json_object_get(d, "oneway")))
		fputs(" (oneway)", stdout);
	putchar('\n');
	fflush(stdout);
}

/*
 * A frame while subscribing: the replies to hello (id 1) and monitor
 * (id 2).  Returns -1 to go on, 2 when monitoring, or an exit status
 * after reporting the server's refusal.
 */
static int
subscribe_frame(struct mon *m, json_t *o)
{
	json_t *id = json_object_get(o, "id"), *e = json_object_get(o,
	    "error");
	const char *code, *msg;

	if (!json_is_integer(id))
		return -1;
	if (e != NULL) {
		code = json_string_value(json_object_get(e, "code"));
		msg = json_string_value(json_object_get(e, "message"));
		ctl_warnx("server error: %s: %s", code != NULL ? code : "?",
		    msg != NULL ? msg : "?");
		return CTL_EXIT_REMOTE;
	}
	return json_integer_value(id) == 2 ? 2 : -1;
}

/*
 * Handle one frame.  While subscribing as subscribe_frame(); then -1 to go
 * on, or CTL_EXIT_CONN after the "closing" event.
 */
static int
handle_frame(struct mon *m, json_t *o, bool monitoring)
{
	json_t *ev = json_object_get(o, "event"), *reason;

	if (json_is_string(ev) &&
	    strcmp(json_string_value(ev), "closing") == 0) {
		reason = json_object_get(json_object_get(o, "data"),
		    "reason");
		ctl_warnx("%s: connection lost: server closing: %s",
		    m->ctl->where, json_is_string(reason) ?
		    json_string_value(reason) : "?");
		return CTL_EXIT_CONN;
	}
	if (!monitoring)
		return ev == NULL ? subscribe_frame(m, o) : -1;
	if (json_is_string(ev) &&
	    strcmp(json_string_value(ev), "monitor") == 0)
		print_event(m, json_object_get(o, "data"));
	return -1;	/* other events and stray replies: ignored */
}

/*
 * Read and handle frames until a signal (CTL_EXIT_OK), the end of the
 * connection (CTL_EXIT_CONN), a refusal, or, while subscribing, the
 * monitor reply (returns 2) or the deadline.
 */
static int
mon_loop(struct mon *m, bool monitoring, uint64_t deadline)
{
	const char *why = NULL;
	json_t *o;
	int rc;

	for (;;) {
		while ((o = take_frame(m, &why)) != NULL) {
			rc = handle_frame(m, o, monitoring);
			json_decref(o);
			if (rc >= 0)
				return rc;
		}
		if (why != NULL)
			break;
		if ((rc = wait_fd(m->fd, POLLIN, deadline)) == 1)
			return CTL_EXIT_OK;
		if (rc == -1) {
			if (errno == ETIMEDOUT) {
				ctl_warnx("%s: no reply to 'monitor' within "
				    "%g s", m->ctl->where,
				    m->ctl->timeout_ms / 1000.0);
				return CTL_EXIT_CONN;
			}
			why = strerror(errno);
			break;
		}
		if (fill(m, &why) == -1)
			break;
	}
	ctl_warnx("%s: connection lost: %s", m->ctl->where, why);
	return CTL_EXIT_CONN;
}

/* Send hello (so that clients shows our name) and monitor. 0, 1 or -1. */
static int
subscribe(struct mon *m, uint64_t deadline)
{
	json_t *hello, *mon;
	int rc;

	hello = json_pack("{s:i, s:s, s:{s:s}}", "id", 1, "endpoint",
	    "hello", "data", "name", "witchctl");
	mon = json_pack("{s:i, s:s}", "id", 2, "endpoint", "monitor");
	if (hello == NULL || mon == NULL)
		rc = -1;
	else if ((rc = send_frame(m, hello, deadline)) == 0)
		rc = send_frame(m, mon, deadline);
	json_decref(hello);
	json_decref(mon);
	return rc;
}

static int
monitor(struct ctl *ctl)
{
	struct mon m = { ctl, -1, NULL, 0, 0 };
	uint64_t deadline = now_ms() + ctl->timeout_ms;
	const char *why = NULL;
	int rc;

	m.fd = ctl->unix_path != NULL ? connect_unix(ctl, deadline, &why) :
	    connect_tcp(ctl, deadline, &why);
	if (m.fd == -2)
		return CTL_EXIT_OK;	/* interrupted while connecting */
	if (m.fd == -1) {
		ctl_warnx("cannot connect to %s: %s", ctl->where,
		    why != NULL ? why : errno == ETIMEDOUT ?
		    "connection timed out" : strerror(errno));
		return CTL_EXIT_CONN;
	}
	if ((rc = subscribe(&m, deadline)) == 1) {
		rc = CTL_EXIT_OK;
		goto out;
	}
	if (rc == -1) {
		ctl_warnx("%s: connection lost: %s", ctl->where,
		    errno == ETIMEDOUT ? "timed out" : strerror(errno));
		rc = CTL_EXIT_CONN;
		goto out;
	}
	if ((rc = mon_loop(&m, false, deadline)) == 2)
		rc = mon_loop(&m, true, 0);
out:
	close(m.fd);
	free(m.buf);
	return rc;
}

static int
run_monitor(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char *argv[])
{
	struct sigaction old[2];
	int status;

	if ((status = ctl_plain_args(cmd, argc, argv, 0, 0)) >= 0)
		return status;
	if (catch_signals(old) == -1) {
		ctl_warnx("monitor: cannot catch SIGINT: %s", strerror(errno));
		return CTL_EXIT_CONN;
	}
	status = monitor(ctl);
	release_signals(old);
	return status;
}

const struct ctl_cmd ctl_cmd_clients = {
	"clients", "clients",
	"list the clients connected to the server",
	"",
	"Prints a table of the connected clients (this one included): id,\n"
	"address (or unix uid and pid), name, age, idle time, requests in\n"
	"flight, output bytes not yet written and frames received; with\n"
	"--json the result of the clients endpoint.  Served only on the\n"
	"control socket and to loopback clients (else exit 1, unauthorized).\n",
	run_clients
};

const struct ctl_cmd ctl_cmd_kill_client = {
	"kill-client", "kill-client ID",
	"disconnect the client with that id",
	"",
	"ID is a client id as 'witchctl clients' shows it.  The server sends\n"
	"that client its owed replies and a closing event, and closes it.\n"
	"Prints \"killed client ID\"; exit 1 if there is no such client (or\n"
	"the connection is not trusted), 2 if ID is not a positive integer.\n",
	run_kill_client
};

const struct ctl_cmd ctl_cmd_stats = {
	"stats", "stats [--prometheus]",
	"show request counters, errors and latency",
	"      --prometheus           print every counter and gauge in the\n"
	"                             Prometheus text format\n",
	"Prints the counters of the stats endpoint as \"key: value\" lines,\n"
	"the latency percentiles p50, p90, p99 and p99.9 in milliseconds, and\n"
	"tables of calls and errors per endpoint and of error replies by\n"
	"code; with --json the result of the stats endpoint.  With\n"
	"--prometheus, the counters and gauges of the info, status and stats\n"
	"endpoints as Prometheus metrics named witch_* (HELP and TYPE lines,\n"
	"seconds, _total counters), for node_exporter's textfile collector;\n"
	"nothing is printed unless all three answered.\n",
	run_stats
};

const struct ctl_cmd ctl_cmd_monitor = {
	"monitor", "monitor",
	"print every request the server receives",
	"",
	"Subscribes to the server's monitor events and prints one line per\n"
	"request any other client sends: TIME CLIENT ADDR ENDPOINT ID DATA\n"
	"(data as compact JSON, cut after 512 bytes); with --json the event's\n"
	"data, one object a line.  Runs until SIGINT or SIGTERM (exit 0);\n"
	"exit 3 if the connection drops, 1 if the server refuses (monitor is\n"
	"served only on the control socket and to loopback clients).\n",
	run_monitor
};
