"""Signal and file triggers, and the reporting thread that answers them.

The signal handler's contract
=============================

df_gmr's handler for SIGUSR2 (or the signal given to ``setup_autorun``)
runs, as every Python-level handler does, in the main thread between two
bytecodes of whatever code was running there, often in the middle of a
greenthread or of the eventlet hub itself.  So it does the least work
possible and it guarantees:

* it never raises (a failure is swallowed; only an exception raised by a
  *nested* handler of another signal, such as KeyboardInterrupt, passes);
* it never yields to the hub: it takes no green lock, does no green I/O,
  spawns no greenthread;
* it never kills, exits or stops the process, and never waits: it counts
  the request and releases a real lock, both O(1), non-blocking C calls;
* it never nests: the report is built by one reporting thread, one report
  at a time; signals that arrive while a report is being built are merged
  into the next one, so a storm of signals costs at most two reports.

The reporting thread is a real OS thread started with the unpatched
``_thread`` module.  It blocks SIGUSR2 for itself so that the kernel
delivers the signal to the main thread, whose blocking system calls
(an unpatched ``time.sleep``, a blocking ``recv``) are then interrupted and
run the handler at once.  Building the report there lets the hub keep
turning between the interpreter's GIL switches, and lets a report be
written while a greenthread blocks the hub in a call that releases the GIL.

A thread does not survive ``fork()``: the child's thread is started from
an at-fork hook (and, as a fallback, by the handler), with a fresh lock.

Before the Python-level handler, faulthandler's C-level handler (when
``[df_gmr] native_stacks_at_once`` is on, the default) writes the main
thread's stack to stderr at once: async-signal-safe, without the GIL.

Limits: when the main thread holds the GIL in one long C call, no Python
code runs anywhere until it returns: the C-level stack comes at once, the
full report when the call returns.  Only the main thread is dumped at C
level: dumping the other threads means reading frames that they are
changing, which crashed a process under a signal storm in our tests.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import contextlib
import faulthandler
import gc
import os
import signal
import stat
import sys
from types import FrameType
from typing import Any

from df_gmr import _native

Producer = Callable[[str], None]

_producer: Producer | None = None
_main_ident: int | None = None
_signal_names: dict[int, str] = {}
_requests = 0
_last_trigger = ""
_wake: Any = None
_thread_pid = 0
_thread_ident: int | None = None
_at_fork_registered = False
_watched_files: list[tuple[str, float, str]] = []
_fork_callbacks: list[Callable[[], None]] = []
_fork_resets: list[Callable[[], None]] = []
_resumed_pid = 0


def on_fork_in_child(callback: Callable[[], None]) -> None:
    """Call ``callback`` when a forked child becomes a worker."""
    if callback not in _fork_callbacks:
        _fork_callbacks.append(callback)


def reset_after_fork(callback: Callable[[], None]) -> None:
    """Call ``callback`` in every forked child, inside fork (keep it tiny)."""
    if callback not in _fork_resets:
        _fork_resets.append(callback)


def set_producer(producer: Producer) -> None:
    """Set what the reporting thread calls for each (merged) request.

    Called from the main thread, which this module then remembers.
    """
    global _producer, _main_ident
    _producer = producer
    _main_ident = _native.get_ident()


def main_thread_ident() -> int | None:
    """Return the OS ident of this process's main thread (after forks too)."""
    if _main_ident is not None and _thread_pid in (0, os.getpid()):
        return _main_ident
    for name in ("__original_module_threading", "threading"):
        module = sys.modules.get(name)
        if module is not None:
            return getattr(module.main_thread(), "ident", None)
    return None


def report_signals() -> set[int]:
    """Return the signals that trigger reports in this process."""
    return set(_signal_names)


def reporting_thread_ident() -> int | None:
    """Return the reporting thread's ident in this process, if running."""
    return _thread_ident if _thread_pid == os.getpid() else None


def install_signal(signum: int, native_stacks: bool = True) -> None:
    """Answer ``signum`` with a report, from now on and in forked children.

    With ``native_stacks``, faulthandler's C-level handler first writes
    the main thread's Python stack to stderr, at once and without the GIL,
    then chains to the Python-level handler: when the main thread holds
    the GIL in a long C call, that stack (the call that holds it) is what
    an operator gets right away; the full report follows when the call
    returns.

    Raises ValueError when called outside the main thread (as
    ``signal.signal`` does) or for a signal that cannot be caught.
    """
    _signal_names[signum] = signal.Signals(signum).name
    _ensure_thread()
    if native_stacks:
        faulthandler.unregister(signum)  # so the chained one is ours
    signal.signal(signum, _on_signal)
    if native_stacks:
        _arm_native_dump(signum)
    # A process started with the signal blocked (a spawned worker, see
    # launchers) gets it unblocked once the handler is in place.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})


def _arm_native_dump(signum: int) -> None:
    # Only the interrupted thread (the main thread: the others block the
    # signal or are df_gmr's own) is dumped.  all_threads=True reads other
    # threads' frames without the GIL while they run; under a signal storm
    # that crashed the process in our tests, and a report never harms.
    fd = _native_dump_fd()
    if fd is None:
        return  # no stderr: nothing to write to, and fd 2 may be reused
    faulthandler.register(signum, file=fd, all_threads=False, chain=True)


