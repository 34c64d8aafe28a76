/*
 * witchctl/cmd_peer.c: the peer commands peer-broadcast, peer-send and
 * peer-query (one request each), and events, which subscribes to the
 * server's peer events and prints them through the client library's
 * event callback (witch_client_new(3), "Events").
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <witch/witch.h>

#include "output.h"
#include "witchctl.h"

/* Parse a JSON argument of cmd into *v; a usage error otherwise. */
static int
json_arg(const struct ctl_cmd *cmd, const char *what, const char *arg,
    json_t **v)
{
	json_error_t jerr;

	if ((*v = json_loads(arg, JSON_DECODE_ANY, &jerr)) != NULL)
		return CTL_EXIT_OK;
	return ctl_usage_error(cmd, "%s: invalid JSON %s at column %d: %s",
	    cmd->name, what, jerr.column, jerr.text);
}

/* Send data (stolen) to endpoint, print the result; the exit status. */
static int
request_print(struct ctl *ctl, const char *endpoint, json_t *data,
    void (*human)(const json_t *))
{
	int status;

	status = ctl_show(ctl, endpoint, data, human);
	json_decref(data);
	return status;
}

static void
human_broadcast(const json_t *res)
{
	json_int_t n = json_integer_value(json_object_get(res, "queued"));

	if (n == 0)
		printf("no alive peer: nothing sent\n");
	else
		printf("queued for %" JSON_INTEGER_FORMAT " peer%s\n", n,
		    n == 1 ? "" : "s");
}

static int
run_broadcast(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char *argv[])
{
	json_t *msg;
	int status;

	if ((status = ctl_plain_args(cmd, argc, argv, 1, 1)) >= 0)
		return status;
	if ((status = json_arg(cmd, "message", argv[optind], &msg)) != 0)
		return status;
	return request_print(ctl, "peer_broadcast", json_pack("{s:o}",
	    "message", msg), human_broadcast);
}

static void
human_send(const json_t *res)
{
	printf("queued for %s\n", json_string_value(json_object_get(res,
	    "peer")) != NULL ? json_string_value(json_object_get(res,
	    "peer")) : "?");
}

static int
run_send(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char *argv[])
{
	json_t *msg;
	int status;

	if ((status = ctl_plain_args(cmd, argc, argv, 2, 2)) >= 0)
		return status;
	if (argv[optind][0] == '\0')
		return ctl_usage_error(cmd, "peer-send: empty peer name");
	if ((status = json_arg(cmd, "message", argv[optind + 1], &msg)) != 0)
		return status;
	return request_print(ctl, "peer_send", json_pack("{s:s, s:o}",
	    "peer", argv[optind], "message", msg), human_send);
}

/* One line per answer, then the peers that did not answer. */
static void
human_query(const json_t *res)
{
	const json_t *v, *e;
	size_t i;
	char *s;

	json_array_foreach(json_object_get(res, "answers"), i, v) {
		printf("%s (%.8s): ", json_string_value(json_object_get(v,
		    "name")), json_string_value(json_object_get(v,
		    "server_id")));
		if ((e = json_object_get(v, "error")) != NULL) {
			printf("error %s: %s\n", json_string_value(
			    json_object_get(e, "code")), json_string_value(
			    json_object_get(e, "message")));
			continue;
		}
		s = json_dumps(json_object_get(v, "result"), JSON_COMPACT |
		    JSON_ENCODE_ANY);
		printf("%s\n", s != NULL ? s : "?");
		free(s);
	}
	json_array_foreach(json_object_get(res, "missing"), i, v)
		printf("%s (%.8s): no answer in time\n", json_string_value(
		    json_object_get(v, "name")), json_string_value(
		    json_object_get(v, "server_id")));
	if (json_array_size(json_object_get(res, "answers")) == 0 &&
	    json_array_size(json_object_get(res, "missing")) == 0)
		printf("no alive peer: nobody asked\n");
}

