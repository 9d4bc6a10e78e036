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

A hook stores a weak reference to the greenlet, with the code positions
of its callers as the spawn site, in a dict: no per-switch tracing.
Greenlets created with raw ``greenlet.greenlet()`` after set-up are
still found through the hubs' timers and listeners.

df_gmr's own threads (``lifecycle.own_threads()``: the reporting thread,
section threads, watchers) are not the service's: they must not get a
hub, and a hub one of them gets anyway is never listed.  A green
``os.open`` there (eventlet's patched one, as writing a report file
does) calls ``eventlet.hubs.notify_opened``, which would create a hub in
the calling thread to tell it that an fd number was reused; that thread
has no listener to tell, so df_gmr's hook skips the call in its own
threads.  A hub created in one of them all the same (a green lock under
contention, say) is kept out of ``hubs()``, and with it the greenlets
the sections find only through a hub (its loop, its thread's main
greenlet).  Limit: df_gmr spawns no greenthread in its threads; one
spawned there would be tracked as the service's.
"""

from __future__ import annotations

import array
import dataclasses
import functools
import gc
import os
import sys
import types
from types import ModuleType
from typing import Any
import weakref

from df_gmr import _imports
from df_gmr import _native
from df_gmr import stacks
from df_gmr.lifecycle import lifecycle

#: The registry: parallel lists, one entry per tracked greenlet: a weak
#: reference (without callback: nothing runs when a greenlet dies) and its
#: spawn site, a flat tuple ``(code, lineno, code, lineno, ...)`` of the
#: spawning frames, innermost first (or None).  Entries of dead greenlets
#: are dropped by ``_compact`` when the lists have doubled, so a spawn
#: costs two appends and one small tuple (see benchmarks/, cost at rest).
_refs: list[weakref.ref[Any]] = []
#: SITE_SLOTS code objects and instruction offsets (``f_lasti``, made
#: line numbers when read: see ``stacks.line_at``) per entry, in two flat
#: containers: a stored tuple per spawn would be one more object for the
#: cyclic collector to track (measured: ~10 points of spawn throughput).
_codes: list[Any] = []
_lines = array.array("l")
SITE_SLOTS = 3  # tracked_with_sites reads exactly three
_NO_CODE = object()
_NO_SITE = (None,) * SITE_SLOTS
_NO_LINES = (0,) * SITE_SLOTS
#: Seqlock for readers in the reporting thread: odd while compacting.
_generation = 0
_compact_at = 4096
_hubs: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
#: Hubs created in df_gmr's own threads: never the service's.
_own_hubs: weakref.WeakSet[Any] = weakref.WeakSet()
_installed_pid = 0
_hub_callbacks: list[Any] = []


@dataclasses.dataclass
class HeapScan:
    """What one heap scan found, held weakly."""

    greenlets: list[weakref.ref[Any]]
    #: (hub, thread ident or None when the scan cannot tell)
    hubs: list[tuple[weakref.ref[Any], int | None]]
    #: Objects frozen by gc.freeze() at the time: the scan misses them.
    frozen: int


#: The last heap scan, for a process without the registry.
_scan: HeapScan | None = None


def installed() -> bool:
    """Say whether the registry was installed (here or before a fork)."""
    return _installed_pid != 0


def found_by() -> str:
    """Say how greenlets are found: ``registry`` or ``heap scan``."""
    return "registry" if installed() else "heap scan"


def last_scan() -> HeapScan | None:
    """Return the last heap scan (None with the registry, or none yet)."""
    return None if installed() else _scan


def scan_heap() -> None:
    """Find every greenlet and hub by one heap scan (no registry only).

    Called once per report, when the registry is not installed; the
    registry's readers (``tracked()``, ``hubs()``) then answer from it.
    A hub's thread is known for the scanning thread's own hub only.
    Threads that are gone but not yet collected are left out (their
    finished hub and main greenlets).
    """
    global _scan
    if installed():
        return
    greenlet = sys.modules.get("greenlet")
    greenlet_type = getattr(greenlet, "greenlet", None)
    hub_module = sys.modules.get("eventlet.hubs.hub")
    hub_type = getattr(hub_module, "BaseHub", None)
    if greenlet_type is None:
        _scan = HeapScan([], [], gc.get_freeze_count())
        return
    greens = []
    hubs_found = []
    for candidate in gc.get_objects():
        kind = type(candidate)
        if issubclass(kind, greenlet_type):
            greens.append(candidate)
        elif hub_type is not None and issubclass(kind, hub_type):
            hubs_found.append(candidate)
    # A finished hub greenlet or main greenlet is a thread that is gone
    # (df_gmr's section threads of earlier reports among them), not yet
    # collected: not the service's, left out.
    gone = {id(getattr(hub, "greenlet", None)) for hub in hubs_found
            if getattr(getattr(hub, "greenlet", None), "dead", False)}
    hubs_found = [hub for hub in hubs_found
                  if id(getattr(hub, "greenlet", None)) not in gone]
    found = [weakref.ref(green) for green in greens
             if not (green.dead and (green.parent is None
                                     or id(green) in gone))]
    del greens
    local = getattr(sys.modules.get("eventlet.hubs"), "_threadlocal", None)
    own_hub = getattr(local, "hub", None)
    ident = _native.get_ident()
    _scan = HeapScan(
        found,
        [(weakref.ref(hub), ident if hub is own_hub and
          not is_own_thread(ident) else None)
         for hub in hubs_found],
        gc.get_freeze_count())


def on_new_hub(callback: Any) -> None:
    """Call ``callback(hub)`` for every hub created from now on."""
    if callback not in _hub_callbacks:
        _hub_callbacks.append(callback)


def available() -> str | None:
    """Return None when greenlets can be tracked, else why not."""
    if "greenlet" not in sys.modules and "eventlet" not in sys.modules:
        return "greenlet is not loaded in this process"
    return None


def install() -> None:
    """Seed the registries and hook eventlet once it is imported.

    Idempotent.  Never imports eventlet itself: the hooks go in when the
    service imports it.
    """
    global _installed_pid
    if _installed_pid:
        return
    _installed_pid = os.getpid()
    greenlet = sys.modules.get("greenlet")
    if greenlet is not None:
        _seed(greenlet.greenlet)
    _imports.when_imported("eventlet.greenthread", _hook_greenthread)
    _imports.when_imported("eventlet.hubs.hub", _hook_hub)
    _imports.when_imported("eventlet.hubs", _hook_notify_opened)


def _seed(greenlet_type: type) -> None:
    for candidate in gc.get_objects():
        if isinstance(candidate, greenlet_type):
            _codes.extend(_NO_SITE)
            _lines.extend(_NO_LINES)
            _refs.append(weakref.ref(candidate))
    hubs = sys.modules.get("eventlet.hubs")
    local = getattr(hubs, "_threadlocal", None)
    hub = getattr(local, "hub", None)
    if hub is not None:
        _hubs[hub] = _native.get_ident()


def _hook_greenthread(greenthread: ModuleType) -> None:
    # Wrap the functions found now; whatever wraps them later wraps ours.
    # This runs on every spawn: C calls and attribute reads only, no loop,
    # no call of ours but the rare compaction.
    green_thread_init = greenthread.GreenThread.__init__
    spawn_n = greenthread._spawn_n
    getframe = sys._getframe
    ref = weakref.ref
    add_ref = _refs.append
    add_codes = _codes.extend
    add_lines = _lines.extend

    @functools.wraps(green_thread_init)
    def tracked_init(self: Any, parent: Any) -> None:
        green_thread_init(self, parent)
        # Callers, innermost first: spawn(), then maybe GreenPool.spawn,
        # ThreadGroup.add_thread, then the application.  spawn() may be a
        # greenlet's outermost frame (spawn_n(spawn, f)): no caller then.
        # The temporary tuples below are freed at once: only the weak
        # reference outlives the call.  Codes and lines go first, the
        # reference last: a reader that sees the reference sees its site.
        try:
            frame = getframe(2)
        except ValueError:
            add_codes(_NO_SITE)
            add_lines(_NO_LINES)
        else:
            back = frame.f_back
            third = back.f_back if back is not None else None
            add_codes((frame.f_code,
                       back.f_code if back is not None else None,
                       third.f_code if third is not None else None))
            add_lines((frame.f_lasti,
                       back.f_lasti if back is not None else 0,
                       third.f_lasti if third is not None else 0))
            del frame, back, third
        add_ref(ref(self))
        if len(_refs) >= _compact_at:
            _compact()

    @functools.wraps(spawn_n)
    def tracked_spawn_n(seconds: Any, func: Any, args: Any, kwargs: Any
                        ) -> Any:
        timer, green = spawn_n(seconds, func, args, kwargs)
        codes, lines = _caller_positions(getframe(1))
        add_codes(codes)
        add_lines(lines)
        add_ref(ref(green))
        if len(_refs) >= _compact_at:
            _compact()
        return timer, green

    greenthread.GreenThread.__init__ = tracked_init
    greenthread._spawn_n = tracked_spawn_n  # type: ignore[attr-defined]


def _compact() -> None:
    """Drop the entries of dead greenlets (in the thread that spawns)."""
    global _generation, _compact_at
    _generation += 1  # odd: readers wait
    try:
        alive = [index for index, reference in enumerate(_refs)
                 if reference() is not None]
        slots = [index * SITE_SLOTS + slot for index in alive
                 for slot in range(SITE_SLOTS)]
        _codes[:] = [_codes[slot] for slot in slots]
        _lines[:] = array.array("l", [_lines[slot] for slot in slots])
        _refs[:] = [_refs[index] for index in alive]
    finally:
        _generation += 1
    _compact_at = max(4096, 2 * len(_refs))


def is_own_thread(ident: int) -> bool:
    """Say whether the thread ``ident`` is one of df_gmr's own."""
    return ident in lifecycle.own_threads()


