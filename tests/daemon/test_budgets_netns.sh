#!/bin/sh
# tests/daemon/test_budgets_netns.sh: the budgets that exempt loopback,
# checked with a remote client.
#
# Creates the namespaces wbud-PID-s (server, 10.250.79.1/24) and
# wbud-PID-c (client, 10.250.79.2/24) joined by a veth pair, and runs
# tests/integ/test_budgets in the server namespace with WITCH_NETNS_SERVER
# and WITCH_NETNS_CLIENT (the two namespaces) and WITCH_NETNS_ADDR
# (10.250.79.1).  It then runs its remote tests only, a server bound to
# 0.0.0.0 inside the namespace and clients from the other one: the
# per-address connection limit (server_full past 3, loopback exempt, a
# freed slot reusable) and a keyless server's cap on a remote client's
# first frame (frame_too_large past 16 KiB and closed, exactly 16 KiB
# served, then 512 KiB; loopback exempt; counted).
#
# Needs root and ip(8); exits 77 (skip) without them, or when namespaces
# or veth pairs cannot be created.  Everything is removed on exit.

if [ -z "$WITCH_BUILDDIR" ]; then
	echo "SKIP: WITCH_BUILDDIR is not set"
	exit 77
fi
. "$(dirname "$0")/netns-lib.sh"
netns_require
TEST=$WITCH_BUILDDIR/tests/integ/test_budgets
if [ ! -x "$TEST" ]; then
	echo "SKIP: $TEST not built (cmocka)"
	exit 77
fi
NS_S=wbud-$$-s
NS_C=wbud-$$-c
trap netns_cleanup EXIT
trap 'exit 1' HUP INT TERM

netns_add "$NS_S" && netns_add "$NS_C" ||
    { echo "SKIP: ip netns add failed"; exit 77; }
netns_pair "$NS_S" vs 10.250.79.1/24 "$NS_C" vc 10.250.79.2/24 ||
    { echo "SKIP: cannot set up the veth pair"; exit 77; }

WITCH_NETNS_SERVER=/run/netns/$NS_S WITCH_NETNS_CLIENT=/run/netns/$NS_C \
    WITCH_NETNS_ADDR=10.250.79.1 ip netns exec "$NS_S" "$TEST"
