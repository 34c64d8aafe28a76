/*
 * witchd: the witch server as a process.  It links only the public API.
 *
 * Settings come from the command line, the configuration file and the
 * built-in defaults, in that order of precedence (config.c).  witchd runs
 * in the foreground, logs to stderr (log.c), tells a service manager when
 * it is ready, reloading or stopping (notify.c), takes listeners passed by
 * socket activation and serves a local control socket (listen.c).
 *
 * Signals are taken synchronously by the main thread: SIGINT and SIGTERM
 * drain in-flight requests and exit 0, SIGHUP reloads the file.
 */
#include <sys/resource.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <witch/witch.h>

#include "config.h"
#include "listen.h"
#include "log.h"
#include "notify.h"

/* Exit statuses: see witchd(8). */
#define EXIT_START	1
#define EXIT_USAGE	2

struct witchd {
	struct conf	 flags;		/* command line (SRC_FLAG) */
	struct conf	 cur;		/* the configuration in force */
	const char	*conf_path;
	bool		 conf_given;	/* -c: the file must exist */
	bool		 check;		/* --check-config */
	witch_server_t	*srv;
	struct listeners lst;
	char		 status[256];	/* last STATUS= sent */
};

enum {
	OPT_CONFIG = 'c', OPT_CHECK = 't', OPT_VERBOSE = 'v', OPT_QUIET = 'q',
	OPT_HELP = 'h', OPT_VERSION = 'V',
	OPT_NO_CONTROL = 1000, OPT_NO_TCP, OPT_UNIX, OPT_NO_DISCOVERY,
	OPT_TABLE = 2000		/* + conf_id */
};

static void
usage(FILE *f)
{
	char left[64], def[CONF_STR_MAX + 16];
	const struct conf_opt *o;
	struct conf d;
	int i;

	conf_defaults(&d);
	fprintf(f,
"usage: witchd [-c file] [--check-config] [options]\n"
"Run the witch server in the foreground (see witchd(8), witchd.conf(5)).\n"
"Every setting is also a key of the configuration file; the command line\n"
"wins over the file, the file over the defaults.\n"
"\n");
	for (i = 0; i < C_COUNT; i++) {
		o = &conf_opts[i];
		if (o->shortopt != 0)
			snprintf(left, sizeof(left), "-%c, --%s %s",
			    o->shortopt, o->name, o->arg);
		else
			snprintf(left, sizeof(left), "    --%s %s", o->name,
			    o->arg);
		fprintf(f, "  %-32s %s (default %s)\n", left, o->help,
		    conf_format(&d, i, def, sizeof(def)));
	}
	fprintf(f,
"      --unix PATH                  same as --control-socket PATH\n"
"      --no-control-socket          same as --control-socket none\n"
"      --no-tcp                     same as --tcp no\n"
"      --no-discovery               same as --discovery no\n"
"  -c, --config FILE                configuration file (default %s)\n"
"  -t, --check-config               check the configuration and exit\n"
"  -v, --verbose                    same as --log-level debug\n"
"  -q, --quiet                      same as --log-level warning\n"
"  -h, --help                       show this help and exit\n"
"  -V, --version                    show the version and exit\n",
	    CONF_DEFAULT_PATH);
}

