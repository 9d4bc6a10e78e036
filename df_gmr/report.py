"""Build a report: a header plus sections, each collected in isolation.

Building never raises: a section that fails, returns data that cannot be
written as strict JSON, or takes too long is reported in its own place
with its error, and every other section still comes out.  Each section's
data is made plain JSON-compatible data in the section's own thread, so
that nothing a section returns runs code in the reporting thread.

Masking
=======

Once every section is collected, one pass masks the whole report (header,
data, errors and notes) before it is rendered, so text and JSON show the
same: every value of a ``secret=True`` option of the reported
configuration (read once per report, ``MIN_SECRET`` characters and more)
wherever it appears, and credentials by pattern (URL passwords,
``password=``, ``Authorization:``, credential dict keys... see
``df_gmr.redact``).  Strings a built-in section took from application
memory are cut to ``MAX_TEXT`` characters after masking, and the
section says how many were cut.  When the secret values cannot be read
(the configuration hangs or fails), the header says that only patterns
were masked.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
import dataclasses
import datetime
import json
import os
import socket
import sys
import time
import traceback
from typing import Any

import df_gmr
from df_gmr import _native
from df_gmr import confread
from df_gmr import findings
from df_gmr import identity
from df_gmr import naming
from df_gmr import redact
from df_gmr.context import ReportContext
from df_gmr.lifecycle import lifecycle
from df_gmr.runtime import Snapshot
from df_gmr.runtime import fingerprint
from df_gmr.sections import MAX_RAW_TEXT
from df_gmr.sections import Normaliser
from df_gmr.sections import Section

SCHEMA_VERSION = 1


#: Characters kept of one string a built-in section shows (after masking).
MAX_TEXT = 4096
#: Characters kept of a section's error (a traceback).
MAX_ERROR = 16384
#: The pseudo-section name under which the secret values are read.
SECRET_VALUES = "secret values"

#: Sections still running past their budget: name -> since (monotonic).
_stuck: dict[str, float] = {}


def _forget_stuck_after_fork() -> None:
    # The section threads of the parent do not exist in a forked child:
    # a section stuck there is not stuck here.
    _stuck.clear()


lifecycle.reset_after_fork(_forget_stuck_after_fork)


@dataclasses.dataclass
class SectionResult:
    """One section of a built report: plain data or the reason it failed."""

    name: str
    title: str
    data: Any
    error: str | None
    seconds: float
    #: What the data lost on its way (cut strings, NaN as strings).
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Report:
    """A built report: plain data only, ready to render."""

    header: dict[str, Any]
    sections: list[SectionResult]
    schema_version: int = SCHEMA_VERSION
    #: What is wrong, derived from the sections (see ``findings``).
    findings: list[dict[str, Any]] = dataclasses.field(default_factory=list)


NOT_PROGRAM_NAMES = ("", "-c", "-m", "__main__.py")


def service_name(explicit: str | None = None) -> str:
    """Return the service name: the given one, else the program's name."""
    if explicit and explicit not in NOT_PROGRAM_NAMES:
        return explicit
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if program in NOT_PROGRAM_NAMES:
        program = os.path.basename(sys.executable) or "python"
    return program


def collect_header(context: ReportContext) -> dict[str, Any]:
    """Return who wrote the report, when, and why."""
    now = datetime.datetime.now(datetime.timezone.utc)
    header: dict[str, Any] = {
        "title": "Guru Meditation",
        "service": service_name(context.service_name),
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "host": socket.gethostname(),
        "time": now.isoformat(timespec="microseconds"),
        "trigger": context.trigger,
        "df_gmr_version": df_gmr.__version__,
        "python": sys.version.split()[0],
    }
    try:
        header["process"] = identity.describe()
    except Exception as error:  # the header must come out regardless
        header["process"] = {"error": _one_line(error)}
    try:
        header["concurrency"] = fingerprint.read(context.runtime)
    except Exception as error:
        header["concurrency"] = {"error": _one_line(error)}
    return header


