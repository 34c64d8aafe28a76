# Python binding (python/): the cffi module compiled by libtool against
# libwitch.la, the pure-Python package, and the pytest suite that make
# check runs on them (python/run-pytest).  pip builds the same module with
# python/setup.py; both use python/witch_build.py.

PYWITCH_SOURCES_ = python/witch/__init__.py python/witch/_lib.py \
	python/witch/_util.py python/witch/errors.py python/witch/server.py \
	python/witch/client.py python/witch/discovery.py
EXTRA_DIST += $(PYWITCH_SOURCES_) python/README.md python/threading.md \
	python/setup.py python/pyproject.toml python/witch_build.py \
	python/run-pytest.in python/tests/conftest.py \
	python/tests/test_seed.py python/tests/test_server.py \
	python/tests/test_client.py python/tests/test_discovery.py \
	python/tests/test_stress.py python/tests/test_pip.py \
	python/tests/test_peer.py \
	python/bench/run.sh python/bench/c_server.c python/bench/py_server.py
TESTS += python/run-pytest

if ENABLE_PYTHON
pywitchdir = $(pyexecdir)/witch
pywitch_PYTHON = $(PYWITCH_SOURCES_)
pywitchexecdir = $(pyexecdir)/witch
pywitchexec_LTLIBRARIES = python/_witch_cffi.la
nodist_python__witch_cffi_la_SOURCES = python/_witch_cffi.c
python__witch_cffi_la_CPPFLAGS = -I$(top_builddir)/include \
	-I$(top_srcdir)/include $(JANSSON_CFLAGS) -I$(PYTHON_INCLUDE)
python__witch_cffi_la_CFLAGS = $(SAN_CFLAGS) -fno-strict-aliasing
python__witch_cffi_la_LDFLAGS = -module -avoid-version -shared \
	$(SAN_LDFLAGS)
python__witch_cffi_la_LIBADD = libwitch.la $(JANSSON_LIBS)
CLEANFILES += python/_witch_cffi.c

python/_witch_cffi.c: $(srcdir)/python/witch_build.py
	$(AM_V_GEN)$(MKDIR_P) python && \
	    $(PYTHON) $(srcdir)/python/witch_build.py $@ >/dev/null

# A Python package has no use for libtool's .la file.
install-exec-hook: install-pywitch-hook
install-pywitch-hook:
	rm -f $(DESTDIR)$(pywitchexecdir)/_witch_cffi.la
uninstall-local: uninstall-pywitch-local
uninstall-pywitch-local:
	rm -f $(DESTDIR)$(pywitchexecdir)/_witch_cffi.so

# The package as the tests import it: sources plus the uninstalled module.
check_DATA = python/stage.stamp
python/stage.stamp: python/_witch_cffi.la $(PYWITCH_SOURCES_)
	$(AM_V_GEN)rm -rf python/stage && $(MKDIR_P) python/stage/witch && \
	    for f in $(PYWITCH_SOURCES_); do \
	        cp $(srcdir)/$$f python/stage/witch/ || exit 1; \
	    done && \
	    cp python/.libs/_witch_cffi.so python/stage/witch/ && touch $@

endif
clean-local:
	rm -rf python/stage python/stage.stamp
