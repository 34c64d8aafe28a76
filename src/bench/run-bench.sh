#!/bin/sh
# run-bench.sh BUILDDIR: `make bench`.  Compares witchd with redis-server
# on loopback, both driven by witch-bench (witch protocol and RESP), and
# checks the performance targets of doc/performance.md.
#
# Environment: ROUNDS (default 5) rounds of the matrix, witchd and Redis
# interleaved, the order alternating each round; BENCH_SECONDS (default 2)
# seconds per run, request counts calibrated per server and row;
# BENCH_IDLE (default 10000) idle connections for the memory row;
# BENCH_CHECK=no to report missed targets without failing.
# Output: the table on stdout; every run in BUILDDIR/bench-out/runs.csv.
# Exit: 0, or 1 when a target is missed, 2 when the bench could not run.
set -eu

b=$(cd "${1:-.}" && pwd)
rounds=${ROUNDS:-5}
[ -n "$rounds" ] || rounds=5
secs=${BENCH_SECONDS:-2}
nidle=${BENCH_IDLE:-10000}
check=${BENCH_CHECK:-yes}
bench=$b/src/bench/witch-bench
# The real binary, not the libtool wrapper script, so that $! is the
# server's pid (for --pid).
if [ -x "$b/src/witchd/.libs/witchd" ]; then
	witchd=$b/src/witchd/.libs/witchd
else
	witchd=$b/src/witchd/witchd
fi
if [ -x "$b/src/bench/.libs/bench-server" ]; then
	dserver=$b/src/bench/.libs/bench-server
else
	dserver=$b/src/bench/bench-server
fi
out=$b/bench-out
mkdir -p "$out"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/witch-bench.XXXXXX")
wpid='' rpid='' ppid_='' dpid1='' dpid2='' dport1='' dport2=''

