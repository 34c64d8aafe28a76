"""witch.Client: bad messages, a dead server, reconnection, timeouts,
error mapping, asyncio, and no leak over 10,000 calls."""

import asyncio
import builtins
import gc
import os
import socket
import threading
import time
import tracemalloc

import pytest

import witch
from witch import errors


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_bad_messages(make_server, make_client):
    c = make_client(make_server({"f": lambda d, c: d}))
    with pytest.raises(witch.ProtocolError, match='no "endpoint"') as ei:
        c.send_and_receive({"data": "Hello"})
    assert ei.value.name == "invalid_request" and not ei.value.remote
    with pytest.raises(witch.ProtocolError, match="must be a dict"):
        c.send_and_receive('{"endpoint": "f"}')
    with pytest.raises(witch.ProtocolError, match="non-empty string"):
        c.send_and_receive({"endpoint": 5})
    with pytest.raises(witch.JSONError, match="not JSON-serialisable"):
        c.send_and_receive({"endpoint": "f", "data": {1, 2}})
    with pytest.raises(ValueError):     # JSONError is a ValueError too
        c.call("f", float("inf"))
    with pytest.raises(witch.ProtocolError) as ei:
        c.send_and_receive({"endpoint": "nope"})
    assert ei.value.name == "unknown_endpoint" and ei.value.remote
    with pytest.raises(witch.ProtocolError) as ei:
        c.call("bad name!")
    assert ei.value.name == "unknown_endpoint" and ei.value.remote
    assert c.send_and_receive({"endpoint": "f", "data": [1]}) == [1]
    assert c.send_and_receive({"endpoint": "f"}) is None


def test_dead_server():
    c = witch.Client(port=free_port(), timeout=1.0)
    t0 = time.monotonic()
    assert c.connect() is False
    assert time.monotonic() - t0 < 2.0
    assert isinstance(c.last_error, witch.ConnectionError)
    assert isinstance(c.last_error, builtins.ConnectionError)
    assert c.status == "disconnected"
    with pytest.raises(witch.ConnectionError):
        c.send_and_receive({"endpoint": "echo", "data": 1})
    c.close()
    assert c.status == "closed"
    with pytest.raises(witch.ConnectionError, match="closed"):
        c.call("echo")


def test_server_dies_then_gives_up(make_server):
    srv = make_server()
    c = witch.Client(port=srv.port, timeout=1.0, max_reconnect_attempts=2,
                     reconnect_delay=0.05, reconnect_delay_max=0.1)
    assert c.connect() and c.status == "connected"
    srv.stop()
    with pytest.raises((witch.ConnectionError, witch.TimeoutError)):
        c.call("echo", 1)
    deadline = time.monotonic() + 5
    while c.status != "closed" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert c.status == "closed"
    with pytest.raises(witch.ConnectionError):
        c.call("echo", 1)
    c.close()


def test_reconnects_to_restarted_server(make_server):
    srv = make_server({"f": lambda d, c: d + 1})
    port = srv.port
    c = witch.Client(port=port, timeout=3.0, reconnect_delay=0.05)
    assert c.connect()
    assert c.call("f", 1) == 2
    srv.stop()
    srv2 = witch.Server(port=port, daemon=True)
    srv2.register_endpoint("f", lambda d, c: d + 10)
    srv2.start()
    try:
        deadline = time.monotonic() + 5
        result = None
        while time.monotonic() < deadline:
            try:
                result = c.call("f", 1)
                break
            except witch.ConnectionError:
                time.sleep(0.05)
        assert result == 11
        assert c.status == "connected"
    finally:
        c.close()
        srv2.stop()


def test_timeout(make_server, make_client):
    def slow(data, client_id):
        time.sleep(data)
        return "late"

    c = make_client(make_server({"slow": slow}))
    with pytest.raises(witch.TimeoutError) as ei:
        c.call("slow", 1.0, timeout=0.2)
    assert isinstance(ei.value, builtins.TimeoutError)
    assert c.call("slow", 0, timeout=2.0) == "late"


def test_disconnect_and_connect_again(make_server, make_client):
    c = make_client(make_server())
    c.disconnect()
    assert c.status == "closed"
    with pytest.raises(witch.ConnectionError):
        c.call("echo", 1)
    assert c.connect()
    assert c.call("echo", 1) == {"echo": 1}


def test_error_mapping():
    cases = {
        "connection_error": witch.ConnectionError,
        "shutting_down": witch.ConnectionError,
        "server_full": witch.ConnectionError,
        "timeout": witch.TimeoutError,
        "protocol_error": witch.ProtocolError,
        "unknown_endpoint": witch.ProtocolError,
        "invalid_request": witch.ProtocolError,
        "incompatible": witch.ProtocolError,
        "parse_error": witch.JSONError,
        "unauthorized": witch.AuthenticationError,
        "handler_error": witch.HandlerError,
        "overloaded": witch.WitchError,
        "cancelled": witch.WitchError,
    }
    for slug, cls in cases.items():
        code = witch._lib.witch_err_from_name(slug.encode())
        e = errors.from_code(code, "msg", remote=True)
        assert type(e) is cls, slug
        assert e.code == code and e.name == slug and e.remote
        assert str(e) == "msg"
        assert isinstance(e, witch.WitchError)


