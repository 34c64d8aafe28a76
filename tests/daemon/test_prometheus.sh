#!/bin/sh
# tests/daemon/test_prometheus.sh: "witchctl stats --prometheus" against a
# live witchd, and the contrib textfile-collector units.
#
# Starts $WITCH_BUILDDIR/src/witchd/witchd on 127.0.0.1 (port 0 and
# --port-file), sends known traffic, and checks the metrics: every family
# has HELP and TYPE lines, names start with witch_, counters end in
# _total, each sample line has the exposition syntax, the values match the
# traffic, and "promtool check metrics" (Debian: prometheus) accepts the
# output when promtool is installed.  Then: --json with --prometheus is a
# usage error; a server that is gone gives exit 3 and no output; calls
# racing a SIGTERM either print complete metrics or nothing; the
# ExecStart= of contrib/prometheus/witch-metrics.service, run as written,
# replaces witch.prom atomically and removes it when witchd is down; and
# systemd-analyze verify accepts the service and timer (when installed).
# Prints one "ok"/"FAIL" line per check; exits 1 if any failed, 77 (skip)
# without WITCH_BUILDDIR.  Every wait is bounded.

if [ -z "$WITCH_BUILDDIR" ]; then
	echo "WITCH_BUILDDIR is not set: skipping"
	exit 77
fi
WITCHD=$WITCH_BUILDDIR/src/witchd/witchd
CTL=$WITCH_BUILDDIR/src/witchctl/witchctl
srcdir=${WITCH_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
for f in "$WITCHD" "$CTL"; do
	if [ ! -x "$f" ]; then
		echo "FAIL - $f not built"
		exit 1
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_prometheus.XXXXXX") || exit 1
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

. "$(dirname "$0")/check-lib.sh"
# sample FILE LINE-START: the value of the first sample line starting so.
sample() {
	awk -v p="$2 " 'index($0, p) == 1 { print substr($0, length(p) + 1);
	    exit }' "$1"
}

# start: witchd on a free port, its port in $port.
start() {
	rm -f "$tmp/port"
	"$WITCHD" -p 0 --port-file "$tmp/port" -U none --discovery no \
	    -w 2 -m 123 --log-level warning "$@" 2>>"$tmp/witchd.log" &
	pid=$!
	i=0
	while [ ! -s "$tmp/port" ]; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
			cat "$tmp/witchd.log"
			echo "FAIL - witchd did not start"
			exit 1
		fi
		sleep 0.1
	done
	port=$(cat "$tmp/port")
}

start

# ---- known traffic, then the metrics ---------------------------------------
for i in 1 2 3; do
	"$CTL" -p "$port" call echo '"hi"' >/dev/null
done
"$CTL" -p "$port" call no_such_endpoint >/dev/null 2>&1
"$CTL" -p "$port" stats --prometheus >"$tmp/m" 2>"$tmp/err"
check "stats --prometheus exits 0" [ $? -eq 0 ]
check "stats --prometheus writes nothing on stderr" [ ! -s "$tmp/err" ]
m=$tmp/m

for f in witch_server_info witch_uptime_seconds witch_clients \
    witch_clients_max witch_workers witch_queued_requests \
    witch_running_requests witch_peers witch_connections_accepted_total \
    witch_connections_rejected_total witch_requests_served_total \
    witch_requests_failed_total witch_protocol_errors_total \
    witch_requests_overloaded_total witch_output_limit_drops_total \
    witch_accept_emfile_pauses_total witch_endpoint_requests_total \
    witch_endpoint_request_errors_total witch_error_replies_total \
    witch_request_duration_seconds witch_frame_bytes_held \
    witch_frame_timeouts_total witch_frame_budget_drops_total \
    witch_preauth_frame_refusals_total witch_address_refusals_total \
    witch_depth_refusals_total witch_decode_refusals_total; do
	check "family $f has HELP, TYPE and a sample" sh -c "
	    grep -q '^# HELP $f ' '$m' && grep -q '^# TYPE $f ' '$m' &&
	    grep -q '^$f[{ ]' '$m'"
done

