/*
 * witchd/notify.h: the systemd service notification protocol, without
 * libsystemd.
 *
 * The protocol is one AF_UNIX datagram of "KEY=VALUE\n" lines sent to the
 * socket named by NOTIFY_SOCKET (a path, or "@name" for the abstract
 * namespace); see sd_notify(3).  It is small and stable, so witchd speaks
 * it itself and behaves the same whether or not libsystemd is installed.
 * Main thread only.
 */
#ifndef WITCHD_NOTIFY_H
#define WITCHD_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Read NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, open the datagram
 * socket, and unset the variables (nothing we start should inherit them).
 * Without NOTIFY_SOCKET every other call is a no-op.  Returns 0, or -1
 * (logged) when NOTIFY_SOCKET is set but unusable.
 */
int	notify_init(void);
/* True when a notification socket is in use. */
bool	notify_enabled(void);
/*
 * Send one datagram of "KEY=VALUE" lines (printf-style).  Returns 0, or -1
 * (logged at debug: the service manager may be gone).
 */
int	notify_send(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));
/* Watchdog interval asked for by the service manager (usec), or 0. */
uint64_t notify_watchdog_usec(void);
/* Close the socket. */
void	notify_close(void);

#endif /* WITCHD_NOTIFY_H */
