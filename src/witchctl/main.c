/*
 * witchctl: the command-line client of witch servers.  It links only the
 * public API of libwitch.
 *
 * main.c parses the global options, dispatches to the command, and holds
 * the helpers that turn libwitch errors into one line on stderr and an
 * exit status (0 success, 1 server error, 2 usage, 3 connection).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <witch/witch.h>

#include "../common/secs.h"
#include "output.h"
#include "witchctl.h"

static const struct ctl_cmd *const commands[] = {
	&ctl_cmd_ping, &ctl_cmd_echo, &ctl_cmd_call, &ctl_cmd_info,
	&ctl_cmd_status, &ctl_cmd_peers, &ctl_cmd_peer_broadcast,
	&ctl_cmd_peer_send, &ctl_cmd_peer_query, &ctl_cmd_events,
	&ctl_cmd_clients, &ctl_cmd_kill_client, &ctl_cmd_stats,
	&ctl_cmd_monitor, &ctl_cmd_discover,
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/*
 * The global options of this run, for ctl_plain_args(): a command's own
 * -j sets the same flag as the global one.
 */
static struct ctl *current;

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f,
"usage: witchctl [options] command [arguments]\n"
"Talk to a witch server such as witchd(8) (see witchctl(1)).\n"
"\n"
"  -H, --host HOST            server host name or address (default\n"
"                             127.0.0.1)\n"
"  -p, --port N               server TCP port (default 8888)\n"
"  -U, --unix PATH            connect to a unix socket instead of TCP\n"
"  -t, --timeout S            connect and request timeout in seconds\n"
"                             (default 5; fractions allowed)\n"
"  -j, --json                 print results as JSON, one object a line\n"
"  -h, --help                 show this help and exit\n"
"  -V, --version              show the version and exit\n"
"\n"
"commands:\n");
	for (i = 0; i < NCOMMANDS; i++) {
		if (strlen(commands[i]->synopsis) > 26)	/* own line */
			fprintf(f, "  %s\n  %-26s %s\n", commands[i]->synopsis,
			    "", commands[i]->summary);
		else
			fprintf(f, "  %-26s %s\n", commands[i]->synopsis,
			    commands[i]->summary);
	}
	fprintf(f,
"\n"
"'witchctl COMMAND --help' describes a command.\n"
"exit status: 0 success, 1 the server answered with an error (ping: no\n"
"reply at all), 2 usage error, 3 connection failure or timeout.\n");
}

void
ctl_warnx(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("witchctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
ctl_cmd_help(const struct ctl_cmd *cmd)
{
	printf("usage: witchctl [options] %s\n", cmd->synopsis);
	printf("%c%s.\n\n%s%s"
	    "  -h, --help                 show this help and exit\n\n%s\n"
	    "Global options come before the command (see 'witchctl --help')."
	    "\n", toupper((unsigned char)cmd->summary[0]), cmd->summary + 1,
	    cmd->options, strstr(cmd->options, "--json") != NULL ? "" :
	    "  -j, --json                 print JSON (as the global --json)\n",
	    cmd->help);
}

int
ctl_usage_error(const struct ctl_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("witchctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CTL_EXIT_USAGE;
}

int
ctl_bad_option(const struct ctl_cmd *cmd, int ch, char *argv[])
{
	const char *arg = argv[optind - 1];
	char help[64];

	snprintf(help, sizeof(help), "see 'witchctl%s%s --help'",
	    cmd != NULL ? " " : "", cmd != NULL ? cmd->name : "");
	if (ch == ':')
		ctl_warnx("%s%soption '%s' needs a value (%s)",
		    cmd != NULL ? cmd->name : "", cmd != NULL ? ": " : "",
		    arg, help);
	else if (optopt != 0)
		ctl_warnx("%s%sunknown option '-%c' (%s)",
		    cmd != NULL ? cmd->name : "", cmd != NULL ? ": " : "",
		    optopt, help);
	else
		ctl_warnx("%s%sunknown option '%s' (%s)",
		    cmd != NULL ? cmd->name : "", cmd != NULL ? ": " : "",
		    arg, help);
	return CTL_EXIT_USAGE;
}

int
ctl_plain_args(const struct ctl_cmd *cmd, int argc, char *argv[], int min,
    int max)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch, n;

	optind = 0;	/* glibc: start over on the command's argv */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:jh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			current->json = true;
			break;
		case 'h':
			ctl_cmd_help(cmd);
			return CTL_EXIT_OK;
		default:
			return ctl_bad_option(cmd, ch, argv);
		}
	}
	n = argc - optind;
	if (n < min)
		return ctl_usage_error(cmd, "%s: missing argument (usage: "
		    "witchctl %s)", cmd->name, cmd->synopsis);
	if (n > max)
		return ctl_usage_error(cmd, "%s: unexpected argument '%s' "
		    "(usage: witchctl %s)", cmd->name, argv[optind + max],
		    cmd->synopsis);
	return -1;
}

