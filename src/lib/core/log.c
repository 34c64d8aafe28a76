/*
 * core/log.c: the log hook.  libwitch never writes to stderr or syslog on
 * its own; it formats a line and hands it to the application's logger.
 */
#include <stdarg.h>
#include <stdio.h>

#include "core/log.h"

/* Format one line and hand it to fn (NULL: nothing).  Any thread. */
static void
logv(witch_log_fn fn, void *ud, int level, const char *fmt, va_list ap)
{
	char line[512];

	if (fn == NULL)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	fn(level, line, ud);
}

void
witch__log_to(witch_log_fn fn, void *ud, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	logv(fn, ud, level, fmt, ap);
	va_end(ap);
}
