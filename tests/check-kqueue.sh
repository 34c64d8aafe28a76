#!/bin/sh
# check-kqueue.sh: compile the kqueue poller backend with -fsyntax-only
# against tests/kqueue/sys/event.h (declarations written from kqueue(2)),
# so the backend that Linux never builds cannot rot unseen.  Run by make
# check; needs WITCH_CC, WITCH_SRCDIR and WITCH_BUILDDIR from the test
# environment.  With HAVE_KQUEUE1 defined and undefined: both branches.
src=${WITCH_SRCDIR:-.}
bld=${WITCH_BUILDDIR:-.}
cc=${WITCH_CC:-cc}
rc=0
for def in -UHAVE_KQUEUE1 -DHAVE_KQUEUE1; do
	# config.h first (as the real build does), then force the backend's
	# own macros whatever this platform's config.h says.
	if ! $cc -std=c11 -Wall -Wextra -Werror -fsyntax-only \
	    -include "$bld/config.h" -UHAVE_EPOLL -DHAVE_KQUEUE=1 $def \
	    -I"$src/tests/kqueue" -I"$bld/include" -I"$src/include" \
	    -I"$src/src/lib" "$src/src/lib/poll/poll_kqueue.c"; then
		echo "check-kqueue: poll_kqueue.c does not compile ($def)" >&2
		rc=1
	fi
done
[ $rc -eq 0 ] && echo "check-kqueue: poll_kqueue.c compiles against kqueue(2)"
exit $rc
