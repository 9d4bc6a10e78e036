"""Eventlet Hub: each hub's listeners, timers and whether it keeps up.

One entry per hub df_gmr knows (``greenlets.hubs()``: one per native
thread that ever ran eventlet), the main thread's first.  For each: its
class, whether it is the live hub of its thread or a stale one (replaced,
or left over from before a fork), its running/stopping flags, what its
thread does right now, every file descriptor it watches (with what the fd
is, read from /proc and psutil, and the greenlet waiting on it) and its
timers: how many, how many canceled, the next ones due and the overdue
ones.  Timers overdue by more than ``LATE_AFTER`` seconds mean something
keeps the hub from running: a greenthread that does not yield, or a
blocking call that was not monkey-patched.  The report is built by a
native thread of its own, so it comes out while the hub is blocked.

Everything is read, nothing is called on the hub: no green call, no
socket object (eventlet's green socket would make the fd non-blocking).
"""

from __future__ import annotations

import heapq
import os
import sys
import textwrap
import time
from typing import TYPE_CHECKING
from typing import Any

from df_gmr import greenlets
from df_gmr import pools
from df_gmr import redact
from df_gmr import stacks
from df_gmr import trigger
from df_gmr import watchers
from df_gmr.sections import Section
from df_gmr.sections import green_threads

if TYPE_CHECKING:
    from df_gmr.report import ReportContext

#: How many of the next due timers each hub lists.
NEXT_TIMERS = 10
#: Timers overdue by more than this many seconds mean a blocked hub.
LATE_AFTER = 0.5
#: Modules whose monkey patching the section reports.
PATCHED_MODULES = ("thread", "socket", "time")
WIDTH = 78

NOT_LOADED = "eventlet is not loaded in this process"


def collect(context: ReportContext) -> dict[str, Any]:
    """Return every known hub with its listeners and timers."""
    if "eventlet.hubs" not in sys.modules:
        return {"available": False, "reason": NOT_LOADED}
    patcher = sys.modules.get("eventlet.patcher")
    is_patched = getattr(patcher, "is_monkey_patched", None)
    monkey_patched = {
        name: bool(is_patched(name)) if is_patched else False
        for name in PATCHED_MODULES
    }
    known = greenlets.hubs()
    main_ident = trigger.main_thread_ident()
    frames = sys._current_frames()
    newest: dict[int, Any] = {}
    for hub, ident in known:
        newest[ident] = hub  # registration order: the last one is live
    sockets: dict[int, str] | None = None
    if any(_has_listeners(hub) for hub, _ in known):
        sockets = green_threads.socket_descriptions()
    entries = []
    for hub, ident in known:
        status = _status(hub, ident, newest, frames)
        entries.append(_describe_hub(hub, ident, status, main_ident,
                                     frames, sockets or {}))
    del frames
    entries.sort(key=lambda entry: (not entry["main_thread"],
                                    entry["status"] != "live"))
    return {
        "available": True,
        "monkey_patched": monkey_patched,
        "hubs": entries,
    }


def _has_listeners(hub: Any) -> bool:
    listeners = getattr(hub, "listeners", None) or {}
    return any(bool(bucket) for bucket in list(listeners.values()))


def _status(hub: Any, ident: int, newest: dict[int, Any],
            frames: dict[int, Any]) -> str:
    if newest.get(ident) is not hub:
        pid = pools.hub_pid(hub)
        if pid is not None and pid != os.getpid():
            return "stale (from before fork)"
        return "stale (replaced by a newer hub)"
    if ident not in frames:
        return "stale (its thread is gone)"
    return "live"


