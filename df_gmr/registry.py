"""Run directories: which processes are GMR-ready, kept where nobody else
can write.

Each process that set df_gmr up keeps two things in its user's run
directory: ``<pid>.json`` describing itself (service, role, worker index,
where reports go, whether its signal handler is still df_gmr's) and
``<pid>.sock``, the UNIX socket through which ``df-gmr report`` asks it for
a copy of a report (see ``exchange``, which also states the threat model).

Where: ``$DF_GMR_RUN_DIR`` when set; for root ``/run/df_gmr``; for
another user ``$XDG_RUNTIME_DIR/df_gmr`` when that runtime directory is
private to the user (systemd's per-user ``/run/user/UID``), else
``/tmp/df_gmr-UID``.  The ``/run`` locations are private by nature; the
``/tmp`` fallback is checked as OpenSSH's StrictModes checks a home
directory.

Every directory is opened once with ``O_NOFOLLOW|O_DIRECTORY`` and used
only through that descriptor (``dir_fd``), after checking on the
descriptor itself that it belongs to the expected user and that nobody
else can write in it.  Files in it are opened ``O_NOFOLLOW|O_NONBLOCK``
(a planted FIFO or symlink is refused, never waited on or followed),
must be regular files owned by the directory's owner, and are read up to
a bounded size.  Nothing is ever chowned, and nothing is acted on by a
path someone else could swap.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import posix
import signal
import stat
from typing import Any

from df_gmr import _native

# posix.open and posix.read, never os.open and os.read: under eventlet's
# monkey patching those are green, and would make a hub in the
# reporting thread (see _native).

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
#: An entry is a few hundred bytes; anything larger was not written by us.
MAX_ENTRY_BYTES = 64 * 1024
ROOT_RUN_DIR = "/run/df_gmr"
USER_RUNTIME_DIRS = "/run/user/*/df_gmr"
TMP_RUN_DIRS = "/tmp/df_gmr-*"
ENTRY_SUFFIX = ".json"
SOCKET_SUFFIX = ".sock"


class UnsafeDirectory(Exception):
    """A run directory that df_gmr refuses to use, with the reason."""


class RunDir:
    """An open, verified run directory, used only through its descriptor."""

    def __init__(self, fd: int, path: str, owner: int) -> None:
        self.fd = fd
        self.path = path
        self.owner = owner

    @classmethod
    def open(cls, path: str, owner: int, create: bool = False) -> RunDir:
        """Open ``path`` and check it; raise UnsafeDirectory with why not.

        ``owner`` is the uid the directory must belong to.  With
        ``create``, a missing directory is made (0700).
        """
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(path, DIRECTORY_MODE)
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = posix.open(path, flags)
        except OSError as error:
            reason = ("a symbolic link" if os.path.islink(path)
                      else error.strerror or str(error))
            msg = f"run directory {path}: {reason}"
            raise UnsafeDirectory(msg) from None
        try:
            check_private(os.fstat(fd), owner, f"run directory {path}")
        except UnsafeDirectory:
            os.close(fd)
            raise
        return cls(fd, path, owner)

    def close(self) -> None:
        """Close the directory's descriptor (idempotent)."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

    def names(self) -> list[str]:
        """Return the names in the directory."""
        return os.listdir(self.fd)

    def read_json(self, name: str) -> dict[str, Any] | None:
        """Return a JSON object read from ``name``, or None if untrusted.

        Untrusted: not a regular file owned by the directory's owner, a
        symlink, larger than MAX_ENTRY_BYTES, or not a JSON object.
        """
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = posix.open(name, flags, dir_fd=self.fd)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            if (not stat.S_ISREG(info.st_mode) or info.st_uid != self.owner
                    or info.st_size > MAX_ENTRY_BYTES):
                return None
            data = posix.read(fd, MAX_ENTRY_BYTES + 1)  # never green
        except OSError:
            return None
        finally:
            os.close(fd)
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            return None
        return value if isinstance(value, dict) else None

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        """Replace ``name`` with ``data`` atomically (0600, never followed)."""
        partial = f".{name}.{os.getpid()}.partial"
        flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                 | os.O_CLOEXEC)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial, dir_fd=self.fd)
        fd = posix.open(partial, flags, FILE_MODE, dir_fd=self.fd)
        try:
            try:
                _native.write_all(fd, json.dumps(data).encode())
            finally:
                os.close(fd)
            os.rename(partial, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            self.unlink(partial)
            raise

    def unlink(self, name: str) -> None:
        """Remove ``name`` (never follows it; missing is fine)."""
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=self.fd)

    def lstat(self, name: str) -> os.stat_result | None:
        """Return ``name``'s own status (not its target's), or None."""
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except OSError:
            return None

    def socket_path(self, name: str) -> str:
        """Return a path to ``name`` that resolves through our descriptor.

        bind() and connect() take a path: going through /proc/self/fd
        makes them land in the directory we checked, even if its name was
        swapped meanwhile.
        """
        return f"/proc/self/fd/{self.fd}/{name}"


def check_private(info: os.stat_result, owner: int, what: str) -> None:
    """Refuse a directory not owned by ``owner`` or writable by others."""
    if not stat.S_ISDIR(info.st_mode):
        msg = f"{what}: not a directory"
        raise UnsafeDirectory(msg)
    if info.st_uid != owner:
        msg = (f"{what}: belongs to uid {info.st_uid}, not {owner} "
               "(someone else made it; remove it)")
        raise UnsafeDirectory(msg)
    if info.st_mode & 0o022:
        msg = (f"{what}: writable by others (mode "
               f"{stat.S_IMODE(info.st_mode):o}); it must be 0700")
        raise UnsafeDirectory(msg)


