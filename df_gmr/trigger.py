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
``_thread`` module, on the first request (by the handler itself): a process
where nobody asks for a report runs no thread of df_gmr's. It blocks
SIGUSR2 for itself so that the kernel delivers the signal to the main
thread, whose blocking system calls (an unpatched ``time.sleep``, a
blocking ``recv``) are then interrupted and run the handler at once.
Building the report there lets the hub keep turning between the
interpreter's GIL switches, and lets a report be written while a
greenthread blocks the hub in a call that releases the GIL.

A thread does not survive ``fork()``: the child's thread is started by
the handler or when the child becomes a worker, with a fresh lock; a
child forked while a report held the garbage collector off gets it back.

At interpreter exit a report already requested is finished (bounded),
then the signal is ignored: it never changes the exit status or reaches
a finalized interpreter.  An application that installs its own handler
for the signal wins, visibly (see ``_watch_handler_changes``).

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

import atexit
from collections.abc import Callable
from collections.abc import Iterator
import contextlib
import faulthandler
import functools
import gc
import os
import signal
import sys
import time
from types import FrameType
from typing import Any

from df_gmr import _native
from df_gmr.streams import stderr as _streams

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
#: signal -> whether faulthandler's C-level dump was asked for.
_native_stacks: dict[int, bool] = {}
#: signal -> the application's handler that replaced ours (described).
_handler_replaced: dict[int, str] = {}
_handler_listeners: list[Callable[[], None]] = []
_original_signal: Any = None
_exit_guard_armed = False
#: Held by the reporting thread while it builds a report.
_building = _native.allocate_lock()
#: How long the interpreter's exit waits for a report already requested.
EXIT_WAIT = 5.0


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
    if not _streams.captured:
        _streams.capture()
    _register_at_fork()
    _watch_handler_changes()
    if native_stacks:
        faulthandler.unregister(signum)  # so the chained one is ours
    _set_handler(signum, _on_signal)
    _native_stacks[signum] = native_stacks
    _handler_replaced.pop(signum, None)
    if native_stacks:
        _arm_native_dump(signum)
    _arm_exit_guard()
    # A process started with the signal blocked (a spawned worker, see
    # launchers) gets it unblocked once the handler is in place.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})


def _arm_native_dump(signum: int) -> None:
    # Only the interrupted thread (the main thread: the others block the
    # signal or are df_gmr's own) is dumped.  all_threads=True reads other
    # threads' frames without the GIL while they run; under a signal storm
    # that crashed the process in our tests, and a report never harms.
    fd = _streams.dump_fd()
    if fd is None:
        return  # no stderr at set-up: fd 2 may later be someone else's
    faulthandler.register(signum, file=fd, all_threads=False, chain=True)


def _set_handler(signum: int, handler: Any) -> Any:
    setter = _original_signal or signal.signal
    return setter(signum, handler)


def on_handler_replaced(callback: Callable[[], None]) -> None:
    """Call ``callback`` when the application replaces our handler."""
    if callback not in _handler_listeners:
        _handler_listeners.append(callback)


def handler_state(signum: int) -> str:
    """Return ``df_gmr``, or how the application replaced our handler."""
    return _handler_replaced.get(signum, "df_gmr")


def _watch_handler_changes() -> None:
    """Notice when the application installs its own handler for our signal.

    gunicorn, for one, re-executes itself on SIGUSR2: once it takes the
    signal, df_gmr stops claiming the process is ready (its entry says
    so, ``df-gmr report`` refuses it) and says so once on stderr.  Only
    ``signal.signal`` called through the module is seen; a handler set
    from C shows as a handler df-gmr does not recognise (see cli).
    """
    global _original_signal
    if _original_signal is not None:
        return
    original = _original_signal = signal.signal

    @functools.wraps(original)
    def watched_signal(signalnum: Any, handler: Any) -> Any:
        ours = signalnum in _signal_names and handler is not _on_signal
        if ours and _native_stacks.get(signalnum) and \
                signalnum not in _handler_replaced:
            # Before the change: unregistering restores the handler that
            # faulthandler chained to, which must not override theirs.
            faulthandler.unregister(signalnum)
        previous = original(signalnum, handler)
        if ours:
            _replaced(signalnum, handler)
        return previous

    signal.signal = watched_signal


def _replaced(signum: int, handler: Any) -> None:
    if signum in _handler_replaced:
        return
    _handler_replaced[signum] = _describe_handler(handler)
    name = _signal_names.get(signum, str(signum))
    _complain(f"the application replaced df_gmr's {name} handler "
              f"({_handler_replaced[signum]}): kill -{name} and df-gmr "
              "report no longer make reports of this process")
    _run_callbacks(_handler_listeners, "handler-change hook")


