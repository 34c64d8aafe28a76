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
