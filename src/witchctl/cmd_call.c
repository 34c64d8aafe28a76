/*
 * witchctl/cmd_call.c: the one-request commands echo, call, info, status
 * and peers.  Each connects, sends one request with witch_client_call(),
 * prints the result and disconnects.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <witch/witch.h>

#include "output.h"
#include "witchctl.h"

/* Join argv[0..argc) with single spaces, like echo(1).  NULL: no memory. */
static char *
join_args(int argc, char *argv[])
{
	size_t len = 1, off = 0, n;
	char *s;
	int i;

	for (i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	if ((s = malloc(len)) == NULL)
		return NULL;
	s[0] = '\0';
	for (i = 0; i < argc; i++) {
		n = strlen(argv[i]);
		if (i > 0)
			s[off++] = ' ';
		memcpy(s + off, argv[i], n + 1);
		off += n;
	}
	return s;
}

static int
run_echo(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char *argv[])
{
	json_t *data, *res = NULL, *echo;
	char *text;
	int status;

	if ((status = ctl_plain_args(cmd, argc, argv, 1, argc)) >= 0)
		return status;
	if ((text = join_args(argc - optind, argv + optind)) == NULL) {
		ctl_warnx("echo: out of memory");
		return CTL_EXIT_CONN;
	}
	if ((data = json_string(text)) == NULL) {
		ctl_warnx("echo: the text is not valid UTF-8");
		free(text);
		return CTL_EXIT_USAGE;
	}
	free(text);
	status = ctl_request(ctl, "echo", data, &res);
	json_decref(data);
	if (status != CTL_EXIT_OK)
		return status;
	echo = json_object_get(res, "echo");
	if (ctl->json)
		out_json(res);
	else if (json_is_string(echo))
		printf("%s\n", json_string_value(echo));
	else
		out_json_pretty(echo != NULL ? echo : res);
	json_decref(res);
	return CTL_EXIT_OK;
}

const struct ctl_cmd ctl_cmd_echo = {
	"echo", "echo TEXT...",
	"print the text the server echoes",
	"",
	"The words are joined with single spaces and sent as one JSON string\n"
	"to the echo endpoint.  Prints the echoed text, or with --json the\n"
	"result object.  Use -- before text that starts with '-'.\n",
	run_echo
};

/*
 * Standard input, at most WITCH_MAX_FRAME_CEILING bytes (no request can
 * be larger): 0 with the bytes in *buf (caller frees), or -1 reported.
 */
static int
read_stdin(char **buf, size_t *len)
{
	size_t cap = 0, n;
	char *p = NULL, *np;

	*len = 0;
	for (;;) {
		if (*len == cap) {
			cap = cap ? cap * 2 : 65536;
			if (cap > (size_t)WITCH_MAX_FRAME_CEILING + 1)
				cap = (size_t)WITCH_MAX_FRAME_CEILING + 1;
			if ((np = realloc(p, cap)) == NULL) {
				ctl_warnx("call: standard input: out of memory");
				free(p);
				return -1;
			}
			p = np;
		}
		n = fread(p + *len, 1, cap - *len, stdin);
		*len += n;
		if (*len > WITCH_MAX_FRAME_CEILING) {
			ctl_warnx("call: request too large: standard input "
			    "exceeds the %u MiB frame ceiling",
			    (unsigned)(WITCH_MAX_FRAME_CEILING >> 20));
			free(p);
			return -1;
		}
		if (n == 0)
			break;
	}
	if (ferror(stdin)) {
		ctl_warnx("call: standard input: read error");
		free(p);
		return -1;
	}
	*buf = p;
	return 0;
}

/* Parse the data argument of call ("-": standard input). */
static int
parse_data(const struct ctl_cmd *cmd, const char *arg, json_t **data)
{
	json_error_t jerr;
	size_t len;
	char *in;

	if (strcmp(arg, "-") == 0) {
		if (read_stdin(&in, &len) != 0)
			return CTL_EXIT_USAGE;
		*data = json_loadb(in, len, JSON_DECODE_ANY, &jerr);
		free(in);
	} else
		*data = json_loads(arg, JSON_DECODE_ANY, &jerr);
	if (*data != NULL)
		return CTL_EXIT_OK;
	return ctl_usage_error(cmd, "call: invalid JSON %s at line %d, "
	    "column %d (byte %d): %s", strcmp(arg, "-") == 0 ?
	    "on standard input" : "argument", jerr.line, jerr.column,
	    jerr.position, jerr.text);
}

static int
run_call(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char *argv[])
{
	json_t *data = NULL;
	const char *endpoint;
	int status;

	if ((status = ctl_plain_args(cmd, argc, argv, 1, 3)) >= 0)
		return status;
	endpoint = argv[optind++];
	if (endpoint[0] == '\0')
		return ctl_usage_error(cmd, "call: empty endpoint name");
	/* "call ENDPOINT -- -1": data that starts with '-'. */
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (argc - optind > 1)
		return ctl_usage_error(cmd, "call: unexpected argument '%s' "
		    "(usage: witchctl %s)", argv[argc - 1], cmd->synopsis);
	if (optind < argc &&
	    (status = parse_data(cmd, argv[optind], &data)) != 0)
		return status;
	status = ctl_show(ctl, endpoint, data, out_json_pretty);
	json_decref(data);
	return status;
}

const struct ctl_cmd ctl_cmd_call = {
	"call", "call ENDPOINT [JSON|-]",
	"call an endpoint and print the result",
	"",
	"JSON, the request's data, is any JSON value (quote it for the\n"
	"shell), or - to read it from standard input; without it the request\n"
	"carries no data; data that starts with '-' follows --, as in\n"
	"'call echo -- -1'.  Prints the result as indented JSON, or compact\n"
	"with --json.  Invalid JSON is a usage error (exit 2).\n",
	run_call
};

/* info, status and peers: no arguments, a listing or the JSON. */
static int
run_query(struct ctl *ctl, const struct ctl_cmd *cmd, const char *endpoint,
    void (*human)(const json_t *), int argc, char *argv[])
{
	int status;

	if ((status = ctl_plain_args(cmd, argc, argv, 0, 0)) >= 0)
		return status;
	return ctl_show(ctl, endpoint, NULL, human);
}

static int
run_info(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char *argv[])
{
	return run_query(ctl, cmd, "info", out_info, argc, argv);
}

static int
run_status(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char *argv[])
{
	return run_query(ctl, cmd, "status", out_status, argc, argv);
}

/*
 * peers: the list, and when it is empty whether the server peers at all
 * (its status has "peering": true), so that an empty table says why.
 */
static int
run_peers(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char *argv[])
{
	witch_client_t *c;
	witch_error_t err;
	json_t *res = NULL, *st = NULL;
	int rc, status;

	if ((status = ctl_plain_args(cmd, argc, argv, 0, 0)) >= 0)
		return status;
	if ((status = ctl_connect(ctl, 0, &c)) != CTL_EXIT_OK)
		return status;
	memset(&err, 0, sizeof(err));
	rc = witch_client_call(c, "peer_list", NULL, ctl->timeout_ms, &res,
	    &err);
	if (rc != 0) {
		status = ctl_request_failed(ctl, "peer_list", rc, &err);
		goto done;
	}
	if (ctl->json) {
		out_json(res);
		goto done;
	}
	if (json_is_array(res) && json_array_size(res) == 0) {
		rc = witch_client_call(c, "status", NULL, ctl->timeout_ms, &st,
		    &err);
		if (rc != 0) {
			status = ctl_request_failed(ctl, "status", rc, &err);
			goto done;
		}
		if (!json_is_true(json_object_get(st, "peering"))) {
			printf("no peers: peering is not enabled on this "
			    "server\n");
			goto done;
		}
	}
	out_peers(res);
done:
	json_decref(res);
	json_decref(st);
	witch_client_free(c);
	return status;
}

const struct ctl_cmd ctl_cmd_info = {
	"info", "info",
	"show the server's identity and endpoints",
	"",
	"Prints name, server id, version, protocols, source hash, project\n"
	"and endpoints as \"key: value\" lines, or with --json the result of\n"
	"the info endpoint.\n",
	run_info
};

const struct ctl_cmd ctl_cmd_status = {
	"status", "status",
	"show uptime, clients and request counters",
	"",
	"Prints \"key: value\" lines, or with --json the result of the status\n"
	"endpoint.\n",
	run_status
};

const struct ctl_cmd ctl_cmd_peers = {
	"peers", "peers",
	"list the peers the server knows",
	"",
	"Prints a table of peers: name, server id (first 8 digits), address,\n"
	"port, status (connecting, alive, suspect, dead or incompatible),\n"
	"when last heard and the last heartbeat's round trip; \"no peers\";\n"
	"or \"no peers: peering is not enabled on this server\" when the\n"
	"server does not peer (its status has no \"peering\": true).  With\n"
	"--json the result of the peer_list endpoint: a list of objects with\n"
	"name, server_id, address, port, status, last_seen, rtt_ms, role,\n"
	"sent, received and dropped.\n",
	run_peers
};
