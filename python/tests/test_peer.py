"""server.peer: Python servers on 127.0.0.1 linked through peer_seeds
(discovery off), messages through real peer links."""

import threading
import time

import pytest

import witch

DEADLINE = 20.0


def wait_for(pred, what, timeout=DEADLINE, show=None):
    """Poll pred() until true; fail naming what (and the peer tables of
    the servers in show) at the deadline."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    tables = "".join("\n%s: %r" % (s.server_id, s.peer.peers)
                     for s in show or ())
    pytest.fail("timed out waiting for " + what + tables)


class Inbox:
    """A peer-message handler recording (message, from_id, from_name)."""

    def __init__(self):
        self.got = []
        self.lock = threading.Lock()

    def __call__(self, message, from_id, from_name):
        with self.lock:
            self.got.append((message, from_id, from_name))

    def messages(self):
        with self.lock:
            return list(self.got)


def alive_ids(srv):
    return {p["server_id"] for p in srv.peer.peers
            if p["status"] == "alive"}


@pytest.fixture
def mesh(make_server):
    """mesh(n) -> [(server, inbox)]: n peering servers of one project,
    the first the seed of the others, each listing the others alive."""

    def make(n, project="pytest_peers", **kw):
        out = []
        seed = None
        for i in range(n):
            inbox = Inbox()
            srv = make_server(server_name="peer%d" % i, enable_peer=True,
                              project_id=project, peer_heartbeat=0.1,
                              peer_message_handler=inbox,
                              peer_seeds=[seed] if seed else None, **kw)
            if seed is None:
                seed = "127.0.0.1:%d" % srv.port
            out.append((srv, inbox))
        ids = {s.server_id for s, _ in out}
        for srv, _ in out:
            wait_for(lambda srv=srv: alive_ids(srv) == ids - {srv.server_id},
                     "%s to list its peers alive" % srv.server_id,
                     show=[s for s, _ in out])
        return out

    return make


def test_three_servers_list_each_other(mesh):
    servers = mesh(3)
    for i, (srv, _) in enumerate(servers):
        table = srv.peer.peers
        assert len(table) == 2
        assert {p["name"] for p in table} == \
            {"peer0", "peer1", "peer2"} - {"peer%d" % i}
        for p in table:
            assert p["address"] == "127.0.0.1"
            assert isinstance(p["port"], int) and p["port"] > 0
            assert p["role"] in ("dial", "accept")


def test_broadcast_reaches_each_other_server_once(mesh):
    servers = mesh(3)
    (a, ia), (b, ib), (c, ic) = servers
    n = a.peer.broadcast_to_peers({"type": "status_update", "n": 1})
    assert n == 2
    wait_for(lambda: ib.messages() and ic.messages(), "the broadcast",
             show=[a, b, c])
    # Past the heartbeat a duplicate would have arrived too.
    time.sleep(0.3)
    for inbox in (ib, ic):
        assert inbox.messages() == [({"type": "status_update", "n": 1},
                                     a.server_id, "peer0")]
    assert ia.messages() == []
    # JSON text (the original module's way) is sent as its value.
    assert b.peer.broadcast_to_peers('{"type": "text"}') == 2
    wait_for(lambda: len(ia.messages()) == 1 and len(ic.messages()) == 2,
             "the text broadcast")
    assert ia.messages()[0] == ({"type": "text"}, b.server_id, "peer1")


def test_send_to_peer_reaches_only_its_target(mesh):
    (a, ia), (b, ib), (c, ic) = mesh(3)
    a.peer.send_to_peer(c.server_id, ["by id"])
    a.peer.send_to_peer("peer1", ["by name"])
    wait_for(lambda: ic.messages() and ib.messages(), "the messages",
             show=[a, b, c])
    time.sleep(0.3)
    assert ic.messages() == [(["by id"], a.server_id, "peer0")]
    assert ib.messages() == [(["by name"], a.server_id, "peer0")]
    assert ia.messages() == []


def test_send_errors_are_mapped(mesh, make_server):
    (a, _), (b, _) = mesh(2)
    with pytest.raises(witch.UnknownPeerError) as ei:
        a.peer.send_to_peer("0" * 32, {"x": 1})
    assert ei.value.code == witch.errors._code("no_peer")
    assert ei.value.name == "no_peer"
    assert isinstance(ei.value, witch.PeerError)
    with pytest.raises(witch.JSONError):
        a.peer.send_to_peer(b.server_id, "{not json")
    with pytest.raises(witch.JSONError):
        a.peer.broadcast_to_peers({"nan": float("nan")})
    # A peer that stops is dead after a few heartbeats: peer_down.
    bid = b.server_id
    b.stop()
    wait_for(lambda: any(p["server_id"] == bid and p["status"] == "dead"
                         for p in a.peer.peers), "the peer to be dead")
    with pytest.raises(witch.PeerDownError) as ei:
        a.peer.send_to_peer(bid, {"x": 1})
    assert ei.value.name == "peer_down"
    assert a.peer.broadcast_to_peers({"x": 1}) == 0


def test_raising_handler_does_not_kill_the_server(mesh, make_client,
                                                  caplog):
    (a, _), (b, ib) = mesh(2)
    calls = []

    def bad(message, from_id, from_name):
        calls.append(message)
        if message == "boom":
            raise RuntimeError("handler failure")
        ib(message, from_id, from_name)

    b.peer.on_message(bad)
    a.peer.send_to_peer(b.server_id, "\"boom\"")
    a.peer.send_to_peer(b.server_id, "\"after\"")
    wait_for(lambda: ib.messages(), "the message after the failure")
    assert calls == ["boom", "after"]
    assert ib.messages() == [("after", a.server_id, "peer0")]
    assert "peer message handler raised" in caplog.text
    c = make_client(b)
    assert c.call("ping") is not None
    assert alive_ids(b) == {a.server_id}


def test_status_callback_and_handler_in_constructor(make_server):
    events = []
    lock = threading.Lock()

    def status(peer, old):
        with lock:
            events.append((peer["server_id"], peer["status"], old))

    a = make_server(server_name="s0", enable_peer=True, project_id="st",
                    peer_heartbeat=0.1, peer_status_callback=status)
    b = make_server(server_name="s1", enable_peer=True, project_id="st",
                    peer_heartbeat=0.1,
                    peer_seeds=["127.0.0.1:%d" % a.port])
    wait_for(lambda: any(e[:2] == (b.server_id, "alive")
                         for e in list(events)), "b alive on a")
    bid = b.server_id
    b.stop()
    wait_for(lambda: any(e[:2] == (bid, "dead") for e in list(events)),
             "b dead on a")


def test_callbacks_run_on_the_peer_thread(mesh):
    (a, _), (b, _) = mesh(2)
    seen = []
    done = threading.Event()

    def handler(message, from_id, from_name):
        seen.append(threading.current_thread() is not
                    threading.main_thread())
        # Server calls from the peer thread work; stop() is refused.
        seen.append(b.peer.broadcast_to_peers({"reply": message}))
        try:
            b.stop()
        except witch.WitchError as e:
            seen.append(e.name)
        done.set()

    b.peer.on_message(handler)
    a.peer.send_to_peer(b.server_id, 1)
    assert done.wait(DEADLINE)
    assert seen == [True, 1, "invalid_state"]
    assert b.running


def test_peer_options_and_states(make_server):
    srv = make_server(enable_peer=False, start=False)
    with pytest.raises(witch.PeerError, match="peering not enabled"):
        srv.peer
    with pytest.raises(ValueError, match="only with enable_peer"):
        witch.Server(port=0, peer_seeds=["127.0.0.1:1"])
    with pytest.raises(ValueError, match="peer seed"):
        witch.Server(port=0, enable_peer=True, peer_seeds=["no port"])
    with pytest.raises(TypeError):
        witch.Server(port=0, enable_peer=True, peer_seeds="127.0.0.1:1")
    with pytest.raises(ValueError, match="peer_heartbeat"):
        witch.Server(port=0, enable_peer=True, peer_heartbeat=0.001)
    with pytest.raises(TypeError):
        witch.Server(port=0, enable_peer=True, peer_message_handler=3)
    # Not running: no peers, a broadcast reaches nobody, a send fails.
    idle = make_server(enable_peer=True, project_id="p", start=False)
    assert idle.peer.peers == []
    assert idle.peer.broadcast_to_peers('{"a": 1}') == 0
    with pytest.raises(witch.JSONError):
        idle.peer.broadcast_to_peers("{bad")
    with pytest.raises(witch.WitchError) as ei:
        idle.peer.send_to_peer("x", 1)
    assert ei.value.name == "invalid_state"
    # Running alone: an empty table, nothing to broadcast to.
    idle.start()
    assert idle.peer.peers == []
    assert idle.peer.broadcast_to_peers([1]) == 0
    with pytest.raises(witch.UnknownPeerError):
        idle.peer.send_to_peer("nobody", 1)
