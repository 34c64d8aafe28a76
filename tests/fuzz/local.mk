# fuzz: libFuzzer targets that also build as plain replay drivers.
#
# Without --enable-fuzzing, tests/fuzz/fuzz_<target> is the target linked
# with replay.c and `make check` replays tests/fuzz/corpus/<target>/.
# With --enable-fuzzing (CC=clang), they are libFuzzer binaries and
# `make fuzz [FUZZ_SECONDS=n]` runs each on a copy of its corpus and fails
# on the first crash.  Targets: frame (the decoder), request (validation,
# scanner vs jansson, replies), discovery (datagram codec and registry),
# config (the witchd.conf parser), scan (the scanner's counts for the
# decode budget, its array walker and string decoder, against jansson),
# hello (the hello built-in on a connection without a socket), auth (the
# authentication exchange's checks), signed_disc (signed discovery
# datagrams under a key).

FUZZ_SECONDS = 30

EXTRA_DIST += %reldir%/common.h \
	%reldir%/corpus/auth/not_object.json \
	%reldir%/corpus/auth/ok.bin \
	%reldir%/corpus/auth/reflected.json \
	%reldir%/corpus/auth/short_hex.json \
	%reldir%/corpus/auth/wrong_proof.bin \
	%reldir%/corpus/signed_disc/leaving.json \
	%reldir%/corpus/signed_disc/other_key.json \
	%reldir%/corpus/signed_disc/stale.json \
	%reldir%/corpus/signed_disc/unsigned.json \
	%reldir%/corpus/signed_disc/up.json \
	%reldir%/corpus/hello/bad_types.json \
	%reldir%/corpus/hello/data_array.json \
	%reldir%/corpus/hello/escaped_id.json \
	%reldir%/corpus/hello/hash_mismatch.json \
	%reldir%/corpus/hello/hash_ok.json \
	%reldir%/corpus/hello/no_common.json \
	%reldir%/corpus/hello/no_data.json \
	%reldir%/corpus/hello/ok.json \
	%reldir%/corpus/scan/arrays.json \
	%reldir%/corpus/scan/dup_keys.json \
	%reldir%/corpus/scan/long_key.json \
	%reldir%/corpus/scan/objects.json \
	%reldir%/corpus/scan/scalars.json \
	%reldir%/corpus/scan/spaces.json \
	%reldir%/corpus/scan/strings.json \
	%reldir%/corpus/config/budgets.conf \
	%reldir%/corpus/config/errors.conf \
	%reldir%/corpus/config/full.conf \
	%reldir%/corpus/config/misc.conf \
	%reldir%/corpus/config/nul.conf \
	%reldir%/corpus/config/peers.conf \
	%reldir%/corpus/config/refused.conf \
	%reldir%/corpus/discovery/advertise6.json \
	%reldir%/corpus/discovery/array.json \
	%reldir%/corpus/discovery/bad_fields.json \
	%reldir%/corpus/discovery/dup_keys.json \
	%reldir%/corpus/discovery/leaving.json \
	%reldir%/corpus/discovery/raw_nul.json \
	%reldir%/corpus/discovery/up.json \
	%reldir%/corpus/discovery/version2.json \
	%reldir%/corpus/frame/bad_utf8.bin \
	%reldir%/corpus/frame/huge_length.bin \
	%reldir%/corpus/frame/max_exact.bin \
	%reldir%/corpus/frame/max_plus_one.bin \
	%reldir%/corpus/frame/nested.bin \
	%reldir%/corpus/frame/not_json.bin \
	%reldir%/corpus/frame/one.bin \
	%reldir%/corpus/frame/partial_tail.bin \
	%reldir%/corpus/frame/pipelined.bin \
	%reldir%/corpus/frame/short.bin \
	%reldir%/corpus/frame/split_bytes.bin \
	%reldir%/corpus/frame/split_mixed.bin \
	%reldir%/corpus/frame/stop.bin \
	%reldir%/corpus/frame/zero_length.bin \
	%reldir%/corpus/request/bad_utf8.json \
	%reldir%/corpus/request/bigint.json \
	%reldir%/corpus/request/deadline_neg.json \
	%reldir%/corpus/request/dup_keys.json \
	%reldir%/corpus/request/empty.json \
	%reldir%/corpus/request/fast_path.json \
	%reldir%/corpus/request/id_float.json \
	%reldir%/corpus/request/id_long.json \
	%reldir%/corpus/request/nested.json \
	%reldir%/corpus/request/no_endpoint_id.json \
	%reldir%/corpus/request/not_json.json \
	%reldir%/corpus/request/nul_key.json \
	%reldir%/corpus/request/nul_key_unterminated.json \
	%reldir%/corpus/request/number_then_nul.json \
	%reldir%/corpus/request/oneway_int.json \
	%reldir%/corpus/request/raw_nul.json \
	%reldir%/corpus/request/top_array.json \
	%reldir%/corpus/request/top_number.json \
	%reldir%/corpus/request/trailing.json \
	%reldir%/corpus/request/valid_escaped_nul.json \
	%reldir%/corpus/request/valid_full.json \
	%reldir%/corpus/request/valid_min.json \
	%reldir%/corpus/request/valid_string_id.json

