#!/bin/bash
# test_discovery_netns.sh: discovery on a small LAN built from network
# namespaces.  Root only (exit 77 otherwise, or when namespaces, veth or
# bridges are not available).
#
#   LAN1 10.251.1.0/24 (bridge br1): A .1, B .2, C .3, M .4
#   LAN2 10.251.2.0/24 (bridge br2): M .4, D .5
#   LAN3 10.251.3.0/24 (bridge br3): E .5, and M .4 added after start
#
# A, B and M announce (disc_tool announce -s: a real server on 0.0.0.0);
# C, D and E listen.  B also runs an IPv6 announcer bound to "::".
# Every bridge lives in its own namespace: nothing touches the host's
# interfaces, and all traffic stays on these namespaces' addresses.
set -u

. "$(dirname "$0")/netns-lib.sh"
netns_require
tool=${WITCH_BUILDDIR:-.}/tests/tools/disc_tool
[ -x "$tool" ] || { echo "FAIL: $tool not built"; exit 1; }

IV=1000		# announcement interval (ms)
EXP=3000	# listener expiry (ms)
sfx=w$$
NS_BR=dbr$sfx
PIDS=""
dir=$(mktemp -d /tmp/disc-netns.XXXXXX) || exit 1

cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	netns_cleanup
	if [ "${fails:-1}" = 0 ]; then rm -rf "$dir"; else
		echo "logs kept in $dir"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fails=0
ok()   { echo "ok - $*"; }
bad()  { echo "FAIL - $*"; fails=$((fails + 1)); }

# plug NS LAN IP: a veth from NS to bridge brLAN, address 10.251.LAN.IP.
plug() {
	netns_plug "$NS_BR" "br$2" "p${1#d}$2" "$1" "e$2" "10.251.$2.$3/24"
}

if ! netns_add "$NS_BR"; then echo "SKIP: ip netns add failed"; exit 77; fi
for lan in 1 2 3; do
	netns_bridge "$NS_BR" "br$lan" ||
	    { echo "SKIP: no bridge support"; exit 77; }
done
for h in A B C M D E; do
	netns_add "d$h$sfx" || { echo "FAIL: netns d$h"; exit 1; }
	# No duplicate address detection: IPv6 link-local at once.  Written
	# to /proc/sys directly: sysctl(8) is procps, absent from a minimal
	# Debian, and with DAD on "C verifies B6" raced the tentative address.
	ip netns exec "d$h$sfx" sh -c 'for k in default all; do
	    echo 0 >/proc/sys/net/ipv6/conf/$k/accept_dad; done' 2>/dev/null
done
plug dA$sfx 1 1 && plug dB$sfx 1 2 && plug dC$sfx 1 3 && plug dM$sfx 1 4 &&
    plug dM$sfx 2 4 && plug dD$sfx 2 5 && plug dE$sfx 3 5 ||
    { echo "SKIP: veth setup failed"; exit 77; }

# run NAME NS ARGS...: disc_tool in NS, stdout to $dir/NAME.out.
run() {
	local name=$1 ns=$2
	shift 2
	ip netns exec "$ns" "$tool" "$@" >"$dir/$name.out" \
	    2>"$dir/$name.err" &
	PIDS="$PIDS $!"
	eval "pid_$name=$!"
}

# await FILE TIMEOUT_MS PATTERN...: a line matching every pattern.
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
now_ms() { echo $(($(date +%s%N) / 1000000)); }

run C dC$sfx listen -e $EXP -v
run D dD$sfx listen -e $EXP
run E dE$sfx listen -e $EXP
for l in C D E; do
	await "$dir/$l.out" 5000 '"ready":"listen"' || bad "listener $l ready"
done

t0=$(now_ms)
run A dA$sfx announce -s -n hostA -t $IV
run B dB$sfx announce -s -n hostB -t $IV
run M dM$sfx announce -s -n hostM -t $IV
run B6 dB$sfx announce -s -b :: -n hostB6 -t $IV

# 1. A and B found by C within one interval (+ slack for start-up).
for h in A B; do
	if await "$dir/C.out" $((IV + 1500)) '"event":"found"' \
	    "\"name\":\"host$h\""; then
		ok "C finds $h"
	else
		bad "C finds $h"
	fi
done
has "$dir/C.out" '"name":"hostA"' '"addr":"10.251.1.1"' &&
    ok "A seen at 10.251.1.1" || bad "A address"
has "$dir/C.out" '"name":"hostB"' '"addr":"10.251.1.2"' &&
    ok "B seen at 10.251.1.2" || bad "B address"

# 2. Multi-homed M: LAN1 sees 10.251.1.4, LAN2 sees 10.251.2.4.
await "$dir/C.out" 3000 '"event":"found"' '"name":"hostM"' \
    '"addr":"10.251.1.4"' && ok "C sees M at 10.251.1.4" || bad "M on LAN1"
await "$dir/D.out" 3000 '"event":"found"' '"name":"hostM"' \
    '"addr":"10.251.2.4"' && ok "D sees M at 10.251.2.4" || bad "M on LAN2"
has "$dir/D.out" '"addr":"10.251.1.' && bad "LAN1 address leaked to LAN2"
has "$dir/D.out" '"name":"hostA"' && bad "D (LAN2) sees A (LAN1 only)"
has "$dir/E.out" '"name":"host' && bad "E (LAN3) sees a server too early"

