"""Owning the report signal: set-up, the stack signal, the application's
own handler, the interpreter's exit.

``trigger`` holds the handler's contract and the reporting thread; this
module installs that handler and keeps it honest:

* the report signal (SIGUSR2) has a Python-level handler only;
* a second signal, SIGURG, is faulthandler's C-level dump of the main
  thread's stack to stderr (see ``streams`` for the descriptor): it comes
  at once, without the GIL, when the main thread holds the GIL in a long
  C call and no report can be built.  ``df-gmr report`` sends it when a
  report is late; an operator can with ``kill -URG``.  SIGURG is ignored
  by default: sent to a process that lost the dump, it does nothing.
  Why not on the report signal itself: faulthandler can only pass a
  signal on to the Python-level handler by re-raising it with the signal
  unblocked (``chain=True``), and under a burst of signals those dumps
  nest on the small alternate signal stack until it overflows: with
  CPython 3.11 and no df_gmr at all, ten SIGUSR2 sent back to back to a
  process holding the GIL crashed it (SIGSEGV) one time in two.
  Unchained, the kernel blocks the signal while the dump runs: nothing
  nests (measured once, outside the tests; the storms are in
  tests/process/test_faults.py and test_hardening.py);
* an application that installs its own handler for either signal wins,
  visibly: once it does (gunicorn re-executes itself on SIGUSR2), df_gmr
  says so on stderr and stops claiming what it no longer does;
* at interpreter exit, a report already requested is finished (bounded),
  then the report signal is ignored and the dump disarmed: neither
  changes the exit status or reaches a finalized interpreter.
"""

from __future__ import annotations

import _signal
import atexit
from collections.abc import Callable
import faulthandler
import functools
import os
import signal
import sys
import time
from typing import Any

from df_gmr import _native
from df_gmr.exchange import STACK_SIGNAL
from df_gmr.lifecycle import lifecycle
from df_gmr.streams import complain
from df_gmr.streams import stderr
from df_gmr.trigger import trigger

#: How long the interpreter's exit waits for a report already requested.
EXIT_WAIT = 5.0