# Per-program flags are set in both branches: a variable defined in one
# condition only would be empty, not AM_*, in the other.
FUZZ_TARGETS_ = frame request discovery config scan hello auth \
	signed_disc
FUZZ_CONFIG_SRC_ = src/witchd/config.c src/witchd/config.h src/witchd/apply.c \
	src/common/secs.c src/common/secs.h
if ENABLE_FUZZING
# Instrument the code under test (not only the harness) for coverage
# feedback; the rest comes from the convenience library.
FUZZ_FLAGS_ = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_CODEC_ = src/lib/proto/frame.c src/lib/proto/envelope.c \
	src/lib/proto/reply.c src/lib/proto/scan.c
FUZZ_MAIN_ =
FUZZ_DEF_ =
noinst_PROGRAMS += %reldir%/fuzz_frame %reldir%/fuzz_request \
	%reldir%/fuzz_discovery %reldir%/fuzz_config %reldir%/fuzz_scan \
	%reldir%/fuzz_hello %reldir%/fuzz_auth %reldir%/fuzz_signed_disc
else
FUZZ_FLAGS_ =
FUZZ_CODEC_ =
FUZZ_MAIN_ = %reldir%/replay.c
check_PROGRAMS += %reldir%/fuzz_frame %reldir%/fuzz_request \
	%reldir%/fuzz_discovery %reldir%/fuzz_config %reldir%/fuzz_scan \
	%reldir%/fuzz_hello %reldir%/fuzz_auth %reldir%/fuzz_signed_disc
TESTS += %reldir%/fuzz_frame %reldir%/fuzz_request \
	%reldir%/fuzz_discovery %reldir%/fuzz_config %reldir%/fuzz_scan \
	%reldir%/fuzz_hello %reldir%/fuzz_auth %reldir%/fuzz_signed_disc
endif

%canon_reldir%_fuzz_frame_SOURCES = %reldir%/fuzz_frame.c $(FUZZ_CODEC_) \
	$(FUZZ_MAIN_)
%canon_reldir%_fuzz_frame_CPPFLAGS = $(AM_CPPFLAGS) \
	-DWITCH_FUZZ_TARGET='"frame"'
%canon_reldir%_fuzz_frame_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS_)
%canon_reldir%_fuzz_frame_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_FLAGS_)
%canon_reldir%_fuzz_frame_LDADD = libwitch_core.la $(DEPS_LIBS)
%canon_reldir%_fuzz_request_SOURCES = %reldir%/fuzz_request.c \
	$(FUZZ_CODEC_) $(FUZZ_MAIN_)
%canon_reldir%_fuzz_request_CPPFLAGS = $(AM_CPPFLAGS) \
	-DWITCH_FUZZ_TARGET='"request"'
%canon_reldir%_fuzz_request_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS_)
%canon_reldir%_fuzz_request_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_FLAGS_)
%canon_reldir%_fuzz_request_LDADD = libwitch_core.la $(DEPS_LIBS)
%canon_reldir%_fuzz_discovery_SOURCES = %reldir%/fuzz_discovery.c \
	$(FUZZ_MAIN_)
if ENABLE_FUZZING
%canon_reldir%_fuzz_discovery_SOURCES += src/lib/discovery/registry.c
endif
%canon_reldir%_fuzz_discovery_CPPFLAGS = $(AM_CPPFLAGS) \
	-DWITCH_FUZZ_TARGET='"discovery"'
%canon_reldir%_fuzz_discovery_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS_)
%canon_reldir%_fuzz_discovery_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_FLAGS_)
%canon_reldir%_fuzz_discovery_LDADD = libwitch_core.la $(DEPS_LIBS)
%canon_reldir%_fuzz_config_SOURCES = %reldir%/fuzz_config.c \
	$(FUZZ_CONFIG_SRC_) $(FUZZ_MAIN_)
%canon_reldir%_fuzz_config_CPPFLAGS = $(AM_CPPFLAGS) \
	-DWITCH_FUZZ_TARGET='"config"'