/* Report a usage error on one line and exit with status 2. */
static void __attribute__((noreturn, format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("witchd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see 'witchd --help')\n", stderr);
	exit(EXIT_USAGE);
}

/*
 * Set one option from the command line, or exit with status 2.  spelled
 * is the option as typed ("-v", "--no-tcp"), or NULL for --NAME.
 */
static void
flag(struct witchd *w, enum conf_id id, const char *arg, const char *spelled)
{
	struct conf_val v;
	char why[256];

	if (conf_opts[id].type == T_SEEDS && w->flags.v[id].src == SRC_FLAG) {
		/* Repeatable: each --peer-seed adds one. */
		if (conf_add_value(id, &w->flags.v[id], arg, why,
		    sizeof(why)) != 0) {
			fprintf(stderr, "witchd: --%s %s: %s\n",
			    conf_opts[id].name, arg, why);
			exit(EXIT_USAGE);
		}
		return;
	}
	memset(&v, 0, sizeof(v));
	if (conf_parse_value(id, arg, &v, why, sizeof(why)) != 0) {
		fprintf(stderr, "witchd: %s%s %s: %s\n", spelled != NULL ?
		    spelled : "--", spelled != NULL ? "" : conf_opts[id].name,
		    arg, why);
		exit(EXIT_USAGE);
	}
	v.src = SRC_FLAG;
	v.line = 0;
	if (spelled != NULL)
		strlcpy(v.flag, spelled, sizeof(v.flag));
	w->flags.v[id] = v;
}

/* A getopt failure ('?' or ':') on argv[optind - 1]: exit with 2. */
static void __attribute__((noreturn))
bad_option(int ch, char *argv[])
{
	const char *arg = argv[optind - 1];

	if (ch == ':')
		usage_error("option '%s' needs a value", arg);
	if (optopt != 0)
		usage_error("unknown option '-%c'", optopt);
	usage_error("unknown option '%s'", arg);
}

/* The getopt tables, built from conf_opts[] plus the flag-only options. */
static void
build_getopt(struct option *lo, char *so, size_t solen)
{
	static const struct option extra[] = {
		{ "unix", required_argument, NULL, OPT_UNIX },
		{ "no-control-socket", no_argument, NULL, OPT_NO_CONTROL },
		{ "no-tcp", no_argument, NULL, OPT_NO_TCP },
		{ "no-discovery", no_argument, NULL, OPT_NO_DISCOVERY },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "verbose", no_argument, NULL, OPT_VERBOSE },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	size_t i, n = 0;
	char one[3];

	strlcpy(so, "c:tvqhV", solen);
	for (i = 0; i < C_COUNT; i++) {
		lo[n].name = conf_opts[i].name;
		lo[n].has_arg = required_argument;
		lo[n].flag = NULL;
		lo[n].val = OPT_TABLE + (int)i;
		n++;
		if (conf_opts[i].shortopt != 0) {
			one[0] = (char)conf_opts[i].shortopt;
			one[1] = ':';
			one[2] = '\0';
			strlcat(so, one, solen);
		}
	}
	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
		lo[n++] = extra[i];
}

static void
parse_args(struct witchd *w, int argc, char *argv[])
{
	struct option lo[C_COUNT + 16];
	char so[96], sp[32];
	const char *spelled;
	int ch, i, li;

	build_getopt(lo, so, sizeof(so));
	/* ":": missing values come back as ':', reported by us. */
	memmove(so + 1, so, strlen(so) + 1);
	so[0] = ':';
	opterr = 0;
	for (;;) {
		li = -1;
		if ((ch = getopt_long(argc, argv, so, lo, &li)) == -1)
			break;
		/* The option as typed, for messages and -t -v. */
		if (li >= 0)
			snprintf(sp, sizeof(sp), "--%s", lo[li].name);
		else
			snprintf(sp, sizeof(sp), "-%c", ch);
		spelled = sp;
		if (ch >= OPT_TABLE && ch < OPT_TABLE + C_COUNT) {
			flag(w, ch - OPT_TABLE, optarg, NULL);
			continue;
		}
		for (i = 0; i < C_COUNT; i++)
			if (ch == conf_opts[i].shortopt)
				break;
		if (i < C_COUNT) {
			flag(w, i, optarg, spelled);
			continue;
		}
		switch (ch) {
		case OPT_UNIX:
			flag(w, C_CONTROL_SOCKET, optarg, spelled);
			break;
		case OPT_NO_CONTROL:
			flag(w, C_CONTROL_SOCKET, "none", spelled);
			break;
		case OPT_NO_TCP:
			flag(w, C_TCP, "no", spelled);
			break;
		case OPT_NO_DISCOVERY:
			flag(w, C_DISCOVERY, "no", spelled);
			break;
		case OPT_CONFIG:
			w->conf_path = optarg;
			w->conf_given = true;
			break;
		case OPT_CHECK:
			w->check = true;
			break;
		case OPT_VERBOSE:
			flag(w, C_LOG_LEVEL, "debug", spelled);
			break;
		case OPT_QUIET:
			flag(w, C_LOG_LEVEL, "warning", spelled);
			break;
		case OPT_HELP:
			usage(stdout);
			exit(0);
		case OPT_VERSION:
			printf("witchd %s (libwitch %s)\n",
			    WITCH_VERSION_STRING, witch_version());
			exit(0);
		default:
			bad_option(ch, argv);
		}
	}
	if (optind != argc)
		usage_error("unexpected argument '%s'", argv[optind]);
}

/* Error reporters: plain lines for --check-config, log lines otherwise. */
static void
err_plain(const char *msg)
{
	fprintf(stderr, "witchd: %s\n", msg);
}

static void
err_log(const char *msg)
{
	log_error("%s", msg);
}

/*
 * Defaults, then the file, then the flags, into *c; every error reported.
 * Returns 0, or -1 when the result must not be used.
 */
static int
load_conf(struct witchd *w, struct conf *c, conf_err_fn errfn)
{
	witch_server_config_t *cfg;
	char msg[CONF_STR_MAX + 128];
	int rc;

	conf_defaults(c);
	rc = conf_load_file(c, w->conf_path, errfn);
	if (rc == -1) {
		if (errno == ENOENT && !w->conf_given) {
			if (w->check)
				fprintf(stderr, "witchd: no configuration "
				    "file at %s: built-in defaults\n",
				    w->conf_path);
			else
				log_info("no configuration file at %s: "
				    "built-in defaults", w->conf_path);
			conf_defaults(c);
		} else {
			snprintf(msg, sizeof(msg), "%s: cannot read "
			    "configuration file: %s", w->conf_path,
			    strerror(errno));
			errfn(msg);
			return -1;
		}
	}
	/* Values that failed keep their defaults: check the rest anyway, so
	 * that one run reports every error. */
	conf_overlay_flags(c, &w->flags);
	if (conf_to_server(c, &cfg, errfn) != 0)
		return -1;
	witch_server_config_free(cfg);
	return rc > 0 ? -1 : 0;
}

/* --check-config: report and exit; with -v, print what is in force. */
static void __attribute__((noreturn))
check_config(struct witchd *w)
{
	char val[CONF_STR_MAX + 16], where[CONF_STR_MAX + 16];
	struct conf *c;
	int i;

	if ((c = malloc(sizeof(*c))) == NULL)
		exit(EXIT_START);
	if (load_conf(w, c, err_plain) != 0) {
		fprintf(stderr, "witchd: configuration NOT valid\n");
		exit(conf_last_bad >= 0 && c->v[conf_last_bad].src ==
		    SRC_FLAG ? EXIT_USAGE : EXIT_START);
	}
	if (c->v[C_LOG_LEVEL].num >= WITCH_LOG_DEBUG)
		for (i = 0; i < C_COUNT; i++)
			printf("%s = %s\t# %s\n", conf_opts[i].name,
			    conf_format(c, i, val, sizeof(val)),
			    conf_where(c, i, where, sizeof(where)));
	fprintf(stderr, "witchd: configuration OK\n");
	free(c);
	exit(0);
}

/* Raise the descriptor limit to its hard limit (many clients). */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit RLIMIT_NOFILE");
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		log_debug("open files limit %llu",
		    (unsigned long long)rl.rlim_cur);
}

