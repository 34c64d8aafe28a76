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

/* Parse the data argument of call ("-": standard input). */
static int
parse_data(const struct ctl_cmd *cmd, const char *arg, json_t **data)
{
	json_error_t jerr;

	if (strcmp(arg, "-") == 0)
		*data = json_loadf(stdin, JSON_DECODE_ANY, &jerr);
	else
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
	json_t *data = NULL, *res = NULL;
	const char *endpoint;
	int status;

	if ((status = ctl_plain_args(cmd, argc, argv, 1, 2)) >= 0)
		return status;
	endpoint = argv[optind];
	if (endpoint[0] == '\0')
		return ctl_usage_error(cmd, "call: empty endpoint name");
	if (optind + 1 < argc &&
	    (status = parse_data(cmd, argv[optind + 1], &data)) != 0)
		return status;
	status = ctl_request(ctl, endpoint, data, &res);
	json_decref(data);
	if (status != CTL_EXIT_OK)
		return status;
	if (ctl->json)
		out_json(res);
	else
		out_json_pretty(res);
	json_decref(res);
	return CTL_EXIT_OK;
}

const struct ctl_cmd ctl_cmd_call = {
	"call", "call ENDPOINT [JSON|-]",
	"call an endpoint and print the result",
	"",
	"JSON, the request's data, is any JSON value (quote it for the\n"
	"shell), or - to read it from standard input; without it the request\n"
	"carries no data.  Prints the result as indented JSON, or compact\n"
	"with --json.  Invalid JSON is a usage error (exit 2).\n",
	run_call
};

/* info, status and peers: no arguments, a listing or the JSON. */
static int
run_query(struct ctl *ctl, const struct ctl_cmd *cmd, const char *endpoint,
    void (*human)(const json_t *), int argc, char *argv[])
{
	json_t *res = NULL;
	int status;

	if ((status = ctl_plain_args(cmd, argc, argv, 0, 0)) >= 0)
		return status;
	if ((status = ctl_request(ctl, endpoint, NULL, &res)) != CTL_EXIT_OK)
		return status;
	if (ctl->json)
		out_json(res);
	else
		human(res);
	json_decref(res);
	return CTL_EXIT_OK;
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

static int
run_peers(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char *argv[])
{
	json_t *res = NULL, *st = NULL;
	int status;

	if ((status = ctl_plain_args(cmd, argc, argv, 0, 0)) >= 0)
		return status;
	if ((status = ctl_request(ctl, "peer_list", NULL, &res)) !=
	    CTL_EXIT_OK)
		return status;
	if (ctl->json)
		out_json(res);
	else if (json_array_size(res) > 0)
		out_peers(res);
	else if (ctl_request(ctl, "status", NULL, &st) == CTL_EXIT_OK &&
	    json_is_false(json_object_get(json_object_get(st, "peer_counts"),
	    "enabled")))
		printf("no peers (peering is off on this server: witchd "
		    "--peer yes)\n");
	else
		printf("no peers\n");
	json_decref(st);
	json_decref(res);
	return CTL_EXIT_OK;
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
	"when last heard and the last heartbeat's round trip; or \"no peers\"\n"
	"(saying so when peering is off on the server).  With --json the\n"
	"result of the peer_list endpoint: a list of objects with name,\n"
	"server_id, address, port, status, last_seen, rtt_ms, role, sent,\n"
	"received and dropped.\n",
	run_peers
};
