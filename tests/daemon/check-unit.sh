#!/bin/sh
# tests/daemon/check-unit.sh: the systemd units under systemd-analyze.
#
#  - "systemd-analyze verify" must be clean for witchd.service and
#    witchd.socket (on a copy whose ExecStart names the built witchd, since
#    verify wants the binary to exist; man pages are not looked up);
#  - "systemd-analyze security --offline=true" must rate witchd.service at
#    an exposure of at most $MAX_EXPOSURE (1.5).
# Exit 77 (skip) when systemd-analyze is not installed.
MAX_EXPOSURE=${MAX_EXPOSURE:-1.5}

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "systemd-analyze not found: skipping" >&2
	exit 77
fi
if [ -n "$WITCH_SRCDIR" ]; then
	units=$WITCH_SRCDIR/contrib/systemd
else
	units=$(cd "$(dirname "$0")/../../contrib/systemd" && pwd)
fi
witchd=${WITCH_BUILDDIR:+$WITCH_BUILDDIR/src/witchd/witchd}
if [ -z "$witchd" ] || [ ! -x "$witchd" ]; then
	witchd=/bin/true
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-unit.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
sed "s|^ExecStart=/usr/sbin/witchd|ExecStart=$witchd|" \
    "$units/witchd.service" >"$tmp/witchd.service" || exit 99
cp "$units/witchd.socket" "$tmp/witchd.socket" || exit 99
status=0

# verify: any output at all is a finding.
out=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify \
    --man=no witchd.service witchd.socket 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
	printf '%s\n' "$out"
	echo "FAIL: systemd-analyze verify (exit $rc)"
	status=1
else
	echo "ok: systemd-analyze verify"
fi

# security: "→ Overall exposure level for witchd.service: 1.3 OK :-)"
out=$(cd "$tmp" && systemd-analyze security --offline=true \
    --no-pager "$tmp/witchd.service" 2>&1)
rc=$?
level=$(printf '%s\n' "$out" |
    sed -n 's/.*[Oo]verall exposure level for [^:]*: *\([0-9][0-9.]*\).*/\1/p' |
    tail -1)
if [ -z "$level" ] && printf '%s\n' "$out" | grep -q -- 'unrecognized option'; then
	echo "systemd-analyze too old for --offline: security check skipped"
	[ $status -eq 0 ] && exit 77
elif [ -z "$level" ]; then
	printf '%s\n' "$out" | tail -20
	echo "FAIL: no exposure level from systemd-analyze security (exit $rc)"
	status=1
elif awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(l > m) }'; then
	printf '%s\n' "$out" | grep '✗'
	echo "FAIL: exposure $level > $MAX_EXPOSURE"
	status=1
else
	echo "ok: exposure $level <= $MAX_EXPOSURE"
fi
exit $status
