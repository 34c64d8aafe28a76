"""witch.discovery: find witch servers on the local networks (UDP).

broadcast_server_info() starts a libwitch announcer (a thread that sends
one small datagram at once, then every interval) and returns it: stop()
ends it with a "leaving" announcement.  listen_for_server_broadcasts()
starts a libwitch listener and calls callback(server_info) on its thread
for each server found; server_info is a dict with at least name, ip and
port.  A callback that raises is logged (logger "witch.discovery") and
counted in Listener.callback_errors; the listener keeps going.
"""

import json
import logging
import secrets
import threading

from ._lib import ffi, lib, track, untrack
from . import _util
from .errors import from_code, from_error

__all__ = ["broadcast_server_info", "listen_for_server_broadcasts",
           "Announcer", "Listener"]

log = logging.getLogger("witch.discovery")

EVENTS = ("found", "changed", "verified", "lost")


class Announcer:
    """A running announcement; stop() (or the with block) ends it.  It
    runs until then even when no reference to it is kept."""

    def __init__(self, cfg):
        ap = ffi.new("witch_announcer_t **")
        rc = lib.witch_announcer_new(ap, cfg)
        if rc < 0:
            raise from_code(rc, "announcer: %s" % ffi.string(
                lib.witch_strerror(rc)).decode())
        self._a = ap[0]
        rc = lib.witch_announcer_start(self._a)
        if rc < 0:
            lib.witch_announcer_free(self._a)
            self._a = ffi.NULL
            raise from_code(rc)
        # Like a started thread, a started announcer lives until stop().
        track(self)
        _announcing.add(self)

    @property
    def sent(self):
        """Datagrams sent so far."""
        if self._a == ffi.NULL:
            return 0
        return lib.witch_announcer_sent(self._a)

    def stop(self):
        """Announce "leaving" and stop.  Idempotent."""
        a, self._a = self._a, ffi.NULL
        if a != ffi.NULL:
            untrack(self)
            lib.witch_announcer_free(a)
            _announcing.discard(self)

    close = stop

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# Running announcers (see Announcer).
_announcing = set()

def broadcast_server_info(server_name, port, protocols=None, *,
                          project_id=None, server_id=None, source_hash=None,
                          interval=2.0, discovery_port=8889, bind="0.0.0.0",
                          advertise=None, target=None, log=False):
    """Announce a server on the LANs until the returned Announcer is
    stopped: every interval seconds (+-25% jitter) to discovery_port on
    the broadcast address of every IPv4 interface (bind "0.0.0.0") and the
    IPv6 group ff02::114.  server_id defaults to a random one; target
    sends by unicast to that address instead (tests on loopback)."""
    cfgp = ffi.new("witch_announcer_config_t **")
    rc = lib.witch_announcer_config_new(cfgp)
    if rc < 0:
        raise from_code(rc)
    cfg = cfgp[0]
    try:
        s = _util.setopt
        s(lib.witch_announcer_config_set_name, cfg, "server_name",
          server_name, _util.cstr(server_name, "server_name"))
        sid = server_id if server_id is not None else secrets.token_hex(16)
        s(lib.witch_announcer_config_set_server_id, cfg, "server_id", sid,
          _util.cstr(sid, "server_id"))
        s(lib.witch_announcer_config_set_port, cfg, "port", port, port)
        if protocols is not None:
            keep, arr, n = _util.string_array(protocols, "protocols")
            s(lib.witch_announcer_config_set_protocols, cfg, "protocols",
              protocols, arr, n)
        for what, fn, value in (
                ("project_id", lib.witch_announcer_config_set_project_id,
                 project_id),
                ("source_hash", lib.witch_announcer_config_set_source_hash,
                 source_hash),
                ("bind", lib.witch_announcer_config_set_bind, bind),
                ("advertise", lib.witch_announcer_config_set_advertise,
                 advertise),
                ("target", lib.witch_announcer_config_set_target, target)):
            if value is not None:
                s(fn, cfg, what, value, _util.cstr(value, what))
        s(lib.witch_announcer_config_set_discovery_port, cfg,
          "discovery_port", discovery_port, discovery_port)
        s(lib.witch_announcer_config_set_interval, cfg, "interval",
          interval, _util.ms(interval, "interval"))
        if log:
            s(lib.witch_announcer_config_set_logger, cfg, "log", log,
              lib.wpy_log_py, ffi.NULL)
        a = Announcer(cfg)
    finally:
        lib.witch_announcer_config_free(cfg)
    a.server_id = sid
    return a


