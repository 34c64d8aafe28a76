"""witch.Server: a libwitch server whose endpoints are Python callables.

Threads.  libwitch reads, frames and parses requests on its reactor thread
and runs handlers on its worker threads.  A Python handler runs on such a
worker: the request's data is turned into JSON text there without the GIL,
the GIL is taken only for json.loads, the handler and json.dumps, and the
reply text is parsed back without it.  See doc/threading.md.

Lifetime.  A started server is kept alive by this module until stop() (as
a started threading.Thread is kept alive by threading): dropping the last
reference to it neither stops it nor frees anything under its threads.
Unless created with daemon=True it also keeps the interpreter from exiting
(like a non-daemon thread), so a script that ends with server.start()
serves until the server is stopped.  At interpreter exit every server
still running is stopped before the interpreter finalises.
"""

import json
import logging
import threading
import warnings

from ._lib import ffi, lib
from . import _util
from .errors import (BuiltinEndpointWarning, JSONError, PeerError,
                     WitchError, from_code, from_error)

__all__ = ["Server", "ServerPeer"]

log = logging.getLogger("witch.server")

# Started servers, kept alive until stopped (see "Lifetime" above).
_running = set()
_running_lock = threading.Lock()

# The _Dispatch whose handler this thread is running (stop() uses it).
_tls = threading.local()


class _Dispatch:
    """What libwitch's userdata points to: the handlers by name and the
    peer callbacks.  Kept apart from the Server so that the C side never
    holds the Server."""

    def __init__(self):
        self.handlers = {}
        self.peer_message = None
        self.peer_status = None


@ffi.def_extern()
def wpy_handler_py(ud, call):
    """Run one Python handler (worker thread, GIL held here only)."""
    name = "?"
    try:
        disp = ffi.from_handle(ud)
        name = ffi.string(call.endpoint).decode()
        handler = disp.handlers[name]
        data = _util.loads(call.data, call.data_len)
        _tls.dispatch = disp
        try:
            result = handler(data, call.client_id)
        finally:
            _tls.dispatch = None
    except WitchError as e:
        lib.wpy_set_error(call, e.code, str(e).encode("utf-8", "replace"))
        return
    except BaseException as e:  # noqa: BLE001 - becomes handler_error
        log.error("handler of %r raised", name, exc_info=True)
        msg = "%s: %s" % (type(e).__name__, e)
        lib.wpy_set_error(call, _util.EHANDLER,
                          msg.encode("utf-8", "replace"))
        return
    try:
        text = _util.dumps(result, "value returned by the handler of %r"
                           % name)
    except WitchError as e:
        lib.wpy_set_error(call, _util.EHANDLER,
                          str(e).encode("utf-8", "replace"))
        return
    lib.wpy_set_reply(call, text, len(text))


@ffi.def_extern()
def wpy_peer_message_py(ud, from_id, from_name, text, length):
    """A message from a peer (the server's peer thread, GIL held here
    only): handler(message, from_id, from_name).  An exception is logged
    and dropped; the next message is delivered as usual."""
    try:
        disp = ffi.from_handle(ud)
        handler = disp.peer_message
        if handler is None:
            return
        message = _util.loads(text, length)
        _tls.dispatch = disp
        try:
            handler(message, ffi.string(from_id).decode(),
                    ffi.string(from_name).decode("utf-8", "replace"))
        finally:
            _tls.dispatch = None
    except BaseException:  # noqa: BLE001 - never into the peer thread
        log.error("peer message handler raised", exc_info=True)


@ffi.def_extern()
def wpy_peer_status_py(ud, text):
    """A peer changed status or dropped messages (the peer thread):
    callback(peer, old_status).  An exception is logged and dropped."""
    try:
        disp = ffi.from_handle(ud)
        callback = disp.peer_status
        if callback is None:
            return
        event = _util.loads(text, len(ffi.string(text)))
        _tls.dispatch = disp
        try:
            callback(event["peer"], event["old"])
        finally:
            _tls.dispatch = None
    except BaseException:  # noqa: BLE001 - never into the peer thread
        log.error("peer status callback raised", exc_info=True)


@ffi.def_extern()
def wpy_log_py(level, msg, ud):
    """libwitch's log lines into the logging module (any libwitch thread)."""
    pylevel = {3: logging.ERROR, 4: logging.WARNING, 5: logging.INFO,
               6: logging.INFO}.get(level, logging.DEBUG)
    logging.getLogger("witch.lib").log(pylevel, "%s",
                                       ffi.string(msg).decode("utf-8",
                                                              "replace"))


