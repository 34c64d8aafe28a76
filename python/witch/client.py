"""witch.Client: libwitch's client, with the original module's surface.

Synchronous calls (send_and_receive, call) wait for the client's I/O
thread (or, with io_thread=False, drive the client on the calling thread)
with the GIL released; several Python threads may call at once on one
Client.  Asynchronous calls (call_async,
send_and_receive_async) are awaitables for asyncio: libwitch's I/O thread
(started on the first one) completes them and hands the result to the
event loop with call_soon_threadsafe.
"""

import asyncio
import logging
import threading

from ._lib import ffi, lib, track, untrack
from . import _util
from .errors import ConnectionError, ProtocolError, from_code, from_error

__all__ = ["Client"]

log = logging.getLogger("witch.client")

_STATES = ("disconnected", "connecting", "connected", "reconnecting",
           "closed")
_NO_DATA = object()
_FOREVER_MS = 86400000
_EINVALID_REQUEST = lib.witch_err_from_name(b"invalid_request")


class _Table(dict):
    """Asynchronous calls in flight by id(_Pending), and the thread that
    completes them."""

    io_ident = None


class _Pending:
    """One asynchronous call in flight; what the C userdata points to."""

    __slots__ = ("fut", "loop", "table", "handle", "__weakref__")

    def __init__(self, fut, loop, table):
        self.fut = fut
        self.loop = loop
        self.table = table
        self.handle = None


def _resolve(fut, result, exc):
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


@ffi.def_extern()
def wpy_reply_py(ud, status, text, length, err):
    """Completion of an asynchronous call (libwitch's I/O thread)."""
    p = ffi.from_handle(ud)
    p.table.io_ident = threading.get_ident()
    p.table.pop(id(p), None)
    result = exc = None
    if status == 0:
        try:
            result = _util.loads(text, length) if text != ffi.NULL else None
        except ValueError as e:
            exc = from_code(lib.witch_err_from_name(b"parse_error"), str(e))
    else:
        exc = from_error(status, err)
    try:
        p.loop.call_soon_threadsafe(_resolve, p.fut, result, exc)
    except RuntimeError:
        pass    # the event loop is closed: nobody waits any more


class _Events:
    """What the event callback's userdata points to (not the Client, so
    that the C side never holds it)."""

    __slots__ = ("callback", "errors")

    def __init__(self, callback):
        self.callback = callback
        self.errors = 0


@ffi.def_extern()
def wpy_event_py(ud, event, text, length):
    """A server event (the client's driving thread)."""
    ev = ffi.from_handle(ud)
    name = ffi.string(event).decode("utf-8", "replace")
    try:
        data = _util.loads(text, length) if text != ffi.NULL else None
        ev.callback(name, data)
    except BaseException:  # noqa: BLE001 - the client keeps going
        ev.errors += 1
        log.error("event callback raised on %r", name, exc_info=True)


def _check_message(message):
    """(endpoint, data) of a {"endpoint": ..., "data": ...} message."""
    if not isinstance(message, dict):
        raise ProtocolError("message must be a dict like {\"endpoint\": "
                            "name, \"data\": value}, not %s"
                            % type(message).__name__,
                            code=_EINVALID_REQUEST)
    if "endpoint" not in message:
        raise ProtocolError("message has no \"endpoint\" (expected "
                            "{\"endpoint\": name, \"data\": value})",
                            code=_EINVALID_REQUEST)
    return message["endpoint"], message.get("data", _NO_DATA)


