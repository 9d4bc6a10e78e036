"""Know every green pool, thread group and looping call without a heap scan.

The Green Pools section must not call ``gc.get_objects()`` (see
``greenlets``: a heap scan unshares a forked worker's copy-on-write pages
and misses objects frozen by ``gc.freeze()``).  So df_gmr keeps weak
registries, filled

* once, by ``install()``: one heap scan for the objects created before
  it (``install()`` runs at set-up, before the launcher forks), and
* afterwards by light hooks on the constructors, put in when the module
  that defines each class is imported (never importing it ourselves):

  - ``eventlet.greenpool``: ``GreenPool`` and ``GreenPile`` (``GreenMap``
    and subclasses go through the same ``__init__``);
  - ``futurist._futures``: ``GreenThreadPoolExecutor``;
  - ``oslo_service.backend._eventlet.threadgroup``: ``ThreadGroup``;
  - ``oslo_service.backend._eventlet.loopingcall``: ``LoopingCallBase``
    (every looping call), whose ``_start`` is also wrapped to keep the
    schedule closure that holds the interval, since no attribute does,
    and the callers of ``start()``: the looping call's greenthread is
    spawned several library frames below the application (``start``,
    ``ThreadGroup.add_timer``...), deeper than a spawn records;

and, through ``greenlets.on_new_hub`` (the greenlet registry's hub hook),
each new hub is stamped with the pid that created it, so a report can tell
a hub left over from before a fork.

A hook adds the new object to a WeakSet and records a few caller code
positions as its creation site; nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
import functools
import gc
import os
import sys
from types import CodeType
from types import FrameType
from types import ModuleType
from typing import Any
import weakref

from df_gmr import _imports
from df_gmr import callers
from df_gmr import greenlets

#: Attribute set on a tracked object: ``(code, lineno)`` pairs of the
#: creating frames, innermost first.
CREATED_ATTR = "_df_gmr_created"
#: Attribute set on a started looping call: its ``idle_for`` closure.
SCHEDULE_ATTR = "_df_gmr_schedule"
#: Attribute set on a started looping call: ``(code, lineno)`` pairs of
#: the frames that called its ``_start``, innermost first.
STARTED_ATTR = "_df_gmr_started"
#: (Creations and starts record their callers as spawns do: through the
#: wrapper libraries to the application's frame and its caller, see
#: df_gmr.callers; ThreadGroup.add_timer, the executors and the timers it
#: creates are oslo.service's and futurist's frames.)

#: Numbers a schedule closes over that are instants, not settings.
WALL_CLOCK_NAMES = frozenset({"start_time"})
#: Registry names, in the order ``tracked()`` returns them.
KINDS = ("pools", "piles", "executors", "thread_groups", "looping_calls")

_registries: dict[str, weakref.WeakSet[Any]] = {
    kind: weakref.WeakSet() for kind in KINDS
}
_hub_pids: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
#: kind -> the class whose instances it tracks, once its module is loaded.
_classes: dict[str, type] = {}
_installed = False


def install() -> None:
    """Hook the pool classes when imported; register existing instances.

    Idempotent.  Never imports eventlet, futurist or oslo.service itself.
    The heap scan for instances created earlier happens here, once, and
    never while a report is built.
    """
    global _installed
    if _installed:
        return
    _installed = True
    _imports.when_imported("eventlet.greenpool", _hook_greenpool)
    greenlets.on_new_hub(_stamp_hub)
    _imports.when_imported("futurist._futures", _hook_futurist)
    _imports.when_imported("oslo_service.backend._eventlet.threadgroup",
                           _hook_threadgroup)
    _imports.when_imported("oslo_service.backend._eventlet.loopingcall",
                           _hook_loopingcall)
    _seed()


def installed() -> bool:
    """Say whether ``install()`` ran in this process (or its parent)."""
    return _installed


def tracked() -> dict[str, list[Any]]:
    """Return the live tracked objects: ``{kind: [object, ...]}``.

    The kinds are ``pools``, ``piles``, ``executors``, ``thread_groups``
    and ``looping_calls``; each list is a snapshot safe to iterate while
    the hub keeps creating and dropping objects.
    """
    return {kind: greenlets.snapshot(_registries[kind].__iter__)
            for kind in KINDS}


def hub_pid(hub: Any) -> int | None:
    """Return the pid of the process that created ``hub``, if known."""
    try:
        return _hub_pids.get(hub)
    except TypeError:  # pragma: no cover - not weak-referenceable
        return None


def creation_site(instance: Any) -> tuple[tuple[CodeType, int], ...]:
    """Return the recorded creating frames of ``instance`` (maybe empty)."""
    return getattr(instance, CREATED_ATTR, None) or ()


def start_site(looping_call: Any) -> tuple[tuple[CodeType, int], ...]:
    """Return the recorded callers of a looping call's start (maybe empty)."""
    return getattr(looping_call, STARTED_ATTR, None) or ()


