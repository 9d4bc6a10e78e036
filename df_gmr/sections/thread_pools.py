"""Thread Pools: the service's pools of native threads and what they run.

Executors of ``concurrent.futures`` and futurist (the RPC server's
executor of oslo.messaging's threading mode, oslo.service's threading
backend): size, workers, busy, queued, and each running task's function,
how long it has run and the thread running it; oslo.service's
threading-backend looping calls (function, fixed or dynamic interval,
last run, next run, running now or sleeping); oslo.messaging's RPC
servers, named by their target.  Read from where the libraries keep
their workers (see ``runtime.executors``); a process without any says
so in one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from df_gmr.runtime import executors
from df_gmr.sections import Section
from df_gmr.sections import not_available
from df_gmr.sections import schedule_text
from df_gmr.sections import wrap

if TYPE_CHECKING:
    from df_gmr.context import ReportContext

NONE_FOUND = ("no pool of native threads in use (no concurrent.futures or "
              "futurist executor with workers, no oslo.messaging server)")


def collect(context: ReportContext) -> dict[str, Any]:
    """Return every executor, looping call and RPC server found."""
    found = executors.read(context.runtime.frames())
    if not any(found.values()):
        return not_available(NONE_FOUND, executors=[], looping_calls=[],
                             rpc_servers=[])
    return {"available": True, **found}


def format_lines(data: dict[str, Any]) -> list[str]:
    """Render each server, executor and looping call, details indented."""
    lines: list[str] = []
    for server in data["rpc_servers"]:
        exchange = server["exchange"] or (
            f"{server['default_exchange']} (the transport's control "
            "exchange)" if server.get("default_exchange")
            else "the transport's control exchange")
        if server.get("role") == "notification listener":
            pool = server.get("pool")
            named = (f"notification listener topics "
                     f"{', '.join(server.get('topics') or ['?'])}"
                     + (f", pool {pool}" if pool else ""))
        else:
            named = (f"RPC server topic {server['topic']}, server "
                     f"{server['server'] or 'any'}")
        lines.extend(wrap(
            f"{named}, exchange {exchange}: {server['type']} with "
            f"{server['executor']}, {_polled_by(server)}"))
    for executor in data["executors"]:
        lines.extend(_executor_lines(executor))
    for call in data["looping_calls"]:
        lines.extend(_call_lines(call))
    return lines


def _polled_by(server: dict[str, Any]) -> str:
    if server["poll_thread"] is not None:
        return f"polled by thread {server['poll_thread']}"
    if server.get("poll_greenlet") is not None:
        return f"polled by greenthread {server['poll_greenlet']}"
    if not server.get("started", True):
        return "not started"
    return "started, no polling thread (polled by a greenthread, or stopped)"


def _executor_lines(executor: dict[str, Any]) -> list[str]:
    full = (executor["max_workers"] is not None
            and executor["busy"] >= executor["max_workers"])
    state = "FULL" if full else "not full"
    if executor["shut_down"]:  # takes no more work: full or not is moot
        state = "shut down"
    if executor.get("looping_call"):
        state = "a looping call's own executor" + (
            ", shut down" if executor["shut_down"] else "")
    name = f" {executor['name']}" if executor.get("name") else ""
    lines = wrap(
        f"{executor['type']}{name}: {executor['busy']} busy of "
        f"{executor['max_workers']} ({state}), {executor['workers']} "
        f"workers started, {executor['queued']} queued")
    for task in executor["running"]:
        age = (f"for {task['running_seconds']}s"
               if task["running_seconds"] is not None
               else "for an unknown time (started before df_gmr was set up)")
        lines.extend(wrap(
            f"running {task['function']} {age} in thread {task['thread']} "
            f"({task['thread_name']})", "  "))
    return lines


def _call_lines(call: dict[str, Any]) -> list[str]:
    details = [schedule_text(call), call["state"]]
    if call.get("sleeping_for") is not None:
        details.append(f"this sleep {call['sleeping_for']:g}s")
    if call.get("running_seconds") is not None:
        details.append(f"running for {call['running_seconds']}s")
    if call["last_run_seconds"] is not None:
        details.append(f"last run took {call['last_run_seconds']}s")
    if call["next_run_in"] is not None:
        details.append(f"next run in {call['next_run_in']}s")
    return wrap(f"{call['type']} {call['function']} in thread "
                f"{call['thread']}: " + ", ".join(details))


SECTION = Section("thread_pools", "Thread Pools", collect, format_lines)