def _hook_hub(hub_module: ModuleType) -> None:
    hub_init = hub_module.BaseHub.__init__

    @functools.wraps(hub_init)
    def tracked_hub_init(self: Any, *args: Any, **kwargs: Any) -> None:
        hub_init(self, *args, **kwargs)
        ident = _native.get_ident()
        if is_own_thread(ident):
            _own_hubs.add(self)  # no heartbeat, no stamp: not a service hub
            return
        _hubs[self] = ident
        for callback in _hub_callbacks:
            try:
                callback(self)
            except Exception:  # never break hub creation
                pass

    hub_module.BaseHub.__init__ = tracked_hub_init


def _hook_notify_opened(hubs_module: ModuleType) -> None:
    notify_opened = hubs_module.notify_opened

    @functools.wraps(notify_opened)
    def notify_opened_outside_df_gmr(fd: int) -> None:
        # See the module docstring: no hub for df_gmr's threads.
        if not is_own_thread(_native.get_ident()):
            notify_opened(fd)

    hubs_module.notify_opened = (  # type: ignore[attr-defined]
        notify_opened_outside_df_gmr)


def bound_greenlet(callback: Any) -> Any:
    """Return the greenlet whose method ``callback`` is, else None.

    Hub timers wake greenthreads through ``greenlet.switch`` and
    ``greenlet.throw``; only the bound method's own owner is looked at.
    """
    if type(callback) not in (types.MethodType, types.BuiltinMethodType):
        return None
    owner = callback.__self__
    greenlet = sys.modules.get("greenlet")
    greenlet_type = getattr(greenlet, "greenlet", None)
    if greenlet_type is None or not issubclass(type(owner), greenlet_type):
        return None
    return owner


