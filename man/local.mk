# man pages (mdoc), linted by man/lint.sh (mandoc -Tlint -Wwarning)
dist_man_MANS += \
	man/witchd.8 \
	man/witch-protocol.7 \
	man/libwitch.3 \
	man/witch_server_new.3 \
	man/witch_server_config_new.3 \
	man/witch_request_data.3 \
	man/witch_strerror.3
TESTS += man/lint.sh
EXTRA_DIST += man/lint.sh
dist_man_MANS += man/witchctl.1
dist_man_MANS += man/witchd.conf.5
dist_man_MANS += man/witch_client_new.3
dist_man_MANS += man/witch-bench.1
dist_man_MANS += man/witch_announcer_new.3
dist_man_MANS += man/witch_listener_new.3
dist_man_MANS += man/witch_server_broadcast_to_peers.3

# A link per function: "man witch_client_call" opens witch_client_new(3).
# man/links.sh reads the functions from each page's NAME section, so a
# function documented in a family page gets its link by being listed there.
EXTRA_DIST += man/links.sh
install-data-hook: install-man-links
uninstall-hook: uninstall-man-links
install-man-links:
	@pages=; for p in $(dist_man_MANS); do \
	  case $$p in *.3) pages="$$pages $(srcdir)/$$p" ;; esac; \
	done; \
	$(SHELL) $(srcdir)/man/links.sh $$pages | while read -r l t; do \
	  rm -f "$(DESTDIR)$(man3dir)/$$l" && \
	  ln -s "$$t" "$(DESTDIR)$(man3dir)/$$l" || exit 1; \
	done
uninstall-man-links:
	@pages=; for p in $(dist_man_MANS); do \
	  case $$p in *.3) pages="$$pages $(srcdir)/$$p" ;; esac; \
	done; \
	$(SHELL) $(srcdir)/man/links.sh $$pages | while read -r l t; do \
	  rm -f "$(DESTDIR)$(man3dir)/$$l"; \
	done
.PHONY: install-man-links uninstall-man-links

# Every function libwitch.so exports has a page or a link.
TESTS += tests/check-manpages.sh
EXTRA_DIST += tests/check-manpages.sh
