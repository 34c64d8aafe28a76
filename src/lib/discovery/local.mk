# discovery: UDP announcer and listener, the wire codec and the registry
# (doc/internals/discovery.md).
libwitch_core_la_SOURCES += \
	%reldir%/registry.c %reldir%/discovery_int.h \
	%reldir%/announcer.c %reldir%/listener.c %reldir%/listener_int.h \
	%reldir%/listener_config.c
