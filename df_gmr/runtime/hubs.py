"""Each eventlet hub's timers and listeners, read once per report.

Green Threads (who waits on which timer or descriptor), Eventlet Hub (the
hubs themselves) and Green Pools (when a looping call runs next) read the
same ``HubReading``: one copy of each hub's timer heap and listener
buckets, taken with the same snapshot rule (the hub keeps running while
the report is built), one clock reading per hub.

Everything is read, nothing is called on the hub but its clock: no green
call, no socket object.
"""

from __future__ import annotations

import dataclasses
import operator
import os
import sys
from types import BuiltinMethodType
from typing import Any

from df_gmr import greenlets
from df_gmr import pools

#: A timer's sort key.
_DUE_IN = operator.attrgetter("due_in")
#: Timers overdue by more than this many seconds mean a blocked hub.
LATE_AFTER = 0.5


@dataclasses.dataclass(slots=True)  # one per pending timer: 25,000+
class Timer:
    """One pending timer of a hub: when it is due and what it calls."""

    due_in: float
    seconds: float | None
    callback: Any  # the bound method or function (named, never called)
    args: tuple[Any, ...]
    greenlet: Any  # the greenlet it wakes or starts, if any


@dataclasses.dataclass(slots=True)
class Listener:
    """One descriptor a hub watches, and the greenlet waiting on it."""

    fd: int
    mode: str
    greenlet: Any
    secondary: bool
    spent: bool


@dataclasses.dataclass
class HubReading:
    """One hub as read for this report."""

    hub: Any
    thread: int
    status: str  # live, or stale and why
    timers: list[Timer]  # pending ones, soonest first
    scheduled: int  # pending and canceled
    listeners: list[Listener]

    def overdue(self) -> list[Timer]:
        """Return the pending timers already past due."""
        return [timer for timer in self.timers if timer.due_in < 0]

    def late(self) -> bool:
        """Say whether timers are overdue enough to mean a blocked hub."""
        overdue = self.overdue()
        return bool(overdue) and -overdue[0].due_in > LATE_AFTER


#: Where a greenlet waits when its timer or descriptor is in a stale hub,
#: by the hub's status: a stale hub never runs again, nor what waits in it.
STALE_HUBS = {
    "stale (from before fork)": "a hub from before fork",
    "stale (replaced by a newer hub)": "a hub that was replaced",
    "stale (its thread is gone)": "a hub whose thread is gone",
}
#: The status of a hub found by a heap scan whose thread is not known.
THREAD_UNKNOWN = ("thread unknown (found by a heap scan: df_gmr was not set "
                  "up)")


def read(live_threads: set[int]) -> list[HubReading]:
    """Read every hub df_gmr knows; ``live_threads``: idents that run.

    The first reading of every report: in a process where df_gmr was not
    set up (no registry), the one heap scan of the report happens here
    (see ``greenlets.scan_heap``).
    """
    if not greenlets.installed():
        greenlets.scan_heap()
    known = greenlets.hubs()
    newest = greenlets.newest_hubs(known)
    return [_read_hub(hub, ident, _status(hub, ident, newest, live_threads))
            for hub, ident in known]


def _status(hub: Any, ident: int, newest: dict[int, Any],
            live_threads: set[int]) -> str:
    if not ident:
        return THREAD_UNKNOWN
    if newest.get(ident) is not hub:
        pid = pools.hub_pid(hub)
        if pid is not None and pid != os.getpid():
            return "stale (from before fork)"
        return "stale (replaced by a newer hub)"
    if ident not in live_threads:
        return "stale (its thread is gone)"
    return "live"