%canon_reldir%_fuzz_config_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS_)
%canon_reldir%_fuzz_config_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_FLAGS_)
%canon_reldir%_fuzz_config_LDADD = libwitch_core.la $(DEPS_LIBS)
%canon_reldir%_fuzz_scan_SOURCES = %reldir%/fuzz_scan.c $(FUZZ_CODEC_) \
	$(FUZZ_MAIN_)
%canon_reldir%_fuzz_scan_CPPFLAGS = $(AM_CPPFLAGS) \
	-DWITCH_FUZZ_TARGET='"scan"'
%canon_reldir%_fuzz_scan_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS_)
%canon_reldir%_fuzz_scan_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_FLAGS_)
%canon_reldir%_fuzz_scan_LDADD = libwitch_core.la $(DEPS_LIBS)
%canon_reldir%_fuzz_hello_SOURCES = %reldir%/fuzz_hello.c $(FUZZ_CODEC_) \
	$(FUZZ_MAIN_)
if ENABLE_FUZZING
%canon_reldir%_fuzz_hello_SOURCES += src/lib/reactor/builtins.c
endif
%canon_reldir%_fuzz_hello_CPPFLAGS = $(AM_CPPFLAGS) \
	-DWITCH_FUZZ_TARGET='"hello"'
%canon_reldir%_fuzz_hello_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS_)
%canon_reldir%_fuzz_hello_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_FLAGS_)
%canon_reldir%_fuzz_hello_LDADD = libwitch_core.la $(DEPS_LIBS)
%canon_reldir%_fuzz_auth_SOURCES = %reldir%/fuzz_auth.c $(FUZZ_MAIN_)
if ENABLE_FUZZING
%canon_reldir%_fuzz_auth_SOURCES += src/lib/proto/auth.c
endif
%canon_reldir%_fuzz_auth_CPPFLAGS = $(AM_CPPFLAGS) \
	-DWITCH_FUZZ_TARGET='"auth"'
%canon_reldir%_fuzz_auth_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS_)
%canon_reldir%_fuzz_auth_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_FLAGS_)
%canon_reldir%_fuzz_auth_LDADD = libwitch_core.la $(DEPS_LIBS)
%canon_reldir%_fuzz_signed_disc_SOURCES = %reldir%/fuzz_signed_disc.c \
	$(FUZZ_MAIN_)
if ENABLE_FUZZING
%canon_reldir%_fuzz_signed_disc_SOURCES += src/lib/discovery/registry.c \
	src/lib/proto/auth.c
endif
%canon_reldir%_fuzz_signed_disc_CPPFLAGS = $(AM_CPPFLAGS) \
	-DWITCH_FUZZ_TARGET='"signed_disc"'
%canon_reldir%_fuzz_signed_disc_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS_)
%canon_reldir%_fuzz_signed_disc_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_FLAGS_)
%canon_reldir%_fuzz_signed_disc_LDADD = libwitch_core.la $(DEPS_LIBS)

if ENABLE_FUZZING
# Each target runs on a scratch copy of its corpus (new inputs are not
# written into the source tree); crashes are kept as
# tests/fuzz/crash-<target>-* in the build tree.  FUZZ_ONLY="a b" runs
# some of the targets.
FUZZ_ONLY = $(FUZZ_TARGETS_)
fuzz: %reldir%/fuzz_frame$(EXEEXT) %reldir%/fuzz_request$(EXEEXT) \
	%reldir%/fuzz_discovery$(EXEEXT) %reldir%/fuzz_config$(EXEEXT) \
	%reldir%/fuzz_scan$(EXEEXT) %reldir%/fuzz_hello$(EXEEXT) \
	%reldir%/fuzz_auth$(EXEEXT) %reldir%/fuzz_signed_disc$(EXEEXT)
	@for t in $(FUZZ_ONLY); do \
	  tmp=$$(mktemp -d) || exit 1; \
	  cp $(top_srcdir)/%reldir%/corpus/$$t/* "$$tmp"/ || \
	    { rm -rf "$$tmp"; exit 1; }; \
	  echo "fuzz $$t: $(FUZZ_SECONDS)s"; \
	  ./%reldir%/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	    -print_final_stats=1 -artifact_prefix=%reldir%/crash-$$t- \
	    "$$tmp" || \
	    { echo "fuzz $$t: FAILED" >&2; rm -rf "$$tmp"; exit 1; }; \
	  rm -rf "$$tmp"; \
	done
else
fuzz:
	@echo "make fuzz needs a libFuzzer build:" \
	    "configure --enable-fuzzing CC=clang" >&2; exit 1
endif
