/*
 * disc_tool: drive discovery from scripts
 * (tests/daemon/test_discovery_netns.sh, tests/daemon/test_witchctl.sh).
 * Not installed.
 *
 *   disc_tool announce [-n name] [-i server_id] [-p port] [-b bind]
 *       [-d discovery_port] [-t interval_ms] [-a advertise] [-T target] [-s]
 *     Announce until SIGINT/SIGTERM, then send "leaving" and exit.  -s
 *     starts a real witch server on bind, port 0, and announces it; -T
 *     sends by unicast to the numeric address target instead of to the
 *     interfaces (the announcer's test hook, for loopback).
 *   disc_tool listen [-d discovery_port] [-e expiry_ms] [-v]
 *     Print one JSON line per event until SIGINT/SIGTERM.
 * Log lines go to stderr.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <witch/witch.h>

static void
on_log(int level, const char *msg, void *ud)
{
	(void)ud;
	fprintf(stderr, "disc_tool: <%d> %s\n", level, msg);
}

static void
on_event(witch_listener_t *l, enum witch_discovery_event ev,
    const witch_discovered_t *d, void *ud)
{
	json_t *o;
	char *s;

	(void)l;
	(void)ud;
	o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:b, s:I}",
	    "event", witch_discovery_event_name(ev), "name", d->name,
	    "server_id", d->server_id, "addr", d->addr, "port", (int)d->port,
	    "verify", witch_discovery_verify_name(d->verify),
	    "leaving", d->leaving, "seq", (json_int_t)d->seq);
	if (o == NULL || (s = json_dumps(o, JSON_COMPACT)) == NULL)
		return;
	printf("%s\n", s);
	fflush(stdout);
	free(s);
	json_decref(o);
}

static unsigned
num(const char *s, unsigned lo, unsigned hi)
{
	const char *e = NULL;
	long long v = strtonum(s, lo, hi, &e);

	if (e != NULL) {
		fprintf(stderr, "disc_tool: %s: %s\n", s, e);
		exit(2);
	}
	return (unsigned)v;
}

static void
waitsig(void)
{
	sigset_t ss;
	int sig;

	sigemptyset(&ss);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	sigwait(&ss, &sig);
}

static int
announce(int argc, char **argv)
{
	witch_announcer_config_t *cfg;
	witch_announcer_t *a;
	witch_server_config_t *scfg;
	witch_server_t *srv = NULL;
	witch_error_t err;
	const char *name = "disc", *id = "disc1", *bind = "0.0.0.0";
	unsigned port = 8888;
	int ch, serve = 0;

	if (witch_announcer_config_new(&cfg) != 0)
		return 1;
	witch_announcer_config_set_logger(cfg, on_log, NULL);
	while ((ch = getopt(argc, argv, "n:i:p:b:d:t:a:T:s")) != -1) {
		switch (ch) {
		case 'n': name = optarg; break;
		case 'i': id = optarg; break;
		case 'p': port = num(optarg, 1, 65535); break;
		case 'b': bind = optarg; break;
		case 'd':
			witch_announcer_config_set_discovery_port(cfg,
			    num(optarg, 1, 65535));
			break;
		case 't':
			if (witch_announcer_config_set_interval(cfg,
			    num(optarg, 1, 3600000)) != 0)
				return 2;
			break;
		case 'a':
			if (witch_announcer_config_set_advertise(cfg,
			    optarg) != 0)
				return 2;
			break;
		case 'T':
			if (witch_announcer_config_set_target(cfg,
			    optarg) != 0)
				return 2;
			break;
		case 's': serve = 1; break;
		default: return 2;
		}
	}
	if (serve) {
		if (witch_server_config_new(&scfg) != 0 ||
		    witch_server_config_set_bind(scfg, bind) != 0 ||
		    witch_server_config_set_port(scfg, 0) != 0 ||
		    witch_server_config_set_name(scfg, name) != 0 ||
		    witch_server_new(&srv, scfg) != 0 ||
		    witch_server_start(srv, &err) != 0) {
			fprintf(stderr, "disc_tool: server failed\n");
			return 1;
		}
		witch_server_config_free(scfg);
		id = witch_server_id(srv);
		port = witch_server_port(srv);
		witch_announcer_config_set_source_hash(cfg,
		    witch_server_source_hash(srv));
	}
	if (witch_announcer_config_set_name(cfg, name) != 0 ||
	    witch_announcer_config_set_server_id(cfg, id) != 0 ||
	    witch_announcer_config_set_port(cfg, port) != 0 ||
	    witch_announcer_config_set_bind(cfg, bind) != 0 ||
	    witch_announcer_new(&a, cfg) != 0 ||
	    witch_announcer_start(a) != 0) {
		fprintf(stderr, "disc_tool: bad announcer settings\n");
		return 2;
	}
	witch_announcer_config_free(cfg);
	printf("{\"ready\":\"announce\",\"server_id\":\"%s\",\"port\":%u}\n",
	    id, port);
	fflush(stdout);
	waitsig();
	witch_announcer_free(a);
	witch_server_free(srv);
	return 0;
}

static int
listen_mode(int argc, char **argv)
{
	witch_listener_config_t *cfg;
	witch_listener_t *l;
	witch_error_t err;
	uint64_t r, ok, bad, rate;
	int ch;

	if (witch_listener_config_new(&cfg) != 0)
		return 1;
	witch_listener_config_set_logger(cfg, on_log, NULL);
	witch_listener_config_set_callback(cfg, on_event, NULL);
	while ((ch = getopt(argc, argv, "d:e:v")) != -1) {
		switch (ch) {
		case 'd':
			witch_listener_config_set_port(cfg,
			    num(optarg, 0, 65535));
			break;
		case 'e':
			if (witch_listener_config_set_expiry(cfg,
			    num(optarg, 1, 86400000)) != 0)
				return 2;
			break;
		case 'v': witch_listener_config_set_verify(cfg, true); break;
		default: return 2;
		}
	}
	if (witch_listener_new(&l, cfg) != 0 ||
	    witch_listener_start(l, &err) != 0) {
		fprintf(stderr, "disc_tool: listener: %s\n", err.text);
		return 1;
	}
	witch_listener_config_free(cfg);
	printf("{\"ready\":\"listen\",\"port\":%u}\n", witch_listener_port(l));
	fflush(stdout);
	waitsig();
	witch_listener_counters(l, &r, &ok, &bad, &rate);
	fprintf(stderr, "disc_tool: received %llu accepted %llu malformed "
	    "%llu rate_limited %llu\n", (unsigned long long)r,
	    (unsigned long long)ok, (unsigned long long)bad,
	    (unsigned long long)rate);
	witch_listener_free(l);
	return 0;
}

int
main(int argc, char **argv)
{
	sigset_t ss;

	/* Block the stop signals in every thread; main waits for them. */
	sigemptyset(&ss);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	if (argc >= 2 && strcmp(argv[1], "announce") == 0)
		return announce(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "listen") == 0)
		return listen_mode(argc - 1, argv + 1);
	fprintf(stderr, "usage: disc_tool announce|listen [options]\n");
	return 2;
}
