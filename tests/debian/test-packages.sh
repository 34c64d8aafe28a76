#!/bin/sh
# tests/debian/test-packages.sh: build the Debian packages from a clean copy
# of this tree and check them.
#
#  1. "dpkg-buildpackage -us -uc -b" in a copy holding exactly the files
#     git tracks or would track (no build output); DEB_BUILD_OPTIONS
#     defaults to "nocheck" (make check has its own runs), set it to ""
#     to run the test suite inside the build too;
#  2. the four packages and their dbgsym companions exist, and each
#     package's file list (files and symlinks) is exactly the expected one;
#  3. metadata: the conffile, the symbols file (generated from the version
#     script, debian/gen-symbols), dependencies, the sysusers and systemd
#     maintainer-script snippets, the unit the package ships;
#  4. lintian, when installed: no error, and no warning outside the
#     justified list below;
#  5. a tree configured in place (config.status) is refused at once, with
#     a message saying what to do;
#  6. with WITCH_PKG_INSTALL=1 (root; this changes the system: meant for
#     throwaway machines such as CI or a chroot): install, run the
#     installed witchd as the "witch" user and ping it with the installed
#     witchctl, upgrade to a repacked higher version keeping a locally
#     edited conffile, then purge and check nothing is left.  Under a
#     running systemd, also that witchd.service is active and answers,
#     and survives the upgrade.
# Prints one "ok"/"FAIL" line per check; exits 1 if any failed, 77 (skip)
# without git, dpkg-buildpackage, debhelper or the build dependencies.
# Artefacts are left in $WITCH_PKG_OUT when set (else removed).

skip() {
	echo "test-packages: $*: skipping"
	exit 77
}

top=$(cd "$(dirname "$0")/../.." && pwd)
[ -d "$top/debian" ] || skip "no debian/ directory"
command -v git >/dev/null 2>&1 || skip "git not found"
git -C "$top" rev-parse --git-dir >/dev/null 2>&1 || skip "not a git tree"
command -v dpkg-buildpackage >/dev/null 2>&1 ||
	skip "dpkg-buildpackage not found (Debian: dpkg-dev)"
command -v dh >/dev/null 2>&1 || skip "dh not found (Debian: debhelper)"
missing=$(cd "$top" && dpkg-checkbuilddeps 2>&1) ||
	skip "build dependencies missing: ${missing#*: }"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-packages.XXXXXX") || exit 1
