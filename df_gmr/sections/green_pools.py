"""Green Pools: eventlet pools, oslo.service thread groups, timers, tpool.

Lists every eventlet ``GreenPool`` and ``GreenPile`` (size, running, free,
and how many greenthreads wait for a slot, with their ids), futurist's
``GreenThreadPoolExecutor`` (its pool and backlog), oslo.service's
eventlet ``ThreadGroup`` (its pool, threads and timers) and every looping
call (function, interval, whether it sleeps or runs, when it runs next),
plus eventlet's tpool of native threads (size, busy, queued requests).

The objects come from ``df_gmr.pools``' weak registries, filled by
constructor hooks (never from a heap scan); objects created while those
hooks were not installed are not listed, and the section says so.
Everything is read in place: no green call, no lock.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING
from typing import Any

from df_gmr import greenlets
from df_gmr import naming
from df_gmr import pools
from df_gmr import stacks
from df_gmr.runtime.hubs import STALE_HUBS
from df_gmr.sections import EVENTLET_NOT_LOADED
from df_gmr.sections import EVENTLET_NOT_USED
from df_gmr.sections import Section
from df_gmr.sections import not_available
from df_gmr.sections import schedule_text
from df_gmr.sections import wrap

if TYPE_CHECKING:
    from df_gmr.context import ReportContext

#: Greenlet ids kept per pool in the JSON (running and waiting each).
MAX_IDS = 1000
#: Greenlet ids shown per line in the text.
TEXT_IDS = 6

THREADING_BACKEND = (
    "oslo.service runs its threading backend: its thread groups and "
    "looping calls are native threads (see Threads)")


def collect(context: ReportContext) -> dict[str, Any]:
    """Return every tracked pool, pile, executor, group and looping call."""
    backend = _oslo_service_backend()
    if "eventlet" not in sys.modules:
        reason = EVENTLET_NOT_LOADED
        if backend == "threading":
            reason += "; " + THREADING_BACKEND
        return not_available(reason, oslo_service_backend=backend)
    notes = []
    if not pools.installed():
        notes.append("df_gmr's pool tracking is not installed "
                     "(df_gmr.pools.install()): pools, thread groups and "
                     "looping calls are not listed")
    if backend == "threading":
        notes.append(THREADING_BACKEND)
    found = pools.tracked()
    tpool = _tpool()
    if not any(found.values()) and not tpool.get("started") and \
            not context.runtime.hubs():
        return not_available(
            EVENTLET_NOT_USED + ("; " + THREADING_BACKEND
                                 if backend == "threading" else ""),
            oslo_service_backend=backend)
    wrappers = stacks.wrapper_prefixes()
    wakeups = _wakeups(context.runtime.hubs())
    pool_entries: dict[int, dict[str, Any]] = {}

    def pool_id(pool: Any) -> int | None:
        if pool is None:
            return None
        if id(pool) not in pool_entries:
            pool_entries[id(pool)] = _pool(pool, wrappers)
        return id(pool)

    for pool in found["pools"]:
        pool_id(pool)
    groups = [_thread_group(group, pool_id, wrappers)
              for group in found["thread_groups"]]
    in_group = {call: group["id"] for group in groups
                for call in group["looping_calls"]}
    data: dict[str, Any] = {
        "available": True,
        "tracking": pools.installed(),
        "oslo_service_backend": backend,
        "notes": notes,
        "thread_groups": groups,
        "looping_calls": [
            _looping_call(call, in_group.get(id(call)), wakeups, wrappers)
            for call in found["looping_calls"]],
        "executors": [_executor(executor, pool_id, wrappers)
                      for executor in found["executors"]],
        "piles": [_pile(pile, pool_id, wrappers)
                  for pile in found["piles"]],
        "pools": sorted(pool_entries.values(), key=lambda pool: pool["id"]),
        "tpool": tpool,
    }
    for kind in ("thread_groups", "looping_calls", "executors", "piles"):
        data[kind].sort(key=lambda entry: entry["id"])
    return data


def _oslo_service_backend() -> str | None:
    backend = sys.modules.get("oslo_service.backend")
    chosen = getattr(backend, "_cached_backend_type", None)
    return getattr(chosen, "value", None)


def _created_at(instance: Any, wrappers: dict[str, str]
                ) -> dict[str, Any] | None:
    """The first recorded creator outside the wrappers, or why unknown.

    None: nothing recorded (created before df_gmr was set up).
    """
    positions = pools.creation_site(instance)
    if not positions:
        return None
    return stacks.origin(positions, wrappers, "created")


def _wakeups(readings: list[Any]) -> dict[int, dict[str, Any]]:
    """Map greenlets to their soonest hub timer: due, length, stranded."""
    found: dict[int, dict[str, Any]] = {}
    for reading in readings:
        stale = STALE_HUBS.get(reading.status)
        for timer in reading.timers:  # soonest first
            if timer.greenlet is None or id(timer.greenlet) in found:
                continue
            found[id(timer.greenlet)] = {
                "due_in": timer.due_in, "seconds": timer.seconds,
                "stranded": (f"its timer is in {stale}, it will never run"
                             if stale else None)}
    return found


def _type_name(instance: Any) -> str:
    kind = type(instance)
    return f"{kind.__module__}.{kind.__qualname__}"


def _ids(greens: list[Any]) -> list[int]:
    return [id(green) for green in greens[:MAX_IDS]]


def _pool(pool: Any, wrappers: dict[str, str]) -> dict[str, Any]:
    semaphore = getattr(pool, "sem", None)
    counter = getattr(semaphore, "counter", 0)
    waiters = greenlets.snapshot(lambda: getattr(semaphore, "_waiters", ()))
    running = greenlets.snapshot(
        lambda: getattr(pool, "coroutines_running", ()))
    return {
        "id": id(pool),
        "type": _type_name(pool),
        "size": getattr(pool, "size", None),
        "running": len(running),
        "free": counter,
        # As GreenPool.waiting(): greenthreads blocked in spawn().
        "waiting": max(0, len(waiters) - counter),
        "running_ids": _ids(running),
        "waiting_ids": _ids(waiters),
        "created_at": _created_at(pool, wrappers),
    }


def _pile(pile: Any, pool_id: Any, wrappers: dict[str, str]
          ) -> dict[str, Any]:
    queue = getattr(getattr(pile, "waiters", None), "queue", ())
    spawned = greenlets.snapshot(lambda: queue)
    return {
        "id": id(pile),
        "type": _type_name(pile),
        "pool": pool_id(getattr(pile, "pool", None)),
        "pending": getattr(pile, "counter", 0),
        "unfinished": sum(1 for green in spawned
                          if not getattr(green, "dead", True)),
        "created_at": _created_at(pile, wrappers),
    }


def _executor(executor: Any, pool_id: Any, wrappers: dict[str, str]
              ) -> dict[str, Any]:
    backlog = getattr(getattr(executor, "_delayed_work", None), "queue", ())
    gatherer = getattr(executor, "_gatherer", None)
    stats = getattr(gatherer, "_stats", None)
    return {
        "id": id(executor),
        "type": _type_name(executor),
        "max_workers": getattr(executor, "_max_workers", None),
        "pool": pool_id(getattr(executor, "_pool", None)),
        "queued": len(backlog),
        "shut_down": bool(getattr(executor, "_shutdown", False)),
        "statistics": {
            name: getattr(stats, "_" + name, None)
            for name in ("executed", "failures", "cancelled", "runtime")
        },
        "created_at": _created_at(executor, wrappers),
    }


def _thread_group(group: Any, pool_id: Any, wrappers: dict[str, str]
                  ) -> dict[str, Any]:
    threads = greenlets.snapshot(lambda: getattr(group, "threads", ()))
    greens = [getattr(thread, "thread", None) for thread in threads]
    timers = greenlets.snapshot(lambda: getattr(group, "timers", ()))
    return {
        "id": id(group),
        "type": _type_name(group),
        "pool": pool_id(getattr(group, "pool", None)),
        "pool_size": getattr(group, "thread_pool_size", None),
        "threads": len(threads),
        "alive": sum(1 for green in greens
                     if green is not None and not green.dead),
        "thread_ids": _ids([green for green in greens if green is not None]),
        "looping_calls": [id(timer) for timer in timers],
        "created_at": _created_at(group, wrappers),
    }


def _looping_call(call: Any, group: int | None,
                  wakeups: dict[int, dict[str, Any]],
                  wrappers: dict[str, str]) -> dict[str, Any]:
    green = getattr(call, "_thread", None)
    schedule = pools.schedule(call)
    state = _looping_state(call, green)
    next_run_in = sleeping_for = stranded = None
    wakeup = wakeups.get(id(green)) if green is not None else None
    if wakeup is not None and wakeup["stranded"]:
        stranded = wakeup["stranded"]
    elif state == "sleeping" and wakeup is not None:
        next_run_in = wakeup["due_in"]
        seconds = wakeup["seconds"]
        sleeping_for = round(seconds, 3) if seconds is not None else None
    function = getattr(call, "f", None)
    return {
        "id": id(call),
        "type": _type_name(call),
        "function": naming.callable_name(function)
        if function is not None else None,
        "state": state,
        "running": _running(call),
        "greenlet": id(green) if green is not None else None,
        "interval": schedule.get("interval"),
        "schedule": schedule,
        "schedule_known": pools.schedule_known(call),
        "next_run_in": next_run_in,
        "sleeping_for": sleeping_for,
        "stranded": stranded,
        "thread_group": group,
        "created_at": _created_at(call, wrappers),
    }


def _running(call: Any) -> bool:
    """Mirror LoopingCallBase._running: not asked to stop."""
    abort = getattr(call, "_abort", None)
    is_set = getattr(abort, "is_set", None)
    try:
        return not is_set() if callable(is_set) else False
    except Exception:
        return False


def _looping_state(call: Any, green: Any) -> str:
    if green is None:
        return "finished" if getattr(call, "done", None) is not None \
            else "not started"
    if green.dead:
        return "finished"
    if not _running(call):
        return "stopping"
    state = greenlets.state(green)
    if state == "not started":
        return "starting"
    if state == "running":
        return "running its function"
    frame = green.gr_frame
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_sleep" and "oslo_service" in code.co_filename:
            del frame
            return "sleeping"
        frame = frame.f_back
    return "running its function"


def _tpool() -> dict[str, Any]:
    """Read eventlet.tpool's globals: threads, busy ones, queued calls."""
    tpool = sys.modules.get("eventlet.tpool")
    if tpool is None:
        return {"loaded": False}
    threads = greenlets.snapshot(lambda: getattr(tpool, "_threads", ()))
    requests = getattr(tpool, "_reqq", None)
    queued = len(getattr(requests, "queue", ())) if requests else 0
    frames = sys._current_frames()
    busy_in = []
    for thread in threads:
        frame = frames.get(getattr(thread, "ident", 0))
        task = _tpool_task(frame)
        if task is not None:
            busy_in.append(task)
    del frames
    return {
        "loaded": True,
        "started": bool(getattr(tpool, "_setup_already", False)),
        "threads": len(threads),
        "max_threads": getattr(tpool, "_nthreads", None),
        "busy": len(busy_in),
        "queued": queued,
        "busy_in": busy_in,
    }