def _caller_positions(frame: Any) -> tuple[tuple[Any, ...], tuple[int, ...]]:
    codes: list[Any] = []
    lines: list[int] = []
    while frame is not None and len(codes) < SITE_SLOTS:
        codes.append(frame.f_code)
        lines.append(frame.f_lasti)
        frame = frame.f_back
    missing = SITE_SLOTS - len(codes)
    return tuple(codes) + (None,) * missing, tuple(lines) + (0,) * missing


def snapshot(read: Any) -> list[Any]:
    """Return ``list(read())`` taken while the main thread may mutate it.

    The report is built in another thread while the hub keeps running:
    iterating a dict, set or list that changes size raises RuntimeError,
    and trying again a few times gets a consistent copy.
    """
    for _ in range(20):
        try:
            return list(read())
        except RuntimeError:  # changed size during iteration
            _native.sleep(0.001)
    msg = "no consistent copy: the service kept changing it (20 tries)"
    raise RuntimeError(msg)  # the section says so, instead of "none"


def state(green: Any) -> str:
    """Say whether a greenlet runs, is parked, not started or finished."""
    if green is None:
        return "unknown"
    if green.dead:
        return "finished"
    if green.gr_frame is not None:
        return "parked"
    if bool(green):
        return "running"
    return "not started"