class SignalOwner:
    """The report signals' handlers, the stack dump and the exit guard."""

    def __init__(self) -> None:
        #: Whether the C-level stack dump was asked for.
        self.stack_dump = False
        #: Whether it is registered with faulthandler now.
        self.armed = False
        #: signal -> the application's handler that replaced ours.
        self.replaced: dict[int, str] = {}
        #: Called when the application replaces one of our handlers.
        self.listeners: list[Callable[[], None]] = []
        self.original_signal: Any = None
        self.exit_guard = False
        #: Set when the interpreter's exit begins: no more stack dumps.
        self.exiting = False
        #: Held while arming or disarming the dump: the main thread (set-up,
        #: the application's signal.signal, the exit) and the reporting
        #: thread (a new stderr) both do.  Re-entrant (a Python-level
        #: handler may call signal.signal in the main thread); held only
        #: around faulthandler and signal calls, never across a write.
        self.dump_lock = _native.allocate_rlock()
        lifecycle.reset_after_fork(self._after_fork_in_child)

    def _after_fork_in_child(self) -> None:
        # Inside fork: the reporting thread may have held the lock.
        self.dump_lock = _native.allocate_rlock()

    def install_signal(self, signum: int, native_stacks: bool = True
                       ) -> None:
        """Answer ``signum`` with a report, from now on and in forked
        children.

        With ``native_stacks``, SIGURG makes faulthandler write the main
        thread's Python stack to stderr, at once and without the GIL:
        when the main thread holds the GIL in a long C call, that stack
        (the call that holds it) is what an operator gets right away;
        the full report follows when the call returns.

        Raises ValueError when called outside the main thread (as
        ``signal.signal`` does) or for a signal that cannot be caught.
        """
        trigger.signal_names[signum] = signal.Signals(signum).name
        if not stderr.captured:
            stderr.capture()
        lifecycle.remember_main_thread()
        self.watch_handler_changes()
        self._set_handler(signum, trigger.on_signal)
        self.replaced.pop(signum, None)
        if native_stacks:
            self.arm_stack_dump()
        self._arm_exit_guard()
        # A process started with the signal blocked (a spawned worker, see
        # launchers) gets it unblocked once the handler is in place.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})

    def arm_stack_dump(self) -> None:
        """Make SIGURG dump the main thread's stack, unless the
        application handles SIGURG itself."""
        trigger.blocked.add(STACK_SIGNAL)  # never df_gmr's own threads
        with self.dump_lock:
            if self.armed or self.exiting:
                return
            self.stack_dump = True
            current = signal.getsignal(STACK_SIGNAL)
            theirs = callable(current)  # the application's: it stays
            if theirs:
                self.replaced[STACK_SIGNAL] = _describe_handler(current)
            else:
                self.replaced.pop(STACK_SIGNAL, None)
                self._register()
        if theirs:  # said outside the lock: a write may wait
            complain(f"SIGURG has the application's handler "
                     f"({self.replaced[STACK_SIGNAL]}): df_gmr's "
                     "C-level stack dump is off")

    def _register(self) -> None:
        # With dump_lock held.  Only the thread that receives the signal
        # is dumped (df-gmr sends it to the main thread; a process-directed
        # one goes to the main thread unless a signal is pending there);
        # all_threads=True reads other threads' frames without the GIL
        # while they run, which crashed a process in our tests.
        # chain=False: see the module's docstring.
        fd = stderr.dump_fd()
        if fd is not None:  # None: no stderr at set-up
            faulthandler.register(STACK_SIGNAL, file=fd, all_threads=False,
                                  chain=False)
            self.armed = True

    def _disarm(self) -> None:
        # With dump_lock held.  Unregistering puts back the handler that
        # was there before: the default action (ignore).
        if self.armed:
            self.armed = False
            faulthandler.unregister(STACK_SIGNAL)

    def stack_signal(self) -> str | None:
        """Return the stack dump's signal name while it is ours, or None."""
        return STACK_SIGNAL.name if self.armed else None

    def rearm_native_dumps(self) -> None:
        """Re-open the dump's descriptor if it is no longer stderr.

        Called by the reporting thread at every wake (see streams).
        """
        if stderr.dump_fd_is_current():
            return
        with self.dump_lock:
            armed = self.armed
            self._disarm()
            stderr.forget_dump_fd()
            if armed and not self.exiting:
                self._register()

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
        signals.

        gunicorn, for one, re-executes itself on SIGUSR2: once the
        application takes the signal, df_gmr stops claiming the process
        is ready (its entry says so, ``df-gmr report`` refuses it) and
        says so once on stderr; the same for SIGURG and the stack dump.
        The C function ``_signal.signal`` is wrapped, which
        ``signal.signal`` looks up at every call, so a ``from signal
        import signal`` done before set-up is seen too; a handler set
        from C is not (``df-gmr`` also checks that the kernel still has a
        handler).
        """
        if self.original_signal is not None:
            return
        original = self.original_signal = _signal.signal

        @functools.wraps(original)
        def watched_signal(signalnum: Any, handler: Any) -> Any:
            signum = int(signalnum)
            if signum == STACK_SIGNAL and self.stack_dump:
                return self._stack_signal_taken(original, signum, handler)
            previous = original(signalnum, handler)
            if signum in trigger.signal_names and \
                    handler != trigger.on_signal:
                self._replaced(signum, handler)
            return previous

        _signal.signal = watched_signal

    def _stack_signal_taken(self, original: Any, signum: int,
                            handler: Any) -> Any:
        with self.dump_lock:
            armed = self.armed
            # First: unregistering restores the handler faulthandler
            # replaced, which must not override theirs.
            self._disarm()
            try:
                previous = original(signum, handler)
            except BaseException:
                if armed:  # refused (not the main thread, a bad handler)
                    self._register()
                raise
        self._replaced(signum, handler)  # outside the lock: it writes
        return previous

    def _replaced(self, signum: int, handler: Any) -> None:
        if signum in self.replaced:
            return
        self.replaced[signum] = _describe_handler(handler)
        name = signal.Signals(signum).name
        if signum == STACK_SIGNAL:
            effect = "df_gmr's C-level stack dump is off"
        else:
            effect = (f"kill -{name} and df-gmr report no longer make "
                      "reports of this process")
        complain(f"the application replaced df_gmr's {name} handler "
                 f"({self.replaced[signum]}): {effect}")
        for listener in self.listeners:
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
        status).  A handler the application set to the default action is
        left as it is.
        """
        try:
            self.exit_begins()
            self.worker_leaving()  # the same wait: finish what was asked
            for signum in list(trigger.signal_names):
                current = signal.getsignal(signum)
                if current is not signal.SIG_DFL:
                    self._set_handler(signum, signal.SIG_IGN)
        except Exception as error:
            complain(f"cannot guard the exit: {error!r}")

    def worker_leaving(self) -> None:
        """In a worker about to leave with ``os._exit`` (oslo.service's
        way, which runs no atexit function): finish a requested report,
        at most EXIT_WAIT seconds, as ``at_exit`` does."""
        try:
            if trigger.thread_pid == os.getpid():
                self._wait_for_report(EXIT_WAIT)
        except Exception as error:
            complain(f"cannot finish the report before exit: {error!r}")

    def exit_begins(self) -> None:
        """Disarm the stack dump for good: the interpreter exits.

        Registered with threading's own exit hooks, which run first in
        the interpreter's exit (before the application's atexit
        functions): the frames a dump reads are being torn down.  Called
        again by ``at_exit``.
        """
        with self.dump_lock:
            self.exiting = True
            self._disarm()

    def _wait_for_report(self, seconds: float) -> None:
        # The reports asked until now: not those a storm of signals keeps
        # asking meanwhile (it would hold the exit for the whole budget).
        asked = trigger.asked
        deadline = time.monotonic() + seconds

        def pending() -> bool:
            return trigger.answered < asked and bool(
                trigger.requests or trigger.building.locked())

        while pending() and time.monotonic() < deadline:
            _native.sleep(0.01)
        if pending():
            complain(f"a report requested before exit was not done within "
                     f"{seconds:g} s; it is lost")

    def _arm_exit_guard(self) -> None:
        if self.exit_guard:
            return
        atexit.register(self.at_exit)
        self.exit_guard = True
        # threading's hooks run at the very start of the exit; the module
        # eventlet patches is the one the interpreter calls (in place).
        threading = sys.modules.get("threading")
        register = getattr(threading, "_register_atexit", None)
        if register is not None:
            try:
                register(self.exit_begins)
            except RuntimeError:  # set up while the interpreter exits
                self.exit_begins()


def _describe_handler(handler: Any) -> str:
    if handler == signal.SIG_IGN:
        return "ignored"
    if handler == signal.SIG_DFL:
        return "default action"
    module = getattr(handler, "__module__", None) or "?"
    name = getattr(handler, "__qualname__", None) or type(handler).__name__
    return f"{module}.{name}"


#: The process's one owner of the report signals.
owner = SignalOwner()
trigger.wake_hooks.append(owner.rearm_native_dumps)
install_signal = owner.install_signal
handler_state = owner.handler_state
stack_signal = owner.stack_signal
worker_leaving = owner.worker_leaving


def on_handler_replaced(callback: Callable[[], None]) -> None:
    """Call ``callback`` when the application replaces one of our
    handlers."""
    if callback not in owner.listeners:
        owner.listeners.append(callback)
