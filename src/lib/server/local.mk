# server: the public server API: config, endpoint registration, start and
# stop, and the built-ins that need no connection state.
libwitch_core_la_SOURCES += \
	%reldir%/builtins.c \
	%reldir%/config.c \
	%reldir%/server.c %reldir%/server_int.h \
	%reldir%/sourcehash.c