def _tpool_task(frame: Any) -> str | None:
    """Return what a tpool worker runs, None when it waits for work."""
    inner = None
    while frame is not None:
        code = frame.f_code
        if code.co_name == "tworker" and code.co_filename.endswith(
                "tpool.py"):
            break
        inner = frame
        frame = frame.f_back
    else:
        return None
    del frame
    if inner is None:
        return "(native code)"  # a C function called by the worker itself
    code = inner.f_code
    if code.co_name == "get" and code.co_filename.endswith("queue.py"):
        return None  # idle: waiting for the next request
    module = os.path.splitext(os.path.basename(code.co_filename))[0]
    return f"{module}.{getattr(code, 'co_qualname', code.co_name)}"


def format_lines(data: dict[str, Any]) -> list[str]:
    """Render one headline per pool or owner, details indented."""
    pools_by_id = {pool["id"]: pool for pool in data["pools"]}
    owned = {entry["pool"] for kind in ("thread_groups", "executors",
                                        "piles")
             for entry in data[kind]}
    standalone = [pool for pool in data["pools"] if pool["id"] not in owned]
    grouped = {call for group in data["thread_groups"]
               for call in group["looping_calls"]}
    loose_calls = [call for call in data["looping_calls"]
                   if call["id"] not in grouped]
    calls_by_id = {call["id"]: call for call in data["looping_calls"]}
    lines = wrap(", ".join((
        _count(len(data["pools"]), "green pool"),
        _count(len(data["piles"]), "pile"),
        _count(len(data["executors"]), "green executor"),
        _count(len(data["thread_groups"]), "thread group"),
        _count(len(data["looping_calls"]), "looping call"))))
    if data["oslo_service_backend"]:
        lines.append(f"oslo.service backend: {data['oslo_service_backend']}")
    for note in data["notes"]:
        lines.extend(wrap(f"note: {note}"))
    for group in data["thread_groups"]:
        lines.append("")
        lines.extend(_group_lines(group, pools_by_id, calls_by_id))
    for executor in data["executors"]:
        lines.append("")
        lines.extend(_executor_lines(executor, pools_by_id))
    for pile in data["piles"]:
        lines.append("")
        lines.extend(_pile_lines(pile, pools_by_id))
    for pool in standalone:
        lines.append("")
        lines.extend(_pool_lines(pool, "", "")
                     + _created_lines(pool, "  "))
    for call in loose_calls:
        lines.append("")
        lines.extend(_call_lines(call, "", "Looping call "))
    lines.append("")
    lines.extend(_tpool_lines(data["tpool"]))
    return lines


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _short(type_name: str) -> str:
    return type_name.rsplit(".", 1)[-1]


