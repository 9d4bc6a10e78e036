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

import sys
from typing import TYPE_CHECKING
from typing import Any

from df_gmr import pools
from df_gmr.runtime import greenpools
from df_gmr.sections import EVENTLET_NOT_LOADED
from df_gmr.sections import EVENTLET_NOT_USED
from df_gmr.sections import Section
from df_gmr.sections import not_available
from df_gmr.sections import schedule_text
from df_gmr.sections import wrap

if TYPE_CHECKING:
    from df_gmr.context import ReportContext

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
    tpool = greenpools.tpool()
    if not any(found.values()) and not tpool.get("started") and \
            not context.runtime.hubs():
        return not_available(
            EVENTLET_NOT_USED + ("; " + THREADING_BACKEND
                                 if backend == "threading" else ""),
            oslo_service_backend=backend)
    return {"available": True, "tracking": pools.installed(),
            "oslo_service_backend": backend, "notes": notes,
            **greenpools.read(context.runtime.hubs(), found, tpool)}


def _oslo_service_backend() -> str | None:
    backend = sys.modules.get("oslo_service.backend")
    chosen = getattr(backend, "_cached_backend_type", None)
    return getattr(chosen, "value", None)


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
