#!/bin/sh
# check-abi.sh LIB: every dynamic symbol libwitch defines must be witch_*.
lib=${1:?usage: check-abi.sh libwitch.so}
bad=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRV]$/ {print $3}' | grep -v '^witch_' | grep -v '^WITCH_')
if [ -n "$bad" ]; then
	echo "check-abi: symbols outside witch_*: $bad" >&2
	exit 1
fi
n=$(nm -D --defined-only "$lib" | grep -c ' witch_')
echo "check-abi: $n witch_* symbols exported, nothing else"
