"""Who this process is within its service: role, worker index, launcher.

The identity is per process: it is set by the launcher integration in the
parent and in each worker, and after a fork it is reset in the child so
that a worker never reports itself as its parent.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any


@dataclasses.dataclass
class WorkerRecord:
    """A worker as its parent sees it."""

    pid: int
    index: int | None
    service: str | None
    started_at: float
    restarts: int = 0
    #: Which of the launcher's services (a launcher may run several).
    key: str = ""


@dataclasses.dataclass
class ProcessIdentity:
    """This process's place in its service."""

    role: str = "single process"
    worker_index: int | None = None
    launcher: str | None = None
    backend: str | None = None
    parent_pid: int | None = None
    workers: dict[int, WorkerRecord] = dataclasses.field(default_factory=dict)
    pid: int = dataclasses.field(default_factory=os.getpid)


_current = ProcessIdentity()


def current() -> ProcessIdentity:
    """Return this process's identity, fresh after a fork."""
    global _current
    if _current.pid != os.getpid():
        _current = ProcessIdentity()
    return _current


def set_role(
    role: str,
    *,
    worker_index: int | None = None,
    launcher: str | None = None,
    backend: str | None = None,
    parent_pid: int | None = None,
) -> None:
    """Record this process's role (parent, worker, single process)."""
    identity = current()
    identity.role = role
    identity.worker_index = worker_index
    identity.parent_pid = parent_pid
    if role == "worker":
        identity.workers = {}
    if launcher is not None:
        identity.launcher = launcher
    if backend is not None:
        identity.backend = backend


def describe() -> dict[str, Any]:
    """Return the identity as plain data, workers checked for liveness."""
    identity = current()
    data: dict[str, Any] = {
        "role": identity.role,
        "worker_index": identity.worker_index,
        "launcher": identity.launcher,
        "backend": identity.backend,
        "parent_pid": identity.parent_pid,
    }
    if identity.workers:
        data["workers"] = [
            {
                "pid": worker.pid,
                "index": worker.index,
                "service": worker.service,
                "alive": _alive(worker.pid),
                "started_at": utc_text(worker.started_at),
                "restarts": worker.restarts,
            }
            for worker in identity.workers.values()
        ]
    return data


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def utc_text(timestamp: float) -> str:
    """Return a Unix time as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
