#!/bin/bash
# test_discover_netns.sh: witchd announcing and "witchctl discover"
# listening, on a LAN built from network namespaces.
#
#   LAN 10.252.1.0/24 (bridge br1 in its own namespace):
#     A .1  witchd -b 0.0.0.0 -p 8888 -n hostA --project-id lab
#     B .2  witchd -b 0.0.0.0 -p 0    -n hostB
#     C .3  witchctl discover (one-shot, --json, --verify, --watch)
#
# Checks: both servers listed with their names, addresses and ports, and
# verified "ok" with --verify; --watch reports found, then lost (leaving)
# at once when witchd A gets SIGTERM; --no-discovery is quiet; --advertise
# replaces the source address.  The outputs go to the test log, for
# quoting.  Root only (exit 77 otherwise, or without namespaces, veth or
# bridges).  Nothing touches the host's interfaces: every address lives in
# these namespaces, which are removed on exit, on failure too.  Every wait
# is bounded.
set -u

if [ -z "${WITCH_BUILDDIR:-}" ]; then
	echo "SKIP: WITCH_BUILDDIR is not set"
	exit 77
fi
. "$(dirname "$0")/netns-lib.sh"
netns_require
WITCHD=$WITCH_BUILDDIR/src/witchd/witchd
CTL=$WITCH_BUILDDIR/src/witchctl/witchctl
for f in "$WITCHD" "$CTL"; do
	[ -x "$f" ] || { echo "FAIL - $f not built"; exit 1; }
done

IV=0.5		# announcement interval (s)
sfx=x$$
NS_BR=xbr$sfx
PIDS=""
dir=$(mktemp -d "${TMPDIR:-/tmp}/discover-netns.XXXXXX") || exit 1
: >"$dir/empty.conf"

cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	netns_cleanup
	if [ "${fails:-1}" = 0 ]; then rm -rf "$dir"; else
		echo "logs kept in $dir"; fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

fails=0
ok()   { echo "ok - $*"; }
bad()  { echo "FAIL - $*"; fails=$((fails + 1)); }
# show TITLE FILE: a captured output, in the log.
show() {
	echo "# ---- $1"
	sed 's/^/#   /' "$2"
}

# plug NS IP: a veth from NS to the bridge, address 10.252.1.IP.
plug() {
	netns_plug "$NS_BR" br1 "p$2$sfx" "$1" e1 "10.252.1.$2/24"
}

if ! netns_add "$NS_BR"; then echo "SKIP: ip netns add failed"; exit 77; fi
netns_bridge "$NS_BR" br1 || { echo "SKIP: no bridge support"; exit 77; }
for h in A B C; do
	netns_add "x$h$sfx" || { echo "FAIL: netns x$h"; exit 1; }
done
plug "xA$sfx" 1 && plug "xB$sfx" 2 && plug "xC$sfx" 3 ||
    { echo "SKIP: veth setup failed"; exit 77; }

