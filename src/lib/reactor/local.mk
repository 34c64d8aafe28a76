# reactor: the loop, connections, accept, routing, jobs
libwitch_core_la_SOURCES += \
	%reldir%/reactor.h \
	%reldir%/loop.c \
	%reldir%/conn.c \
	%reldir%/direct.c \
	%reldir%/budget.c \
	%reldir%/accept.c \
	%reldir%/route.c \
	%reldir%/job.c \
	%reldir%/builtins.c \
	%reldir%/mail.c
