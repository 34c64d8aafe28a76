# tests/daemon/check-lib.sh: what the shell tests print and count, sourced
# by them (". "$(dirname "$0")/check-lib.sh"").  Each check prints one
# "ok - ..." or "FAIL - ..." line; a test ends with
# "[ $failures -gt 0 ] && exit 1".
# shellcheck shell=sh

failures=0
ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }
# check DESCRIPTION COMMAND...: ok if the command succeeds.
check() {
	d=$1
	shift
	if "$@"; then ok "$d"; else fail "$d"; fi
}
# has FILE PATTERN: FILE holds a line matching PATTERN.
has() { grep -q -e "$2" "$1"; }

# Wait (at most 5 s) until file $1 is not empty.
wait_file() {
	i=0
	while [ ! -s "$1" ] && [ $i -lt 100 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	[ -s "$1" ]
}

# Wait (at most 5 s) until file $1 matches $2.
wait_match() {
	i=0
	while ! grep -q -e "$2" "$1" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	grep -q -e "$2" "$1" 2>/dev/null
}