# 3. Verification over TCP (C runs with -v).
for h in A B; do
	await "$dir/C.out" 8000 '"event":"verified"' "\"name\":\"host$h\"" \
	    '"verify":"ok"' && ok "C verifies $h" || bad "C verifies $h"
done

# 4. IPv6: B6 (bound to ::) announces on ff02::114; C hears it from a
# link-local address, and verifies it over that address.
if await "$dir/C.out" 5000 '"event":"found"' '"name":"hostB6"' \
    '"addr":"fe80::'; then
	ok "C finds B6 over IPv6 link-local"
	await "$dir/C.out" 8000 '"event":"verified"' '"name":"hostB6"' \
	    '"verify":"ok"' && ok "C verifies B6 over IPv6" ||
	    bad "C verifies B6"
else
	if ip -n dC$sfx -6 addr show dev e1 | grep -q fe80; then
		bad "C finds B6 over IPv6"
	else
		echo "ok - # SKIP IPv6 not available"
	fi
fi

# 5. Garbage to C (unicast from B's namespace) does not disturb it.
nfound=$(grep -c '"event":"found"' "$dir/C.out")
ip netns exec dB$sfx bash -c '
	d=/dev/udp/10.251.1.3/8889
	printf "" >$d; printf "garbage" >$d; printf "{\"witch\":1" >$d
	printf "{\"witch\":2,\"name\":\"x\"}" >$d
	printf "{\"witch\":1,\"name\":7,\"server_id\":\"g\",\"port\":1,%s" \
	    "\"protocols\":[\"v1\"],\"state\":\"up\",\"seq\":1}" >$d
	head -c 1500 /dev/zero | tr "\0" " " >$d
	for i in $(seq 1 300); do printf "\x00\xff junk $i" >$d; done
' 2>/dev/null
sleep 1
if kill -0 "$pid_C" 2>/dev/null &&
    [ "$(grep -c '"event":"found"' "$dir/C.out")" = "$nfound" ] &&
    ! grep -q '"event":"lost"' "$dir/C.out"; then
	ok "garbage leaves C alone"
else
	bad "garbage disturbed C"
fi

# 6. An interface added after start is used: M joins LAN3.
t3=$(now_ms)
plug dM$sfx 3 4 || bad "plug M into LAN3"
await "$dir/E.out" $((2 * IV + 3000)) '"event":"found"' '"name":"hostM"' \
    '"addr":"10.251.3.4"' &&
    ok "E sees M on the new interface ($(($(now_ms) - t3)) ms)" ||
    bad "new interface not used"

# 6b. That interface goes down while M announces: E loses M after the
# expiry; M keeps announcing on LAN1 and LAN2.
ip -n dM$sfx link set e3 down
await "$dir/E.out" $((EXP + IV + 4000)) '"event":"lost"' '"name":"hostM"' \
    '"leaving":false' && ok "E loses M when its interface goes down" ||
    bad "E still sees M"
has "$dir/C.out" '"event":"lost"' '"name":"hostM"' &&
    bad "C lost M when another interface went down"

# 7. Clean stop of M: lost at once (leaving), on both LANs.
t1=$(now_ms)
kill -TERM "$pid_M"
await "$dir/C.out" 2000 '"event":"lost"' '"name":"hostM"' '"leaving":true' &&
    ok "C: M lost at once (leaving)" || bad "C: M leaving"
await "$dir/D.out" 2000 '"event":"lost"' '"name":"hostM"' '"leaving":true' &&
    ok "D: M lost at once (leaving)" || bad "D: M leaving"
dt=$(($(now_ms) - t1))
[ $dt -lt $EXP ] && ok "leaving took ${dt} ms (< expiry)" ||
    bad "leaving took ${dt} ms"

# 8. kill -9 A: lost only after the expiry, without leaving.
t2=$(now_ms)
kill -9 "$pid_A"
{ wait "$pid_A"; } 2>/dev/null
if await "$dir/C.out" $((EXP + IV + 4000)) '"event":"lost"' \
    '"name":"hostA"'; then
	dt=$(($(now_ms) - t2))
	has "$dir/C.out" '"event":"lost"' '"name":"hostA"' '"leaving":false' &&
	    [ $dt -ge $((EXP - IV * 5 / 4)) ] &&
	    ok "A lost after expiry (${dt} ms)" ||
	    bad "A lost too early, or as leaving"
else
	bad "A never lost"
fi
has "$dir/C.out" '"event":"lost"' '"name":"hostB"' && bad "B lost"

# Each server reported found exactly once per address.
for h in A B M; do
	n=$(grep '"event":"found"' "$dir/C.out" | grep -c "\"name\":\"host$h\"")
	[ "$n" = 1 ] && ok "C: one found for $h" || bad "C: $n found for $h"
done

# Stop the rest cleanly; listeners report counters.
for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
for p in $PIDS; do wait "$p" 2>/dev/null; done
PIDS=""
grep -h "malformed" "$dir/C.err" | sed 's/^/# C: /'
grep -l "Sanitizer" "$dir"/*.err && bad "sanitizer reports (see above files)"

if [ $fails -ne 0 ]; then
	echo "$fails check(s) failed"
	for f in "$dir"/*.out; do echo "== $f"; cat "$f"; done
	exit 1
fi
exit 0