# Every line: a comment of HELP or TYPE, or NAME[{LABELS}] VALUE.
check "every line has the exposition syntax" awk '
	/^# (HELP|TYPE) witch_[a-z_]+ / { next }
	/^witch_[a-z_]+(\{[a-z_]+="([^"\\]|\\.)*"(,[a-z_]+="([^"\\]|\\.)*")*\})? ([-+]?[0-9.]+([eE][-+]?[0-9]+)?|NaN|[+-]Inf)$/ { next }
	{ print "bad line: " $0; bad = 1 }
	END { exit bad }' "$m"
check "counters end in _total, no other type does" awk '
	$1 == "#" && $2 == "TYPE" {
		t = ($4 == "counter"); s = ($3 ~ /_total$/)
		if (t != s) { print "bad: " $0; bad = 1 }
	}
	END { exit bad }' "$m"
check "each family has exactly one HELP and one TYPE" sh -c "
	! grep '^# HELP ' '$m' | awk '{ print \$3 }' | sort | uniq -d | grep -q . &&
	! grep '^# TYPE ' '$m' | awk '{ print \$3 }' | sort | uniq -d | grep -q . &&
	[ \$(grep -c '^# HELP ' '$m') -eq \$(grep -c '^# TYPE ' '$m') ]"

check "echo counted 3 times" \
    [ "$(sample "$m" 'witch_endpoint_requests_total{endpoint="echo"}')" = 3 ]
check "echo has no handler errors" \
    [ "$(sample "$m" 'witch_endpoint_request_errors_total{endpoint="echo"}')" = 0 ]
check "unknown_endpoint error reply counted once" \
    [ "$(sample "$m" 'witch_error_replies_total{code="unknown_endpoint"}')" = 1 ]
check "requests failed counts the unknown endpoint" \
    [ "$(sample "$m" witch_requests_failed_total)" = 1 ]
check "clients_max is the --max-clients value" \
    [ "$(sample "$m" witch_clients_max)" = 123 ]
check "workers is the -w value" [ "$(sample "$m" witch_workers)" = 2 ]
check "peers is 0 (no peer table yet)" [ "$(sample "$m" witch_peers)" = 0 ]
check "connections accepted counts the 5 connections" \
    [ "$(sample "$m" witch_connections_accepted_total)" = 5 ]
check "server_info carries the version" \
    grep -q '^witch_server_info{name="witch",server_id="[0-9a-f]*",version="[0-9.]*"} 1$' "$m"
check "latency: four quantiles in seconds and a count" sh -c "
	[ \$(grep -c '^witch_request_duration_seconds{quantile=\"0\\.[0-9]*\"} [0-9.e+-]*\$' '$m') -eq 4 ] &&
	grep -q '^witch_request_duration_seconds_count [1-9]' '$m'"
check "p50 latency below a second" awk '
	index($0, "witch_request_duration_seconds{quantile=\"0.5\"} ") == 1 {
		found = 1; if (!($2 > 0 && $2 < 1)) exit 1 }
	END { exit !found }' "$m"
check "uptime is a positive number of seconds" awk '
	$1 == "witch_uptime_seconds" { found = 1; if (!($2 > 0)) exit 1 }
	END { exit !found }' "$m"

if command -v promtool >/dev/null 2>&1; then
	if promtool check metrics <"$m" >"$tmp/promtool" 2>&1; then
		ok "promtool check metrics"
	else
		cat "$tmp/promtool"
		fail "promtool check metrics"
	fi
else
	echo "# promtool not installed (Debian: prometheus): check skipped"
fi

# ---- bad input ---------------------------------------------------------------
"$CTL" -p "$port" --json stats --prometheus >"$tmp/out" 2>"$tmp/err"
check "--json with --prometheus: exit 2" [ $? -eq 2 ]
check "--json with --prometheus: nothing on stdout" [ ! -s "$tmp/out" ]
check "--json with --prometheus: says why" grep -q 'exclusive' "$tmp/err"
"$CTL" -p "$port" stats --prometheus extra >/dev/null 2>&1
check "stats --prometheus with an operand: exit 2" [ $? -eq 2 ]

