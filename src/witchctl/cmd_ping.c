/*
 * witchctl/cmd_ping.c: the ping command, after ping(8).
 *
 * A probe is a request to the "ping" endpoint, sent every interval
 * whether or not the previous ones were answered, each with the request
 * timeout.  The client reconnects by itself when the link drops, so
 * pinging goes on through a server restart: probes in flight when the link
 * is lost fail ("connection lost"), probes sent while it is down wait for
 * the new link up to their timeout.
 *
 * The client is driven from our own poll() loop (witch_client_fd() and
 * witch_client_process()), together with a self-pipe written by the
 * SIGINT handler, so that Ctrl-C ends pinging at once, even while a probe
 * is waiting, and the statistics are printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <witch/witch.h>

#include "witchctl.h"

#define MAX_COUNT	1000000000LL

struct probe;

struct ping {
	struct ctl		*ctl;
	witch_client_t		*client;
	long long		 sent;
	long long		 received;
	double			 min_ms, max_ms, sum_ms;
	struct probe		*inflight;	/* list of probes in flight */
	bool			 stopping;	/* quiet: statistics are out */
};

struct probe {
	struct ping		*ping;
	long long		 seq;
	uint64_t		 sent_ns;
	struct probe		*prev, *next;
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Print one line of JSON, reals to a microsecond. */
static void
json_line(json_t *o)
{
	if (o != NULL) {
		json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9));
		json_decref(o);
	}
	putchar('\n');
	fflush(stdout);
}

static double
round_us(double ms)
{
	return (double)(long long)(ms * 1000 + 0.5) / 1000;
}

/* Why a probe failed, in a few words. */
static void
fail_reason(const struct ping *p, int rc, const witch_error_t *err,
    char *buf, size_t size)
{
	switch (rc) {
	case WITCH_ECONNECTION:
		snprintf(buf, size, "connection lost");
		break;
	case WITCH_ETIMEOUT:
		snprintf(buf, size, "timeout after %g s",
		    p->ctl->timeout_ms / 1000.0);
		break;
	case WITCH_EREMOTE:
		snprintf(buf, size, "server error: %s: %s",
		    witch_err_name(err->remote), err->text);
		break;
	default:
		snprintf(buf, size, "%s", err != NULL && err->text[0] != '\0' ?
		    err->text : witch_strerror(rc));
		break;
	}
}

/* A probe's outcome: count it and print its line. */
static void
probe_done(struct ping *p, long long seq, double rtt_ms, int rc,
    const witch_error_t *err)
{
	char why[WITCH_ERROR_TEXT_MAX + 64];

	if (p->stopping)
		return;
	if (rc == 0) {
		if (p->received == 0 || rtt_ms < p->min_ms)
			p->min_ms = rtt_ms;
		if (p->received == 0 || rtt_ms > p->max_ms)
			p->max_ms = rtt_ms;
		p->sum_ms += rtt_ms;
		p->received++;
		if (p->ctl->json)
			json_line(json_pack("{s:I, s:b, s:f}", "seq",
			    (json_int_t)seq, "ok", 1, "rtt_ms",
			    round_us(rtt_ms)));
		else
			printf("reply from %s: seq=%lld time=%.3f ms\n",
			    p->ctl->where, seq, rtt_ms);
	} else {
		fail_reason(p, rc, err, why, sizeof(why));
		if (p->ctl->json)
			json_line(json_pack("{s:I, s:b, s:s, s:s}", "seq",
			    (json_int_t)seq, "ok", 0, "error",
			    witch_err_name(rc == WITCH_EREMOTE ? err->remote :
			    rc), "message", why));
		else
			printf("no reply: seq=%lld: %s\n", seq, why);
	}
	fflush(stdout);
}

static void
unlink_probe(struct probe *pr)
{
	if (pr->prev != NULL)
		pr->prev->next = pr->next;
	else
		pr->ping->inflight = pr->next;
	if (pr->next != NULL)
		pr->next->prev = pr->prev;
}

/* Completion of a probe (on this thread, inside witch_client_process). */
static void
on_reply(witch_client_t *c, int status, json_t *result,
    const witch_error_t *err, void *userdata)
{
	struct probe *pr = userdata;

	probe_done(pr->ping, pr->seq, (now_ns() - pr->sent_ns) / 1e6, status,
	    err);
	unlink_probe(pr);
	free(pr);
}

/* Send probe number p->sent + 1. */
static void
send_probe(struct ping *p)
{
	struct probe *pr;
	witch_error_t err;
	int rc;

	p->sent++;
	memset(&err, 0, sizeof(err));
	if ((pr = calloc(1, sizeof(*pr))) == NULL) {
		probe_done(p, p->sent, 0, WITCH_ENOMEM, &err);
		return;
	}
	pr->ping = p;
	pr->seq = p->sent;
	pr->sent_ns = now_ns();
	pr->next = p->inflight;
	if (pr->next != NULL)
		pr->next->prev = pr;
	p->inflight = pr;
	rc = witch_client_call_async(p->client, "ping", NULL,
	    p->ctl->timeout_ms, on_reply, pr, NULL);
	if (rc != 0) {
		unlink_probe(pr);
		free(pr);
		probe_done(p, p->sent, 0, rc, &err);
	}
}