int
ctl_parse_secs(const char *s, double min, double max, unsigned *ms)
{
	double v;

	if (secs_parse(s, &v) != 0 || v < min || v > max)
		return -1;
	*ms = (unsigned)(v * 1000 + 0.5);
	if (*ms == 0)
		*ms = 1;
	return 0;
}

/*
 * The reason of a failed connect.  libwitch says "connect to HOST port N:
 * reason"; we name the server ourselves, so only the reason is kept.
 */
static const char *
connect_reason(int rc, const witch_error_t *err)
{
	const char *p;

	if (err->text[0] == '\0')
		return witch_strerror(rc);
	if (strncmp(err->text, "connect to ", 11) == 0 &&
	    (p = strstr(err->text, ": ")) != NULL)
		return p + 2;
	return err->text;
}

/* ctl_connect() with an event callback (NULL: none). */
static int
connect_client(struct ctl *ctl, unsigned reconnect_max_ms,
    witch_client_event_fn evfn, void *evud, witch_client_t **ret)
{
	witch_client_config_t *cfg = NULL;
	witch_client_t *c = NULL;
	witch_error_t err;
	int rc;

	*ret = NULL;
	memset(&err, 0, sizeof(err));
	if ((rc = witch_client_config_new(&cfg)) != 0)
		goto fail;
	if (ctl->unix_path != NULL)
		rc = witch_client_config_set_unix_path(cfg, ctl->unix_path);
	else if ((rc = witch_client_config_set_host(cfg, ctl->host)) == 0)
		rc = witch_client_config_set_port(cfg, ctl->port);
	if (rc != 0 ||
	    (rc = witch_client_config_set_name(cfg, "witchctl")) != 0 ||
	    (rc = witch_client_config_set_connect_timeout(cfg,
	    ctl->timeout_ms)) != 0 ||
	    (rc = witch_client_config_set_request_timeout(cfg,
	    ctl->timeout_ms)) != 0 ||
	    (rc = witch_client_config_set_auto_reconnect(cfg,
	    reconnect_max_ms > 0)) != 0 ||
	    (rc = witch_client_config_set_max_reconnect_attempts(cfg, 0)) != 0 ||
	    (rc = witch_client_config_set_event_callback(cfg, evfn,
	    evud)) != 0)
		goto fail;
	if (reconnect_max_ms > 0) {
		if (reconnect_max_ms < WITCH_CLIENT_DEFAULT_RECONNECT_DELAY_MS)
			reconnect_max_ms =
			    WITCH_CLIENT_DEFAULT_RECONNECT_DELAY_MS;
		if ((rc = witch_client_config_set_reconnect_delay(cfg,
		    WITCH_CLIENT_DEFAULT_RECONNECT_DELAY_MS)) != 0 ||
		    (rc = witch_client_config_set_reconnect_delay_max(cfg,
		    reconnect_max_ms)) != 0)
			goto fail;
	}
	if ((rc = witch_client_new(&c, cfg)) != 0)
		goto fail;
	witch_client_config_free(cfg);
	cfg = NULL;
	if ((rc = witch_client_connect(c, &err)) != 0)
		goto fail;
	*ret = c;
	return CTL_EXIT_OK;
fail:
	ctl_warnx("cannot connect to %s: %s", ctl->where,
	    connect_reason(rc, &err));
	witch_client_free(c);
	witch_client_config_free(cfg);
	return CTL_EXIT_CONN;
}

