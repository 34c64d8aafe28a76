/*
 * core/log.h: the log hook's formatter, for objects that carry their own
 * logger (announcer, listener).  libwitch never writes to stderr itself.
 */
#ifndef WITCH__CORE_LOG_H
#define WITCH__CORE_LOG_H

#include <witch/server.h>

/* Format one line and hand it to fn (NULL: nothing).  Any thread. */
void witch__log_to(witch_log_fn fn, void *ud, int level, const char *fmt,
    ...) WITCH_PRINTF(4, 5);

#endif
