# core: server, config, errors, version, alloc, log hook
libwitch_core_la_SOURCES += \
	%reldir%/alloc.c %reldir%/alloc.h \
	%reldir%/buf.c %reldir%/buf.h \
	%reldir%/error.c \
	%reldir%/version.c
libwitch_core_la_SOURCES += \
	%reldir%/builtins.c \
	%reldir%/config.c \
	%reldir%/log.c %reldir%/log.h \
	%reldir%/server.c %reldir%/server_int.h \
	%reldir%/sourcehash.c
