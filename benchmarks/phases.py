"""Where one df_gmr report's time goes: its phases, timed in the child.

``PhaseClock.install()`` wraps, by module or class attribute, the steps
that ``df_gmr.report.build`` and ``df_gmr.render.as_text`` look up by
name when they run; a name df_gmr no longer has is left alone (its time
goes to its caller's phase, or to ``other``).  Each wrapper costs two
``perf_counter()`` calls, a few dozen per report: nothing next to a
report.  A phase's time is its own (exclusive): the phases nested in it
are taken out, so the phases never overlap and add up to the report's
whole time.

- ``secret values``: reading the conf's secret options (in a thread);
- ``header``: who, when, the concurrency fingerprint;
- ``collect <section>``: the section's own ``collect`` (the parts below
  taken out);
- ``plain data and mask <section>``: a built-in section's one walk that
  makes its data plain JSON-compatible data and masks it (in the
  section's thread); ``plain data <section>``: a registered section's
  (masked by ``mask``), or a value that walk hands to ``plain``;
- ``section threads``: starting the sections' thread and waiting for it
  (``df_gmr.isolation``: the sections run one after the other in one
  df_gmr thread, a new one after a section that overran);
- ``snapshot: hubs``, ``snapshot: greenlet waits``, ``snapshot: request
  ids``, ``snapshot: descriptors``: reading the runtime snapshot (once
  per report, by the first section that needs it; what a descriptor is,
  as often as it is asked);
- ``green threads: gather``: finding, walking and classifying every
  greenlet (``Greens._gather``);
- ``grouping``: building the groups and describing their members
  (``runtime.grouping.build``, threads and greenthreads);
- ``mask``: masking secrets and credential patterns in the rest of the
  report (the header, registered sections, errors and notes);
- ``findings``: deriving the findings and rendering them;
- ``render <section>``: the section's text;
- ``render (rest)``: the header's text and the joining of the lines;
- ``other``: the rest (the context, the snapshot's creation and release).

The report is built sequentially (each section's thread is waited for)
so one stack of nested phases serves every thread.  ``skip_findings``
makes the findings pass return no findings (the "without findings"
report of the paired comparison): the report is otherwise the same.
"""

from __future__ import annotations

from collections.abc import Callable
import functools
import importlib
import time
from typing import Any

OTHER = "other"
FINDINGS = "findings"
SECTION_THREADS = "section threads"

Namer = Callable[..., str]


