# peer: server peers (doc/internals/peer.md): links to the other servers
# of the project through the client library, heartbeats, messages.
libwitch_core_la_SOURCES += \
	%reldir%/peer.h %reldir%/peer_int.h \
	%reldir%/peer.c \
	%reldir%/send.c \
	%reldir%/link.c \
	%reldir%/wire.c