stop() {	# stop PID: TERM, then KILL after 5 s
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null || return 0
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	stop "$wpid"
	stop "$ppid_"
	stop "$dpid1"
	stop "$dpid2"
	stop "$rpid"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

die() {
	echo "run-bench: $*" >&2
	exit 2
}

# Enough descriptors for the idle row (witchd raises its own limit too).
# shellcheck disable=SC3045 # dash and bash have ulimit -n and -H
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# start_witchd [ARGS]: witchd on a free port -> wpid, wport.
start_witchd() {
	rm -f "$tmp/port"
	LD_LIBRARY_PATH=$b/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
	    "$witchd" -p 0 -b 127.0.0.1 --port-file "$tmp/port" -q \
	    --no-control-socket --no-discovery \
	    --max-clients $((nidle + 1000)) "$@" >>"$tmp/witchd.log" 2>&1 &
	wpid=$!
	i=0
	while [ ! -s "$tmp/port" ] && [ $i -lt 100 ]; do
		kill -0 "$wpid" 2>/dev/null || break
		sleep 0.05
		i=$((i + 1))
	done
	[ -s "$tmp/port" ] || { cat "$tmp/witchd.log" >&2;
	    die "witchd did not start"; }
	wport=$(cat "$tmp/port")
}

# The same witchd with echo on the worker pool (the hand-off measured).
start_pool() {
	save_pid=$wpid save_port=$wport
	start_witchd --inline-builtins=no
	ppid_=$wpid pport=$wport
	wpid=$save_pid wport=$save_port
}

# start_digest N: bench-server (endpoint "digest": parse a 1 KiB object,
# hash it) with N workers -> dpidN, dportN.
start_digest() {
	rm -f "$tmp/dport"
	LD_LIBRARY_PATH=$b/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
	    "$dserver" --port-file "$tmp/dport" --workers "$1" \
	    >>"$tmp/digest.log" 2>&1 &
	eval "dpid$1=\$!"
	i=0
	while [ ! -s "$tmp/dport" ] && [ $i -lt 100 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	[ -s "$tmp/dport" ] || { cat "$tmp/digest.log" >&2;
	    die "bench-server did not start"; }
	eval "dport$1=\$(cat \"\$tmp/dport\")"
}

# Redis on a free port of its own: try ports until one binds.
start_redis() {
	p=$((20000 + $$ % 20000))
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		: >"$tmp/redis.log"
		redis-server --port "$p" --bind 127.0.0.1 --save '' \
		    --appendonly no --daemonize no --dir "$tmp" \
		    >"$tmp/redis.log" 2>&1 &
		rpid=$!
		i=0
		while [ $i -lt 100 ] && kill -0 "$rpid" 2>/dev/null &&
		    ! grep -q "Ready to accept" "$tmp/redis.log"; do
			sleep 0.05
			i=$((i + 1))
		done
		if grep -q "Ready to accept" "$tmp/redis.log"; then
			rport=$p
			return 0
		fi
		stop "$rpid"
		rpid=
		p=$((p + 7))
	done
	cat "$tmp/redis.log" >&2
	return 1
}

have_redis=no
if command -v redis-server >/dev/null 2>&1; then
	have_redis=yes
elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "run-bench: redis-server missing; apt-get install -y redis-server"
	if DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server \
	    >"$tmp/apt.log" 2>&1 && command -v redis-server >/dev/null; then
		have_redis=yes
	else
		tail -n 5 "$tmp/apt.log" >&2
	fi
fi
[ $have_redis = no ] &&
    echo "run-bench: redis-server unavailable: witchd rows only, no ratios"

# run SERVER C P D N: one witch-bench run; appends the CSV line to
# $tmp/last; fails the bench on a connection failure (status 3).
run() {
	if [ "$1" = witchd ]; then
		set -- -p "$wport" --pid "$wpid" -c "$2" -P "$3" -d "$4" -n "$5"
	elif [ "$1" = pool ]; then
		set -- -p "$pport" --pid "$ppid_" -c "$2" -P "$3" -d "$4" -n "$5"
	elif [ "$1" = dg1 ]; then
		set -- -p "$dport1" --pid "$dpid1" -e digest --object -d 1024 \
		    -c "$2" -P "$3" -n "$5"
	elif [ "$1" = dg2 ]; then
		set -- -p "$dport2" --pid "$dpid2" -e digest --object -d 1024 \
		    -c "$2" -P "$3" -n "$5"
	else
		set -- --resp -p "$rport" --pid "$rpid" -c "$2" -P "$3" \
		    -d "$4" -n "$5"
	fi
	rc=0
	"$bench" --csv "$@" >"$tmp/last" 2>"$tmp/err" || rc=$?
	if [ $rc -ge 2 ]; then
		cat "$tmp/err" >&2
		die "witch-bench $* failed (status $rc)"
	fi
}

# calib SERVER C P D: set cn to a request count for about $secs seconds.
calib() {
	n=500
	while :; do
		run "$1" "$2" "$3" "$4" "$n"
		el=$(cut -d, -f8 "$tmp/last")
		if awk -v s="$el" 'BEGIN { exit !(s >= 0.5) }' ||
		    [ "$n" -ge 100000000 ]; then
			break
		fi
		n=$((n * 4))
	done
	# shellcheck disable=SC2034 # read by eval
	cn=$(awk -F, -v t="$secs" '{ n = int($9 * t); if (n < 1000)
	    n = 1000; print n }' "$tmp/last")
}

start_witchd
start_pool
start_digest 1
start_digest 2
servers="witchd pool dg1 dg2"
if [ $have_redis = yes ]; then
	if start_redis; then
		servers="witchd pool dg1 dg2 redis"
	else
		echo "run-bench: redis-server did not start: witchd rows only"
		have_redis=no
	fi
fi

model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null |
    head -n 1)
echo "witch bench $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs" \
    "(${model:-unknown}), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(LD_LIBRARY_PATH=$b/.libs "$witchd" --version 2>/dev/null || true)" \
    "pid $wpid port $wport; with --inline-builtins=no pid $ppid_ port $pport"
echo "bench-server (digest) --workers 1 pid $dpid1, --workers 2 pid $dpid2"
[ $have_redis = yes ] &&
    echo "$(redis-server --version | cut -d' ' -f1-3) pid $rpid port $rport"
echo "rounds $rounds, ~${secs} s per run; results in $out/runs.csv"

rows="1:1:32 50:1:32 50:16:32 1:1:4096 50:1:4096 50:16:4096"
echo "calibrating request counts..."
split_row() {	# split C:P:D into c, p, d
	c=${1%%:*}
	d=${1##*:}
	p=${1#*:}
	p=${p%%:*}
}
# runs_row SERVER C D: the pool server runs the 32 B rows (it shows the
# hand-off), the digest servers the c=50 32 B rows with a 1 KiB object.
runs_row() {
	case $1 in
	pool) [ "$3" -eq 32 ] ;;
	dg1 | dg2) [ "$3" -eq 32 ] && [ "$2" -eq 50 ] ;;
	*) true ;;
	esac
}
for row in $rows; do
	split_row "$row"
	for s in $servers; do
		runs_row "$s" "$c" "$d" || continue
		calib "$s" "$c" "$p" "$d"
		eval "n_${s}_${c}_${p}_${d}=\$cn"
	done
