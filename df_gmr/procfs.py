"""A process as Linux's /proc tells it, read through one directory fd.

The Processes section's facts (pid, parent, user, state, command line,
memory, CPU times, descriptors, threads, start time) without psutil: its
import alone took ~9 ms of a report's time and its ~2,000 objects would
stay in the service's heap.  psutil remains the reader where there is no
/proc (``available()`` says so).

Each process is opened once, as ``/proc/<pid>`` with ``O_DIRECTORY``,
and every file is read relative to that descriptor: if the process exits
and its pid is reused meanwhile, the reads fail (ESRCH) instead of
describing the newcomer.  Nothing is followed by name twice.
"""

from __future__ import annotations

import os
import pwd  # with this module: its import took ~0.15 ms of a first report
import time
from typing import Any
from typing import NamedTuple

from df_gmr import identity

#: /proc/<pid>/stat's state letters, named as psutil names them.
STATES = {
    "R": "running", "S": "sleeping", "D": "disk-sleep", "T": "stopped",
    "t": "tracing-stop", "Z": "zombie", "X": "dead", "x": "dead",
    "K": "wake-kill", "W": "waking", "I": "idle", "P": "parked",
}
_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(
    os, "O_CLOEXEC", 0)


def available() -> bool:
    """Say whether this system has a /proc that this module can read."""
    return os.path.isfile("/proc/self/stat") and os.path.isfile("/proc/stat")


class ProcessGone(Exception):
    """The process exited (or its /proc entry cannot be opened)."""


def _read(directory: int, name: str) -> bytes:
    descriptor = os.open(name, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0),
                         dir_fd=directory)
    try:
        chunks = []
        while chunk := os.read(descriptor, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def _stat_fields(raw: bytes) -> list[str]:
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses,
    # so the fields start after the last ')'.  Index 0 is the state.
    return raw[raw.rindex(b")") + 2:].decode("ascii").split()


def _boot_time() -> float:
    # The wall-clock time of boot, to the clock's precision: /proc/stat's
    # btime is whole seconds (a start time up to 1 s early); the clock
    # that counts since boot is the one start times are counted on.
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is not None:
        return time.time() - time.clock_gettime(boottime)
    with open("/proc/stat", "rb") as handle:
        for line in handle:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    msg = "no btime in /proc/stat"
    raise LookupError(msg)


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # no such user in this container's passwd
        return str(uid)


def _real_uid(status: bytes) -> int:
    for line in status.splitlines():
        if line.startswith(b"Uid:"):
            return int(line.split()[1])
    msg = "no Uid in status"
    raise LookupError(msg)


def fact(getter: Any) -> Any:
    """Return ``getter()``, or ``unavailable: <why>`` if it fails (a
    process that is gone as a whole still raises ProcessLookupError)."""
    try:
        return getter()
    except ProcessLookupError:  # the whole process is gone: not one fact
        raise
    except Exception as error:
        return f"unavailable: {type(error).__name__}"


class Described(NamedTuple):
    """A process's facts and its children's pids (None: not readable)."""

    facts: dict[str, Any]
    children: list[int] | None


def describe(pid: int, mask_command_line: Any, parent: int | None = None,
             myself: bool = False) -> Described:
    """Return the facts of process ``pid`` and its children's pids.

    ``mask_command_line(arguments)`` hides secrets in the command line.
    With ``parent``, the process must still be its child: a pid that was
    listed, exited and was reused by another process is not described.
    ``myself``: this very process, read as ``/proc/self`` (right in a
    PID namespace whose /proc is another's).  Raise ProcessGone if it is
    gone (or is not that child any more), OSError if /proc refuses it; a
    single fact that cannot be read says ``unavailable: <why>``.
    Everything, the children's list included, is read through one
    descriptor of the process's directory.
    """
    path = "/proc/self" if myself else f"/proc/{int(pid)}"
    try:
        directory = os.open(path, _FLAGS)
    except (FileNotFoundError, ProcessLookupError):
        raise ProcessGone(f"no process {pid}") from None
    try:
        return _describe(directory, pid, mask_command_line, parent, myself)
    except ProcessLookupError:  # it exited while being read
        raise ProcessGone(f"process {pid} exited") from None
    finally:
        os.close(directory)


def _describe(directory: int, pid: int, mask_command_line: Any,
              parent: int | None, myself: bool) -> Described:
    fields = _stat_fields(_read(directory, "stat"))
    if parent is not None and int(fields[1]) != parent:
        raise ProcessGone(f"process {pid} is no longer {parent}'s child")
    ticks = os.sysconf("SC_CLK_TCK")
    facts = {
        "pid": pid,
        "ppid": int(fields[1]),
        "user": fact(lambda: _user(_real_uid(_read(directory, "status")))),
        "status": STATES.get(fields[0], fields[0]),
        "command_line": fact(lambda: mask_command_line(
            _arguments(_read(directory, "cmdline")))),
        "rss_bytes": fact(lambda: int(_read(
            directory, "statm").split()[1]) * os.sysconf("SC_PAGE_SIZE")),
        "cpu_user_seconds": round(int(fields[11]) / ticks, 3),
        "cpu_system_seconds": round(int(fields[12]) / ticks, 3),
        "open_fds": fact(lambda: _count_fds(directory, myself)),
        "threads": int(fields[17]),
        "started_at": fact(lambda: identity.utc_text(
            _boot_time() + int(fields[19]) / ticks)),
    }
    return Described(facts, _children(directory))


def _count_fds(directory: int, myself: bool) -> int:
    descriptor = os.open("fd", _FLAGS, dir_fd=directory)
    try:
        names = os.listdir(descriptor)
    finally:
        os.close(descriptor)
    if myself:
        # Not the descriptors this reading holds open meanwhile: the
        # process's directory, its fd directory and the duplicate of that
        # one that listdir() reads through (its number is not known).
        own = {str(directory), str(descriptor)}
        return sum(1 for name in names if name not in own) - 1
    return len(names)


def _children(directory: int) -> list[int] | None:
    """Read the children of every thread of a process (``task/*/children``,
    Linux 3.5 and later with CONFIG_PROC_CHILDREN); None if the kernel
    has no such file, or it cannot be read."""
    found: list[int] = []
    try:
        tasks = os.open("task", _FLAGS, dir_fd=directory)
    except OSError:
        return None
    read_one = False
    try:
        for thread in os.listdir(tasks):
            try:
                raw = _read(tasks, f"{thread}/children")
            except FileNotFoundError:  # the thread ended, or no such file
                continue
            found.extend(int(word) for word in raw.split())
            read_one = True
    except (OSError, ValueError):
        return None
    finally:
        os.close(tasks)
    return found if read_one else None


def _arguments(raw: bytes) -> list[str]:
    """Return a command line as the process shows it.

    Split as psutil splits it: on NULs, or on blanks when a retitled
    process left one argument with blanks in it (so a credential flag
    and its value are two words that ``mask_command_line`` sees).
    """
    text = raw.decode("utf-8", "replace")
    text = text.removesuffix("\0")
    arguments = text.split("\0")
    if len(arguments) == 1 and " " in text:
        arguments = text.split(" ")
    return trimmed(arguments)


def trimmed(arguments: list[str]) -> list[str]:
    """Return arguments without the padding a retitled process leaves
    (setproctitle: trailing blanks and empty arguments)."""
    arguments = [argument.rstrip() for argument in arguments]
    while arguments and not arguments[-1]:
        arguments.pop()
    return arguments
