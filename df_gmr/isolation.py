"""Run a report's pieces off the reporting thread, each within a budget.

A section may hang (a registered generator blocks, a configuration's
interpolation calls out): the reporting thread must go on without it.
So the pieces of a report run in a df_gmr thread of their own, one after
the other, while the reporting thread waits, with a timeout, for the
whole list to be done.  It wakes before then only when the piece being
run has overrun its budget: that piece is cut off, its thread left
behind (it ends by itself once the piece returns, and its result is
dropped), and a new thread goes on from the next piece.  A piece cut off
is skipped by later reports while it is still stuck.

One thread and two hand-offs per list: a thread started per section cost
~0.15 ms each (thread start and two wake-ups through the GIL).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import dataclasses
import math
import time
from typing import Any

from df_gmr import _native
from df_gmr.lifecycle import lifecycle

#: Bounds of a piece's budget, in seconds, and the budget of one that is
#: not a number (``[df_gmr] section_timeout = nan``): the default section
#: budget too (``context.DEFAULT_SECTION_TIMEOUT``).
MIN_TIMEOUT = 0.01
MAX_TIMEOUT = 3600.0
DEFAULT_TIMEOUT = 10.0

#: One piece of work: ``(name, work, what)``; ``name`` identifies it
#: across reports (a stuck one is skipped), ``what`` names it in errors
#: ("section", "reading").
Job = tuple[str, Callable[[], Any], str]


@dataclasses.dataclass
class Outcome:
    """What one piece returned, or why it has no result."""

    result: Any = None
    error: str | None = None
    seconds: float = 0.0


class _Run:
    """The pieces one thread runs, from ``index`` on (see Isolation)."""

    def __init__(self, isolation: Isolation, jobs: Sequence[Job],
                 outcomes: list[Outcome | None], start: int) -> None:
        self.isolation = isolation
        self.jobs = jobs
        self.outcomes = outcomes
        # The state below changes under ``lock`` only: the reporting
        # thread reads it to tell whether a piece overran.
        self.lock = _native.allocate_lock()
        self.index = start
        #: When the piece at ``index`` began running, or, while none runs,
        #: since when the thread has not begun it.
        self.started = time.monotonic()
        #: The piece at ``index`` is running (not skipped, not between).
        self.running = False
        #: This run's running piece was marked stuck by the watcher: the
        #: run clears the mark once the piece ends (never anyone else).
        self.marked = False
        self.abandoned = False
        self.done = _native.allocate_lock()
        self.done.acquire()

    def run(self) -> None:
        """Run the pieces (in the run's own thread)."""
        stuck = self.isolation.stuck
        while True:
            with self.lock:
                if self.abandoned:
                    return
                if self.index >= len(self.jobs):
                    break
                index = self.index
                name, work, what = self.jobs[index]
                since = stuck.get(name)
                self.started = started = time.monotonic()
                self.running = since is None
            if since is not None:
                outcome = Outcome(error=(
                    f"{what} skipped: still stuck in a previous report "
                    f"(for {started - since:.1f} s)"))
            else:
                outcome = Outcome()
                try:
                    outcome.result = work()
                except BaseException as failure:
                    outcome.error = self.isolation.describe(failure)
                lifecycle.note_own_hub()  # see Lifecycle.note_own_hub
            outcome.seconds = round(time.monotonic() - started, 6)
            with self.lock:
                self.running = False
                if self.marked:  # it ended: no longer stuck
                    stuck.pop(name, None)
                    self.marked = False
                if self.abandoned:
                    return  # cut off meanwhile: the result is not wanted
                self.outcomes[index] = outcome
                self.index = index + 1
                self.started = time.monotonic()
        self.done.release()


class Isolation:
    """Runs lists of pieces; knows which pieces are still stuck."""

    def __init__(self, describe: Callable[[BaseException], str]) -> None:
        #: ``describe(failure)`` turns an exception into its error text
        #: (in the thread that caught it, where its traceback is).
        self.describe = describe
        #: Pieces still running past their budget: name -> since.
        self.stuck: dict[str, float] = {}
        # The threads of the parent do not exist in a forked child: a
        # piece stuck there is not stuck here.
        lifecycle.reset_after_fork(self.stuck.clear)

    def run_all(self, jobs: Sequence[Job], timeout: float) -> list[Outcome]:
        """Run ``jobs`` in order, each within ``timeout`` seconds.

        Never raises for a piece: a failure, an overrun or a skip is that
        piece's ``error``.  Returns one outcome per job, in order.  A
        budget that is not a number gets the default, one below
        ``MIN_TIMEOUT`` or above ``MAX_TIMEOUT`` (infinite) that bound:
        the report never waits for ever.  If the wait itself is
        interrupted (KeyboardInterrupt in a thread that builds a report),
        the rest is abandoned before the exception goes on.
        """
        outcomes: list[Outcome | None] = [None] * len(jobs)
        timeout = DEFAULT_TIMEOUT if math.isnan(timeout) else min(
            max(timeout, MIN_TIMEOUT), MAX_TIMEOUT)
        start = 0
        while start < len(jobs):
            run = _Run(self, jobs, outcomes, start)
            lifecycle.start_thread("section", run.run)
            try:
                start = self._watch(run, timeout)
            except BaseException:
                with run.lock:
                    run.abandoned = True
                raise
        return [outcome or Outcome(error="not run") for outcome in outcomes]

    def _watch(self, run: _Run, timeout: float) -> int:
        """Wait for ``run`` to finish; return where the rest starts."""
        while True:
            with run.lock:
                index, started = run.index, run.started
            if index >= len(run.jobs):
                # Finished: done is released next (bounded all the same).
                run.done.acquire(timeout=timeout)
                return index
            deadline = started + timeout
            if run.done.acquire(timeout=max(deadline - time.monotonic(),
                                            0.001)):
                return len(run.jobs)
            name, _, what = run.jobs[index]
            with run.lock:
                if run.index != index or run.started != started \
                        or time.monotonic() < deadline:
                    continue  # it moved on meanwhile
                run.abandoned = True
                if run.running:
                    run.marked = True
                    self.stuck.setdefault(name, started)
                    error = f"{what} cut off: it took more than {timeout:g} s"
                else:  # the thread never began it (starved, or stopped)
                    error = (f"{what} not run: df_gmr's thread did not get "
                             f"to it within {timeout:g} s")
            run.outcomes[index] = Outcome(
                error=error, seconds=round(time.monotonic() - started, 6))
            return index + 1

    def run(self, name: str, work: Callable[[], Any], timeout: float,
            what: str) -> Outcome:
        """Run one piece (see ``run_all``)."""
        return self.run_all([(name, work, what)], timeout)[0]
