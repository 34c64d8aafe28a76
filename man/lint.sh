#!/bin/sh
# man/lint.sh: run mandoc -Tlint on every man page of witch-core.
# Exit 77 (skip) when mandoc is not installed.  Pages are found in
# $WITCH_SRCDIR/man, or else next to this script.
if ! command -v mandoc >/dev/null 2>&1; then
	echo "mandoc not found: skipping" >&2
	exit 77
fi
if [ -n "$WITCH_SRCDIR" ] && [ -d "$WITCH_SRCDIR/man" ]; then
	dir=$WITCH_SRCDIR/man
else
	dir=$(cd "$(dirname "$0")" && pwd)
fi
status=0
n=0
for page in "$dir"/*.[1-9]; do
	[ -f "$page" ] || continue
	n=$((n + 1))
	# -Wwarning: report warnings and worse; any output is a failure.
	out=$(mandoc -Tlint -Wwarning "$page" 2>&1)
	rc=$?
	if [ $rc -ne 0 ] || [ -n "$out" ]; then
		printf '%s\n' "$out"
		echo "FAIL: $page" >&2
		status=1
	fi
done
if [ $n -eq 0 ]; then
	echo "no man pages found in $dir" >&2
	exit 1
fi
echo "$n pages checked"
exit $status
