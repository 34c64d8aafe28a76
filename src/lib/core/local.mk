# core: the leaves (errors, alloc, buffers, clock, log hook, version); they
# include nothing above core/.  See doc/internals/architecture.md.
libwitch_core_la_SOURCES += \
	%reldir%/alloc.c %reldir%/alloc.h \
	%reldir%/buf.c %reldir%/buf.h \
	%reldir%/clock.c %reldir%/clock.h \
	%reldir%/error.c \
	%reldir%/error.h \
	%reldir%/log.c %reldir%/log.h \
	%reldir%/stats.c %reldir%/stats.h \
	%reldir%/version.c
