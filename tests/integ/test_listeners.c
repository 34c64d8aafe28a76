/*
 * test_listeners: unix stream sockets (with a stale socket file, a busy
 * path, permissions, cleanup) and adopted listeners (socket activation).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integ/harness.h"

static char dir[64];
static char path[128];

static int
setup(void **state)
{
	strlcpy(dir, "/tmp/witch-lst-XXXXXX", sizeof(dir));
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/w.sock", dir);
	return 0;
}

static int
teardown(void **state)
{
	unlink(path);
	rmdir(dir);
	return 0;
}

static int
unix_connect(const char *p)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strlcpy(sun.sun_path, p, sizeof(sun.sun_path));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
ping_ok(int fd, int id)
{
	json_t *r;

	assert_int_equal(th_sendf(fd, "{\"id\":%d,\"endpoint\":\"ping\"}", id),
	    0);
	r = th_recv(fd, 0);
	assert_non_null(r);
	assert_int_equal(th_id(r), id);
	assert_true(json_is_true(json_object_get(json_object_get(r, "result"),
	    "pong")));
	json_decref(r);
}

static witch_server_t *
unix_server(unsigned mode, int *rc, witch_error_t *err)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;

	assert_int_equal(witch_server_config_set_listen_tcp(cfg, false), 0);
	assert_int_equal(witch_server_config_set_unix_path(cfg, path, mode),
	    0);
	assert_int_equal(witch_server_new(&srv, cfg), 0);
	witch_server_config_free(cfg);
	*rc = witch_server_start(srv, err);
	return srv;
}

static void
test_unix_socket(void **state)
{
	witch_server_t *srv, *other;
	witch_error_t err;
	struct stat st;
	int rc, fd;

	srv = unix_server(0600, &rc, &err);
	assert_int_equal(rc, 0);
	assert_int_equal(witch_server_port(srv), 0);	/* no TCP */
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	fd = unix_connect(path);
	assert_true(fd >= 0);
	ping_ok(fd, 1);
	ping_ok(fd, 2);

	/* A second server on the same path is refused, the first unharmed. */
	other = unix_server(0600, &rc, &err);
	assert_int_equal(rc, WITCH_EADDRINUSE);
	assert_non_null(strstr(err.text, path));
	witch_server_free(other);
	ping_ok(fd, 3);
	close(fd);

	/* Stop removes the socket file. */
	witch_server_free(srv);
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void
test_unix_stale_file(void **state)
{
	struct sockaddr_un sun;
	witch_server_t *srv;
	witch_error_t err;
	int rc, fd;

	/* A socket file nobody listens on any more, as a crash leaves it. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	assert_int_equal(unix_connect(path), -1);

	srv = unix_server(0660, &rc, &err);
	assert_int_equal(rc, 0);
	fd = unix_connect(path);
	assert_true(fd >= 0);
	ping_ok(fd, 1);
	close(fd);
	witch_server_free(srv);
}

/* A listening TCP socket on 127.0.0.1, as systemd would pass it. */
static int
tcp_listener(unsigned *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static void
test_adopt(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	unsigned port;
	int lfd, fd, notlisten;

	assert_int_equal(witch_server_config_set_listen_tcp(cfg, false), 0);
	assert_int_equal(witch_server_new(&srv, cfg), 0);
	witch_server_config_free(cfg);
	/* Not a listening socket: refused, and the fd is closed. */
	notlisten = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(witch_server_adopt_listener(srv, notlisten),
	    WITCH_EINVAL);
	assert_int_equal(fcntl(notlisten, F_GETFD), -1);
	lfd = tcp_listener(&port);
	assert_int_equal(witch_server_adopt_listener(srv, lfd), 0);
	assert_int_equal(witch_server_start(srv, NULL), 0);
	assert_int_equal(witch_server_port(srv), port);
	fd = th_connect(port);
	ping_ok(fd, 7);
	close(fd);
	witch_server_free(srv);
	/* The server owned the adopted descriptor and closed it. */
	assert_int_equal(fcntl(lfd, F_GETFD), -1);
}

static void
test_nothing_to_listen_on(void **state)
{
	witch_server_config_t *cfg = th_config();
	witch_server_t *srv;
	witch_error_t err;

	assert_int_equal(witch_server_config_set_listen_tcp(cfg, false), 0);
	assert_int_equal(witch_server_new(&srv, cfg), 0);
	witch_server_config_free(cfg);
	assert_int_equal(witch_server_start(srv, &err), WITCH_EINVAL);
	assert_non_null(strstr(err.text, "nothing to listen on"));
	witch_server_free(srv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unix_socket, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unix_stale_file, setup,
		    teardown),
		cmocka_unit_test(test_adopt),
		cmocka_unit_test(test_nothing_to_listen_on),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