/*
 * Hand the activated listeners and the control socket to the server.
 * Returns 0, or -1 (logged).
 */
static int
setup_listeners(struct witchd *w)
{
	const struct conf_val *cs = &w->cur.v[C_CONTROL_SOCKET];
	bool have_unix = w->lst.nunix > 0;
	int i, rc;

	for (i = 0; i < w->lst.ntcp; i++)
		if ((rc = witch_server_adopt_listener(w->srv,
		    w->lst.tcp[i])) != 0) {
			log_error("socket activation: %s", witch_strerror(rc));
			return -1;
		}
	for (i = 0; i < w->lst.nunix; i++)
		if ((rc = witch_server_adopt_listener(w->srv,
		    w->lst.unix_fd[i])) != 0) {
			log_error("socket activation: %s", witch_strerror(rc));
			return -1;
		}
	w->lst.ntcp = w->lst.nunix = 0;
	if (have_unix || cs->num == 0)
		return 0;
	if (listen_control(&w->lst, cs->str,
	    (unsigned)w->cur.v[C_CONTROL_SOCKET_MODE].num,
	    cs->src != SRC_DEFAULT) != 0)
		return -1;
	if (w->lst.control_fd != -1) {
		rc = witch_server_adopt_listener(w->srv, w->lst.control_fd);
		w->lst.control_fd = -1;
		if (rc != 0) {
			log_error("control socket: %s", witch_strerror(rc));
			return -1;
		}
	}
	return 0;
}

