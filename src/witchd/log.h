/*
 * witchd/log.h: witchd's logging, in the manner of the OpenBSD daemons.
 *
 * Lines go to standard error.  Under systemd (JOURNAL_STREAM names our
 * stderr) each line starts with an sd-daemon "<N>" priority prefix and no
 * timestamp, since the journal adds its own; otherwise a local timestamp,
 * the process id and the level name lead the line.  Every function may be
 * called from any thread.
 */
#ifndef WITCHD_LOG_H
#define WITCHD_LOG_H

#include <stdbool.h>

/* Decide the output format (journal or plain); level starts at info. */
void	log_init(void);
/* Lines above level (a WITCH_LOG_* value, syslog numbering) are dropped. */
void	log_setlevel(int level);
int	log_getlevel(void);
/* True when the "<N>" journal format is in use. */
bool	log_journal(void);

/* The libwitch logger (witch_log_fn); userdata is unused. */
void	log_witch(int level, const char *msg, void *userdata);

/* log_warn appends ": strerror(errno)"; log_warnx does not. */
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_error(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_notice(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Log at error level (with ": strerror(errno)" for fatal) and exit 1. */
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif /* WITCHD_LOG_H */
