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

check_PROGRAMS += tests/integ/test_inline
TESTS += tests/integ/test_inline
tests_integ_test_inline_SOURCES = tests/integ/test_inline.c
tests_integ_test_inline_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_inline_LDADD = $(INTEG_LIBS_)

check_PROGRAMS += tests/integ/test_allocfail
TESTS += tests/integ/test_allocfail
tests_integ_test_allocfail_SOURCES = tests/integ/test_allocfail.c
tests_integ_test_allocfail_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_allocfail_LDADD = $(INTEG_LIBS_)

check_PROGRAMS += tests/integ/test_pollfail
TESTS += tests/integ/test_pollfail
tests_integ_test_pollfail_SOURCES = tests/integ/test_pollfail.c
tests_integ_test_pollfail_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_pollfail_LDADD = $(INTEG_LIBS_)

check_PROGRAMS += tests/integ/test_budgets
TESTS += tests/integ/test_budgets
tests_integ_test_budgets_SOURCES = tests/integ/test_budgets.c
tests_integ_test_budgets_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_budgets_LDADD = $(INTEG_LIBS_)

check_PROGRAMS += tests/integ/test_reactor_bounds
TESTS += tests/integ/test_reactor_bounds
tests_integ_test_reactor_bounds_SOURCES = tests/integ/test_reactor_bounds.c
tests_integ_test_reactor_bounds_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_reactor_bounds_LDADD = $(INTEG_LIBS_) -lpthread
endif

# test_budgets' remote tests, from a network namespace (root only); the
# namespace helpers every tests/daemon/*netns*.sh script sources; the
# ok/fail/check helpers the shell tests source.
TESTS += tests/daemon/test_budgets_netns.sh
EXTRA_DIST += tests/daemon/test_budgets_netns.sh tests/daemon/netns-lib.sh \
	tests/daemon/check-lib.sh

TESTS += tests/check-abi.sh
EXTRA_DIST += tests/check-abi.sh

# Includes in src/lib only point down a layer (doc/internals/architecture.md).
TESTS += tests/check-layers.sh
EXTRA_DIST += tests/check-layers.sh

# The kqueue backend is never built on Linux: compile it -fsyntax-only
# against declarations written from kqueue(2), so it cannot rot unseen.
TESTS += tests/check-kqueue.sh
EXTRA_DIST += tests/check-kqueue.sh tests/kqueue/sys/event.h

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

# Limits, lifecycle and daemon tests (test_limits, test_lifecycle, test_witchd).
if HAVE_CMOCKA
check_PROGRAMS += tests/integ/test_limits tests/integ/test_lifecycle \
	tests/daemon/test_witchd
TESTS += tests/integ/test_limits tests/integ/test_lifecycle \
	tests/daemon/test_witchd
tests_integ_test_limits_SOURCES = tests/integ/test_limits.c
tests_integ_test_limits_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_limits_LDADD = $(INTEG_LIBS_)
tests_integ_test_lifecycle_SOURCES = tests/integ/test_lifecycle.c
tests_integ_test_lifecycle_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_lifecycle_LDADD = $(INTEG_LIBS_)
tests_daemon_test_witchd_SOURCES = tests/daemon/test_witchd.c
tests_daemon_test_witchd_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_daemon_test_witchd_LDADD = $(INTEG_LIBS_)
endif

# Protocol-level bad input over real sockets: framing, malformed requests,
# the JSONTestSuite corpus.
if HAVE_CMOCKA
check_PROGRAMS += tests/integ/test_frames tests/integ/test_malformed \
	tests/integ/test_jsonsuite
TESTS += tests/integ/test_frames tests/integ/test_malformed \
	tests/integ/test_jsonsuite
tests_integ_test_frames_SOURCES = tests/integ/test_frames.c
tests_integ_test_frames_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_frames_LDADD = $(INTEG_LIBS_)
tests_integ_test_malformed_SOURCES = tests/integ/test_malformed.c
tests_integ_test_malformed_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_malformed_LDADD = $(INTEG_LIBS_)
tests_integ_test_jsonsuite_SOURCES = tests/integ/test_jsonsuite.c
tests_integ_test_jsonsuite_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_jsonsuite_LDADD = $(INTEG_LIBS_)
endif

# Concurrency stress over real sockets (runs under TSan too).
if HAVE_CMOCKA
check_PROGRAMS += tests/integ/test_stress
TESTS += tests/integ/test_stress
tests_integ_test_stress_SOURCES = tests/integ/test_stress.c
tests_integ_test_stress_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_stress_LDADD = $(INTEG_LIBS_)

check_PROGRAMS += tests/integ/test_pool_batch
TESTS += tests/integ/test_pool_batch
tests_integ_test_pool_batch_SOURCES = tests/integ/test_pool_batch.c
tests_integ_test_pool_batch_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_pool_batch_LDADD = $(INTEG_LIBS_)
check_PROGRAMS += tests/integ/test_direct_write
TESTS += tests/integ/test_direct_write
tests_integ_test_direct_write_SOURCES = tests/integ/test_direct_write.c
tests_integ_test_direct_write_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_direct_write_LDADD = $(INTEG_LIBS_)
endif

if HAVE_CMOCKA
# Unix sockets and adopted (socket-activated) listeners.
check_PROGRAMS += tests/integ/test_listeners
TESTS += tests/integ/test_listeners
tests_integ_test_listeners_SOURCES = tests/integ/test_listeners.c
tests_integ_test_listeners_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_listeners_LDADD = $(INTEG_LIBS_)
endif

