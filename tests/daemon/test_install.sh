#!/bin/sh
# tests/daemon/test_install.sh: install the build into a scratch DESTDIR and
# use it the way a consumer does.
#
# Runs "make install DESTDIR=$tmp" in $WITCH_BUILDDIR (only reading the
# build products), checks the installed tree (witchd, witchctl if built,
# headers, libwitch.pc, man pages), then compiles a small C program against
# the installed headers with the flags of the installed libwitch.pc, and
# runs it with LD_LIBRARY_PATH pointing into $tmp; with --enable-static,
# links one with libwitch.a and "pkg-config --static" too.  Prints one "ok"/"FAIL"
# line per check; exits 1 if any failed, 77 (skip) without WITCH_BUILDDIR,
# make, a C compiler or pkg-config, or when the build directory cannot be
# installed from.  Works under "make distcheck" (read-only srcdir, separate
# builddir): DESTDIR keeps every write inside $tmp.

skip() {
	echo "$*: skipping"
	exit 77
}

[ -n "$WITCH_BUILDDIR" ] || skip "WITCH_BUILDDIR is not set"
[ -f "$WITCH_BUILDDIR/Makefile" ] || skip "no Makefile in $WITCH_BUILDDIR"
command -v make >/dev/null 2>&1 || skip "make not found"
command -v pkg-config >/dev/null 2>&1 || skip "pkg-config not found"

# Run make as a program of its own, not as part of the make that runs the
# tests: no jobserver, flags or variables (DESTDIR, TESTS...) inherited.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES GNUMAKEFLAGS DESTDIR
make -n -C "$WITCH_BUILDDIR" install >/dev/null 2>&1 ||
	skip "$WITCH_BUILDDIR has no usable install target"

# A variable of the build's Makefile, as written there (e.g. "${prefix}/bin").
mkvar() {
	sed -n "s/^$1 = //p" "$WITCH_BUILDDIR/Makefile" | head -n 1
}
prefix=$(mkvar prefix)
exec_prefix=$(mkvar exec_prefix)
datarootdir=$(mkvar datarootdir)
eval "exec_prefix=\"$exec_prefix\""
eval "datarootdir=\"$datarootdir\""
bindir=$(mkvar bindir)
sbindir=$(mkvar sbindir)
libdir=$(mkvar libdir)
includedir=$(mkvar includedir)
mandir=$(mkvar mandir)
eval "bindir=\"$bindir\" sbindir=\"$sbindir\" libdir=\"$libdir\""
eval "includedir=\"$includedir\" mandir=\"$mandir\""
CC=$(mkvar CC)
SAN_CFLAGS=$(mkvar SAN_CFLAGS)
SAN_LDFLAGS=$(mkvar SAN_LDFLAGS)
if [ -z "$prefix" ] || [ -z "$libdir" ]; then
	skip "cannot read prefix and libdir from $WITCH_BUILDDIR/Makefile"
fi
CC=${CC:-cc}
command -v "${CC%% *}" >/dev/null 2>&1 || skip "C compiler '$CC' not found"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
dest=$tmp/root

fails=0
ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }
check_file() {
	if [ -f "$dest$1" ]; then ok "installed $1"; else fail "missing $1"; fi
}

# 1. Install.  Only "install" is made: no check, no distcheck.
if make -s -C "$WITCH_BUILDDIR" install DESTDIR="$dest" \
    >"$tmp/install.log" 2>&1; then
	ok "make install DESTDIR"
else
	cat "$tmp/install.log"
	fail "make install DESTDIR"
	exit 1
fi

# 2. The installed tree.
check_file "$sbindir/witchd"
[ -x "$dest$sbindir/witchd" ] || fail "$sbindir/witchd not executable"
if [ -x "$WITCH_BUILDDIR/src/witchctl/witchctl" ]; then
	check_file "$bindir/witchctl"
fi
for h in witch.h export.h version.h error.h server.h client.h; do
	check_file "$includedir/witch/$h"
done
check_file "$libdir/pkgconfig/libwitch.pc"
if ls "$dest$libdir"/libwitch.so.* >/dev/null 2>&1; then
	ok "installed $libdir/libwitch.so.*"
else
	fail "missing $libdir/libwitch.so.*"
fi
for m in man3/libwitch.3 man3/witch_client_new.3 man3/witch_server_new.3 \
    man3/witch_server_config_new.3 man3/witch_request_data.3 \
    man3/witch_strerror.3 man5/witchd.conf.5 man7/witch-protocol.7 \
    man8/witchd.8; do
	check_file "$mandir/$m"
done
if [ -x "$WITCH_BUILDDIR/src/witchctl/witchctl" ]; then
	check_file "$mandir/man1/witchctl.1"
