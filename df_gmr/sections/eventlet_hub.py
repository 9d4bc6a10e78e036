"""Eventlet Hub: each hub's listeners, timers and whether it keeps up.

One entry per hub df_gmr knows (``greenlets.hubs()``: one per native
thread that ever ran eventlet), the main thread's first. For each: its
class, whether it is the live hub of its thread or a stale one (replaced,
or left over from before a fork), its running/stopping flags, what its
thread does right now, every file descriptor it watches (with what the fd
is, read from /proc and the socket itself, and the greenlet waiting on
it) and its timers: how many, how many canceled, the next ones due and
the overdue ones. Timers overdue by more than ``runtime.hubs.LATE_AFTER``
seconds mean something keeps the hub from running: a greenthread that
does not yield, or a blocking call that was not monkey-patched. The
report is built by a native thread of its own, so it comes out while the
hub is blocked.

Everything is read, nothing is called on the hub: no green call, no
socket object (eventlet's green socket would make the fd non-blocking).
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING
from typing import Any

from df_gmr import greenlets
from df_gmr import naming
from df_gmr import pools
from df_gmr import stacks
from df_gmr import watchers
from df_gmr.runtime.hubs import HubReading
from df_gmr.runtime.hubs import Timer
from df_gmr.sections import EVENTLET_NOT_LOADED
from df_gmr.sections import EVENTLET_NOT_USED
from df_gmr.sections import Section
from df_gmr.sections import not_available
from df_gmr.sections import wrap

if TYPE_CHECKING:
    from df_gmr.context import ReportContext
    from df_gmr.runtime import Snapshot

#: How many of the next due timers each hub lists.
NEXT_TIMERS = 10
#: Modules whose monkey patching the section reports.
PATCHED_MODULES = ("thread", "socket", "time")


def collect(context: ReportContext) -> dict[str, Any]:
    """Return every known hub with its listeners and timers."""
    if "eventlet.hubs" not in sys.modules:
        return not_available(EVENTLET_NOT_LOADED)
    patcher = sys.modules.get("eventlet.patcher")
    is_patched = getattr(patcher, "is_monkey_patched", None)
    monkey_patched = {
        name: bool(is_patched(name)) if is_patched else False
        for name in PATCHED_MODULES
    }
    runtime = context.runtime
    if not runtime.hubs():
        return not_available(EVENTLET_NOT_USED)
    entries = [_describe_hub(reading, runtime)
               for reading in runtime.hubs()]
    entries.sort(key=lambda entry: (not entry["main_thread"],
                                    entry["status"] != "live"))
    return {
        "available": True,
        "monkey_patched": monkey_patched,
        "hubs": entries,
    }


def _describe_hub(reading: HubReading, runtime: Snapshot
                  ) -> dict[str, Any]:
    hub = reading.hub
    hub_type = type(hub)
    green = getattr(hub, "greenlet", None)
    entry: dict[str, Any] = {
        "class": f"{hub_type.__module__}.{hub_type.__qualname__}",
        "thread": reading.thread,
        "main_thread": reading.thread == runtime.main_thread,
        "status": reading.status,
        "created_by_pid": pools.hub_pid(hub),
        # A stale hub's flag is a copy (from before fork, say): it does
        # not run here, whatever the flag says.
        "running": reading.status == "live" and bool(
            getattr(hub, "running", False)),
        "stopping": bool(getattr(hub, "stopping", False)),
        "greenlet": {"id": id(green) if green is not None else None,
                     "state": greenlets.state(green)},
        "activity": None,
        "running_greenlet": None,
        "running_at": None,
        "watchdog_beat_ago": _beat_ago(hub),
    }
    if reading.status == "live":
        # Its thread's stack now, of one moment (see Snapshot.steady_walk).
        frame, positions = runtime.steady_walk(reading.thread)
        entry.update(_activity(runtime, hub, green, frame, positions))
    entry["listeners"] = [{
        "mode": listener.mode,
        "fd": listener.fd,
        "fd_is": runtime.fds.describe(listener.fd),
        "greenlet": (id(listener.greenlet) if listener.greenlet is not None
                     else None),
        "secondary": listener.secondary,
        "spent": listener.spent,
    } for listener in reading.listeners]
    entry["timers"] = _timers(reading)
    return entry


def _beat_ago(hub: Any) -> float | None:
    """Return seconds since the watchdog's last heartbeat on this hub."""
    if getattr(hub, watchers.BEAT_PID_ATTR, None) != os.getpid():
        return None
    beat = getattr(hub, watchers.BEAT_ATTR, None)
    if not isinstance(beat, float):
        return None
    return round(time.monotonic() - beat, 3)


