"""Eventlet's pools, read in place as plain data (the Green Pools section).

Every eventlet ``GreenPool`` and ``GreenPile`` (size, running, free, the
greenthreads waiting for a slot), futurist's ``GreenThreadPoolExecutor``,
oslo.service's eventlet ``ThreadGroup`` and looping calls, and eventlet's
tpool of native threads.  The objects come from ``df_gmr.pools``' weak
registries; everything is read from stored attributes and frames: no
green call, no lock.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from df_gmr import greenlets
from df_gmr import naming
from df_gmr import pools
from df_gmr import stacks
from df_gmr.runtime.hubs import STALE_HUBS

#: Greenlet ids kept per pool in the JSON (running and waiting each).
MAX_IDS = 1000


def read(hubs: list[Any], found: dict[str, list[Any]], tpool: dict[str, Any]
         ) -> dict[str, Any]:
    """Read the tracked pools, piles, executors, thread groups and
    looping calls (``pools.tracked()``) and tpool in place, as plain
    data: pools by id, each listed once, entries sorted by id."""
    wrappers = stacks.wrapper_prefixes()
    wakeups = _wakeups(hubs, {id(green) for call in found["looping_calls"]
                              if (green := getattr(call, "_thread", None))
                              is not None})
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


def _created_at(instance: Any, wrappers: dict[str, str]
                ) -> dict[str, Any] | None:
    """The first recorded creator outside the wrappers, or why unknown.

    None: nothing recorded (created before df_gmr was set up).
    """
    positions = pools.creation_site(instance)
    if not positions:
        return None
    return stacks.origin(positions, wrappers, "created")


def _wakeups(readings: list[Any], wanted: set[int]
             ) -> dict[int, dict[str, Any]]:
    """Map the ``wanted`` greenlets (ids: the looping calls') to their
    soonest hub timer: due, length, stranded (no dict for the 25,000
    sleepers' timers)."""
    found: dict[int, dict[str, Any]] = {}
    for reading in readings:
        stale = STALE_HUBS.get(reading.status)
        for timer in reading.timers:  # soonest first
            if timer.greenlet is None or id(timer.greenlet) not in wanted \
                    or id(timer.greenlet) in found:
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


def tpool() -> dict[str, Any]:
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
