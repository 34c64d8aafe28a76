"""witch: Python binding of libwitch, the witch-core networking library.

    from witch import Server, Client

    server = Server(port=8888, server_name="MyServer")
    server.register_endpoint("add", lambda data, client_id: sum(data))
    server.start()

    client = Client(host="127.0.0.1", port=8888)
    if client.connect():
        print(client.send_and_receive({"endpoint": "add", "data": [1, 2]}))

The package is a thin layer over the C library (through cffi): framing,
parsing, the reactor, the worker pool, limits, reconnection and discovery
are libwitch's; handlers and callbacks are Python.  See README.md.
"""

from ._lib import ffi as _ffi, lib as _lib
from .errors import (AuthenticationError, BuiltinEndpointWarning,
                     ConnectionError, HandlerError, JSONError, PeerDownError,
                     PeerError, ProtocolError, TimeoutError,
                     UnknownPeerError, WitchError)
from .server import Server, ServerPeer
from .client import Client
from . import discovery

__version__ = "0.1.0"

__all__ = ["Server", "ServerPeer", "Client", "discovery", "WitchError",
           "ConnectionError", "TimeoutError", "ProtocolError", "JSONError",
           "AuthenticationError", "HandlerError", "PeerError",
           "UnknownPeerError", "PeerDownError", "BuiltinEndpointWarning",
           "libwitch_version"]


def libwitch_version():
    """Version of the libwitch loaded at run time, e.g. "0.1.0"."""
    return _ffi.string(_lib.witch_version()).decode()