def schedule_known(looping_call: Any) -> bool:
    """Say whether the call was started while ``_start`` was wrapped."""
    return getattr(looping_call, SCHEDULE_ATTR, None) is not None


def schedule(looping_call: Any) -> dict[str, float]:
    """Return the numbers a started looping call's schedule closes over.

    ``{"interval": 1.0}`` for a fixed interval call,
    ``{"periodic_interval_max": 60}`` for a dynamic one, the back-off
    bounds for a back-off call; empty when not started since ``install()``
    (``schedule_known`` tells) or when the schedule holds no number (a
    dynamic call without ``periodic_interval_max``: its function alone
    decides each sleep).
    """
    return schedule_numbers(getattr(looping_call, SCHEDULE_ATTR, None))


def schedule_numbers(idle_for: Any) -> dict[str, float]:
    """Return the numbers a looping call's ``idle_for`` closure holds (see
    ``schedule``): its cells are read, nothing is called."""
    code = getattr(idle_for, "__code__", None)
    cells = getattr(idle_for, "__closure__", None) or ()
    if code is None:
        return {}
    found: dict[str, float] = {}
    for name, cell in zip(code.co_freevars, cells, strict=False):
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if name in WALL_CLOCK_NAMES:
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            found[name] = value
    return found


def _seed() -> None:
    _seed_hub()
    # Only the classes already imported can have instances.
    classes = tuple(_classes.items())
    if not classes:
        return
    for candidate in gc.get_objects():
        for kind, cls in classes:
            try:
                if isinstance(candidate, cls):
                    _registries[kind].add(candidate)
            except Exception:  # a proxy whose __class__ raises
                continue


def _seed_hub() -> None:
    hubs = sys.modules.get("eventlet.hubs")
    hub = getattr(getattr(hubs, "_threadlocal", None), "hub", None)
    if hub is not None and hub not in _hub_pids:
        _hub_pids[hub] = os.getpid()


def _caller_positions(record: Callable[[Any], tuple[Any, ...] | None],
                      frame: FrameType | None
                      ) -> tuple[tuple[CodeType, int], ...]:
    # Made lines at once: pools, executors and looping calls are made
    # rarely, and their sites are read as (code, line) pairs.
    recorded = record(frame)
    return tuple(callers.pairs(recorded)) if recorded else ()


def _track_init(cls: type, kind: str) -> None:
    """Wrap ``cls.__init__`` to register each new instance under ``kind``."""
    original = cls.__init__  # type: ignore[misc]
    track = _registries[kind].add
    getframe = sys._getframe
    record = callers.Callers().record

    @functools.wraps(original)
    def tracked_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        try:
            track(self)
            setattr(self, CREATED_ATTR,
                    _caller_positions(record, getframe(1)))
        except Exception:  # never break the service's constructor
            pass

    cls.__init__ = tracked_init  # type: ignore[misc]
    _classes[kind] = cls


def _hook_greenpool(greenpool: ModuleType) -> None:
    _track_init(greenpool.GreenPool, "pools")
    _track_init(greenpool.GreenPile, "piles")


def _hook_futurist(futures: ModuleType) -> None:
    executor = getattr(futures, "GreenThreadPoolExecutor", None)
    if executor is not None:
        _track_init(executor, "executors")


def _hook_threadgroup(threadgroup: ModuleType) -> None:
    _track_init(threadgroup.ThreadGroup, "thread_groups")


def _hook_loopingcall(loopingcall: ModuleType) -> None:
    base = loopingcall.LoopingCallBase
    _track_init(base, "looping_calls")
    original_start = base._start
    getframe = sys._getframe
    record = callers.Callers().record

    @functools.wraps(original_start)
    def tracked_start(self: Any, idle_for: Any, *args: Any, **kwargs: Any
                      ) -> Any:
        try:
            setattr(self, SCHEDULE_ATTR, idle_for)
            setattr(self, STARTED_ATTR,
                    _caller_positions(record, getframe(1)))
        except Exception:  # never break the service's start
            pass
        return original_start(self, idle_for, *args, **kwargs)

    base._start = tracked_start


def _stamp_hub(hub: Any) -> None:
    _hub_pids[hub] = os.getpid()
