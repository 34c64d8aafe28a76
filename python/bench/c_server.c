/*
 * c_server: the C twin of py_server.py for python/bench/run.sh.  Serves
 * "pyecho" (the name both use) on libwitch's workers with the handler the
 * Python one has: {"echo": data}.  Usage: c_server PORT WORKERS; runs
 * until killed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <witch/witch.h>

static int
pyecho(witch_request_t *req, void *ud)
{
	(void)ud;
	return witch_request_reply(req, json_pack("{s:O}", "echo",
	    witch_request_data(req)));
}

int
main(int argc, char *argv[])
{
	witch_server_config_t *cfg;
	witch_server_t *srv;
	witch_error_t err;
	sigset_t set;
	int sig;

	if (argc != 3) {
		fprintf(stderr, "usage: c_server port workers\n");
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (witch_server_config_new(&cfg) != 0 ||
	    witch_server_config_set_port(cfg, (unsigned)strtoul(argv[1],
	    NULL, 10)) != 0 ||
	    witch_server_config_set_workers(cfg, (unsigned)strtoul(argv[2],
	    NULL, 10)) != 0 ||
	    witch_server_new(&srv, cfg) != 0)
		return 1;
	witch_server_config_free(cfg);
	if (witch_server_register_endpoint(srv, "pyecho", pyecho, NULL) != 0 ||
	    witch_server_start(srv, &err) != 0) {
		fprintf(stderr, "c_server: %s\n", err.text);
		return 1;
	}
	printf("%u\n", witch_server_port(srv));
	fflush(stdout);
	sigwait(&set, &sig);
	witch_server_free(srv);
	return 0;
}
