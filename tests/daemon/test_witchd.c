/*
 * test_witchd: witchd as a black box.  Each test fork/execs
 * $WITCH_BUILDDIR/src/witchd/witchd with its output in files, learns the
 * port from --port-file, talks to it over TCP and checks exit statuses:
 * signals drain and exit 0, usage errors exit 2 with a message, a busy
 * port fails clearly, and the flags take effect.  Skipped (77) without
 * WITCH_BUILDDIR.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <witch/version.h>

#include "integ/harness.h"

static char witchd[4096];
static char tmpdir[256];

static void
path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tmpdir, name);
}

/*
 * Start witchd with argv (NULL-terminated, argv[0] ignored), stdout and
 * stderr to files in tmpdir.
 */
static pid_t
spawn(char *const argv[])
{
	char *av[32];
	int i;

	av[0] = witchd;
	for (i = 1; argv[i] != NULL && i < 31; i++)
		av[i] = argv[i];
	av[i] = NULL;
	return th_spawn(tmpdir, witchd, av, NULL);
}

/* Contents of a file in tmpdir (static buffer, NUL-terminated). */
static const char *
slurp(const char *name)
{
	char p[512];

	path(p, sizeof(p), name);
	return th_slurp(p);
}

/* Run witchd with args to completion; returns the exit code. */
static int
run(char *const argv[])
{
	int st = th_wait_exit(spawn(argv), 10000, tmpdir);

	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* Start a daemon with -p 0 --port-file and extra args; return port. */
static unsigned
start_daemon(pid_t *pidp, const char *const extra[])
{
	char pf[512], *av[32];
	uint64_t end;
	unsigned port = 0;
	char nl = 0;
	FILE *f;
	int i, n = 0;

	path(pf, sizeof(pf), "port");
	unlink(pf);
	av[n++] = witchd;
	av[n++] = "-p";
	av[n++] = "0";
	av[n++] = "--port-file";
	av[n++] = pf;
	for (i = 0; extra != NULL && extra[i] != NULL && n < 31; i++)
		av[n++] = (char *)extra[i];
	av[n] = NULL;
	*pidp = spawn(av);
	/* The file is complete once it holds "PORT\n". */
	end = th_now_ms() + 10000;
	while (th_now_ms() < end) {
		if ((f = fopen(pf, "r")) != NULL) {
			i = fscanf(f, "%u%c", &port, &nl);
			fclose(f);
			if (i == 2 && nl == '\n' && port > 0)
				return port;
		}
		if (waitpid(*pidp, NULL, WNOHANG) == *pidp)
			fail_msg("witchd exited early: %s", slurp("stderr"));
		th_sleep_ms(10);
	}
	kill(*pidp, SIGKILL);
	waitpid(*pidp, NULL, 0);
	fail_msg("no port file from witchd");
	return 0;
}

static void
expect_closing(int fd, const char *reason)
{
	json_t *r = th_recv(fd, 0);

	assert_non_null(r);
	assert_string_equal(json_string_value(json_object_get(r, "event")),
	    "closing");
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(r, "data"), "reason")), reason);
	json_decref(r);
	assert_int_equal(th_wait_eof(fd, 5000), 1);
}

