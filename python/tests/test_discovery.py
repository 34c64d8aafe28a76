"""witch.discovery on loopback: lo has no broadcast, so announcers send by
unicast to 127.0.0.1 at the listener's port (picked free), as
tests/integ/test_discovery_lo.c does.  Listeners bind 127.0.0.1, never the
wildcard of the host's namespace."""

import threading
import time

import pytest

import witch
from witch.discovery import (broadcast_server_info,
                             listen_for_server_broadcasts)


class Recorder:
    def __init__(self, fail_first=0):
        self.infos = []
        self.cv = threading.Condition()
        self.fail_first = fail_first

    def __call__(self, info):
        with self.cv:
            self.infos.append(info)
            self.cv.notify_all()
            if len(self.infos) <= self.fail_first:
                raise RuntimeError("callback failure %d" % len(self.infos))

    def wait(self, pred, timeout=5.0):
        with self.cv:
            return self.cv.wait_for(lambda: any(pred(i) for i in self.infos),
                                    timeout)


def test_broadcast_and_listen():
    rec = Recorder()
    with listen_for_server_broadcasts(callback=rec, port=0, ipv6=False,
                                      bind="127.0.0.1",
                                      events=("found", "lost")) as lis:
        assert lis.port > 0
        with broadcast_server_info(server_name="MyServer", port=8888,
                                   protocols=["v1", "v2"],
                                   project_id="proj", interval=0.2,
                                   discovery_port=lis.port,
                                   bind="127.0.0.1",
                                   target="127.0.0.1") as ann:
            assert rec.wait(lambda i: i["event"] == "found")
            info = rec.infos[0]
            assert info["name"] == "MyServer"
            assert info["ip"] == "127.0.0.1" and info["port"] == 8888
            assert info["protocols"] == ["v1", "v2"]
            assert info["project_id"] == "proj"
            assert info["server_id"] == ann.server_id
            # The announcer counts a datagram after sendto() returns, so
            # the listener may report it first: wait for the count.
            deadline = time.monotonic() + 5.0
            while ann.sent < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert ann.sent >= 1
            assert [s["name"] for s in lis.servers] == ["MyServer"]
        # stop() says "leaving": lost at once.
        assert rec.wait(lambda i: i["event"] == "lost" and i["leaving"])
    assert lis.port == 0 and lis.servers == []


def test_callback_that_raises_does_not_stop_the_listener(caplog):
    rec = Recorder(fail_first=1)
    lis = listen_for_server_broadcasts(callback=rec, port=0, ipv6=False,
                                       bind="127.0.0.1")
    try:
        a1 = broadcast_server_info("one", 1001, interval=0.2,
                                   discovery_port=lis.port,
                                   bind="127.0.0.1", target="127.0.0.1")
        assert rec.wait(lambda i: i["name"] == "one")
        a2 = broadcast_server_info("two", 1002, interval=0.2,
                                   discovery_port=lis.port,
                                   bind="127.0.0.1", target="127.0.0.1")
        assert rec.wait(lambda i: i["name"] == "two")
        assert lis.callback_errors == 1
        assert "discovery callback raised" in caplog.text
        assert "callback failure 1" in caplog.text
        a1.stop()
        a2.stop()
    finally:
        lis.stop()


def test_stop_from_callback_is_refused():
    box, errs = {}, []

    def cb(info):
        try:
            box["lis"].stop()
        except witch.WitchError as e:
            errs.append(e)

    box["lis"] = lis = listen_for_server_broadcasts(callback=cb, port=0,
                                                    ipv6=False,
                                                    bind="127.0.0.1")
    a = broadcast_server_info("x", 1, interval=0.2, discovery_port=lis.port,
                              bind="127.0.0.1", target="127.0.0.1")
    deadline = time.monotonic() + 5
    while not errs and time.monotonic() < deadline:
        time.sleep(0.02)
    a.stop()
    lis.stop()
    assert errs and "own callback" in str(errs[0])


def test_server_announces_itself(make_server, make_client):
    rec = Recorder()
    lis = listen_for_server_broadcasts(callback=rec, port=0, ipv6=False,
                                       bind="127.0.0.1", verify=True,
                                       events=("found", "verified"))
    try:
        srv = make_server(server_name="Announced", enable_discovery=True,
                          discovery_port=lis.port, discovery_interval=0.2,
                          discovery_target="127.0.0.1")
        assert rec.wait(lambda i: i["event"] == "verified" and
                        i["verified"] == "ok")
        info = [i for i in rec.infos if i["event"] == "found"][0]
        assert info["name"] == "Announced" and info["port"] == srv.port
        assert info["server_id"] == srv.server_id
        assert info["source_hash"] == srv.source_hash
    finally:
        lis.stop()


def test_bad_arguments():
    with pytest.raises(ValueError, match="invalid port"):
        broadcast_server_info("x", 0)
    with pytest.raises(ValueError, match="invalid server_name"):
        broadcast_server_info("", 1)
    with pytest.raises(TypeError):
        listen_for_server_broadcasts(callback=None, port=0)
    with pytest.raises(ValueError, match="unknown events"):
        listen_for_server_broadcasts(callback=print, port=0,
                                     events=("found", "gone"))
    with pytest.raises(ValueError, match="invalid bind"):
        listen_for_server_broadcasts(callback=print, port=0,
                                     bind="localhost")
    with pytest.raises(TypeError):
        listen_for_server_broadcasts(callback=print, port=0, bind=1)


def test_bound_listener_hears_only_its_address():
    """Bound to 127.0.0.2: an announcer sending to 127.0.0.1 at its port
    is not heard; one sending to 127.0.0.2 is."""
    rec = Recorder()
    with listen_for_server_broadcasts(callback=rec, port=0,
                                      bind="127.0.0.2") as lis:
        with broadcast_server_info("elsewhere", 1, interval=0.2,
                                   discovery_port=lis.port,
                                   bind="127.0.0.1",
                                   target="127.0.0.1") as a1:
            deadline = time.monotonic() + 5.0
            while a1.sent < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert a1.sent >= 3
            with broadcast_server_info("here", 2, interval=0.2,
                                       discovery_port=lis.port,
                                       bind="127.0.0.1",
                                       target="127.0.0.2"):
                assert rec.wait(lambda i: i["name"] == "here")
            assert [i["name"] for i in rec.infos] == ["here"]
