/*
 * witchctl/cmd_ops.c: the operations commands clients, kill-client, stats
 * and monitor (the server's operations built-ins, witch-protocol(7)).
 *
 * clients, kill-client and stats are one request each, through libwitch.
 * monitor connects with an event callback (witch_client_new(3), Events),
 * calls "monitor", then prints the "monitor" events the server streams,
 * driving the client from a poll() loop with a signal self-pipe, until
 * SIGINT or SIGTERM (exit 0) or until the connection drops (exit 3).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
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

/* ---- clients, kill-client, stats ------------------------------------- */

static int
run_clients(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char *argv[])
{
	int status;

	if ((status = ctl_plain_args(cmd, argc, argv, 0, 0)) >= 0)
		return status;
	return ctl_show(ctl, "clients", NULL, out_clients);
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
	bool prometheus = false;
	int ch;

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
	return ctl_show(ctl, "stats", NULL, out_stats);
}

/* ---- monitor: events through the client library ------------------------ */

struct mon {
	struct ctl	*ctl;
	witch_client_t	*client;
	bool		 subscribed;	/* the "monitor" request completed */
	int		 status;	/* ...with this status */
	witch_error_t	 err;
	char		 closing[64];	/* the server's reason, if it said */
};

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

/* Event callback: print monitor lines, remember why the server closes. */
static void
on_event(witch_client_t *c, const char *event, json_t *data, void *ud)
{
	struct mon *m = ud;
	const char *reason;

	if (strcmp(event, "monitor") == 0)
		print_event(m, data);
	else if (strcmp(event, "closing") == 0) {
		reason = json_string_value(json_object_get(data, "reason"));
		snprintf(m->closing, sizeof(m->closing), "%s",
		    reason != NULL ? reason : "?");
	}
}

/* Completion of the "monitor" request. */
static void
on_subscribed(witch_client_t *c, int status, json_t *result,
    const witch_error_t *err, void *ud)
{
	struct mon *m = ud;

	m->status = status;
	if (err != NULL)
		m->err = *err;
	m->subscribed = true;
}

/*
 * Drive the client from poll() with the self-pipe until a signal
 * (CTL_EXIT_OK), the link is lost (CTL_EXIT_CONN), or the server refuses
 * the subscription.
 */
static int
mon_loop(struct mon *m, int sigfd)
{
	struct pollfd pfd[2];
	int t;

	pfd[0].fd = sigfd;
	pfd[1].fd = witch_client_fd(m->client);
	pfd[0].events = pfd[1].events = POLLIN;
	for (;;) {
		t = witch_client_timeout(m->client);
		if (poll(pfd, 2, t) == -1 && errno != EINTR) {
			ctl_warnx("monitor: poll: %s", strerror(errno));
			return CTL_EXIT_CONN;
		}
		if (ctl_signalled())
			return CTL_EXIT_OK;
		witch_client_process(m->client, 0);
		if (m->subscribed && m->status != 0)
			return ctl_request_failed(m->ctl, "monitor",
			    m->status, &m->err);
		if (witch_client_state(m->client) != WITCH_CLIENT_CONNECTED) {
			ctl_warnx("%s: connection lost: %s%s", m->ctl->where,
			    m->closing[0] != '\0' ? "server closing: " :
			    "closed by the server", m->closing);
			return CTL_EXIT_CONN;
		}
	}
}

/* Connect with the event callback set, subscribe, print until the end. */
static int
monitor(struct ctl *ctl, int sigfd)
{
	struct mon m;
	int status, rc;

	memset(&m, 0, sizeof(m));
	m.ctl = ctl;
	status = ctl_connect_events(ctl, on_event, &m, &m.client);
	if (ctl_signalled())
		status = CTL_EXIT_OK;	/* interrupted while connecting */
	if (status != CTL_EXIT_OK || m.client == NULL)
		goto out;
	rc = witch_client_call_async(m.client, "monitor", NULL,
	    ctl->timeout_ms, on_subscribed, &m, NULL);
	if (rc != 0) {
		memset(&m.err, 0, sizeof(m.err));
		status = ctl_request_failed(ctl, "monitor", rc, &m.err);
		goto out;
	}
	status = mon_loop(&m, sigfd);
out:
	witch_client_free(m.client);
	return status;
}

static int
run_monitor(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char *argv[])
{
	int status, sigfd;

	if ((status = ctl_plain_args(cmd, argc, argv, 0, 0)) >= 0)
		return status;
	if ((sigfd = ctl_signals_catch(true)) == -1) {
		ctl_warnx("monitor: cannot catch SIGINT: %s", strerror(errno));
		return CTL_EXIT_CONN;
	}
	status = monitor(ctl, sigfd);
	ctl_signals_release();
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
