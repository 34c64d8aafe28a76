# net: socket helpers (discovery and peers will live here too)
libwitch_core_la_SOURCES += \
	%reldir%/sock.c %reldir%/sock.h

# net: discovery (UDP announcer and listener; doc/internals/discovery.md)
libwitch_core_la_SOURCES += \
	%reldir%/discovery.c %reldir%/discovery_int.h \
	%reldir%/announcer.c %reldir%/listener.c %reldir%/ifaces.c
