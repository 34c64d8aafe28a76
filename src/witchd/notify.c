/*
 * witchd/notify.c: sd_notify(3) as a datagram, implemented here.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

static int notify_fd = -1;
static struct sockaddr_un notify_sun;
static socklen_t notify_len;
static uint64_t watchdog_usec;

/* WATCHDOG_USEC applies to us only if WATCHDOG_PID is unset or ours. */
static void
watchdog_init(void)
{
	const char *s, *errstr;
	long long pid, usec;

	watchdog_usec = 0;
	if ((s = getenv("WATCHDOG_USEC")) == NULL)
		return;
	usec = strtonum(s, 1, (long long)365 * 24 * 3600 * 1000000,
	    &errstr);
	if (errstr != NULL) {
		log_warnx("WATCHDOG_USEC=%s: %s, ignored", s, errstr);
		return;
	}
	if ((s = getenv("WATCHDOG_PID")) != NULL) {
		pid = strtonum(s, 1, INT32_MAX, &errstr);
		if (errstr != NULL || pid != (long long)getpid()) {
			log_debug("WATCHDOG_PID=%s is not us, no watchdog", s);
			return;
		}
	}
	watchdog_usec = (uint64_t)usec;
}

int
notify_init(void)
{
	const char *path;
	size_t len;

	watchdog_init();
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	if ((path = getenv("NOTIFY_SOCKET")) == NULL)
		return 0;
	memset(&notify_sun, 0, sizeof(notify_sun));
	notify_sun.sun_family = AF_UNIX;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len < 2 ||
	    len >= sizeof(notify_sun.sun_path)) {
		log_warnx("NOTIFY_SOCKET=%s: not an absolute or abstract "
		    "socket name, ignored", path);
		goto fail;
	}
	memcpy(notify_sun.sun_path, path, len);
	if (path[0] == '@') {
		/* Abstract: a leading NUL, and the length counts exactly. */
		notify_sun.sun_path[0] = '\0';
		notify_len = offsetof(struct sockaddr_un, sun_path) + len;
	} else
		notify_len = offsetof(struct sockaddr_un, sun_path) + len + 1;
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (notify_fd == -1) {
		log_warn("NOTIFY_SOCKET: socket");
		goto fail;
	}
	unsetenv("NOTIFY_SOCKET");
	return 0;
fail:
	unsetenv("NOTIFY_SOCKET");
	watchdog_usec = 0;
	return -1;
}

bool
notify_enabled(void)
{
	return notify_fd != -1;
}

int
notify_send(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	if (notify_fd == -1)
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return -1;
	if (sendto(notify_fd, msg, (size_t)n, MSG_NOSIGNAL,
	    (struct sockaddr *)&notify_sun, notify_len) == -1) {
		log_debug("notify %.*s: %s", (int)strcspn(msg, "\n"), msg,
		    strerror(errno));
		return -1;
	}
	return 0;
}

uint64_t
notify_watchdog_usec(void)
{
	return notify_fd != -1 ? watchdog_usec : 0;
}

void
notify_close(void)
{
	if (notify_fd != -1)
		close(notify_fd);
	notify_fd = -1;
}
