#!/bin/sh
# man/links.sh PAGE...: the links that let "man FUNCTION" find the family
# page documenting FUNCTION.  For every function a page names in its NAME
# section (.Nm), other than the page's own name, prints "FUNCTION.N PAGE.N"
# (link, then target, both file names in the same section directory).
# make install creates them as symbolic links (man/local.mk), and
# tests/check-manpages.sh checks that every exported function has one.
for p in "$@"; do
	base=${p##*/}
	sec=${base##*.}
	sed -n '/^\.Sh NAME/,/^\.Sh [^N]/p' "$p" |
	    awk '/^\.Nm [A-Za-z_]/ { print $2 }' |
	    while read -r name; do
		[ "$name.$sec" = "$base" ] || echo "$name.$sec $base"
	    done
done