def _address(entry: dict[str, Any]) -> str:
    return f"{_short(entry['type'])} 0x{entry['id']:x}"


def _created_lines(entry: dict[str, Any], indent: str) -> list[str]:
    site = entry.get("created_at")
    if not site:
        return wrap("created at: unknown (created before df_gmr was set up)",
                    indent)
    if "unknown" in site:
        return wrap(f"created at: unknown ({site['unknown']})", indent)
    return wrap(
        f"created at {site['file']}:{site['line']} in {site['function']}",
        indent)


def _id_list(ids: list[int], total: int) -> str:
    shown = ", ".join(str(ident) for ident in ids[:TEXT_IDS])
    if total > TEXT_IDS:
        shown += f", ... {total - TEXT_IDS} more"
    return shown


def _pool_lines(pool: dict[str, Any] | None, indent: str, prefix: str
                ) -> list[str]:
    if pool is None:
        return [f"{indent}{prefix}(none)"]
    lines = wrap(
        f"{prefix}{_address(pool)}: size {pool['size']}, running "
        f"{pool['running']}, free {pool['free']}, waiting "
        f"{pool['waiting']}", indent)
    if pool["running"]:
        lines.extend(wrap(
            "running: " + _id_list(pool["running_ids"], pool["running"]),
            indent + "  "))
    if pool["waiting_ids"]:
        lines.extend(wrap(
            "waiting for a slot: " + _id_list(pool["waiting_ids"],
                                   len(pool["waiting_ids"])),
            indent + "  "))
    return lines