def _activity(runtime: Snapshot, hub: Any, green: Any, frame: Any,
              positions: stacks.StackKey) -> dict[str, Any]:
    """Say what the hub's thread does: wait, run the loop or a greenlet."""
    state = greenlets.state(green)
    found: dict[str, Any] = {}
    if state == "parked" and getattr(hub, "running", False):
        running = _running_greenlet(runtime, green)
        found["running_greenlet"] = running
        found["activity"] = (
            "the main greenlet is running" if running is not None and
            running == id(_root(green)) else "a greenthread is running")
        keys, _ = stacks.without_own_frames(stacks.lined(positions))
        if keys:
            found["running_at"] = stacks.describe(keys[-1:])[0]
    elif state == "running":
        code = getattr(frame, "f_code", None)
        hubs_dir = os.sep + os.path.join("eventlet", "hubs") + os.sep
        if code is not None and code.co_name in ("wait", "do_poll") and \
                hubs_dir in code.co_filename:
            found["activity"] = "waiting for events"
        else:
            found["activity"] = "running its loop"
    else:
        found["activity"] = "not running"
    del frame
    return found


def _running_greenlet(runtime: Snapshot, hub_greenlet: Any) -> int | None:
    """Return the id of the one greenlet running in the hub's thread."""
    root = _root(hub_greenlet)
    candidates = {id(root): root}
    for green in runtime.tracked_with_sites():
        # A parked greenlet has a frame: most of 100,000 are skipped here,
        # with one attribute read each.
        if green.gr_frame is None:
            candidates.setdefault(id(green), green)
    running = [
        ident for ident, green in candidates.items()
        if green is not hub_greenlet and greenlets.state(green) == "running"
        and _root(green) is root
    ]
    candidates.clear()
    return running[0] if len(running) == 1 else None


def _root(green: Any) -> Any:
    # The top of a greenlet's parent chain is its thread's main greenlet.
    for _ in range(1000):
        parent = getattr(green, "parent", None)
        if parent is None:
            return green
        green = parent
    return green  # pragma: no cover - a cycle greenlet refuses anyway


def _timers(reading: HubReading) -> dict[str, Any]:
    pending = reading.timers  # soonest first
    # A stale hub never runs again: its timers are never due, none is
    # overdue (it would say something waits for them to fire), and its
    # lateness is no sign of a block.
    stale = reading.status.startswith("stale")
    overdue = [] if stale else reading.overdue()
    return {
        "count": reading.scheduled,
        "pending": len(pending),
        "canceled": reading.scheduled - len(pending),
        "overdue": len(overdue),
        "max_overdue": round(-overdue[0].due_in, 3) if overdue else 0.0,
        "late": reading.status == "live" and reading.late(),
        "next": [_describe_timer(timer, stale)
                 for timer in pending[:NEXT_TIMERS]],
    }


def _describe_timer(timer: Timer, stale: bool = False) -> dict[str, Any]:
    green = timer.greenlet
    entry: dict[str, Any] = {
        "due_in": None if stale else timer.due_in,
        "seconds": timer.seconds,
        "callback": naming.callable_name(timer.callback)
        if timer.callback is not None else None,
        "greenlet": id(green) if green is not None else None,
    }
    if green is not None and greenlets.state(green) == "not started":
        entry["starts"] = _start_target(green, timer.args)
    return entry


def _start_target(green: Any, args: tuple[Any, ...]) -> str | None:
    # eventlet.spawn schedules gt.switch(func, args, kwargs) into
    # GreenThread.main; spawn_n and raw greenlets run ``green.run``.
    run = getattr(green, "run", None)
    name = naming.callable_name(run) if run is not None else None
    if name is not None and name.endswith(".main") and args and \
            callable(args[0]):
        return naming.callable_name(args[0])
    return name