def _describe_handler(handler: Any) -> str:
    if handler is signal.SIG_IGN:
        return "ignored"
    if handler is signal.SIG_DFL:
        return "default action"
    module = getattr(handler, "__module__", None) or "?"
    name = getattr(handler, "__qualname__", None) or type(handler).__name__
    return f"{module}.{name}"


def _arm_exit_guard() -> None:
    global _exit_guard_armed
    if not _exit_guard_armed:
        atexit.register(_at_exit)
        _exit_guard_armed = True


def _at_exit() -> None:
    """At interpreter exit: finish a requested report, then ignore the
    signal.

    Registered first, so it runs after the application's own atexit
    functions.  A report already requested (or being built) is waited for,
    at most EXIT_WAIT seconds, else its loss is said on stderr.  Then the
    signal is ignored for the rest of the shutdown: CPython resets
    Python-level handlers to the default action while finalizing (a
    SIGUSR2 then kills the process and changes its exit status), and
    faulthandler restores, after that, a handler that points into the
    finalized interpreter (a crash).  A handler the application set to the
    default action is left as it is.
    """
    try:
        if _thread_pid == os.getpid():
            deadline = time.monotonic() + EXIT_WAIT
            while (_requests or _building.locked()) and \
                    time.monotonic() < deadline:
                _native.sleep(0.01)
            if _requests or _building.locked():
                _complain(f"a report requested before exit was not done "
                          f"within {EXIT_WAIT:g} s; it is lost")
        for signum in list(_signal_names):
            current = signal.getsignal(signum)
            if _native_stacks.get(signum) and \
                    signum not in _handler_replaced:
                faulthandler.unregister(signum)
            if current is not signal.SIG_DFL:
                _set_handler(signum, signal.SIG_IGN)
    except Exception as error:
        _complain(f"cannot guard the exit: {error!r}")


def _rearm_native_dumps() -> None:
    """Re-check the C-level dump's descriptor; disarm it if it changed.

    Called by the reporting thread at every wake: a descriptor the
    service closed (closerange) and whose number it reused is never
    written to again.
    """
    if _streams.dump_fd_is_current():
        return
    for signum, wanted in _native_stacks.items():
        if wanted and not _handler_replaced.get(signum):
            faulthandler.unregister(signum)
    _streams.forget_dump_fd()
    for signum, wanted in _native_stacks.items():
        if wanted and not _handler_replaced.get(signum):
            _arm_native_dump(signum)


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


def _register_at_fork() -> None:
    global _at_fork_registered
    if not _at_fork_registered:
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _at_fork_registered = True


def _ensure_thread() -> None:
    # Started on the first request, not at set-up: a process that merely
    # has df_gmr enabled keeps one thread (Python 3.12 warns at every fork
    # of a multi-threaded process), and the handler can start it from the
    # main thread at any time.
    global _wake, _thread_pid
    if _thread_pid == os.getpid():
        return
    _register_at_fork()
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
    if _collector.deferred_in != 0:
        # Forked while a report held the collector off: the child has no
        # report to finish, so it gets the collector back at once.
        _collector.deferred_in = 0
        gc.enable()
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
        _rearm_native_dumps()
        merged, _requests = _requests, 0
        trigger = _last_trigger or "request"
        if merged > 1:
            trigger += f" ({merged} requests merged)"
        producer = _producer
        if producer is None:
            continue
        _building.acquire()
        try:
            with _collection_deferred():
                producer(trigger)
        except BaseException as error:
            _complain(f"report failed: {error!r}")
        finally:
            _building.release()


@contextlib.contextmanager
def _collection_deferred() -> Iterator[None]:
    """Hold the cyclic garbage collector off while a report is built.

    The report allocates a lot at once; a full collection that it
    triggers holds the GIL for tens of milliseconds with 10,000
    greenthreads, which stalls the hub.  Deferred, the same collection
    comes a fraction of a second later, on the service's own allocations.
    A service that disabled the collector itself keeps it disabled.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    _collector.deferred_in = os.getpid()
    try:
        yield
    finally:
        _collector.deferred_in = 0
        gc.enable()


class _Collector:
    """Which process (pid) holds the collector off for a report, or 0."""

    deferred_in = 0


_collector = _Collector()


def _complain(message: str) -> None:
    try:
        _streams.write(f"df_gmr: {message}\n".encode())
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