done

"$bench" --csv-header -n 0 | sed 's/^/round,server,/' >"$out/runs.csv"
r=1
while [ $r -le "$rounds" ]; do
	echo "round $r of $rounds"
	order=$servers
	[ $((r % 2)) -eq 0 ] && [ $have_redis = yes ] &&
	    order="redis dg2 dg1 pool witchd"
	for row in $rows; do
		split_row "$row"
		for s in $order; do
			runs_row "$s" "$c" "$d" || continue
			eval "n=\$n_${s}_${c}_${p}_${d}"
			run $s "$c" "$p" "$d" "$n"
			sed "s/^/$r,$s,/" "$tmp/last" >>"$out/runs.csv"
			# Re-aim the next round at $secs seconds (the machine
			# may be busy), within a factor of 4.
			n=$(awk -F, -v t="$secs" -v n="$n" '{ m = int($9 * t);
			    if (m > 4 * n) m = 4 * n; if (m < n / 4)
			    m = int(n / 4); if (m < 1000) m = 1000; print m }' \
			    "$tmp/last")
			eval "n_${s}_${c}_${p}_${d}=\$n"
		done
	done
	r=$((r + 1))
done

# The memory row, on fresh servers.
stop "$ppid_"
ppid_=
stop "$dpid1"
stop "$dpid2"
dpid1='' dpid2=''
stop "$wpid"
start_witchd
"$bench" -p "$wport" --pid "$wpid" --idle "$nidle" --csv >"$tmp/idle.w" ||
    die "idle connections to witchd failed"
if [ $have_redis = yes ]; then
	stop "$rpid"
	start_redis || die "redis-server did not restart"
	"$bench" --resp -p "$rport" --pid "$rpid" --idle "$nidle" --csv \
	    >"$tmp/idle.r" || die "idle connections to redis failed"
else
	: >"$tmp/idle.r"
fi

status=0
awk -F, -v check="$check" -v redis="$have_redis" \
    -v iw="$(cat "$tmp/idle.w")" -v ir="$(cat "$tmp/idle.r")" '
