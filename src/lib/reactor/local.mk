# reactor: reactor loop, timers, cross-thread wakeup
libwitch_core_la_SOURCES += \
	%reldir%/wakeup.c \
	%reldir%/wakeup.h \
	%reldir%/conn.c \
	%reldir%/reactor.c

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_wakeup
TESTS += tests/unit/test_wakeup
tests_unit_test_wakeup_SOURCES = tests/unit/test_wakeup.c
tests_unit_test_wakeup_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_unit_test_wakeup_LDADD = $(WITCHTEST_LIBS_)
endif
