# witchd: the daemon (links only the public API: libwitch.la)
sbin_PROGRAMS += src/witchd/witchd
src_witchd_witchd_SOURCES = %reldir%/main.c \
	%reldir%/config.c %reldir%/config.h %reldir%/apply.c \
	%reldir%/listen.c %reldir%/listen.h \
	%reldir%/log.c %reldir%/log.h \
	%reldir%/notify.c %reldir%/notify.h
src_witchd_witchd_LDADD = libwitch.la $(JANSSON_LIBS) $(LIBBSD_LIBS)

# systemd units.  No configure check: the directory is a plain variable so
# that "make install systemdunitdir=..." (and distcheck, without root)
# work.  The service's ExecStart is rewritten to the installed witchd.
systemdunitdir = $(prefix)/lib/systemd/system
nodist_systemdunit_DATA = src/witchd/witchd.service
dist_systemdunit_DATA = contrib/systemd/witchd.socket
src/witchd/witchd.service: $(top_srcdir)/contrib/systemd/witchd.service
	$(AM_V_GEN)$(MKDIR_P) src/witchd && \
	sed -e 's|/usr/sbin/witchd|$(sbindir)/witchd|g' \
	    $(top_srcdir)/contrib/systemd/witchd.service >$@.tmp && mv $@.tmp $@
CLEANFILES += src/witchd/witchd.service
EXTRA_DIST += contrib/systemd/witchd.service

# An example configuration; never installed as the real witchd.conf.
witchconfdir = $(sysconfdir)/witch
dist_witchconf_DATA = contrib/witchd.conf.example

# Service tests: configuration file, reload, notify protocol, socket
# activation, control socket; and the unit files under systemd-analyze.
if HAVE_CMOCKA
check_PROGRAMS += tests/daemon/test_config
TESTS += tests/daemon/test_config
tests_daemon_test_config_SOURCES = tests/daemon/test_config.c
tests_daemon_test_config_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_daemon_test_config_LDADD = $(INTEG_LIBS_)
endif
TESTS += tests/daemon/check-unit.sh
EXTRA_DIST += tests/daemon/check-unit.sh

# one error style for witchd, witchctl and witch-bench
TESTS += tests/daemon/test_usage.sh
EXTRA_DIST += tests/daemon/test_usage.sh

# durations: one parser shared with witchctl (src/common)
src_witchd_witchd_SOURCES += src/common/secs.c src/common/secs.h
