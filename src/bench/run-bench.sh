#!/bin/sh
# run-bench.sh BUILDDIR: echo throughput and latency of witchd on loopback.
# Prints one line per configuration; figures, not pass/fail.
set -eu
b=${1:-.}
pf=$(mktemp)
"$b/src/witchd/witchd" -p 0 --port-file "$pf" -q --max-clients 20000 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$pf"' EXIT
i=0
while [ ! -s "$pf" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
port=$(cat "$pf")
echo "witchd pid $pid port $port, $(nproc) CPUs"
for conf in "1 1 20000" "50 1 200000" "50 16 1000000"; do
	set -- $conf
	"$b/src/bench/witch-bench" -p "$port" -c "$1" -P "$2" -n "$3" -d 32
done