def collect_section(section: Section, context: ReportContext,
                    isolator: Isolator | None = None) -> SectionResult:
    """Run one section within its time budget; failures become its error.

    The section runs in a df_gmr thread (the report's ``isolator``'s, else
    one of its own), which also turns its data into strict
    JSON-compatible data: a section that hangs is cut off after
    ``context.section_timeout`` seconds (its thread is left behind, and
    the section is skipped while it is still stuck) and the report goes
    on without it.
    """
    started = time.monotonic()
    outcome, error = _run_isolated(
        section.name, lambda: _plain_outcome(section, context),
        context.section_timeout, "section", isolator)
    outcome = outcome or {}
    return SectionResult(
        name=section.name,
        title=section.title,
        data=outcome.get("data"),
        error=error or outcome.get("error"),
        seconds=round(time.monotonic() - started, 6),
        notes=outcome.get("notes", []),
    )


def _plain_outcome(section: Section, context: ReportContext
                   ) -> dict[str, Any]:
    """Collect a section and make its data plain (in the section's thread).

    Registered generators' objects may print themselves (``str()``, as
    oslo.reports models do); built-in sections' are named by their type.
    """
    registered = section.max_bytes is not None
    normaliser = Normaliser(describe=str if registered else naming.type_name,
                            max_text=None if registered else MAX_RAW_TEXT)
    try:
        collected = section.collect(context)
    except BaseException as failure:
        return {"error": _describe_failure(failure)}
    try:
        data = normaliser.plain(collected)
        del collected
        if section.max_bytes is not None:
            size = len(json.dumps(data, allow_nan=False))
            if size > section.max_bytes:
                return {"error": f"section data truncated: {size} bytes is "
                                 f"over the {section.max_bytes} byte limit"}
    except (ValueError, RecursionError) as failure:  # JSON cannot hold it
        return {"error": "section data cannot be written: "
                         + naming.error_text(failure)}
    except BaseException as failure:  # an object that cannot print itself
        return {"error": _describe_failure(failure)}
    return {"data": data, "notes": normaliser.notes()}


class Isolator:
    """Run works one at a time in a df_gmr thread, each within a budget.

    One report's sections and readings share one worker thread (starting
    a thread per section cost ~0.15 ms each); a work that overruns its
    budget keeps that thread, which ends once the work does, and the next
    work gets a new one.  ``close()`` ends the worker: no thread of
    df_gmr's outlives a report.
    """

    def __init__(self, single: bool = False) -> None:
        self._worker: _Worker | None = None
        self._single = single

    def run(self, name: str, work: Callable[[], Any], timeout: float,
            what: str) -> tuple[Any, str | None]:
        """Run ``work()`` in the worker thread; return (result, error).

        ``name`` identifies the work across reports: while an earlier run
        is still stuck, it is skipped.  ``what`` names it in the error.
        """
        started = time.monotonic()
        if name in _stuck:
            stuck_for = started - _stuck[name]
            return None, (f"{what} skipped: still stuck in a previous "
                          f"report (for {stuck_for:.1f} s)")
        done = _native.allocate_lock()
        done.acquire()
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["result"] = work()
            except BaseException as failure:
                outcome["error"] = _describe_failure(failure)
            finally:
                _stuck.pop(name, None)
                done.release()

        if self._worker is None:
            self._worker = _Worker(self._single)
        self._worker.give(run)
        finished = done.acquire(timeout=max(timeout, 0.01))
        if not finished:
            _stuck.setdefault(name, time.monotonic())
            finished = done.acquire(blocking=False)  # it finished just now?
            if finished:
                _stuck.pop(name, None)
        if not finished:
            self._worker.stop()  # it ends once the work does
            self._worker = None
            return None, f"{what} cut off: it took more than {timeout:g} s"
        return outcome.get("result"), outcome.get("error")

    def close(self) -> None:
        """End the worker thread (idle, or once its work ends)."""
        if self._worker is not None:
            self._worker.stop()
            self._worker = None


class _Worker:
    """A df_gmr thread that runs the works it is given, one at a time."""

    def __init__(self, single: bool = False) -> None:
        self._single = single  # ends after one work, not at stop()
        self._work: Callable[[], None] | None = None
        # Locked while the thread waits for work or runs one: give() and
        # stop() release it, each once per acquire (see Isolator.run).
        self._wake = _native.allocate_lock()
        self._wake.acquire()
        lifecycle.start_thread("section", self._loop)

    def _loop(self) -> None:
        while True:
            self._wake.acquire()
            work, self._work = self._work, None
            if work is None:
                return
            work()
            lifecycle.note_own_hub()  # see Lifecycle.note_own_hub
            if self._single:
                return

    def give(self, work: Callable[[], None]) -> None:
        self._work = work
        self._wake.release()

    def stop(self) -> None:
        self._work = None
        self._wake.release()


