/*
 * test_config: witchd as a system service, black box.  Each test fork/execs
 * $WITCH_BUILDDIR/src/witchd/witchd with a configuration file it wrote in a
 * temporary directory (never /etc) and an explicit control socket there or
 * none (never /run), then checks: --check-config and its messages, start-up
 * refusing broken input, flag > file > default, SIGHUP reloads (live,
 * needs restart, invalid file kept out), the control socket, the sd_notify
 * datagrams on a socket the test creates (READY, STATUS, WATCHDOG,
 * STOPPING), socket activation through systemd-socket-activate, and the
 * journal log format.  Skipped (77) without WITCH_BUILDDIR.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "integ/harness.h"

static char witchd[4096];
static char tmpdir[256];
static char conf[512];		/* tmpdir/witchd.conf */

static void
path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tmpdir, name);
}

/* Write text to the configuration file (replacing it atomically). */
static void
write_conf(const char *text)
{
	char tmp[600];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.new", conf);
	f = fopen(tmp, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, conf), 0);
}

/* Contents of a file in tmpdir (static buffer, NUL-terminated). */
static const char *
slurp(const char *name)
{
	char p[512];

	path(p, sizeof(p), name);
	return th_slurp(p);
}

/* Occurrences of needle in s. */
static int
count(const char *s, const char *needle)
{
	int n = 0;

	while ((s = strstr(s, needle)) != NULL) {
		n++;
		s += strlen(needle);
	}
	return n;
}

/* witchd with "-c conf" and the given arguments (up to 24). */
static pid_t
spawn_witchd(const char *const args[], char *const env[])
{
	char *av[32];
	int i, n = 0;

	av[n++] = witchd;
	av[n++] = "-c";
	av[n++] = conf;
	for (i = 0; args != NULL && args[i] != NULL && n < 31; i++)
		av[n++] = (char *)args[i];
	av[n] = NULL;
	return th_spawn(tmpdir, witchd, av, env);
}

