/*
 * core/log.c: the log hook.  libwitch never writes to stderr or syslog on
 * its own; it formats a line and hands it to the application's logger.
 */
#include <stdarg.h>
#include <stdio.h>

#include "core/server_int.h"

void
witch__log(struct witch_server *srv, int level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (srv == NULL || srv->cfg.log_fn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	srv->cfg.log_fn(level, line, srv->cfg.log_ud);
}
