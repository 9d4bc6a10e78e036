"""Where each native thread was started, and what it runs.

A wrapper of ``threading.Thread.start`` stores, on the thread object, the
code positions of its callers (as the spawn hook does for greenthreads:
code objects and instruction offsets, no frame kept) and nothing else:
the application's frame and its caller, or, for a thread a library
starts, the library's frames out to those two.  The usual start is a
few attribute reads (see ``benchmarks``, native hooks at rest).
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
import operator
import os
import sys
from types import CodeType
from typing import Any

from df_gmr import stacks

ORIGIN_ATTR = "_df_gmr_origin"
#: Modules whose Thread class is wrapped: the one in use and, under
#: eventlet, the unpatched copy.
THREADING_MODULES = ("threading", "__original_module_threading")
#: Libraries between an application and ``Thread.start``.
WRAPPER_MODULES = ("threading", "concurrent.futures", "futurist",
                   "oslo_service", "oslo_messaging", "cotyledon",
                   "oslo_utils")
_WRAPPED = "_df_gmr_start_wrapped"
#: Callers a start records at most (libraries included), and the
#: application's frames after which it stops.
MAX_CALLERS = 16
APPLICATION_CALLERS = 2


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
    previous: tuple[Any, ...] = ()
    # id(code) -> whether its file is df_gmr's or a wrapper library's: the
    # walk goes on through the libraries between the application and
    # Thread.start (futurist's pool, oslo.service's looping call: nine
    # frames), and stops past the application's frame and its caller.
    libraries: dict[int, bool] = {}
    # The application codes of the last straight-line start (see below).
    usual: tuple[Any, Any] = (None, None)

    def is_library(code: CodeType) -> bool:  # a code not seen before
        known = libraries[id(code)] = code.co_filename.startswith(
            tuple(wrapper_prefixes()))
        return known

    @functools.wraps(start)
    def recorded_start(self: Any) -> None:
        # Codes and instruction offsets (f_lasti: a plain read, where
        # f_lineno scans the line table) of the callers, innermost first,
        # in one tuple; the frames themselves are not kept.  Started from
        # the same place as the previous thread: that tuple is shared (a
        # report describes it once, found by identity).
        nonlocal previous, usual
        frame: Any = getframe(1)
        code = frame.f_code
        back = frame.f_back
        if back is not None and ((
                code is usual[0] and (back_code := back.f_code) is usual[1])
                or (libraries.get(id(code)) is False and libraries.get(
                    id(back_code := back.f_code)) is False)):
            # The usual case, straight-line: the application's frame and
            # its caller (APPLICATION_CALLERS), seen before (the same two
            # as last time: no look-up).  A thread start runs this with
            # the caches cold (the last thread just ran): every bytecode
            # counts, a loop cost a few percent of a start.
            usual = (code, back_code)
            lasti, back_lasti = frame.f_lasti, back.f_lasti
            del frame, back
            if len(previous) == 4 and code is previous[0] and \
                    back_code is previous[2] and lasti == previous[1] and \
                    back_lasti == previous[3]:
                recorded = previous
            else:
                recorded = previous = (code, lasti, back_code, back_lasti)
        else:
            del back
            recorded = walk(frame)
            del frame
            # Equal, then the codes the very same (in C): equal code
            # objects of two files (a copied module) compare equal.
            if recorded == previous and all(
                    map(operator.is_, recorded[::2], previous[::2])):
                recorded = previous
            else:
                previous = recorded
        try:
            setattr(self, ORIGIN_ATTR, recorded)
        except Exception:  # a Thread with __slots__: no origin, no harm
            pass
        start(self)

    def walk(frame: Any) -> tuple[Any, ...]:
        # Through the wrapper libraries (futurist's pool, oslo.service's
        # looping call: nine frames) to the application's frame and its
        # caller.
        positions: list[Any] = []
        outside = 0
        while frame is not None and len(positions) < 2 * MAX_CALLERS:
            code = frame.f_code
            positions.append(code)
            positions.append(frame.f_lasti)
            known = libraries.get(id(code))  # inline: once per frame
            if known is None:
                known = is_library(code)
            if not known:
                outside += 1
                if outside == APPLICATION_CALLERS:
                    break
            frame = frame.f_back
        del frame
        return tuple(positions)

    setattr(thread_class, "start", recorded_start)  # noqa: B010
    setattr(thread_class, _WRAPPED, True)


def wrapper_prefixes() -> dict[str, str]:
    """Map the file prefixes of df_gmr and the wrapper libraries to names."""
    prefixes = stacks.wrapper_prefixes()
    for name in WRAPPER_MODULES:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            prefixes.setdefault(os.path.dirname(path) + os.sep, name)
    return prefixes


def positions(thread: Any) -> tuple[Any, ...] | None:
    """Return the caller positions recorded when ``thread`` started."""
    try:
        stored = object.__getattribute__(thread, "__dict__")
    except Exception:
        return None
    return recorded(stored) if type(stored) is dict else None


def recorded(stored: dict[str, Any]) -> tuple[Any, ...] | None:
    """Return the positions recorded in a Thread's ``__dict__``, or None."""
    found = stored.get(ORIGIN_ATTR)
    return found if type(found) is tuple and found else None


def describe(recorded: tuple[Any, ...] | None, prefixes: dict[str, str]
             ) -> dict[str, Any] | None:
    """Describe where a thread was started: the first outside caller.

    None when nothing was recorded (started before set-up, or not through
    ``Thread.start``); ``{"unknown": why}`` when the recorded callers are
    all libraries (or df_gmr itself): never a library's line.
    """
    if recorded is None:
        return None
    pairs: list[tuple[CodeType, int]] = [
        (code, stacks.line_at(code, offset))
        for code, offset in zip(recorded[::2], recorded[1::2], strict=True)]
    return stacks.origin(pairs, prefixes, "started")


def origin(thread: Any, prefixes: dict[str, str]) -> dict[str, Any] | None:
    """Describe where ``thread`` was started (see ``describe``)."""
    return describe(positions(thread), prefixes)
