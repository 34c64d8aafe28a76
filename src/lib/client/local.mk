# client: the witch client library (see include/witch/client.h and
# doc/internals/client.md).
libwitch_core_la_SOURCES += \
	%reldir%/client.c %reldir%/client_int.h \
	%reldir%/client_config.c %reldir%/reqtab.c %reldir%/link.c \
	%reldir%/wire.c %reldir%/call.c %reldir%/backoff.c
