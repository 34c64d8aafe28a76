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

# Public headers as a consumer sees them: strict C11 and C++17, linking the
# installed-style shared library rather than the convenience library.
check_PROGRAMS += tests/unit/test_headers_cxx tests/unit/test_headers_c11
TESTS += tests/unit/test_headers_cxx tests/unit/test_headers_c11
tests_unit_test_headers_cxx_SOURCES = tests/unit/test_headers_cxx.cc
tests_unit_test_headers_cxx_CPPFLAGS = -I$(top_builddir)/include \
	-I$(top_srcdir)/include $(JANSSON_CFLAGS)
tests_unit_test_headers_cxx_CXXFLAGS = $(AM_CXXFLAGS) -std=c++17 -Wall \
	-Wextra -Werror -pedantic
tests_unit_test_headers_cxx_LDADD = libwitch.la $(JANSSON_LIBS)
tests_unit_test_headers_c11_SOURCES = tests/unit/test_headers_c11.c
tests_unit_test_headers_c11_CPPFLAGS = -I$(top_builddir)/include \
	-I$(top_srcdir)/include $(JANSSON_CFLAGS)
tests_unit_test_headers_c11_CFLAGS = $(SAN_CFLAGS) -std=c11 -Wall -Wextra \
	-Werror -pedantic
tests_unit_test_headers_c11_LDADD = libwitch.la $(JANSSON_LIBS)
