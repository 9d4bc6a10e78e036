"""The runtime directory: which processes are GMR-ready, and report requests.

Each process that set df_gmr up keeps ``<run dir>/<pid>.json`` describing
itself (service, role, worker index, where reports go), rewritten after a
fork and when its role changes.  ``df-gmr report`` asks a process for a
copy of its next report as the JVM's ``jcmd`` does: it leaves
``<pid>.request.<id>`` (the wanted format), sends the signal, and reads
``<pid>.answer.<id>``, which the process writes (0600, complete before it
appears) after it built the report.

The directory is ``$DF_GMR_RUN_DIR``, else ``/tmp/df_gmr-<uid>``; it is
created 0700 and used only when it belongs to this user and nobody else
can write it.
"""

from __future__ import annotations

import glob
import json
import os
import stat
from typing import Any

from df_gmr import _native

DIRECTORY_MODE = 0o700


def run_dir(uid: int | None = None) -> str:
    """Return this user's run directory (not created)."""
    configured = os.environ.get("DF_GMR_RUN_DIR")
    if configured:
        return configured
    return f"/tmp/df_gmr-{os.getuid() if uid is None else uid}"


def all_run_dirs() -> list[str]:
    """Return every run directory on this host that we may read."""
    found = set(glob.glob("/tmp/df_gmr-*"))
    found.add(run_dir())
    return sorted(path for path in found if os.path.isdir(path))


def ensure_run_dir() -> str | None:
    """Create (0700) and check this user's run directory; None if unsafe."""
    path = run_dir()
    try:
        os.makedirs(path, mode=DIRECTORY_MODE, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return None
    if info.st_mode & 0o022:
        return None
    return path


def write_json(path: str, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600."""
    partial = f"{path}.{os.getpid()}.partial"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    fd = os.open(partial, flags | os.O_CLOEXEC, 0o600)
    try:
        _native.write_all(fd, json.dumps(data).encode())
    finally:
        os.close(fd)
    os.replace(partial, path)


def announce(entry: dict[str, Any]) -> None:
    """Record this process as GMR-ready (best effort, never raises)."""
    try:
        directory = ensure_run_dir()
        if directory is None:
            return
        write_json(os.path.join(directory, f"{os.getpid()}.json"), entry)
    except Exception:
        pass


def process_start_time(pid: int) -> int | None:
    """Return a process's start time in clock ticks (tells pid reuse)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def catches_signal(pid: int, signum: int) -> bool | None:
    """Say whether ``pid`` has a handler for ``signum`` (None: unknown)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("SigCgt:"):
                    mask = int(line.split()[1], 16)
                    return bool(mask & (1 << (signum - 1)))
    except (OSError, ValueError):
        return None
    return None


def withdraw(pid: int | None = None) -> None:
    """Remove this process's entry (at exit)."""
    try:
        os.unlink(os.path.join(run_dir(), f"{pid or os.getpid()}.json"))
    except OSError:
        pass


def entries() -> list[dict[str, Any]]:
    """Return the entries of live processes from every run directory."""
    found = []
    for directory in all_run_dirs():
        for path in glob.glob(os.path.join(directory, "*.json")):
            try:
                with open(path, encoding="utf-8") as handle:
                    entry = json.load(handle)
            except (OSError, ValueError):
                continue
            if isinstance(entry, dict) and isinstance(entry.get("pid"), int):
                entry["run_dir"] = directory
                found.append(entry)
    return found


def pending_requests(pid: int) -> list[tuple[str, str]]:
    """Return ``(request path, wanted format)`` for requests to ``pid``."""
    directory = run_dir()
    requests = []
    for path in glob.glob(os.path.join(directory, f"{pid}.request.*")):
        try:
            with open(path, encoding="utf-8") as handle:
                wanted = handle.read().strip() or "text"
        except OSError:
            continue
        requests.append((path, wanted))
    return requests


def answer(request_path: str, text: str) -> None:
    """Write the answer to one request, then remove the request."""
    answer_path = request_path.replace(".request.", ".answer.")
    partial = f"{answer_path}.partial"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        fd = os.open(partial, flags | os.O_CLOEXEC, 0o600)
        try:
            _native.write_all(fd, text.encode("utf-8", "replace"))
        finally:
            os.close(fd)
        os.rename(partial, answer_path)
    finally:
        try:
            os.unlink(request_path)
        except OSError:
            pass
