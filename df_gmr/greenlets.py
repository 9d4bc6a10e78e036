"""Know every greenlet and every hub without scanning the heap.

A report must not call ``gc.get_objects()``: touching every object of a
forked worker unshares its copy-on-write pages, and objects frozen by
``gc.freeze()`` (oslo.service freezes the heap before it forks) are not
even listed by it.  Instead df_gmr keeps weak registries, filled

* once, at set-up, by one heap scan (set-up runs in the main process,
  before the launcher freezes the heap and forks), and
* afterwards by light hooks on eventlet's two spawn paths
  (``GreenThread.__init__`` and ``greenthread._spawn_n``) and on
  ``BaseHub.__init__``.

A hook adds the greenlet to a WeakSet and records the caller's code
positions as the spawn site: no per-switch tracing.  Greenlets created
with raw ``greenlet.greenlet()`` after set-up are still found through the
hubs' timers and listeners.
"""

from __future__ import annotations

import functools
import gc
import os
import sys
from types import CodeType
from typing import Any
import weakref

from df_gmr import _native

#: Attribute set on a greenlet by the spawn hooks: ``(code, lineno)``
#: pairs of the spawning frames, innermost first.
SPAWN_ATTR = "_df_gmr_spawn"
#: How many caller frames a spawn records (enough to look past wrappers).
SPAWN_DEPTH = 8

_greenlets: weakref.WeakSet[Any] = weakref.WeakSet()
_hubs: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_installed_pid = 0


def available() -> str | None:
    """Return None when greenlets can be tracked, else why not."""
    if "greenlet" not in sys.modules and "eventlet" not in sys.modules:
        return "greenlet is not loaded in this process"
    return None


def install() -> None:
    """Hook eventlet's spawn paths and seed the registries (idempotent)."""
    global _installed_pid
    if _installed_pid:
        return
    _installed_pid = os.getpid()
    try:
        import greenlet
    except ImportError:
        return
    _seed(greenlet.greenlet)
    if "eventlet" in sys.modules or _importable("eventlet"):
        _hook_eventlet()


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except Exception:
        return False
    return True


def _seed(greenlet_type: type) -> None:
    for candidate in gc.get_objects():
        if isinstance(candidate, greenlet_type):
            _greenlets.add(candidate)
    hubs = sys.modules.get("eventlet.hubs")
    local = getattr(hubs, "_threadlocal", None)
    hub = getattr(local, "hub", None)
    if hub is not None:
        _hubs[hub] = _native.get_ident()


def _hook_eventlet() -> None:
    from eventlet import greenthread
    from eventlet.hubs import hub as hub_module

    # Look the original up at call time: these wrappers must survive
    # another library wrapping the same functions after us.
    green_thread_init = greenthread.GreenThread.__init__
    spawn_n = greenthread._spawn_n
    hub_init = hub_module.BaseHub.__init__
    getframe = sys._getframe
    track = _greenlets.add

    @functools.wraps(green_thread_init)
    def tracked_init(self: Any, parent: Any) -> None:
        green_thread_init(self, parent)
        track(self)
        self._df_gmr_spawn = _caller_positions(getframe(1))

    @functools.wraps(spawn_n)
    def tracked_spawn_n(seconds: Any, func: Any, args: Any, kwargs: Any
                        ) -> Any:
        timer, green = spawn_n(seconds, func, args, kwargs)
        track(green)
        green._df_gmr_spawn = _caller_positions(getframe(1))
        return timer, green

    @functools.wraps(hub_init)
    def tracked_hub_init(self: Any, *args: Any, **kwargs: Any) -> None:
        hub_init(self, *args, **kwargs)
        _hubs[self] = _native.get_ident()

    greenthread.GreenThread.__init__ = tracked_init
    greenthread._spawn_n = tracked_spawn_n
    hub_module.BaseHub.__init__ = tracked_hub_init


def _caller_positions(frame: Any) -> tuple[tuple[CodeType, int], ...]:
    positions = []
    while frame is not None and len(positions) < SPAWN_DEPTH:
        positions.append((frame.f_code, frame.f_lineno))
        frame = frame.f_back
    return tuple(positions)


def tracked() -> list[Any]:
    """Return the registered greenlets that are still alive."""
    # WeakSet iteration copes with entries dying meanwhile; list() makes a
    # stable snapshot while the main thread keeps spawning.
    for _ in range(3):
        try:
            return list(_greenlets)
        except RuntimeError:  # changed size during iteration
            continue
    return list(_greenlets.data.copy())  # pragma: no cover


def hubs() -> list[tuple[Any, int]]:
    """Return ``(hub, thread ident)`` for every known eventlet hub."""
    for _ in range(3):
        try:
            return list(_hubs.items())
        except RuntimeError:
            continue
    return []  # pragma: no cover
