"""Exceptions of the witch package.

Every error is a :class:`WitchError` carrying ``code`` (a negative
``WITCH_E*`` value of libwitch, the server's own code when it answered with
an error), ``name`` (its wire slug, e.g. ``"unknown_endpoint"``) and
``remote`` (True when the server sent it).  The subclasses mirror the error
kinds of the original Python module and also derive from the built-in
exception of the same meaning, so ``except TimeoutError`` catches both.
"""

import builtins

from ._lib import ffi, lib

__all__ = ["WitchError", "ConnectionError", "TimeoutError", "ProtocolError",
           "JSONError", "AuthenticationError", "HandlerError", "PeerError",
           "UnknownPeerError", "PeerDownError",
           "error_name", "BuiltinEndpointWarning"]


def error_name(code):
    """Wire slug of a WITCH_E* value ("parse_error"...)."""
    return ffi.string(lib.witch_err_name(code)).decode()


def _code(slug):
    return lib.witch_err_from_name(slug.encode())


class WitchError(Exception):
    """Base of every witch error."""

    def __init__(self, message, code=None, remote=False):
        super().__init__(message)
        if code is None:
            code = getattr(type(self), "default_code", _code("handler_error"))
        self.code = code
        self.name = error_name(code)
        self.remote = remote

    default_code = None


class ConnectionError(WitchError, builtins.ConnectionError):
    """The link failed, was lost, or the server is full or shutting down."""


class TimeoutError(WitchError, builtins.TimeoutError):
    """No reply in time (or the server's deadline passed)."""


class ProtocolError(WitchError):
    """A request or reply broke the protocol (unknown endpoint, no
    "endpoint" key, garbage from the server, incompatible handshake)."""


class JSONError(WitchError, ValueError):
    """Data that is not JSON, or not JSON-serialisable."""


class AuthenticationError(WitchError):
    """The server refused the client (unauthorized)."""


class HandlerError(WitchError):
    """The server's endpoint handler failed (handler_error)."""


class PeerError(WitchError):
    """Server peering is not enabled, or a peer cannot be sent to."""


class UnknownPeerError(PeerError, LookupError):
    """send_to_peer(): no peer has that server id or name (no_peer)."""


class PeerDownError(PeerError):
    """send_to_peer(): the peer is known but not alive (peer_down)."""


class BuiltinEndpointWarning(UserWarning):
    """register_endpoint() on a name libwitch answers itself."""


for _cls, _slug in ((ConnectionError, "connection_error"),
                    (TimeoutError, "timeout"),
                    (ProtocolError, "protocol_error"),
                    (JSONError, "parse_error"),
                    (AuthenticationError, "unauthorized"),
                    (HandlerError, "handler_error"),
                    (PeerError, "invalid_state"),
                    (UnknownPeerError, "no_peer"),
                    (PeerDownError, "peer_down")):
    _cls.default_code = _code(_slug)
WitchError.default_code = _code("handler_error")

_BY_SLUG = {
    "connection_error": ConnectionError,
    "shutting_down": ConnectionError,
    "server_full": ConnectionError,
    "address_in_use": ConnectionError,
    "timeout": TimeoutError,
    "protocol_error": ProtocolError,
    "invalid_frame": ProtocolError,
    "frame_too_large": ProtocolError,
    "invalid_request": ProtocolError,
    "unknown_endpoint": ProtocolError,
    "incompatible": ProtocolError,
    "unsupported_protocol": ProtocolError,
    "parse_error": JSONError,
    "unauthorized": AuthenticationError,
    "handler_error": HandlerError,
    "no_peer": UnknownPeerError,
    "peer_down": PeerDownError,
}


def from_code(code, text=None, remote=False):
    """The exception for a WITCH_E* value (not raised)."""
    name = error_name(code)
    if not text:
        text = ffi.string(lib.witch_strerror(code)).decode()
    return _BY_SLUG.get(name, WitchError)(text, code=code, remote=remote)


def from_error(rc, err):
    """The exception for a failed call: rc and its witch_error_t."""
    text = ffi.string(err.text).decode("utf-8", "replace") if err else ""
    if err and err.code == _code("remote_error") and err.remote != 0:
        return from_code(err.remote, text, remote=True)
    code = err.code if err and err.code != 0 else rc
    return from_code(code, text)


def check(rc, what):
    """Raise for a negative return value of libwitch, naming what failed."""
    if rc < 0:
        exc = from_code(rc)
        exc.args = ("%s: %s" % (what, exc.args[0]),)
        raise exc
    return rc
