#!/bin/sh
# tests/check-examples.sh: the examples of README.md and the man pages do
# what they say.
#
# Every code block is looked at.  A block that looks like C (a line ending
# in ';' or '{', or an #include) must carry a marker, put right before it:
#
#   man page:   .\" example: KIND [ARG]       README:  <!-- example: KIND -->
#               .\" example+ TEXT                      <!-- example+ TEXT -->
#
# KIND is one of
#   program NAME  a whole program, compiled exactly as printed with
#                 -std=c11 -Wall -Wextra -Werror (program-c++: -std=c++17)
#                 against the built headers and libwitch.so, as $tmp/NAME
#   file          file-scope code (handlers, tables): compiled with the
#                 other file and body blocks of the same page, in order
#   body          statements: compiled as the body of a function of their
#                 own, after the example+ lines (the declarations the text
#                 around the block takes for granted)
#   transcript    "$ command" lines, each followed by its exact output
#                 (stdout and stderr) and run against a live witchd on the
#                 loopback: "witchctl" talks to it, the port 8888 in a
#                 command is replaced by its port, ./NAME runs program NAME,
#                 and a "cc ..." line stands for the build of the program
#                 above (not run)
#   skip REASON   not checked, the reason is printed (a block restating a
#                 header's declaration, say)
# The file and body blocks of a page make one translation unit, compiled
# with the same flags plus -Wno-unused-function -Wno-unused-variable (a
# fragment defines what it does not itself use); the example+ lines of a
# "file" block are hidden file-scope code for the whole page.
#
# libwitch(3)'s greeter is also run: the replies its text gives are checked
# with witchctl.  Prints one "ok"/"FAIL" line per check; exits 1 if any
# failed, 77 (skip) without WITCH_SRCDIR/WITCH_BUILDDIR or a built tree.

S=${WITCH_SRCDIR:-}
B=${WITCH_BUILDDIR:-}
if [ -z "$S" ] || [ -z "$B" ] || [ ! -f "$B/Makefile" ]; then
	echo "WITCH_SRCDIR or WITCH_BUILDDIR is not set: skipping"
	exit 77
fi
WITCHD=$B/src/witchd/witchd
CTL=$B/src/witchctl/witchctl
LIB=$B/.libs/libwitch.so
for f in "$WITCHD" "$CTL" "$LIB"; do
	if [ ! -e "$f" ]; then
		echo "FAIL - $f not built"
		exit 1
	fi
done

# A variable of the build's Makefile.
mkvar() {
	sed -n "s/^$1 = //p" "$B/Makefile" | head -n 1
}
CC=$(mkvar CC)
CXX=$(mkvar CXX)
SAN_CFLAGS=$(mkvar SAN_CFLAGS)
SAN_LDFLAGS=$(mkvar SAN_LDFLAGS)
JANSSON_CFLAGS=$(mkvar JANSSON_CFLAGS)
JANSSON_LIBS=$(mkvar JANSSON_LIBS)
CC=${CC:-cc}
CXX=${CXX:-c++}
INC="-I$B/include -I$S/include $JANSSON_CFLAGS"
LIBS="-L$B/.libs -Wl,-rpath,$B/.libs -lwitch $JANSSON_LIBS"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-examples.XXXXXX") || exit 1
pids=
cleanup() {
	for p in $pids; do
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

failures=0
ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }

