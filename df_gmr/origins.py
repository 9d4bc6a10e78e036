"""Where each native thread was started, and what it runs.

A wrapper of ``threading.Thread.start`` stores, on the thread object, the
code positions of its callers (as the spawn hook does for greenthreads:
code objects and instruction offsets, no frame kept): the application's
frame and its caller, or, for a thread a library starts, the library's
frames out to those two; and the ident and name of the thread that
called ``start()``, as they were then (an executor's workers name the
thread that started them even when no application frame does).  The
usual start is a few attribute reads (see ``benchmarks``, native hooks
at rest).
The Threads section names the first caller outside the wrapper
libraries (threading, concurrent.futures, futurist, oslo.service,
oslo.messaging, cotyledon) and the thread's target, by qualified name.

Threads started before set-up, with ``_thread.start_new_thread`` or by C
code have no recorded origin: the report says "unknown" for them, never
a guess.  Under eventlet, the unpatched copy of ``threading`` (whose
threads are the real ones) is wrapped too.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from df_gmr import callers
from df_gmr import naming
from df_gmr import stacks

#: On a started Thread: ``(caller positions, ident, name, native id)`` of
#: the thread that called ``start()``, as they were then.  One
#: attribute: a second one grows the Thread's ``__dict__``, which costs
#: a thread start more than everything else the hook does.
ORIGIN_ATTR = "_df_gmr_origin"
#: Modules whose Thread class is wrapped: the one in use and, under
#: eventlet, the unpatched copy.
THREADING_MODULES = ("threading", "__original_module_threading")
_WRAPPED = "_df_gmr_start_wrapped"


def install() -> None:
    """Wrap ``Thread.start`` of the loaded threading modules (idempotent)."""
    for name in THREADING_MODULES:
        module = sys.modules.get(name)
        thread_class = getattr(module, "Thread", None)
        if thread_class is not None and not getattr(thread_class, _WRAPPED,
                                                    False):
            _wrap(thread_class)


def _wrap(thread_class: type) -> None:
    start = thread_class.start  # type: ignore[attr-defined]
    getframe = sys._getframe
    record = callers.Callers().record
    # The starting thread, from the module that defined this Thread (the
    # unpatched copy's threads are keyed by native idents, the patched
    # one's by green ones): its registry, read, never added to.
    defined_in = getattr(start, "__globals__", {})
    active = defined_in.get("_active")
    get_ident = defined_in.get("get_ident")
    get_native_id = defined_in.get("get_native_id")

    # The last start's (starter's frame, its f_lasti, starting thread,
    # origin): a loop of starts from one call, in one thread, shares it.
    memo = callers.FrameMemo()

    @functools.wraps(start)
    def recorded_start(self: Any) -> None:
        # The callers' code positions (see df_gmr.callers), from
        # Thread.start's caller; a thread started from the same place as
        # the previous one shares its tuple (a report describes it once,
        # found by identity).  And who started it, named as it was then
        # (an ident is reused once its thread ends).
        try:
            frame = getframe(1)
            lasti = frame.f_lasti
            last = memo.entry
            # The same call, so the same thread: its name is read again
            # (a thread may be renamed), nothing else.
            if frame is last[0] and lasti == last[1] and getattr(
                    last[2], "_name", None) == last[3][2]:
                origin = last[3]
            else:
                ident = get_ident()  # type: ignore[misc]
                starter = active.get(ident)  # type: ignore[union-attr]
                origin = (record(frame), ident,
                          getattr(starter, "_name", None),
                          get_native_id())  # type: ignore[misc]
                if not frame.f_code.co_flags & callers.RESUMABLE:
                    memo.entry = (frame, lasti, starter, origin)
            del frame
            setattr(self, ORIGIN_ATTR, origin)
        except Exception:  # a Thread with __slots__: no origin, no harm
            pass
        start(self)

    setattr(thread_class, "start", recorded_start)  # noqa: B010
    setattr(thread_class, _WRAPPED, True)


def positions(thread: Any) -> tuple[Any, ...] | None:
    """Return the caller positions recorded when ``thread`` started."""
    stored = naming.instance_dict(thread)
    return recorded(stored) if stored is not None else None


def recorded(stored: dict[str, Any]) -> tuple[Any, ...] | None:
    """Return the positions recorded in a Thread's ``__dict__``, or None."""
    found = _record(stored)
    positions = found[0] if found else None
    return positions if type(positions) is tuple and positions else None


def _record(stored: dict[str, Any]) -> tuple[Any, ...] | None:
    found = stored.get(ORIGIN_ATTR)
    return found if type(found) is tuple and len(found) == 4 else None


def describe(recorded: tuple[Any, ...] | None, prefixes: dict[str, str]
             ) -> dict[str, Any] | None:
    """Describe where a thread was started: the first outside caller.

    None when nothing was recorded (started before set-up, or not through
    ``Thread.start``); ``{"unknown": why}`` when the recorded callers are
    all libraries (or df_gmr itself): never a library's line.
    """
    if recorded is None:
        return None
    return stacks.origin(callers.pairs(recorded), prefixes, "started")


def started_by(stored: dict[str, Any]) -> dict[str, Any] | None:
    """Return ``{"ident", "name", "native_id"}`` of the thread that started
    a thread (from its Thread's ``__dict__``), as it was then; None if
    unknown.  An ident is reused once its thread ends: the native id tells
    whether a thread running now with that ident is the same one."""
    found = _record(stored)
    if found is None or type(found[1]) is not int:
        return None
    name = found[2] if type(found[2]) is str else None
    native_id = found[3] if type(found[3]) is int else None
    return {"ident": found[1], "name": name, "native_id": native_id}


def origin(thread: Any, prefixes: dict[str, str]) -> dict[str, Any] | None:
    """Describe where ``thread`` was started (see ``describe``)."""
    return describe(positions(thread), prefixes)
