#!/bin/sh
# tests/debian/check-symbols.sh: debian/libwitch0.symbols is what
# debian/gen-symbols makes from the version script and the public headers,
# so a function added to or removed from the ABI cannot reach a package
# build unnoticed (the build itself compares the library with the file).
# Exit 77 (skip) where there is no debian/ directory (a release tarball).
top=${WITCH_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ ! -x "$top/debian/gen-symbols" ]; then
	echo "no debian/gen-symbols: skipping"
	exit 77
fi
tmp=$(mktemp "${TMPDIR:-/tmp}/check-symbols.XXXXXX") || exit 99
trap 'rm -f "$tmp"' EXIT
"$top/debian/gen-symbols" "$top" >"$tmp" || exit 99
if ! diff -u "$top/debian/libwitch0.symbols" "$tmp"; then
	echo "FAIL: debian/libwitch0.symbols is out of date; regenerate it:"
	echo "  debian/gen-symbols >debian/libwitch0.symbols.new &&"
	echo "      mv debian/libwitch0.symbols.new debian/libwitch0.symbols"
	exit 1
fi
echo "ok: debian/libwitch0.symbols matches the version script and headers" \
    "($(grep -c '^ witch_' "$tmp") functions)"
