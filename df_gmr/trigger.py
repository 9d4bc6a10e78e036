"""Signal and file triggers, and the reporting thread that answers them.

The signal handler's contract
=============================

df_gmr's handler for SIGUSR2 (or the signal given to ``setup_autorun``)
runs, as every Python-level handler does, in the main thread between two
bytecodes of whatever code was running there, often in the middle of a
greenthread or of the eventlet hub itself.  So it does the least work
possible and it guarantees:

* it never raises an error of its own (a failure is swallowed); what a
  handler of another signal raises goes on (see "Other signals" below);
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
for the signal wins, visibly (see ``signals``, which installs this
handler).

Other signals
-------------

A signal that comes in while a Python-level handler runs has its own
handler run inside that one, between two of its bytecodes: Python gives
no way to defer it.  oslo.service's eventlet handler depends on where it
runs: it wakes the hub only when it interrupts the hub's wait itself
(raising EINTR there); anywhere else, the wait goes on (PEP 475), up to a
minute in an idle worker, so a SIGTERM run inside df_gmr's handler would
be acted on a minute late, or never within a launcher's patience.  So
the handler holds the process's other signals off while it works (a
real signal mask: two system calls) and lets them in as it ends: their
handlers run then, inside it, and what they raise goes on.  And when
df_gmr's handler itself interrupted the hub's wait (eventlet's
``do_poll``, or oslo.service's ``do_sleep``) and the hub got a call
scheduled meanwhile (a handler run inside ours, before the mask was set
or as it ends, spawned one), it ends that wait with ``InterruptedError``
(EINTR), which both take as a wake-up: the hub turns once more and runs
it.  That is the only exception of its own it ever raises, there and
for that.  Otherwise it raises nothing: a signal that was already due
with ours is handled after it, from the hub's wait itself, and raising
there would push its handler into the hub's own code (where
oslo.service's ``eventlet.spawn`` can lose its call, if it lands while
the hub moves its new calls to its timers).

The handler is Python-level only.  When the main thread holds the GIL in
one long C call, no Python code runs anywhere until it returns: the
report comes when the call returns, and the main thread's stack can be
had at once from faulthandler's C-level dump on SIGURG, which
``df-gmr report`` sends when a report is late (see ``signals`` for why
that dump has a signal of its own).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import contextlib
import errno
import gc
import os
import signal
import sys
from types import FrameType
from typing import Any

from df_gmr import _native
from df_gmr.lifecycle import lifecycle
from df_gmr.lifecycle import process_signals
from df_gmr.lifecycle import run_each
from df_gmr.streams import complain

Producer = Callable[[str], object]


class Trigger:
    """The report signals, the requests and the reporting thread."""

    def __init__(self) -> None:
        self.producer: Producer | None = None
        #: signal -> its name, for the signals that trigger reports.
        self.signal_names: dict[int, str] = {}
        #: Called by the reporting thread at every wake, before a report.
        self.wake_hooks: list[Callable[[], None]] = []
        #: More signals df_gmr's own threads block (the stack signal).
        self.blocked: set[int] = set()
        self.requests = 0
        #: Requests ever counted, and how many of the first were answered
        #: (their report built or failed): what an exit waits for is the
        #: reports asked before it, not those a storm keeps asking.
        self.asked = 0
        self.answered = 0
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
        """The Python-level handler: count, wake, return.

        Other signals are held off meanwhile (see "Other signals" above).
        """
        held = _hold_signals()
        try:
            try:
                self.last_trigger = "signal " + self.signal_names.get(
                    signum, str(signum))
                self.requests += 1
                self.asked += 1  # after requests: see _reporting_loop
                if self.thread_pid != os.getpid():
                    self._ensure_thread()
                self._poke()
            except Exception:
                pass
        finally:
            # Their handlers run in here: what they raise goes on.
            _let_signals_in(held)
        if _in_hub_wait(frame) and _hub_has_new_calls():
            raise InterruptedError(errno.EINTR, "woken for a call scheduled "
                                   "inside df_gmr's handler")

    def request(self, label: str) -> None:
        """Ask the reporting thread for a report (from any thread)."""
        self.last_trigger = label
        self.requests += 1
        self.asked += 1
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
        # Forked while the parent's thread built a report, the lock came
        # over held, and no thread here would ever release it: the
        # child's reporting thread waited on it for good (no report, and
        # its exit waited 5 s).  The parent's requests are not the
        # child's.
        self.building = _native.allocate_lock()
        self.requests = self.asked = self.answered = 0
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
            signal.pthread_sigmask(signal.SIG_BLOCK,
                                   set(self.signal_names) | self.blocked)
        while True:
            wake.acquire()
            if self.thread_pid != os.getpid():
                return  # a stale thread in a forked child
            if sys.is_finalizing():
                return  # the interpreter is going away
            # Building is marked before the requests are taken: the exit
            # guard never sees neither (a report it would not wait for).
            self.building.acquire()
            # Every request counted in asked by now is in requests already
            # (the handler counts it there first): taken by this report,
            # or by one before.
            answering = self.asked
            try:
                run_each(self.wake_hooks, "wake hook")
                merged, self.requests = self.requests, 0
                label = self.last_trigger or "request"
                if merged > 1:
                    label += f" ({merged} requests merged)"
                producer = self.producer
                if producer is not None:
                    with self.collection_deferred():
                        producer(label)
            except BaseException as error:
                complain(f"report failed: {error!r}")
            finally:
                self.answered = max(self.answered, answering)
                self.building.release()

    @contextlib.contextmanager
    def collection_deferred(self) -> Iterator[None]:
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


def _hold_signals() -> Any:
    """Block the process's signals in this thread; return the old mask."""
    try:
        return _native.signal_mask(signal.SIG_BLOCK, process_signals())
    except (AttributeError, OSError, ValueError):  # no signal masks here
        return None


def _let_signals_in(held: Any) -> None:
    """Restore the mask ``held``: what came in meanwhile is handled here."""
    if held is not None:
        _native.signal_mask(signal.SIG_SETMASK, held)


def _in_hub_wait(frame: FrameType | None) -> bool:
    """Say whether ``frame`` is the eventlet hub waiting for events, where
    an EINTR ends the wait (eventlet's poll hubs, oslo.service's sleep)."""
    if frame is None:
        return False
    name = frame.f_code.co_name
    module = str(frame.f_globals.get("__name__", ""))
    return (name == "do_poll" and module.startswith("eventlet.hubs.")) or \
        (name == "do_sleep" and module.startswith("oslo_service."))


def _hub_has_new_calls() -> bool:
    """Say whether this thread's hub got calls scheduled while it waits.

    The hub moves its new calls (``next_timers``) to its timers before it
    waits: one there now was scheduled meanwhile, by a signal handler
    (oslo.service's ``eventlet.spawn``).
    """
    hubs = sys.modules.get("eventlet.hubs")
    hub = getattr(getattr(hubs, "_threadlocal", None), "hub", None)
    return bool(getattr(hub, "next_timers", None))


#: The process's one trigger.
trigger = Trigger()

# The module's functions, for the rest of df_gmr.
request = trigger.request


def set_producer(producer: Producer) -> None:
    """Set what the reporting thread calls for each (merged) request."""
    trigger.producer = producer


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

