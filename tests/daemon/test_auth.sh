#!/bin/sh
# tests/daemon/test_auth.sh: witchd and witchctl with a key file.
#
# 1. witchd refuses to start, saying why, with a key file that is
#    readable by group or others, empty, too short, or missing.
# 2. With a good key file: witchctl with the same key is served, with
#    another key fails (exit 3, "wrong proof"), without a key gets
#    unauthorized for info (exit 1) while ping works.
# 3. A packet capture (tcpdump on lo) of an authenticated session holds
#    the exchange but not the key (skipped without tcpdump or root).
# 4. Protected mode across two network namespaces (tests/daemon/
#    netns-lib.sh): witchd without a key refuses a remote client
#    (unauthorized, the message says how to set a key, counted in status)
#    but serves its hello and ping, and loopback; --unprotected serves
#    both; with a key the remote client is served when it has the key
#    (skipped without root or ip(8)).
# Every wait is bounded; everything is removed on exit.

if [ -z "$WITCH_BUILDDIR" ]; then
	echo "WITCH_BUILDDIR is not set: skipping"
	exit 77
fi
WITCHD=$WITCH_BUILDDIR/src/witchd/witchd
CTL=$WITCH_BUILDDIR/src/witchctl/witchctl
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_auth.XXXXXX") || exit 1
. "$(dirname "$0")/netns-lib.sh"
pids=
NS_S=wauth-$$-s
NS_C=wauth-$$-c
cleanup() {
	for p in $pids; do
		kill -KILL "$p" 2>/dev/null
	done
	netns_cleanup
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

. "$(dirname "$0")/check-lib.sh"
skipped=0

# refuse DESCRIPTION PATTERN KEYFILE: witchd exits non-zero saying PATTERN.
refuse() {
	timeout 10 "$WITCHD" -b 127.0.0.1 -p 0 --no-control-socket \
	    --no-discovery --key-file "$3" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && has "$tmp/err" "$2"; then
		ok "$1 (exit $rc)"
	else
		fail "$1: exit $rc"
		sed 's/^/	stderr: /' "$tmp/err"
	fi
}

# ---- 1. key files witchd refuses -----------------------------------------
openssl_hex() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
openssl_hex >"$tmp/key"
echo >>"$tmp/key"
chmod 600 "$tmp/key"
openssl_hex >"$tmp/other"
chmod 600 "$tmp/other"
cp "$tmp/key" "$tmp/loose" && chmod 640 "$tmp/loose"
: >"$tmp/empty" && chmod 600 "$tmp/empty"
printf 'short-key-31-bytes-long-012345\n' >"$tmp/short"
chmod 600 "$tmp/short"
refuse "group-readable key file" "mode 0640 lets group or others" \
    "$tmp/loose"
chmod 604 "$tmp/loose"
refuse "other-readable key file" "mode 0604 lets group or others" \
    "$tmp/loose"
refuse "empty key file" "is empty" "$tmp/empty"
refuse "too short key file" "holds 30 bytes; a key has 32 to 1024" \
    "$tmp/short"
refuse "missing key file" "No such file" "$tmp/nope"
# --check-config says the same.
"$WITCHD" -t --key-file "$tmp/loose" >/dev/null 2>"$tmp/err"
check "--check-config refuses the loose key file" \
    has "$tmp/err" "key-file.*mode 0604"

# ---- 2. witchctl with the right, a wrong and no key -----------------------
"$WITCHD" -b 127.0.0.1 -p 0 --no-control-socket --no-discovery \
    --key-file "$tmp/key" --port-file "$tmp/port" -v 2>"$tmp/witchd.log" &
pids="$pids $!"
if ! wait_file "$tmp/port"; then
	echo "FAIL - witchd with a key did not start"
	sed 's/^/	/' "$tmp/witchd.log"
	exit 1
fi
P=$(cat "$tmp/port")
run() {
	timeout 10 "$CTL" --timeout 3 "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}
run -p "$P" -k "$tmp/key" info
check "the right key: info served (exit $rc)" test "$rc" -eq 0
check "the right key: info printed" has "$tmp/out" '^name: '
run -p "$P" --key-file "$tmp/other" echo hi
check "a wrong key: exit 3 (exit $rc)" test "$rc" -eq 3
check "a wrong key: says so" has "$tmp/err" 'wrong proof'
check "a wrong key: nothing served" test ! -s "$tmp/out"
run -p "$P" info
check "no key: info unauthorized (exit $rc)" test "$rc" -eq 1
check "no key: the server says how" \
    has "$tmp/err" 'unauthorized: authentication required'
run -p "$P" ping -c 1
check "no key: ping still answered (exit $rc)" test "$rc" -eq 0
run -p "$P" -k "$tmp/loose" info
check "witchctl refuses a loose key file (exit $rc)" test "$rc" -eq 2
run -p "$P" -k "$tmp/key" stats
check "stats counts the failed attempt" has "$tmp/out" '^auth failed: *1$'
check "witchd logged the failure" has "$tmp/witchd.log" \
    'warning: auth: client .* failed: auth: wrong proof'

# ---- 3. the key is never on the wire ----------------------------------------
if [ "$(id -u)" -ne 0 ] || ! command -v tcpdump >/dev/null 2>&1; then
	echo "skip - packet capture (needs root and tcpdump)"
	skipped=$((skipped + 1))
else
	# -Z root: write into our private directory after the capture starts.
	tcpdump -Z root --immediate-mode -i lo -U -w "$tmp/cap.pcap" "tcp port $P" \
	    2>"$tmp/tcpdump.err" &
	tpid=$!
	pids="$pids $tpid"
	i=0
	while ! grep -q "listening on" "$tmp/tcpdump.err" && [ $i -lt 100 ]
	do
		sleep 0.05
		i=$((i + 1))
	done
	run -p "$P" -k "$tmp/key" echo capture-marker
	check "captured session served (exit $rc)" test "$rc" -eq 0
	# Until tcpdump has written the session's last packets.
	i=0
	while ! grep -q -a 'capture-marker' "$tmp/cap.pcap" && [ $i -lt 50 ]
	do
		sleep 0.1
		i=$((i + 1))
	done
	sleep 0.3
	kill -INT "$tpid" 2>/dev/null
	wait "$tpid" 2>/dev/null
	key=$(tr -d '\n' <"$tmp/key")
	half=$(printf '%s' "$key" | cut -c1-32)
	check "the capture holds the session" \
	    grep -q -a 'capture-marker' "$tmp/cap.pcap"
	check "the capture holds the auth exchange" \
	    grep -q -a '"endpoint":"auth"' "$tmp/cap.pcap"
	check "the capture does not hold the key" \
	    sh -c "! grep -q -a -F '$key' '$tmp/cap.pcap'"
	check "nor half of it" \
	    sh -c "! grep -q -a -F '$half' '$tmp/cap.pcap'"
fi

# ---- 4. protected mode from another network namespace ----------------------
netns_skip() {
	echo "skip - protected mode across namespaces ($*)"
	skipped=$((skipped + 1))
}
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null 2>&1; then
	netns_skip "needs root and ip(8)"
elif ! netns_add "$NS_S" || ! netns_add "$NS_C"; then
	netns_skip "ip netns add failed"
elif ! netns_pair "$NS_S" vs 10.250.78.1/24 "$NS_C" vc 10.250.78.2/24 \
    2>"$tmp/ip.err"; then
	netns_skip "cannot set up the veth pair"
else
	# start NAME ARGS...: witchd on 0.0.0.0:8888 in NS_S.
	start() {
		n=$1
		shift
		ip netns exec "$NS_S" "$WITCHD" -b 0.0.0.0 -p 8888 \
		    --no-control-socket --no-discovery \
		    --drain-timeout 1 --port-file "$tmp/$n.port" \
		    "$@" 2>"$tmp/$n.log" &
		spid=$!
		pids="$pids $spid"
		wait_file "$tmp/$n.port"
	}
	nrun() {
		ns=$1
		shift
		ip netns exec "$ns" timeout 10 "$CTL" --timeout 3 "$@" \
		    >"$tmp/out" 2>"$tmp/err"
		rc=$?
	}
	R="-H 10.250.78.1 -p 8888"
	L="-H 127.0.0.1 -p 8888"
	start protected
	check "protected: witchd says so at start" \
	    has "$tmp/protected.log" 'notice: protected mode: no key'
	nrun "$NS_C" $R ping -c 1
	check "protected: remote ping answered (exit $rc)" \
	    test "$rc" -eq 0
	# witchctl says hello on connecting; once more, by hand.
	nrun "$NS_C" $R --json call hello
	check "protected: remote hello answered (exit $rc)" \
	    test "$rc" -eq 0
	check "protected: hello's result" has "$tmp/out" '"server_id":'
	nrun "$NS_C" $R echo hi
	check "protected: remote echo refused (exit $rc)" \
	    test "$rc" -eq 1
	check "protected: the refusal says how to set a key" \
	    has "$tmp/err" 'unauthorized: protected mode: .*--key-file'
	nrun "$NS_S" $L echo hi
	check "protected: loopback served (exit $rc)" test "$rc" -eq 0
	nrun "$NS_S" $L --json status
	check "protected: the one refusal counted" \
	    has "$tmp/out" '"unauthorized":1[,}]'
	kill "$spid"
	wait "$spid" 2>/dev/null
	start unprotected --unprotected
	check "unprotected: witchd warns at start" \
	    has "$tmp/unprotected.log" 'protected mode is OFF'
	nrun "$NS_C" $R echo hi
	check "unprotected: remote served (exit $rc)" test "$rc" -eq 0
	kill "$spid"
	wait "$spid" 2>/dev/null
	start keyed --key-file "$tmp/key"
	nrun "$NS_C" $R -k "$tmp/key" echo hi
	check "a key: remote client with it served (exit $rc)" \
	    test "$rc" -eq 0
	nrun "$NS_C" $R echo hi
	check "a key: remote client without it refused (exit $rc)" \
	    test "$rc" -eq 1
	kill "$spid"
	wait "$spid" 2>/dev/null
fi

echo "$failures failure(s), $skipped part(s) skipped"
[ "$failures" -eq 0 ]
