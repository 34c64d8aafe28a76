/*
 * witchd/listen.h: where witchd listens besides bind:port.
 *
 * Socket activation: descriptors passed by the service manager (systemd,
 * systemd-socket-activate) following sd_listen_fds(3): LISTEN_PID must be
 * our pid, LISTEN_FDS descriptors start at 3.  TCP ones replace witchd's
 * own TCP listener; unix ones serve as the control socket.
 *
 * The control socket: a unix stream socket witchd creates itself, with the
 * configured mode, and removes on exit if it is still the one it created.
 * Main thread only, before the server starts (and listen_cleanup() after
 * it stopped).
 */
#ifndef WITCHD_LISTEN_H
#define WITCHD_LISTEN_H

#include <sys/types.h>

#include <stdbool.h>

#define LISTEN_MAX	6

struct listeners {
	int	 tcp[LISTEN_MAX];	/* activated TCP listeners */
	int	 ntcp;
	int	 unix_fd[LISTEN_MAX];	/* activated unix listeners */
	int	 nunix;
	int	 control_fd;		/* our control socket, or -1 */
	char	 control_path[108];	/* "" unless we created it */
	dev_t	 control_dev;
	ino_t	 control_ino;
};

/* Empty set (no descriptors). */
void	listen_init(struct listeners *l);
/*
 * Take the descriptors passed by socket activation, if the environment
 * names this process, and unset LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES.
 * Returns the number taken (descriptors of other kinds are logged and
 * closed).
 */
int	listen_activation(struct listeners *l);
/*
 * Create the control socket at path with permissions mode, creating its
 * parent directory (one level, mode 0755) if missing.  A socket file whose
 * server is gone is replaced; a live one or a file that is not a socket is
 * an error.  On failure: with required, log an error and return -1;
 * otherwise log a warning and return 0 without a control socket.
 */
int	listen_control(struct listeners *l, const char *path, unsigned mode,
	    bool required);
/* Remove the control socket file if it is still the one we created. */
void	listen_cleanup(struct listeners *l);

#endif /* WITCHD_LISTEN_H */