class Server:
    """A witch server.

    Server(port=8888, server_name=None, max_clients=None,
    enable_discovery=False, protocols=None, enable_peer=False,
    project_id=None, **options)

    The first seven are the original module's options; None keeps
    libwitch's default (name "witch", 10000 clients, protocols ["v1"]).
    Other options, as keywords: bind ("127.0.0.1"), workers (0: CPUs - 1),
    queue_depth, max_frame, idle_timeout, handshake_timeout,
    drain_timeout (seconds), output_limits ((soft, hard) bytes),
    inline_builtins, source_hash, listen_tcp, unix_path, unix_mode,
    discovery_port, discovery_interval (seconds), advertise,
    discovery_target, log (libwitch's log into logging "witch.lib"),
    daemon (do not keep the interpreter alive while running).
    With enable_peer=True: peer_seeds (["HOST:PORT", ...]),
    peer_heartbeat (seconds), peer_thresholds ((suspect, dead) silent
    intervals), peer_queue (messages waiting per peer),
    peer_message_handler (handler(message, from_id, from_name)) and
    peer_status_callback (callback(peer, old_status)); see ServerPeer.
    """

    def __init__(self, port=8888, server_name=None, max_clients=None,
                 enable_discovery=False, protocols=None, enable_peer=False,
                 project_id=None, *, bind=None, workers=None,
                 queue_depth=None, max_frame=None, idle_timeout=None,
                 handshake_timeout=None, drain_timeout=None,
                 output_limits=None, inline_builtins=None, source_hash=None,
                 listen_tcp=None, unix_path=None, unix_mode=0o660,
                 discovery_port=None, discovery_interval=None,
                 advertise=None, discovery_target=None, log=False,
                 daemon=False, peer_seeds=None, peer_heartbeat=None,
                 peer_thresholds=None, peer_queue=None,
                 peer_message_handler=None, peer_status_callback=None):
        self._srv = ffi.NULL
        self._cfg = ffi.NULL
        self._lock = threading.RLock()          # self._srv and state
        self._stop_lock = threading.Lock()      # one stop() at a time
        self._stopped = None
        self._disp = _Dispatch()
        self._ud = ffi.new_handle(self._disp)
        self.enable_peer = bool(enable_peer)
        self.daemon = bool(daemon)
        cfgp = ffi.new("witch_server_config_t **")
        _util.setopt(lambda c, p: lib.witch_server_config_new(p), None,
                     "configuration", None, cfgp)
        self._cfg = cfgp[0]
        self._configure(port=port, server_name=server_name,
                        max_clients=max_clients,
                        enable_discovery=enable_discovery,
                        protocols=protocols, project_id=project_id,
                        bind=bind, workers=workers, queue_depth=queue_depth,
                        max_frame=max_frame, idle_timeout=idle_timeout,
                        handshake_timeout=handshake_timeout,
                        drain_timeout=drain_timeout,
                        output_limits=output_limits,
                        inline_builtins=inline_builtins,
                        source_hash=source_hash, listen_tcp=listen_tcp,
                        unix_path=unix_path, unix_mode=unix_mode,
                        discovery_port=discovery_port,
                        discovery_interval=discovery_interval,
                        advertise=advertise,
                        discovery_target=discovery_target, log=log)
        self._configure_peer(peer_seeds=peer_seeds,
                             peer_heartbeat=peer_heartbeat,
                             peer_thresholds=peer_thresholds,
                             peer_queue=peer_queue,
                             peer_message_handler=peer_message_handler,
                             peer_status_callback=peer_status_callback)
        self._new_server()

    def _configure(self, port, server_name, max_clients, enable_discovery,
                   protocols, project_id, bind, workers, queue_depth,
                   max_frame, idle_timeout, handshake_timeout,
                   drain_timeout, output_limits, inline_builtins,
                   source_hash, listen_tcp, unix_path, unix_mode,
                   discovery_port, discovery_interval, advertise,
                   discovery_target, log):
        cfg = self._cfg
        s = _util.setopt
        s(lib.witch_server_config_set_port, cfg, "port", port, port)
        if server_name is not None:
            s(lib.witch_server_config_set_name, cfg, "server_name",
              server_name, _util.cstr(server_name, "server_name"))
        if max_clients is not None:
            s(lib.witch_server_config_set_max_clients, cfg, "max_clients",
              max_clients, max_clients)
        if protocols is not None:
            keep, arr, n = _util.string_array(protocols, "protocols")
            s(lib.witch_server_config_set_protocols, cfg, "protocols",
              protocols, arr, n)
        if project_id is not None:
            s(lib.witch_server_config_set_project_id, cfg, "project_id",
              project_id, _util.cstr(project_id, "project_id"))
        if bind is not None:
            s(lib.witch_server_config_set_bind, cfg, "bind", bind,
              _util.cstr(bind, "bind"))
        for what, fn, value in (
                ("workers", lib.witch_server_config_set_workers, workers),
                ("queue_depth", lib.witch_server_config_set_queue_depth,
                 queue_depth),
                ("max_frame", lib.witch_server_config_set_max_frame,
                 max_frame),
                ("discovery_port",
                 lib.witch_server_config_set_discovery_port,
                 discovery_port)):
            if value is not None:
                s(fn, cfg, what, value, value)
        for what, fn, value in (
                ("idle_timeout", lib.witch_server_config_set_idle_timeout,
                 idle_timeout),
                ("handshake_timeout",
                 lib.witch_server_config_set_handshake_timeout,
                 handshake_timeout),
                ("drain_timeout", lib.witch_server_config_set_drain_timeout,
                 drain_timeout),
                ("discovery_interval",
                 lib.witch_server_config_set_discovery_interval,
                 discovery_interval)):
            if value is not None:
                s(fn, cfg, what, value, _util.ms(value, what))
        if output_limits is not None:
            soft, hard = output_limits
            s(lib.witch_server_config_set_output_limits, cfg,
              "output_limits", output_limits, soft, hard)
        for what, fn, value in (
                ("inline_builtins",
                 lib.witch_server_config_set_inline_builtins,
                 inline_builtins),
                ("listen_tcp", lib.witch_server_config_set_listen_tcp,
                 listen_tcp),
                ("enable_discovery", lib.witch_server_config_set_discovery,
                 enable_discovery)):
            if value is not None:
                s(fn, cfg, what, value, bool(value))
        if source_hash is not None:
            s(lib.witch_server_config_set_source_hash, cfg, "source_hash",
              source_hash, _util.cstr(source_hash, "source_hash"))
        if unix_path is not None:
            s(lib.witch_server_config_set_unix_path, cfg, "unix_path",
              unix_path, _util.cstr(unix_path, "unix_path"), unix_mode)
        for what, fn, value in (
                ("advertise", lib.witch_server_config_set_advertise,
                 advertise),
                ("discovery_target",
                 lib.witch_server_config_set_discovery_target,
                 discovery_target)):
            if value is not None:
                s(fn, cfg, what, value, _util.cstr(value, what))
        if log:
            s(lib.wpy_server_config_set_logger, cfg, "log", log, ffi.NULL)

    def _configure_peer(self, **opts):
        """The peer options; any of them without enable_peer: ValueError."""
        given = sorted(k for k, v in opts.items() if v is not None)
        if not self.enable_peer:
            if given:
                raise ValueError("%s: only with enable_peer=True"
                                 % ", ".join(given))
            return
        cfg = self._cfg
        s = _util.setopt
        s(lib.witch_server_config_set_peering, cfg, "enable_peer", True,
          True)
        for fn, what in ((opts["peer_message_handler"],
                          "peer_message_handler"),
                         (opts["peer_status_callback"],
                          "peer_status_callback")):
            if fn is not None and not callable(fn):
                raise TypeError("%s must be callable" % what)
        self._disp.peer_message = opts["peer_message_handler"]
        self._disp.peer_status = opts["peer_status_callback"]
        s(lib.wpy_server_config_set_peer_callbacks, cfg, "peer callbacks",
          None, self._ud)
        seeds = opts["peer_seeds"]
        if seeds is not None:
            if isinstance(seeds, (str, bytes)):
                raise TypeError("peer_seeds must be a list of "
                                "\"HOST:PORT\" strings")
            for seed in seeds:
                s(lib.witch_server_config_add_peer_seed, cfg, "peer seed",
                  seed, _util.cstr(seed, "peer seed"))
        if opts["peer_heartbeat"] is not None:
            s(lib.witch_server_config_set_peer_heartbeat, cfg,
              "peer_heartbeat", opts["peer_heartbeat"],
              _util.ms(opts["peer_heartbeat"], "peer_heartbeat"))
        if opts["peer_thresholds"] is not None:
            suspect, dead = opts["peer_thresholds"]
            s(lib.witch_server_config_set_peer_thresholds, cfg,
              "peer_thresholds", opts["peer_thresholds"], suspect, dead)
        if opts["peer_queue"] is not None:
            s(lib.witch_server_config_set_peer_queue, cfg, "peer_queue",
              opts["peer_queue"], opts["peer_queue"])

    def _new_server(self):
        """Create the C server from the configuration and register the
        endpoints known so far."""
        srvp = ffi.new("witch_server_t **")
        _util.setopt(lambda c, p: lib.witch_server_new(p, c), self._cfg,
                     "server", None, srvp)
        self._srv = srvp[0]
        for name in self._disp.handlers:
            rc = lib.wpy_server_register(self._srv, name.encode(), self._ud)
            if rc < 0:
                raise WitchError("cannot register %r again" % name, code=rc)

    def register_endpoint(self, name, handler):
        """Serve endpoint name with handler(data, client_id), which returns
        a JSON-serialisable value (the result) or raises (the client gets
        a handler_error with the exception's message; a WitchError raised
        gives its own code).  New names only before start(); registering a
        name again replaces its handler, at any time.  Names libwitch
        answers itself (ping, echo, info, status, ...) keep their built-in
        handler: a BuiltinEndpointWarning says so."""
        if not callable(handler):
            raise TypeError("handler must be callable")
        if not isinstance(name, str):
            raise TypeError("endpoint name must be a string")
        with self._lock:
            if name in self._disp.handlers:
                self._disp.handlers[name] = handler
                return
            if self._srv == ffi.NULL or self.running:
                raise _util.state_error(
                    "register_endpoint(%r): new endpoints only before "
                    "start()" % name)
            rc = lib.wpy_server_register(self._srv, name.encode(), self._ud)
            if rc == _util.EEXISTS:
                warnings.warn(
                    "%r is a built-in endpoint of libwitch: the built-in "
                    "answers it and this handler is not called" % name,
                    BuiltinEndpointWarning, stacklevel=2)
                return
            if rc == _util.EINVAL:
                raise ValueError(
                    "invalid endpoint name %r (1..63 letters, digits and "
                    "'_.-:/')" % name)
            if rc < 0:
                raise WitchError("register_endpoint(%r) failed" % name,
                                 code=rc)
            self._disp.handlers[name] = handler

    @property
    def running(self):
        """True between start() and stop()."""
        return self._stopped is not None

    def start(self):
        """Bind, listen and start serving (returns at once).  Raises
        ConnectionError (address_in_use) or WitchError."""
        with self._lock:
            if self.running:
                raise _util.state_error("server already started")
            if self._srv == ffi.NULL:
                self._new_server()
            err = ffi.new("witch_error_t *")
            rc = lib.witch_server_start(self._srv, err)
            if rc < 0:
                lib.witch_server_free(self._srv)
                self._srv = ffi.NULL
                raise from_error(rc, err)
            self._stopped = threading.Event()
            with _running_lock:
                _running.add(self)
            if not self.daemon:
                threading.Thread(target=self._stopped.wait,
                                 name="witch-server-%d" % self.port,
                                 daemon=False).start()
        return self

    def stop(self, drain=None):
        """Stop serving: let running requests finish for up to drain
        seconds (None: the drain_timeout option), close every connection
        and join libwitch's threads.  Idempotent.  Not from a handler of
        this server (WitchError: it would wait for itself)."""
        if getattr(_tls, "dispatch", None) is self._disp:
            raise WitchError("stop() cannot be called from a handler of "
                             "this server", code=_util.ESTATE)
        drain_ms = -1 if drain is None else _util.ms(drain, "drain")
        with self._stop_lock:
            with self._lock:
                srv = self._srv
            if srv == ffi.NULL:
                return
            # Without self._lock: handlers may read the properties while
            # libwitch waits for them.
            rc = lib.witch_server_stop(srv, drain_ms)
            if rc < 0:
                raise WitchError("stop() failed", code=rc)
            with self._lock:
                lib.witch_server_free(srv)
                self._srv = ffi.NULL
                stopped, self._stopped = self._stopped, None
            with _running_lock:
                _running.discard(self)
        if stopped is not None:
            stopped.set()

    def close(self):
        """stop(), then free the configuration; the object is done."""
        self.stop()
        if self._cfg != ffi.NULL:
            lib.witch_server_config_free(self._cfg)
            self._cfg = ffi.NULL

    def __enter__(self):
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def __del__(self):
        # Only a stopped (or never started) server can get here.
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    def _need_running(self):
        if not self.running:
            raise _util.state_error("server not running")

    @property
    def port(self):
        """The bound TCP port (useful with port=0); 0 when not running."""
        with self._lock:
            if not self.running:
                return 0
            return lib.witch_server_port(self._srv)

    @property
    def server_id(self):
        """This server's id (32 hex digits; new after each restart)."""
        with self._lock:
            if self._srv == ffi.NULL:
                self._new_server()
            return ffi.string(lib.witch_server_id(self._srv)).decode()

    @property
    def source_hash(self):
        """Source hash in force (32 hex digits); while running."""
        with self._lock:
            self._need_running()
            return ffi.string(lib.witch_server_source_hash(
                self._srv)).decode()

    @property
    def clients(self):
        """Clients connected now (0 when not running)."""
        with self._lock:
            if not self.running:
                return 0
            return lib.witch_server_clients(self._srv)

    @property
    def endpoints(self):
        """Names of the Python endpoints."""
        return sorted(self._disp.handlers)

    @property
    def peer(self):
        """Server-to-server peering: a ServerPeer (broadcast_to_peers,
        send_to_peer, on_message, on_status, peers).  Without
        enable_peer=True it raises PeerError ("peering not enabled")."""
        if not self.enable_peer:
            raise PeerError("peering not enabled: create the Server with "
                            "enable_peer=True (and a project_id) to use "
                            "server.peer")
        return ServerPeer(self)