cleanup() {
	if [ -n "${WITCH_PKG_OUT:-}" ]; then
		mkdir -p "$WITCH_PKG_OUT" &&
		    cp "$tmp"/*.deb "$tmp"/*.changes "$tmp"/build.log \
		    "$WITCH_PKG_OUT"/ 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

failures=0
ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }
check() { # check DESCRIPTION COMMAND...: ok if the command succeeds
	d=$1
	shift
	if "$@"; then ok "$d"; else fail "$d"; fi
}

# A clean copy: what git tracks, plus new files it does not ignore.
copy_tree() {
	mkdir -p "$1" &&
	    (cd "$top" && git ls-files -z -c -o --exclude-standard |
	    xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f";
	    done' sh | tar --null -cf - -T -) | tar -xf - -C "$1"
}

# ---- 1. build ----------------------------------------------------------------
src=$tmp/witch-core
copy_tree "$src" || { echo "FAIL - copying the tree"; exit 1; }
version=$(cd "$src" && dpkg-parsechangelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
jobs=$(nproc 2>/dev/null || echo 2)
start=$(date +%s)
(cd "$src" && env DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS-nocheck} parallel=$jobs" \
    dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
	tail -40 "$tmp/build.log"
	echo "FAIL - dpkg-buildpackage -us -uc -b (exit $rc)"
	exit 1
fi
ok "dpkg-buildpackage -us -uc -b ($(($(date +%s) - start)) s)"

# ---- 2. packages and file lists ----------------------------------------------
deb() { echo "$tmp/${1}_${version}_$arch.deb"; }
for p in libwitch0 libwitch-dev witchd witchctl libwitch0-dbgsym \
    witchd-dbgsym witchctl-dbgsym; do
	check "built $p" [ -f "$(deb "$p")" ]
done
check "no other package built" [ "$(ls "$tmp"/*.deb | wc -l)" -eq 7 ]

# Files and symlinks of a package, one a line, @MA@ for the triplet.
filelist() {
	dpkg-deb -c "$(deb "$1")" | awk '$1 !~ /^d/ {
		p = $6; if ($1 ~ /^l/) p = p " -> " $8; print p }' |
	    sed -e "s|^\./|/|" -e "s|$ma|@MA@|g" | LC_ALL=C sort
}
expect_files() { # expect_files PACKAGE <<list
	LC_ALL=C sort >"$tmp/want"
	filelist "$1" >"$tmp/got"
	if cmp -s "$tmp/want" "$tmp/got"; then
		ok "$1: file list"
	else
		diff -u "$tmp/want" "$tmp/got" | sed 's/^/# /'
		fail "$1: file list"
	fi
}
doc() {
	printf '/usr/share/doc/%s/%s\n' "$1" changelog.Debian.gz \
	    "$1" changelog.gz "$1" copyright
}
{ doc libwitch0; cat <<'EOF'
/usr/lib/@MA@/libwitch.so.0 -> libwitch.so.0.0.0
/usr/lib/@MA@/libwitch.so.0.0.0
EOF
} | expect_files libwitch0
{ doc libwitch-dev; cat <<'EOF'
/usr/include/witch/client.h
/usr/include/witch/discovery.h
/usr/include/witch/error.h
/usr/include/witch/export.h
/usr/include/witch/server.h
/usr/include/witch/version.h
/usr/include/witch/witch.h
/usr/lib/@MA@/libwitch.so -> libwitch.so.0.0.0
/usr/lib/@MA@/pkgconfig/libwitch.pc
/usr/share/man/man3/libwitch.3.gz
/usr/share/man/man3/witch_announcer_new.3.gz
/usr/share/man/man3/witch_client_new.3.gz
/usr/share/man/man3/witch_listener_new.3.gz
/usr/share/man/man3/witch_request_data.3.gz
/usr/share/man/man3/witch_server_config_new.3.gz
/usr/share/man/man3/witch_server_new.3.gz
/usr/share/man/man3/witch_strerror.3.gz
/usr/share/man/man7/witch-protocol.7.gz
EOF
} | expect_files libwitch-dev
{ doc witchd; cat <<'EOF'
/etc/witch/witchd.conf
/lib/systemd/system/witchd.service
/lib/systemd/system/witchd.socket
/usr/lib/sysusers.d/witchd.conf
/usr/sbin/witchd
/usr/share/man/man5/witchd.conf.5.gz
/usr/share/man/man8/witchd.8.gz
EOF
} | expect_files witchd
{ doc witchctl; cat <<'EOF'
/usr/bin/witchctl
/usr/share/bash-completion/completions/witchctl
/usr/share/doc/witchctl/examples/witch-metrics.service
/usr/share/doc/witchctl/examples/witch-metrics.timer
/usr/share/man/man1/witchctl.1.gz
EOF
} | expect_files witchctl

# ---- 3. metadata ---------------------------------------------------------------
ctl() { # ctl PACKAGE: its control area in $tmp/ctl.PACKAGE
	rm -rf "$tmp/ctl.$1"
	dpkg-deb -e "$(deb "$1")" "$tmp/ctl.$1"
}
for p in libwitch0 witchd witchctl libwitch-dev; do
	ctl $p
done
field() { dpkg-deb -f "$(deb "$1")" "$2"; }
check "witchd: /etc/witch/witchd.conf is its only conffile" \
    [ "$(cat "$tmp/ctl.witchd/conffiles")" = /etc/witch/witchd.conf ]
check "libwitch0: shlibs names libwitch.so.0" \
    grep -q "^libwitch 0 libwitch0 (>= " "$tmp/ctl.libwitch0/shlibs"
# Every symbol line of debian/libwitch0.symbols is in the shipped file.
grep '^ ' "$src/debian/libwitch0.symbols" | sort >"$tmp/sym.want"
grep '^ ' "$tmp/ctl.libwitch0/symbols" | sort >"$tmp/sym.got"
check "libwitch0: symbols file shipped, same symbols as debian/" \
    cmp -s "$tmp/sym.want" "$tmp/sym.got"
check "libwitch0: symbols file is what gen-symbols makes" \
    sh -c "'$src/debian/gen-symbols' '$src' | cmp -s - '$src/debian/libwitch0.symbols'"
check "libwitch0: $(grep -c '^ witch_' "$tmp/sym.got") witch_* symbols" \
    [ "$(grep -c '^ witch_' "$tmp/sym.got")" -ge 100 ]
check "libwitch-dev depends on libwitch0 of the same version" \
    sh -c "dpkg-deb -f '$(deb libwitch-dev)' Depends |
    grep -q 'libwitch0 (= $version)'"
check "libwitch-dev depends on libjansson-dev (witch.h includes it)" \
    sh -c "dpkg-deb -f '$(deb libwitch-dev)' Depends | grep -q libjansson-dev"
check "witchd and witchctl depend on libwitch0" sh -c "
    dpkg-deb -f '$(deb witchd)' Depends | grep -q 'libwitch0 (>= ' &&
    dpkg-deb -f '$(deb witchctl)' Depends | grep -q 'libwitch0 (>= '"
check "witchd depends on a systemd-sysusers" sh -c \
    "dpkg-deb -f '$(deb witchd)' Depends | grep -q 'systemd-sysusers'"
check "libwitch0 and libwitch-dev are Multi-Arch: same" sh -c "
    [ \"\$(dpkg-deb -f '$(deb libwitch0)' Multi-Arch)\" = same ] &&
    [ \"\$(dpkg-deb -f '$(deb libwitch-dev)' Multi-Arch)\" = same ]"
post=$tmp/ctl.witchd/postinst
check "witchd postinst: systemd-sysusers witchd.conf" \
    grep -q 'systemd-sysusers .*witchd.conf' "$post"
check "witchd postinst: enables witchd.service" \
    grep -q "deb-systemd-helper enable 'witchd.service'" "$post"
check "witchd postinst: a failed start does not fail dpkg" \
    grep -q "deb-systemd-invoke \$_dh_action 'witchd.service' >/dev/null || true" "$post"
check "witchd postinst: witchd.socket not enabled on a new install" \
    sh -c "! grep -q \"^[[:space:]]*deb-systemd-helper enable 'witchd.socket'\" '$post' ||
    grep -q \"debian-installed 'witchd.socket'\" '$post'"
check "witchd postrm: purge cleans the units' state" \
    grep -q 'deb-systemd-helper purge' "$tmp/ctl.witchd/postrm"
dpkg-deb --fsys-tarfile "$(deb witchd)" |
    tar -xOf - ./lib/systemd/system/witchd.service >"$tmp/unit"
check "witchd.service: ExecStart=/usr/sbin/witchd" \
    grep -q '^ExecStart=/usr/sbin/witchd$' "$tmp/unit"
check "witchd.service: User=witch, RuntimeDirectory=witch" sh -c "
    grep -q '^User=witch\$' '$tmp/unit' &&
    grep -q '^RuntimeDirectory=witch\$' '$tmp/unit'"
check "witchd.service: reload needs no /bin/kill" \
    sh -c "grep -q '^ExecReload=' '$tmp/unit' &&
    ! grep -q '^ExecReload=.*/bin/kill' '$tmp/unit'"
dpkg-deb --fsys-tarfile "$(deb witchd)" |
    tar -xOf - ./usr/lib/sysusers.d/witchd.conf >"$tmp/sysusers"
check "sysusers.d: the system user witch" \
    grep -q '^u witch - ' "$tmp/sysusers"

# ---- 4. lintian ----------------------------------------------------------------
# Warnings accepted, with why:
#  initial-upload-closes-no-bugs  the packages are built from the upstream
#                                 tree, not uploaded to Debian: no ITP bug.
allowed_warnings="initial-upload-closes-no-bugs"
if command -v lintian >/dev/null 2>&1; then
	lintian --allow-root -I --pedantic --tag-display-limit 0 \
	    "$tmp"/witch-core_"${version}"_"$arch".changes >"$tmp/lintian" 2>&1
	summary=$(awk '/^[EWIPX]: / { n[$1]++ }
	    END { printf "%d errors, %d warnings, %d info, %d pedantic",
	    n["E:"], n["W:"], n["I:"], n["P:"] }' "$tmp/lintian")
	sed -n 's/^\([EWIP]: .*\)/# \1/p' "$tmp/lintian"
	check "lintian: no error ($summary)" \
	    sh -c "! grep -q '^E: ' '$tmp/lintian'"
	unexpected=$(grep '^W: ' "$tmp/lintian" | awk '{ print $3 }' |
	    grep -v -x -F "$(printf '%s\n' $allowed_warnings)")
	check "lintian: no warning outside the justified list" \
	    [ -z "$unexpected" ]
else
	echo "# lintian not installed: check skipped"
fi

# ---- 5. a tree configured in place is refused --------------------------------
dirty=$tmp/dirty/witch-core
copy_tree "$dirty" && : >"$dirty/config.status"
(cd "$dirty" && env DEB_BUILD_OPTIONS=nocheck \
    dpkg-buildpackage -us -uc -b) >"$tmp/dirty.log" 2>&1
rc=$?
check "configured tree: dpkg-buildpackage fails" [ $rc -ne 0 ]
check "configured tree: says to run make distclean" \
    grep -q "configured in place (config.status): run 'make distclean'" \
    "$tmp/dirty.log"
check "configured tree: fails before configure runs" \
    sh -c "! grep -q 'dh_auto_configure' '$tmp/dirty.log'"

# ---- 6. install, upgrade, purge (opt-in: changes this system) ----------------
if [ "${WITCH_PKG_INSTALL:-0}" != 1 ]; then
	echo "# install/upgrade/purge: set WITCH_PKG_INSTALL=1 (root) to run"
elif [ "$(id -u)" -ne 0 ]; then
	echo "# install/upgrade/purge: needs root, skipped"
else
	. "$top/tests/debian/install-cycle.sh"
fi

if [ $failures -gt 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
exit 0
