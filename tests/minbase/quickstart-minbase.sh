#!/bin/sh
# tests/minbase/quickstart-minbase.sh: the README's quick start on a minimal
# Debian 12, the way a new user meets it.
#
# Builds a "debootstrap --variant=minbase bookworm" root (what the
# debian:bookworm container image is), puts a fresh clone of this
# repository's HEAD in it with the shared folder beside it, and runs, as
# root inside the chroot and with no other preparation:
#
#   ./quickstart run     started in the background; must answer a ping on
#                        127.0.0.1:8888 (witchctl from the same build), then
#                        is stopped with SIGTERM and must exit 0
#   ./quickstart test    must end "N passed, 0 failed, N skipped"
#
# Long (a debootstrap, the build dependencies, three builds and three make
# check runs): not part of make check or CI.  Run it as root:
#
#   tests/minbase/quickstart-minbase.sh [ROOTDIR]
#
# ROOTDIR (default: a new directory under /var/tmp) is removed at the end
# unless KEEP_ROOT=1.  MIRROR overrides the Debian mirror (default: the
# first bookworm URI of the host's apt sources, else deb.debian.org).
# MINBASE_TARBALL=FILE caches the debootstrap: made on the first run, then
# unpacked instead of downloading again.
#
# The root is bind-mounted on itself (a mount point, as in a container), and
# gets /proc, /sys, /dev (with /dev/pts, /dev/shm), a tmpfs /run and the
# shared folder (read-only) bind-mounted, all inside a private mount namespace
# (unshare -m), so every mount disappears with the script even if it is
# killed; they are also unmounted explicitly on exit.
#
# Exit 0 when both commands pass, 1 when one fails, 77 (skip) without
# root, debootstrap, unshare, chroot or git.
set -u

skip() {
	echo "quickstart-minbase: $*: skipping" >&2
	exit 77
}

[ "$(id -u)" -eq 0 ] || skip "needs root"
for c in debootstrap unshare chroot git mount; do
	command -v "$c" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
	command -v "$c" >/dev/null 2>&1 || skip "$c not found"
done

src=$(cd "$(dirname "$0")/../.." && pwd)
shared=$(cd "$src/../shared" 2>/dev/null && pwd -P) ||
	skip "no shared folder beside $src"

# Re-run inside a private mount namespace: the mounts below never leak.
if [ -z "${MINBASE_INNER:-}" ]; then
	MINBASE_INNER=1 exec unshare -m --propagation private \
	    /bin/sh "$0" "$@"
fi

log() {
	echo "=== quickstart-minbase: $* ($(date -u +%H:%M:%S))"
}