/* A frame limit for people: "1 MiB (1048576 bytes", "100 bytes (". */
static void
frame_size(unsigned long long n, char *buf, size_t size)
{
	if (n >= 1024 * 1024 && n % (1024 * 1024) == 0)
		snprintf(buf, size, "%llu MiB (%llu bytes; ", n >> 20, n);
	else if (n >= 1024 && n % 1024 == 0)
		snprintf(buf, size, "%llu KiB (%llu bytes; ", n >> 10, n);
	else
		snprintf(buf, size, "%llu bytes (", n);
}

/*
 * A request over the frame limit: the server's max_frame as libwitch
 * names it ("... max_frame of N bytes"), with the setting that raises it.
 */
static int
too_large(const struct ctl *ctl, const char *endpoint, const char *text)
{
	const char *p = strstr(text, "max_frame of ");
	char size[64];

	if (p == NULL) {
		ctl_warnx("%s: request too large: %s", endpoint, text);
		return CTL_EXIT_USAGE;
	}
	frame_size(strtoull(p + 13, NULL, 10), size, sizeof(size));
	ctl_warnx("%s: request too large for %s: its max_frame is %switchd's "
	    "max-frame setting)", endpoint, ctl->where, size);
	return CTL_EXIT_USAGE;
}

int
ctl_connect(struct ctl *ctl, unsigned reconnect_max_ms, witch_client_t **ret)
{
	return connect_client(ctl, reconnect_max_ms, NULL, NULL, ret);
}

int
ctl_connect_events(struct ctl *ctl, witch_client_event_fn fn, void *ud,
    witch_client_t **ret)
{
	return connect_client(ctl, 0, fn, ud, ret);
}

int
ctl_request_failed(const struct ctl *ctl, const char *endpoint, int rc,
    const witch_error_t *err)
{
	const char *text = err->text[0] != '\0' ? err->text :
	    witch_strerror(rc);

	switch (rc) {
	case WITCH_ETOO_LARGE:
		return too_large(ctl, endpoint, text);
	case WITCH_EREMOTE:
		ctl_warnx("server error: %s: %s", witch_err_name(err->remote),
		    err->text[0] != '\0' ? err->text :
		    witch_strerror(err->remote));
		return CTL_EXIT_REMOTE;
	case WITCH_ETIMEOUT:
		ctl_warnx("%s: no reply to '%s' within %g s", ctl->where,
		    endpoint, ctl->timeout_ms / 1000.0);
		return CTL_EXIT_CONN;
	case WITCH_ECONNECTION:
		/* A server that does not say its limit in hello. */
		ctl_warnx("%s: connection lost: %s%s", ctl->where, text,
		    strstr(text, "frame_too_large") != NULL ? " (a request "
		    "larger than the server's max_frame: the max-frame "
		    "setting of witchd)" : "");
		return CTL_EXIT_CONN;
	case WITCH_EINVAL:
		ctl_warnx("%s: %s", endpoint, text);
		return CTL_EXIT_USAGE;
	default:
		ctl_warnx("%s: %s: %s", ctl->where, endpoint, text);
		return CTL_EXIT_CONN;
	}
}