class ServerPeer:
    """The peering side of a Server (server.peer), after the original
    module's ServerPeer.

    The server links to the servers of its project_id that discovery
    finds (enable_discovery=True) or that peer_seeds name.  Messages are
    JSON values; delivery is per sender in order, at most once, to peers
    alive at the time.  Callbacks run on the server's peer thread, one at
    a time (see threading.md).  Every method may be called from any
    thread, handlers and peer callbacks included.
    """

    def __init__(self, server):
        self._server = server

    def _text(self, message):
        """JSON text of a message: str/bytes are JSON text already."""
        if isinstance(message, str):
            return message.encode("utf-8")
        if isinstance(message, (bytes, bytearray)):
            return bytes(message)
        return _util.dumps(message, "peer message")

    def _call(self, what, fn, *args):
        srv = self._server
        with srv._lock:
            if not srv.running:
                return None
            rc = fn(srv._srv, *args)
        if rc < 0:
            exc = from_code(rc)
            exc.args = ("%s: %s" % (what, exc.args[0]),)
            raise exc
        return rc

    def broadcast_to_peers(self, message):
        """Queue message (a JSON text string, or a JSON-serialisable
        value) for every alive peer; returns how many peers it was queued
        for (0: none alive, or the server is not running).  JSONError for
        text that is not JSON."""
        text = self._text(message)
        rc = self._call("broadcast_to_peers", lib.wpy_peer_broadcast,
                        text, len(text))
        if rc is None:
            _check_json(text)
            return 0
        return rc

    def send_to_peer(self, peer, message):
        """Queue message for one peer, named by server id or name.
        Raises UnknownPeerError (no_peer), PeerDownError (peer_down),
        ProtocolError (incompatible: another source hash), WitchError
        (overloaded: its queue is full; invalid_state: not running),
        JSONError."""
        text = self._text(message)
        rc = self._call("send_to_peer(%r)" % (peer,), lib.wpy_peer_send,
                        _util.cstr(peer, "peer"), text, len(text))
        if rc is None:
            raise _util.state_error("send_to_peer(%r): server not running"
                                    % (peer,))

    def on_message(self, handler):
        """Set the peer-message handler: handler(message, from_id,
        from_name), None removes it.  Replaces peer_message_handler.
        Returns handler (so it can be a decorator)."""
        if handler is not None and not callable(handler):
            raise TypeError("handler must be callable")
        self._server._disp.peer_message = handler
        return handler

    def on_status(self, callback):
        """Set the status callback: callback(peer, old_status), peer a
        dict as in peers; None removes it.  Returns callback."""
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")
        self._server._disp.peer_status = callback
        return callback

    @property
    def peers(self):
        """The peer table now: a list of dicts {name, server_id, address,
        port, status ("connecting", "alive", "suspect", "dead",
        "incompatible"), last_seen (seconds ago, None), rtt_ms (None),
        role, sent, received, dropped}; [] when not running."""
        out = ffi.new("char **")
        try:
            rc = self._call("peers", lib.wpy_peers, out)
            if rc is None:
                return []
            return _util.loads(out[0], len(ffi.string(out[0])))
        finally:
            if out[0] != ffi.NULL:
                lib.free(out[0])


def _check_json(text):
    """JSONError unless text is JSON (for a server not running)."""
    try:
        json.loads(text)
    except ValueError as e:
        raise JSONError("peer message is not JSON: %s" % e) from e