def _describe_hub(hub: Any, ident: int, status: str,
                  main_ident: int | None, frames: dict[int, Any],
                  sockets: dict[int, str]) -> dict[str, Any]:
    hub_type = type(hub)
    green = getattr(hub, "greenlet", None)
    entry: dict[str, Any] = {
        "class": f"{hub_type.__module__}.{hub_type.__qualname__}",
        "thread": ident,
        "main_thread": ident == main_ident,
        "status": status,
        "created_by_pid": pools.hub_pid(hub),
        "running": bool(getattr(hub, "running", False)),
        "stopping": bool(getattr(hub, "stopping", False)),
        "greenlet": {"id": id(green) if green is not None else None,
                     "state": greenlets.state(green)},
        "activity": None,
        "running_greenlet": None,
        "running_at": None,
        "watchdog_beat_ago": _beat_ago(hub),
    }
    if status == "live":
        entry.update(_activity(hub, green, frames.get(ident)))
    entry["listeners"] = _listeners(hub, sockets)
    entry["timers"] = _timers(hub)
    return entry


def _beat_ago(hub: Any) -> float | None:
    """Return seconds since the watchdog's last heartbeat on this hub."""
    if getattr(hub, watchers.BEAT_PID_ATTR, None) != os.getpid():
        return None
    beat = getattr(hub, watchers.BEAT_ATTR, None)
    if not isinstance(beat, float):
        return None
    return round(time.monotonic() - beat, 3)


def _activity(hub: Any, green: Any, frame: Any) -> dict[str, Any]:
    """Say what the hub's thread does: wait, run the loop or a greenlet."""
    state = greenlets.state(green)
    found: dict[str, Any] = {}
    if state == "parked" and getattr(hub, "running", False):
        running = _running_greenlet(green)
        found["running_greenlet"] = running
        found["activity"] = (
            "the main greenlet is running" if running is not None and
            running == id(_root(green)) else "a greenthread is running")
        keys, _ = stacks.without_own_frames(stacks.frame_keys(frame))
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


def _running_greenlet(hub_greenlet: Any) -> int | None:
    """Return the id of the one greenlet running in the hub's thread."""
    root = _root(hub_greenlet)
    candidates = {id(root): root}
    for green in greenlets.tracked():
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


def _listeners(hub: Any, sockets: dict[int, str]) -> list[dict[str, Any]]:
    found = []
    sources = (("listeners", False), ("secondaries", True))
    for attribute, secondary in sources:
        buckets = getattr(hub, attribute, None) or {}
        for mode, bucket in greenlets.snapshot(buckets.items):
            for fileno, value in greenlets.snapshot(bucket.items):
                listeners = value if secondary else [value]
                for listener in list(listeners):
                    green = getattr(listener, "greenlet", None)
                    found.append({
                        "mode": mode,
                        "fd": fileno,
                        "fd_is": green_threads.describe_fd(fileno, sockets),
                        "greenlet": id(green) if green is not None
                        else None,
                        "secondary": secondary,
                        "spent": bool(getattr(listener, "spent", False)),
                    })
    found.sort(key=lambda item: (item["fd"], item["mode"],
                                 item["secondary"]))
    return found


def _pending(timer: Any) -> bool:
    if getattr(timer, "called", False):
        return False
    # A LocalTimer whose greenlet died will never fire.
    if "greenlet" in getattr(timer, "__dict__", {}):
        green = timer.__dict__["greenlet"]
        return green is not None and not green.dead
    return True


def _timer_entries(hub: Any) -> list[tuple[float, Any]]:
    return (greenlets.snapshot(lambda: getattr(hub, "timers", ())) +
            greenlets.snapshot(lambda: getattr(hub, "next_timers", ())))


def _hub_now(hub: Any) -> float:
    clock = getattr(hub, "clock", None)
    try:
        return float(clock()) if callable(clock) else 0.0
    except Exception:
        return 0.0


def _timers(hub: Any) -> dict[str, Any]:
    now = _hub_now(hub)
    entries = _timer_entries(hub)
    pending = [(due, timer) for due, timer in entries if _pending(timer)]
    overdue = [due for due, _ in pending if due < now]
    soonest = heapq.nsmallest(NEXT_TIMERS, pending, key=lambda item: item[0])
    return {
        "count": len(entries),
        "pending": len(pending),
        "canceled": len(entries) - len(pending),
        "overdue": len(overdue),
        "max_overdue": round(now - min(overdue), 3) if overdue else 0.0,
        "late": bool(overdue) and now - min(overdue) > LATE_AFTER,
        "next": [_describe_timer(due, timer, now) for due, timer in soonest],
    }