function median(list,    a, n, i, j, t) {
	n = split(list, a, " ")
	if (n == 0)
		return -1
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
			t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
		}
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(k, v) { L[k] = L[k] " " v }
function verdict(ok, what) {
	printf "  %s  %s\n", ok ? "PASS" : "FAIL", what
	if (!ok)
		missed++
}
NR == 1 { next }
{
	row = "echo " $7 " B c=" $5 " P=" $6
	s = $2
	if (s == "dg1" || s == "dg2") {
		# An endpoint doing real work, 1 and 2 workers: no Redis.
		row = "digest 1 KiB c=" $5 " P=" $6 " w" substr(s, 3)
		s = "witchd"
		base[row] = row
		noredis[row] = 1
	} else if (s == "pool") {
		# witchd with echo on the workers, against the Redis run
		# of the base row in the same round.
		base[row " wk"] = row
		row = row " wk"
		s = "witchd"
	} else
		base[row] = row
	if (!(row in seen)) {
		seen[row] = 1
		order[++nrows] = row
	}
	add(row SUBSEP s SUBSEP "rps", $11)
	add(row SUBSEP s SUBSEP "p50", $12)
	add(row SUBSEP s SUBSEP "p99", $14)
	add(row SUBSEP s SUBSEP "cpu", $18)
	add(row SUBSEP s SUBSEP "ccpu", $19)
	err[row SUBSEP s] += $17
	rps[row SUBSEP s SUBSEP $1] = $11
	rounds[$1] = 1
}
END {
	printf "\n%-22s %9s %9s %6s %8s %8s %8s %8s %7s %7s %s %6s %6s\n",
	    "row", "witchd/s", "redis/s", "ratio", "w p50", "w p99", "r p50",
	    "r p99", "w cpu", "r cpu", "errors w/r", "wc cpu", "rc cpu"
	for (i = 1; i <= nrows; i++) {
		row = order[i]
		rl = ""
		for (rd in rounds)
			if ((base[row] SUBSEP "redis" SUBSEP rd) in rps &&
			    rps[base[row] SUBSEP "redis" SUBSEP rd] > 0)
				rl = rl " " rps[row SUBSEP "witchd" SUBSEP rd] / \
				    rps[base[row] SUBSEP "redis" SUBSEP rd]
		for (k = 0; k < 2; k++) {
			s = k ? "redis" : "witchd"
			r = k ? base[row] : row
			M[s, "rps"] = median(L[r SUBSEP s SUBSEP "rps"])
			M[s, "p50"] = median(L[r SUBSEP s SUBSEP "p50"])
			M[s, "p99"] = median(L[r SUBSEP s SUBSEP "p99"])
			M[s, "cpu"] = median(L[r SUBSEP s SUBSEP "cpu"])
			M[s, "ccpu"] = median(L[r SUBSEP s SUBSEP "ccpu"])
		}
		ratio = median(rl)
		R[row] = ratio
		for (x in M)
			V[row, x] = M[x]
		if (redis == "yes" && !(row in noredis))
			printf "%-22s %9.0f %9.0f %6.2f %8.1f %8.1f %8.1f " \
			    "%8.1f %7.2f %7.2f %5d/%-4d %6.2f %6.2f\n", row,
			    M["witchd", "rps"], M["redis", "rps"], ratio,
			    M["witchd", "p50"], M["witchd", "p99"],
			    M["redis", "p50"], M["redis", "p99"],
			    M["witchd", "cpu"], M["redis", "cpu"],
			    err[row SUBSEP "witchd"], err[row SUBSEP "redis"],
			    M["witchd", "ccpu"], M["redis", "ccpu"]
		else
			printf "%-22s %9.0f %9s %6s %8.1f %8.1f %8s %8s " \
			    "%7.2f %7s %5d/-    %6.2f %6s\n", row,
			    M["witchd", "rps"], "-", "-", M["witchd", "p50"],
			    M["witchd", "p99"], "-", "-", M["witchd", "cpu"],
			    "-", err[row SUBSEP "witchd"], M["witchd", "ccpu"],
			    "-"
		errors += err[row SUBSEP "witchd"]
		if (base[row] == row)
			errors += err[row SUBSEP "redis"]
	}
	for (i = 1; i <= nrows; i++) {
		row = order[i]
		if (!(row in noredis) || row !~ / w2$/)
			continue
		w1 = substr(row, 1, length(row) - 1) "1"
		rl = ""
		for (rd in rounds)
			if (rps[w1 SUBSEP "witchd" SUBSEP rd] > 0)
				rl = rl " " rps[row SUBSEP "witchd" SUBSEP rd] / \
				    rps[w1 SUBSEP "witchd" SUBSEP rd]
		printf "%-22s --workers 2 / --workers 1: %.2f (median of" \
		    " per-round rps ratios)\n", substr(row, 1,
		    length(row) - 3), median(rl)
	}
	split(iw, W, ",")
	split(ir, Rd, ",")
	printf "%-22s witchd %s bytes/conn (RSS %s -> %s KiB)", \
	    "idle " W[2] " conns", W[5], W[3], W[4]
	if (redis == "yes")
		printf "; redis %s bytes/conn (RSS %s -> %s KiB)", Rd[5],
		    Rd[3], Rd[4]
	printf "\n"
	errors += W[6] + Rd[6]
	print "(rps and latencies: medians of rounds; ratio: median of" \
	    " per-round witchd/redis rps;\n latencies in us; cpu: server" \
	    " CPU us per request, utime+stime; wc/rc cpu: the client" \
	    " (witch-bench)\n CPU us per request against witchd / Redis;" \
	    "\n wk: witchd" \
	    " --inline-builtins=no, echo through the worker pool, against" \
	    " the same Redis runs;\n digest: bench-server, parse a 1 KiB" \
	    " object and hash it, 1 and 2 workers; no target)"
	print "\ntargets:"
	a = "echo 32 B c=50 P=1"; b = "echo 32 B c=50 P=16"
	c = "echo 32 B c=1 P=1"
	if (redis == "yes") {
		verdict(V[a, "witchd", "cpu"] <= V[a, "redis", "cpu"],
		    sprintf("%s: server cpu witchd %.2f <= redis %.2f us/req",
		    a, V[a, "witchd", "cpu"], V[a, "redis", "cpu"]))
		verdict(R[a] >= 0.95, sprintf("%s: ratio %.2f >= 0.95",
		    a, R[a]))
		verdict(R[b] >= 1.0, sprintf("%s: ratio %.2f >= 1.00", b,
		    R[b]))
		verdict(V[c, "witchd", "p50"] <= 1.2 * V[c, "redis", "p50"],
		    sprintf("%s: p50 witchd %.1f <= 1.2 x redis %.1f us", c,
		    V[c, "witchd", "p50"], V[c, "redis", "p50"]))
		# The worker pool: what every application endpoint pays.
		verdict(R[a " wk"] >= 1.0, sprintf("%s wk: ratio %.2f >= 1.00",
		    a, R[a " wk"]))
		verdict(V[a " wk", "witchd", "cpu"] <= 1.2 * V[a, "redis", "cpu"],
		    sprintf("%s wk: server cpu %.2f <= 1.2 x redis %.2f us/req",
		    a, V[a " wk", "witchd", "cpu"], V[a, "redis", "cpu"]))
		verdict(R[b " wk"] >= 1.0, sprintf("%s wk: ratio %.2f >= 1.00",
		    b, R[b " wk"]))
		x = V[c " wk", "witchd", "p50"]
		verdict(x <= 1.3 * V[c, "redis", "p50"], sprintf("%s wk: p50" \
		    " %.1f <= 1.3 x redis %.1f us", c, x, V[c, "redis", "p50"]))
	} else
		print "  SKIP  ratio targets (no redis-server)"
	verdict(W[5] != "" && W[5] <= 8192, sprintf("idle %s connections:" \
	    " %s <= 8192 bytes per connection", W[2], W[5]))
	verdict(errors == 0, sprintf("zero errors in every row (%d)",
	    errors))
	if (missed) {
		printf "%d target(s) missed\n", missed
		exit check == "no" ? 0 : 1
	}
	print "all targets met"
}' "$out/runs.csv" >"$out/summary.txt" || status=$?
cat "$out/summary.txt"
exit $status
