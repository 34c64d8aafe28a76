/*
 * witchd: the witch server as a process.  It links only the public API.
 *
 * Runs in the foreground, logs to stderr, serves the built-in endpoints,
 * and on SIGINT or SIGTERM drains in-flight requests and exits 0.
 */
#include <sys/resource.h>

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

static int log_level = WITCH_LOG_INFO;
static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;

static void
log_line(int level, const char *msg, void *ud)
{
	static const char *names[] = { "emerg", "alert", "crit", "error",
	    "warning", "notice", "info", "debug" };
	struct timespec ts;
	struct tm tm;
	char when[32];

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	pthread_mutex_lock(&log_mtx);
	fprintf(stderr, "%s.%03ld witchd[%ld]: %s: %s\n", when,
	    ts.tv_nsec / 1000000, (long)getpid(),
	    names[level >= 0 && level <= 7 ? level : 7], msg);
	pthread_mutex_unlock(&log_mtx);
}

static void
fatalx(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_line(WITCH_LOG_ERR, msg, NULL);
	exit(1);
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: witchd [options]\n"
"Run the witch server in the foreground (see witchd(8)).\n"
"\n"
"  -p, --port N               TCP port (default %d; 0 picks a free one)\n"
"  -b, --bind ADDR            numeric address to bind (default %s)\n"
"  -n, --name NAME            server name (default witch)\n"
"      --project-id ID        project identifier (default none)\n"
"  -w, --workers N            worker threads (default 0 = CPUs - 1, min 1)\n"
"  -m, --max-clients N        connections served at once (default %d)\n"
"      --max-frame BYTES      largest request frame (default %u, max %u)\n"
"      --queue-depth N        requests waiting for a worker (default %d)\n"
"      --idle-timeout S       close clients silent for S seconds (default 0:\n"
"                             never; fractions allowed)\n"
"      --handshake-timeout S  close clients with no complete frame after S\n"
"                             seconds (default %g; 0: never)\n"
"      --output-soft BYTES    stop reading a client with this much unsent\n"
"                             output (default %u)\n"
"      --output-hard BYTES    drop a client with this much (default %u)\n"
"      --drain-timeout S      on SIGTERM, let requests finish for S seconds\n"
"                             (default %g)\n"
"      --protocols LIST       comma-separated protocols, preferred first\n"
"                             (default v1)\n"
"      --port-file FILE       write the bound port to FILE once listening\n"
"  -U, --unix PATH            also listen on a unix socket at PATH (mode\n"
"                             0660; clients identified by uid and pid)\n"
"      --no-tcp               do not listen on TCP (use with --unix)\n"
"  -v, --verbose              log debug messages\n"
"  -q, --quiet                log warnings and errors only\n"
"  -h, --help                 show this help and exit\n"
"  -V, --version              show the version and exit\n",
	    WITCH_DEFAULT_PORT, WITCH_DEFAULT_BIND, WITCH_DEFAULT_MAX_CLIENTS,
	    WITCH_DEFAULT_MAX_FRAME, WITCH_MAX_FRAME_CEILING,
	    WITCH_DEFAULT_QUEUE_DEPTH,
	    WITCH_DEFAULT_HANDSHAKE_TIMEOUT_MS / 1000.0,
	    WITCH_DEFAULT_OUTPUT_SOFT, WITCH_DEFAULT_OUTPUT_HARD,
	    WITCH_DEFAULT_DRAIN_TIMEOUT_MS / 1000.0);
}

/* Parse an integer option in [min, max] or exit with status 2. */
static long long
num_arg(const char *opt, const char *s, long long min, long long max)
{
	const char *errstr;
	long long v;

	v = strtonum(s, min, max, &errstr);
	if (errstr != NULL) {
		fprintf(stderr, "witchd: --%s %s: value is %s (allowed %lld "
		    "to %lld)\n", opt, s, errstr, min, max);
		exit(2);
	}
	return v;
}

/* Parse seconds (fractions allowed) into milliseconds, or exit 2. */
static unsigned
secs_arg(const char *opt, const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 86400 * 7) {
		fprintf(stderr, "witchd: --%s %s: expected seconds from 0 to "
		    "604800\n", opt, s);
		exit(2);
	}
	return (unsigned)(v * 1000 + 0.5);
}

/* Raise the descriptor limit to its hard limit (many clients). */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
check(int rc, const char *what, const char *val)
{
	if (rc != 0) {
		fprintf(stderr, "witchd: --%s %s: %s\n", what, val,
		    witch_strerror(rc));
		exit(2);
	}
}

/* Split "v1,v2" into cfg's protocol list. */
static void
set_protocols(witch_server_config_t *cfg, const char *arg)
{
	char buf[256], *p, *tok;
	const char *list[16];
	size_t n = 0;

	if (strlcpy(buf, arg, sizeof(buf)) >= sizeof(buf))
		check(WITCH_EINVAL, "protocols", arg);
	for (p = buf; (tok = strsep(&p, ",")) != NULL;) {
		if (n == 16)
			check(WITCH_EINVAL, "protocols", arg);
		list[n++] = tok;
	}
	check(witch_server_config_set_protocols(cfg, list, n), "protocols",
	    arg);
}

