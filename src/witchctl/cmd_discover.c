/*
 * witchctl/cmd_discover.c: the discover command, finding witch servers on
 * the local networks by their UDP announcements (witch-protocol(7),
 * witch_listener_new(3)).
 *
 * discover starts a libwitch listener on the discovery port (every
 * address, or with --bind one), waits, and prints the registry: a table,
 * or with --json one JSON array.  With --verify the listener also checks
 * each server over TCP (hello + ping), and discover waits for those
 * checks to end, bounded.  With --watch it prints one JSON line per event
 * until SIGINT or SIGTERM.  It never sends a datagram.
 *
 * SIGINT and SIGTERM are blocked before the listener's threads start (so
 * they inherit the mask) and taken by the main thread with sigtimedwait().
 * Event lines are printed by the listener's thread, the only one calling
 * the callback.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <witch/witch.h>

#include "output.h"
#include "witchctl.h"

/* Listening time: more than one default interval (2 s + 25% jitter). */
#define DISCOVER_TIMEOUT_MS	3000
/* One verification: connect, then ping, each at most this long. */
#define DISCOVER_VERIFY_MS	2000
/* How often the pending verifications are looked at. */
#define DISCOVER_POLL_MS	50
#define DISCOVER_HASH_SHOWN	12	/* hex digits of the source hash */

