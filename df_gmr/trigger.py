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

A thread does not survive ``fork()``: in the child the handler starts a
new reporting thread, with a fresh lock (see ``lifecycle``); a child
forked while a report held the garbage collector off gets it back.

At interpreter exit a report already requested is finished (bounded),
then the signal is ignored: it never changes the exit status or reaches
a finalized interpreter.  An application that installs its own handler
for the signal wins, visibly (see ``Trigger.watch_handler_changes``).

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

import _signal
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
from df_gmr.lifecycle import lifecycle
from df_gmr.streams import complain
from df_gmr.streams import stderr

Producer = Callable[[str], object]


class Trigger:
    """The report signals, the requests and the reporting thread."""

    def __init__(self) -> None:
        self.producer: Producer | None = None
        #: signal -> its name, for the signals that trigger reports.
        self.signal_names: dict[int, str] = {}
        #: signal -> whether faulthandler's C-level dump was asked for.
        self.native_stacks: dict[int, bool] = {}
        #: signal -> the application's handler that replaced ours.
        self.replaced: dict[int, str] = {}
        self.replaced_listeners: list[Callable[[], None]] = []
        self.original_signal: Any = None
        self.requests = 0
        self.last_trigger = ""
        self.wake: Any = None
        self.thread_pid = 0
        self.thread_ident: int | None = None
        #: Held by the reporting thread while it builds a report.
        self.building = _native.allocate_lock()
        #: The pid whose report holds the garbage collector off, or 0.
        self.collector_held_in = 0
        lifecycle.reset_after_fork(self._after_fork_in_child)

    # The handler and the requests (see the contract above).

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """The Python-level handler: count, wake, return."""
        try:
            self.last_trigger = "signal " + self.signal_names.get(
                signum, str(signum))
            self.requests += 1
            if self.thread_pid != os.getpid():
                self._ensure_thread()
            self._poke()
        except Exception:
            pass

    def request(self, label: str) -> None:
        """Ask the reporting thread for a report (from any thread)."""
        self.last_trigger = label
        self.requests += 1
        self._ensure_thread()
        self._poke()

    def _poke(self) -> None:
        wake = self.wake
        if wake is not None and wake.locked():
            with contextlib.suppress(RuntimeError):
                wake.release()  # a nested handler may release it first

    def _ensure_thread(self) -> None:
        # Started on the first request, not at set-up: a process that
        # merely has df_gmr enabled keeps one thread (Python 3.12 warns at
        # every fork of a multi-threaded process), and the handler can
        # start it from the main thread at any time.
        if self.thread_pid == os.getpid():
            return
        wake = _native.allocate_lock()
        wake.acquire()
        self.wake = wake
        self.thread_pid = os.getpid()
        lifecycle.start_thread("reporting", self._reporting_loop, (wake,))

    def _after_fork_in_child(self) -> None:
        # Inside fork: the parent's thread is gone and its lock may have
        # been copied in any state.
        self.thread_pid = 0
        self.thread_ident = None
        self.wake = None
        if self.collector_held_in:
            # Forked while a report held the collector off: the child has
            # no report to finish, so it gets the collector back at once.
            self.collector_held_in = 0
            gc.enable()
        with contextlib.suppress(Exception):  # never break a fork
            # A parent may fork with the signal blocked (see launchers).
            signal.pthread_sigmask(signal.SIG_UNBLOCK,
                                   set(self.signal_names))

    # The reporting thread.

    def _reporting_loop(self, wake: Any) -> None:
        self.thread_ident = _native.get_ident()
        with contextlib.suppress(Exception):
            signal.pthread_sigmask(signal.SIG_BLOCK, set(self.signal_names))
        while True:
            wake.acquire()
            if self.thread_pid != os.getpid():
                return  # a stale thread in a forked child
            if sys.is_finalizing():
                return  # the interpreter is going away
            self._rearm_native_dumps()
            merged, self.requests = self.requests, 0
            label = self.last_trigger or "request"
            if merged > 1:
                label += f" ({merged} requests merged)"
            producer = self.producer
            if producer is None:
                continue
            self.building.acquire()
            try:
                with self._collection_deferred():
                    producer(label)
            except BaseException as error:
                complain(f"report failed: {error!r}")
            finally:
                self.building.release()

    @contextlib.contextmanager
    def _collection_deferred(self) -> Iterator[None]:
        """Hold the cyclic garbage collector off while a report is built.

        The report allocates a lot at once; a full collection that it
        triggers holds the GIL for tens of milliseconds with 10,000
        greenthreads, which stalls the hub.  Deferred, the same
        collection comes a fraction of a second later, on the service's
        own allocations.  A service that disabled the collector itself
        keeps it disabled; a child forked meanwhile gets it back.
        """
        if not gc.isenabled():
            yield
            return
        # Marked before disabling and cleared after enabling: a fork in
        # between never leaves a child with the collector off.
        self.collector_held_in = os.getpid()
        gc.disable()
        try:
            yield
        finally:
            gc.enable()
            self.collector_held_in = 0

    # Owning the signal: set-up, the C-level dump, the application's own
    # handler, the interpreter's exit.

    def install_signal(self, signum: int, native_stacks: bool = True
                       ) -> None:
        """Answer ``signum`` with a report, from now on and in forked
        children.

        With ``native_stacks``, faulthandler's C-level handler first
        writes the main thread's Python stack to stderr, at once and
        without the GIL, then chains to the Python-level handler: when
        the main thread holds the GIL in a long C call, that stack (the
        call that holds it) is what an operator gets right away; the full
        report follows when the call returns.

        Raises ValueError when called outside the main thread (as
        ``signal.signal`` does) or for a signal that cannot be caught.
        """
        self.signal_names[signum] = signal.Signals(signum).name
        if not stderr.captured:
            stderr.capture()
        lifecycle.remember_main_thread()
        self.watch_handler_changes()
        if native_stacks:
            faulthandler.unregister(signum)  # so the chained one is ours
        self._set_handler(signum, self.on_signal)
        self.native_stacks[signum] = native_stacks
        self.replaced.pop(signum, None)
        if native_stacks:
            self._arm_native_dump(signum)
        _arm_exit_guard()
        # A process started with the signal blocked (a spawned worker, see
        # launchers) gets it unblocked once the handler is in place.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})

    def _arm_native_dump(self, signum: int) -> None:
        # Only the interrupted thread (the main thread: the others block
        # the signal or are df_gmr's own) is dumped.  all_threads=True
        # reads other threads' frames without the GIL while they run;
        # under a signal storm that crashed the process in our tests.
        fd = stderr.dump_fd()
        if fd is not None:  # None: no stderr at set-up
            faulthandler.register(signum, file=fd, all_threads=False,
                                  chain=True)

    def _dumping(self) -> list[int]:
        return [signum for signum, wanted in self.native_stacks.items()
                if wanted and signum not in self.replaced]

    def _rearm_native_dumps(self) -> None:
        """Disarm the C-level dump if its descriptor is no longer stderr.

        Called by the reporting thread at every wake (see streams).
        """
        if stderr.dump_fd_is_current():
            return
        for signum in self._dumping():
            faulthandler.unregister(signum)
        stderr.forget_dump_fd()
        for signum in self._dumping():
            self._arm_native_dump(signum)

    def _set_handler(self, signum: int, handler: Any) -> Any:
        if self.original_signal is None:
            return signal.signal(signum, handler)
        # The C function takes plain numbers for SIG_IGN and SIG_DFL.
        return self.original_signal(int(signum), handler if callable(
            handler) else int(handler))

    def handler_state(self, signum: int) -> str:
        """Return ``df_gmr``, or how the application replaced our handler.
        """
        return self.replaced.get(signum, "df_gmr")

    def watch_handler_changes(self) -> None:
        """Notice when the application installs its own handler for our
        signal.

        gunicorn, for one, re-executes itself on SIGUSR2: once the
        application takes the signal, df_gmr stops claiming the process
        is ready (its entry says so, ``df-gmr report`` refuses it) and
        says so once on stderr.  The C function ``_signal.signal`` is
        wrapped, which ``signal.signal`` looks up at every call, so a
        ``from signal import signal`` done before set-up is seen too; a
        handler set from C is not (``df-gmr`` also checks that the
        kernel still has a handler).
        """
        if self.original_signal is not None:
            return
        original = self.original_signal = _signal.signal

        @functools.wraps(original)
        def watched_signal(signalnum: Any, handler: Any) -> Any:
            ours = (int(signalnum) in self.signal_names
                    and handler != self.on_signal)
            if ours and signalnum in self._dumping():
                # First: unregistering restores the handler faulthandler
                # chained to, which must not override theirs.
                faulthandler.unregister(signalnum)
            previous = original(signalnum, handler)
            if ours:
                self._replaced(int(signalnum), handler)
            return previous

        _signal.signal = watched_signal

    def _replaced(self, signum: int, handler: Any) -> None:
        if signum in self.replaced:
            return
        self.replaced[signum] = _describe_handler(handler)
        name = self.signal_names.get(signum, str(signum))
        complain(f"the application replaced df_gmr's {name} handler "
                 f"({self.replaced[signum]}): kill -{name} and df-gmr "
                 "report no longer make reports of this process")
        for listener in self.replaced_listeners:
            try:
                listener()
            except Exception as error:
                complain(f"handler-change hook failed: {error!r}")

    def at_exit(self) -> None:
        """At interpreter exit: finish a requested report, then ignore the
        signal.

        Registered before the application's own atexit functions, so it
        runs after them.  A report already requested (or being built) is
        waited for, at most EXIT_WAIT seconds, else its loss is said on
        stderr.  Then the signal is ignored for the rest of the shutdown:
        CPython resets Python-level handlers to the default action while
        finalizing (a SIGUSR2 then kills the process and changes its exit
        status), and faulthandler restores, after that, a handler that
        points into the finalized interpreter (a crash).  A handler the
        application set to the default action is left as it is.
        """
        try:
            if self.thread_pid == os.getpid():
                self._wait_for_report(EXIT_WAIT)
            for signum in list(self.signal_names):
                current = signal.getsignal(signum)
                if signum in self._dumping():
                    faulthandler.unregister(signum)
                if current is not signal.SIG_DFL:
                    self._set_handler(signum, signal.SIG_IGN)
        except Exception as error:
            complain(f"cannot guard the exit: {error!r}")

    def _wait_for_report(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (self.requests or self.building.locked()) and \
                time.monotonic() < deadline:
            _native.sleep(0.01)
        if self.requests or self.building.locked():
            complain(f"a report requested before exit was not done within "
                     f"{seconds:g} s; it is lost")


#: How long the interpreter's exit waits for a report already requested.
EXIT_WAIT = 5.0


def _describe_handler(handler: Any) -> str:
    if handler == signal.SIG_IGN:
        return "ignored"
    if handler == signal.SIG_DFL:
        return "default action"
    module = getattr(handler, "__module__", None) or "?"
    name = getattr(handler, "__qualname__", None) or type(handler).__name__
    return f"{module}.{name}"


_exit_guard: list[bool] = []


def _arm_exit_guard() -> None:
    if not _exit_guard:
        import atexit

        atexit.register(trigger.at_exit)
        _exit_guard.append(True)


#: The process's one trigger.
trigger = Trigger()

# The module's functions, for the rest of df_gmr.
install_signal = trigger.install_signal
request = trigger.request
handler_state = trigger.handler_state


def set_producer(producer: Producer) -> None:
    """Set what the reporting thread calls for each (merged) request."""
    trigger.producer = producer


def on_handler_replaced(callback: Callable[[], None]) -> None:
    """Call ``callback`` when the application replaces our handler."""
    if callback not in trigger.replaced_listeners:
        trigger.replaced_listeners.append(callback)


def report_signals() -> set[int]:
    """Return the signals that trigger reports in this process."""
    return set(trigger.signal_names)


def reporting_thread_ident() -> int | None:
    """Return the reporting thread's ident in this process, if running."""
    return trigger.thread_ident if trigger.thread_pid == os.getpid() \
        else None


def main_thread_ident() -> int | None:
    """Return the OS ident of this process's main thread (after forks too).
    """
    ident = lifecycle.main_thread_ident()
    if ident is not None:
        return ident
    for name in ("__original_module_threading", "threading"):
        module = sys.modules.get(name)
        if module is not None:
            return getattr(module.main_thread(), "ident", None)
    return None


#: Kept for the modules that register their after-fork resets here.
reset_after_fork = lifecycle.reset_after_fork
