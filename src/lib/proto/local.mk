# proto: frame codec and request/reply envelope (pure: no sockets, fuzzable).
# See doc/internals/framing.md.
libwitch_core_la_SOURCES += \
	%reldir%/auth.c %reldir%/auth.h \
	%reldir%/frame.c %reldir%/frame.h \
	%reldir%/envelope.c %reldir%/envelope.h \
	%reldir%/reply.c \
	%reldir%/scan.c %reldir%/scan.h

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_frame tests/unit/test_envelope
TESTS += tests/unit/test_frame tests/unit/test_envelope

tests_unit_test_frame_SOURCES = tests/unit/test_frame.c
tests_unit_test_frame_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_unit_test_frame_LDADD = $(WITCHTEST_LIBS_)

tests_unit_test_envelope_SOURCES = tests/unit/test_envelope.c
tests_unit_test_envelope_CFLAGS = $(WITCHTEST_CFLAGS_)
tests_unit_test_envelope_LDADD = $(WITCHTEST_LIBS_)
endif
