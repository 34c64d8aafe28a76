/*
 * tests/fuzz/fuzz_hello.c: the hello exchange as the reactor answers it
 * (reactor/builtins.c), on a connection object without a socket.
 *
 * The input is a request frame's payload; when the request scanner
 * accepts it, the hello built-in answers it whatever its endpoint.  The
 * reply must be exactly one frame holding one JSON object with the
 * request's id, either a result (protocol one of the server's, the
 * connection's protocol index in range) or an error with a known code
 * and a message; the client name it keeps stays a C string.  The server
 * speaks two protocols and has a source hash, so the mismatch and
 * no-common-protocol paths are reachable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <witch/error.h>

#include "reactor/reactor.h"
#include "common.h"

static struct witch__reactor r;
static struct witch__conn *conn;
static const struct witch__endpoint *hello;

static void
setup_once(void)
{
	if (conn != NULL)
		return;
	witch__reactor_init(&r, NULL);
	strlcpy(r.opt.name, "fuzz", sizeof(r.opt.name));
	strlcpy(r.opt.server_id, "0123456789abcdef0123456789abcdef",
	    sizeof(r.opt.server_id));
	strlcpy(r.opt.source_hash, "00112233445566778899aabbccddeeff",
	    sizeof(r.opt.source_hash));
	strlcpy(r.opt.protocols[0], "v1", sizeof(r.opt.protocols[0]));
	strlcpy(r.opt.protocols[1], "v2", sizeof(r.opt.protocols[1]));
	r.opt.nprotocols = 2;
	r.opt.max_frame = 1u << 20;
	if (witch__conn_builtins_register(&r) != 0 ||
	    (hello = witch__endpoint_find(&r, "hello", 0)) == NULL ||
	    hello->conn_builtin == NULL)
		abort();
	if ((conn = calloc(1, sizeof(*conn))) == NULL)
		abort();
	conn->r = &r;
	conn->id = 7;
	conn->fd = -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct witch__request_env env;
	struct witch__buf out;
	const char *code, *proto;
	json_t *j, *res;
	size_t hdr = sizeof(struct witch__omsg);
	char id[WITCH__ID_MAX + 1];

	fuzz_seed_once();
	setup_once();
	if (witch__request_scan((const char *)data, size, &env, NULL, 0) != 0)
		return 0;
	memcpy(id, env.id, sizeof(id));
	conn->proto = 0;
	conn->client_name[0] = '\0';
	witch__omsg_buf_init(&out);
	(void)hello->conn_builtin(conn, &env, &out);
	witch__request_env_clear(&env);
	if ((j = fuzz_check_frame(&out, hdr, 0)) == NULL)
		abort();
	if (out.len <= hdr)
		abort();
	/* The reply's id is the request's, as compact JSON. */
	{
		char *s = json_dumps(json_object_get(j, "id"),
		    JSON_COMPACT | JSON_ENCODE_ANY);

		if (s == NULL || strcmp(s, id) != 0)
			abort();
		free(s);
	}
	if ((res = json_object_get(j, "result")) != NULL) {
		proto = json_string_value(json_object_get(res, "protocol"));
		if (proto == NULL || conn->proto < 0 ||
		    (size_t)conn->proto >= r.opt.nprotocols ||
		    strcmp(proto, r.opt.protocols[conn->proto]) != 0)
			abort();
	} else {
		code = json_string_value(json_object_get(json_object_get(j,
		    "error"), "code"));
		if (code == NULL || witch_err_from_name(code) == WITCH_EINVAL ||
		    json_string_value(json_object_get(json_object_get(j,
		    "error"), "message")) == NULL)
			abort();
	}
	if (memchr(conn->client_name, '\0', sizeof(conn->client_name)) ==
	    NULL)
		abort();
	json_decref(j);
	witch__buf_free(&out);
	return 0;
}
