"""Unpatched primitives for the code that runs outside the hub.

eventlet's monkey patching replaces ``_thread``, ``os.read``/``os.write``,
``time.sleep`` and friends in place, inside the real modules.  The reporting
thread is a real OS thread: a green lock or a green write there would look
for a hub in that thread (and create one), and could park forever.  So every
primitive that df_gmr uses off the hub comes from here, taken from the
unpatched modules whether df_gmr is imported before or after
``eventlet.monkey_patch()``.
"""

from __future__ import annotations

from collections.abc import Iterable
import importlib
import posix
import sys
from types import ModuleType
from typing import Any


def original(name: str) -> ModuleType:
    """Return the unpatched module ``name``.

    When eventlet is loaded, its patcher keeps a pristine copy of each
    module; otherwise the module in ``sys.modules`` is the real one.
    Call it from the main thread only: eventlet's patcher swaps entries of
    ``sys.modules`` while it builds a copy.
    """
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None:
        return patcher.original(name)  # type: ignore[no-any-return]
    return importlib.import_module(name)


# Taken once, when df_gmr is imported (from the main thread): before
# monkey patching these are the real functions, after it eventlet's
# pristine copy has them.  Never looked up again from another thread.
_thread_module = original("_thread")
_start_new_thread = _thread_module.start_new_thread
_allocate_lock = _thread_module.allocate_lock
_RLock = _thread_module.RLock
_get_ident = _thread_module.get_ident
_posix_write = posix.write  # posix itself is never patched
# The C module behind signal (never patched either).
_signal_module = importlib.import_module("_signal")


def allocate_lock() -> Any:
    """Return a real (OS-level) lock, never a green one."""
    return _allocate_lock()


def allocate_rlock() -> Any:
    """Return a real (OS-level) re-entrant lock, never a green one."""
    return _RLock()


def start_thread(function: Any, args: tuple[Any, ...] = ()) -> int:
    """Start a real OS thread without the threading module's locks."""
    return _start_new_thread(function, args)  # type: ignore[no-any-return]


def get_ident() -> int:
    """Return the OS thread's ident (not a greenlet's id)."""
    return _get_ident()  # type: ignore[no-any-return]


def read_head(path: str, chunk: int, lines: int) -> tuple[bytes, bool]:
    """Read a file's bytes by ``chunk`` until they hold ``lines`` line
    ends; say whether that is the whole file.

    posix's open and read (eventlet patches ``os``'s): no buffered file
    object, whose set-up asks the kernel three more times (fstat, the
    terminal test, the position) for each file a report reads.
    """
    fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    try:
        chunks = [posix.read(fd, chunk)]
        ends = chunks[0].count(b"\n")
        while ends < lines and chunks[-1]:
            chunks.append(posix.read(fd, chunk))
            ends += chunks[-1].count(b"\n")
    finally:
        posix.close(fd)
    return b"".join(chunks), not chunks[-1]


def write_all(fd: int, data: bytes) -> None:
    """Write ``data`` to ``fd``: in one call when the kernel takes it all."""
    view = memoryview(data)
    while view:
        written = _posix_write(fd, view)
        view = view[written:]


def name_thread(name: str) -> None:
    """Give the calling OS thread a name the system shows (``top -H``,
    ``ps -L``, ``/proc/PID/task/TID/comm``: 15 bytes); where there is no
    such file, or it cannot be written, nothing happens."""
    try:
        fd = posix.open("/proc/thread-self/comm", posix.O_WRONLY)
    except OSError:
        return
    try:
        _posix_write(fd, name.encode("ascii", "replace")[:15])
    except OSError:
        pass
    finally:
        posix.close(fd)


def thread_name(path: str = "/proc/thread-self/comm") -> str | None:
    """Return the calling OS thread's system name (``path``: the process's
    main thread's with ``/proc/self/comm``), or None where it cannot be
    read."""
    try:
        fd = posix.open(path, posix.O_RDONLY)
    except OSError:
        return None
    try:
        return posix.read(fd, 64).decode("ascii", "replace").rstrip("\n")
    except OSError:
        return None
    finally:
        posix.close(fd)


def sleep(seconds: float) -> None:
    """Sleep the OS thread, not the greenthread (a real lock's time-out)."""
    never_released = _allocate_lock()
    never_released.acquire()
    never_released.acquire(timeout=max(seconds, 0))


def signal_mask(how: int, signals: Iterable[int]) -> set[int]:
    """``signal.pthread_sigmask``, its masks sets of plain ints.

    ``signal``'s wrapper makes each number of the mask it returns a
    ``Signals`` member, and a real-time signal is none: the enum raises
    and catches for each, about 0.1 ms for a full mask, twice a report.
    AttributeError where the system has no signal masks.
    """
    return set(_signal_module.pthread_sigmask(how, signals))


def valid_signals() -> set[int]:
    """``signal.valid_signals()`` as plain ints (see ``signal_mask``)."""
    return set(_signal_module.valid_signals())