def tracked_with_sites() -> list[tuple[Any, tuple[Any, ...] | None]]:
    """Return ``(greenlet, spawn site)`` for every live tracked greenlet.

    The spawn site is a flat ``(code, lineno, ...)`` tuple, innermost
    caller first, or None when the greenlet predates set-up.  Without
    the registry: every greenlet of the last heap scan, without site.
    """
    if not installed():
        scan = _scan
        if scan is None:
            return []
        return [(green, None) for green in
                (reference() for reference in scan.greenlets)
                if green is not None]
    for _ in range(100):
        before = _generation
        if before % 2:
            _native.sleep(0.001)  # the main thread is compacting
            continue
        refs = snapshot(lambda: _refs)
        codes = snapshot(lambda: _codes)
        lines = snapshot(lambda: _lines)
        needed = len(refs) * SITE_SLOTS
        if _generation == before and len(codes) >= needed \
                and len(lines) >= needed:
            break
    else:
        msg = "the greenlet registry kept being compacted (100 tries)"
        raise RuntimeError(msg)
    pairs: list[tuple[Any, tuple[Any, ...] | None]] = []
    # Greenlets spawned one after another mostly share their spawn site:
    # its slots are compared with the previous greenlet's (code objects
    # by identity first), and the previous site's tuple is kept (a tuple
    # and three ints per greenlet: +9 MiB at 100k greenthreads).
    # Equality, not a dict: hashing code objects costs more than it saves.
    # The three slots (SITE_SLOTS) compared one by one, codes by
    # identity: nothing is allocated for a greenlet whose site is the
    # previous one's.
    last: tuple[Any, ...] | None = None
    code0 = code1 = code2 = _NO_CODE
    line0 = line1 = line2 = -1
    append = pairs.append
    first = -SITE_SLOTS
    for reference in refs:
        first += SITE_SLOTS
        green = reference()
        if green is None:
            continue
        if codes[first] is not code0 or codes[first + 1] is not code1 \
                or codes[first + 2] is not code2 \
                or lines[first] != line0 or lines[first + 1] != line1 \
                or lines[first + 2] != line2:
            code0, code1, code2 = codes[first:first + SITE_SLOTS]
            line0, line1, line2 = lines[first:first + SITE_SLOTS]
            site: list[Any] = []
            for code, offset in ((code0, line0), (code1, line1),
                                 (code2, line2)):
                if code is not None:
                    site.extend((code, stacks.line_at(code, offset)))
            last = tuple(site) if site else None
        append((green, last))
    return pairs


def tracked() -> list[Any]:
    """Return the registered greenlets that are still alive."""
    return [green for green, _ in tracked_with_sites()]


def hubs() -> list[tuple[Any, int]]:
    """Return ``(hub, thread ident)`` for every known hub of the service.

    Hubs of df_gmr's own threads are left out (see the module docstring).
    Without the registry: the hubs of the last heap scan, with thread
    ident 0 where the scan could not tell (see ``scan_heap``).
    """
    if not installed():
        scan = _scan
        if scan is None:
            return []
        return [(hub, ident or 0) for hub, ident in
                ((reference(), ident) for reference, ident in scan.hubs)
                if hub is not None]
    own = set(map(id, snapshot(_own_hubs.__iter__)))
    return [(hub, ident) for hub, ident in snapshot(_hubs.items)
            if id(hub) not in own and not is_own_thread(ident)]
