"""Shared fixtures of the witch binding's tests: servers on 127.0.0.1 with
port 0, stopped at the end of each test."""

import os
import shutil
import subprocess
import sys

import pytest

import witch

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = os.environ.get("WITCH_PYTHON", sys.executable)


@pytest.fixture
def make_server():
    """make_server(**kw) -> a started Server on a free port (port=0,
    daemon, 4 workers unless given)."""
    made = []

    def make(endpoints=None, start=True, **kw):
        kw.setdefault("port", 0)
        kw.setdefault("daemon", True)
        kw.setdefault("workers", 4)
        srv = witch.Server(**kw)
        made.append(srv)
        for name, fn in (endpoints or {}).items():
            srv.register_endpoint(name, fn)
        if start:
            srv.start()
        return srv

    yield make
    for srv in made:
        srv.close()


@pytest.fixture
def make_client():
    """make_client(server_or_port, **kw) -> a connected Client."""
    made = []

    def make(target, connect=True, **kw):
        port = target if isinstance(target, int) else target.port
        kw.setdefault("timeout", 5.0)
        c = witch.Client(host="127.0.0.1", port=port, **kw)
        made.append(c)
        if connect:
            assert c.connect(), c.last_error
        return c

    yield make
    for c in made:
        c.close()


# Sanitizer builds preload the sanitizer runtime into the interpreter
# (python/run-pytest); other programs (unshare, ip, sh, cc) run without.
PRELOAD = os.environ.get("LD_PRELOAD", "")


def plain_env():
    """os.environ without the sanitizer runtime preload."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


def netns_available():
    """True when this process may run a command in a new network
    namespace with a veth pair (root, unshare(1), ip(8))."""
    if os.geteuid() != 0 or not shutil.which("unshare") \
            or not shutil.which("ip"):
        return False
    r = subprocess.run(["unshare", "-n", "sh", "-c",
                        "ip link add v0 type veth peer name v1"],
                       capture_output=True, env=plain_env())
    return r.returncode == 0


NETNS = netns_available()

# In the namespace: lo up, and a veth pair 10.114.0.1/24 <-> (no address),
# so that IPv4 broadcast has an interface and stays inside.
NETNS_SETUP = ("ip link set lo up && "
               "ip link add v0 type veth peer name v1 && "
               "ip addr add 10.114.0.1/24 brd + dev v0 && "
               "ip link set v0 up && ip link set v1 up && ")


def run_python(code, timeout=30, netns=True):
    """Run code in a fresh interpreter (in a private network namespace
    when available and netns); returns the CompletedProcess."""
    argv = [PYTHON, "-X", "faulthandler", "-c", code]
    env = None
    if netns and NETNS:
        if PRELOAD:
            argv = ["env", "LD_PRELOAD=" + PRELOAD] + argv
        argv = ["unshare", "-n", "sh", "-c", NETNS_SETUP + 'exec "$@"',
                "sh"] + argv
        env = plain_env()
    return subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout, env=env)
