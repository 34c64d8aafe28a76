"""Helpers shared by the modules of the package (not public)."""

import json

from ._lib import ffi, lib
from .errors import JSONError, WitchError, from_code

EINVAL = lib.witch_err_from_name(b"invalid_argument")
ESTATE = lib.witch_err_from_name(b"invalid_state")
EEXISTS = lib.witch_err_from_name(b"already_exists")
EHANDLER = lib.witch_err_from_name(b"handler_error")

# Compact, strict JSON: NaN and Infinity are not JSON and jansson refuses
# them, so they are refused here with a clear message instead.
_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False,
                            separators=(",", ":"))


def dumps(value, what):
    """value as UTF-8 JSON text; JSONError naming what when it cannot be."""
    try:
        return _encoder.encode(value).encode("utf-8")
    except (TypeError, ValueError, UnicodeError, RecursionError) as e:
        raise JSONError("%s is not JSON-serialisable: %s" % (what, e)) \
            from e


def loads(cdata, length):
    """Python value of JSON text held in C memory."""
    return json.loads(ffi.unpack(cdata, length))


def cstr(value, what):
    """bytes for a C string argument (None stays NULL)."""
    if value is None:
        return ffi.NULL
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise TypeError("%s must be a string, not %s"
                        % (what, type(value).__name__))
    return value.encode("utf-8")


def ms(seconds, what):
    """Whole milliseconds of a duration in seconds (>= 0)."""
    if seconds is None:
        return None
    value = float(seconds)
    if value < 0 or value != value:
        raise ValueError("%s must be >= 0 seconds, not %r" % (what, seconds))
    return int(round(value * 1000))


def setopt(fn, cfg, what, shown, *args):
    """Call a libwitch setter with args; ValueError showing shown on
    WITCH_EINVAL."""
    rc = fn(cfg, *args)
    if rc == EINVAL:
        raise ValueError("invalid %s: %r" % (what, shown))
    if rc < 0:
        raise from_code(rc, "%s: %s" % (what, ffi.string(
            lib.witch_strerror(rc)).decode()))


def string_array(names, what):
    """(keepalive, char *[] cdata, count) for a list of strings."""
    if isinstance(names, (str, bytes)):
        raise TypeError("%s must be a list of strings" % what)
    keep = [ffi.new("char[]", cstr(n, what)) for n in names]
    return keep, ffi.new("const char *[]", keep), len(keep)


def state_error(message):
    """A WitchError for an operation not valid in this state."""
    return WitchError(message, code=ESTATE)