struct discover {
	const struct ctl *ctl;		/* --key-file */
	unsigned	 timeout_ms;
	unsigned	 port;
	const char	*bind;		/* --bind; NULL: all addresses */
	bool		 verify;
	bool		 watch;
	atomic_bool	 out_failed;	/* --watch: stdout is gone */
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Wait up to ms for SIGINT or SIGTERM (blocked in sigs).  Returns the
 * signal, or 0 when the time is up.
 */
static int
wait_signal(const sigset_t *sigs, unsigned ms)
{
	struct timespec ts;
	uint64_t end = now_ms() + ms, now;
	int sig;

	for (;;) {
		now = now_ms();
		if (now >= end)
			return 0;
		ts.tv_sec = (time_t)((end - now) / 1000);
		ts.tv_nsec = (long)((end - now) % 1000) * 1000000;
		sig = sigtimedwait(sigs, NULL, &ts);
		if (sig > 0)
			return sig;
		if (errno != EINTR && errno != EAGAIN)
			return 0;
	}
}

/* A server as witchctl prints it (the keys of witchctl(1)); NULL: ENOMEM. */
static json_t *
server_json(const char *name, const char *addr, json_int_t port,
    json_t *protocols, const char *project_id, const char *source_hash,
    const char *verified, const char *server_id, const char *state)
{
	return json_pack("{s:s, s:s, s:I, s:O, s:s, s:s, s:s, s:s, s:s}",
	    "name", name, "address", addr, "port", port,
	    "protocols", protocols, "project_id", project_id,
	    "source_hash", source_hash, "verified", verified,
	    "server_id", server_id, "state", state);
}

/* --watch: one line per event, on the listener's thread. */
static void
on_event(witch_listener_t *l, enum witch_discovery_event ev,
    const witch_discovered_t *d, void *userdata)
{
	struct discover *dc = userdata;
	json_t *protos, *srv = NULL, *line = NULL;
	const char *state = "up";
	char *s = NULL;
	size_t i;

	(void)l;
	if (atomic_load(&dc->out_failed))
		return;
	if (ev == WITCH_DISCOVERY_LOST)
		state = d->leaving ? "leaving" : "expired";
	if ((protos = json_array()) == NULL)
		goto fail;
	for (i = 0; i < d->nprotocols; i++)
		if (json_array_append_new(protos,
		    json_string(d->protocols[i])) != 0)
			goto fail;
	srv = server_json(d->name, d->addr, (json_int_t)d->port, protos,
	    d->project_id, d->source_hash,
	    witch_discovery_verify_name(d->verify), d->server_id, state);
	if (srv == NULL || (line = json_pack("{s:s, s:O}", "event",
	    witch_discovery_event_name(ev), "server", srv)) == NULL ||
	    (s = json_dumps(line, JSON_COMPACT)) == NULL)
		goto fail;
	if (printf("%s\n", s) < 0 || fflush(stdout) == EOF)
		atomic_store(&dc->out_failed, true);
	goto done;
fail:
	ctl_warnx("discover: out of memory; an event was not printed");
done:
	free(s);
	json_decref(line);
	json_decref(srv);
	json_decref(protos);
}

static const char *
str_of(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

static int
cmp_servers(const void *pa, const void *pb)
{
	const json_t *a = *(const json_t *const *)pa;
	const json_t *b = *(const json_t *const *)pb;
	json_int_t x, y;
	int c;

	if ((c = strcmp(str_of(a, "name"), str_of(b, "name"))) != 0 ||
	    (c = strcmp(str_of(a, "address"), str_of(b, "address"))) != 0)
		return c;
	x = json_integer_value(json_object_get(a, "port"));
	y = json_integer_value(json_object_get(b, "port"));
	if (x != y)
		return x < y ? -1 : 1;
	return strcmp(str_of(a, "server_id"), str_of(b, "server_id"));
}

/*
 * The listener's snapshot as witchctl prints it, sorted by name, address
 * and port.  Returns a new array, or NULL (out of memory).
 */
static json_t *
servers(witch_listener_t *l)
{
	json_t *snap = NULL, *out = NULL, *e, *o, **v = NULL;
	size_t i, n;

	if (witch_listener_snapshot(l, &snap) != 0)
		return NULL;
	n = json_array_size(snap);
	if ((v = calloc(n + 1, sizeof(*v))) == NULL)
		goto done;
	json_array_foreach(snap, i, e) {
		o = server_json(str_of(e, "name"), str_of(e, "addr"),
		    json_integer_value(json_object_get(e, "port")),
		    json_object_get(e, "protocols"), str_of(e, "project_id"),
		    str_of(e, "source_hash"), str_of(e, "verified"),
		    str_of(e, "server_id"), str_of(e, "state"));
		if (o == NULL)
			goto done;
		v[i] = o;
	}
	qsort(v, n, sizeof(*v), cmp_servers);
	if ((out = json_array()) == NULL)
		goto done;
	for (i = 0; i < n; i++)
		if (json_array_append(out, v[i]) != 0) {
			json_decref(out);
			out = NULL;
			break;
		}
done:
	for (i = 0; v != NULL && i < n; i++)
		json_decref(v[i]);
	free(v);
	json_decref(snap);
	return out;
}

/* True when some entry of l still waits for its verification. */
static bool
verify_pending(witch_listener_t *l)
{
	json_t *snap, *e;
	bool pending = false;
	size_t i;

	if (witch_listener_snapshot(l, &snap) != 0)
		return false;
	json_array_foreach(snap, i, e)
		if (strcmp(str_of(e, "verified"), "pending") == 0)
			pending = true;
	json_decref(snap);
	return pending;
}

/* Columns of the table. */
enum { D_NAME, D_ADDR, D_PORT, D_PROTOS, D_PROJECT, D_HASH, D_VERIFIED,
    NDCOLS };
static const char *const dcol_title[NDCOLS] = { "NAME", "ADDRESS", "PORT",
    "PROTOCOLS", "PROJECT", "SOURCE-HASH", "VERIFIED" };

static void
dcell(const json_t *o, int col, char *buf, size_t len)
{
	const json_t *p;
	const char *s;
	size_t i, n;

	buf[0] = '\0';
	switch (col) {
	case D_NAME:
		snprintf(buf, len, "%s", str_of(o, "name"));
		break;
	case D_ADDR:
		snprintf(buf, len, "%s", str_of(o, "address"));
		break;
	case D_PORT:
		snprintf(buf, len, "%lld", (long long)json_integer_value(
		    json_object_get(o, "port")));
		break;
	case D_PROTOS:
		json_array_foreach(json_object_get(o, "protocols"), i, p) {
			n = strlen(buf);
			snprintf(buf + n, len - n, "%s%s", i > 0 ? "," : "",
			    json_string_value(p) != NULL ?
			    json_string_value(p) : "?");
		}
		break;
	case D_PROJECT:
		s = str_of(o, "project_id");
		snprintf(buf, len, "%s", s[0] != '\0' ? s : "-");
		break;
	case D_HASH:
		s = str_of(o, "source_hash");
		snprintf(buf, len, "%.*s", DISCOVER_HASH_SHOWN,
		    s[0] != '\0' ? s : "-");
		break;
	case D_VERIFIED:
		s = str_of(o, "verified");
		snprintf(buf, len, "%s", strcmp(s, "off") != 0 ? s : "-");
		break;
	}
}

/* The human table, or "no servers found". */
static void
print_table(const json_t *list)
{
	const json_t *o;
	char buf[256];
	int width[NDCOLS], col;
	size_t i;

	if (json_array_size(list) == 0) {
		printf("no servers found\n");
		return;
	}
	for (col = 0; col < NDCOLS; col++)
		width[col] = (int)strlen(dcol_title[col]);
	json_array_foreach(list, i, o)
		for (col = 0; col < NDCOLS; col++) {
			dcell(o, col, buf, sizeof(buf));
			if ((int)strlen(buf) > width[col])
				width[col] = (int)strlen(buf);
		}
	for (col = 0; col < NDCOLS; col++)
		printf("%-*s%s", col + 1 < NDCOLS ? width[col] : 0,
		    dcol_title[col], col + 1 < NDCOLS ? "  " : "\n");
	json_array_foreach(list, i, o)
		for (col = 0; col < NDCOLS; col++) {
			dcell(o, col, buf, sizeof(buf));
			printf("%-*s%s", col + 1 < NDCOLS ? width[col] : 0,
			    buf, col + 1 < NDCOLS ? "  " : "\n");
		}
}

/* Create and start the listener.  CTL_EXIT_OK or a reported failure. */
static int
start_listener(struct discover *dc, witch_listener_t **ret)
{
	witch_listener_config_t *cfg = NULL;
	witch_listener_t *l = NULL;
	witch_error_t err;
	int rc;

	*ret = NULL;
	memset(&err, 0, sizeof(err));
	if ((rc = witch_listener_config_new(&cfg)) != 0 ||
	    (rc = witch_listener_config_set_port(cfg, dc->port)) != 0 ||
	    (dc->bind != NULL &&
	    (rc = witch_listener_config_set_bind(cfg, dc->bind)) != 0) ||
	    (rc = witch_listener_config_set_verify(cfg, dc->verify)) != 0 ||
	    (rc = witch_listener_config_set_verify_timeout(cfg,
	    DISCOVER_VERIFY_MS)) != 0 ||
	    (dc->watch && (rc = witch_listener_config_set_callback(cfg,
	    on_event, dc)) != 0) ||
	    (dc->ctl->key_len > 0 && (rc = witch_listener_config_set_key(cfg,
	    dc->ctl->key, dc->ctl->key_len)) != 0) ||
	    (rc = witch_listener_new(&l, cfg)) != 0)
		goto fail;
	witch_listener_config_free(cfg);
	cfg = NULL;
	if ((rc = witch_listener_start(l, &err)) != 0)
		goto fail;
	*ret = l;
	return CTL_EXIT_OK;
fail:
	ctl_warnx("discover: cannot listen on UDP port %u: %s", dc->port,
	    err.text[0] != '\0' ? err.text : witch_strerror(rc));
	witch_listener_free(l);
	witch_listener_config_free(cfg);
	return CTL_EXIT_CONN;
}

/* With a key: say on stderr what was dropped, and why (if anything). */
static void
report_dropped(const struct ctl *ctl, const witch_listener_t *l)
{
	uint64_t u, b, r, s;

	if (ctl->key_len == 0)
		return;
	witch_listener_auth_counters(l, &u, &b, &r, &s);
	if (u + b + r + s > 0)
		ctl_warnx("discover: dropped %llu unsigned, %llu badly "
		    "signed, %llu replayed and %llu stale announcements",
		    (unsigned long long)u, (unsigned long long)b,
		    (unsigned long long)r, (unsigned long long)s);
}

/* One-shot: wait, let verifications end (bounded), print the registry. */
static int
discover_once(struct ctl *ctl, struct discover *dc, witch_listener_t *l,
    const sigset_t *sigs)
{
	uint64_t end;
	json_t *list;

	if (wait_signal(sigs, dc->timeout_ms) == 0 && dc->verify) {
		/* Connect and ping, each with the verify timeout. */
		end = now_ms() + 2 * DISCOVER_VERIFY_MS + 500;
		while (verify_pending(l) && now_ms() < end)
			if (wait_signal(sigs, DISCOVER_POLL_MS) != 0)
				break;
	}
	if ((list = servers(l)) == NULL) {
		ctl_warnx("discover: out of memory");
		return CTL_EXIT_CONN;
	}
	if (ctl->json)
		out_json(list);
	else
		print_table(list);
	json_decref(list);
	report_dropped(ctl, l);
	return CTL_EXIT_OK;
}

/* --watch: events are printed by on_event() until a signal. */
static int
discover_watch(struct discover *dc, const sigset_t *sigs)
{
	while (!atomic_load(&dc->out_failed))
		if (wait_signal(sigs, 250) != 0)
			return CTL_EXIT_OK;
	return CTL_EXIT_OK;	/* main() reports the stdout error */
}

static int
run_discover(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char *argv[])
{
	static const struct option longopts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "verify", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
		{ "watch", no_argument, NULL, 'w' },
		{ "discovery-port", required_argument, NULL, 'd' },
		{ "bind", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct discover dc = {
		.ctl = ctl,
		.timeout_ms = DISCOVER_TIMEOUT_MS,
		.port = WITCH_DISCOVERY_DEFAULT_PORT,
	};
	witch_listener_t *l = NULL;
	sigset_t sigs, old;
	unsigned char a[sizeof(struct in6_addr)];
	const char *errstr;
	bool own_timeout = false;
	int ch, status;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:t:vjwd:b:h", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 't':
			if (ctl_parse_secs(optarg, 0.1, 86400,
			    &dc.timeout_ms) != 0)
				return ctl_usage_error(cmd, "discover: "
				    "--timeout %s: expected seconds from 0.1 "
				    "to 86400", optarg);
			own_timeout = true;
			break;
		case 'v':
			dc.verify = true;
			break;
		case 'j':
			ctl->json = true;
			break;
		case 'w':
			dc.watch = true;
			break;
		case 'd':
			dc.port = (unsigned)strtonum(optarg, 1, 65535,
			    &errstr);
			if (errstr != NULL)
				return ctl_usage_error(cmd, "discover: "
				    "--discovery-port %s: value is %s (allowed "
				    "1 to 65535)", optarg, errstr);
			break;
		case 'b':
			if (inet_pton(AF_INET, optarg, a) != 1 &&
			    inet_pton(AF_INET6, optarg, a) != 1)
				return ctl_usage_error(cmd, "discover: "
				    "--bind %s: expected a numeric IPv4 or "
				    "IPv6 address", optarg);
			dc.bind = optarg;
			break;
		case 'h':
			ctl_cmd_help(cmd);
			return CTL_EXIT_OK;
		default:
			return ctl_bad_option(cmd, ch, argv);
		}
	}
	if (optind < argc)
		return ctl_usage_error(cmd, "discover: unexpected argument "
		    "'%s' (usage: witchctl %s)", argv[optind], cmd->synopsis);
	/* "witchctl -t 0.5 discover": the global timeout is the listening
	 * time, unless discover has its own -t. */
	if (!own_timeout && ctl->timeout_set && !dc.watch) {
		if (ctl->timeout_ms < 100)
			return ctl_usage_error(cmd, "discover: --timeout %g: "
			    "expected seconds from 0.1 to 86400",
			    ctl->timeout_ms / 1000.0);
		dc.timeout_ms = ctl->timeout_ms;
	}

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	atomic_init(&dc.out_failed, false);
	if ((status = start_listener(&dc, &l)) == CTL_EXIT_OK) {
		if (dc.watch)
			status = discover_watch(&dc, &sigs);
		else
			status = discover_once(ctl, &dc, l, &sigs);
	}
	witch_listener_free(l);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return status;
}

const struct ctl_cmd ctl_cmd_discover = {
	"discover", "discover [-jvw] [-b ADDR] [-d PORT] [-t S]",
	"find witch servers on the local networks",
	"  -t, --timeout S            listen this long (default 3; fractions\n"
	"                             allowed)\n"
	"  -v, --verify               check each server with hello + ping\n"
	"                             over TCP, and wait for the checks\n"
	"  -j, --json                 print a JSON array (as the global\n"
	"                             --json)\n"
	"  -w, --watch                print one JSON line per event until\n"
	"                             interrupted\n"
	"  -d, --discovery-port N     UDP port to listen on (default 8889)\n"
	"  -b, --bind ADDR            listen on this numeric address only\n"
	"                             (default all); a listener bound to a\n"
	"                             unicast address gets no broadcasts\n",
	"Listens for the UDP announcements of witch servers (it sends\n"
	"nothing) and prints what it found: NAME ADDRESS PORT PROTOCOLS\n"
	"PROJECT SOURCE-HASH VERIFIED, or \"no servers found\"; with\n"
	"--json an array of objects with the keys name, address, port,\n"
	"protocols, project_id, source_hash, verified, server_id and\n"
	"state.  With --watch it prints one line per event,\n"
	"{\"event\":\"found\"|\"changed\"|\"verified\"|\"lost\",\n"
	"\"server\":{...}}, until SIGINT or SIGTERM.  Exit status 0 (also\n"
	"when nothing was found), 2 usage, 3 the port could not be bound.\n"
	"With the global --key-file, only announcements signed with that\n"
	"key are listed, verification authenticates, and a count of the\n"
	"dropped announcements goes to standard error.\n",
	run_discover
};
