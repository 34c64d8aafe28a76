/*
 * bench-server: a libwitch server with one application endpoint that does
 * real work per request, for the `make bench` rows that measure the
 * worker pool's scaling (src/bench/run-bench.sh).  Not installed.
 *
 *     bench-server --port-file FILE [--workers N]
 *
 * Listens on 127.0.0.1, a free port written to FILE, until SIGINT or
 * SIGTERM.  Endpoint "digest": parses the request's data (a JSON object,
 * witch-bench --object) with jansson and answers
 * {"digest":"<16 hex>","members":N}, an FNV-1a hash over every member's
 * key and value (strings as bytes, integers as decimal text).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <witch/witch.h>

static volatile sig_atomic_t stopping;

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n-- > 0) {
		h ^= *b++;
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Parse data, hash every member: the work of a small application call. */
static int
h_digest(witch_request_t *req, void *ud)
{
	json_t *data = witch_request_data(req), *v;
	uint64_t h = 0xcbf29ce484222325ull;
	const char *k;
	char num[32], hex[17];
	size_t n = 0;
	int len;

	(void)ud;
	if (!json_is_object(data))
		return witch_request_error(req, WITCH_EINVAL,
		    "data must be an object");
	json_object_foreach(data, k, v) {
		h = fnv(h, k, strlen(k));
		if (json_is_string(v))
			h = fnv(h, json_string_value(v),
			    json_string_length(v));
		else if (json_is_integer(v)) {
			len = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
			    json_integer_value(v));
			h = fnv(h, num, (size_t)len);
		}
		n++;
	}
	snprintf(hex, sizeof(hex), "%016" PRIx64, h);
	return witch_request_reply(req, json_pack("{s:s,s:I}", "digest", hex,
	    "members", (json_int_t)n));
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench-server --port-file FILE "
	    "[--workers N]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "port-file", required_argument, NULL, 'f' },
		{ "workers", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 }
	};
	witch_server_config_t *cfg;
	witch_server_t *srv;
	witch_error_t err;
	const char *pf = NULL;
	unsigned long workers = 0;
	char *end;
	FILE *f;
	int ch;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'f':
			pf = optarg;
			break;
		case 'w':
			errno = 0;
			workers = strtoul(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || workers > 64)
				usage();
			break;
		default:
			usage();
		}
	}
	if (pf == NULL || optind != argc)
		usage();
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (witch_server_config_new(&cfg) != 0 ||
	    witch_server_config_set_bind(cfg, "127.0.0.1") != 0 ||
	    witch_server_config_set_port(cfg, 0) != 0 ||
	    witch_server_config_set_discovery(cfg, false) != 0 ||
	    witch_server_config_set_workers(cfg, (unsigned)workers) != 0 ||
	    witch_server_new(&srv, cfg) != 0) {
		fprintf(stderr, "bench-server: cannot create the server\n");
		return 1;
	}
	witch_server_config_free(cfg);
	if (witch_server_register_endpoint(srv, "digest", h_digest,
	    NULL) != 0 || witch_server_start(srv, &err) != 0) {
		fprintf(stderr, "bench-server: cannot start\n");
		return 1;
	}
	if ((f = fopen(pf, "w")) == NULL) {
		fprintf(stderr, "bench-server: %s: %s\n", pf, strerror(errno));
		return 1;
	}
	fprintf(f, "%u\n", witch_server_port(srv));
	fclose(f);
	while (!stopping)
		pause();
	witch_server_stop(srv, 1000);
	witch_server_free(srv);
	return 0;
}
