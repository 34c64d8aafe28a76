"""witch.Server over real sockets: handlers that raise, return non-JSON
values or block; lifetime; options; restart."""

import gc
import math
import threading
import time
import weakref

import pytest

import witch
from conftest import run_python


def test_result_and_client_id(make_server, make_client):
    seen = []

    def who(data, client_id):
        seen.append(client_id)
        return {"you": client_id, "data": data}

    srv = make_server({"who": who})
    a, b = make_client(srv), make_client(srv)
    ra = a.call("who", [1, "é", {"x": None}])
    assert ra["data"] == [1, "é", {"x": None}]
    assert isinstance(ra["you"], int) and ra["you"] > 0
    assert a.call("who")["you"] == ra["you"]
    rb = b.call("who", 2)
    assert rb["you"] != ra["you"]
    assert a.call("who")["data"] is None
    assert seen == [ra["you"], ra["you"], rb["you"], ra["you"]]


def test_handler_raises(make_server, make_client):
    def boom(data, client_id):
        raise ValueError("bad value %r" % (data,))

    srv = make_server({"boom": boom, "ok": lambda d, c: "ok"})
    c = make_client(srv)
    with pytest.raises(witch.HandlerError) as ei:
        c.call("boom", 7)
    e = ei.value
    assert str(e) == "ValueError: bad value 7"
    assert e.remote and e.name == "handler_error"
    assert isinstance(e, witch.WitchError)
    assert c.call("ok") == "ok"      # the server keeps going
    assert srv.running


def test_handler_raises_witch_error_keeps_its_code(make_server, make_client):
    def guarded(data, client_id):
        raise witch.AuthenticationError("bad token")

    c = make_client(make_server({"guarded": guarded}))
    with pytest.raises(witch.AuthenticationError) as ei:
        c.call("guarded")
    assert str(ei.value) == "bad token"
    assert ei.value.name == "unauthorized" and ei.value.remote


@pytest.mark.parametrize("value, why", [
    ({1, 2}, "Object of type set is not JSON serializable"),
    (object(), "Object of type object is not JSON serializable"),
    (math.nan, "Out of range float values are not JSON compliant"),
    (b"bytes", "Object of type bytes is not JSON serializable"),
    ("\ud800", "surrogates not allowed"),
])
def test_handler_returns_non_json(make_server, make_client, value, why):
    srv = make_server({"bad": lambda d, c: value, "ok": lambda d, c: 1})
    c = make_client(srv)
    with pytest.raises(witch.HandlerError) as ei:
        c.call("bad")
    msg = str(ei.value)
    assert msg.startswith("value returned by the handler of 'bad' is not "
                          "JSON-serialisable: ")
    assert why in msg
    assert c.call("ok") == 1


def test_blocking_handler_does_not_block_others(make_server, make_client):
    release = threading.Event()
    entered = threading.Event()

    def block(data, client_id):
        entered.set()
        release.wait(10)
        return "released"

    srv = make_server({"block": block, "fast": lambda d, c: d},
                      workers=2)
    slow, fast = make_client(srv), make_client(srv)
    out = []
    t = threading.Thread(target=lambda: out.append(slow.call("block")))
    t.start()
    assert entered.wait(5)
    t0 = time.monotonic()
    for i in range(50):
        assert fast.call("fast", i) == i
    assert time.monotonic() - t0 < 2.0
    assert not out          # still blocked
    release.set()
    t.join(5)
    assert out == ["released"]


def test_collected_while_running_keeps_serving(make_client):
    """Lifetime rule: a started server lives until stop(), whatever
    references the program keeps."""
    srv = witch.Server(port=0, daemon=True, workers=2)
    srv.register_endpoint("sq", lambda d, c: d * d)
    srv.start()
    port, ref = srv.port, weakref.ref(srv)
    del srv
    gc.collect()
    c = make_client(port, auto_reconnect=False)
    for i in range(20):
        gc.collect()
        assert c.call("sq", i) == i * i
    assert ref() is not None and ref().running
    ref().stop()
    gc.collect()
    assert ref() is None    # stopped: collected like anything else
    with pytest.raises(witch.ConnectionError):
        c.call("sq", 3, timeout=1.0)


def test_never_started_is_collected():
    srv = witch.Server(port=0)
    srv.register_endpoint("x", lambda d, c: 0)
    ref = weakref.ref(srv)
    del srv
    gc.collect()
    assert ref() is None


def test_stop_from_handler_is_an_error(make_server, make_client):
    box = {}

    def stopper(data, client_id):
        box["srv"].stop()

    srv = make_server({"stop": stopper})
    box["srv"] = srv
    c = make_client(srv)
    with pytest.raises(witch.WitchError) as ei:
        c.call("stop")
    assert ei.value.name == "invalid_state"
    assert "from a handler" in str(ei.value)
    assert srv.running