def format_lines(data: dict[str, Any]) -> list[str]:
    """Render one headline per hub, its listeners and timers indented."""
    patched = ", ".join(
        f"{name} {'yes' if value else 'no'}"
        for name, value in data["monkey_patched"].items())
    hubs = data["hubs"]
    live = sum(1 for hub in hubs if hub["status"] == "live")
    known = f"{len(hubs)} hub" + ("" if len(hubs) == 1 else "s")
    lines = [f"monkey-patched: {patched}", f"{known} known, {live} live"]
    if not hubs:
        lines.append("(no hub yet: eventlet has not run in any thread, or "
                     "df_gmr's greenlet tracking is not installed)")
    for hub in hubs:
        lines.append("")
        lines.extend(_hub_lines(hub))
    return lines


def _hub_lines(hub: dict[str, Any]) -> list[str]:
    lines = wrap(f"Hub {hub['class']}: {hub['status']}")
    thread = f"thread {hub['thread']}" if hub["thread"] else "thread unknown"
    if hub["main_thread"]:
        thread += " (main thread)"
    lines.extend(wrap(
        f"{thread}; running {_yes(hub['running'])}, stopping "
        f"{_yes(hub['stopping'])}", "  "))
    green = hub["greenlet"]
    lines.append(f"  hub greenlet {green['id']} {green['state']}")
    if hub.get("watchdog_beat_ago") is not None:
        lines.append(f"  watchdog heartbeat {hub['watchdog_beat_ago']:.3f}s "
                     "ago")
    if hub["activity"]:
        now = f"now: {hub['activity']}"
        if hub["running_greenlet"] is not None:
            now += f" (greenlet {hub['running_greenlet']})"
        lines.extend(wrap(now, "  "))
        where = hub.get("running_at")
        if where:
            lines.extend(wrap(f"at {where['file']}:{where['line']} in "
                               f"{where['function']}", "    "))
    listeners = hub["listeners"]
    lines.append(f"  listeners: {len(listeners)}")
    for listener in listeners:
        head = f"{listener['mode']} fd {listener['fd']}"
        if listener["greenlet"] is not None:
            head += f", greenlet {listener['greenlet']}"
        if listener["secondary"]:
            head += ", secondary"
        if listener["spent"]:
            head += ", spent"
        lines.extend(wrap(head, "    "))
        lines.extend(wrap(listener["fd_is"], "      "))
    stale = hub["status"].startswith("stale")
    if stale and (listeners or hub["timers"]["pending"]):
        lines.extend(wrap(
            "this hub never runs again: its timers never fire and its "
            "descriptors are never served (what waits here is stranded)",
            "  "))
    lines.extend(_timer_lines(hub["timers"], stale))
    return lines


def _timer_lines(timers: dict[str, Any], stale: bool = False
                 ) -> list[str]:
    summary = (f"timers: {timers['count']} scheduled, {timers['pending']} "
               f"pending, {timers['canceled']} canceled")
    if timers["overdue"] and not stale:
        summary += (f", {timers['overdue']} overdue (by up to "
                    f"{timers['max_overdue']:.3f}s)")
    lines = wrap(summary, "  ")
    if timers["late"] and not stale:
        lines.extend(wrap(
            f"LATE: timers overdue by up to {timers['max_overdue']:.3f}s: "
            "something blocks this hub (a greenthread that does not "
            "yield, or a blocking call)", "    "))
    if timers["next"]:
        shown = len(timers["next"])
        label = "never due" if stale else "next due"
        lines.append(f"    {label} ({shown} of {timers['pending']}):")
    for timer in timers["next"]:
        due_in = timer["due_in"]
        if stale or due_in is None:
            when = "never"
        else:
            when = (f"overdue {-due_in:.3f}s" if due_in < 0
                    else f"in {due_in:.3f}s")
        lines.extend(wrap(f"{when:>16}  {_timer_action(timer)}", "      ",
                           "                        "))
    return lines


def _timer_action(timer: dict[str, Any]) -> str:
    green = timer.get("greenlet")
    callback = timer.get("callback") or "(canceled)"
    if green is None:
        return callback
    if timer.get("starts"):
        return f"start {timer['starts']} in greenlet {green}"
    if callback.endswith((".throw", "trampoline.<locals>._timeout")):
        return f"time out greenlet {green}"  # (a descriptor's wait's)
    if callback.endswith(".switch"):
        return f"wake greenlet {green}"
    return f"{callback} of greenlet {green}"


def _yes(value: bool) -> str:
    return "yes" if value else "no"


SECTION = Section("eventlet_hub", "Eventlet Hub", collect, format_lines)
