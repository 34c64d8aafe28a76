#!/bin/bash
# ab-builds.sh ROUNDS 'label|builddir|witchd args' ... -- witch-bench args
#
# Two or more witchd builds side by side on loopback, witch-bench against
# each in turn, ROUNDS rounds; prints each round, then per build the
# median requests/s and server CPU per request and, against the first
# build, the median of the per-round ratios and how many rounds it won.
# For build-against-build comparisons on a machine whose level moves
# between minutes (doc/performance.md).  Builds are build directories
# (libtool's .libs inside); witch-bench is the first build's.
#
#   src/bench/ab-builds.sh 15 'old|../b/old|--inline-builtins no' \
#       'new|build|--inline-builtins no' -- -n 1000000 -c 50 -P 16 -d 32
#
# PIN='S C' pins every server thread to CPU S and witch-bench to CPU C
# (taskset): on a VM whose virtual CPUs differ in speed, which CPU a
# server lands on moved its CPU per request by up to 1.7x between runs;
# pinned, same against same stays within 2-3% (doc/performance.md).
set -u
[ $# -ge 4 ] || { sed -n 2,19p "$0" | sed 's/^# \{0,1\}//'; exit 2; }
ulimit -n "$(ulimit -Hn)"
rounds=$1; shift
specs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do specs+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
IFS='|' read -r _ bd0 _ <<<"${specs[0]}"
B=$bd0/src/bench/witch-bench
n=${#specs[@]}
for j in $(seq 0 $((n - 1))); do
	IFS='|' read -r lab bd wargs <<<"${specs[$j]}"
	# shellcheck disable=SC2086 # wargs: several words on purpose
	LD_LIBRARY_PATH=$bd/.libs "$bd/src/witchd/.libs/witchd" -p 0 \
	    -b 127.0.0.1 --port-file "$tmp/port.$j" -q --no-control-socket \
	    --no-discovery $wargs >"$tmp/log.$j" 2>&1 &
	pid[j]=$!
	pids+=($!)
done
for j in $(seq 0 $((n - 1))); do
	for _ in $(seq 1 50); do [ -s "$tmp/port.$j" ] && break; sleep 0.1; done
	[ -s "$tmp/port.$j" ] || { echo "build $j did not start:"; cat "$tmp/log.$j"; exit 1; }
done
run=()
if [ -n "${PIN:-}" ]; then
	read -r pin_s pin_c <<<"$PIN"
	for j in $(seq 0 $((n - 1))); do
		taskset -a -p -c "$pin_s" "${pid[$j]}" >/dev/null || exit 1
	done
	run=(taskset -c "$pin_c")
fi
for r in $(seq 1 "$rounds"); do
	line="round $r"
	for j in $(seq 0 $((n - 1))); do
		IFS='|' read -r lab _ _ <<<"${specs[$j]}"
		"${run[@]}" "$B" -p "$(cat "$tmp/port.$j")" --pid "${pid[$j]}" --csv "$@" \
		    >"$tmp/w.csv" || exit 1
		rps=$(awk -F, '{print $9}' "$tmp/w.csv")
		cpu=$(awk -F, '{print $16}' "$tmp/w.csv")
		line="$line | $lab $rps/s ${cpu}us"
		echo "$r $lab $rps $cpu" >>"$tmp/all"
	done
	echo "$line"
done
python3 - "$tmp/all" <<'PY'
import collections, statistics as st, sys
by = collections.defaultdict(dict)
labs = []
for line in open(sys.argv[1]):
    r, lab, rps, cpu = line.split()
    by[r][lab] = (float(rps), float(cpu))
    if lab not in labs:
        labs.append(lab)
base = labs[0]
for lab in labs:
    rr = [by[r][lab][0] / by[r][base][0] for r in by]
    cc = [by[r][lab][1] / by[r][base][1] for r in by]
    print("%s: median %.0f req/s, cpu %.3f us/req | against %s: "
          "req/s ratio %.3f (higher in %d of %d), cpu ratio %.3f" % (
              lab, st.median(by[r][lab][0] for r in by),
              st.median(by[r][lab][1] for r in by), base, st.median(rr),
              sum(1 for x in rr if x > 1), len(rr), st.median(cc)))
PY
