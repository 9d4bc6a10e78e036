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
import time
from typing import Any

from df_gmr import _native
from df_gmr.lifecycle import lifecycle

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
        # index, started and abandoned change under ``lock`` only: the
        # reporting thread reads them to tell whether a piece overran.
        self.lock = _native.allocate_lock()
        self.index = start
        self.started = time.monotonic()
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
                self.started = started = time.monotonic()
            name, work, what = self.jobs[index]
            since = stuck.get(name)
            ran = since is None
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
                if ran:
                    # Under the lock: a cut-off marks it stuck under the
                    # lock too, so it is never left marked once it ended.
                    stuck.pop(name, None)
                if self.abandoned:
                    return  # cut off meanwhile: the result is not wanted
                self.outcomes[index] = outcome
                self.index = index + 1
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
        piece's ``error``.  Returns one outcome per job, in order.
        """
        outcomes: list[Outcome | None] = [None] * len(jobs)
        timeout = max(timeout, 0.01)
        start = 0
        while start < len(jobs):
            run = _Run(self, jobs, outcomes, start)
            lifecycle.start_thread("section", run.run)
            start = self._watch(run, timeout)
        return [outcome or Outcome(error="not run") for outcome in outcomes]

    def _watch(self, run: _Run, timeout: float) -> int:
        """Wait for ``run`` to finish; return where the rest starts."""
        while True:
            with run.lock:
                index, started = run.index, run.started
            if index >= len(run.jobs):  # finished: done is released
                run.done.acquire()
                return index
            deadline = started + timeout
            if run.done.acquire(timeout=max(deadline - time.monotonic(),
                                            0.001)):
                return len(run.jobs)
            name, _, what = run.jobs[index]
            with run.lock:
                overran = run.index == index and run.started == started \
                    and time.monotonic() >= deadline
                if overran:
                    run.abandoned = True
                    self.stuck.setdefault(name, started)
            if overran:
                run.outcomes[index] = Outcome(
                    error=f"{what} cut off: it took more than {timeout:g} s",
                    seconds=round(time.monotonic() - started, 6))
                return index + 1

    def run(self, name: str, work: Callable[[], Any], timeout: float,
            what: str) -> Outcome:
        """Run one piece (see ``run_all``)."""
        return self.run_all([(name, work, what)], timeout)[0]
