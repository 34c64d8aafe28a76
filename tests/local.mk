# tests: integration (tests/integ) and daemon (tests/daemon) programs.
# Unit tests are listed next to the module they test (src/lib/*/local.mk).

if HAVE_CMOCKA
check_LTLIBRARIES = tests/integ/libharness.la
tests_integ_libharness_la_SOURCES = tests/integ/harness.c tests/integ/harness.h
tests_integ_libharness_la_CFLAGS = $(WITCHTEST_CFLAGS_)
INTEG_LIBS_ = tests/integ/libharness.la $(WITCHTEST_LIBS_)

check_PROGRAMS += tests/integ/test_builtins
TESTS += tests/integ/test_builtins
tests_integ_test_builtins_SOURCES = tests/integ/test_builtins.c
tests_integ_test_builtins_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_builtins_LDADD = $(INTEG_LIBS_)
endif

TESTS += tests/check-abi.sh
EXTRA_DIST += tests/check-abi.sh
