#!/bin/sh
# tests/daemon/test_netns_ops.sh: the operations built-ins refuse
# untrusted clients, across two network namespaces.
#
# Creates the namespaces wtest-PID-s (server, 10.250.77.1/24) and
# wtest-PID-c (client, 10.250.77.2/24) joined by a veth pair, runs witchd
# in the server namespace bound to 10.250.77.1, and checks from the client
# namespace that clients, kill-client and monitor are answered
# "unauthorized" (exit 1) while ping and stats work.  A second witchd in
# the server namespace, bound to 127.0.0.1, serves clients and monitor to
# loopback clients.  No packet leaves the two namespaces.
#
# Needs root and ip(8); exits 77 (skip) without them, or when namespaces
# or veth pairs cannot be created (a restricted container).  Everything
# is removed on exit, on failure too.  Every wait is bounded.

if [ -z "$WITCH_BUILDDIR" ]; then
	echo "WITCH_BUILDDIR is not set: skipping"
	exit 77
fi
. "$(dirname "$0")/netns-lib.sh"
netns_require
WITCHD=$WITCH_BUILDDIR/src/witchd/witchd
CTL=$WITCH_BUILDDIR/src/witchctl/witchctl
for f in "$WITCHD" "$CTL"; do
	if [ ! -x "$f" ]; then
		echo "FAIL - $f not built"
		exit 1
	fi
done

NS_S=wtest-$$-s
NS_C=wtest-$$-c
SRV=10.250.77.1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_netns_ops.XXXXXX") || exit 1
pids=
cleanup() {
	for p in $pids; do
		kill -KILL "$p" 2>/dev/null
	done
	netns_cleanup
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

skip() {
	echo "$*: skipping"
	exit 77
}

# ---- the two namespaces and the link between them --------------------------
netns_add "$NS_S" && netns_add "$NS_C" || skip "ip netns add failed"
netns_pair "$NS_S" vs "$SRV/24" "$NS_C" vc 10.250.77.2/24 2>"$tmp/ip.err" ||
    skip "cannot set up the veth pair ($(cat "$tmp/ip.err"))"

. "$(dirname "$0")/check-lib.sh"

# start_witchd NAME ADDR [ARGS]: witchd in the server namespace on
# ADDR:8888.
start_witchd() {
	n=$1
	a=$2
	shift 2
	ip netns exec "$NS_S" "$WITCHD" -q -b "$a" -p 8888 -w 1 \
	    --no-control-socket --drain-timeout 1 \
	    --port-file "$tmp/$n.port" "$@" 2>>"$tmp/$n.log" &
	pids="$pids $!"
	wait_file "$tmp/$n.port"
}

# run NS ARGS...: witchctl in namespace NS; $tmp/out, $tmp/err, $rc.
run() {
	ns=$1
	shift
	ip netns exec "$ns" "$CTL" --timeout 3 "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}

expect_rc() { # expect_rc WANT DESCRIPTION
	if [ "$rc" -eq "$1" ]; then
		ok "$2 (exit $rc)"
	else
		fail "$2: exit $rc, expected $1"
		sed 's/^/	stderr: /' "$tmp/err"
	fi
}

# expect_unauthorized DESCRIPTION: exit 1, one line naming unauthorized.
expect_unauthorized() {
	expect_rc 1 "$1"
	check "$1: the server says unauthorized" \
	    has "$tmp/err" '^witchctl: server error: unauthorized: '
	check "$1: nothing on standard output" test ! -s "$tmp/out"
}

# --unprotected: without it (and without a key) protected mode refuses
# remote clients everything but hello and ping (tests/daemon/test_auth.sh);
# what is tested here is that the operations built-ins stay refused to
# remote clients even when the server serves them otherwise.
if ! start_witchd remote "$SRV" --unprotected; then
	echo "FAIL - witchd did not start in $NS_S"
	sed 's/^/	/' "$tmp/remote.log"
	exit 1
fi

# ---- from the client namespace: not trusted -------------------------------
R="-H $SRV -p 8888"
run "$NS_C" $R ping -c 1
expect_rc 0 "ping from $NS_C"
check "ping got its reply" has "$tmp/out" "^reply from $SRV:8888: seq=1 "
run "$NS_C" $R stats
expect_rc 0 "stats from $NS_C"
check "stats shows the ping" has "$tmp/out" '^ping  *1  *0$'
run "$NS_C" $R --json stats
expect_rc 0 "--json stats from $NS_C"
check "--json stats is the result object" has "$tmp/out" '^{"uptime":'
run "$NS_C" $R clients
expect_unauthorized "clients from $NS_C"
run "$NS_C" $R --json clients
expect_unauthorized "--json clients from $NS_C"
run "$NS_C" $R kill-client 1
expect_unauthorized "kill-client 1 from $NS_C"
run "$NS_C" $R monitor
expect_unauthorized "monitor from $NS_C"
run "$NS_C" $R stats
check "stats counts the refusals" has "$tmp/out" '^unauthorized  *4$'

# A non-loopback address is not trusted even from the server's own host.
run "$NS_S" $R clients
expect_unauthorized "clients to $SRV from $NS_S itself"

# ---- loopback in the server namespace: trusted ----------------------------
if start_witchd local 127.0.0.1; then
	L="-H 127.0.0.1 -p 8888"
	run "$NS_S" $L clients
	expect_rc 0 "clients over loopback in $NS_S"
	check "clients lists this client" \
	    has "$tmp/out" '^ *[0-9][0-9]*  127\.0\.0\.1:[0-9]*  witchctl  '
	run "$NS_S" $L kill-client 999999
	expect_rc 1 "kill-client of no client over loopback"
	check "kill-client: the server says no such client" \
	    has "$tmp/err" 'invalid_argument: kill_client: no such client'
	# monitor over loopback: subscribed, then interrupted.
	ip netns exec "$NS_S" "$CTL" $L monitor >"$tmp/mon" \
	    2>"$tmp/mon.err" &
	mon=$!
	pids="$pids $mon"
	i=0
	while ! grep -q '"netns-probe"' "$tmp/mon" && [ $i -lt 50 ]; do
		ip netns exec "$NS_S" "$CTL" $L echo netns-probe >/dev/null \
		    2>&1
		sleep 0.1
		i=$((i + 1))
	done
	check "monitor over loopback sees an echo" \
	    has "$tmp/mon" ' 127\.0\.0\.1:[0-9]* echo 2 "netns-probe"$'
	kill -INT "$mon" 2>/dev/null
	i=0
	while kill -0 "$mon" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	wait "$mon"
	rc=$?
	cp "$tmp/mon.err" "$tmp/err"
	expect_rc 0 "monitor over loopback ends on SIGINT"
else
	fail "loopback witchd did not start in $NS_S"
fi

if [ $failures -gt 0 ]; then
	echo "$failures check(s) failed"
	sed 's/^/	remote log: /' "$tmp/remote.log"
	exit 1
fi
echo "all checks passed"
exit 0