def _group_lines(group: dict[str, Any], pools_by_id: dict[int, Any],
                 calls_by_id: dict[int, Any]) -> list[str]:
    lines = wrap(
        f"{_address(group)}: {_count(group['threads'], 'thread')} "
        f"({group['alive']} alive), "
        f"{_count(len(group['looping_calls']), 'timer')}")
    lines.extend(_created_lines(group, "  "))
    lines.extend(_pool_lines(pools_by_id.get(group["pool"]), "  ",
                             "pool "))
    if group["thread_ids"]:
        lines.extend(wrap(
            "threads: " + _id_list(group["thread_ids"], group["threads"]),
            "  "))
    for call_id in group["looping_calls"]:
        call = calls_by_id.get(call_id)
        if call is None:
            lines.append(f"  timer 0x{call_id:x} (not tracked)")
        else:
            lines.extend(_call_lines(call, "  ", "timer "))
    return lines


def _call_lines(call: dict[str, Any], indent: str, prefix: str
                ) -> list[str]:
    headline = f"{prefix}{call['function']}: {schedule_text(call)}"
    lines = wrap(headline, indent)
    details = [_address(call), call["state"]]
    next_run_in = call["next_run_in"]
    if call.get("stranded"):
        details.append(f"stranded: {call['stranded']}")
    if call.get("sleeping_for") is not None:
        details.append(f"this sleep {call['sleeping_for']:g}s")
    if next_run_in is not None and next_run_in < 0:
        details.append(f"next run overdue by {-next_run_in:.3f}s")
    elif next_run_in is not None:
        details.append(f"next run in {next_run_in:.3f}s")
    if call["greenlet"] is not None:
        details.append(f"greenlet {call['greenlet']}")
    lines.extend(wrap(", ".join(details), indent + "  "))
    if not indent:
        lines.extend(_created_lines(call, "  "))
    return lines