def _run_isolated(name: str, work: Callable[[], Any], timeout: float,
                  what: str, isolator: Isolator | None = None
                  ) -> tuple[Any, str | None]:
    """Run ``work()`` isolated (see ``Isolator.run``); a one-off thread
    unless ``isolator`` is given."""
    if isolator is not None:
        return isolator.run(name, work, timeout, what)
    single = Isolator(single=True)
    try:
        return single.run(name, work, timeout, what)
    finally:
        single.close()


def read_secret_values(context: ReportContext,
                       isolator: Isolator | None = None
                       ) -> tuple[list[str], str | None]:
    """Return the values of the conf's secret options, or why not.

    Read in a thread of its own, within the section time budget: reading
    a configuration runs its value parsing and interpolation.  The reason
    never quotes an error message (it could hold a value).
    """
    conf = confread.reported_conf(context.conf)
    if conf is None:
        return [], None

    def read() -> tuple[list[str], str | None]:
        try:
            return confread.secret_values(conf), None
        except Exception as failure:
            return [], naming.type_name(failure)

    outcome, error = _run_isolated(SECRET_VALUES, read,
                                   context.section_timeout, "reading",
                                   isolator)
    return outcome if outcome is not None else ([], error)


def build(context: ReportContext, sections: Iterable[Section]) -> Report:
    """Collect the header and every section into a masked ``Report``."""
    sections = list(sections)
    # The secret values are read in a thread that ends before the
    # snapshot, and the sections' worker starts after the header read the
    # threads: the Threads section lists only df_gmr's lasting threads.
    secrets, secrets_error = read_secret_values(context)
    isolator = Isolator()
    try:
        context.runtime = Snapshot(context.builder_thread)
        try:
            built = Report(
                header=collect_header(context),
                sections=[collect_section(section, context, isolator)
                          for section in sections],
            )
        finally:
            context.runtime.release()  # no live frame outlives the build
    finally:
        isolator.close()
    if secrets_error is not None:
        built.header["redaction"] = (
            f"secret option values could not be read ({secrets_error}): "
            "only credential patterns are masked")
    mask(built, {section.name: section for section in sections}, secrets)
    try:
        built.findings = findings.derive(
            {result.name: result.data for result in built.sections
             if result.error is None}, context.long_wait_threshold)
        built.findings.extend(findings.limits(built.sections))
    except Exception as error:  # a finding never costs the report
        built.findings = [{"kind": "report_limits", "severity": "warning",
                           "text": "findings could not be derived: "
                           + naming.error_text(error), "evidence": []}]
    return built


def mask(built: Report, sections: dict[str, Section], secrets: list[str]
         ) -> None:
    """Mask the secret values and credential patterns of a whole report."""
    redactor = redact.Redactor(secrets)
    built.header = redactor.data(built.header)
    for result in built.sections:
        section = sections.get(result.name)
        patterns = section.mask_patterns if section is not None else True
        limit = MAX_TEXT if section is not None and \
            section.max_bytes is None else None
        try:
            redactor.cut_count = 0
            result.data = redactor.data(result.data, patterns, limit)
            if redactor.cut_count:
                result.notes.append(
                    f"{redactor.cut_count} strings longer than {limit} "
                    "characters are cut")
        except Exception as failure:  # withheld rather than shown unmasked
            result.data = None
            result.error = ("section withheld: its data could not be "
                            f"masked ({naming.error_text(failure)})")
        if result.error is not None:
            result.error = redact.cut(redactor.text(result.error), MAX_ERROR)
        result.notes = [redactor.text(note) for note in result.notes]


def _describe_failure(failure: BaseException) -> str:
    """Return a failure's traceback (in the thread that caught it)."""
    try:
        lines = traceback.format_exception(
            type(failure), failure, failure.__traceback__)
        return redact.cut("".join(lines).rstrip(), MAX_ERROR)
    except BaseException:  # an exception that cannot even print itself
        return naming.error_text(failure)


def _one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
