# net: socket helpers and network interfaces.
libwitch_core_la_SOURCES += \
	%reldir%/sock.c %reldir%/sock.h \
	%reldir%/ifaces.c %reldir%/ifaces.h