# await FILE TIMEOUT_MS PATTERN...: a line holding every pattern.
await() {
	local f=$1 t=$(($2 / 100)) i=0
	shift 2
	while [ $i -le $t ]; do
		if has "$f" "$@"; then return 0; fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
has() {
	local f=$1 l
	shift
	[ -f "$f" ] || return 1
	l=$(cat "$f")
	for p in "$@"; do
		l=$(printf '%s\n' "$l" | grep -F -- "$p") || return 1
	done
	[ -n "$l" ]
}
# entry FILE PATTERN...: an object of the JSON array in FILE (one line)
# holding every pattern (server objects hold no nested objects).
entry() {
	local f=$1
	shift
	sed 's/},{/}\n{/g' "$f" >"$f.split"
	has "$f.split" "$@"
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# witchd NAME NS ARGS...: witchd in NS; log in $dir/NAME.err, bound TCP
# port in $dir/NAME.port once it listens.
witchd() {
	local name=$1 ns=$2
	shift 2
	rm -f "$dir/$name.port"
	ip netns exec "$ns" "$WITCHD" -c "$dir/empty.conf" \
	    --no-control-socket -b 0.0.0.0 --discovery-interval $IV \
	    --port-file "$dir/$name.port" "$@" >"$dir/$name.out" \
	    2>"$dir/$name.err" &
	PIDS="$PIDS $!"
	eval "pid_$name=$!"
	await "$dir/$name.port" 10000 "" || { bad "witchd $name started";
	    cat "$dir/$name.err"; return 1; }
	eval "port_$name=$(cat "$dir/$name.port")"
}
# stop NAME: SIGTERM, exit status 0 within 10 s.
stop() {
	local pid i=0
	eval "pid=\$pid_$1"
	kill -TERM "$pid"
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if wait "$pid"; then ok "witchd $1 exits 0 on SIGTERM"; else
		bad "witchd $1 exit status"; fi
	PIDS=$(echo " $PIDS " | sed "s/ $pid / /")
}
# ctl NAME ARGS...: witchctl in C, stdout to $dir/NAME.out; exit status.
ctl() {
	local name=$1
	shift
	ip netns exec "xC$sfx" "$CTL" "$@" >"$dir/$name.out" \
	    2>"$dir/$name.err"
}

witchd A "xA$sfx" -p 8888 -n hostA --project-id lab || exit 1
witchd B "xB$sfx" -p 0 -n hostB || exit 1
has "$dir/A.err" "discovery: UDP port 8889, every 0.5 s" &&
    ok "witchd A says it announces" || bad "witchd A start-up log"

# 1. One-shot, JSON.
if ctl json discover --json --timeout 2; then
	ok "discover --json exits 0"
else
	bad "discover --json exit status"
fi
show "witchctl discover --json --timeout 2" "$dir/json.out"
entry "$dir/json.out" '"name":"hostA"' '"address":"10.252.1.1"' \
    '"port":8888' '"project_id":"lab"' '"protocols":["v1"]' \
    '"verified":"off"' '"state":"up"' '"server_id":"' &&
    ok "hostA at 10.252.1.1:8888" || bad "hostA in --json"
entry "$dir/json.out" '"name":"hostB"' '"address":"10.252.1.2"' \
    "\"port\":$port_B" '"project_id":""' &&
    ok "hostB at 10.252.1.2:$port_B" || bad "hostB in --json"
n=$(grep -o '"name":' "$dir/json.out" | wc -l)
[ "$n" = 2 ] && ok "two servers listed" || bad "$n servers listed"
grep -Eq '"source_hash":"[0-9a-f]{32}"' "$dir/json.out" &&
    ok "source hash announced" || bad "no source hash"

# 2. One-shot with --verify, for people and as JSON.
if ctl human discover --verify --timeout 2; then
	ok "discover --verify exits 0"
else
	bad "discover --verify exit status"
fi
show "witchctl discover --verify --timeout 2" "$dir/human.out"
has "$dir/human.out" NAME ADDRESS PORT PROTOCOLS PROJECT SOURCE-HASH \
    VERIFIED && ok "table header" || bad "table header"
grep -Eq "^hostA +10\.252\.1\.1 +8888 +v1 +lab +[0-9a-f]{12} +ok$" \
    "$dir/human.out" && ok "hostA verified ok" || bad "hostA row"
grep -Eq "^hostB +10\.252\.1\.2 +$port_B +v1 +- +[0-9a-f]{12} +ok$" \
    "$dir/human.out" && ok "hostB verified ok" || bad "hostB row"
ctl vjson discover --verify --json --timeout 1.5 &&
    entry "$dir/vjson.out" '"name":"hostA"' '"verified":"ok"' &&
    entry "$dir/vjson.out" '"name":"hostB"' '"verified":"ok"' &&
    ok "discover --verify --json: both ok" || bad "--verify --json"
show "witchctl discover --verify --json --timeout 1.5" "$dir/vjson.out"

# 3. --watch: found, then lost at once when witchd A stops.
ip netns exec "xC$sfx" "$CTL" discover --watch >"$dir/watch.out" \
    2>"$dir/watch.err" &
pid_W=$!
PIDS="$PIDS $pid_W"
for h in A B; do
	await "$dir/watch.out" 5000 '"event":"found"' "\"name\":\"host$h\"" &&
	    ok "--watch: host$h found" || bad "--watch: host$h found"
done
t0=$(now_ms)
stop A
# The listener's expiry is 6 s: well before it, only "leaving" explains.
if await "$dir/watch.out" 3000 '"event":"lost"' '"name":"hostA"' \
    '"state":"leaving"'; then
	ok "--watch: hostA lost at once ($(($(now_ms) - t0)) ms)"
else
	bad "--watch: hostA not lost within 3 s"
fi
has "$dir/watch.out" '"event":"lost"' '"name":"hostB"' &&
    bad "--watch: hostB lost"
kill -TERM "$pid_W"
wait "$pid_W" && ok "--watch exits 0 on SIGTERM" || bad "--watch exit status"
PIDS=$(echo " $PIDS " | sed "s/ $pid_W / /")
show "witchctl discover --watch (SIGTERM to witchd A, then to witchctl)" \
    "$dir/watch.out"
n=$(grep -c '"event":"found"' "$dir/watch.out")
[ "$n" = 2 ] && ok "--watch: two found events" || bad "--watch: $n found"

# 4. --no-discovery: a server nobody hears about.
witchd A2 "xA$sfx" -p 8888 -n hostA --no-discovery || exit 1
ctl nodisc discover --json --timeout 1.5
show "witchctl discover --json (hostA with --no-discovery)" \
    "$dir/nodisc.out"
! grep -q '"name":"hostA"' "$dir/nodisc.out" &&
    grep -q '"name":"hostB"' "$dir/nodisc.out" &&
    ok "--no-discovery: only hostB" || bad "--no-discovery"
stop A2

# 5. --advertise: listeners use the advertised address.
witchd A3 "xA$sfx" -p 8888 -n hostA --advertise 10.252.1.100 || exit 1
ctl adv discover --json --timeout 1.5
show "witchctl discover --json (hostA with --advertise 10.252.1.100)" \
    "$dir/adv.out"
entry "$dir/adv.out" '"name":"hostA"' '"address":"10.252.1.100"' \
    '"port":8888' && ok "--advertise: address 10.252.1.100" ||
    bad "--advertise"
stop A3

# 6. Usage errors, no network needed.
ctl bad discover --timeout 0.01
[ $? = 2 ] && ok "discover --timeout 0.01: exit 2" || bad "bad timeout"
ctl bad2 discover --discovery-port 0
[ $? = 2 ] && ok "discover --discovery-port 0: exit 2" || bad "bad port"

stop B
grep -l "Sanitizer\|runtime error" "$dir"/*.err && bad "sanitizer reports"

if [ $fails -ne 0 ]; then
	echo "$fails check(s) failed"
	for f in "$dir"/*.out "$dir"/*.err; do echo "== $f"; cat "$f"; done
	exit 1
fi
exit 0
