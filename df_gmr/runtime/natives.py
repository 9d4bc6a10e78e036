"""Native threads as threads of execution: gather, classify, describe.

Every thread with a Python thread state (``sys._current_frames()``) is
gathered with its stack, its kind (main, thread, or df_gmr's own) and its
wait kind, classified from the stack as greenlets are (``waits``); the
thread's name, native id, daemon flag and origin come from the
``threading.Thread`` objects (the module in use and, under eventlet, its
unpatched copy).  df_gmr's own threads are gathered apart: never counted
as the service's.

A native thread's state is what its stack says: ``waiting`` when it is
inside a known waiting function, else ``running`` (which includes a call
into C that df_gmr cannot see into: a lock's acquire, a blocking read);
the report says so.
"""

from __future__ import annotations

from collections import defaultdict
import os
import sys
from typing import TYPE_CHECKING
from typing import Any

from df_gmr import stacks
from df_gmr.runtime import grouping
from df_gmr.runtime import waits
from df_gmr.runtime.grouping import GroupKey

if TYPE_CHECKING:
    from df_gmr.runtime import Snapshot

#: Modules whose ``_active`` maps thread idents to Thread objects: the
#: threading module in use and, under eventlet, its unpatched copy.
THREADING_MODULES = ("threading", "__original_module_threading")
#: Libraries whose frames hold the waits of native threads.
WAIT_LIBRARIES = ("threading", "queue", "selectors", "socket",
                  "subprocess", "concurrent.futures._base",
                  "concurrent.futures.thread", "futurist",
                  "oslo_service")


def known_threads() -> dict[int, Any]:
    """Map thread idents to their ``threading.Thread`` objects."""
    known: dict[int, Any] = {}
    for module_name in THREADING_MODULES:
        module = sys.modules.get(module_name)
        active = getattr(module, "_active", None)
        if isinstance(active, dict):
            for ident, thread in list(active.items()):
                known.setdefault(ident, thread)
    return known


class Natives:
    """The native threads of one snapshot, gathered into groups."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.known = known_threads()
        self.own = snapshot.own_threads()
        self.inside = waits.library_dirs(WAIT_LIBRARIES)
        self.classified: dict[stacks.StackKey, tuple[str, int | None]] = {}

    def groups(self) -> list[dict[str, Any]]:
        """Return the service's threads grouped, biggest group first."""
        gathered = self._gather()
        return grouping.build(gathered, self._describe, _ident)

    def own_threads(self) -> list[dict[str, Any]]:
        """Return df_gmr's own threads (kept apart from the service's)."""
        return [{"ident": ident, "role": f"df_gmr {role}",
                 "name": getattr(self.known.get(ident), "name", None)}
                for ident, role in sorted(self.own.items())
                if ident in self.snapshot.frames()]

    def _gather(self) -> dict[GroupKey, list[tuple[int, Any]]]:
        gathered: dict[GroupKey, list[tuple[int, Any]]] = defaultdict(list)
        for ident, frame in self.snapshot.frames().items():
            if ident in self.own:
                continue
            keys = stacks.frame_keys(frame)
            if ident == self.snapshot.builder_thread:
                keys, _ = stacks.without_own_frames(keys)
            if keys not in self.classified:
                self.classified[keys] = waits.classify_chain(
                    keys, waits.THREAD_WAITS, self.inside)
            wait_kind, match = self.classified[keys]
            state = "waiting" if match is not None else "running"
            if match is None:
                wait_kind = "running or in a C call"
            kind = "main" if ident == self.snapshot.main_thread \
                else "thread"
            gathered[(state, kind, wait_kind, keys)].append((ident, frame))
        return gathered

    def _describe(self, key: GroupKey, index: int,
                  member: tuple[int, Any]) -> dict[str, Any]:
        _, kind, wait_kind, keys = key
        ident, frame = member
        thread = self.known.get(ident)
        found: dict[str, Any] = {"id": ident, "wait": {"kind": wait_kind}}
        name = getattr(thread, "name", None)
        native_id = getattr(thread, "native_id", None)
        if kind == "main":
            # Thread objects keep the native id they had before a fork;
            # on Linux the main thread's native id is the pid.
            name = name or "MainThread"
            if sys.platform.startswith("linux"):
                native_id = os.getpid()
        found["name"] = name
        found["native_id"] = native_id
        found["daemon"] = getattr(thread, "daemon", None)
        if ident == self.snapshot.builder_thread:
            found["role"] = "building this report (df_gmr frames omitted)"
        match = self.classified[keys][1]
        if match is not None and index < grouping.DETAILS_PER_GROUP:
            found["wait"].update(waits.details(
                wait_kind, waits.nth_back(frame, len(keys) - 1 - match)))
        return found


def _ident(member: tuple[int, Any]) -> int:
    return member[0]
