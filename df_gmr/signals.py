"""Owning the report signal: set-up, the C-level dump, the application's
own handler, the interpreter's exit.

``trigger`` holds the handler's contract and the reporting thread; this
module installs that handler and keeps it honest:

* faulthandler's C-level handler, armed first, writes the main thread's
  stack to stderr at once (see ``streams`` for the descriptor), once per
  report: the Python-level handler disarms it, the reporting thread
  re-arms it after the report (and re-checks its descriptor at every
  wake); from the start of the interpreter's exit it stays disarmed;
* an application that installs its own handler for the signal wins,
  visibly: once it does (gunicorn re-executes itself on SIGUSR2), df_gmr
  says so on stderr and stops claiming the process is ready;
* at interpreter exit, a report already requested is finished (bounded),
  then the signal is ignored: it never changes the exit status or
  reaches a finalized interpreter.
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
from df_gmr.lifecycle import lifecycle
from df_gmr.streams import complain
from df_gmr.streams import stderr
from df_gmr.trigger import trigger

#: How long the interpreter's exit waits for a report already requested.
EXIT_WAIT = 5.0


class SignalOwner:
    """The report signals' handlers, dumps and exit guard."""

    def __init__(self) -> None:
        #: signal -> whether faulthandler's C-level dump was asked for.
        self.native_stacks: dict[int, bool] = {}
        #: signal -> the application's handler that replaced ours.
        self.replaced: dict[int, str] = {}
        #: Called when the application replaces our handler.
        self.listeners: list[Callable[[], None]] = []
        self.original_signal: Any = None
        self.exit_guard = False
        #: The signals whose C-level dump is registered with faulthandler
        #: now (a wanted one is disarmed while a report is pending).
        self.armed: set[int] = set()
        #: Held while arming or disarming: the main thread (set-up, the
        #: handler, the application's signal.signal) and the reporting
        #: thread both do.  Re-entrant: a handler may nest in the main
        #: thread; never held across anything that waits.
        self.dump_lock = _native.allocate_rlock()
        #: Set when the interpreter's exit begins: no more C-level dumps.
        self.exiting = False
        lifecycle.reset_after_fork(self._after_fork_in_child)

    def _after_fork_in_child(self) -> None:
        # Inside fork: the reporting thread may have held the lock.
        self.dump_lock = _native.allocate_rlock()

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
        trigger.signal_names[signum] = signal.Signals(signum).name
        if not stderr.captured:
            stderr.capture()
        lifecycle.remember_main_thread()
        self.watch_handler_changes()
        trigger.signal_hook = self.pause_native_dump
        with self.dump_lock:
            if native_stacks:
                self._disarm(signum)
                faulthandler.unregister(signum)  # so the chained one is ours
            self._set_handler(signum, trigger.on_signal)
            self.native_stacks[signum] = native_stacks
            self.replaced.pop(signum, None)
            if native_stacks and not self.exiting:
                self._arm_native_dump(signum)
        self._arm_exit_guard()
        # A process started with the signal blocked (a spawned worker, see
        # launchers) gets it unblocked once the handler is in place.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})

    def _arm_native_dump(self, signum: int) -> None:
        # Only the interrupted thread (the main thread: the others block
        # the signal or are df_gmr's own) is dumped.  all_threads=True
        # reads other threads' frames without the GIL while they run;
        # under a signal storm that crashed the process in our tests.
        # Called with dump_lock held.
        fd = stderr.dump_fd()
        if fd is not None:  # None: no stderr at set-up
            faulthandler.register(signum, file=fd, all_threads=False,
                                  chain=True)
            self.armed.add(signum)

    def _disarm(self, signum: int) -> None:
        # Called with dump_lock held.  Unregistering puts back the handler
        # faulthandler chained to: the Python-level one.
        if signum in self.armed:
            self.armed.discard(signum)
            faulthandler.unregister(signum)

    def _dumping(self) -> list[int]:
        return [signum for signum, wanted in self.native_stacks.items()
                if wanted and signum not in self.replaced]

    def pause_native_dump(self, signum: int) -> None:
        """Disarm the C-level dump until the report is done.

        Called by the Python-level handler (the handler's contract
        holds: O(1), never waits).  That handler runs, so the main thread
        is not stuck in a C call: the C-level stack has nothing to add
        until the report, which has them all.  And every C-level dump
        reads the main thread's frames from inside a signal handler:
        under a storm of hundreds of signals a second at exit, one of a
        few hundred processes crashed there (SIGSEGV) when each signal
        dumped.  Once per report keeps the dump for a hung main thread
        and takes the storm away.
        """
        if signum not in self.armed or not self.dump_lock.acquire(False):
            return  # the reporting thread re-arms now: one more dump
        try:
            self._disarm(signum)
        finally:
            self.dump_lock.release()

    def resume_native_dumps(self) -> None:
        """Re-arm the C-level dumps after a report (the reporting thread).
        """
        with self.dump_lock:
            if not self.exiting:
                for signum in self._dumping():
                    if signum not in self.armed:
                        self._arm_native_dump(signum)

    def rearm_native_dumps(self) -> None:
        """Disarm the C-level dump if its descriptor is no longer stderr.

        Called by the reporting thread at every wake (see streams).
        """
        if stderr.dump_fd_is_current():
            return
        with self.dump_lock:
            armed = sorted(self.armed)
            for signum in armed:
                self._disarm(signum)
            stderr.forget_dump_fd()
            if not self.exiting:
                for signum in armed:
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
            ours = (int(signalnum) in trigger.signal_names
                    and handler != trigger.on_signal)
            if not ours:
                return original(signalnum, handler)
            with self.dump_lock:
                unarmed = int(signalnum) in self.armed
                # First: unregistering restores the handler faulthandler
                # chained to, which must not override theirs.
                self._disarm(int(signalnum))
                try:
                    previous = original(signalnum, handler)
                except BaseException:
                    if unarmed:  # refused (not the main thread, bad handler)
                        self._arm_native_dump(int(signalnum))
                    raise
                self._replaced(int(signalnum), handler)
            return previous

        _signal.signal = watched_signal

    def _replaced(self, signum: int, handler: Any) -> None:
        if signum in self.replaced:
            return
        self.replaced[signum] = _describe_handler(handler)
        name = trigger.signal_names.get(signum, str(signum))
        complain(f"the application replaced df_gmr's {name} handler "
                 f"({self.replaced[signum]}): kill -{name} and df-gmr "
                 "report no longer make reports of this process")
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
        status), and faulthandler restores, after that, a handler that
        points into the finalized interpreter (a crash).  A handler the
        application set to the default action is left as it is.
        """
        try:
            self.exit_begins()
            if trigger.thread_pid == os.getpid():
                self._wait_for_report(EXIT_WAIT)
            for signum in list(trigger.signal_names):
                current = signal.getsignal(signum)
                if current is not signal.SIG_DFL:
                    self._set_handler(signum, signal.SIG_IGN)
        except Exception as error:
            complain(f"cannot guard the exit: {error!r}")

    def exit_begins(self) -> None:
        """Disarm the C-level dumps for good: the interpreter exits.

        Registered with threading's own exit hooks, which run first in
        the interpreter's exit (before the application's atexit
        functions), and called again by ``at_exit``.
        """
        with self.dump_lock:
            self.exiting = True
            for signum in sorted(self.armed):
                self._disarm(signum)

    def _wait_for_report(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (trigger.requests or trigger.building.locked()) and \
                time.monotonic() < deadline:
            _native.sleep(0.01)
        if trigger.requests or trigger.building.locked():
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
trigger.done_hooks.append(owner.resume_native_dumps)
install_signal = owner.install_signal
handler_state = owner.handler_state


def on_handler_replaced(callback: Callable[[], None]) -> None:
    """Call ``callback`` when the application replaces our handler."""
    if callback not in owner.listeners:
        owner.listeners.append(callback)