int
ctl_request(struct ctl *ctl, const char *endpoint, json_t *data,
    json_t **result)
{
	witch_client_t *c;
	witch_error_t err;
	int rc, status;

	*result = NULL;
	if ((status = ctl_connect(ctl, 0, &c)) != CTL_EXIT_OK)
		return status;
	memset(&err, 0, sizeof(err));
	rc = witch_client_call(c, endpoint, data, ctl->timeout_ms, result,
	    &err);
	if (rc != 0)
		status = ctl_request_failed(ctl, endpoint, rc, &err);
	witch_client_free(c);
	return status;
}

int
ctl_show(struct ctl *ctl, const char *endpoint, json_t *data,
    void (*human)(const json_t *))
{
	json_t *res = NULL;
	int status;

	if ((status = ctl_request(ctl, endpoint, data, &res)) != CTL_EXIT_OK)
		return status;
	if (ctl->json)
		out_json(res);
	else
		human(res);
	json_decref(res);
	return CTL_EXIT_OK;
}

static const struct ctl_cmd *
find_command(const char *name)
{
	size_t i;

	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

/* Describe the server for messages: "host:port", "[v6]:port" or a path. */
static void
set_where(struct ctl *ctl)
{
	if (ctl->unix_path != NULL)
		snprintf(ctl->where, sizeof(ctl->where), "%s",
		    ctl->unix_path);
	else if (strchr(ctl->host, ':') != NULL)
		snprintf(ctl->where, sizeof(ctl->where), "[%s]:%u",
		    ctl->host, ctl->port);
	else
		snprintf(ctl->where, sizeof(ctl->where), "%s:%u", ctl->host,
		    ctl->port);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "unix", required_argument, NULL, 'U' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl ctl = {
		.host = "127.0.0.1",
		.port = 8888,
		.timeout_ms = WITCH_CLIENT_DEFAULT_REQUEST_TIMEOUT_MS,
	};
	const struct ctl_cmd *cmd;
	const char *errstr;
	int ch, status;

	/* "+": stop at the command; its options are its own. */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:H:p:U:t:jhV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'H':
			if (optarg[0] == '\0') {
				ctl_warnx("--host: empty host name");
				return CTL_EXIT_USAGE;
			}
			ctl.host = optarg;
			break;
		case 'p':
			ctl.port = strtonum(optarg, 1, 65535, &errstr);
			if (errstr != NULL) {
				ctl_warnx("--port %s: value is %s (allowed 1 "
				    "to 65535)", optarg, errstr);
				return CTL_EXIT_USAGE;
			}
			break;
		case 'U':
			if (optarg[0] == '\0') {
				ctl_warnx("--unix: empty path");
				return CTL_EXIT_USAGE;
			}
			ctl.unix_path = optarg;
			break;
		case 't':
			if (ctl_parse_secs(optarg, 0.001, 86400,
			    &ctl.timeout_ms) != 0) {
				ctl_warnx("--timeout %s: expected seconds from "
				    "0.001 to 86400", optarg);
				return CTL_EXIT_USAGE;
			}
			ctl.timeout_set = true;
			break;
		case 'j':
			ctl.json = true;
			break;
		case 'h':
			usage(stdout);
			return CTL_EXIT_OK;
		case 'V':
			printf("witchctl %s (libwitch %s)\n",
			    WITCH_VERSION_STRING, witch_version());
			return CTL_EXIT_OK;
		default:
			return ctl_bad_option(NULL, ch, argv);
		}
	}
	if (optind == argc) {
		ctl_warnx("no command given (see 'witchctl --help')");
		return CTL_EXIT_USAGE;
	}
	if ((cmd = find_command(argv[optind])) == NULL) {
		ctl_warnx("unknown command '%s' (see 'witchctl --help')",
		    argv[optind]);
		return CTL_EXIT_USAGE;
	}
	set_where(&ctl);
	current = &ctl;
	status = cmd->run(&ctl, cmd, argc - optind, argv + optind);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		ctl_warnx("standard output: %s", strerror(errno));
		if (status == CTL_EXIT_OK)
			status = CTL_EXIT_REMOTE;
	}
	return status;
}