/* Bail out of start-up: nothing may stay half-started. */
static void __attribute__((noreturn))
start_failed(struct witchd *w)
{
	witch_server_free(w->srv);
	listen_cleanup(&w->lst);
	notify_close();
	exit(EXIT_START);
}

/* Is addr a numeric loopback address (127/8, ::1)? */
static bool
is_loopback(const char *addr)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, addr, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, addr, &a6) == 1 &&
	    IN6_IS_ADDR_LOOPBACK(&a6);
}

static void
start(struct witchd *w)
{
	witch_server_config_t *cfg;
	const char *pf = w->cur.v[C_PORT_FILE].str;
	witch_error_t err;
	bool activated;
	FILE *f;

	if (conf_to_server(&w->cur, &cfg, err_log) != 0)
		exit(EXIT_START);
	witch_server_config_set_logger(cfg, log_witch, NULL);
	listen_activation(&w->lst);
	activated = w->lst.ntcp > 0;
	if (activated) {
		/* The service manager's sockets replace bind:port. */
		witch_server_config_set_listen_tcp(cfg, false);
		log_info("TCP listener%s from the service manager; bind and "
		    "port are not used", w->lst.ntcp > 1 ? "s" : "");
	}
	if (w->lst.nunix > 0)
		log_info("control socket from the service manager");
	if (witch_server_new(&w->srv, cfg) != 0)
		fatalx("out of memory");
	witch_server_config_free(cfg);
	if (setup_listeners(w) != 0)
		start_failed(w);
	if (witch_server_start(w->srv, &err) != 0) {
		log_error("%s", err.text);
		start_failed(w);
	}
	/*
	 * The library announces only for a TCP port; bound to loopback with
	 * nothing to advertise, it says itself that there is nothing to
	 * announce.
	 */
	if (w->cur.v[C_DISCOVERY].num != 0 && witch_server_port(w->srv) != 0 &&
	    (w->cur.v[C_ADVERTISE].str[0] != '\0' ||
	    !is_loopback(w->cur.v[C_BIND].str)))
		log_info("discovery: UDP port %lld, every %g s%s%s",
		    w->cur.v[C_DISCOVERY_PORT].num,
		    w->cur.v[C_DISCOVERY_INTERVAL].num / 1000.0,
		    w->cur.v[C_ADVERTISE].str[0] != '\0' ?
		    ", advertising " : "", w->cur.v[C_ADVERTISE].str);
	if (pf[0] != '\0') {
		if ((f = fopen(pf, "w")) == NULL ||
		    fprintf(f, "%u\n", witch_server_port(w->srv)) < 0 ||
		    fclose(f) != 0) {
			log_error("--port-file %s: %s", pf, strerror(errno));
			witch_server_stop(w->srv, 0);
			start_failed(w);
		}
	}
}

/* Tell the service manager how many clients we serve, when it changed. */
static void
update_status(struct witchd *w, bool force)
{
	char status[sizeof(w->status)];
	unsigned n;

	if (!notify_enabled())
		return;
	n = witch_server_clients(w->srv);
	snprintf(status, sizeof(status), "serving %u client%s (max %lld), "
	    "TCP port %u", n, n == 1 ? "" : "s",
	    w->cur.v[C_MAX_CLIENTS].num, witch_server_port(w->srv));
	if (!force && strcmp(status, w->status) == 0)
		return;
	strlcpy(w->status, status, sizeof(w->status));
	notify_send("STATUS=%s", status);
}

/*
 * SIGHUP: read the file again.  If anything is wrong the configuration in
 * force stays; otherwise the settings that can change live are applied and
 * every other change is logged as needing a restart.
 */