if HAVE_CMOCKA
# Operations built-ins: stats, clients, kill_client, monitor.
check_PROGRAMS += tests/integ/test_ops
TESTS += tests/integ/test_ops
tests_integ_test_ops_SOURCES = tests/integ/test_ops.c
tests_integ_test_ops_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_ops_LDADD = $(INTEG_LIBS_)
endif

# The client library: backoff unit test, integration over real sockets
# (a real server, and fake misbehaving servers).
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_backoff tests/integ/test_client \
	tests/integ/test_client_bad tests/integ/test_client_events
TESTS += tests/unit/test_backoff tests/integ/test_client \
	tests/integ/test_client_bad tests/integ/test_client_events
tests_unit_test_backoff_SOURCES = tests/unit/test_backoff.c
tests_unit_test_backoff_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_unit_test_backoff_LDADD = $(WITCHTEST_LIBS_) -lm
tests_integ_test_client_SOURCES = tests/integ/test_client.c
tests_integ_test_client_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_client_LDADD = $(INTEG_LIBS_)
tests_integ_test_client_bad_SOURCES = tests/integ/test_client_bad.c
tests_integ_test_client_bad_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_client_bad_LDADD = $(INTEG_LIBS_)
tests_integ_test_client_events_SOURCES = tests/integ/test_client_events.c
tests_integ_test_client_events_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_client_events_LDADD = $(INTEG_LIBS_)
endif

# Server peers over loopback (in-process servers joined by seeds).
if HAVE_CMOCKA
check_PROGRAMS += tests/integ/test_peers
TESTS += tests/integ/test_peers
tests_integ_test_peers_SOURCES = tests/integ/test_peers.c
tests_integ_test_peers_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_peers_LDADD = $(INTEG_LIBS_) -lpthread
endif

# The client API from C++17, linked like a consumer (libwitch.la), against an
# in-process server on the loopback.
check_PROGRAMS += tests/unit/test_client_cxx
TESTS += tests/unit/test_client_cxx
tests_unit_test_client_cxx_SOURCES = tests/unit/test_client_cxx.cc
tests_unit_test_client_cxx_CPPFLAGS = -I$(top_builddir)/include \
	-I$(top_srcdir)/include $(JANSSON_CFLAGS)
tests_unit_test_client_cxx_CXXFLAGS = $(AM_CXXFLAGS) -std=c++17 -Wall \
	-Wextra -Werror -pedantic
tests_unit_test_client_cxx_LDADD = libwitch.la $(JANSSON_LIBS)

# Install into a scratch DESTDIR and build a consumer with pkg-config.
TESTS += tests/daemon/test_install.sh
EXTRA_DIST += tests/daemon/test_install.sh
TESTS += tests/daemon/test_auth.sh
EXTRA_DIST += tests/daemon/test_auth.sh

# Discovery: codec/registry/limits unit test, loopback integration test,
# the disc_tool driver and the network-namespace LAN test (root only).
if HAVE_CMOCKA
check_PROGRAMS += tests/integ/test_auth
TESTS += tests/integ/test_auth
tests_integ_test_auth_SOURCES = tests/integ/test_auth.c
tests_integ_test_auth_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_auth_LDADD = $(INTEG_LIBS_)

check_PROGRAMS += tests/unit/test_discovery tests/integ/test_discovery_lo
TESTS += tests/unit/test_discovery tests/integ/test_discovery_lo
tests_unit_test_discovery_SOURCES = tests/unit/test_discovery.c
tests_unit_test_discovery_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_unit_test_discovery_LDADD = $(WITCHTEST_LIBS_)
tests_integ_test_discovery_lo_SOURCES = tests/integ/test_discovery_lo.c
tests_integ_test_discovery_lo_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_integ_test_discovery_lo_LDADD = $(INTEG_LIBS_)
endif
check_PROGRAMS += tests/tools/disc_tool
tests_tools_disc_tool_SOURCES = tests/tools/disc_tool.c
tests_tools_disc_tool_LDADD = libwitch_core.la $(DEPS_LIBS)
TESTS += tests/daemon/test_discovery_netns.sh
EXTRA_DIST += tests/daemon/test_discovery_netns.sh

# Every C example of README.md and the man pages compiles with -std=c11
# -Wall -Wextra -Werror against the built library; documented witchctl
# transcripts match a live witchd.
TESTS += tests/check-examples.sh
EXTRA_DIST += tests/check-examples.sh

# The README's quick start in a debootstrap minbase bookworm root (root and
# debootstrap; long, so run by hand, not by make check).
EXTRA_DIST += tests/minbase/quickstart-minbase.sh

# witchctl stats --prometheus against witchd (promtool when installed) and
# the contrib textfile-collector service and timer.
TESTS += tests/daemon/test_prometheus.sh
EXTRA_DIST += tests/daemon/test_prometheus.sh \
	contrib/prometheus/witch-metrics.service \
	contrib/prometheus/witch-metrics.timer

# debian/libwitch0.symbols is up to date with the headers and the version
# script (skipped without debian/).  The package build and its checks are
# tests/debian/test-packages.sh, run by .ci/run, not by make check.
TESTS += tests/debian/check-symbols.sh
EXTRA_DIST += tests/debian/check-symbols.sh