/* Run witchd -c conf args to completion; returns its exit code. */
static int
run(const char *const args[])
{
	int st = th_wait_exit(spawn_witchd(args, NULL), 20000, tmpdir);

	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* Stop pid with SIGTERM and check it exits 0. */
static void
stop(pid_t pid)
{
	int st;

	assert_int_equal(kill(pid, SIGTERM), 0);
	st = th_wait_exit(pid, 20000, tmpdir);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* Wait until stderr holds needle at least n times; fails after 10 s. */
static void
wait_log(pid_t pid, const char *needle, int n)
{
	uint64_t end = th_now_ms() + 10000;

	while (th_now_ms() < end) {
		if (count(slurp("stderr"), needle) >= n)
			return;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			fail_msg("witchd exited: %s", slurp("stderr"));
		th_sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	fail_msg("no '%s' (x%d) in the log: %s", needle, n, slurp("stderr"));
}

/* The port witchd wrote to tmpdir/port (waits up to 10 s). */
static unsigned
wait_port(pid_t pid)
{
	char pf[512];
	uint64_t end = th_now_ms() + 10000;
	unsigned port = 0;
	char nl = 0;
	FILE *f;
	int i;

	path(pf, sizeof(pf), "port");
	while (th_now_ms() < end) {
		if ((f = fopen(pf, "r")) != NULL) {
			i = fscanf(f, "%u%c", &port, &nl);
			fclose(f);
			if (i == 2 && nl == '\n' && port > 0)
				return port;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid)
			fail_msg("witchd exited early: %s", slurp("stderr"));
		th_sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	fail_msg("no port file from witchd");
	return 0;
}

/*
 * Start witchd with its port file (and "-p 0" unless the configuration
 * file sets the port: port_in_file); returns the port.
 */
static unsigned
start_witchd(pid_t *pidp, const char *const extra[], char *const env[],
    bool port_in_file)
{
	const char *args[32];
	char pf[512];
	int i, n = 0;

	path(pf, sizeof(pf), "port");
	unlink(pf);
	if (!port_in_file) {
		args[n++] = "-p";
		args[n++] = "0";
	}
	args[n++] = "--port-file";
	args[n++] = pf;
	for (i = 0; extra != NULL && extra[i] != NULL && n < 24; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	*pidp = spawn_witchd(args, env);
	return wait_port(*pidp);
}

static unsigned
start(pid_t *pidp, const char *const extra[], char *const env[])
{
	return start_witchd(pidp, extra, env, false);
}

/* Call endpoint on fd; returns the result object (caller decrefs). */
static json_t *
call(int fd, const char *endpoint)
{
	json_t *r, *res;

	assert_int_equal(th_sendf(fd, "{\"id\":7,\"endpoint\":\"%s\"}",
	    endpoint), 0);
	r = th_recv(fd, 0);
	assert_non_null(r);
	res = json_object_get(r, "result");
	if (res == NULL)
		fail_msg("%s: no result", endpoint);
	json_incref(res);
	json_decref(r);
	return res;
}

static json_int_t
status_int(unsigned port, const char *field)
{
	json_t *st;
	json_int_t v;
	int fd = th_connect(port);

	st = call(fd, "status");
	v = json_integer_value(json_object_get(st, field));
	json_decref(st);
	close(fd);
	return v;
}

static int
unix_connect(const char *p)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_true(strlen(p) < sizeof(sun.sun_path));
	memcpy(sun.sun_path, p, strlen(p));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		fail_msg("connect %s: %s", p, strerror(errno));
	return fd;
}

/* ---- --check-config ---------------------------------------------------- */

static void
test_check_good(void **state)
{
	const char *args[] = { "--check-config", NULL };

	(void)state;
	write_conf("# a comment\n\n  port = 9000   # trailing comment\n"
	    "name = \"quoted # name\"\nmax-clients = 50\nidle-timeout = 2.5\n"
	    "output-soft = 64K\noutput-hard = 1M\ntcp = yes\n"
	    "control-socket = none\nlog-level = warning\nprotocols = v2,v1\n");
	assert_int_equal(run(args), 0);
	assert_non_null(strstr(slurp("stderr"), "configuration OK"));
}

static void
test_check_bad(void **state)
{
	const char *args[] = { "--check-config", NULL };
	char want[600];
	const char *err;

	(void)state;
	write_conf("port = 8000\n"
	    "max-clientz = 5\n"		/* 2: unknown key */
	    "port = 8001\n"		/* 3: duplicate */
	    "idle-timeout = soon\n"	/* 4: bad value */
	    "name\n"			/* 5: syntax */
	    "# fine\n"
	    "tcp = maybe\n"		/* 7: bad bool */
	    "inline-builtins = perhaps\n");	/* 8: bad bool */
	assert_int_equal(run(args), 1);
	err = slurp("stderr");
	snprintf(want, sizeof(want), "%s:2: unknown key 'max-clientz'", conf);
	assert_non_null(strstr(err, want));
	snprintf(want, sizeof(want), "%s:3: port: already set on line 1",
	    conf);
	assert_non_null(strstr(err, want));
	snprintf(want, sizeof(want), "%s:4: idle-timeout", conf);
	assert_non_null(strstr(err, want));
	snprintf(want, sizeof(want), "%s:5:", conf);
	assert_non_null(strstr(err, want));
	snprintf(want, sizeof(want), "%s:7: tcp", conf);
	assert_non_null(strstr(err, want));
	snprintf(want, sizeof(want), "%s:8: inline-builtins = perhaps: "
	    "expected yes or no", conf);
	assert_non_null(strstr(err, want));
	/* One line per error, each naming the file. */
	snprintf(want, sizeof(want), "%s:", conf);
	assert_int_equal(count(err, want), 6);
	assert_null(strstr(err, ":6:"));

	/* A value only the library can judge, still with its line. */
	write_conf("output-soft = 2M\noutput-hard = 1M\n");
	assert_int_equal(run(args), 1);
	snprintf(want, sizeof(want), "%s:1: output-soft", conf);
	assert_non_null(strstr(slurp("stderr"), want));
}

static void
test_check_missing(void **state)
{
	char missing[512], *av[5];
	char *av2[] = { witchd, "-p", "0", "--no-control-socket", "-c",
	    missing, NULL };
	int st;

	(void)state;
	path(missing, sizeof(missing), "no-such.conf");
	av[0] = witchd;
	av[1] = "--check-config";
	av[2] = "-c";
	av[3] = missing;
	av[4] = NULL;
	st = th_wait_exit(th_spawn(tmpdir, witchd, av, NULL), 10000, tmpdir);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 1);
	assert_non_null(strstr(slurp("stderr"), missing));
	assert_non_null(strstr(slurp("stderr"), strerror(ENOENT)));

	/* The same without --check-config: nothing starts. */
	st = th_wait_exit(th_spawn(tmpdir, witchd, av2, NULL), 10000, tmpdir);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 1);
	assert_non_null(strstr(slurp("stderr"), missing));
}

/* A broken file: exit 1 with the line, no port file, no socket left. */
static void
test_start_broken(void **state)
{
	char pf[512], ctl[512], want[600];
	const char *args[] = { "-p", "0", "--port-file", pf,
	    "--control-socket", ctl, NULL };

	(void)state;
	path(pf, sizeof(pf), "port");
	path(ctl, sizeof(ctl), "broken.sock");
	unlink(pf);
	write_conf("name = ok\nworkers = many\n");
	assert_int_equal(run(args), 1);
	snprintf(want, sizeof(want), "%s:2: workers", conf);
	assert_non_null(strstr(slurp("stderr"), want));
	assert_int_equal(access(pf, F_OK), -1);
	assert_int_equal(access(ctl, F_OK), -1);
}

/* ---- the start log ------------------------------------------------------ */

/*
 * The start log names each address and port it listens on, counts workers
 * in the singular when there is one, and says one thing about discovery on
 * loopback (nothing to announce), not also the UDP port it would use.
 */
static void
test_start_log(void **state)
{
	const char *extra[] = { "-b", "127.0.0.1", "-w", "1",
	    "--no-control-socket", "--log-level", "info", NULL };
	char want[128];
	const char *log;
	pid_t pid;
	unsigned port;

	(void)state;
	write_conf("");
	port = start(&pid, extra, NULL);
	wait_log(pid, "nothing to announce", 1);
	stop(pid);
	log = slurp("stderr");
	snprintf(want, sizeof(want), "notice: listening on 127.0.0.1 port %u\n",
	    port);
	if (strstr(log, want) == NULL)
		fail_msg("no '%s' in the log: %s", want, log);
	assert_non_null(strstr(log, "serving with 1 worker, poller "));
	assert_int_equal(count(log, "discovery:"), 1);
	assert_null(strstr(log, "UDP port"));
}

/* ---- precedence -------------------------------------------------------- */

static void
test_precedence(void **state)
{
	const char *extra[] = { "--name", "from-flag", "--no-control-socket",
	    NULL };
	json_t *info;
	pid_t pid;
	unsigned port;
	int fd;

	(void)state;
	write_conf("name = from-file\nmax-clients = 7\n");
	port = start(&pid, extra, NULL);
	fd = th_connect(port);
	info = call(fd, "info");
	/* flag > file */
	assert_string_equal(json_string_value(json_object_get(info, "name")),
	    "from-flag");
	/* file > default; default where neither says */
	assert_string_equal(json_string_value(json_object_get(info,
	    "project_id")), "");
	json_decref(info);
	close(fd);
	assert_int_equal(status_int(port, "max_clients"), 7);
	stop(pid);
}

/* ---- SIGHUP ------------------------------------------------------------ */

static void
test_reload(void **state)
{
	const char *extra[] = { "--no-control-socket", "--name", "flag",
	    NULL };
	char want[600];
	const char *err;
	pid_t pid;
	unsigned port;
	int a, b;
	json_t *r;

	(void)state;
	write_conf("port = 0\nmax-clients = 1\nqueue-depth = 100\n"
	    "name = file1\n");
	port = start_witchd(&pid, extra, NULL, true);
	/* One client fills the server. */
	a = th_connect(port);
	th_ping_ok(a);
	b = th_connect(port);
	assert_int_equal(th_send(b, "{\"id\":1,\"endpoint\":\"ping\"}"), 0);
	r = th_recv(b, 0);
	assert_non_null(r);
	assert_string_equal(th_err_code(r), "server_full");
	json_decref(r);
	close(b);

	/*
	 * Live: max-clients; needs restart: port, queue-depth; the name is
	 * set on the command line, which still wins.
	 */
	write_conf("port = 1\nmax-clients = 3\nqueue-depth = 200\n"
	    "name = file2\n");
	assert_int_equal(kill(pid, SIGHUP), 0);
	wait_log(pid, "reloaded", 1);
	err = slurp("stderr");
	assert_non_null(strstr(err, "max-clients: 1 -> 3"));
	assert_non_null(strstr(err, "port: 0 -> 1 needs restart"));
	assert_non_null(strstr(err, "queue-depth: 100 -> 200 needs restart"));
	assert_null(strstr(err, "name:"));
	b = th_connect(port);
	th_ping_ok(b);
	assert_int_equal(status_int(port, "max_clients"), 3);

	/* A now-invalid file: logged with its line, old config kept. */
	write_conf("max-clients = 2\nbogus = 1\n");
	assert_int_equal(kill(pid, SIGHUP), 0);
	wait_log(pid, "reload failed", 1);
	snprintf(want, sizeof(want), "%s:2: unknown key 'bogus'", conf);
	assert_non_null(strstr(slurp("stderr"), want));
	assert_int_equal(status_int(port, "max_clients"), 3);
	th_ping_ok(a);
	th_ping_ok(b);

	/* A vanished file given with -c: also kept out. */
	assert_int_equal(unlink(conf), 0);
	assert_int_equal(kill(pid, SIGHUP), 0);
	wait_log(pid, "reload failed", 2);
	th_ping_ok(a);
	close(a);
	close(b);
	stop(pid);
}

/* ---- control socket ---------------------------------------------------- */

static void
test_control_socket(void **state)
{
	char ctl[512];
	const char *extra[] = { "--control-socket", ctl, NULL };
	struct stat st;
	json_t *info;
	pid_t pid;
	int fd;

	(void)state;
	path(ctl, sizeof(ctl), "ctl/witchd.sock");	/* parent created */
	write_conf("# nothing\n");
	(void)start(&pid, extra, NULL);
	assert_int_equal(lstat(ctl, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);
	fd = unix_connect(ctl);
	th_ping_ok(fd);
	info = call(fd, "info");
	assert_string_equal(json_string_value(json_object_get(info, "name")),
	    "witch");
	json_decref(info);
	close(fd);
	stop(pid);
	assert_int_equal(access(ctl, F_OK), -1);	/* removed */

	/* From the file, another mode, TCP off. */
	{
		char text[700];
		const char *extra2[] = { "--port-file", "/dev/null", NULL };

		snprintf(text, sizeof(text), "tcp = no\ncontrol-socket = %s\n"
		    "control-socket-mode = 0600\n", ctl);
		write_conf(text);
		pid = spawn_witchd(extra2, NULL);
		wait_log(pid, "listening", 1);
		assert_int_equal(lstat(ctl, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		fd = unix_connect(ctl);
		th_ping_ok(fd);
		close(fd);
		stop(pid);
	}
}

/* An explicit control socket that cannot be created fails start-up. */
static void
test_control_required(void **state)
{
	char ctl[512];
	const char *args[] = { "-p", "0", "--control-socket", ctl, NULL };

	(void)state;
	path(ctl, sizeof(ctl), "no/such/dir/witchd.sock");
	write_conf("");
	assert_int_equal(run(args), 1);
	assert_non_null(strstr(slurp("stderr"), ctl));
}

/* A busy port: exit 1, clear message, no control socket left behind. */
static void
test_port_in_use(void **state)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char portstr[16], ctl[512];
	const char *args[] = { "-p", portstr, "--control-socket", ctl, NULL };
	int lfd;

	(void)state;
	path(ctl, sizeof(ctl), "busy.sock");
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(lfd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	snprintf(portstr, sizeof(portstr), "%u", ntohs(sin.sin_port));
	write_conf("");
	assert_int_equal(run(args), 1);
	assert_non_null(strstr(slurp("stderr"), strerror(EADDRINUSE)));
	assert_non_null(strstr(slurp("stderr"), portstr));
	assert_int_equal(access(ctl, F_OK), -1);
	close(lfd);
}

/* ---- sd_notify --------------------------------------------------------- */

/* A datagram socket bound at name ("@..." abstract); returns fd. */
static int
notify_listener(const char *name)
{
	struct sockaddr_un sun;
	socklen_t len;
	size_t n = strlen(name);
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_true(n < sizeof(sun.sun_path));
	memcpy(sun.sun_path, name, n);
	len = offsetof(struct sockaddr_un, sun_path) + n;
	if (name[0] == '@')
		sun.sun_path[0] = '\0';
	else
		len++;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (bind(fd, (struct sockaddr *)&sun, len) == -1)
		fail_msg("bind %s: %s", name, strerror(errno));
	return fd;
}

/*
 * Read datagrams until one contains want (appending all to log); fails
 * after 10 s.
 */
static void
await_notify(int fd, const char *want, char *log, size_t loglen)
{
	uint64_t end = th_now_ms() + 10000;
	struct pollfd pfd = { fd, POLLIN, 0 };
	char buf[1025];
	ssize_t n;

	while (th_now_ms() < end) {
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		strlcat(log, buf, loglen);
		strlcat(log, "|", loglen);
		if (strstr(buf, want) != NULL)
			return;
	}
	fail_msg("no %s from witchd; got: %s; log: %s", want, log,
	    slurp("stderr"));
}

static void
notify_test(const char *name)
{
	const char *extra[] = { "--no-control-socket", NULL };
	char env1[300], env2[] = "WATCHDOG_USEC=200000", log[8192] = "";
	char *env[] = { env1, env2, NULL };
	unsigned port;
	pid_t pid;
	int nfd, i;

	nfd = notify_listener(name);
	snprintf(env1, sizeof(env1), "NOTIFY_SOCKET=%s", name);
	write_conf("");
	port = start(&pid, extra, env);
	await_notify(nfd, "READY=1", log, sizeof(log));
	await_notify(nfd, "STATUS=serving", log, sizeof(log));
	/* Several watchdog pings (interval 200 ms: one every 100 ms). */
	for (i = 0; i < 3; i++)
		await_notify(nfd, "WATCHDOG=1", log, sizeof(log));
	/* A client changes the status line. */
	{
		int fd = th_connect(port);

		th_ping_ok(fd);
		await_notify(nfd, "STATUS=serving 1 client", log,
		    sizeof(log));
		close(fd);
	}
	/* SIGHUP: RELOADING=1 then READY=1 again. */
	assert_int_equal(kill(pid, SIGHUP), 0);
	await_notify(nfd, "RELOADING=1", log, sizeof(log));
	await_notify(nfd, "READY=1", log, sizeof(log));
	assert_int_equal(kill(pid, SIGTERM), 0);
	await_notify(nfd, "STOPPING=1", log, sizeof(log));
	assert_true(WIFEXITED(th_wait_exit(pid, 20000, tmpdir)));
	close(nfd);
	if (name[0] != '@')
		unlink(name);
}

static void
test_notify_path(void **state)
{
	char name[512];

	(void)state;
	path(name, sizeof(name), "notify");
	notify_test(name);
}

static void
test_notify_abstract(void **state)
{
	char name[64];

	(void)state;
	snprintf(name, sizeof(name), "@witch-test-notify-%ld",
	    (long)getpid());
	notify_test(name);
}

/* No NOTIFY_SOCKET: nothing is sent and nothing breaks. */
static void
test_notify_absent(void **state)
{
	const char *extra[] = { "--no-control-socket", NULL };
	pid_t pid;
	int fd;

	(void)state;
	write_conf("");
	fd = th_connect(start(&pid, extra, NULL));
	th_ping_ok(fd);
	close(fd);
	stop(pid);
}

/* ---- socket activation ------------------------------------------------- */

static const char *
find_in_path(const char *prog)
{
	static char buf[1024];
	const char *p = getenv("PATH");
	size_t len;

	if (p == NULL)
		p = "/usr/bin:/bin";
	while (*p != '\0') {
		len = strcspn(p, ":");
		snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, p, prog);
		if (access(buf, X_OK) == 0)
			return buf;
		p += len;
		if (*p == ':')
			p++;
	}
	return NULL;
}

/* A port that was free a moment ago (systemd-socket-activate binds it). */
static unsigned
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

/* Connect to 127.0.0.1:port, retrying while nothing listens yet. */
static int
connect_retry(unsigned port, pid_t pid)
{
	struct sockaddr_in sin;
	uint64_t end = th_now_ms() + 10000;
	int fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	while (th_now_ms() < end) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(fd >= 0);
		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			return fd;
		close(fd);
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		th_sleep_ms(20);
	}
	return -1;
}

static void
test_socket_activate(void **state)
{
	const char *sa = find_in_path("systemd-socket-activate");
	char tool[1024], listen_arg[64], *av[12];
	unsigned port;
	json_t *info;
	pid_t pid;
	int fd = -1, attempt;

	(void)state;
	if (sa == NULL) {
		fprintf(stderr, "systemd-socket-activate not found: skipped\n");
		skip();
	}
	strlcpy(tool, sa, sizeof(tool));
	write_conf("name = activated\nport = 1\n");	/* port unused */
	for (attempt = 0; attempt < 3 && fd < 0; attempt++) {
		port = free_port();
		snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:%u", port);
		av[0] = tool;
		av[1] = "-l";
		av[2] = listen_arg;
		av[3] = witchd;
		av[4] = "-c";
		av[5] = conf;
		av[6] = "--no-control-socket";
		av[7] = NULL;
		pid = th_spawn(tmpdir, tool, av, NULL);
		fd = connect_retry(port, pid);
		if (fd < 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
	assert_true(fd >= 0);
	/* The connection that triggered the start is served. */
	th_ping_ok(fd);
	info = call(fd, "info");
	assert_string_equal(json_string_value(json_object_get(info, "name")),
	    "activated");
	json_decref(info);
	close(fd);
	assert_non_null(strstr(slurp("stderr"), "socket activation"));
	stop(pid);
}

/* A stale LISTEN_PID (another process) is ignored: witchd binds itself. */
static void
test_listen_pid_other(void **state)
{
	const char *extra[] = { "--no-control-socket", NULL };
	char e1[] = "LISTEN_PID=1", e2[] = "LISTEN_FDS=1";
	char *env[] = { e1, e2, NULL };
	pid_t pid;
	int fd;

	(void)state;
	write_conf("");
	fd = th_connect(start(&pid, extra, env));
	th_ping_ok(fd);
	close(fd);
	stop(pid);
	assert_null(strstr(slurp("stderr"), "socket activation:"));
}

/* ---- logging ----------------------------------------------------------- */

static void
test_journal_format(void **state)
{
	const char *extra[] = { "--no-control-socket", NULL };
	char errp[512], env1[128];
	char *env[] = { env1, NULL };
	const char *log, *line;
	struct stat st;
	pid_t pid;
	int fd;

	(void)state;
	path(errp, sizeof(errp), "stderr");
	fd = open(errp, O_WRONLY | O_CREAT, 0600);	/* inode kept */
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	snprintf(env1, sizeof(env1), "JOURNAL_STREAM=%llu:%llu",
	    (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	write_conf("");
	(void)start(&pid, extra, env);
	stop(pid);
	log = slurp("stderr");
	assert_true(log[0] != '\0');
	for (line = log; *line != '\0'; line = strchr(line, '\n') + 1) {
		if (line[0] != '<' || line[1] < '0' || line[1] > '7' ||
		    line[2] != '>')
			fail_msg("not a journal line: %.60s", line);
		if (strchr(line, '\n') == NULL)
			break;
	}
	assert_non_null(strstr(log, "<5>"));

	/* Without it (or naming another stream): plain timestamped lines. */
	snprintf(env1, sizeof(env1), "JOURNAL_STREAM=1:1");
	(void)start(&pid, extra, env);
	stop(pid);
	log = slurp("stderr");
	assert_true(log[0] >= '0' && log[0] <= '9');
	assert_non_null(strstr(log, "witchd["));
	assert_non_null(strstr(log, ": notice: "));
}

/* --log-level from the file, and -v overriding it. */
static void
test_log_level(void **state)
{
	const char *extra[] = { "--no-control-socket", NULL };
	const char *extra_v[] = { "--no-control-socket", "-v", NULL };
	pid_t pid;

	(void)state;
	write_conf("log-level = warning\n");
	(void)start(&pid, extra, NULL);
	stop(pid);
	assert_null(strstr(slurp("stderr"), "notice:"));
	(void)start(&pid, extra_v, NULL);
	stop(pid);
	assert_non_null(strstr(slurp("stderr"), "debug:"));
}

/*
 * The discovery settings: flags and keys validated (bad flag: exit 2 with
 * the reason; bad key: exit 1 with the line), shown by --check-config -v
 * with where they came from, and reported as needing a restart by SIGHUP.
 * witchd binds 127.0.0.1 here, so its announcer sends nothing.
 */
static void
test_discovery_settings(void **state)
{
	const char *bad_iv[] = { "--check-config", "--discovery-interval",
	    "0.01", NULL };
	const char *bad_adv[] = { "--check-config", "--advertise", "nope",
	    NULL };
	const char *bad_port[] = { "--check-config", "--discovery-port", "0",
	    NULL };
	const char *check[] = { "--check-config", NULL };
	const char *shown[] = { "--check-config", "-v", "--no-discovery",
	    "--discovery-port", "9999", "--discovery-interval", "0.5",
	    "--advertise", "192.0.2.1", NULL };
	const char *extra[] = { "--no-control-socket", NULL };
	char want[600];
	const char *out;
	pid_t pid;

	(void)state;
	write_conf("");
	assert_int_equal(run(bad_iv), 2);
	assert_non_null(strstr(slurp("stderr"), "--discovery-interval 0.01: "
	    "expected seconds from 0.1 to 3600"));
	assert_int_equal(run(bad_adv), 2);
	assert_non_null(strstr(slurp("stderr"), "--advertise nope: expected "
	    "a numeric IPv4 or IPv6 address"));
	assert_int_equal(run(bad_port), 2);
	assert_non_null(strstr(slurp("stderr"), "--discovery-port 0"));

	write_conf("discovery = perhaps\ndiscovery-interval = 3601\n"
	    "advertise = host.example\n");
	assert_int_equal(run(check), 1);
	snprintf(want, sizeof(want), "%s:1: discovery", conf);
	assert_non_null(strstr(slurp("stderr"), want));
	snprintf(want, sizeof(want), "%s:2: discovery-interval", conf);
	assert_non_null(strstr(slurp("stderr"), want));
	snprintf(want, sizeof(want), "%s:3: advertise", conf);
	assert_non_null(strstr(slurp("stderr"), want));

	/*
	 * Flags win over the file; -v shows every value and its source, the
	 * option as typed (--no-discovery, not --discovery).
	 */
	write_conf("discovery = yes\ndiscovery-interval = 10\n"
	    "advertise = 2001:db8::1\n");
	assert_int_equal(run(shown), 0);
	out = slurp("stdout");
	assert_non_null(strstr(out, "discovery = no\t# --no-discovery\n"));
	assert_non_null(strstr(out, "log-level = debug\t# -v\n"));
	assert_non_null(strstr(out, "discovery-port = 9999\t# "
	    "--discovery-port\n"));
	assert_non_null(strstr(out, "discovery-interval = 0.5\t# "
	    "--discovery-interval\n"));
	assert_non_null(strstr(out, "advertise = \"192.0.2.1\"\t# "
	    "--advertise\n"));
	write_conf("discovery-interval = 0.25\n");
	assert_int_equal(run((const char *[]){ "--check-config", "-v",
	    NULL }), 0);
	out = slurp("stdout");
	snprintf(want, sizeof(want), "discovery-interval = 0.25\t# %s:1\n",
	    conf);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "discovery = yes\t# default\n"));
	assert_non_null(strstr(out, "discovery-port = 8889\t# default\n"));
	assert_non_null(strstr(out, "advertise = \"\"\t# default\n"));

	/* SIGHUP: discovery settings need a restart. */
	write_conf("discovery-interval = 1\n");
	(void)start(&pid, extra, NULL);
	write_conf("discovery-interval = 3\ndiscovery = no\n");
	assert_int_equal(kill(pid, SIGHUP), 0);
	wait_log(pid, "reloaded", 1);
	assert_non_null(strstr(slurp("stderr"), "discovery-interval: 1 -> 3 "
	    "needs restart"));
	assert_non_null(strstr(slurp("stderr"), "discovery: yes -> no needs "
	    "restart"));
	stop(pid);
}

/*
 * The peer settings: --peer-seed repeats (flags and keys add up), bad
 * values are refused with the reason or the line, -v shows them.
 */
static void
test_peer_settings(void **state)
{
	const char *bad_seed[] = { "--check-config", "--peer-seed", "nohost",
	    NULL };
	const char *bad_hb[] = { "--check-config", "--peer-heartbeat", "0.01",
	    NULL };
	const char *shown[] = { "--check-config", "-v", "--peer", "yes",
	    "--peer-seed", "10.0.0.1:8888", "--peer-seed", "[::1]:9000",
	    "--peer-heartbeat", "0.5", NULL };
	const char *check[] = { "--check-config", "-v", NULL };
	char want[600];
	const char *out;

	(void)state;
	write_conf("");
	assert_int_equal(run(bad_seed), 2);
	assert_non_null(strstr(slurp("stderr"), "--peer-seed nohost: "
	    "expected HOST:PORT"));
	assert_int_equal(run(bad_hb), 2);
	assert_non_null(strstr(slurp("stderr"), "--peer-heartbeat 0.01: "
	    "expected seconds from 0.05 to 60"));
	assert_int_equal(run(shown), 0);
	out = slurp("stdout");
	assert_non_null(strstr(out, "peer = yes\t# --peer\n"));
	assert_non_null(strstr(out, "peer-seed = \"10.0.0.1:8888,[::1]:9000\""
	    "\t# --peer-seed\n"));
	assert_non_null(strstr(out, "peer-heartbeat = 0.5\t# "
	    "--peer-heartbeat\n"));
	/* In the file, each line adds a seed; a bad one names its line. */
	write_conf("peer = yes\npeer-seed = a.example:1\n"
	    "peer-seed = b.example:2\n");
	assert_int_equal(run(check), 0);
	assert_non_null(strstr(slurp("stdout"),
	    "peer-seed = \"a.example:1,b.example:2\""));
	write_conf("peer-seed = a.example:1\npeer-seed = b.example:0\n");
	assert_int_equal(run(check), 1);
	snprintf(want, sizeof(want), "%s:2: peer-seed", conf);
	assert_non_null(strstr(slurp("stderr"), want));
}

static void
cleanup(void)
{
	const char *names[] = { "stdout", "stderr", "port", "witchd.conf",
	    "witchd.conf.new", "notify", "ctl/witchd.sock", "ctl" };
	char p[512];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		path(p, sizeof(p), names[i]);
		if (unlink(p) == -1 && errno == EISDIR)
			rmdir(p);
		rmdir(p);
	}
	rmdir(tmpdir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_good),
		cmocka_unit_test(test_check_bad),
		cmocka_unit_test(test_check_missing),
		cmocka_unit_test(test_start_broken),
		cmocka_unit_test(test_start_log),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_control_socket),
		cmocka_unit_test(test_control_required),
		cmocka_unit_test(test_port_in_use),
		cmocka_unit_test(test_notify_path),
		cmocka_unit_test(test_notify_abstract),
		cmocka_unit_test(test_notify_absent),
		cmocka_unit_test(test_socket_activate),
		cmocka_unit_test(test_listen_pid_other),
		cmocka_unit_test(test_journal_format),
		cmocka_unit_test(test_log_level),
		cmocka_unit_test(test_discovery_settings),
		cmocka_unit_test(test_peer_settings),
	};
	const char *bd = getenv("WITCH_BUILDDIR");
	const char *td = getenv("TMPDIR");
	int rc;

	if (bd == NULL || *bd == '\0')
		return 77;
	snprintf(witchd, sizeof(witchd), "%s/src/witchd/witchd", bd);
	if (access(witchd, X_OK) != 0) {
		fprintf(stderr, "test_config: %s: %s\n", witchd,
		    strerror(errno));
		return 77;
	}
	/* Short: unix socket paths must fit in 108 bytes. */
	snprintf(tmpdir, sizeof(tmpdir), "%s/wcf.XXXXXX",
	    td != NULL && strlen(td) < 60 ? td : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	path(conf, sizeof(conf), "witchd.conf");
	signal(SIGPIPE, SIG_IGN);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	cleanup();
	return rc;
}
