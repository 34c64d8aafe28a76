/*
 * witchd/listen.c: socket activation and the control socket.
 *
 * The control socket is made here, not with the library's unix listener
 * (witch_server_config_set_unix_path, net/sock.c in libwitch), and handed
 * over with witch_server_adopt_listener(): witchd uses only the public
 * API, and its control socket needs what the library's does not do:
 * carry on without it when it is optional (a warning, not a failed
 * start), create a missing parent directory, refuse to replace a file
 * that is not a socket, create it under a umask so it never has wider
 * permissions than asked for, and at exit remove only the file it made
 * (same device and inode).  A public helper for one consumer would be
 * ABI to keep forever; the two share the probe of a stale socket only.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"

#define SD_LISTEN_FDS_START	3

void
listen_init(struct listeners *l)
{
	memset(l, 0, sizeof(*l));
	l->control_fd = -1;
}

/* Keep one activated descriptor, sorted by kind; -1 if unusable. */
static int
take_fd(struct listeners *l, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int type = 0;
	socklen_t tl = sizeof(type);

	if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
		log_warn("socket activation: descriptor %d", fd);
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    type != SOCK_STREAM) {
		log_warnx("socket activation: descriptor %d is not a stream "
		    "socket, closed", fd);
		close(fd);
		return -1;
	}
	if (ss.ss_family == AF_UNIX && l->nunix < LISTEN_MAX)
		l->unix_fd[l->nunix++] = fd;
	else if ((ss.ss_family == AF_INET || ss.ss_family == AF_INET6) &&
	    l->ntcp < LISTEN_MAX)
		l->tcp[l->ntcp++] = fd;
	else {
		log_warnx("socket activation: descriptor %d: unsupported or "
		    "too many sockets, closed", fd);
		close(fd);
		return -1;
	}
	return 0;
}

int
listen_activation(struct listeners *l)
{
	const char *spid, *sfds, *errstr;
	long long pid, n, i;
	int taken = 0;

	spid = getenv("LISTEN_PID");
	sfds = getenv("LISTEN_FDS");
	if (spid == NULL || sfds == NULL)
		goto out;
	pid = strtonum(spid, 1, INT_MAX, &errstr);
	if (errstr != NULL || pid != (long long)getpid()) {
		log_debug("LISTEN_PID=%s is not us: no socket activation",
		    spid);
		goto out;
	}
	n = strtonum(sfds, 0, 2 * LISTEN_MAX, &errstr);
	if (errstr != NULL) {
		log_warnx("LISTEN_FDS=%s: %s, ignored", sfds, errstr);
		goto out;
	}
	for (i = 0; i < n; i++)
		if (take_fd(l, SD_LISTEN_FDS_START + (int)i) == 0)
			taken++;
	log_info("socket activation: %d TCP and %d unix listener%s "
	    "passed%s%s", l->ntcp, l->nunix, l->nunix == 1 ? "" : "s",
	    getenv("LISTEN_FDNAMES") ? ", names " : "",
	    getenv("LISTEN_FDNAMES") ? getenv("LISTEN_FDNAMES") : "");
out:
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return taken;
}

/* Create the parent directory of path if it is missing (one level). */
static void
make_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	strlcpy(dir, path, sizeof(dir));
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return;
	*slash = '\0';
	if (mkdir(dir, 0755) == 0)
		log_info("created directory %s", dir);
}

/* A socket file at sun: replace it if nobody answers.  0 or -1 (errno). */
static int
clear_stale(const struct sockaddr_un *sun)
{
	struct stat st;
	int probe, rc;

	if (lstat(sun->sun_path, &st) == -1)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		errno = EEXIST;
		return -1;
	}
	if ((probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	rc = connect(probe, (const struct sockaddr *)sun, sizeof(*sun));
	close(probe);
	if (rc == 0) {
		errno = EADDRINUSE;
		return -1;
	}
	if (unlink(sun->sun_path) == -1 && errno != ENOENT)
		return -1;
	return 0;
}

static const char *
why(int e)
{
	if (e == EADDRINUSE)
		return "another server is listening there";
	if (e == EEXIST)
		return "the file exists and is not a socket";
	return strerror(e);
}

int
listen_control(struct listeners *l, const char *path, unsigned mode,
    bool required)
{
	struct sockaddr_un sun;
	struct stat st;
	mode_t old;
	int fd = -1, saved, bound = 0;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	make_parent(path);
	if (clear_stale(&sun) == -1)
		goto fail;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		goto fail;
	/* No moment with wider permissions than asked for. */
	old = umask(~mode & 0777);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		saved = errno;
		umask(old);
		errno = saved;
		goto fail;
	}
	umask(old);
	bound = 1;
	if (chmod(path, mode) == -1 || listen(fd, 511) == -1 ||
	    stat(path, &st) == -1)
		goto fail;
	l->control_fd = fd;
	strlcpy(l->control_path, path, sizeof(l->control_path));
	l->control_dev = st.st_dev;
	l->control_ino = st.st_ino;
	log_info("control socket %s (mode %04o)", path, mode);
	return 0;
fail:
	saved = errno;
	if (bound)
		unlink(path);
	if (fd != -1)
		close(fd);
	if (required) {
		log_error("control socket %s: %s", path, why(saved));
		return -1;
	}
	log_warnx("control socket %s: %s; continuing without one (set "
	    "control-socket to a usable path, or to none)", path, why(saved));
	return 0;
}

void
listen_cleanup(struct listeners *l)
{
	struct stat st;

	if (l->control_path[0] == '\0')
		return;
	if (lstat(l->control_path, &st) == 0 && st.st_dev == l->control_dev &&
	    st.st_ino == l->control_ino)
		unlink(l->control_path);
	l->control_path[0] = '\0';
}