mirror=${MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
	    /etc/apt/sources.list.d/*.sources 2>/dev/null |
	    awk '/^deb / && / bookworm / { print $2; exit }
	    /^URIs:/ { u = $2 } /^Suites:/ && / bookworm( |$)/ && u != "" {
	    print u; exit }')
fi
mirror=${mirror:-http://deb.debian.org/debian}

if [ $# -gt 0 ]; then
	root=$1
	mkdir -p "$root" || exit 1
else
	root=$(mktemp -d /var/tmp/witch-minbase.XXXXXX) || exit 1
fi
root=$(cd "$root" && pwd -P)
chmod 755 "$root"
testlog=$root.test.log

mounts=
cleanup() {
	for m in $mounts; do
		umount -l "$m" 2>/dev/null
	done
	if [ "${KEEP_ROOT:-0}" != 1 ]; then
		# Nothing may still be mounted under the root before rm -rf.
		if ! grep -q " $root/" /proc/mounts; then
			rm -rf "$root"
		else
			echo "quickstart-minbase: mounts left under $root," \
			    "not removing it" >&2
		fi
	fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# mnt DIR MOUNT-ARGS...: mount on DIR (made if missing), remembered for
# cleanup (last first).
mnt() {
	d=$1
	shift
	mkdir -p "$d" && mount "$@" "$d" && mounts="$d $mounts"
}

log "debootstrap --variant=minbase bookworm from $mirror into $root"
if [ ! -x "$root/bin/sh" ]; then
	if [ -n "${MINBASE_TARBALL:-}" ] && [ ! -f "$MINBASE_TARBALL" ]; then
		debootstrap --variant=minbase \
		    --make-tarball="$MINBASE_TARBALL" bookworm \
		    "$root.tarball-work" "$mirror" >"$root.debootstrap.log" \
		    2>&1 || { tail -20 "$root.debootstrap.log"; exit 1; }
		rm -rf "$root.tarball-work"
	fi
	if [ -n "${MINBASE_TARBALL:-}" ]; then
		set -- --unpack-tarball="$MINBASE_TARBALL"
	else
		set --
	fi
	if ! debootstrap --variant=minbase "$@" bookworm "$root" \
	    "$mirror" >"$root.debootstrap.log" 2>&1; then
		tail -20 "$root.debootstrap.log"
		exit 1
	fi
	rm -f "$root.debootstrap.log"
fi

# Name resolution for apt inside the root, as a container runtime gives it.
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

log "fresh clone of $(git -C "$src" rev-parse --short HEAD)"
rm -rf "$root/src"
mkdir -p "$root/src"
git clone -q --no-local "$src" "$root/src/witch-core" || exit 1

# The root a mount point of its own, as in a container: "ip netns add"
# (the network-namespace tests) remounts / as a slave.
mnt "$root" --bind "$root" || exit 1
mnt "$root/proc" -t proc proc || exit 1
mnt "$root/sys" -t sysfs sysfs || exit 1
mnt "$root/dev" --rbind /dev || exit 1
mnt "$root/run" -t tmpfs tmpfs || exit 1
mnt "$root/src/shared" --bind "$shared" || exit 1
mount -o remount,bind,ro "$root/src/shared" || exit 1

inchroot() {
	chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
	    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	    /bin/sh -c "$1"
}

status=0
log "./quickstart run"
# quickstart run builds, then execs witchd in the foreground: wait for the
# build, ping it, stop it with SIGTERM.
inchroot 'cd /src/witch-core || exit 1
	./quickstart run >/tmp/run.log 2>&1 &
	pid=$!
	ctl=build/src/witchctl/witchctl
	i=0
	while :; do
		if ! kill -0 $pid 2>/dev/null; then
			tail -30 /tmp/run.log
			echo "FAIL: quickstart run exited early"
			exit 1
		fi
		if [ -x $ctl ] && $ctl -t 1 ping -c 1 >/dev/null 2>&1; then
			break
		fi
		i=$((i + 1))
		if [ $i -gt 1800 ]; then
			tail -30 /tmp/run.log
			echo "FAIL: witchd not answering after 30 min"
			kill $pid
			exit 1
		fi
		sleep 1
	done
	$ctl ping -c 3 && $ctl status || exit 1
	kill -TERM $pid
	wait $pid
	rc=$?
	tail -5 /tmp/run.log
	[ $rc -eq 0 ] || { echo "FAIL: witchd exit $rc after SIGTERM"; exit 1; }
	echo "ok: quickstart run"' || status=1

log "./quickstart test"
inchroot 'cd /src/witch-core && ./quickstart test' >"$testlog" 2>&1
rc=$?
grep -E '^quickstart: |^[0-9]+ passed, |^(FAIL|ERROR|XPASS):' "$testlog"
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$testlog" | tail -1)
case $summary in
*" passed, 0 failed"*)
	[ $rc -eq 0 ] && echo "ok: quickstart test" ;;
*)
	tail -40 "$testlog"
	echo "FAIL: quickstart test (exit $rc); log kept in $testlog"
	status=1 ;;
esac
[ $rc -eq 0 ] || status=1
[ $status -ne 0 ] || rm -f "$testlog"
log "done: $( [ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
