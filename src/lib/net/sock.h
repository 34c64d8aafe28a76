/*
 * net/sock.h: socket helpers (listen, accept, options).
 */
#ifndef WITCH__NET_SOCK_H
#define WITCH__NET_SOCK_H

#include <stddef.h>
#include <sys/socket.h>

#include <witch/error.h>

/*
 * Create a non-blocking, close-on-exec listening TCP socket bound to the numeric
 * address addr and port (0: any free port).  Stores the fd and the bound
 * port.  Returns 0, WITCH_EADDRINUSE, WITCH_EINVAL or WITCH_ESYSTEM with
 * err (may be NULL) explaining.
 */
int witch__sock_listen(const char *addr, unsigned port, int *fd,
    unsigned *bound_port, witch_error_t *err);
/*
 * Create a non-blocking, close-on-exec listening unix stream socket at path with
 * permissions mode.  A stale socket file is removed first; if a server
 * answers there, WITCH_EADDRINUSE.  0, WITCH_EADDRINUSE or WITCH_ESYSTEM.
 */
int witch__sock_listen_unix(const char *path, unsigned mode, int *fd,
    witch_error_t *err);
/*
 * Check that fd is a listening stream socket; make it non-blocking and
 * close-on-exec.  Sets *local for AF_UNIX.  0 or WITCH_EINVAL.
 */
int witch__sock_check_listening(int fd, int *local);
/* Credentials of a unix-socket peer: 0, or -1 when unknown. */
int witch__sock_peer_creds(int fd, long *uid, long *pid);
/* True if s is a numeric IPv4 or IPv6 address.  Pure; any thread. */
int witch__addr_is_numeric(const char *s);
/*
 * True if the peer of connected socket fd is on this host: a loopback
 * address (IPv4 127/8, ::1, or v4-mapped 127/8) or a unix socket.
 */
int witch__sock_peer_is_loopback(int fd);

/*
 * Accept one connection, non-blocking and close-on-exec.  Returns the fd,
 * or -1 with errno set (EAGAIN when none is pending).  peer gets
 * "addr:port" (peerlen bytes).
 */
int witch__sock_accept(int lfd, char *peer, size_t peerlen);
/* TCP_NODELAY, SO_KEEPALIVE with explicit idle/interval/count, and
 * TCP_USER_TIMEOUT where the system has it (errors ignored: best effort). */
void witch__sock_tune(int fd);
/* Open a reserve descriptor (/dev/null) or return -1. */
int witch__sock_reserve_fd(void);
/* Send without SIGPIPE: sendmsg with MSG_NOSIGNAL where available. */
ssize_t witch__sock_writev(int fd, const struct iovec *iov, int iovcnt);

#endif
