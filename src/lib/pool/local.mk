# pool: fixed worker pool with a bounded queue.  See doc/internals/pool.md.
libwitch_core_la_SOURCES += \
	%reldir%/pool.c %reldir%/pool.h %reldir%/pool_int.h \
	%reldir%/worker.c

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_pool
TESTS += tests/unit/test_pool
tests_unit_test_pool_SOURCES = tests/unit/test_pool.c
tests_unit_test_pool_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_unit_test_pool_LDADD = $(WITCHTEST_LIBS_)
endif
