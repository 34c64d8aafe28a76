#!/bin/sh
# check-layers.sh [DIR]: includes in the library only point down a layer.
#
# Each directory of src/lib is a layer with a rank (the same ranks are in
# doc/internals/architecture.md).  A file may include a header of its own
# directory or of a directory of LOWER rank, never of the same rank or
# above: client/ and reactor/ are both rank 2 and must not see each
# other.  Only #include "dir/file.h" lines are read (<witch/...> is the
# public API, which any layer may use).  A directory missing from the
# table is an error too, so a new one gets a rank before it gets code.
# Run by make check; DIR defaults to the source tree's src/lib.  Before
# the real tree, it checks itself on two small trees in a temporary
# directory: one that points down must pass, one with an include up (net
# reaching into the reactor) must fail, so a broken check cannot pass.
dir=${1:-${WITCH_SRCDIR:-.}/src/lib}
if [ ! -d "$dir" ]; then
	echo "check-layers: $dir not found" >&2
	exit 1
fi
ranks='
core 0
poll 1
proto 1
queue 1
pool 1
net 1
reactor 2
client 2
discovery 3
peer 4
server 5
'
check() {
find "$1" -name '*.[ch]' | sort | while read -r f; do
	sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' \
	    "$f" | sed "s|^|${f#$1/} |"
done | awk -v ranks="$ranks" '
BEGIN {
	n = split(ranks, l, "\n")
	for (i = 1; i <= n; i++)
		if (split(l[i], w, " ") == 2)
			rank[w[1]] = w[2]
}
{
	split($1, a, "/"); from = a[1]
	if (index($2, "/") == 0) next		# same directory
	split($2, b, "/"); to = b[1]
	if (!(from in rank)) {
		printf("check-layers: %s: directory %s has no rank\n", \
		    $1, from); bad++; next
	}
	if (!(to in rank)) {
		printf("check-layers: %s: includes %s: %s has no rank\n", \
		    $1, $2, to); bad++; next
	}
	if (from != to && rank[to] >= rank[from]) {
		printf("check-layers: %s (%s, rank %d) includes %s " \
		    "(%s, rank %d): not below\n", $1, from, rank[from], $2, \
		    to, rank[to]); bad++
	}
	seen++
}
END {
	if (bad) exit 1
	printf("check-layers: %d includes, all point down\n", seen)
}'
}

# The check of the check.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-layers.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/good/core" "$tmp/good/net" "$tmp/bad/net" "$tmp/bad/reactor"
printf '#include "core/a.h"\n' > "$tmp/good/net/b.c"
printf '#include "b.h"\n' > "$tmp/good/core/a.c"
printf '#include "reactor/r.h"\n' > "$tmp/bad/net/b.c"
printf '\n' > "$tmp/bad/reactor/r.h"
if ! check "$tmp/good" >/dev/null || check "$tmp/bad" >/dev/null; then
	echo "check-layers: the self-test failed: the check is broken" >&2
	exit 1
fi
check "$dir"
