# queue: MPSC output queue (no JSON).  See doc/internals/output-queue.md.
libwitch_core_la_SOURCES += \
	%reldir%/oqueue.c %reldir%/oqueue.h \
	%reldir%/freelist.c %reldir%/freelist.h \
	%reldir%/blkcache.c %reldir%/blkcache.h

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_oqueue
TESTS += tests/unit/test_oqueue
tests_unit_test_oqueue_SOURCES = tests/unit/test_oqueue.c
tests_unit_test_oqueue_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_unit_test_oqueue_LDADD = $(WITCHTEST_LIBS_)

check_PROGRAMS += tests/unit/test_freelist
TESTS += tests/unit/test_freelist
tests_unit_test_freelist_SOURCES = tests/unit/test_freelist.c
tests_unit_test_freelist_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_unit_test_freelist_LDADD = $(WITCHTEST_LIBS_)

check_PROGRAMS += tests/unit/test_blkcache
TESTS += tests/unit/test_blkcache
tests_unit_test_blkcache_SOURCES = tests/unit/test_blkcache.c
tests_unit_test_blkcache_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_unit_test_blkcache_LDADD = $(WITCHTEST_LIBS_)
endif