static void
statistics(struct ping *p)
{
	long long lost = p->sent - p->received;
	double avg = p->received > 0 ? p->sum_ms / p->received : 0;

	p->stopping = true;
	if (p->ctl->json) {
		if (p->received > 0)
			json_line(json_pack("{s:I, s:I, s:I, s:f, s:f, s:f}",
			    "sent", (json_int_t)p->sent,
			    "received", (json_int_t)p->received,
			    "lost", (json_int_t)lost,
			    "min_ms", round_us(p->min_ms),
			    "avg_ms", round_us(avg),
			    "max_ms", round_us(p->max_ms)));
		else
			json_line(json_pack("{s:I, s:I, s:I, s:n, s:n, s:n}",
			    "sent", (json_int_t)p->sent,
			    "received", (json_int_t)p->received,
			    "lost", (json_int_t)lost,
			    "min_ms", "avg_ms", "max_ms"));
		return;
	}
	printf("\n--- %s witch ping statistics ---\n", p->ctl->where);
	printf("%lld probe%s sent, %lld repl%s, %lld%% lost", p->sent,
	    p->sent == 1 ? "" : "s", p->received, p->received == 1 ? "y" :
	    "ies", p->sent > 0 ? lost * 100 / p->sent : 0);
	if (p->received > 0)
		printf(", rtt min/avg/max = %.3f/%.3f/%.3f ms", p->min_ms, avg,
		    p->max_ms);
	printf("\n");
}

/*
 * Send count probes (0: until SIGINT on sigfd) every interval_ms; after the last,
 * wait for the replies still due (each ends by its timeout, and we give
 * up a second after that anyway).
 */
static void
ping_loop(struct ping *p, long long count, unsigned interval_ms, int sigfd)
{
	struct pollfd pfd[2];
	uint64_t now, next = now_ns(), linger = 0;
	uint64_t step = (uint64_t)interval_ms * 1000000u;
	int64_t wait_ms;
	int ct;

	pfd[0].fd = sigfd;
	pfd[1].fd = witch_client_fd(p->client);
	pfd[0].events = pfd[1].events = POLLIN;
	for (;;) {
		now = now_ns();
		if (count == 0 || p->sent < count) {
			if (now >= next) {
				send_probe(p);
				next += step;
				if (next <= now)	/* late: no burst */
					next = now + step;
				if (p->sent == count)
					linger = now + (uint64_t)
					    (p->ctl->timeout_ms + 1000) *
					    1000000u;
				continue;
			}
			wait_ms = (int64_t)((next - now + 999999) / 1000000);
		} else {
			if (p->inflight == NULL || now >= linger)
				break;
			wait_ms = (int64_t)((linger - now + 999999) / 1000000);
		}
		ct = witch_client_timeout(p->client);
		if (ct >= 0 && ct < wait_ms)
			wait_ms = ct;
		if (poll(pfd, pfd[1].fd >= 0 ? 2 : 1, (int)wait_ms) == -1 &&
		    errno != EINTR)
			break;
		if (ctl_signalled())
			break;		/* SIGINT */
		witch_client_process(p->client, 0);
	}
}

static int
run_ping(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "interval", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct ping p;
	struct probe *pr;
	json_t *info;
	const char *errstr;
	long long count = 0;
	unsigned interval_ms = 1000;
	int ch, status, sigfd;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:c:i:jh", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'j':
			ctl->json = true;
			break;
		case 'c':
			count = strtonum(optarg, 1, MAX_COUNT, &errstr);
			if (errstr != NULL)
				return ctl_usage_error(cmd, "ping: -c %s: "
				    "count is %s (allowed 1 to %lld)", optarg,
				    errstr, MAX_COUNT);
			break;
		case 'i':
			if (ctl_parse_secs(optarg, 0.01, 86400,
			    &interval_ms) != 0)
				return ctl_usage_error(cmd, "ping: -i %s: "
				    "expected seconds from 0.01 to 86400",
				    optarg);
			break;
		case 'h':
			ctl_cmd_help(cmd);
			return CTL_EXIT_OK;
		default:
			return ctl_bad_option(cmd, ch, argv);
		}
	}
	if (optind != argc)
		return ctl_usage_error(cmd, "ping: unexpected argument '%s'",
		    argv[optind]);

	memset(&p, 0, sizeof(p));
	p.ctl = ctl;
	if ((status = ctl_connect(ctl, interval_ms, &p.client)) !=
	    CTL_EXIT_OK)
		return status;
	if ((sigfd = ctl_signals_catch(false)) == -1) {
		ctl_warnx("ping: cannot catch SIGINT: %s", strerror(errno));
		witch_client_free(p.client);
		return CTL_EXIT_CONN;
	}
	info = witch_client_server_info(p.client);
	if (!ctl->json)
		printf("PING %s (%s, server id %s)\n", ctl->where,
		    json_string_value(json_object_get(info, "name")) ?
		    json_string_value(json_object_get(info, "name")) : "?",
		    json_string_value(json_object_get(info, "server_id")) ?
		    json_string_value(json_object_get(info, "server_id")) :
		    "?");
	json_decref(info);
	fflush(stdout);
	ping_loop(&p, count, interval_ms, sigfd);
	statistics(&p);
	/* Probes still in flight count as lost; their callbacks are quiet. */
	witch_client_free(p.client);
	while ((pr = p.inflight) != NULL) {
		unlink_probe(pr);
		free(pr);
	}
	ctl_signals_release();
	return p.received > 0 ? CTL_EXIT_OK : CTL_EXIT_REMOTE;
}

const struct ctl_cmd ctl_cmd_ping = {
	"ping", "ping [-c N] [-i S]",
	"probe the server like ping(8)",
	"  -c, --count N              stop after N probes (default: until\n"
	"                             interrupted)\n"
	"  -i, --interval S           seconds between probes (default 1, at\n"
	"                             least 0.01; fractions allowed)\n",
	"Prints one line per probe with its round-trip time until N probes or\n"
	"SIGINT, then statistics; with --json one object per probe and a\n"
	"summary object.  Pinging goes on through server restarts; a probe\n"
	"that fails counts as lost.  Exit status 0 if any reply came, 1 if\n"
	"none, 3 if the first connection failed.\n",
	run_ping
};
