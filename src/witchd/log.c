/*
 * witchd/log.c: log lines to standard error, plain or for the journal.
 */
#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <witch/witch.h>

#include "log.h"

static atomic_int log_level = WITCH_LOG_INFO;
static bool journal;
static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;

/*
 * systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connected to
 * our stdout/stderr.  Trust it only when it still names our stderr: a
 * child whose stderr was redirected must not write prefixes into a file.
 */
void
log_init(void)
{
	unsigned long long dev, ino;
	const char *js;
	struct stat st;
	char extra;

	journal = false;
	if ((js = getenv("JOURNAL_STREAM")) == NULL)
		return;
	if (sscanf(js, "%llu:%llu%c", &dev, &ino, &extra) != 2)
		return;
	if (fstat(STDERR_FILENO, &st) == -1)
		return;
	journal = (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

void
log_setlevel(int level)
{
	if (level < WITCH_LOG_ERR)
		level = WITCH_LOG_ERR;
	if (level > WITCH_LOG_DEBUG)
		level = WITCH_LOG_DEBUG;
	atomic_store(&log_level, level);
}

int
log_getlevel(void)
{
	return atomic_load(&log_level);
}

bool
log_journal(void)
{
	return journal;
}

static void
emit(int level, const char *msg)
{
	static const char *names[] = { "emerg", "alert", "crit", "error",
	    "warning", "notice", "info", "debug" };
	struct timespec ts;
	struct tm tm;
	char when[32];

	if (level < 0 || level > 7)
		level = 7;
	if (level > atomic_load(&log_level))
		return;
	pthread_mutex_lock(&log_mtx);
	if (journal)
		fprintf(stderr, "<%d>%s\n", level, msg);
	else {
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld witchd[%ld]: %s: %s\n", when,
		    ts.tv_nsec / 1000000, (long)getpid(), names[level], msg);
	}
	fflush(stderr);
	pthread_mutex_unlock(&log_mtx);
}

static void
vlog(int level, int errnum, const char *fmt, va_list ap)
{
	char msg[1024];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (errnum != 0) {
		n = strlen(msg);
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(errnum));
	}
	emit(level, msg);
}

void
log_witch(int level, const char *msg, void *userdata)
{
	(void)userdata;
	emit(level, msg);
}

#define LOGFN(fn, level, witherr)					\
void									\
fn(const char *fmt, ...)						\
{									\
	int saved = errno;						\
	va_list ap;							\
									\
	va_start(ap, fmt);						\
	vlog(level, witherr ? saved : 0, fmt, ap);			\
	va_end(ap);							\
	errno = saved;							\
}

LOGFN(log_warn, WITCH_LOG_WARNING, 1)
LOGFN(log_warnx, WITCH_LOG_WARNING, 0)
LOGFN(log_error, WITCH_LOG_ERR, 0)
LOGFN(log_notice, WITCH_LOG_NOTICE, 0)
LOGFN(log_info, WITCH_LOG_INFO, 0)
LOGFN(log_debug, WITCH_LOG_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(WITCH_LOG_ERR, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(WITCH_LOG_ERR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
