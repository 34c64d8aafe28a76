# poll: the edge-triggered poller (poller.h); exactly one backend is
# compiled, chosen by configure.  Both backends ship in the tarball.
libwitch_core_la_SOURCES += \
	%reldir%/poller.h \
	%reldir%/wakeup.c %reldir%/wakeup.h
if POLL_EPOLL
libwitch_core_la_SOURCES += \
	%reldir%/poll_epoll.c
endif
if POLL_KQUEUE
libwitch_core_la_SOURCES += \
	%reldir%/poll_kqueue.c
endif
EXTRA_DIST += \
	%reldir%/poll_epoll.c \
	%reldir%/poll_kqueue.c

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_poller
TESTS += tests/unit/test_poller
tests_unit_test_poller_SOURCES = tests/unit/test_poller.c
tests_unit_test_poller_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_unit_test_poller_LDADD = $(WITCHTEST_LIBS_)
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_wakeup
TESTS += tests/unit/test_wakeup
tests_unit_test_wakeup_SOURCES = tests/unit/test_wakeup.c
tests_unit_test_wakeup_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_unit_test_wakeup_LDADD = $(WITCHTEST_LIBS_)
endif
