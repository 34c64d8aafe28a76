/*
 * net/sock.c: socket helpers.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <witch/error.h>

#include "net/sock.h"

/* Liveness: TCP keepalive and user timeout on every connection. */
#define KEEPIDLE_S 60
#define KEEPINTVL_S 10
#define KEEPCNT 6
#define USER_TIMEOUT_MS 120000

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

/* Make fd non-blocking and close-on-exec (for systems without accept4). */
static int
set_nonblock_cloexec(int fd)
{
	int fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
		return -1;
	return 0;
}

/* Parse a numeric address into ss; 0 or -1. */
static int
make_addr(const char *addr, unsigned port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

int
witch__sock_listen(const char *addr, unsigned port, int *fdp,
    unsigned *bound_port, witch_error_t *err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = -1, on = 1, rc, saved;

	if (make_addr(addr, port, &ss, &len) != 0) {
		rc = WITCH_EINVAL;
		if (err != NULL) {
			err->code = rc;
			snprintf(err->text, sizeof(err->text),
			    "bind address '%s' is not a numeric address", addr);
		}
		return rc;
	}
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd == -1 || set_nonblock_cloexec(fd) == -1)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(fd, 511) == -1)
		goto fail;
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		goto fail;
	*bound_port = ntohs(ss.ss_family == AF_INET ?
	    ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
	*fdp = fd;
	return 0;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	rc = saved == EADDRINUSE ? WITCH_EADDRINUSE : WITCH_ESYSTEM;
	if (err != NULL) {
		err->code = rc;
		snprintf(err->text, sizeof(err->text), "cannot listen on %s "
		    "port %u: %s", addr, port, strerror(saved));
	}
	errno = saved;
	return rc;
}

int
witch__sock_listen_unix(const char *path, unsigned mode, int *fdp,
    witch_error_t *err)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd = -1, probe, saved, rc;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	/* A socket file left behind by a dead server is replaced. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sun,
		    sizeof(sun)) == 0) {
			close(probe);
			errno = EADDRINUSE;
			goto fail;
		}
		if (probe >= 0)
			close(probe);
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd == -1 || set_nonblock_cloexec(fd) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		goto fail;
	if (chmod(path, mode) == -1 || listen(fd, 511) == -1) {
		saved = errno;
		unlink(path);
		errno = saved;
		goto fail;
	}
	*fdp = fd;
	return 0;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	rc = saved == EADDRINUSE ? WITCH_EADDRINUSE : WITCH_ESYSTEM;
	if (err != NULL) {
		err->code = rc;
		snprintf(err->text, sizeof(err->text), "cannot listen on unix "
		    "socket %s: %s", path, saved == EADDRINUSE ?
		    "another server is listening there" : strerror(saved));
	}
	errno = saved;
	return rc;
}

int
witch__sock_check_listening(int fd, int *local)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int type = 0, acc = 0;
	socklen_t tl = sizeof(type), al = sizeof(acc);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == -1 ||
	    type != SOCK_STREAM || getsockname(fd, (struct sockaddr *)&ss,
	    &len) == -1)
		return WITCH_EINVAL;
#ifdef SO_ACCEPTCONN
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0 &&
	    !acc)
		return WITCH_EINVAL;
#endif
	if (set_nonblock_cloexec(fd) == -1)
		return WITCH_EINVAL;
	*local = ss.ss_family == AF_UNIX;
	return 0;
}

int
witch__sock_peer_creds(int fd, long *uid, long *pid)
{
	*uid = *pid = -1;
#if HAVE_DECL_SO_PEERCRED
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0) {
		*uid = uc.uid;
		*pid = uc.pid;
		return 0;
	}
#else
	uid_t u;
	gid_t g;

	if (getpeereid(fd, &u, &g) == 0) {
		*uid = u;
		return 0;
	}
#endif
	return -1;
}

int
witch__addr_is_numeric(const char *s)
{
	struct in6_addr a6;
	struct in_addr a4;

	return s != NULL && (inet_pton(AF_INET, s, &a4) == 1 ||
	    inet_pton(AF_INET6, s, &a6) == 1);
}

int
witch__sock_peer_is_loopback(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len) == -1)
		return 0;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >>
		    24) == 127;
	if (ss.ss_family == AF_INET6) {
		const struct in6_addr *a =
		    &((struct sockaddr_in6 *)&ss)->sin6_addr;

		if (IN6_IS_ADDR_LOOPBACK(a))
			return 1;
		if (IN6_IS_ADDR_V4MAPPED(a))
			return a->s6_addr[12] == 127;
	}
	return ss.ss_family == AF_UNIX;
}

/* "addr:port" (or "[addr]:port") of ss. */
static void
format_peer(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)ss;

		inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
		port = ntohs(s->sin_port);
		snprintf(out, outlen, "%s:%u", host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)ss;

		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
		port = ntohs(s->sin6_port);
		snprintf(out, outlen, "[%s]:%u", host, port);
	} else
		strlcpy(out, "local", outlen);
}

int
witch__sock_accept(int lfd, char *peer, size_t peerlen)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd;

#ifdef HAVE_ACCEPT4
	fd = accept4(lfd, (struct sockaddr *)&ss, &len,
	    SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
	fd = accept(lfd, (struct sockaddr *)&ss, &len);
	if (fd != -1 && set_nonblock_cloexec(fd) == -1) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
#endif
	if (fd != -1)
		format_peer(&ss, peer, peerlen);
	return fd;
}

void
witch__sock_tune(int fd)
{
	int on = 1;
	int v;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
#if HAVE_DECL_TCP_KEEPIDLE
	v = KEEPIDLE_S;
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof(v));
#endif
#if HAVE_DECL_TCP_KEEPINTVL
	v = KEEPINTVL_S;
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof(v));
#endif
#if HAVE_DECL_TCP_KEEPCNT
	v = KEEPCNT;
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof(v));
#endif
#if HAVE_DECL_TCP_USER_TIMEOUT
	v = USER_TIMEOUT_MS;
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &v, sizeof(v));
#endif
#if HAVE_DECL_SO_NOSIGPIPE
	setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof(on));
#endif
	(void)v;
}

int
witch__sock_reserve_fd(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

ssize_t
witch__sock_writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct msghdr msg;

	/* One buffer (the usual case now): send(2) skips the msghdr copy. */
	if (iovcnt == 1)
		return send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = (struct iovec *)(uintptr_t)iov;
	msg.msg_iovlen = iovcnt;
	return sendmsg(fd, &msg, MSG_NOSIGNAL);
}
