witchinclude_HEADERS += \
	%reldir%/witch/witch.h \
	%reldir%/witch/export.h \
	%reldir%/witch/error.h \
	%reldir%/witch/server.h \
	%reldir%/witch/client.h \
	%reldir%/witch/discovery.h \
	%reldir%/witch/peer.h
