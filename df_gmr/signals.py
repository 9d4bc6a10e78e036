"""Owning the report signal: set-up, the C-level dump, the application's
own handler, the interpreter's exit.

``trigger`` holds the handler's contract and the reporting thread; this
module installs that handler and keeps it honest:

* faulthandler's C-level handler, armed first, writes the main thread's
  stack to stderr at once (see ``streams`` for the descriptor), and is
  re-checked at every wake of the reporting thread;
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
        if native_stacks:
            faulthandler.unregister(signum)  # so the chained one is ours
        self._set_handler(signum, trigger.on_signal)
        self.native_stacks[signum] = native_stacks
        self.replaced.pop(signum, None)
        if native_stacks:
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
        fd = stderr.dump_fd()
        if fd is not None:  # None: no stderr at set-up
            faulthandler.register(signum, file=fd, all_threads=False,
                                  chain=True)

    def _dumping(self) -> list[int]:
        return [signum for signum, wanted in self.native_stacks.items()
                if wanted and signum not in self.replaced]

    def rearm_native_dumps(self) -> None:
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
            ours = (int(signalnum) in trigger.signal_names
                    and handler != trigger.on_signal)
            unarmed = ours and signalnum in self._dumping()
            if unarmed:
                # First: unregistering restores the handler faulthandler
                # chained to, which must not override theirs.
                faulthandler.unregister(signalnum)
            try:
                previous = original(signalnum, handler)
            except BaseException:
                if unarmed:  # refused (not the main thread, a bad handler)
                    self._arm_native_dump(int(signalnum))
                raise
            if ours:
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
            if trigger.thread_pid == os.getpid():
                self._wait_for_report(EXIT_WAIT)
            for signum in list(trigger.signal_names):
                current = signal.getsignal(signum)
                if signum in self._dumping():
                    faulthandler.unregister(signum)
                if current is not signal.SIG_DFL:
                    self._set_handler(signum, signal.SIG_IGN)
        except Exception as error:
            complain(f"cannot guard the exit: {error!r}")

    def _wait_for_report(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (trigger.requests or trigger.building.locked()) and \
                time.monotonic() < deadline:
            _native.sleep(0.01)
        if trigger.requests or trigger.building.locked():
            complain(f"a report requested before exit was not done within "
                     f"{seconds:g} s; it is lost")

    def _arm_exit_guard(self) -> None:
        if not self.exit_guard:
            atexit.register(self.at_exit)
            self.exit_guard = True


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


def on_handler_replaced(callback: Callable[[], None]) -> None:
    """Call ``callback`` when the application replaces our handler."""
    if callback not in owner.listeners:
        owner.listeners.append(callback)
