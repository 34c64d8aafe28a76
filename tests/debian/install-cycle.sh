# tests/debian/install-cycle.sh: sourced by test-packages.sh (root, with
# WITCH_PKG_INSTALL=1): install the packages built in $tmp, use them,
# upgrade them to a repacked higher version, purge them.  Uses check(),
# deb(), $tmp, $version and $arch from test-packages.sh.  Changes the
# system it runs on (packages, the "witch" user, which purge leaves as
# Debian does with system users).

export DEBIAN_FRONTEND=noninteractive
pkgs="libwitch0 libwitch-dev witchd witchctl"
systemd_up=no
[ -d /run/systemd/system ] && systemd_up=yes

# The real uid of a process (no ps: procps may be absent).
uid_of() {
	awk '/^Uid:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

# Wait (at most 10 s) for witchctl to get an answer: wping ARGS...
wping() {
	i=0
	while ! /usr/bin/witchctl -t 1 "$@" ping -c 1 >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -ge 20 ] && return 1
		sleep 0.5
	done
}

# Install.
dpkg -i "$(deb libwitch0)" "$(deb libwitch-dev)" "$(deb witchd)" \
    "$(deb witchctl)" >"$tmp/install.log" 2>&1
rc=$?
[ $rc -eq 0 ] || tail -20 "$tmp/install.log"
check "dpkg -i installs the four packages" [ $rc -eq 0 ]
for p in $pkgs; do
	check "$p installed" sh -c "dpkg-query -W -f='\${Status}' $p |
	    grep -q 'install ok installed'"
done
check "the system user witch exists" sh -c "getent passwd witch >/dev/null"
check "installed witchctl runs" sh -c "/usr/bin/witchctl --version >/dev/null"
check "installed witchd accepts the shipped configuration" sh -c \
    "/usr/sbin/witchd --check-config -c /etc/witch/witchd.conf >/dev/null 2>&1"
check "systemd-analyze verify the installed units" sh -c "
    ! command -v systemd-analyze >/dev/null ||
    [ -z \"\$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no \
    /lib/systemd/system/witchd.service /lib/systemd/system/witchd.socket 2>&1)\" ]"

# A consumer of libwitch-dev.
cat >"$tmp/consumer.c" <<'EOF'
#include <stdio.h>
#include <witch/witch.h>
int
main(void)
{
	printf("%s\n", witch_version());
	return 0;
}
EOF
check "libwitch-dev: a program builds with pkg-config and runs" sh -c "
    cc -o '$tmp/consumer' '$tmp/consumer.c' \$(pkg-config --cflags --libs libwitch) &&
    '$tmp/consumer' | grep -q '^[0-9]'"

# The installed daemon as the witch user, on a free port, its port file
# in a directory of its own.
run_as_witch() {
	wdir=$tmp/w
	mkdir -p "$wdir" && chown witch:witch "$wdir" && chmod 0755 "$tmp"
	setpriv --reuid=witch --regid=witch --init-groups \
	    /usr/sbin/witchd -c /etc/witch/witchd.conf -p 0 \
	    --port-file "$wdir/port" -U none --discovery no \
	    2>"$tmp/witchd.log" &
	wpid=$!
	i=0
	while [ ! -s "$wdir/port" ] && [ $i -lt 50 ]; do
		i=$((i + 1))
		sleep 0.1
	done
}
if [ $systemd_up = yes ]; then
	check "witchd.service is active after install" \
	    systemctl is-active --quiet witchd.service
	check "witchd.service answers on 127.0.0.1:8888" wping
	check "witchd.service runs as witch" [ "$(uid_of \
	    "$(systemctl show -P MainPID witchd.service)")" = "$(id -u witch)" ]
	check "witchd.socket is not enabled" sh -c \
	    "! systemctl is-enabled --quiet witchd.socket"
	check "systemctl reload witchd works" systemctl reload witchd.service
else
	echo "# systemd is not running: the service is not started here"
	run_as_witch
	check "installed witchd runs as witch and answers" \
	    wping -p "$(cat "$wdir/port" 2>/dev/null)"
	check "installed witchd runs as witch" \
	    [ "$(uid_of $wpid)" = "$(id -u witch)" ]
	# A port already taken: a clear error, a non-zero exit (under
	# systemd the unit fails with that line; dpkg does not, see the
	# postinst check).
	/usr/sbin/witchd -p "$(cat "$wdir/port")" -U none --discovery no \
	    >/dev/null 2>"$tmp/busy.log"
	check "port taken: witchd exits non-zero" [ $? -ne 0 ]
	check "port taken: witchd says so" \
	    grep -q 'cannot listen on 127.0.0.1 port [0-9]*: Address already in use' \
	    "$tmp/busy.log"
	kill -TERM $wpid 2>/dev/null
	wait $wpid
	check "installed witchd exits 0 on SIGTERM" [ $? -eq 0 ]
fi

# Upgrade to the same packages repacked as version ...+up1, with a locally
# edited conffile (kept: the package's own copy did not change).
echo "# local edit" >>/etc/witch/witchd.conf
up=${version}+up1
for p in $pkgs; do
	rm -rf "$tmp/re"
	dpkg-deb -R "$(deb $p)" "$tmp/re" &&
	    sed -i -e "s/^Version: .*/Version: $up/" \
	    -e "s/(= $version)/(= $up)/" "$tmp/re/DEBIAN/control" &&
	    dpkg-deb -b "$tmp/re" "$tmp/up_$p.deb" >/dev/null
done
dpkg -i "$tmp"/up_*.deb >"$tmp/upgrade.log" 2>&1
rc=$?
[ $rc -eq 0 ] || tail -20 "$tmp/upgrade.log"
check "dpkg -i upgrades to $up" [ $rc -eq 0 ]
check "upgrade: all four at $up" sh -c "
    [ \$(dpkg-query -W -f='\${Version}\n' $pkgs | grep -cx '$up') -eq 4 ]"
check "upgrade: the local conffile edit is kept" \
    grep -q '^# local edit$' /etc/witch/witchd.conf
check "upgrade: no conffile prompt" sh -c "! grep -q 'Configuration file' '$tmp/upgrade.log'"
if [ $systemd_up = yes ]; then
	check "witchd.service active after the upgrade" \
	    systemctl is-active --quiet witchd.service
	check "witchd.service answers after the upgrade" wping
fi

# Purge: nothing of the packages is left.
dpkg --purge $pkgs >"$tmp/purge.log" 2>&1
rc=$?
[ $rc -eq 0 ] || tail -20 "$tmp/purge.log"
check "dpkg --purge" [ $rc -eq 0 ]
check "purge: no package left" sh -c "
    ! dpkg-query -W -f='\${Status}\n' $pkgs 2>/dev/null | grep -q installed"
for f in /etc/witch /usr/sbin/witchd /usr/bin/witchctl \
    /lib/systemd/system/witchd.service /lib/systemd/system/witchd.socket \
    /usr/lib/sysusers.d/witchd.conf /usr/include/witch \
    /etc/systemd/system/multi-user.target.wants/witchd.service; do
	check "purge: $f gone" sh -c "[ ! -e '$f' ] && [ ! -L '$f' ]"
done
if [ $systemd_up = yes ]; then
	check "purge: witchd.service stopped" sh -c \
	    "! systemctl is-active --quiet witchd.service"
fi
