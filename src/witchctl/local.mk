# witchctl: the command-line client (links only the public API)
bin_PROGRAMS += src/witchctl/witchctl
src_witchctl_witchctl_SOURCES = %reldir%/main.c %reldir%/witchctl.h \
	%reldir%/cmd_ping.c %reldir%/cmd_call.c %reldir%/cmd_ops.c \
	%reldir%/cmd_discover.c %reldir%/sigpipe.c \
	%reldir%/cmd_peer.c \
	%reldir%/output.c %reldir%/output.h \
	%reldir%/prom.c %reldir%/prom.h
src_witchctl_witchctl_LDADD = libwitch.la $(JANSSON_LIBS) $(LIBBSD_LIBS)

# bash completion.  bash-completion loads completions/<command> on demand,
# so the script is installed under the command's own name (a build-tree
# copy, which avoids install hooks shared with the other fragments).
bashcompdir = $(datadir)/bash-completion/completions
bashcomp_DATA = contrib/completion/witchctl
contrib/completion/witchctl: $(top_srcdir)/contrib/completion/witchctl.bash
	$(AM_V_GEN)$(MKDIR_P) contrib/completion && \
	cp $(top_srcdir)/contrib/completion/witchctl.bash $@
CLEANFILES += contrib/completion/witchctl
EXTRA_DIST += contrib/completion/witchctl.bash

# black-box test: witchd driven by witchctl
TESTS += tests/daemon/test_witchctl.sh
EXTRA_DIST += tests/daemon/test_witchctl.sh

# the operations commands across two network namespaces (root and ip(8);
# skipped otherwise): untrusted clients get "unauthorized"
TESTS += tests/daemon/test_netns_ops.sh
EXTRA_DIST += tests/daemon/test_netns_ops.sh

# witchd announcing and "witchctl discover" listening, on a LAN of network
# namespaces (root and ip(8); skipped otherwise)
TESTS += tests/daemon/test_discover_netns.sh
EXTRA_DIST += tests/daemon/test_discover_netns.sh

# durations: one parser shared with witchd (src/common)
src_witchctl_witchctl_SOURCES += src/common/secs.c src/common/secs.h

# server peers: four witchd on a LAN of namespaces, a seed across a router
# (root and ip(8); skipped otherwise; nft(8) or iptables(8) for the
# blackhole step)
TESTS += tests/daemon/test_peers_netns.sh
EXTRA_DIST += tests/daemon/test_peers_netns.sh