/* A signal drains: the client gets closing/shutdown, witchd exits 0. */
static void
signal_test(int sig)
{
	pid_t pid;
	unsigned port;
	uint64_t t0;
	int fd, st;

	port = start_daemon(&pid, NULL);
	fd = th_connect(port);
	th_ping_ok(fd);
	t0 = th_now_ms();
	assert_int_equal(kill(pid, sig), 0);
	expect_closing(fd, "shutdown");
	close(fd);
	st = th_wait_exit(pid, 10000, tmpdir);
	assert_true(th_now_ms() - t0 < 10000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_non_null(strstr(slurp("stderr"), sig == SIGINT ? "SIGINT" :
	    "SIGTERM"));
}

static void
test_sigterm(void **state)
{
	signal_test(SIGTERM);
}

static void
test_sigint(void **state)
{
	signal_test(SIGINT);
}

static void
test_help_version(void **state)
{
	char *help[] = { "", "--help", NULL };
	char *h[] = { "", "-h", NULL };
	char *ver[] = { "", "--version", NULL };
	char want[64];

	assert_int_equal(run(help), 0);
	assert_non_null(strstr(slurp("stdout"), "--max-frame"));
	assert_non_null(strstr(slurp("stdout"), "--port-file"));
	assert_int_equal(run(h), 0);
	assert_non_null(strstr(slurp("stdout"), "usage: witchd"));
	assert_int_equal(run(ver), 0);
	snprintf(want, sizeof(want), "witchd %s", WITCH_VERSION_STRING);
	assert_non_null(strstr(slurp("stdout"), want));
}

static void
test_bad_args(void **state)
{
	char *bogus[] = { "", "--bogus", NULL };
	char *port[] = { "", "--port", "70000", NULL };
	char *frame[] = { "", "--max-frame", "0", NULL };
	char *frame2[] = { "", "--max-frame", "67108865", NULL };
	char *workers[] = { "", "--workers", "x", NULL };
	char *extra[] = { "", "stray", NULL };
	char *idle[] = { "", "--idle-timeout", "-1", NULL };
	char *limits[] = { "", "--output-soft", "10000", "--output-hard",
	    "5000", NULL };

	/* One line pointing at --help, not the whole help. */
	assert_int_equal(run(bogus), 2);
	assert_string_equal(slurp("stderr"), "witchd: unknown option "
	    "'--bogus' (see 'witchd --help')\n");
	assert_int_equal(run(port), 2);
	assert_non_null(strstr(slurp("stderr"), "--port 70000"));
	assert_int_equal(run(frame), 2);
	assert_non_null(strstr(slurp("stderr"), "--max-frame 0"));
	assert_int_equal(run(frame2), 2);
	assert_non_null(strstr(slurp("stderr"), "--max-frame"));
	assert_int_equal(run(workers), 2);
	assert_non_null(strstr(slurp("stderr"), "--workers x"));
	assert_int_equal(run(extra), 2);
	assert_non_null(strstr(slurp("stderr"), "stray"));
	assert_int_equal(run(idle), 2);
	assert_non_null(strstr(slurp("stderr"), "--idle-timeout"));
	assert_int_equal(run(limits), 2);
	assert_non_null(strstr(slurp("stderr"), "--output-soft"));
}

static void
test_port_in_use(void **state)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char portstr[16];
	char *av[] = { "", "-p", portstr, NULL };
	int lfd, rc;

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(lfd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	snprintf(portstr, sizeof(portstr), "%u", ntohs(sin.sin_port));
	rc = run(av);
	assert_int_not_equal(rc, 0);
	assert_non_null(strstr(slurp("stderr"), strerror(EADDRINUSE)));
	assert_non_null(strstr(slurp("stderr"), portstr));
	close(lfd);
}

/* --name, --max-clients and --max-frame take effect. */
static void
test_flags(void **state)
{
	static const char *const extra[] = { "--name", "daemon-test",
	    "--max-clients", "1", "--max-frame", "100", "-w", "1", NULL };
	unsigned char frame[4 + 200];
	char payload[200];
	pid_t pid;
	unsigned port;
	json_t *r;
	int a, b, st;

	port = start_daemon(&pid, extra);
	a = th_connect(port);
	assert_int_equal(th_send(a, "{\"id\":2,\"endpoint\":\"info\"}"), 0);
	r = th_recv(a, 0);
	assert_non_null(r);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    r, "result"), "name")), "daemon-test");
	json_decref(r);

	/* One client at most: the second is told server_full. */
	b = th_connect(port);
	r = th_recv(b, 0);
	assert_non_null(r);
	assert_string_equal(th_err_code(r), "server_full");
	json_decref(r);
	assert_int_equal(th_wait_eof(b, 5000), 1);
	close(b);

	/* A 200-byte frame is over --max-frame 100. */
	memset(payload, ' ', sizeof(payload));
	memcpy(payload, "{\"id\":3,\"endpoint\":\"ping\"}", 26);
	th_frame(frame, payload, sizeof(payload));
	assert_int_equal(th_send_raw(a, frame, sizeof(frame)), 0);
	r = th_recv(a, 0);
	assert_non_null(r);
	assert_string_equal(th_err_code(r), "frame_too_large");
	json_decref(r);
	assert_int_equal(th_wait_eof(a, 5000), 1);
	close(a);

	/* A frame of exactly 100 bytes is still fine. */
	a = th_connect(port);
	th_frame(frame, payload, 100);
	assert_int_equal(th_send_raw(a, frame, 104), 0);
	r = th_recv(a, 0);
	assert_non_null(r);
	assert_int_equal(th_id(r), 3);
	assert_null(th_err_code(r));
	json_decref(r);
	close(a);

	assert_int_equal(kill(pid, SIGTERM), 0);
	st = th_wait_exit(pid, 10000, tmpdir);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void
cleanup(void)
{
	char p[512];

	path(p, sizeof(p), "stdout");
	unlink(p);
	path(p, sizeof(p), "stderr");
	unlink(p);
	path(p, sizeof(p), "port");
	unlink(p);
	rmdir(tmpdir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sigterm),
		cmocka_unit_test(test_sigint),
		cmocka_unit_test(test_help_version),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_port_in_use),
		cmocka_unit_test(test_flags),
	};
	const char *bd = getenv("WITCH_BUILDDIR");
	const char *td = getenv("TMPDIR");
	int rc;

	if (bd == NULL || *bd == '\0')
		return 77;
	snprintf(witchd, sizeof(witchd), "%s/src/witchd/witchd", bd);
	if (access(witchd, X_OK) != 0) {
		fprintf(stderr, "test_witchd: %s: %s\n", witchd,
		    strerror(errno));
		return 77;
	}
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_witchd.XXXXXX",
	    td != NULL ? td : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	signal(SIGPIPE, SIG_IGN);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	cleanup();
	return rc;
}