def test_server_full(make_server, make_client):
    srv = make_server(max_clients=1)
    make_client(srv)
    c = witch.Client(port=srv.port, timeout=2.0, auto_reconnect=False)
    assert c.connect() is False
    assert isinstance(c.last_error, witch.WitchError)
    c.close()


def test_async_calls(make_server, make_client):
    def slow(data, client_id):
        time.sleep(data)
        return data

    srv = make_server({"add": lambda d, c: d[0] + d[1], "slow": slow})
    c = make_client(srv)

    async def main():
        got = await asyncio.gather(*[c.call_async("add", [i, i])
                                     for i in range(200)])
        assert got == [2 * i for i in range(200)]
        r = await c.send_and_receive_async({"endpoint": "add",
                                            "data": [1, 2]})
        assert r == 3
        with pytest.raises(witch.ProtocolError):
            await c.call_async("nope")
        with pytest.raises(witch.ProtocolError):
            await c.send_and_receive_async({"data": 1})
        with pytest.raises(witch.TimeoutError):
            await c.call_async("slow", 1.0, timeout=0.1)
        # Cancelling the task cancels the request.
        t = asyncio.ensure_future(c.call_async("slow", 0.5))
        await asyncio.sleep(0.05)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        # Other work goes on meanwhile.
        assert await c.call_async("add", [2, 2]) == 4

    asyncio.run(main())
    deadline = time.monotonic() + 3
    while c.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert c.pending == 0
    assert c.call("add", [5, 5]) == 10      # sync still fine


def test_async_on_two_loops_from_threads(make_server, make_client):
    c = make_client(make_server({"id": lambda d, c: d}))
    out = {}

    def worker(k):
        async def main():
            return await asyncio.gather(*[c.call_async("id", [k, i])
                                          for i in range(100)])
        out[k] = asyncio.run(main())

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    for k in range(4):
        assert out[k] == [[k, i] for i in range(100)]


def _rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_no_leak_over_10000_calls(make_server, make_client):
    """10,000 calls through a Python handler: traced Python memory and
    the process's RSS stay flat after a warm-up."""
    def handler(data, client_id):
        return {"n": data["n"], "s": data["s"].upper()}

    c = make_client(make_server({"h": handler}))

    def burst(n):
        for i in range(n):
            r = c.call("h", {"n": i, "s": "abc%d" % i})
            assert r["n"] == i
        try:
            c.call("nope")
        except witch.ProtocolError:
            pass

    burst(2000)                 # warm-up: caches, arenas, thread states
    gc.collect()
    tracemalloc.start()
    rss0 = _rss_kib()
    snap0 = tracemalloc.take_snapshot()
    burst(10000)
    gc.collect()
    snap1 = tracemalloc.take_snapshot()
    rss1 = _rss_kib()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in snap1.compare_to(snap0, "filename"))
    assert grown < 64 * 1024, grown
    # ASan keeps freed memory in quarantine: RSS says nothing there.
    if not os.environ.get("WITCH_SANITIZED"):
        assert rss1 - rss0 < 2048, (rss0, rss1)


def test_close_while_other_threads_call(make_server):
    """close() from one thread while others are inside calls: the calls
    fail with ConnectionError, nothing crashes, later calls say closed."""
    def slow(data, client_id):
        time.sleep(0.2)
        return data

    srv = make_server({"slow": slow, "f": lambda d, c: d})
    c = witch.Client(port=srv.port, timeout=5.0)
    assert c.connect()
    results = []

    def caller():
        try:
            while True:
                c.call("slow" if len(results) % 2 else "f", 1)
                results.append("ok")
        except witch.ConnectionError as e:
            results.append(e)

    ts = [threading.Thread(target=caller) for _ in range(4)]
    for t in ts:
        t.start()
    time.sleep(0.3)
    c.close()
    for t in ts:
        t.join(5)
        assert not t.is_alive()
    errs = [r for r in results if isinstance(r, Exception)]
    assert len(errs) == 4
    assert c.status == "closed"


def test_server_events(make_server):
    """on_event gets the server's event frames: "closing" when it stops;
    a callback that raises is counted and the client goes on."""
    got, raised = [], []

    def on_event(name, data):
        got.append((name, data))
        if not raised:
            raised.append(1)
            raise RuntimeError("event callback failure")

    srv = make_server()
    c = witch.Client(port=srv.port, timeout=2.0, on_event=on_event,
                     auto_reconnect=False)
    try:
        assert c.connect()
        assert c.call("echo", 1) == {"echo": 1}
        srv.stop()
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        assert got[0] == ("closing", {"reason": "shutdown"})
        assert c.event_errors == 1
        deadline = time.monotonic() + 5
        while c.status == "connected" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert c.status in ("disconnected", "closed")
    finally:
        c.close()
    with pytest.raises(TypeError):
        witch.Client(on_event=5)
