"""Processes: this process and its children, as the system sees them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from typing import Any

from df_gmr import identity
from df_gmr import procfs
from df_gmr import redact
from df_gmr.lifecycle import lifecycle
from df_gmr.sections import Section
from df_gmr.sections import not_available

if TYPE_CHECKING:
    from df_gmr.context import ReportContext


def _psutil() -> Any:
    """Return psutil, imported at the first report (None if missing).

    Only where there is no /proc (see ``procfs``); never at set-up: its
    ~2,000 objects would be traversed by every full collection of a
    service that never asks for a report (see benchmarks/, cost at
    rest).
    """
    try:
        import psutil
    except ImportError:  # the section says so
        return None
    return psutil


def _describe_psutil(process: Any) -> dict[str, Any]:
    with process.oneshot():
        times = process.cpu_times()
        entry: dict[str, Any] = {
            "pid": process.pid,
            "ppid": process.ppid(),
            "user": procfs.fact(process.username),
            "status": procfs.fact(process.status),
            "command_line": procfs.fact(
                lambda: redact.mask_command_line(procfs.trimmed(
                    process.cmdline()))),
            "rss_bytes": procfs.fact(lambda: process.memory_info().rss),
            "cpu_user_seconds": round(times.user, 3),
            "cpu_system_seconds": round(times.system, 3),
            "open_fds": procfs.fact(process.num_fds),
            "threads": procfs.fact(process.num_threads),
            "started_at": identity.utc_text(process.create_time()),
        }
    return entry


def _collect_procfs(me: int) -> dict[str, Any] | None:
    """Describe ``me`` and its descendants from /proc (None: the kernel
    lists no children there).

    psutil's children(recursive=True) reads /proc/<pid>/stat of every
    process on the host (100 ms and more on a busy one); the kernel's own
    children lists name just ours, parents first.
    """
    described = procfs.describe(me, redact.mask_command_line, myself=True)
    if described.children is None:
        return None
    _count_own(described.facts)
    pending = [(child, me) for child in described.children]
    children: list[dict[str, Any]] = []
    while pending:
        pid, parent = pending.pop(0)
        try:
            child = procfs.describe(pid, redact.mask_command_line, parent)
        except procfs.ProcessGone:
            continue  # it exited (or was reused) since its parent listed it
        except OSError as error:
            children.append({"pid": pid,
                             "error": f"{type(error).__name__}: {error}"})
            continue
        children.append(child.facts)
        pending.extend((grandchild, pid)
                       for grandchild in child.children or ())
    return {"available": True, "process": described.facts,
            "children": children}


def collect(context: ReportContext) -> dict[str, Any]:
    """Return this process and each of its descendants."""
    found = _collect_procfs(os.getpid()) if procfs.available() else None
    if found is not None:
        return found
    psutil = _psutil()
    if psutil is None:
        return not_available(f"psutil is not installed (pid {os.getpid()})",
                             pid=os.getpid())
    me = psutil.Process()
    children = []
    for child in me.children(recursive=True):
        try:
            children.append(_describe_psutil(child))
        except psutil.NoSuchProcess:
            continue  # it exited since its parent listed it
        except psutil.Error as error:
            children.append({"pid": child.pid,
                             "error": f"{type(error).__name__}: {error}"})
    return {"available": True, "process": _count_own(_describe_psutil(me)),
            "children": children}


def _count_own(entry: dict[str, Any]) -> dict[str, Any]:
    """Add how many of this process's threads are df_gmr's, read just
    after the system's count (this section's thread among them)."""
    entry["df_gmr_threads"] = len(lifecycle.own_threads())
    return entry


def format_lines(data: dict[str, Any]) -> list[str]:
    """Render the process, then one block per child."""
    own = data["process"].get("df_gmr_threads")
    lines = _entry_lines(data["process"], "", OWN_THREADS if own is None
                         else f" ({own} of them df_gmr's, this section's "
                         "among them)")
    lines.append(f"children: {len(data['children'])}")
    for child in data["children"]:
        lines.append("")
        lines.extend(_entry_lines(child, "  ", CHILD_THREADS))
    return lines


#: The system's thread count of this process includes df_gmr's own
#: threads, and the short-lived one each section is collected in (the
#: header and the Threads section leave those out).
OWN_THREADS = " (df_gmr's own included, this section's among them)"
#: A child's count includes df_gmr's threads there, and those of a report
#: it makes at the same moment (``df-gmr report --workers`` asks all).
CHILD_THREADS = " (df_gmr's own included, if it runs there)"


def _entry_lines(entry: dict[str, Any], indent: str,
                 threads_note: str = "") -> list[str]:
    if "error" in entry:
        return [f"{indent}pid {entry['pid']}: {entry['error']}"]
    command = entry["command_line"]
    if isinstance(command, list):
        command = " ".join(command)
    rss = entry["rss_bytes"]
    rss_text = f"{rss / 1048576:.1f} MiB" if isinstance(rss, int) else rss
    return [
        f"{indent}pid {entry['pid']} (ppid {entry['ppid']}) "
        f"user {entry['user']} status {entry['status']}",
        f"{indent}  command: {command}",
        f"{indent}  rss {rss_text}, cpu user {entry['cpu_user_seconds']}s "
        f"system {entry['cpu_system_seconds']}s, "
        f"{entry['open_fds']} fds, {entry['threads']} threads"
        f"{threads_note}, "
        f"started {entry['started_at']}",
    ]


SECTION = Section("processes", "Processes", collect, format_lines)
