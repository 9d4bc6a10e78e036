"""Know every greenlet and every hub without scanning the heap.

A report must not call ``gc.get_objects()``: touching every object of a
forked worker unshares its copy-on-write pages, and objects frozen by
``gc.freeze()`` (oslo.service freezes the heap before it forks) are not
even listed by it.  Instead df_gmr keeps registries, filled

* once, at set-up, by one heap scan (set-up runs in the main process,
  before the launcher freezes the heap and forks), and
* afterwards by light hooks on eventlet's two spawn paths
  (``GreenThread.__init__`` and ``greenthread._spawn_n``) and on
  ``BaseHub.__init__``.

A spawn hook puts the greenlet in the registry (a table keyed by
identity, in C where built, else a dict), with the code positions of its
callers as the spawn site; a GreenThread's own exit takes it out again
(``GreenThread._resolve_links``, hooked too), and plain greenlets are
swept once dead: no per-switch tracing, and no object per greenthread
for the cyclic garbage collector (a weak reference is one).  The
registry holds the greenthreads spawned in this process strongly while
they live (those of the set-up's heap scan, a forked child's inherited
ones, and, from the next sweep on, those that can never run because
their hub was replaced or their thread is gone, weakly: a renewed hub
must be freed with its epoll descriptor): one that the
service drops while it is parked (nothing else refers to it) is kept,
and listed, instead of being killed by GreenletExit when it is freed; a
parked greenthread the service still waits on, the usual case, is kept
alive by the service anyway.  Greenlets created with raw
``greenlet.greenlet()`` after set-up are still found through the hubs'
timers and listeners.

Per spawn, a loop of spawns costs one frame read: the spawner's frame
of the last spawn is held, so that the same frame at the same
instruction (the same call) shares the last site (``callers.FrameMemo``,
which states the limit: a returned frame's locals live on until the
cyclic collector's next run).

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

import functools
import gc
import os
import sys
import types
from types import ModuleType
from typing import Any
from typing import Protocol
import weakref

from df_gmr import _imports
from df_gmr import _native
from df_gmr import callers
from df_gmr import speedups
from df_gmr.heapscan import HeapScan
from df_gmr.heapscan import scanner
from df_gmr.lifecycle import lifecycle


class Registry(Protocol):
    """What df_gmr asks of the registry: a dict, or ``_sites.Registry``."""

    def __setitem__(self, green: Any, site: tuple[Any, ...] | None
                    ) -> None: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Any: ...
    def get(self, green: Any, default: Any = None, /) -> Any: ...
    def pop(self, green: Any, default: Any, /) -> Any: ...
    def items(self) -> Any: ...
    def clear(self) -> None: ...
    def copy(self) -> dict[Any, tuple[Any, ...] | None]: ...


#: The registry: every greenlet spawned here, held strongly (an entry is
#: not an object the cyclic collector tracks; a weak reference is, and it
#: made the collector run more often: see benchmarks/, cost at rest), with
#: its raw spawn site, a tuple ``(code, offset, code, offset, ...)`` of
#: the spawning frames, innermost first, through the wrapper libraries to
#: the application (``callers``; ``f_lasti``, made line numbers when
#: read: see ``stacks.line_at``), or None.  The tuple
#: holds code objects and ints only, so the collector stops tracking it at
#: its first collection.  A GreenThread's entry is removed by its own exit
#: (``_resolve_links``, which ``GreenThread.main`` calls however the
#: function ends, and ``kill`` calls for one killed before it ran); the
#: rest (``spawn_n``'s plain greenlets, a GreenThread thrown into before
#: it started) by a sweep once dead, and those that can never run let go
#: by it (see ``_sweep``), when the registry has doubled since the last
#: sweep and whenever a hub is made (a renewed hub, a new thread's: each
#: sweep reads every entry, ~10 ms at 100,000 greenthreads).  "Has
#: doubled" is checked after each run of the cyclic garbage collector
#: (``_after_collection``: every few hundred allocations, not at every
#: spawn) and at each ``spawn_n``.
#: Where df_gmr._sites is built, a ``Registry`` of it from set-up on
#: (``install``): the same entries, by identity, held in a table that
#: costs less to churn than a dict (see df_gmr/_sites.c).
_alive: Registry = {}
#: Greenlets found by the seed's heap scan, and those inherited from the
#: parent by a forked child, held weakly with their sites: a hub that the
#: service replaces (a worker renews its hub after fork) must be freed
#: with the greenlets that only it refers to, as without df_gmr.  Their
#: number is fixed at that moment: nothing is added per spawn.
_weak: list[tuple[weakref.ref[Any], tuple[Any, ...] | None]] = []
_weak_lock = _native.allocate_lock()
_MISSING = object()
_sweep_at = 4096
#: The threads in a sweep or in the fork hook: a sweep that a collection
#: would start there (from one of their allocations) is left to the next.
_busy: set[int] = set()
_hubs: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
#: Hubs created in df_gmr's own threads: never the service's.
_own_hubs: weakref.WeakSet[Any] = weakref.WeakSet()
_installed_pid = 0
_hub_callbacks: list[Any] = []


def installed() -> bool:
    """Say whether the registry was installed (here or before a fork)."""
    return _installed_pid != 0


def found_by() -> str:
    """Say how greenlets are found: ``registry`` or ``heap scan``."""
    return "registry" if installed() else "heap scan"


def last_scan() -> HeapScan | None:
    """Return the last heap scan (None with the registry, or none yet)."""
    return None if installed() else scanner.last


def scan_heap() -> None:
    """Find every greenlet and hub by one heap scan (no registry only).

    Called once per report, when the registry is not installed; the
    registry's readers (``tracked()``, ``hubs()``) then answer from it
    (see ``heapscan``).
    """
    if not installed():
        scanner.scan()


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
    global _installed_pid, _alive
    if _installed_pid:
        return
    _installed_pid = os.getpid()
    found = speedups.module()
    if found is not None:
        _alive = found.Registry()
    greenlet = sys.modules.get("greenlet")
    if greenlet is not None:
        _seed(greenlet.greenlet)
    lifecycle.reset_after_fork(_weaken_inherited)
    gc.callbacks.append(_after_collection)
    _imports.when_imported("eventlet.greenthread", _hook_greenthread)
    _imports.when_imported("eventlet.hubs.hub", _hook_hub)
    _imports.when_imported("eventlet.hubs", _hook_notify_opened)


def _seed(greenlet_type: type) -> None:
    for candidate in gc.get_objects():
        if isinstance(candidate, greenlet_type) and not getattr(
                candidate, "dead", True):
            _weak.append((weakref.ref(candidate), None))
    hubs = sys.modules.get("eventlet.hubs")
    local = getattr(hubs, "_threadlocal", None)
    hub = getattr(local, "hub", None)
    if hub is not None:
        _hubs[hub] = _native.get_ident()


#: eventlet's ``GreenThread.__init__`` as it is (0.36 to 0.41 at least).
#: When the installed one compiles to the same code, the spawn hook does
#: its four lines itself instead of calling it: a call of a Python
#: function was a quarter of the hook's cost per spawn (~650 of ~2,300
#: instructions; eventlet's spawn takes ~48,000).  Any other one (an
#: older or newer eventlet, a wrapped one) is called as it is.
#: Compiled, never run: its imports make the calls compile as eventlet's
#: do (Python 3.11 compiles a call on an imported name differently).
_EVENTLET_INIT = """\
from eventlet import event
from eventlet.support import greenlets as greenlet
def __init__(self, parent):
    greenlet.greenlet.__init__(self, self.main, parent)
    self._exit_event = event.Event()
    self._resolving_links = False
    self._exit_funcs = None