# ---- 1. Extract the blocks ---------------------------------------------
# Each block becomes $tmp/blocks/NNNN (its text) and NNNN.meta: "PAGE LINE
# KIND ARG..." on the first line, then one line per example+ text.
mkdir "$tmp/blocks" "$tmp/bin"
extract() { # extract FILE FORMAT(man|md)
	awk -v page="$1" -v fmt="$2" -v dir="$tmp/blocks" -v base="$3" '
	function unroff(s) {
		gsub(/\\\(dq/, "\"", s); gsub(/\\\(aq/, "\047", s)
		gsub(/\\&/, "", s); gsub(/\\-/, "-", s)
		gsub(/\\e/, "\\", s)
		return s
	}
	function cish(s) {
		return s ~ /;[ \t]*$/ || s ~ /\{[ \t]*$/ || s ~ /^#include/
	}
	BEGIN { n = base; inb = 0 }
	fmt == "man" && /^\.\\" example: / {
		kind = substr($0, 14); extra = ""; next
	}
	fmt == "man" && /^\.\\" example\+ / {
		extra = extra substr($0, 14) "\n"; next
	}
	fmt == "md" && /^<!-- example: .* -->$/ {
		kind = substr($0, 15, length($0) - 18); extra = ""; next
	}
	fmt == "md" && /^<!-- example\+ .* -->$/ {
		extra = extra substr($0, 15, length($0) - 18) "\n"; next
	}
	!inb && ((fmt == "man" && /^\.Bd -literal/) ||
	    (fmt == "md" && /^```/)) {
		inb = 1; start = NR; text = ""; looks = 0; prompt = 0
		lang = fmt == "md" ? substr($0, 4) : ""
		next
	}
	inb && ((fmt == "man" && /^\.Ed/) || (fmt == "md" && /^```/)) {
		inb = 0
		if (kind == "" && looks && !prompt && lang != "sh" &&
		    lang != "console") {
			printf "%s:%d: a C example without a marker\n",
			    page, start > "/dev/stderr"
			kind = "unmarked"
		}
		if (kind != "") {
			n++
			f = sprintf("%s/%04d", dir, n)
			printf "%s", text > f; close(f)
			printf "%s %d %s\n%s", page, start, kind, extra \
			    > (f ".meta")
			close(f ".meta")
		}
		kind = ""; extra = ""
		next
	}
	inb {
		line = fmt == "man" ? unroff($0) : $0
		text = text line "\n"
		if (cish(line)) looks = 1
		if (line ~ /^[$#] /) prompt = 1
		next
	}
	/^$/ { next }
	fmt == "md" || !/^\.\\"/ { kind = ""; extra = "" }
	END { print n > (dir "/count") }
	' "$1"
}
n=0
for f in "$S"/man/*.[1-8]; do
	extract "$f" man "$n" 2>>"$tmp/unmarked"
	n=$(cat "$tmp/blocks/count")
done
extract "$S/README.md" md "$n" 2>>"$tmp/unmarked"
rm -f "$tmp/blocks/count"
if [ -s "$tmp/unmarked" ]; then
	while read -r l; do fail "$l"; done <"$tmp/unmarked"
else
	ok "every C-looking block of README.md and man/ has a marker"
fi

# ---- 2. Programs ----------------------------------------------------------
# shellcheck disable=SC2086 # word splitting of flags is intended
for meta in "$tmp"/blocks/*.meta; do
	blk=${meta%.meta}
	set -- $(head -n 1 "$meta")
	page=${1##*/} line=$2 kind=$3 arg=${4:-}
	case $kind in
	program | program-c++)
		if [ -z "$arg" ]; then
			fail "$page:$line: program without a name"
			continue
		fi
		if [ "$kind" = program ]; then
			cp "$blk" "$tmp/$arg.c"
			cmd="$CC -std=c11 -Wall -Wextra -Werror $SAN_CFLAGS $INC \
			    -o $tmp/bin/$arg $tmp/$arg.c $LIBS $SAN_LDFLAGS"
		else
			cp "$blk" "$tmp/$arg.cc"
			cmd="$CXX -std=c++17 -Wall -Wextra -Werror $SAN_CFLAGS \
			    $INC -o $tmp/bin/$arg $tmp/$arg.cc $LIBS $SAN_LDFLAGS"
		fi
		if $cmd >"$tmp/cc.log" 2>&1; then
			ok "$page:$line: program $arg compiles ($kind)"
		else
			sed 's/^/	/' "$tmp/cc.log"
			fail "$page:$line: program $arg does not compile"
		fi ;;
	skip)
		shift 3
		ok "$page:$line: not compiled: $*" ;;
	esac
done

# ---- 3. Fragments: one translation unit per page -------------------------
pages=$(for meta in "$tmp"/blocks/*.meta; do
	set -- $(head -n 1 "$meta")
	case $3 in file | body) echo "$1" ;; esac
done | sort -u)
for p in $pages; do
	tu=$tmp/fragments-${p##*/}.c
	nb=0
	{
		echo "#define _DEFAULT_SOURCE"
		for h in err.h errno.h poll.h signal.h stdio.h stdlib.h \
		    string.h unistd.h witch/witch.h; do
			echo "#include <$h>"
		done
		for meta in "$tmp"/blocks/*.meta; do
			set -- $(head -n 1 "$meta")
			[ "$1" = "$p" ] && [ "$3" = file ] || continue
			echo "#line 1 \"${p##*/}:$2 (hidden)\""
			sed 1d "$meta"
			echo "#line 1 \"${p##*/}:$2\""
			cat "${meta%.meta}"
		done
		for meta in "$tmp"/blocks/*.meta; do
			set -- $(head -n 1 "$meta")
			[ "$1" = "$p" ] && [ "$3" = body ] || continue
			nb=$((nb + 1))
			echo "int example_$nb(void);"
			echo "int"
			echo "example_$nb(void)"
			echo "{"
			sed 1d "$meta"
			echo "#line 1 \"${p##*/}:$2\""
			cat "${meta%.meta}"
			echo "	return 0;"
			echo "}"
		done
		echo "int main(void) { return 0; }"
	} >"$tu"
	# shellcheck disable=SC2086
	if $CC -std=c11 -Wall -Wextra -Werror -Wno-unused-function \
	    -Wno-unused-variable $SAN_CFLAGS $INC -o "$tu.bin" "$tu" $LIBS \
	    $SAN_LDFLAGS >"$tmp/cc.log" 2>&1; then
		ok "${p##*/}: the code fragments compile and link"
	else
		sed 's/^/	/' "$tmp/cc.log"
		fail "${p##*/}: the code fragments do not compile"
	fi
