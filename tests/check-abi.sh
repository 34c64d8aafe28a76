#!/bin/sh
# check-abi.sh LIB: every dynamic symbol libwitch defines must be witch_*.
# Run by make check without arguments: finds the built library itself.
lib=${1:-${WITCH_BUILDDIR:-.}/.libs/libwitch.so}
if [ ! -f "$lib" ]; then
	echo "check-abi: $lib not found" >&2
	exit 1
fi
bad=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRV]$/ {print $3}' | grep -v '^witch_' | grep -v '^WITCH_')
if [ -n "$bad" ]; then
	echo "check-abi: symbols outside witch_*: $bad" >&2
	exit 1
fi
n=$(nm -D --defined-only "$lib" | grep -c ' witch_')
echo "check-abi: $n witch_* symbols exported, nothing else"
