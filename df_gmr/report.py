"""Build a report: a header plus sections, each collected in isolation.

Building never raises: a section that fails, returns data that is not
JSON-compatible, or takes too long is reported in its own place with its
error, and every other section still comes out.
"""

from __future__ import annotations

from collections.abc import Iterable
import dataclasses
import datetime
import json
import os
import socket
import sys
import time
import traceback
from types import FrameType
from typing import Any

import df_gmr
from df_gmr import _native
from df_gmr import identity
from df_gmr import trigger
from df_gmr.sections import Section
from df_gmr.sections import plain_data

SCHEMA_VERSION = 1


#: Seconds a section may take when no ``[df_gmr] section_timeout`` says.
DEFAULT_SECTION_TIMEOUT = 10.0

#: Idents of the threads that run sections (shown as df_gmr's own).
section_threads: set[int] = set()
#: Sections still running past their budget: name -> since (monotonic).
_stuck: dict[str, float] = {}


def _forget_threads_after_fork() -> None:
    # The section threads of the parent do not exist in a forked child:
    # a section stuck there is not stuck here.
    section_threads.clear()
    _stuck.clear()


trigger.reset_after_fork(_forget_threads_after_fork)


@dataclasses.dataclass
class ReportContext:
    """What the sections may look at while a report is built."""

    version: Any = None
    conf: Any = None
    service_name: str | None = None
    trigger: str = "api"
    builder_thread: int | None = None
    signal_frame: FrameType | None = None
    section_timeout: float = DEFAULT_SECTION_TIMEOUT


@dataclasses.dataclass
class SectionResult:
    """One section of a built report: plain data or the reason it failed."""

    name: str
    title: str
    data: Any
    error: str | None
    seconds: float


@dataclasses.dataclass
class Report:
    """A built report: plain data only, ready to render."""

    header: dict[str, Any]
    sections: list[SectionResult]
    schema_version: int = SCHEMA_VERSION


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
    return header


def collect_section(section: Section, context: ReportContext) -> SectionResult:
    """Run one section within its time budget; failures become its error.

    The section runs in a thread of its own: a section that hangs is cut
    off after ``context.section_timeout`` seconds (its thread is left
    behind, and the section is skipped while it is still stuck) and the
    report goes on without it.
    """
    started = time.monotonic()
    data: Any = None
    error: str | None = None
    if section.name in _stuck:
        stuck_for = started - _stuck[section.name]
        error = (f"section skipped: still stuck in a previous report "
                 f"(for {stuck_for:.1f} s)")
        return SectionResult(section.name, section.title, None, error, 0.0)
    outcome = _run_with_budget(section, context)
    if outcome is None:
        error = (f"section cut off: it took more than "
                 f"{context.section_timeout:g} s")
    elif "failure" in outcome:
        error = _describe_failure(outcome["failure"])
    else:
        data, error = _checked(outcome["data"], section.max_bytes)
    return SectionResult(
        name=section.name,
        title=section.title,
        data=data,
        error=error,
        seconds=round(time.monotonic() - started, 6),
    )


def _checked(data: Any, max_bytes: int | None) -> tuple[Any, str | None]:
    if max_bytes is None:
        return data, None
    size = len(json.dumps(data))
    if size > max_bytes:
        return None, (f"section data truncated: {size} bytes is over the "
                      f"{max_bytes} byte limit")
    return data, None


def _run_with_budget(section: Section, context: ReportContext
                     ) -> dict[str, Any] | None:
    done = _native.allocate_lock()
    done.acquire()
    outcome: dict[str, Any] = {}

    def run() -> None:
        ident = _native.get_ident()
        section_threads.add(ident)
        try:
            data = section.collect(context)
            # Built-in sections return plain data by design; only what a
            # registered generator returns needs converting.
            if section.max_bytes is not None:
                data = plain_data(data)
            outcome["data"] = data
        except BaseException as failure:
            outcome["failure"] = failure
        finally:
            section_threads.discard(ident)
            _stuck.pop(section.name, None)
            done.release()

    _native.start_thread(run)
    if done.acquire(timeout=max(context.section_timeout, 0.01)):
        return outcome
    _stuck.setdefault(section.name, time.monotonic())
    if done.acquire(blocking=False):  # it finished just now after all
        _stuck.pop(section.name, None)
        return outcome
    return None


def build(context: ReportContext, sections: Iterable[Section]) -> Report:
    """Collect the header and every section into a ``Report``."""
    return Report(
        header=collect_header(context),
        sections=[collect_section(section, context) for section in sections],
    )


def _describe_failure(failure: BaseException) -> str:
    lines = traceback.format_exception(
        type(failure), failure, failure.__traceback__
    )
    return "".join(lines).rstrip()


def _one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