done

# ---- 4. Transcripts against a live witchd ------------------------------
printf '' >"$tmp/witchd.conf"
"$WITCHD" -c "$tmp/witchd.conf" -q -b 127.0.0.1 -p 0 -w 2 \
    --no-control-socket --no-discovery --port-file "$tmp/port" \
    2>"$tmp/witchd.log" &
pids="$pids $!"
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 100 ]; do
	sleep 0.05
	i=$((i + 1))
done
P=$(cat "$tmp/port" 2>/dev/null)
if [ -z "$P" ]; then
	cat "$tmp/witchd.log"
	fail "witchd did not start"
	exit 1
fi
cat >"$tmp/bin/witchctl" <<EOF
#!/bin/sh
exec "$CTL" -p "$P" "\$@"
EOF
chmod +x "$tmp/bin/witchctl"

# run_transcript PAGE LINE FILE: each "$ " command, and its output.
run_transcript() {
	awk -v dir="$tmp/t" '
	/^\$ / { n++; cmd = sprintf("%s/%03d.cmd", dir, n)
		out = sprintf("%s/%03d.out", dir, n)
		print substr($0, 3) > cmd; close(cmd); printf "" > out
		next }
	n > 0 { print >> out; close(out) }
	' "$3"
	for c in "$tmp"/t/*.cmd; do
		command=$(cat "$c")
		case $command in
		"cc "*) continue ;;
		esac
		command=$(echo "$command" | sed "s/\\b8888\\b/$P/g")
		(cd "$tmp/bin" && PATH="$tmp/bin:$PATH" sh -c "$command") \
		    >"$c.got" 2>&1 </dev/null
		if cmp -s "${c%.cmd}.out" "$c.got"; then
			ok "$1:$2: \$ $(cat "$c")"
		else
			fail "$1:$2: \$ $(cat "$c")"
			diff "${c%.cmd}.out" "$c.got" | sed 's/^/	/'
		fi
	done
	rm -rf "$tmp/t"
}
for meta in "$tmp"/blocks/*.meta; do
	set -- $(head -n 1 "$meta")
	[ "$3" = transcript ] || continue
	mkdir "$tmp/t"
	run_transcript "${1##*/}" "$2" "${meta%.meta}"
done

# ---- 5. libwitch(3)'s greeter answers what the page says -----------------
if [ -x "$tmp/bin/greeter" ]; then
	"$tmp/bin/greeter" >"$tmp/greeter.out" 2>"$tmp/greeter.err" &
	gpid=$!
	pids="$pids $gpid"
	i=0
	while ! grep -q '^port [0-9]' "$tmp/greeter.out" && [ $i -lt 100 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	gp=$(sed -n 's/^port //p' "$tmp/greeter.out")
	out=$("$CTL" -p "${gp:-1}" --json call greet '"world"' 2>&1)
	if [ "$out" = '{"greeting":"hello, world"}' ]; then
		ok "libwitch.3: greeter answers {\"greeting\":\"hello, world\"}"
	else
		fail "libwitch.3: greeter answered: $out"
	fi
	out=$("$CTL" -p "${gp:-1}" call greet 5 2>&1)
	if [ "$out" = "witchctl: server error: invalid_request: data must be \
a string" ]; then
		ok "libwitch.3: greeter refuses 5: $out"
	else
		fail "libwitch.3: greeter refused 5 with: $out"
	fi
	kill -TERM "$gpid"
	wait "$gpid"
	rc=$?
	if [ $rc -eq 0 ]; then
		ok "libwitch.3: greeter stops on SIGTERM, exit 0"
	else
		fail "libwitch.3: greeter exit $rc on SIGTERM"
		sed 's/^/	/' "$tmp/greeter.err"
	fi
fi

echo "$failures failed"
[ "$failures" -eq 0 ]
