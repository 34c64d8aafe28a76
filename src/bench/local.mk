# bench: the witch-bench load generator (installed, witch-bench(1)) and
# `make bench`, which compares witchd with redis-server on loopback
# (src/bench/run-bench.sh; `make bench ROUNDS=3` for fewer rounds).
bin_PROGRAMS += src/bench/witch-bench
src_bench_witch_bench_SOURCES = %reldir%/witch-bench.c %reldir%/bench.h \
	%reldir%/hist.c %reldir%/template.c %reldir%/sys.c %reldir%/idle.c
src_bench_witch_bench_LDADD = $(LIBBSD_LIBS)
EXTRA_DIST += %reldir%/run-bench.sh %reldir%/ab-builds.sh
# A server with one endpoint doing real work (parse 1 KiB, digest it), for
# the pool-scaling rows of `make bench`; not installed.
noinst_PROGRAMS += src/bench/bench-server
src_bench_bench_server_SOURCES = %reldir%/bench-server.c
src_bench_bench_server_LDADD = libwitch.la $(JANSSON_LIBS)

bench: src/bench/witch-bench src/bench/bench-server src/witchd/witchd
	$(AM_V_at)ROUNDS='$(ROUNDS)' $(SHELL) $(top_srcdir)/src/bench/run-bench.sh \
	    $(top_builddir)