"""


def _code_of(source: str) -> types.CodeType:
    module = compile(source, "<known>", "exec", dont_inherit=True)
    return next(const for const in module.co_consts
                if isinstance(const, types.CodeType))


def same_code(function: Any, source: str) -> bool:
    """Say whether ``function`` compiles to what ``source`` defines."""
    code = getattr(function, "__code__", None)
    if not isinstance(code, types.CodeType):
        return False
    known = _code_of(source)
    return all(getattr(code, name) == getattr(known, name) for name in (
        "co_code", "co_names", "co_consts", "co_varnames", "co_argcount",
        "co_kwonlyargcount", "co_flags", "co_freevars")) and \
        not getattr(function, "__defaults__", None)


def compiled_sites() -> Any:
    """Return the C spawn hook's type (``df_gmr._sites.Sites``), or None.

    None when it was not built (see setup.py) or when
    ``DF_GMR_PURE_PYTHON=1`` asks for the pure-Python hook.
    """
    found = speedups.module()
    return None if found is None else found.Sites


def _hook_greenthread(greenthread: ModuleType) -> None:
    # Wrap the functions found now; whatever wraps them later wraps ours.
    # This runs on every spawn: attribute reads for a spawn of a loop, one
    # call (the site, see df_gmr.callers) for another, no call of ours but
    # that and the rare sweep.
    green_thread_init = greenthread.GreenThread.__init__
    # eventlet's own lines, when its __init__ is the known one (see
    # _EVENTLET_INIT); looked up as it does, but for greenlet's __init__.
    inline = same_code(green_thread_init, _EVENTLET_INIT) and \
        getattr(greenthread, "greenlet", None) is not None and \
        getattr(greenthread, "event", None) is not None
    greenlet_init: Any = greenthread.greenlet.greenlet.__init__ if inline \
        else None
    event_module: Any = greenthread.event if inline else None
    resolve_links = greenthread.GreenThread._resolve_links
    spawn_n = greenthread._spawn_n
    getframe = sys._getframe
    alive = _alive
    forget = _alive.pop
    sweep = _sweep_quietly
    # One recorder per spawn path: a loop of spawns (or of spawn_n, a
    # WSGI server's requests) shares one site tuple, which a report
    # describes once.
    # A spawn by library code alone records its greenthread's own site
    # too (callers.Callers.walk).
    getcurrent = greenthread.greenlet.getcurrent

    def spawner_site() -> Any:
        return alive.get(getcurrent())

    recorder = callers.Callers(spawner_site)
    record = recorder.record
    record_n = callers.Callers(spawner_site).record

    # The last spawn's (spawner's frame, its f_lasti, site).
    spawner = callers.FrameMemo()
    resumable = callers.RESUMABLE
    compiled = compiled_sites()
    note: Any = None
    if compiled is not None:
        # The same work in C (df_gmr/_sites.c): the spawner is two frames
        # out from the hook, as for getframe(2) below.
        sites = compiled(alive, recorder, 2)
        callers.keep_compiled(sites)
        note = sites.note
        speedups.used.note("spawn hook")

    def noted_init(self: Any, parent: Any) -> None:
        # eventlet's lines, then the C hook.  Not a branch of tracked_init:
        # a call copies each of a closure's cells into its frame, and
        # tracked_init's ten more cost ~180 instructions a spawn.
        if inline:
            greenlet_init(self, self.main, parent)
            self._exit_event = event_module.Event()
            self._resolving_links = False
            self._exit_funcs = None
        else:
            green_thread_init(self, parent)
        note(self)

    def tracked_init(self: Any, parent: Any) -> None:
        if inline:
            greenlet_init(self, self.main, parent)
            self._exit_event = event_module.Event()
            self._resolving_links = False
            self._exit_funcs = None
        else:
            green_thread_init(self, parent)
        # Callers, innermost first, from spawn()'s caller (GreenPool.spawn,
        # ThreadGroup.add_thread, green threading or the application)
        # out to the application's frame and its caller.  spawn() may be
        # a greenlet's outermost frame (spawn_n(spawn, f)): no caller
        # then.
        try:
            frame = getframe(2)
        except ValueError:
            alive[self] = None
            return
        lasti = frame.f_lasti
        last = spawner.entry
        # A loop of spawns: the very frame of the last spawn, at the same
        # instruction, is the same activation (a frame object held is
        # never reused), so its callers are those recorded: one frame
        # read, where the codes' check below reads five.
        if frame is last[0] and lasti == last[1]:
            alive[self] = last[2]
        else:
            back = frame.f_back
            usual = recorder.usual
            site: tuple[Any, ...] | None
            # The loop case of Callers.record, inline: the same
            # application frame and caller, at the same instructions,
            # record the same tuple (another activation of them).
            if usual and back is not None and frame.f_code is usual[0] \
                    and back.f_code is usual[2] \
                    and lasti == usual[1] \
                    and back.f_lasti == usual[3]:
                site = usual
            else:
                site = record(frame)
            alive[self] = site
            if not frame.f_code.co_flags & resumable:
                spawner.entry = (frame, lasti, site)
            del back
        del frame
        # No sweep check here: see _after_collection.

    @functools.wraps(resolve_links)
    def forgotten_at_exit(self: Any) -> None:
        # main() calls it once the function returned or raised, and
        # kill() through main() for a greenthread killed before it ran;
        # link() calls it again on a finished one (pop is idempotent).
        # eventlet's _resolve_links does nothing without exit functions
        # (its first lines; tests/unit/test_registry_churn.py holds it to
        # that): the usual greenthread, with no link, is not made to call
        # it, a Python call that was a fifth of the hooks' cost per spawn.
        # With links: after them, as a link callback may still park this
        # greenthread.
        if self._exit_funcs:
            try:
                resolve_links(self)
            finally:
                forget(self, None)
        else:
            forget(self, None)

    @functools.wraps(spawn_n)
    def tracked_spawn_n(seconds: Any, func: Any, args: Any, kwargs: Any
                        ) -> Any:
        timer, green = spawn_n(seconds, func, args, kwargs)
        alive[green] = record_n(getframe(1))
        if len(alive) >= _sweep_at:
            sweep()
        return timer, green

    greenthread.GreenThread.__init__ = functools.wraps(green_thread_init)(
        tracked_init if note is None else noted_init)
    greenthread.GreenThread._resolve_links = forgotten_at_exit
    greenthread._spawn_n = tracked_spawn_n  # type: ignore[attr-defined]


def _weaken_inherited() -> None:
    """In a forked child: hold the parent's greenlets weakly from now on.

    They never run here unless the child keeps its parent's hub; a child
    that renews it (oslo.service's workers do) must be able to free the
    old hub, its epoll descriptor and the greenlets only it refers to.
    """
    global _weak_lock
    _weak_lock = _native.allocate_lock()  # another thread may have held it
    _busy.clear()  # the threads are gone; this one allocates just below
    _busy.add(_native.get_ident())
    try:
        inherited = [(weakref.ref(green), site)
                     for green, site in _alive.items() if not green.dead]
        _alive.clear()
        _hold_weakly(inherited)
    finally:
        _busy.clear()


def _sweep() -> None:
    """Drop the dead, and let go of greenthreads that can never run.

    Runs in a thread that spawns (when the registry has doubled) and in
    one that creates a hub.  A greenthread not started yet can never run
    when its hub was replaced or its thread is gone (it is held weakly
    from then on, as before set-up, so the old hub and its epoll
    descriptor can be freed), or when nothing but the registry refers to
    it any more (``spawn_after_local`` whose spawner ended: its timer was
    dropped): it is let go.  One scheduled to run on a live hub stays.
    """
    global _sweep_at
    live = _live_hub_greenlets()
    stale: list[tuple[weakref.ref[Any], Any]] = []
    # list() copies the keys in one C call, so a hub in another thread
    # spawning meanwhile cannot break the iteration.
    for green in list(_alive):
        if green.dead:
            _alive.pop(green, None)
        elif not green:  # not started yet
            if id(green.parent) not in live:
                site = _alive.pop(green, _MISSING)
                if site is not _MISSING:
                    stale.append((weakref.ref(green), site))
            else:
                # Not started, a greenlet holds its run: a GreenThread's
                # is its bound main(), which refers back to it; a
                # reference of its own, when nothing else holds main().
                run = getattr(green, "run", None)
                own = type(run) is types.MethodType and \
                    run.__self__ is green and \
                    sys.getrefcount(run) <= _ONLY_THE_GREENLETS
                del run
                if sys.getrefcount(green) <= _ONLY_OURS + own:
                    _alive.pop(green, None)
        del green
    _hold_weakly(stale)
    _sweep_at = max(4096, 2 * len(_alive))


def _sweep_quietly() -> None:
    # Called from a spawn_n, a hub's creation and the collector: it must
    # never break any; a sweep that fails, or that finds another running
    # (in this thread: it allocated, and the collector ran), is tried
    # again at the next one.  A sweep in another thread is no reason to
    # skip: each takes its own copy of the keys (see _sweep).
    ident = _native.get_ident()
    if ident in _busy:
        return
    _busy.add(ident)
    try:
        _sweep()
    except Exception:  # nothing to tell, and nowhere to tell it
        pass
    finally:
        _busy.discard(ident)


def _after_collection(phase: str, info: dict[str, Any]) -> None:
    """Sweep when the registry has doubled (a ``gc.callbacks`` entry).

    The check costs nothing per spawn: the collector runs every few
    hundred allocations, and a spawn makes several.  It runs in whatever
    thread allocated, at any allocation, even inside a signal handler or
    df_gmr's own code: the sweep takes no lock that code could hold
    (``_hold_weakly``'s is taken only in a sweep or the fork hook, which
    mark their thread ``_busy``) and is skipped in a busy thread.  A
    service that disables the collector still has ``spawn_n``'s check,
    and its greenthreads that end leave at their exit; one that never
    runs stays until a hub is made (garbage in a reference cycle, which
    such a service never frees anyway).
    """
    if phase == "stop" and len(_alive) >= _sweep_at:
        _sweep_quietly()


def newest_hubs(known: list[tuple[Any, int]]) -> dict[int, Any]:
    """Map each thread ident to its newest hub of ``(hub, ident)`` pairs
    in registration order: the one its thread uses (the others were
    replaced).  Ident 0 (a heap scan could not tell) is left out."""
    return {ident: hub for hub, ident in known if ident}


def _live_hub_greenlets() -> set[int]:
    """Return the ids of the greenlets of each live thread's newest hub."""
    running = sys._current_frames()
    return {id(getattr(hub, "greenlet", None)) for ident, hub in
            newest_hubs(list(_hubs.items())).items() if ident in running}


def _hold_weakly(added: list[tuple[weakref.ref[Any], Any]]) -> None:
    """Drop the weak entries whose greenlet is gone, then add ``added``."""
    with _weak_lock:  # two threads' sweeps must not lose each other's
        _weak[:] = [(reference, site) for reference, site in _weak
                    if reference() is not None] + added


def _references_when_only_ours() -> int:
    # What sys.getrefcount says, in _sweep's loop, of a greenlet that only
    # the registry holds: the dict's key, the list of keys, the loop's
    # variable, the call's argument.
    probe = object()
    keys = {probe: None}
    for candidate in list(keys):
        del probe
        return sys.getrefcount(candidate)
    return 0


_ONLY_OURS = _references_when_only_ours()


def _references_when_only_the_greenlets() -> int:
    # What sys.getrefcount says, in _sweep's loop, of a greenlet's run that
    # only the greenlet holds: its slot, the loop's variable, the argument.
    holder = types.SimpleNamespace(run=object())
    run = holder.run
    return sys.getrefcount(run)


_ONLY_THE_GREENLETS = _references_when_only_the_greenlets()


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
        # A new hub may replace one whose greenthreads never run now.
        _sweep_quietly()
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
    """Return the greenlet a hub timer's ``callback`` wakes, else None.

    Hub timers wake greenthreads through ``greenlet.switch`` and
    ``greenlet.throw``: the bound method's own owner; and a wait on a
    descriptor with a timeout (``eventlet.hubs.trampoline``, every green
    socket's) through its ``_timeout`` closure, which throws into the
    greenlet it closed over (``current``): that cell is read, nothing
    is called.
    """
    if type(callback) is types.FunctionType:
        code = callback.__code__
        if code.co_name != "_timeout" or "current" not in code.co_freevars \
                or f"{os.sep}eventlet{os.sep}" not in code.co_filename:
            return None
        cell = (callback.__closure__ or ())[
            code.co_freevars.index("current")]
        try:
            owner = cell.cell_contents
        except ValueError:  # an empty cell
            return None
    elif type(callback) in (types.MethodType, types.BuiltinMethodType):
        owner = callback.__self__
    else:
        return None
    greenlet = sys.modules.get("greenlet")
    greenlet_type = getattr(greenlet, "greenlet", None)
    if greenlet_type is None or not issubclass(type(owner), greenlet_type):
        return None
    return owner


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


def tracked_with_sites() -> dict[Any, tuple[Any, ...] | None]:
    """Return ``{greenlet: raw spawn site}`` for every live tracked greenlet.

    The raw site is the hook's tuple of codes and instruction offsets
    (``spawn_positions`` makes it ``(code, lineno, ...)``), or None when
    the greenlet predates set-up.  Without the registry: every greenlet
    of the last heap scan, without site.  One copy of the registry (a
    C call, atomic under the GIL: no Python code runs in it, greenlets
    hash by identity) and one pass dropping the dead: the sites are
    converted by whoever shows them, once per distinct site.  The copy is
    the registry's own shape, one dict: 100,000 greenthreads cost no
    tuple, list or id each (the report's peak memory, and its first-touch
    page faults).
    """
    if not installed():
        return dict.fromkeys(scanner.greenlets())
    if _weak:  # the seed's at least (set-up's main greenlet)
        # The seed's and a parent's greenlets first, as they came first;
        # then the registry, copied into that dict by one C call (atomic
        # under the GIL, as copy() is): one copy of 100,000 entries, not
        # two (time, and the report's peak memory).
        first = {green: site for green, site in
                 ((reference(), site) for reference, site in snapshot(
                     _weak.__iter__))
                 if green is not None}
        if isinstance(_alive, dict):
            found = first
            found.update(_alive)
        else:  # a _sites.Registry: the same, made at its size
            found = _alive.copy(first)  # type: ignore[call-arg]
    else:
        found = _alive.copy()
    for green in [green for green in found if green.dead]:
        del found[green]
    return found


def spawn_positions(raw: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """Return ``(code, lineno, ...)``, innermost first, from a raw site."""
    site = tuple(item for pair in callers.pairs(raw) for item in pair)
    return site or None


def tracked() -> list[Any]:
    """Return the registered greenlets that are still alive."""
    return list(tracked_with_sites())


def hubs() -> list[tuple[Any, int]]:
    """Return ``(hub, thread ident)`` for every known hub of the service.

    Hubs of df_gmr's own threads are left out (see the module docstring).
    Without the registry: the hubs of the last heap scan, with thread
    ident 0 where the scan could not tell (see ``scan_heap``).
    """
    if not installed():
        return scanner.hubs()
    own = set(map(id, snapshot(_own_hubs.__iter__)))
    return [(hub, ident) for hub, ident in snapshot(_hubs.items)
            if id(hub) not in own and not is_own_thread(ident)]