def own_run_dir_path() -> str:
    """Return where this process's user keeps its entries."""
    configured = os.environ.get("DF_GMR_RUN_DIR")
    if configured:
        return configured
    uid = os.geteuid()
    if uid == 0 and os.path.isdir("/run"):
        return ROOT_RUN_DIR
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and _private_runtime_dir(runtime, uid):
        return os.path.join(runtime, "df_gmr")
    return f"/tmp/df_gmr-{uid}"


def _private_runtime_dir(path: str, uid: int) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == uid
            and not info.st_mode & 0o077)


def open_own_run_dir() -> RunDir:
    """Open (creating it) this user's run directory, or raise why not."""
    return RunDir.open(own_run_dir_path(), os.geteuid(), create=True)


def candidate_run_dirs() -> list[tuple[str, int | None]]:
    """Return every run directory on this host with its expected owner.

    The owner is implied by the place: ``/run/df_gmr`` is root's,
    ``/run/user/UID/df_gmr`` and ``/tmp/df_gmr-UID`` are UID's; for
    ``$DF_GMR_RUN_DIR`` it is None (whoever owns it, checked per entry).
    """
    found: dict[str, int | None] = {ROOT_RUN_DIR: 0}
    for path in glob.glob(USER_RUNTIME_DIRS):
        uid = digits(path.split("/")[3])
        if uid is not None:
            found[path] = uid
    for path in glob.glob(TMP_RUN_DIRS):
        uid = digits(os.path.basename(path)[len("df_gmr-"):])
        if uid is not None:
            found[path] = uid
    configured = os.environ.get("DF_GMR_RUN_DIR")
    if configured:
        found[configured] = None
    return sorted(found.items())


def digits(text: str) -> int | None:
    """Return the number written in ASCII digits, or None."""
    return int(text) if text.isascii() and text.isdigit() else None


def open_trusted(path: str, owner: int | None) -> RunDir | None:
    """Open a run directory for reading entries, or None if not trusted."""
    if owner is None:
        try:
            owner = os.lstat(path).st_uid
        except OSError:
            return None
    try:
        return RunDir.open(path, owner)
    except UnsafeDirectory:
        return None


def process_start_time(pid: int) -> int | None:
    """Return a process's start time in clock ticks (tells pid reuse)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def parent_pid(pid: int) -> int | None:
    """Return a process's real parent, as the kernel says (not an entry)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return int(handle.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def process_status(pid: int) -> dict[str, str]:
    """Return the fields of ``/proc/PID/status`` (empty if gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii",
                  errors="replace") as handle:
            return dict(line.rstrip("\n").split(":\t", 1)
                        for line in handle if ":\t" in line)
    except OSError:
        return {}


def effective_uid(status: dict[str, str]) -> int | None:
    """Return the effective uid from a ``process_status``, or None."""
    try:
        return int(status["Uid"].split()[1])
    except (KeyError, IndexError, ValueError):
        return None


def catches_signal(status: dict[str, str], signum: int) -> bool:
    """Say whether the process (its ``process_status``) catches ``signum``."""
    try:
        mask = int(status["SigCgt"], 16)
    except (KeyError, ValueError):
        return False
    return bool(mask & (1 << (signum - 1)))


def signal_child(pid: int, signum: int) -> bool:
    """Send ``signum`` to ``pid`` only if it is our child and safe to.

    Safe: it catches the signal, or blocks it (a spawned worker before
    its set-up); never a process that the signal would kill.  Through a
    pidfd, checked after opening, so a reused pid is never signalled.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        status = process_status(pid)
        blocked = int(status.get("SigBlk", "0"), 16) & (1 << (signum - 1))
        if parent_pid(pid) != os.getpid() or not (
                catches_signal(status, signum) or blocked):
            return False
        signal.pidfd_send_signal(pidfd, signum)
        return True
    except (OSError, ValueError):
        return False
    finally:
        os.close(pidfd)


def entry_is_current(entry: dict[str, Any]) -> bool:
    """Say whether an entry's process still runs (same pid, same start)."""
    pid = entry.get("pid")
    return (isinstance(pid, int) and pid > 0
            and process_start_time(pid) == entry.get("start_time"))


def remove_stale(directory: RunDir) -> list[int]:
    """Remove the entries and sockets of processes that are gone.

    Returns the pids removed.  A pid whose entry no longer matches the
    process that has that number now (reused) counts as gone.
    """
    removed = []
    names = set(directory.names())
    pids = {name.split(".", 1)[0] for name in names
            if name.endswith((ENTRY_SUFFIX, SOCKET_SUFFIX))}
    for text in pids:
        pid = digits(text)
        if pid is None or pid == os.getpid():
            continue
        entry = directory.read_json(f"{pid}{ENTRY_SUFFIX}")
        alive = (entry_is_current(entry) if entry is not None
                 else process_start_time(pid) is not None)
        if not alive:
            directory.unlink(f"{pid}{ENTRY_SUFFIX}")
            directory.unlink(f"{pid}{SOCKET_SUFFIX}")
            removed.append(pid)
    for name in names:  # a writer killed between create and rename
        if name.endswith(".partial"):
            writer = digits(name.rsplit(".", 2)[-2])
            if writer is None or process_start_time(writer) is None:
                directory.unlink(name)
    return removed