fi
# "man witch_client_call": a link per function to its family page.
srcdir=${WITCH_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
nl=0
badl=
for l in $(sh "$srcdir/man/links.sh" "$srcdir"/man/*.3 | sed 's/ /:/'); do
	nl=$((nl + 1))
	if [ "$(readlink "$dest$mandir/man3/${l%%:*}")" != "${l#*:}" ] ||
	    [ ! -f "$dest$mandir/man3/${l%%:*}" ]; then
		badl="$badl ${l%%:*}"
	fi
done
if [ -z "$badl" ] && [ "$nl" -gt 0 ]; then
	ok "installed $nl links to family pages (man3/witch_client_call.3 ...)"
else
	fail "man3 links missing or wrong:$badl"
fi
# 3. A consumer: flags from the installed libwitch.pc, relocated into
# $dest by the sysroot (pkgconf applies it to jansson's flags too, which
# only adds directories that do not exist).
if flags=$(PKG_CONFIG_PATH="$dest$libdir/pkgconfig" \
    PKG_CONFIG_SYSROOT_DIR="$dest" pkg-config --cflags --libs libwitch \
    2>"$tmp/pc.err"); then
	ok "pkg-config --cflags --libs libwitch: $flags"
else
	cat "$tmp/pc.err"
	fail "pkg-config --cflags --libs libwitch"
	exit 1
fi
case " $flags " in
*" -I$dest$includedir "*) ok "cflags point into DESTDIR" ;;
*) fail "cflags do not point into DESTDIR: $flags" ;;
esac

cat >"$tmp/consumer.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <witch/witch.h>

int
main(void)
{
	witch_client_config_t *cfg = NULL;

	if (strcmp(witch_version(), WITCH_VERSION_STRING) != 0) {
		fprintf(stderr, "library %s, headers %s\n", witch_version(),
		    WITCH_VERSION_STRING);
		return 1;
	}
	if (witch_client_config_new(&cfg) != 0 ||
	    witch_client_config_set_port(cfg, 0) != WITCH_EINVAL ||
	    witch_client_config_set_host(cfg, "127.0.0.1") != 0)
		return 1;
	witch_client_config_free(cfg);
	printf("libwitch %s\n", witch_version());
	return 0;
}
EOF
# shellcheck disable=SC2086 # word splitting of flags is intended
if $CC -std=c11 -Wall -Werror $SAN_CFLAGS -o "$tmp/consumer" \
    "$tmp/consumer.c" $flags $SAN_LDFLAGS >"$tmp/cc.log" 2>&1; then
	ok "compile and link a consumer"
else
	cat "$tmp/cc.log"
	fail "compile and link a consumer"
	exit 1
fi
# It must load the installed library, not the build tree's.
if out=$(LD_LIBRARY_PATH="$dest$libdir" "$tmp/consumer" 2>&1); then
	ok "run the consumer: $out"
else
	echo "$out"
	fail "run the consumer"
fi
if command -v ldd >/dev/null 2>&1; then
	if LD_LIBRARY_PATH="$dest$libdir" ldd "$tmp/consumer" |
	    grep -qF "$dest$libdir/libwitch.so"; then
		ok "the consumer loads $libdir/libwitch.so from DESTDIR"
	else
		fail "the consumer does not load libwitch.so from DESTDIR"
	fi
fi

# 4. With --enable-static: libwitch.a and "pkg-config --static" give a
# consumer that does not load libwitch.so at all.
if [ -f "$dest$libdir/libwitch.a" ]; then
	sflags=$(PKG_CONFIG_PATH="$dest$libdir/pkgconfig" \
	    PKG_CONFIG_SYSROOT_DIR="$dest" pkg-config --static --cflags \
	    --libs libwitch 2>"$tmp/pc.err")
	sflags=$(echo " $sflags " | sed 's/ -lwitch / -l:libwitch.a /')
	# shellcheck disable=SC2086 # word splitting of flags is intended
	if $CC -std=c11 -Wall -Werror $SAN_CFLAGS -o "$tmp/consumer-static" \
	    "$tmp/consumer.c" $sflags $SAN_LDFLAGS >"$tmp/cc.log" 2>&1 &&
	    out=$("$tmp/consumer-static" 2>&1); then
		ok "a consumer linked with libwitch.a: $out"
	else
		cat "$tmp/cc.log"
		fail "a consumer linked with libwitch.a"
	fi
	if command -v ldd >/dev/null 2>&1 &&
	    ldd "$tmp/consumer-static" | grep -q libwitch; then
		fail "the static consumer still loads libwitch.so"
	fi
fi

[ $fails -eq 0 ] || exit 1
exit 0
