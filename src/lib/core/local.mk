# core: the leaves (errors, alloc, buffers, clock, log hook, version); they
# include nothing above core/.  See doc/internals/architecture.md.
libwitch_core_la_SOURCES += \
	%reldir%/alloc.c %reldir%/alloc.h \
	%reldir%/buf.c %reldir%/buf.h \
	%reldir%/clock.c %reldir%/clock.h \
	%reldir%/error.c \
	%reldir%/error.h \
	%reldir%/key.c %reldir%/key.h \
	%reldir%/log.c %reldir%/log.h \
	%reldir%/setter.c %reldir%/setter.h \
	%reldir%/stats.c %reldir%/stats.h \
	%reldir%/version.c

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_setter
TESTS += tests/unit/test_setter
tests_unit_test_setter_SOURCES = tests/unit/test_setter.c
tests_unit_test_setter_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_unit_test_setter_LDADD = $(WITCHTEST_LIBS_)
endif