def test_register_rules(make_server, make_client):
    srv = make_server(start=False)
    with pytest.raises(ValueError, match="invalid endpoint name"):
        srv.register_endpoint("has space", lambda d, c: 0)
    with pytest.raises(TypeError):
        srv.register_endpoint("x", 42)
    with pytest.warns(witch.BuiltinEndpointWarning, match="'ping' is a "
                      "built-in endpoint"):
        srv.register_endpoint("ping", lambda d, c: "mine")
    srv.register_endpoint("v", lambda d, c: 1)
    srv.start()
    with pytest.raises(witch.WitchError, match="only before start"):
        srv.register_endpoint("late", lambda d, c: 0)
    c = make_client(srv)
    assert c.call("ping")["pong"] is True
    assert c.call("v") == 1
    srv.register_endpoint("v", lambda d, c: 2)    # replacing is allowed
    assert c.call("v") == 2
    assert srv.endpoints == ["v"]


def test_bad_options():
    with pytest.raises(ValueError, match="invalid port: 70000"):
        witch.Server(port=70000)
    with pytest.raises(ValueError, match="invalid max_clients: 0"):
        witch.Server(port=0, max_clients=0)
    with pytest.raises(ValueError, match="invalid bind"):
        witch.Server(port=0, bind="not an address")
    with pytest.raises(TypeError):
        witch.Server(port=0, protocols="v1")
    with pytest.raises(TypeError):
        witch.Server(port=0, no_such_option=1)


def test_address_in_use(make_server):
    a = make_server()
    b = make_server(start=False, port=a.port)
    with pytest.raises(witch.ConnectionError) as ei:
        b.start()
    assert ei.value.name == "address_in_use"
    assert not b.running


def test_restart_and_context_manager(make_client):
    with witch.Server(port=0, daemon=True) as srv:
        srv.register_endpoint  # noqa: B018 - attribute exists
        port = srv.port
        assert port > 0 and srv.running
        first = srv.server_id
        assert make_client(srv).call("echo", 1) == {"echo": 1}
        with pytest.raises(witch.WitchError, match="already started"):
            srv.start()
    assert not srv.running and srv.port == 0
    srv.start()
    assert srv.server_id != first
    assert make_client(srv).call("echo", 2) == {"echo": 2}
    srv.stop()
    srv.stop()      # idempotent


def test_peer_attribute(make_server):
    with pytest.raises(witch.PeerError, match="peering not enabled"):
        make_server(start=False).peer
    peer = make_server(start=False, enable_peer=True, project_id="p").peer
    assert isinstance(peer, witch.ServerPeer)


def test_server_left_running_at_exit():
    """A daemon server still running at interpreter exit, with a client
    in the middle of calls from another thread: the exit hook stops it
    and the process exits cleanly."""
    code = ("import threading, witch\n"
            "s = witch.Server(port=0, daemon=True, workers=2)\n"
            "s.register_endpoint('f', lambda d, c: d)\n"
            "s.start()\n"
            "c = witch.Client(port=s.port)\n"
            "assert c.connect()\n"
            "def loop():\n"
            "    while True:\n"
            "        try: c.call('f', 1)\n"
            "        except witch.WitchError: pass\n"
            "threading.Thread(target=loop, daemon=True).start()\n"
            "print(c.call('f', 'bye'))\n")
    r = run_python(code, netns=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "bye\n"


def test_handler_reads_server_while_it_stops(make_server, make_client):
    """stop() waits for running handlers without holding what they may
    touch: a handler reading the server's properties during stop() ends,
    and so does stop()."""
    box, entered = {}, threading.Event()

    def slow(data, client_id):
        entered.set()
        time.sleep(0.3)
        s = box["srv"]
        return [s.clients, s.running, s.port > 0]

    srv = make_server({"slow": slow})
    box["srv"] = srv
    c = make_client(srv)
    out = []
    t = threading.Thread(target=lambda: out.append(c.call("slow")))
    t.start()
    assert entered.wait(5)
    t0 = time.monotonic()
    srv.stop(drain=5)
    assert time.monotonic() - t0 < 3
    t.join(5)
    assert out and out[0][1] is True and out[0][2] is True


def test_log_goes_to_logging(caplog):
    caplog.set_level("DEBUG", logger="witch.lib")
    srv = witch.Server(port=0, daemon=True, log=True)
    srv.start()
    port = srv.port
    srv.stop()
    msgs = [r.getMessage() for r in caplog.records if r.name == "witch.lib"]
    assert any("listening" in m and str(port) in m for m in msgs), msgs
    assert "stopped" in msgs