class PhaseClock:
    """Times the phases of the reports made while it is installed."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.skip_findings = False
        self._undo: list[tuple[Any, str, Any]] = []
        #: Time spent in nested phases, per open phase (innermost last).
        self._nested: list[float] = []
        #: The section being collected (sections run one at a time).
        self._section = "?"

    def reset(self) -> None:
        """Forget the phases of the previous report."""
        self.seconds = {}
        self._nested = []

    def add(self, phase: str, seconds: float) -> None:
        """Count ``seconds`` to ``phase``."""
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def finish(self, total: float) -> dict[str, float]:
        """Return this report's phases; ``other`` is what is left."""
        phases = dict(self.seconds)
        phases[OTHER] = max(0.0, total - sum(phases.values()))
        return phases

    # -- installing ------------------------------------------------------

    def install(self) -> PhaseClock:
        """Wrap df_gmr's report steps (those it still has)."""
        self._wrap("df_gmr.report", "read_secret_values",
                   _fixed("secret values"))
        self._wrap("df_gmr.report", "collect_header", _fixed("header"))
        self._wrap("df_gmr.report", "collect_sections",
                   _fixed(SECTION_THREADS))
        self._wrap("df_gmr.report", "_plain_outcome",
                   lambda *args, **kwargs: f"collect {self._section}",
                   entering=self._entering)
        self._wrap("df_gmr.report", "mask", _fixed("mask"))
        self._wrap("df_gmr.findings", "derive", _fixed(FINDINGS),
                   skippable=True)
        self._wrap("df_gmr.findings", "limits", _fixed(FINDINGS),
                   skippable=True)
        self._wrap("df_gmr.runtime.hubs", "read", _fixed("snapshot: hubs"))
        self._wrap("df_gmr.runtime.requests", "request_ids",
                   _fixed("snapshot: request ids"))
        self._wrap("df_gmr.runtime", "Snapshot._read_greenlet_waits",
                   _fixed("snapshot: greenlet waits"))
        self._wrap("df_gmr.runtime.fds", "FdTable.describe",
                   _fixed("snapshot: descriptors"))
        self._wrap("df_gmr.runtime.greens", "Greens._gather",
                   _fixed("green threads: gather"))
        self._wrap("df_gmr.runtime.grouping", "build", _fixed("grouping"))
        self._wrap("df_gmr.render", "finding_lines", _fixed(FINDINGS))
        self._wrap("df_gmr.render", "_section_lines",
                   lambda result, *args, **kwargs:
                   f"render {getattr(result, 'name', '?')}")
        self._wrap("df_gmr.render", "as_text", _fixed("render (rest)"))
        self._wrap_normaliser()
        return self

    def uninstall(self) -> None:
        """Put df_gmr's own functions back."""
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo = []

    def _entering(self, section: Any, *args: Any, **kwargs: Any) -> None:
        self._section = str(getattr(section, "name", "?"))

    def _wrap(self, module_name: str, path: str, namer: Namer,
              skippable: bool = False,
              entering: Callable[..., None] | None = None) -> None:
        try:
            owner: Any = importlib.import_module(module_name)
        except ImportError:
            return
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent, None)
        original = getattr(owner, name, None)
        if owner is None or not callable(original):
            return
        clock = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if skippable and clock.skip_findings:
                return []
            if entering is not None:
                entering(*args, **kwargs)
            clock._nested.append(0.0)
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.perf_counter() - started
                nested = clock._nested.pop()
                clock.add(namer(*args, **kwargs), max(0.0, spent - nested))
                if clock._nested:
                    clock._nested[-1] += spent

        self._undo.append((owner, name, original))
        setattr(owner, name, timed)

    def _wrap_normaliser(self) -> None:
        # Normaliser.plain and .masked (a built-in section's one walk that
        # also masks) recurse through the instance: only the outer call
        # is timed (the instance's own method is set aside while it runs,
        # so that the recursion costs nothing more).
        report: Any = importlib.import_module("df_gmr.report")
        base: Any = getattr(report, "Normaliser", None)
        if not isinstance(base, type) or not hasattr(base, "plain"):
            return
        clock = self
        phases = {"plain": "plain data", "masked": "plain data and mask"}

        def timed(instance: Any, name: str) -> Any:
            def method(value: Any, *more: Any, **options: Any) -> Any:
                delattr(instance, name)
                clock._nested.append(0.0)
                started = time.perf_counter()
                try:
                    return getattr(base, name)(instance, value, *more,
                                               **options)
                finally:
                    spent = time.perf_counter() - started
                    own = spent - clock._nested.pop()
                    clock.add(f"{phases[name]} {clock._section}", own)
                    if clock._nested:
                        clock._nested[-1] += spent
                    setattr(instance, name, method)

            return method

        def normaliser(*args: Any, **kwargs: Any) -> Any:
            instance = base(*args, **kwargs)
            for name in phases:
                if hasattr(base, name):
                    setattr(instance, name, timed(instance, name))
            return instance

        self._undo.append((report, "Normaliser", base))
        report.Normaliser = normaliser


def _fixed(phase: str) -> Namer:
    def namer(*args: Any, **kwargs: Any) -> str:
        return phase
    return namer


def top(phases: dict[str, float], count: int = 5
        ) -> list[tuple[str, float]]:
    """Return the ``count`` biggest phases, biggest first."""
    return sorted(phases.items(), key=lambda item: -item[1])[:count]