class Client:
    """A connection to one witch server.

    Client(host="127.0.0.1", port=8888, timeout=5.0, auto_reconnect=True,
    max_reconnect_attempts=3, reconnect_delay=1.0, **options)

    timeout (seconds) bounds the connection and each request;
    reconnect_delay is the least wait between reconnection attempts (they
    back off, with jitter, up to reconnect_delay_max), and after
    max_reconnect_attempts failed ones (0: never give up) the client is
    closed.  Other options: unix_path, name, protocols,
    expected_source_hash, reconnect_delay_max (seconds), io_thread,
    on_event.

    on_event(name, data) is called for every event frame the server
    sends ("closing" when it stops, "monitor" lines...), on the thread
    that drives the client (the I/O thread with io_thread); it must not
    make synchronous calls on this client (WitchError: it would wait for
    itself).  A callback that raises is logged (logger "witch.client")
    and counted in event_errors.

    With io_thread (the default), connect() starts libwitch's I/O thread
    for this client: it notices a server closing or going away while the
    program is idle, reconnects in the background and keeps status
    current; synchronous calls wait for it.  io_thread=False drives the
    client only from calls (lower latency for one caller; the link is
    then served only while a call runs, and the first asynchronous call
    starts the thread anyway).
    """

    def __init__(self, host="127.0.0.1", port=8888, timeout=5.0,
                 auto_reconnect=True, max_reconnect_attempts=3,
                 reconnect_delay=1.0, *, unix_path=None, name=None,
                 protocols=None, expected_source_hash=None,
                 reconnect_delay_max=None, io_thread=True, on_event=None):
        self._c = ffi.NULL
        self._pending = _Table()
        if on_event is not None and not callable(on_event):
            raise TypeError("on_event must be callable")
        self._events = _Events(on_event) if on_event is not None else None
        self._events_ud = (ffi.new_handle(self._events)
                           if self._events is not None else None)
        self._thread = False
        self.io_thread = bool(io_thread)
        # Calls in progress on self._c: close() waits for them to return
        # before freeing it (libwitch's free must not race other calls).
        self._users = 0
        self._idle = threading.Condition(threading.Lock())
        self.last_error = None
        self.host = host
        self.port = port
        self.timeout = timeout
        tmo = _FOREVER_MS if timeout is None else max(
            1, _util.ms(timeout, "timeout"))
        cfgp = ffi.new("witch_client_config_t **")
        rc = lib.witch_client_config_new(cfgp)
        if rc < 0:
            raise from_code(rc)
        cfg = cfgp[0]
        try:
            s = _util.setopt
            s(lib.witch_client_config_set_host, cfg, "host", host,
              _util.cstr(host, "host"))
            s(lib.witch_client_config_set_port, cfg, "port", port, port)
            if unix_path is not None:
                s(lib.witch_client_config_set_unix_path, cfg, "unix_path",
                  unix_path, _util.cstr(unix_path, "unix_path"))
            s(lib.witch_client_config_set_connect_timeout, cfg, "timeout",
              timeout, tmo)
            s(lib.witch_client_config_set_request_timeout, cfg, "timeout",
              timeout, tmo)
            s(lib.witch_client_config_set_auto_reconnect, cfg,
              "auto_reconnect", auto_reconnect, bool(auto_reconnect))
            s(lib.witch_client_config_set_max_reconnect_attempts, cfg,
              "max_reconnect_attempts", max_reconnect_attempts,
              max_reconnect_attempts)
            s(lib.witch_client_config_set_reconnect_delay, cfg,
              "reconnect_delay", reconnect_delay,
              max(1, _util.ms(reconnect_delay, "reconnect_delay")))
            if reconnect_delay_max is not None:
                s(lib.witch_client_config_set_reconnect_delay_max, cfg,
                  "reconnect_delay_max", reconnect_delay_max,
                  _util.ms(reconnect_delay_max, "reconnect_delay_max"))
            if name is not None:
                s(lib.witch_client_config_set_name, cfg, "name", name,
                  _util.cstr(name, "name"))
            if protocols is not None:
                keep, arr, n = _util.string_array(protocols, "protocols")
                s(lib.witch_client_config_set_protocols, cfg, "protocols",
                  protocols, arr, n)
            if expected_source_hash is not None:
                s(lib.witch_client_config_set_expected_source_hash, cfg,
                  "expected_source_hash", expected_source_hash,
                  _util.cstr(expected_source_hash, "expected_source_hash"))
            if self._events_ud is not None:
                s(lib.wpy_client_config_set_event_callback, cfg, "on_event",
                  on_event, self._events_ud)
            cp = ffi.new("witch_client_t **")
            rc = lib.witch_client_new(cp, cfg)
            if rc < 0:
                raise from_code(rc)
            self._c = cp[0]
        finally:
            lib.witch_client_config_free(cfg)
        track(self)

    # ---- connection --------------------------------------------------

    def connect(self):
        """Connect and complete the handshake, waiting up to timeout.
        Returns True, or False with the reason in last_error (an
        exception object)."""
        c = self._enter()
        try:
            if self.io_thread:
                self._start_thread(c)
            err = ffi.new("witch_error_t *")
            rc = lib.witch_client_connect(c, err)
        finally:
            self._leave()
        if rc < 0:
            self.last_error = from_error(rc, err)
            return False
        self.last_error = None
        return True

    def disconnect(self):
        """Close the link for good (no reconnection); calls in flight fail
        with ConnectionError.  connect() may be called again."""
        try:
            c = self._enter()
        except ConnectionError:
            return
        try:
            lib.witch_client_disconnect(c)
        finally:
            self._leave()

    def _enter(self):
        """Pin self._c for one C call; ConnectionError once closed."""
        with self._idle:
            if self._c == ffi.NULL:
                raise ConnectionError("client closed")
            self._users += 1
            return self._c

    def _leave(self):
        with self._idle:
            self._users -= 1
            if self._users == 0:
                self._idle.notify_all()

    def close(self):
        """Disconnect and free the client (stops its I/O thread).  Calls
        in progress on other threads fail with ConnectionError first."""
        with self._idle:
            c, self._c = self._c, ffi.NULL
            if c == ffi.NULL:
                return
            busy = self._users > 0
        untrack(self)
        if busy:
            lib.witch_client_disconnect(c)    # fails the calls in flight
            with self._idle:
                self._idle.wait_for(lambda: self._users == 0)
        if threading.get_ident() == self._pending.io_ident:
            # On the client's own I/O thread (a garbage collection during
            # a completion): free it from another thread instead.
            threading.Thread(target=lib.witch_client_free, args=(c,),
                             daemon=True).start()
        else:
            lib.witch_client_free(c)

    def __enter__(self):
        if not self.connect():
            raise self.last_error
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    @property
    def status(self):
        """"disconnected", "connecting", "connected", "reconnecting" or
        "closed" (given up, or disconnected)."""
        try:
            c = self._enter()
        except ConnectionError:
            return "closed"
        try:
            return _STATES[lib.witch_client_state(c)]
        finally:
            self._leave()

    @property
    def connected(self):
        """True while requests can flow."""
        return self.status == "connected"

    # ---- requests ----------------------------------------------------

    def _args(self, endpoint, data, timeout):
        if not isinstance(endpoint, str) or not endpoint:
            raise ProtocolError("endpoint must be a non-empty string, not "
                                "%r" % (endpoint,), code=_EINVALID_REQUEST)
        text = ffi.NULL if data is _NO_DATA else _util.dumps(
            data, "request data")
        tmo = 0 if timeout is None else max(1, _util.ms(timeout, "timeout"))
        return endpoint.encode(), text, 0 if text is ffi.NULL else len(
            text), tmo

    def call(self, endpoint, data=_NO_DATA, timeout=None):
        """Call endpoint with data (any JSON-serialisable value) and return
        its result.  Raises ConnectionError, TimeoutError, ProtocolError
        (unknown endpoint...), HandlerError, JSONError..."""
        ep, text, n, tmo = self._args(endpoint, data, timeout)
        out = ffi.new("char **")
        outlen = ffi.new("size_t *")
        err = ffi.new("witch_error_t *")
        c = self._enter()
        try:
            rc = lib.wpy_client_call(c, ep, text, n, tmo, out, outlen, err)
        finally:
            self._leave()
        if rc < 0:
            raise from_error(rc, err)
        try:
            return _util.loads(out[0], outlen[0])
        finally:
            lib.free(out[0])

    def send_and_receive(self, message, timeout=None):
        """Send {"endpoint": name, "data": value} and return the result."""
        endpoint, data = _check_message(message)
        return self.call(endpoint, data, timeout)

    def _start_thread(self, c):
        if not self._thread:
            rc = lib.witch_client_start_thread(c)
            if rc < 0:
                raise from_code(rc)
            self._thread = True

    async def call_async(self, endpoint, data=_NO_DATA, timeout=None):
        """Awaitable call(): completed by libwitch's I/O thread.
        Cancelling the awaiting task cancels the request."""
        ep, text, n, tmo = self._args(endpoint, data, timeout)
        loop = asyncio.get_running_loop()
        p = _Pending(loop.create_future(), loop, self._pending)
        p.handle = ffi.new_handle(p)
        idp = ffi.new("uint64_t *")
        c = self._enter()
        try:
            self._start_thread(c)
            self._pending[id(p)] = p
            rc = lib.wpy_client_call_async(c, ep, text, n, tmo, p.handle,
                                           idp)
        finally:
            self._leave()
        if rc < 0:
            self._pending.pop(id(p), None)
            raise from_code(rc)
        try:
            return await p.fut
        except asyncio.CancelledError:
            self._cancel(idp[0])
            raise

    def _cancel(self, req_id):
        """Cancel a request in flight (nothing once closed)."""
        try:
            c = self._enter()
        except ConnectionError:
            return
        try:
            lib.witch_client_cancel(c, req_id)
        finally:
            self._leave()

    async def send_and_receive_async(self, message, timeout=None):
        """Awaitable send_and_receive()."""
        endpoint, data = _check_message(message)
        return await self.call_async(endpoint, data, timeout)

    @property
    def event_errors(self):
        """Exceptions raised by the on_event callback so far."""
        return self._events.errors if self._events is not None else 0

    @property
    def pending(self):
        """Asynchronous calls in flight."""
        return len(self._pending)
