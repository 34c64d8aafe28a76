"""The compiled cffi module, and the objects to stop at interpreter exit."""

import atexit
import threading
import weakref

from ._witch_cffi import ffi, lib  # noqa: F401  (re-exported)

# Servers, clients, announcers and listeners that have library threads.
# They are stopped before the interpreter finalises, so that no libwitch
# thread calls into a dying interpreter.
_live = weakref.WeakSet()
_live_lock = threading.Lock()


def track(obj):
    """Remember obj (with a close() method) for the exit hook."""
    with _live_lock:
        _live.add(obj)


def untrack(obj):
    with _live_lock:
        _live.discard(obj)


@atexit.register
def _close_all():
    from .server import _running
    with _live_lock:
        objs = list(_live)
    objs.extend(list(_running))
    for obj in objs:
        try:
            obj.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
