# tests: integration (tests/integ) and daemon (tests/daemon) programs.
# Unit tests are listed next to the module they test (src/lib/*/local.mk).
