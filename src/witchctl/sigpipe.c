/*
 * witchctl/sigpipe.c: the self-pipe the long-running commands (ping,
 * monitor, events) poll next to the client's descriptor, so a signal ends
 * their loop cleanly (statistics printed, client freed) instead of killing
 * the process.  One per process; main thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "witchctl.h"

static int sigpipe[2] = { -1, -1 };
static struct sigaction saved[2];
static int nsaved;

static void
on_signal(int sig)
{
	int e = errno;
	ssize_t n;
	char c = 1;

	(void)sig;
	n = write(sigpipe[1], &c, 1);
	(void)n;
	errno = e;
}

/*
 * Catch SIGINT, and SIGTERM too when also_term, through a non-blocking,
 * close-on-exec self-pipe.  Returns the descriptor to poll for POLLIN, or
 * -1 (errno set) with nothing changed.
 */
int
ctl_signals_catch(bool also_term)
{
	static const int sigs[2] = { SIGINT, SIGTERM };
	struct sigaction sa;
	int i, fl;

	if (pipe(sigpipe) == -1)
		return -1;
	for (i = 0; i < 2; i++) {
		fl = fcntl(sigpipe[i], F_GETFL);
		fcntl(sigpipe[i], F_SETFL, fl | O_NONBLOCK);
		fcntl(sigpipe[i], F_SETFD, FD_CLOEXEC);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (nsaved = 0; nsaved < (also_term ? 2 : 1); nsaved++)
		if (sigaction(sigs[nsaved], &sa, &saved[nsaved]) == -1) {
			ctl_signals_release();
			return -1;
		}
	return sigpipe[0];
}

/* True when a caught signal came since the last call (drains the pipe). */
bool
ctl_signalled(void)
{
	char buf[16];

	return sigpipe[0] != -1 && read(sigpipe[0], buf, sizeof(buf)) > 0;
}

/* Put the old dispositions back and close the pipe.  Safe to repeat. */
void
ctl_signals_release(void)
{
	static const int sigs[2] = { SIGINT, SIGTERM };
	int e = errno;

	while (nsaved > 0) {
		nsaved--;
		sigaction(sigs[nsaved], &saved[nsaved], NULL);
	}
	if (sigpipe[0] != -1) {
		close(sigpipe[0]);
		close(sigpipe[1]);
	}
	sigpipe[0] = sigpipe[1] = -1;
	errno = e;
}