@ffi.def_extern()
def wpy_discovery_py(ud, ev, text):
    """A discovery event, on the listener's thread (GIL held here)."""
    listener = ffi.from_handle(ud)
    listener._thread_ident = threading.get_ident()
    info = json.loads(ffi.string(text))
    if info["event"] not in listener.events:
        return
    try:
        listener.callback(info)
    except BaseException:  # noqa: BLE001 - the listener keeps going
        listener.callback_errors += 1
        log.error("discovery callback raised on %s", info.get("event"),
                  exc_info=True)


class Listener:
    """A running discovery listener; stop() (or the with block) ends it."""

    def __init__(self, callback, port, expiry, verify, verify_timeout,
                 ipv6, events, log, bind=None):
        if not callable(callback):
            raise TypeError("callback must be callable")
        bad = set(events) - set(EVENTS)
        if bad:
            raise ValueError("unknown events %s (known: %s)"
                             % (sorted(bad), ", ".join(EVENTS)))
        self.callback = callback
        self.events = frozenset(events)
        self.callback_errors = 0
        self._thread_ident = None
        self._l = ffi.NULL
        self._ud = ffi.new_handle(self)
        cfgp = ffi.new("witch_listener_config_t **")
        rc = lib.witch_listener_config_new(cfgp)
        if rc < 0:
            raise from_code(rc)
        cfg = cfgp[0]
        try:
            s = _util.setopt
            s(lib.witch_listener_config_set_port, cfg, "port", port, port)
            if bind is not None:
                s(lib.witch_listener_config_set_bind, cfg, "bind", bind,
                  _util.cstr(bind, "bind"))
            s(lib.witch_listener_config_set_expiry, cfg, "expiry", expiry,
              _util.ms(expiry, "expiry"))
            s(lib.witch_listener_config_set_verify, cfg, "verify", verify,
              bool(verify))
            s(lib.witch_listener_config_set_verify_timeout, cfg,
              "verify_timeout", verify_timeout,
              _util.ms(verify_timeout, "verify_timeout"))
            s(lib.witch_listener_config_set_ipv6, cfg, "ipv6", ipv6,
              bool(ipv6))
            s(lib.wpy_listener_config_set_callback, cfg, "callback",
              callback, self._ud)
            if log:
                s(lib.witch_listener_config_set_logger, cfg, "log", log,
                  lib.wpy_log_py, ffi.NULL)
            lp = ffi.new("witch_listener_t **")
            rc = lib.witch_listener_new(lp, cfg)
            if rc < 0:
                raise from_code(rc)
        finally:
            lib.witch_listener_config_free(cfg)
        err = ffi.new("witch_error_t *")
        rc = lib.witch_listener_start(lp[0], err)
        if rc < 0:
            lib.witch_listener_free(lp[0])
            raise from_error(rc, err)
        self._l = lp[0]
        # The listener's thread holds self._ud: keep self alive meanwhile.
        track(self)
        _listening.add(self)

    @property
    def port(self):
        """The bound UDP port (useful with port=0)."""
        return 0 if self._l == ffi.NULL else lib.witch_listener_port(self._l)

    @property
    def servers(self):
        """The registry now: a list of dicts (name, addr, port, ...)."""
        if self._l == ffi.NULL:
            return []
        out = ffi.new("char **")
        rc = lib.wpy_snapshot(self._l, out)
        if rc < 0:
            raise from_code(rc)
        try:
            return json.loads(ffi.string(out[0]))
        finally:
            lib.free(out[0])

    def stop(self):
        """Stop listening (waits for the thread).  Idempotent; not from
        the callback (WitchError)."""
        if self._l == ffi.NULL:
            return
        if threading.get_ident() == self._thread_ident:
            raise _util.state_error("Listener.stop() from its own callback "
                                    "would wait for itself")
        l, self._l = self._l, ffi.NULL
        untrack(self)
        lib.witch_listener_free(l)
        _listening.discard(self)

    close = stop

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# Running listeners: their thread calls back into them (see Listener).
_listening = set()


def listen_for_server_broadcasts(callback, *, port=8889, expiry=6.0,
                                 verify=False, verify_timeout=2.0,
                                 ipv6=True, events=("found",), log=False,
                                 bind=None):
    """Listen for announcements on UDP port (0: a free one) and call
    callback(server_info) on the listener's thread for each event in
    events ("found" by default; also "changed", "verified", "lost").
    server_info: name, ip, port, server_id, protocols, project_id,
    source_hash, verified, leaving, event, seq, age_ms.  bind, a numeric
    IPv4 or IPv6 address, listens on that address only, with one socket
    of its family (ipv6 then does not apply); a listener bound to a
    unicast address gets no broadcasts, so this is for one interface's
    address, or loopback in tests (announcers with target=that address).
    None, the default, listens on every address.  Returns the running
    Listener."""
    return Listener(callback, port, expiry, verify, verify_timeout, ipv6,
                    events, log, bind)
