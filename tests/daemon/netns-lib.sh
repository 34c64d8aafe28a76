# tests/daemon/netns-lib.sh: network namespaces for the tests, sourced by
# the tests/daemon/*netns*.sh scripts and test_auth.sh (POSIX sh).
#
# Every namespace, link and address lives in namespaces the test creates:
# nothing is added to the host's namespace, so servers there may bind
# 0.0.0.0 without listening on the host's interfaces.
#
#   netns_require	exit 77 (skip) unless root with ip(8)
#   netns_add NS	a namespace with lo up; 1 if it cannot be made
#   netns_pair NS1 IF1 ADDR1 NS2 IF2 ADDR2
#			a veth pair made inside NS1, one end in each
#			namespace, addresses with their prefix (10.x.y.z/24)
#   netns_bridge NS BR	a bridge BR in NS, up; 1 without bridge support
#   netns_plug BRNS BR PORT NS IF ADDR
#			a veth from bridge BR in BRNS (port PORT) to IF in
#			NS, with ADDR (and its broadcast address)
#   netns_cleanup	kill what runs in our namespaces, delete them
#
# netns_cleanup runs from the script's own EXIT trap.  NETNS_LIST holds
# the namespaces made so far.

NETNS_LIST=""

netns_require() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "SKIP: not root"
		exit 77
	fi
	if ! command -v ip >/dev/null 2>&1; then
		echo "SKIP: no ip(8)"
		exit 77
	fi
}

netns_add() {
	ip netns add "$1" 2>/dev/null || return 1
	NETNS_LIST="$NETNS_LIST $1"
	ip -n "$1" link set lo up
}

netns_pair() {
	ip -n "$1" link add "$2" type veth peer name "$5" netns "$4" &&
	    ip -n "$1" addr add "$3" dev "$2" &&
	    ip -n "$4" addr add "$6" dev "$5" &&
	    ip -n "$1" link set "$2" up &&
	    ip -n "$4" link set "$5" up
}

netns_bridge() {
	ip -n "$1" link add "$2" type bridge 2>/dev/null &&
	    ip -n "$1" link set "$2" up
}

netns_plug() {
	ip -n "$1" link add "$3" type veth peer name "$5" netns "$4" &&
	    ip -n "$1" link set "$3" master "$2" up &&
	    ip -n "$4" addr add "$6" brd + dev "$5" &&
	    ip -n "$4" link set "$5" up
}

netns_cleanup() {
	for _ns in $NETNS_LIST; do
		for _p in $(ip netns pids "$_ns" 2>/dev/null); do
			kill -KILL "$_p" 2>/dev/null
		done
		ip netns del "$_ns" 2>/dev/null
	done
	NETNS_LIST=""
}
