"""Which processes of this host are GMR-ready, as far as can be trusted.

``df-gmr list``, ``report`` and ``doctor`` read entries only through here:
an entry counts only from a run directory that its place says whose it is
(see ``registry``), owned by that user and private, read without following
links, naming a process that still runs (same start time) as the
directory's owner (or root).  See ``exchange`` for the threat model.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import stat
from typing import Any

from df_gmr import exchange
from df_gmr import registry


@dataclasses.dataclass
class Known:
    """A trusted registry entry: its process, where it lives, if ready."""

    entry: dict[str, Any]
    directory: registry.RunDir
    problem: str | None  # None: ready for df-gmr report

    @property
    def pid(self) -> int:
        return int(self.entry["pid"])


def known_processes() -> dict[int, Known]:
    """Return the trusted entries of live processes, by pid.

    An entry is trusted only from a run directory that its place says
    whose it is (see registry), owned by that user and private, read
    without following links, naming a process that still runs (same
    start time) as the directory's owner.  Entries of dead processes are
    removed when this user may (its own directories, or root).
    """
    known: dict[int, Known] = {}
    for path, owner in registry.candidate_run_dirs():
        directory = registry.open_trusted(path, owner)
        if directory is None:
            continue
        may_clean = os.geteuid() in (0, directory.owner)
        for name in directory.names():
            stem, _, suffix = name.partition(".")
            pid = registry.digits(stem)
            if "." + suffix != registry.ENTRY_SUFFIX or pid is None:
                continue
            entry = directory.read_json(name)
            if entry is None or entry.get("pid") != pid:
                continue
            if not registry.entry_is_current(entry):
                if may_clean:
                    registry.remove_stale(directory)
                continue
            status = registry.process_status(pid)
            uid = registry.effective_uid(status)
            if directory.owner not in (0, uid) or pid in known:
                continue  # not the directory owner's process: forged
            # The kernel's parent, not the entry's word for it.
            entry["ppid"] = registry.parent_pid(pid)
            known[pid] = Known(entry, directory,
                               _problem(entry, status, directory))
        if not any(found.directory is directory for found in known.values()):
            directory.close()  # nothing kept from it: its fd goes now
    return known


def _problem(entry: dict[str, Any], status: dict[str, str],
             directory: registry.RunDir) -> str | None:
    """Say why df-gmr report would refuse this process, or None."""
    name = entry.get("signal")
    if name not in exchange.SENDABLE_SIGNALS:
        return f"reports on {name or 'a file trigger'}, not a signal"
    if entry.get("handler") != "df_gmr":
        return (f"the application replaced df_gmr's {name} handler "
                f"({entry.get('handler')}); kill -{name} would not make "
                "a report")
    if not registry.catches_signal(status, getattr(signal, str(name))):
        return f"does not catch {name} (handler gone)"
    info = directory.lstat(f"{entry['pid']}{registry.SOCKET_SUFFIX}")
    if info is None or not stat.S_ISSOCK(info.st_mode):
        return "has no df_gmr socket"
    return None


