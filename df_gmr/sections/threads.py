"""Threads: every native OS thread with its Python stack.

Only real threads are listed (those with a Python thread state), never
greenlets dressed up as threads.  The thread that builds the report is
marked, and its df_gmr frames are left out: they are not the
application's stack.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING
from typing import Any

from df_gmr import report
from df_gmr import stacks
from df_gmr import trigger
from df_gmr.sections import Section

if TYPE_CHECKING:
    from df_gmr.report import ReportContext

#: Modules whose ``_active`` maps thread idents to Thread objects: the
#: threading module in use and, under eventlet, its unpatched copy.
THREADING_MODULES = ("threading", "__original_module_threading")


def _known_threads() -> dict[int, Any]:
    known: dict[int, Any] = {}
    for module_name in THREADING_MODULES:
        module = sys.modules.get(module_name)
        active = getattr(module, "_active", None)
        if isinstance(active, dict):
            for ident, thread in list(active.items()):
                known.setdefault(ident, thread)
    return known


def collect(context: ReportContext) -> dict[str, Any]:
    """Return every native thread with its name, flags and stack."""
    frames = sys._current_frames()
    known = _known_threads()
    reporter = trigger.reporting_thread_ident()
    main_ident = trigger.main_thread_ident()
    threads = []
    for ident, frame in frames.items():
        keys = stacks.frame_keys(frame)
        thread = known.get(ident)
        entry: dict[str, Any] = {
            "ident": ident,
            "native_id": getattr(thread, "native_id", None),
            "name": getattr(thread, "name", None),
            "daemon": getattr(thread, "daemon", None),
            "role": None,
        }
        if ident == reporter:
            entry["name"] = entry["name"] or "df_gmr-reporter"
            entry["role"] = "df_gmr reporting thread"
            keys = ()
        elif ident in report.section_threads:
            entry["name"] = entry["name"] or "df_gmr-section"
            entry["role"] = "df_gmr section thread"
            keys = ()
        elif ident == context.builder_thread:
            keys, _ = stacks.without_own_frames(keys)
            entry["role"] = "building this report (df_gmr frames omitted)"
        entry["stack"] = stacks.describe(keys)
        threads.append(entry)
    del frames, frame
    for entry in threads:
        if entry["ident"] == main_ident:
            # Thread objects keep the native id they had before a fork;
            # on Linux the main thread's native id is the pid.
            entry["name"] = entry["name"] or "MainThread"
            if sys.platform.startswith("linux"):
                entry["native_id"] = os.getpid()
    threads.sort(key=lambda entry: entry["role"] is not None)
    return {"count": len(threads), "threads": threads}


def format_lines(data: dict[str, Any]) -> list[str]:
    """Render one block per thread: a headline, then its stack."""
    lines = [f"{data['count']} native threads"]
    for entry in data["threads"]:
        flags = []
        if entry["native_id"] is not None:
            flags.append(f"native id {entry['native_id']}")
        if entry["daemon"]:
            flags.append("daemon")
        if entry["role"]:
            flags.append(entry["role"])
        name = entry["name"] or "(unnamed)"
        detail = f" [{', '.join(flags)}]" if flags else ""
        lines.extend(("", f"Thread {entry['ident']} {name}{detail}"))
        if entry["stack"]:
            lines.extend(stacks.format_stack(entry["stack"]))
        elif entry["role"] in ("df_gmr reporting thread",
                               "df_gmr section thread"):
            lines.append("  (building this report)")
        else:
            lines.append("  (no Python frames)")
    return lines


SECTION = Section("threads", "Threads", collect, format_lines)