enum {
	OPT_PROJECT = 256, OPT_MAX_FRAME, OPT_QUEUE, OPT_IDLE, OPT_HANDSHAKE,
	OPT_OSOFT, OPT_OHARD, OPT_DRAIN, OPT_PROTOCOLS, OPT_PORT_FILE,
	OPT_NO_TCP
};

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "bind", required_argument, NULL, 'b' },
		{ "name", required_argument, NULL, 'n' },
		{ "project-id", required_argument, NULL, OPT_PROJECT },
		{ "workers", required_argument, NULL, 'w' },
		{ "max-clients", required_argument, NULL, 'm' },
		{ "max-frame", required_argument, NULL, OPT_MAX_FRAME },
		{ "queue-depth", required_argument, NULL, OPT_QUEUE },
		{ "idle-timeout", required_argument, NULL, OPT_IDLE },
		{ "handshake-timeout", required_argument, NULL, OPT_HANDSHAKE },
		{ "output-soft", required_argument, NULL, OPT_OSOFT },
		{ "output-hard", required_argument, NULL, OPT_OHARD },
		{ "drain-timeout", required_argument, NULL, OPT_DRAIN },
		{ "protocols", required_argument, NULL, OPT_PROTOCOLS },
		{ "port-file", required_argument, NULL, OPT_PORT_FILE },
		{ "unix", required_argument, NULL, 'U' },
		{ "no-tcp", no_argument, NULL, OPT_NO_TCP },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	witch_server_config_t *cfg;
	witch_server_t *srv;
	witch_error_t err;
	const char *port_file = NULL;
	size_t osoft = WITCH_DEFAULT_OUTPUT_SOFT;
	size_t ohard = WITCH_DEFAULT_OUTPUT_HARD;
	sigset_t sigs;
	FILE *f;
	int ch, sig;

	if (witch_server_config_new(&cfg) != 0)
		fatalx("out of memory");
	witch_server_config_set_logger(cfg, log_line, NULL);
	while ((ch = getopt_long(argc, argv, "p:b:n:w:m:U:vqhV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'p':
			check(witch_server_config_set_port(cfg,
			    num_arg("port", optarg, 0, 65535)), "port", optarg);
			break;
		case 'b':
			check(witch_server_config_set_bind(cfg, optarg),
			    "bind", optarg);
			break;
		case 'n':
			check(witch_server_config_set_name(cfg, optarg),
			    "name", optarg);
			break;
		case OPT_PROJECT:
			check(witch_server_config_set_project_id(cfg, optarg),
			    "project-id", optarg);
			break;
		case 'w':
			check(witch_server_config_set_workers(cfg,
			    num_arg("workers", optarg, 0, 1024)), "workers",
			    optarg);
			break;
		case 'm':
			check(witch_server_config_set_max_clients(cfg,
			    num_arg("max-clients", optarg, 1, 1000000)),
			    "max-clients", optarg);
			break;
		case OPT_MAX_FRAME:
			check(witch_server_config_set_max_frame(cfg,
			    num_arg("max-frame", optarg, 1,
			    WITCH_MAX_FRAME_CEILING)), "max-frame", optarg);
			break;
		case OPT_QUEUE:
			check(witch_server_config_set_queue_depth(cfg,
			    num_arg("queue-depth", optarg, 1, 1000000)),
			    "queue-depth", optarg);
			break;
		case OPT_IDLE:
			witch_server_config_set_idle_timeout(cfg,
			    secs_arg("idle-timeout", optarg));
			break;
		case OPT_HANDSHAKE:
			witch_server_config_set_handshake_timeout(cfg,
			    secs_arg("handshake-timeout", optarg));
			break;
		case OPT_OSOFT:
			osoft = num_arg("output-soft", optarg, 1, LLONG_MAX);
			break;
		case OPT_OHARD:
			ohard = num_arg("output-hard", optarg, 4096, LLONG_MAX);
			break;
		case OPT_DRAIN:
			witch_server_config_set_drain_timeout(cfg,
			    secs_arg("drain-timeout", optarg));
			break;
		case OPT_PROTOCOLS:
			set_protocols(cfg, optarg);
			break;
		case OPT_PORT_FILE:
			port_file = optarg;
			break;
		case 'U':
			check(witch_server_config_set_unix_path(cfg, optarg,
			    0660), "unix", optarg);
			break;
		case OPT_NO_TCP:
			witch_server_config_set_listen_tcp(cfg, false);
			break;
		case 'v':
			log_level = WITCH_LOG_DEBUG;
			break;
		case 'q':
			log_level = WITCH_LOG_WARNING;
			break;
		case 'h':
			usage(stdout);
			witch_server_config_free(cfg);
			return 0;
		case 'V':
			printf("witchd %s (libwitch %s)\n", WITCH_VERSION_STRING,
			    witch_version());
			witch_server_config_free(cfg);
			return 0;
		default:
			usage(stderr);
			witch_server_config_free(cfg);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "witchd: unexpected argument '%s'\n",
		    argv[optind]);
		usage(stderr);
		witch_server_config_free(cfg);
		return 2;
	}
	if (witch_server_config_set_output_limits(cfg, osoft, ohard) != 0) {
		fprintf(stderr, "witchd: --output-soft must not exceed "
		    "--output-hard\n");
		witch_server_config_free(cfg);
		return 2;
	}
	raise_nofile();
	/* Signals are taken by sigwait() below, never by the threads. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (witch_server_new(&srv, cfg) != 0)
		fatalx("out of memory");
	witch_server_config_free(cfg);
	if (witch_server_start(srv, &err) != 0)
		fatalx("%s", err.text);
	if (port_file != NULL) {
		if ((f = fopen(port_file, "w")) == NULL ||
		    fprintf(f, "%u\n", witch_server_port(srv)) < 0 ||
		    fclose(f) != 0)
			fatalx("--port-file %s: %s", port_file,
			    strerror(errno));
	}
	do {
		if (sigwait(&sigs, &sig) != 0)
			sig = SIGTERM;
	} while (sig != SIGINT && sig != SIGTERM);
	log_line(WITCH_LOG_NOTICE, sig == SIGINT ? "SIGINT: draining" :
	    "SIGTERM: draining", NULL);
	witch_server_stop(srv, -1);
	witch_server_free(srv);
	return 0;
}