def _executor_lines(executor: dict[str, Any], pools_by_id: dict[int, Any]
                    ) -> list[str]:
    state = "shut down" if executor["shut_down"] else "alive"
    lines = wrap(
        f"{_address(executor)}: max workers {executor['max_workers']}, "
        f"{executor['queued']} queued, {state}")
    lines.extend(_created_lines(executor, "  "))
    lines.extend(_pool_lines(pools_by_id.get(executor["pool"]), "  ",
                             "pool "))
    stats = executor["statistics"]
    runtime = stats.get("runtime")
    runtime_text = f"{runtime:.3f}s" if isinstance(runtime, (int, float)) \
        else "unknown"
    lines.append(f"  executed {stats.get('executed')}, failures "
                 f"{stats.get('failures')}, cancelled "
                 f"{stats.get('cancelled')}, runtime {runtime_text}")
    return lines


def _pile_lines(pile: dict[str, Any], pools_by_id: dict[int, Any]
                ) -> list[str]:
    lines = wrap(
        f"{_address(pile)}: {pile['pending']} results pending "
        f"({pile['unfinished']} unfinished)")
    lines.extend(_created_lines(pile, "  "))
    lines.extend(_pool_lines(pools_by_id.get(pile["pool"]), "  ", "pool "))
    return lines


def _tpool_lines(tpool: dict[str, Any]) -> list[str]:
    if not tpool.get("loaded"):
        return ["tpool: not loaded"]
    if not tpool["started"]:
        return [f"tpool: not started (up to {tpool['max_threads']} "
                "threads)"]
    lines = [f"tpool: {tpool['threads']} threads (of "
             f"{tpool['max_threads']}), {tpool['busy']} busy, "
             f"{tpool['queued']} queued requests"]
    for task in tpool["busy_in"]:
        lines.extend(wrap(f"busy in {task}", "  "))
    return lines


SECTION = Section("green_pools", "Green Pools", collect, format_lines)