static int
run_query(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char *argv[])
{
	json_t *data = NULL, *req;
	int status;

	if ((status = ctl_plain_args(cmd, argc, argv, 1, 2)) >= 0)
		return status;
	if (argv[optind][0] == '\0')
		return ctl_usage_error(cmd, "peer-query: empty endpoint name");
	if (optind + 1 < argc && (status = json_arg(cmd, "data",
	    argv[optind + 1], &data)) != 0)
		return status;
	/* The server waits for its peers; our request waits for it. */
	req = json_pack("{s:s, s:o*, s:I}", "endpoint", argv[optind], "data",
	    data, "timeout_ms", (json_int_t)(ctl->timeout_ms > 1000 ?
	    ctl->timeout_ms - 500 : ctl->timeout_ms / 2 + 1));
	return request_print(ctl, "peer_query", req, human_query);
}

/* ---- events ------------------------------------------------------------ */

struct evs {
	struct ctl	*ctl;
	long		 count;		/* printed */
	long		 max;		/* 0: no limit */
	bool		 subscribed;
	int		 status;
	witch_error_t	 err;
	char		 closing[64];
};

static void
print_peer_event(const struct evs *e, const char *event, json_t *d)
{
	char *s;

	if (e->ctl->json) {
		json_t *o = json_pack("{s:s, s:O}", "event", event, "data", d);

		out_json(o);
		json_decref(o);
	} else if (strcmp(event, "peer_status") == 0)
		printf("peer_status %s (%.8s) %s:%" JSON_INTEGER_FORMAT
		    " %s -> %s\n", json_string_value(json_object_get(d,
		    "name")), json_string_value(json_object_get(d,
		    "server_id")), json_string_value(json_object_get(d,
		    "address")), json_integer_value(json_object_get(d, "port")),
		    json_string_value(json_object_get(d, "old")),
		    json_string_value(json_object_get(d, "status")));
	else {
		s = json_dumps(json_object_get(d, "message"), JSON_COMPACT |
		    JSON_ENCODE_ANY);
		printf("peer_message from %s (%.8s): %s\n",
		    json_string_value(json_object_get(d, "name")),
		    json_string_value(json_object_get(d, "from")),
		    s != NULL ? s : "?");
		free(s);
	}
	fflush(stdout);
}

static void
on_event(witch_client_t *c, const char *event, json_t *data, void *ud)
{
	struct evs *e = ud;
	const char *reason;

	if (strcmp(event, "peer_message") == 0 ||
	    strcmp(event, "peer_status") == 0) {
		if (e->max == 0 || e->count < e->max) {
			print_peer_event(e, event, data);
			e->count++;
		}
	} else if (strcmp(event, "closing") == 0) {
		reason = json_string_value(json_object_get(data, "reason"));
		snprintf(e->closing, sizeof(e->closing), "%s",
		    reason != NULL ? reason : "?");
	}
}