static void
reload(struct witchd *w)
{
	char a[CONF_STR_MAX + 16], b[CONF_STR_MAX + 16];
	witch_server_config_t *cfg;
	struct conf *next, *cand;
	int i, changed = 0;

	notify_send("RELOADING=1");
	log_notice("SIGHUP: reloading %s", w->conf_path);
	next = malloc(sizeof(*next));
	cand = malloc(sizeof(*cand));
	if (next == NULL || cand == NULL) {
		log_error("reload: out of memory; configuration unchanged");
		goto done;
	}
	if (load_conf(w, next, err_log) != 0) {
		log_error("reload failed: the configuration in force is "
		    "unchanged");
		goto done;
	}
	*cand = w->cur;
	for (i = 0; i < C_COUNT; i++) {
		if (!conf_differs(&w->cur, next, i))
			continue;
		conf_format(&w->cur, i, a, sizeof(a));
		conf_format(next, i, b, sizeof(b));
		if (conf_opts[i].live) {
			log_notice("%s: %s -> %s", conf_opts[i].name, a, b);
			cand->v[i] = next->v[i];
			changed++;
		} else
			log_warnx("%s: %s -> %s needs restart (still %s)",
			    conf_opts[i].name, a, b, a);
	}
	if (conf_to_server(cand, &cfg, err_log) != 0) {
		log_error("reload failed: the configuration in force is "
		    "unchanged");
		goto done;
	}
	if (changed > 0)
		witch_server_reconfigure(w->srv, cfg);
	witch_server_config_free(cfg);
	w->cur = *cand;
	log_setlevel((int)w->cur.v[C_LOG_LEVEL].num);
	log_notice("reloaded: %d live setting%s changed", changed,
	    changed == 1 ? "" : "s");
done:
	free(next);
	free(cand);
	notify_send("READY=1");
	update_status(w, true);
}

static uint64_t
now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * Wait for signals; meanwhile keep the service manager informed: a
 * watchdog ping every half interval, STATUS= when the client count
 * changes (checked every second).  Returns the stopping signal.
 */
static int
serve(struct witchd *w, const sigset_t *sigs)
{
	uint64_t wd = notify_watchdog_usec(), tick = 0, next_wd = 0, now;
	struct timespec ts;
	int sig;

	if (notify_enabled())
		tick = 1000000;
	if (wd != 0) {
		if (wd / 2 < tick)
			tick = wd / 2 > 1000 ? wd / 2 : 1000;
		log_info("watchdog: pinging every %llu ms",
		    (unsigned long long)(wd / 2000));
		notify_send("WATCHDOG=1");
		next_wd = now_usec() + wd / 2;
	}
	for (;;) {
		if (tick == 0) {
			if (sigwait(sigs, &sig) != 0)
				sig = SIGTERM;
		} else {
			ts.tv_sec = (time_t)(tick / 1000000);
			ts.tv_nsec = (long)(tick % 1000000) * 1000;
			sig = sigtimedwait(sigs, NULL, &ts);
		}
		now = now_usec();
		if (wd != 0 && now >= next_wd) {
			notify_send("WATCHDOG=1");
			next_wd = now + wd / 2;
		}
		if (sig == SIGHUP)
			reload(w);
		else if (sig == SIGINT || sig == SIGTERM)
			return sig;
		update_status(w, false);
	}
}

int
main(int argc, char *argv[])
{
	struct witchd *w;
	sigset_t sigs;
	int sig;

	log_init();
	if ((w = calloc(1, sizeof(*w))) == NULL)
		fatalx("out of memory");
	w->conf_path = CONF_DEFAULT_PATH;
	listen_init(&w->lst);
	conf_defaults(&w->flags);
	parse_args(w, argc, argv);
	log_setlevel((int)w->flags.v[C_LOG_LEVEL].num);
	if (w->check)
		check_config(w);
	if (load_conf(w, &w->cur, err_log) != 0)
		exit(conf_last_bad >= 0 && w->cur.v[conf_last_bad].src ==
		    SRC_FLAG ? EXIT_USAGE : EXIT_START);
	log_setlevel((int)w->cur.v[C_LOG_LEVEL].num);

	/* Signals are taken by the main thread below, never by threads. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	notify_init();
	start(w);
	notify_send("READY=1");
	update_status(w, true);

	sig = serve(w, &sigs);
	log_notice("%s: draining", sig == SIGINT ? "SIGINT" : "SIGTERM");
	notify_send("STOPPING=1\nSTATUS=stopping");
	witch_server_stop(w->srv, -1);
	witch_server_free(w->srv);
	listen_cleanup(&w->lst);
	notify_close();
	free(w);
	return 0;
}
