#!/bin/sh
# run.sh BUILDDIR [ROUNDS]: throughput of the same endpoint ("pyecho",
# reply {"echo": data}, 32-byte data) served by a Python handler through
# the binding and by a C handler, both on libwitch's worker pool, driven
# by witch-bench at c=50 P=16.  Prints one CSV line per round and server.
# Needs the binding built in BUILDDIR (configure --enable-python).
set -eu
b=$(cd "$1" && pwd)
rounds=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
workers=${WORKERS:-1}
n=${REQUESTS:-200000}
python=$(sed -n "s/^PYTHON = //p" "$b/Makefile")
cc -O2 -I"$top/include" -I"$b/include" $(pkg-config --cflags jansson) \
    -o "$b/python/c_server" "$here/c_server.c" -L"$b/.libs" -lwitch \
    $(pkg-config --libs jansson) -Wl,-rpath,"$b/.libs"
export LD_LIBRARY_PATH="$b/.libs" PYTHONPATH="$b/python/stage"
bench="$b/src/bench/witch-bench"

# serve NAME CMD...: start a server on a free port, print its port
run_one() {
	name=$1
	shift
	fifo=$(mktemp -u)
	mkfifo "$fifo"
	"$@" 0 "$workers" >"$fifo" &
	pid=$!
	read -r port <"$fifo"
	rm -f "$fifo"
	"$bench" -c 50 -P 16 -n "$n" -d 32 -e pyecho -p "$port" --pid "$pid" \
	    --csv | sed "s/^/$name,/"
	kill "$pid"
	wait "$pid" || true
}

"$bench" --csv-header -n 0 | sed 's/^/server,/'
i=0
while [ "$i" -lt "$rounds" ]; do
	run_one c "$b/python/c_server"
	run_one python "$python" "$here/py_server.py"
	i=$((i + 1))
done
