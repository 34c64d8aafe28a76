# witchd: the daemon (links only the public API: libwitch.la)
sbin_PROGRAMS += src/witchd/witchd
src_witchd_witchd_SOURCES = %reldir%/main.c
src_witchd_witchd_LDADD = libwitch.la $(JANSSON_LIBS) $(LIBBSD_LIBS)
