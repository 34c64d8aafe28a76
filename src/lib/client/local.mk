# client: the witch client library (see include/witch/client.h and
# doc/internals/client.md).
libwitch_core_la_SOURCES += \
	%reldir%/client.c %reldir%/client_int.h \
	%reldir%/backoff.c