def _describe_timer(due: float, timer: Any, now: float) -> dict[str, Any]:
    callback, args = _timer_call(timer)
    green = greenlets.bound_greenlet(callback)
    entry: dict[str, Any] = {
        "due_in": round(due - now, 3),
        "seconds": _number(getattr(timer, "seconds", None)),
        "callback": redact.callable_name(callback) if callback is not None
        else None,
        "greenlet": id(green) if green is not None else None,
    }
    if green is not None and greenlets.state(green) == "not started":
        entry["starts"] = _start_target(green, args)
    return entry


def _timer_call(timer: Any) -> tuple[Any, tuple[Any, ...]]:
    call = getattr(timer, "tpl", None)  # deleted when fired or canceled
    if type(call) is not tuple or not call:
        return None, ()
    callback, args = call[0], call[1] if len(call) > 1 else ()
    return callback, args if type(args) is tuple else ()


def _start_target(green: Any, args: tuple[Any, ...]) -> str | None:
    # eventlet.spawn schedules gt.switch(func, args, kwargs) into
    # GreenThread.main; spawn_n and raw greenlets run ``green.run``.
    run = getattr(green, "run", None)
    name = redact.callable_name(run) if run is not None else None
    if name is not None and name.endswith(".main") and args and \
            callable(args[0]):
        return redact.callable_name(args[0])
    return name


def _number(value: Any) -> float | None:
    if type(value) in (int, float):
        return value  # type: ignore[no-any-return]
    return None


def greenlet_wakeups() -> dict[int, float]:
    """Map greenlet ids to seconds until a pending hub timer wakes them."""
    wakeups: dict[int, float] = {}
    for hub, _ in greenlets.hubs():
        now = _hub_now(hub)
        for due, timer in _timer_entries(hub):
            if not _pending(timer):
                continue
            callback, _ = _timer_call(timer)
            owner = greenlets.bound_greenlet(callback)
            if owner is None:
                continue
            key = id(owner)
            due_in = round(due - now, 3)
            if key not in wakeups or due_in < wakeups[key]:
                wakeups[key] = due_in
    return wakeups


def format_lines(data: dict[str, Any]) -> list[str]:
    """Render one headline per hub, its listeners and timers indented."""
    if not data.get("available", True):
        return [f"not available: {data['reason']}"]
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
    thread = f"thread {hub['thread']}"
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
    lines.extend(_timer_lines(hub["timers"]))
    return lines


def _timer_lines(timers: dict[str, Any]) -> list[str]:
    summary = (f"timers: {timers['count']} scheduled, {timers['pending']} "
               f"pending, {timers['canceled']} canceled")
    if timers["overdue"]:
        summary += (f", {timers['overdue']} overdue (by up to "
                    f"{timers['max_overdue']:.3f}s)")
    lines = wrap(summary, "  ")
    if timers["late"]:
        lines.extend(wrap(
            f"LATE: timers overdue by up to {timers['max_overdue']:.3f}s: "
            "something blocks this hub (a greenthread that does not "
            "yield, or a blocking call)", "    "))
    if timers["next"]:
        shown = len(timers["next"])
        lines.append(f"    next due ({shown} of {timers['pending']}):")
    for timer in timers["next"]:
        due_in = timer["due_in"]
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
    if callback.endswith(".throw"):
        return f"time out greenlet {green}"
    if callback.endswith(".switch"):
        return f"wake greenlet {green}"
    return f"{callback} of greenlet {green}"


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def wrap(text: str, indent: str = "", more: str | None = None
         ) -> list[str]:
    """Return ``text`` as lines of at most 78 columns, indented."""
    return textwrap.wrap(
        text, width=WIDTH, initial_indent=indent,
        subsequent_indent=more if more is not None else indent + "  ",
        break_on_hyphens=False) or [indent]


SECTION = Section("eventlet_hub", "Eventlet Hub", collect, format_lines)
