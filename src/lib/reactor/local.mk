# reactor: the loop, connections, accept, routing, jobs
libwitch_core_la_SOURCES += \
	%reldir%/conn.c \
	%reldir%/reactor.c