def _read_hub(hub: Any, ident: int, status: str) -> HubReading:
    now = _hub_now(hub)
    entries = (greenlets.snapshot(lambda: getattr(hub, "timers", ())) +
               greenlets.snapshot(lambda: getattr(hub, "next_timers", ())))
    timers = []
    bound_greenlet = greenlets.bound_greenlet
    greenlet_module = sys.modules.get("greenlet")
    greenlet_type = getattr(greenlet_module, "greenlet", None)
    numbers = (int, float)
    timer_module = sys.modules.get("eventlet.hubs.timer")
    plain_timer = getattr(timer_module, "Timer", None)
    local_timer = getattr(timer_module, "LocalTimer", None)
    for due, timer in entries:
        # One timer per sleeping greenthread (25,000 and more).  eventlet's
        # own two kinds: their plain attributes read as they are (reading
        # their __dict__ would make each timer a dict of its own, kept for
        # good); another kind: its __dict__, with dict lookups (a getattr
        # that misses raises inside).
        kind = type(timer)
        if kind is plain_timer or kind is local_timer:
            try:
                if timer.called:
                    continue
                if kind is local_timer:  # a dead greenlet's: never
                    green = timer.greenlet
                    if green is None or green.dead:
                        continue
                call = timer.tpl
                seconds = timer.seconds
            except AttributeError:  # fired meanwhile (its tpl deleted)
                continue
        else:
            state = getattr(timer, "__dict__", None)
            if type(state) is not dict:  # no __dict__: attributes
                if not _pending(timer):
                    continue
                call = getattr(timer, "tpl", None)
                seconds = getattr(timer, "seconds", None)
            else:
                if state.get("called", False):
                    continue
                if "greenlet" in state:  # a LocalTimer's dead greenlet
                    green = state["greenlet"]
                    if green is None or green.dead:
                        continue
                call = state.get("tpl")
                seconds = state.get("seconds")
        # The call it makes: ``tpl``, deleted when it fired or was
        # canceled.
        if type(call) is tuple and call:
            callback = call[0]
            args = call[1] if len(call) > 1 else ()
            if type(args) is not tuple:
                args = ()
        else:
            callback, args = None, ()
        # bound_greenlet's common case inline: a sleeper's timer calls
        # its greenlet's switch (a builtin method of the greenlet).
        if type(callback) is BuiltinMethodType and greenlet_type is not None \
                and issubclass(type(owner := callback.__self__),
                               greenlet_type):
            green = owner
        else:
            green = bound_greenlet(callback)
        # Positional: keywords cost a dict per call (due_in, seconds,
        # callback, args, greenlet).
        timers.append(Timer(
            round(due - now, 3) + 0.0,  # + 0.0: never "-0.0"
            seconds if type(seconds) in numbers else None,
            callback, args, green))
    timers.sort(key=_DUE_IN)  # C-level key: 25,000 timers and more
    return HubReading(hub=hub, thread=ident, status=status, timers=timers,
                      scheduled=len(entries), listeners=_listeners(hub))


def _hub_now(hub: Any) -> float:
    clock = getattr(hub, "clock", None)
    try:
        return float(clock()) if callable(clock) else 0.0
    except Exception:
        return 0.0


def _pending(timer: Any) -> bool:
    if getattr(timer, "called", False):
        return False
    # A LocalTimer whose greenlet died will never fire.
    if "greenlet" in getattr(timer, "__dict__", {}):
        green = timer.__dict__["greenlet"]
        return green is not None and not green.dead
    return True


def _listeners(hub: Any) -> list[Listener]:
    found = []
    for attribute, secondary in (("listeners", False),
                                 ("secondaries", True)):
        buckets = getattr(hub, attribute, None) or {}
        for mode, bucket in greenlets.snapshot(buckets.items):
            for fileno, value in greenlets.snapshot(bucket.items):
                for listener in list(value if secondary else [value]):
                    found.append(Listener(
                        fd=fileno, mode=mode,
                        greenlet=getattr(listener, "greenlet", None),
                        secondary=secondary,
                        spent=bool(getattr(listener, "spent", False))))
    found.sort(key=lambda item: (item.fd, item.mode, item.secondary))
    return found
