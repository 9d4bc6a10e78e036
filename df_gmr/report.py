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
from df_gmr import identity
from df_gmr.sections import Section
from df_gmr.sections import plain_data

SCHEMA_VERSION = 1

#: A section's JSON data larger than this is replaced by a truncation note.
MAX_SECTION_BYTES = 8 * 1024 * 1024


@dataclasses.dataclass
class ReportContext:
    """What the sections may look at while a report is built."""

    version: Any = None
    conf: Any = None
    service_name: str | None = None
    trigger: str = "api"
    builder_thread: int | None = None
    signal_frame: FrameType | None = None


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
    """Run one section, turning any failure into its error text."""
    started = time.monotonic()
    data: Any = None
    error: str | None = None
    try:
        data = plain_data(section.collect(context))
        size = len(json.dumps(data))
        if size > MAX_SECTION_BYTES:
            data = None
            error = (
                f"section data truncated: {size} bytes is over the "
                f"{MAX_SECTION_BYTES} byte limit"
            )
    except BaseException as failure:
        data = None
        error = _describe_failure(failure)
    return SectionResult(
        name=section.name,
        title=section.title,
        data=data,
        error=error,
        seconds=round(time.monotonic() - started, 6),
    )


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
