"""The original module's examples (python/README.md), executed as written.

Each runs in a fresh interpreter; when this test runs as root they run in
a private network namespace (lo, plus a veth pair 10.114.0.1/24 for
broadcast), so that port 8888 and the announcements stay inside it.
Without one, the TCP examples get a free port instead of 8888 and the
broadcast example is skipped (test_discovery covers discovery on
loopback)."""

import os
import re
import socket

import pytest

from conftest import HERE, NETNS, run_python

README = os.path.join(HERE, "..", "README.md")


def examples():
    text = open(README, encoding="utf-8").read()
    found = re.findall(r"<!-- example: (\w+) -->\s*```python\n(.*?)```",
                       text, re.S)
    return dict(found)


EX = examples()


def port_fixed(code):
    """code as written in a namespace, else with a free port for 8888."""
    if NETNS:
        return code
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return code.replace("8888", str(port))


def test_readme_has_every_example():
    assert set(EX) == {"server", "client", "discovery", "peer",
                       "peer_pair", "server_config", "client_config"}


def _code_lines(code):
    return [ln.strip() for ln in code.splitlines()
            if ln.strip() and not ln.strip().startswith(("from ", "import "))]


def test_examples_are_the_seeds():
    """Every code sample of the original documentation appears in the
    README unchanged but for its import lines."""
    src = os.environ.get("WITCH_SRCDIR", os.path.join(HERE, "..", ".."))
    seed = os.path.join(src, "..", "shared", "seed", "network-module.md")
    if not os.path.exists(seed):
        pytest.skip("original documentation not beside the tree")
    blocks = re.findall(r"```python\n(.*?)```",
                        open(seed, encoding="utf-8").read(), re.S)
    assert len(blocks) == 6
    ours = [_code_lines(c) for c in EX.values()]
    for block in blocks:
        assert _code_lines(block) in ours, block


def test_server_and_client_examples():
    code = port_fixed(EX["server"] + "\n" + EX["client"] + "\n"
                      "server.stop()\n")
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Response: {'echo': 'Hello'}\n"
    assert "BuiltinEndpointWarning: 'echo' is a built-in endpoint" \
        in r.stderr


def test_server_example_serves_until_stopped():
    """The server example's script ends with start(): it keeps serving
    (a non-daemon server holds the interpreter) until stop()."""
    code = port_fixed(
        "import threading, time\n" + EX["server"] + "\n"
        "def later():\n"
        "    time.sleep(0.5)\n"
        "    from witch import Client\n"
        "    c = Client(port=server.port)\n"
        "    assert c.connect(), c.last_error\n"
        "    print(c.call('echo', 'still here'), flush=True)\n"
        "    c.close()\n"
        "    server.stop()\n"
        "threading.Thread(target=later, daemon=True).start()\n")
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "{'echo': 'still here'}\n"


@pytest.mark.skipif(not NETNS, reason="needs root and network namespaces "
                    "(broadcasts stay inside one)")
def test_discovery_example():
    code = EX["discovery"] + "\nimport time\ntime.sleep(5)\n"
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "Found server: MyServer at 10.114.0.1:8888" in lines, r.stdout
    assert all(ln.startswith("Found server: MyServer at ") and
               ln.endswith(":8888") for ln in lines)


def test_peer_example():
    """As written: the server is not started, so it has no peer yet and
    the broadcast reaches nobody (returns 0), without an error."""
    code = port_fixed(EX["peer"] + "\nprint(server.peer.broadcast_to_peers("
                      "json.dumps({'type': 'status_update'})))\n")
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "0\n"


def test_peer_example_with_a_peer():
    """The example's server, started, with a second server of the same
    project seeded to it: its broadcast reaches the second's handler."""
    code = port_fixed(
        "import threading, time\n" + EX["peer"] + "\n"
        "server.start()\n"
        "got = threading.Event()\n"
        "inbox = []\n"
        "def handler(message, from_id, from_name):\n"
        "    inbox.append((message, from_name))\n"
        "    got.set()\n"
        "other = Server(port=0, server_name='Other', enable_peer=True,\n"
        "               project_id='my_project', peer_heartbeat=0.1,\n"
        "               peer_seeds=['127.0.0.1:%d' % server.port],\n"
        "               peer_message_handler=handler)\n"
        "other.start()\n"
        "end = time.monotonic() + 20\n"
        "while not any(p['status'] == 'alive' for p in server.peer.peers):\n"
        "    assert time.monotonic() < end, server.peer.peers\n"
        "    time.sleep(0.02)\n"
        "print(server.peer.broadcast_to_peers(json.dumps({\n"
        "    'type': 'status_update', 'status': 'active'})))\n"
        "assert got.wait(20)\n"
        "print(inbox)\n"
        "other.stop()\n"
        "server.stop()\n")
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("1\n[({'type': 'status_update', 'status': "
                        "'active'}, 'PeerServer')]\n")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_peer_pair_example():
    """The README's two-server peer example: B's handler gets A's
    broadcast and A's targeted message, in order."""
    code = EX["peer_pair"]
    if not NETNS:
        code = code.replace("9001", str(free_port())).replace(
            "9002", str(free_port()))
    code += ("end = time.monotonic() + 20\n"
             "while not any(p['name'] == 'A' and p['received'] == 2\n"
             "              for p in b.peer.peers):\n"
             "    assert time.monotonic() < end, b.peer.peers\n"
             "    time.sleep(0.02)\n"
             "b.stop(); a.stop()\n")
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("from A {'type': 'status_update', 'status': "
                        "'active'}\nfrom A {'type': 'hello'}\n")


def test_configuration_examples():
    code = port_fixed(
        EX["server_config"] + "\n" + EX["client_config"] + "\n"
        "server.start()\n"
        "assert client.connect(), client.last_error\n"
        "info = client.send_and_receive({'endpoint': 'info'})\n"
        "print(info['name'], info['project_id'], info['protocols'])\n"
        "client.disconnect()\n"
        "server.stop()\n")
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "MyServer my_project ['v1', 'v2']\n"
