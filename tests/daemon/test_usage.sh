#!/bin/sh
# tests/daemon/test_usage.sh: one error style for witchd, witchctl and
# witch-bench.  A bad command line gets exactly one line on stderr that
# starts with the program's name (never the libtool path of argv[0]) and,
# for an unknown option or argument, "(see 'PROG --help')"; exit status 2.
# Prints one "ok"/"FAIL" line per check; exits 1 if any failed, 77 (skip)
# without WITCH_BUILDDIR.

if [ -z "$WITCH_BUILDDIR" ]; then
	echo "WITCH_BUILDDIR is not set: skipping"
	exit 77
fi
WITCHD=$WITCH_BUILDDIR/src/witchd/witchd
CTL=$WITCH_BUILDDIR/src/witchctl/witchctl
BENCH=$WITCH_BUILDDIR/src/bench/witch-bench

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_usage.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

. "$(dirname "$0")/check-lib.sh"

# usage WANT-RC WANT-STDERR PROG ARGS...: run PROG, compare exit status
# and the whole of stderr (one line).
usage() {
	want_rc=$1
	want=$2
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	name=$(basename "$1")
	shift
	got=$(cat "$tmp/err")
	if [ "$rc" -eq "$want_rc" ] && [ "$got" = "$want" ] &&
	    [ "$(wc -l <"$tmp/err")" -eq 1 ]; then
		ok "$name $*: $want"
	else
		fail "$name $*: exit $rc (want $want_rc), stderr:"
		sed 's/^/	/' "$tmp/err"
		echo "	wanted: $want"
	fi
}

# ---- witchd ----------------------------------------------------------------
usage 2 "witchd: unknown option '--bogus' (see 'witchd --help')" \
    "$WITCHD" --bogus
usage 2 "witchd: unknown option '-x' (see 'witchd --help')" "$WITCHD" -x
usage 2 "witchd: option '-p' needs a value (see 'witchd --help')" \
    "$WITCHD" -p
usage 2 "witchd: option '--port' needs a value (see 'witchd --help')" \
    "$WITCHD" --port
usage 2 "witchd: unexpected argument 'extra' (see 'witchd --help')" \
    "$WITCHD" -t extra
usage 2 "witchd: -p 99999: value is too large (allowed 0 to 65535)" \
    "$WITCHD" -p 99999
usage 2 "witchd: --port 99999: value is too large (allowed 0 to 65535)" \
    "$WITCHD" --port 99999
printf '' >"$tmp/empty.conf"
"$WITCHD" -c "$tmp/empty.conf" -t --bind localhost >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 2 ] && grep -q "^witchd: --bind localhost: expected a numeric" \
    "$tmp/err" && ! grep -v -q '^witchd: ' "$tmp/err"; then
	ok "witchd -t --bind localhost: every line starts with 'witchd: '"
else
	fail "witchd -t --bind localhost: exit $rc"
	sed 's/^/	/' "$tmp/err"
fi

# Durations: the same parser as witchctl's (no exponent, no sign).
usage 2 "witchd: --idle-timeout 1e3: expected seconds from 0 to 604800" \
    "$WITCHD" -c "$tmp/empty.conf" -t --idle-timeout 1e3
usage 2 "witchd: --idle-timeout -1: expected seconds from 0 to 604800" \
    "$WITCHD" -c "$tmp/empty.conf" -t --idle-timeout -1
usage 0 "witchd: configuration OK" \
    "$WITCHD" -c "$tmp/empty.conf" -t --idle-timeout .5
usage 2 "witchctl: --timeout 1e-3: expected seconds from 0.001 to 86400" \
    "$CTL" --timeout 1e-3 info

# --check-config says when the default file is absent.
if [ ! -e /etc/witch/witchd.conf ]; then
	"$WITCHD" -t >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ $rc -eq 0 ] && [ "$(cat "$tmp/err")" = "witchd: no configuration \
file at /etc/witch/witchd.conf: built-in defaults
witchd: configuration OK" ]; then
		ok "witchd -t without a file says it uses the defaults"
	else
		fail "witchd -t without a file: exit $rc"
		sed 's/^/	/' "$tmp/err"
	fi
fi

# ---- witch-bench -----------------------------------------------------------
usage 2 "witch-bench: unknown option '--bogus' (see 'witch-bench --help')" \
    "$BENCH" --bogus
usage 2 "witch-bench: option '-c' needs a value (see 'witch-bench --help')" \
    "$BENCH" -c
usage 2 "witch-bench: unexpected argument 'x' (see 'witch-bench --help')" \
    "$BENCH" x
usage 2 "witch-bench: -p 0: value is too small (allowed 1 to 65535)" \
    "$BENCH" -p 0

# ---- witchctl --------------------------------------------------------------
usage 2 "witchctl: unknown option '--bogus' (see 'witchctl --help')" \
    "$CTL" --bogus info
usage 2 "witchctl: info: unknown option '-x' (see 'witchctl info --help')" \
    "$CTL" info -x

echo "$failures failed"
[ "$failures" -eq 0 ]
