# net: socket helpers (discovery and peers will live here too)
libwitch_core_la_SOURCES += \
	%reldir%/sock.c %reldir%/sock.h