# ---- the contrib textfile writer, as its unit runs it -------------------------
unit=$srcdir/contrib/prometheus/witch-metrics.service
# ExecStart= with its continuation lines joined (backslash-newline is a
# space to systemd), the /bin/sh -c '...' quoting taken off.
script=$(awk '/^ExecStart=/ { on = 1 } on { if (sub(/\\$/, "")) {
	printf "%s ", $0; next } print; exit }' "$unit" |
    sed -n "s/^ExecStart=\/bin\/sh -c '\(.*\)'\$/\1/p")
check "witch-metrics.service runs /bin/sh -c" [ -n "$script" ]
# systemd rewrites $$, ${VAR} and %x itself: none may be there for the
# shell to see what it runs here.
check "its command has no \$\$, \${ or % for systemd to rewrite" \
    sh -c 'case $1 in *"\$\$"* | *"\${"* | *%*) exit 1 ;; esac' sh "$script"
mkdir "$tmp/textfile"
runwriter() {
	env TEXTFILE_DIR="$tmp/textfile" WITCHCTL="$CTL" \
	    WITCHCTL_ARGS="-p $port -t 2" /bin/sh -c "$script" 2>/dev/null
}
runwriter
check "writer exits 0 with witchd up" [ $? -eq 0 ]
check "writer leaves witch.prom with the metrics" \
    grep -q '^witch_requests_served_total ' "$tmp/textfile/witch.prom"
check "writer leaves no temporary file" \
    [ "$(ls -A "$tmp/textfile")" = witch.prom ]
check "witch.prom is world-readable" \
    sh -c "ls -l '$tmp/textfile/witch.prom' | grep -q '^-rw-r--r--'"
if command -v promtool >/dev/null 2>&1; then
	check "promtool accepts witch.prom" sh -c \
	    "promtool check metrics <'$tmp/textfile/witch.prom' >/dev/null 2>&1"
fi
# A second run replaces the file (new inode: a rename, not a rewrite).
ino1=$(ls -i "$tmp/textfile/witch.prom" | awk '{ print $1 }')
runwriter
ino2=$(ls -i "$tmp/textfile/witch.prom" | awk '{ print $1 }')
check "writer replaces witch.prom by rename" [ "$ino1" != "$ino2" ]

if command -v systemd-analyze >/dev/null 2>&1; then
	cp "$unit" "$srcdir/contrib/prometheus/witch-metrics.timer" "$tmp/"
	out=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify \
	    --man=no witch-metrics.service witch-metrics.timer 2>&1)
	rc=$?
	[ -n "$out" ] && printf '%s\n' "$out"
	check "systemd-analyze verify witch-metrics.service and .timer" \
	    [ $rc -eq 0 -a -z "$out" ]
fi

# ---- a server shutting down, then gone ---------------------------------------
# Calls racing SIGTERM: complete metrics (exit 0) or nothing (exit != 0).
kill -TERM "$pid"
bad=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	"$CTL" -p "$port" -t 2 stats --prometheus >"$tmp/race" 2>/dev/null
	rc=$?
	if [ $rc -eq 0 ]; then
		grep -q '^witch_request_duration_seconds_count ' "$tmp/race" ||
		    bad=1
	elif [ -s "$tmp/race" ]; then
		bad=1
	fi
done
check "during shutdown: complete metrics or no output" [ $bad -eq 0 ]
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
	i=$((i + 1))
	sleep 0.1
done
wait "$pid"
check "witchd exits 0 after SIGTERM" [ $? -eq 0 ]
pid=
"$CTL" -p "$port" -t 2 stats --prometheus >"$tmp/out" 2>"$tmp/err"
check "server gone: exit 3" [ $? -eq 3 ]
check "server gone: nothing on stdout" [ ! -s "$tmp/out" ]
check "server gone: an error on stderr" [ -s "$tmp/err" ]
runwriter
check "writer fails with witchd down" [ $? -ne 0 ]
check "writer removes the stale witch.prom and its temporary file" \
    [ -z "$(ls -A "$tmp/textfile")" ]

if [ $failures -gt 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
exit 0
