#!/bin/sh
# tests/check-manpages.sh: "man FUNCTION" works for every function the
# built libwitch.so exports.  Lists the exported functions with nm -D (as
# tests/check-abi.sh does) and, for each, wants a page of its own in man/
# or a family page that names it in its NAME section, which man/links.sh
# turns into the link make install creates.  Exits 1 listing the functions
# without one; 77 (skip) without nm or a built library.
S=${WITCH_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
lib=${1:-${WITCH_BUILDDIR:-.}/.libs/libwitch.so}
command -v nm >/dev/null 2>&1 || { echo "nm not found: skipping"; exit 77; }
if [ ! -f "$lib" ]; then
	echo "check-manpages: $lib not found" >&2
	exit 1
fi
links=$(sh "$S/man/links.sh" "$S"/man/*.3)
funcs=$(nm -D --defined-only "$lib" |
    awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort -u)
n=0
missing=
for f in $funcs; do
	n=$((n + 1))
	[ -f "$S/man/$f.3" ] && continue
	target=$(printf '%s\n' "$links" | awk -v l="$f.3" '$1 == l { print $2 }')
	if [ -n "$target" ] && [ -f "$S/man/$target" ]; then
		continue
	fi
	missing="$missing $f"
done
if [ -n "$missing" ]; then
	echo "check-manpages: no page and no link (list the function in the"
	echo "NAME section of its family page) for:"
	for f in $missing; do echo "	$f"; done
	exit 1
fi
if [ "$n" -eq 0 ]; then
	echo "check-manpages: no functions exported by $lib" >&2
	exit 1
fi
echo "check-manpages: $n exported functions, each with a page or a link"
