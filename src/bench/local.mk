# bench: witch-bench load generator and `make bench`
noinst_PROGRAMS += src/bench/witch-bench
src_bench_witch_bench_SOURCES = %reldir%/witch-bench.c
src_bench_witch_bench_CFLAGS = $(AM_CFLAGS) -O2
EXTRA_DIST += %reldir%/run-bench.sh

bench: src/bench/witch-bench src/witchd/witchd
	$(AM_V_at)$(top_srcdir)/src/bench/run-bench.sh $(top_builddir)