static void
on_subscribed(witch_client_t *c, int status, json_t *result,
    const witch_error_t *err, void *ud)
{
	struct evs *e = ud;

	e->status = status;
	if (err != NULL)
		e->err = *err;
	e->subscribed = true;
	if (status == 0 && !json_is_true(json_object_get(result, "peering")))
		ctl_warnx("%s: peering is off on this server: no peer events "
		    "will come", e->ctl->where);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
events(struct ctl *ctl, long max, unsigned timeout_ms)
{
	struct evs e;
	witch_client_t *c = NULL;
	struct pollfd pfd[2];
	uint64_t end = timeout_ms ? now_ms() + timeout_ms : 0, now;
	int status, t, rc, sigfd;

	memset(&e, 0, sizeof(e));
	e.ctl = ctl;
	e.max = max;
	/* Caught from the start, so a signal during connect ends it too. */
	if ((sigfd = ctl_signals_catch(true)) == -1) {
		ctl_warnx("events: cannot catch SIGINT: %s", strerror(errno));
		return CTL_EXIT_CONN;
	}
	if ((status = ctl_connect_events(ctl, on_event, &e, &c)) !=
	    CTL_EXIT_OK)
		goto out;
	if ((rc = witch_client_call_async(c, "subscribe", NULL,
	    ctl->timeout_ms, on_subscribed, &e, NULL)) != 0) {
		memset(&e.err, 0, sizeof(e.err));
		status = ctl_request_failed(ctl, "subscribe", rc, &e.err);
		goto out;
	}
	pfd[0].fd = sigfd;
	pfd[1].fd = witch_client_fd(c);
	pfd[0].events = pfd[1].events = POLLIN;
	for (;;) {
		if (max > 0 && e.count >= max)
			break;
		now = now_ms();
		if (end != 0 && now >= end)
			break;
		t = witch_client_timeout(c);
		if (end != 0 && (t < 0 || (uint64_t)t > end - now))
			t = (int)(end - now);
		if (poll(pfd, 2, t) == -1 && errno != EINTR) {
			ctl_warnx("events: poll: %s", strerror(errno));
			status = CTL_EXIT_CONN;
			goto out;
		}
		if (ctl_signalled())
			break;		/* SIGINT or SIGTERM: a clean end */
		witch_client_process(c, 0);
		if (e.subscribed && e.status != 0) {
			status = ctl_request_failed(ctl, "subscribe", e.status,
			    &e.err);
			goto out;
		}
		if (witch_client_state(c) != WITCH_CLIENT_CONNECTED) {
			ctl_warnx("%s: connection lost: %s%s", ctl->where,
			    e.closing[0] != '\0' ? "server closing: " :
			    "closed by the server", e.closing);
			status = CTL_EXIT_CONN;
			goto out;
		}
	}
	status = CTL_EXIT_OK;
out:
	ctl_signals_release();
	witch_client_free(c);
	return status;
}

static int
run_events(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char *argv[])
{
	static const struct option lo[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *errstr;
	unsigned tmo = 0;
	long max = 0;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "+n:t:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'n':
			max = (long)strtonum(optarg, 1, 1000000000, &errstr);
			if (errstr != NULL)
				return ctl_usage_error(cmd, "events: --count "
				    "%s: %s (1 to 1000000000)", optarg, errstr);
			break;
		case 't':
			if (ctl_parse_secs(optarg, 0.001, 604800, &tmo) != 0)
				return ctl_usage_error(cmd, "events: --timeout "
				    "%s: expected seconds from 0.001 to 604800",
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
		return ctl_usage_error(cmd, "events: unexpected argument '%s'",
		    argv[optind]);
	return events(ctl, max, tmo);
}

const struct ctl_cmd ctl_cmd_peer_broadcast = {
	"peer-broadcast", "peer-broadcast JSON",
	"send a message to every alive peer of the server",
	"",
	"JSON is any JSON value (quote it for the shell).  The server queues\n"
	"it for each of its alive peers and prints how many (\"no alive\n"
	"peer: nothing sent\" is not an error: exit 0); with --json the\n"
	"result {queued, peers}.  Exit 1 if peering is off on the server.\n",
	run_broadcast
};

const struct ctl_cmd ctl_cmd_peer_send = {
	"peer-send", "peer-send PEER JSON",
	"send a message to one peer of the server",
	"",
	"PEER is a peer's name or server id (as 'witchctl peers' shows them).\n"
	"Exit 1 with no_peer for a peer the server does not know, peer_down\n"
	"for one that is not alive, incompatible for one with another source\n"
	"hash, overloaded when its queue is full.\n",
	run_send
};

const struct ctl_cmd ctl_cmd_peer_query = {
	"peer-query", "peer-query ENDPOINT [JSON]",
	"call an endpoint on every alive peer, print each answer",
	"",
	"The server calls ENDPOINT (with JSON as data) on each of its alive\n"
	"peers and waits for the answers until shortly before --timeout.\n"
	"Prints one line per peer: its result, its error, or \"no answer in\n"
	"time\"; with --json the result {answers, missing}.\n",
	run_query
};

const struct ctl_cmd ctl_cmd_events = {
	"events", "events [--count N] [--timeout S]",
	"print the server's peer events as they come",
	"  -n, --count N    stop after N events\n"
	"  -t, --timeout S  stop after S seconds\n",
	"Subscribes to the server's peer events and prints one line per\n"
	"event: peer_message (who sent what) and peer_status (a peer's\n"
	"status change); with --json one object a line, {\"event\": NAME,\n"
	"\"data\": {...}}.  Without --count or --timeout it runs until\n"
	"SIGINT or SIGTERM.  Exit 0 after N events, S seconds or a signal,\n"
	"3 if the connection drops, 1 if the server refuses the\n"
	"subscription.\n",
	run_events
};