def _native_dump_fd() -> int | None:
    """Return a non-blocking fd of our own onto stderr, or None.

    The C-level dump writes from the signal handler in the main thread: on
    a stderr pipe that nobody drains, a blocking write would hang the
    service.  Reopening /proc/self/fd/2 gives a new open file description,
    so O_NONBLOCK there leaves the service's own stderr as it was (a full
    pipe then loses the dump, never the service).  A closed fd 2 gives
    None: the number may later belong to one of the service's files.
    A socket (journald's stream under systemd) cannot be reopened: a
    duplicate is used, blocking like the service's own logging to it.
    """
    global _dump_fd
    if _dump_fd is not None:
        return _dump_fd
    try:
        mode = os.fstat(2).st_mode
    except OSError:
        return None
    try:
        flags = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_APPEND
        _dump_fd = os.open("/proc/self/fd/2", flags)
    except OSError:
        if not stat.S_ISSOCK(mode):
            return None
        try:
            _dump_fd = os.dup(2)
            os.set_inheritable(_dump_fd, False)
        except OSError:
            return None
    return _dump_fd


_dump_fd: int | None = None


def request(trigger: str) -> None:
    """Ask the reporting thread for a report (from any thread)."""
    global _requests, _last_trigger
    _last_trigger = trigger
    _requests += 1
    _ensure_thread()
    _poke()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # See the contract in the module docstring.
    global _requests, _last_trigger
    try:
        _last_trigger = "signal " + _signal_names.get(signum, str(signum))
        _requests += 1
        if _thread_pid != os.getpid():
            _ensure_thread()
        _poke()
    except Exception:
        pass


def _poke() -> None:
    wake = _wake
    if wake is not None and wake.locked():
        try:
            wake.release()
        except RuntimeError:
            pass  # a nested handler released it first


def _ensure_thread() -> None:
    global _wake, _thread_pid, _at_fork_registered
    if _thread_pid == os.getpid():
        return
    if not _at_fork_registered:
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _at_fork_registered = True
    wake = _native.allocate_lock()
    wake.acquire()
    _wake = wake
    _thread_pid = os.getpid()
    _native.start_thread(_reporting_loop, (wake,))


def _after_fork_in_child() -> None:
    # Runs inside every fork() of a process that set df_gmr up, including
    # the fork of a subprocess that is about to exec: only reset here.  The
    # parent's threads are gone in the child and its lock may have been
    # copied in any state; the reporting thread starts on the first
    # request (the inherited handler calls _ensure_thread), or at once in
    # an oslo.service worker (resume_in_worker).
    global _main_ident, _thread_pid, _wake
    if _producer is None:
        return
    _main_ident = _native.get_ident()  # the thread that forked
    _thread_pid = 0
    _wake = None
    try:
        # A parent may fork with the signal blocked (see launchers).
        signal.pthread_sigmask(signal.SIG_UNBLOCK, set(_signal_names))
    except Exception as error:  # never break a fork
        _complain(f"cannot unblock the report signal: {error!r}")
    _run_callbacks(_fork_resets, "after-fork reset")


def resume_in_worker() -> None:
    """Start what a forked worker runs: the reporting thread, file
    watchers, and the callbacks given to ``on_fork_in_child``."""
    global _resumed_pid
    # Once per worker; the reporting thread may already run (started by a
    # signal that came first), the watchers and callbacks not yet.
    if _producer is None or _resumed_pid == os.getpid():
        return
    _resumed_pid = os.getpid()
    try:
        _ensure_thread()
        for watch in _watched_files:
            _native.start_thread(_watch_loop, watch)
    except Exception as error:
        _complain(f"cannot start the reporting thread: {error!r}")
    _run_callbacks(_fork_callbacks, "worker start-up hook")


def _run_callbacks(callbacks: list[Callable[[], None]], what: str) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception as error:
            _complain(f"{what} failed: {error!r}")


def _reporting_loop(wake: Any) -> None:
    global _thread_ident, _requests
    _thread_ident = _native.get_ident()
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, set(_signal_names))
    except Exception:
        pass
    while True:
        wake.acquire()
        if _thread_pid != os.getpid():
            return  # a stale thread in a forked child: the new one serves
        if sys.is_finalizing():
            return  # the interpreter is going away: nothing can be built
        merged, _requests = _requests, 0
        trigger = _last_trigger or "request"
        if merged > 1:
            trigger += f" ({merged} requests merged)"
        producer = _producer
        if producer is None:
            continue
        try:
            with _collection_deferred():
                producer(trigger)
        except BaseException as error:
            _complain(f"report failed: {error!r}")


@contextlib.contextmanager
def _collection_deferred() -> Iterator[None]:
    """Hold the cyclic garbage collector off while a report is built.

    The report allocates a lot at once; a full collection that it
    triggers holds the GIL for tens of milliseconds with 10,000
    greenthreads, which stalls the hub.  Deferred, the same collection
    comes a fraction of a second later, on the service's own allocations.
    A service that disabled the collector itself keeps it disabled.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _complain(message: str) -> None:
    try:
        _native.write_all(2, f"df_gmr: {message}\n".encode())
    except Exception:
        pass


def watch_file(path: str, interval: float, trigger_label: str = "") -> None:
    """Report whenever ``path``'s modification time changes.

    Polled from a real OS thread, so it works while the hub is blocked.
    A missing or unreadable file is said once on stderr, and watching goes
    on (the file may be created later).
    """
    watch = (path, max(interval, 0.05), trigger_label or f"file {path}")
    _watched_files.append(watch)
    _ensure_thread()
    _native.start_thread(_watch_loop, watch)


def _watch_loop(path: str, interval: float, label: str) -> None:
    pid = os.getpid()
    last = _mtime(path)
    complained = False
    while os.getpid() == pid:
        _native.sleep(interval)
        current = _mtime(path)
        if current is None:
            if not complained:
                _complain(f"cannot read the trigger file {path}; still "
                          "watching")
                complained = True
            continue
        complained = False
        if current != last:
            request(label)
        last = current


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime_ns / 1e9
    except OSError:
        return None
