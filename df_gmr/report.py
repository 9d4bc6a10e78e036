"""Build a report: a header plus sections, each collected in isolation.

Building never raises: a section that fails, returns data that cannot be
written as strict JSON, or takes too long is reported in its own place
with its error, and every other section still comes out.  Each section's
data is made plain JSON-compatible data in the section's own thread, so
that nothing a section returns runs code in the reporting thread.

Masking
=======

Every part of a report is masked before it is rendered, so text and JSON
show the same: a built-in section's data in the section's own thread, in
the walk that makes it plain (``Normaliser.masked``: one walk instead of
two, and a masking that overran would be cut off with its section); the
header, registered sections' data, errors and notes in one pass once every
section is collected.  Masked: every value of a ``secret=True`` option of
the reported configuration (read once per report, before the sections,
``MIN_SECRET`` characters and more) wherever it appears, and credentials
by pattern (URL passwords,
``password=``, ``Authorization:``, credential dict keys... see
``df_gmr.redact``).  Strings a built-in section took from application
memory are cut to ``MAX_TEXT`` characters after masking, and the
section says how many were cut.  When the secret values cannot be read
(the configuration hangs or fails), the header says that only patterns
were masked.
"""

from __future__ import annotations

from collections.abc import Iterable
import dataclasses
import datetime
import functools
import json
import os
import socket
import sys
import traceback
from typing import Any

import df_gmr
from df_gmr import confread
from df_gmr import findings
from df_gmr import identity
from df_gmr import naming
from df_gmr import redact
from df_gmr import speedups
from df_gmr import trigger
from df_gmr.context import ReportContext
from df_gmr.isolation import Isolation
from df_gmr.lifecycle import lifecycle
from df_gmr.plain import MAX_RAW_TEXT
from df_gmr.plain import Normaliser
from df_gmr.runtime import Snapshot
from df_gmr.runtime import fingerprint
from df_gmr.sections import Section

SCHEMA_VERSION = 1


#: Characters kept of one string a built-in section shows (after masking).
MAX_TEXT = 4096
#: Characters kept of a section's error (a traceback).
MAX_ERROR = 16384
#: The pseudo-section name under which the secret values are read.
SECRET_VALUES = "secret values"

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
    #: Whether ``data`` was masked already (in the section's thread).
    masked: bool = False


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
        "df_gmr_speedups": speedups.used.header(),
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


def collect_section(section: Section, context: ReportContext
                    ) -> SectionResult:
    """Run one section within its time budget (see ``collect_sections``)."""
    return collect_sections([section], context)[0]


def collect_sections(sections: list[Section], context: ReportContext,
                     secrets: list[str] | None = None
                     ) -> list[SectionResult]:
    """Run the sections, each within its budget; failures become errors.

    They run one after the other in a df_gmr thread (``isolation``),
    which also turns each one's data into strict JSON-compatible data: a
    section that hangs is cut off after ``context.section_timeout``
    seconds (its thread is left behind, and the section is skipped while
    it is still stuck) and the report goes on without it.  Given the
    ``secrets``, a built-in section's data is masked there too, in the
    same walk (``mask`` leaves it).
    """
    outcomes = isolation.run_all(
        [(section.name,
          functools.partial(_plain_outcome, section, context, secrets),
          "section") for section in sections], context.section_timeout)
    results = []
    for section, outcome in zip(sections, outcomes, strict=True):
        plain = outcome.result or {}
        results.append(SectionResult(
            name=section.name,
            title=section.title,
            data=plain.get("data"),
            error=outcome.error or plain.get("error"),
            seconds=outcome.seconds,
            notes=plain.get("notes", []),
            masked=bool(plain.get("masked")),
        ))
    return results


def _plain_outcome(section: Section, context: ReportContext,
                   secrets: list[str] | None = None) -> dict[str, Any]:
    """Collect a section and make its data plain (in the section's thread).

    Registered generators' objects may print themselves (``str()``, as
    oslo.reports models do); built-in sections' are named by their type
    and, given the ``secrets``, masked in the same walk (``masked``).
    """
    registered = section.max_bytes is not None
    normaliser = Normaliser(describe=str if registered else naming.type_name,
                            max_text=None if registered else MAX_RAW_TEXT)
    try:
        if registered:  # the application's code, as in its own thread
            with lifecycle.as_application(
                    trigger.report_signals() | trigger.trigger.blocked):
                collected = section.collect(context)
        else:
            collected = section.collect(context)
    except BaseException as failure:
        return {"error": _describe_failure(failure)}
    try:
        if secrets is not None and not registered:
            # One walk instead of two (see ``mask``); its own redactor:
            # a section that overran may still be walking with its own.
            redactor = redact.Redactor(secrets)
            redactor.begin(section.mask_patterns, MAX_TEXT)
            data = normaliser.masked(collected, redactor)
            del collected
            return {"data": data, "masked": True,
                    "notes": normaliser.notes() + _cut_notes(redactor)}
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


def read_secret_values(context: ReportContext
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

    outcome = isolation.run(SECRET_VALUES, read, context.section_timeout,
                            "reading")
    return outcome.result if outcome.result is not None \
        else ([], outcome.error)


def build(context: ReportContext, sections: Iterable[Section]) -> Report:
    """Collect the header and every section into a masked ``Report``."""
    sections = list(sections)
    # The secret values are read in a thread that ends before the
    # snapshot, and the sections' thread starts after the header read the
    # threads: the Threads section lists only df_gmr's lasting threads.
    secrets, secrets_error = read_secret_values(context)
    context.runtime = Snapshot(context.builder_thread)
    try:
        built = Report(
            header=collect_header(context),
            sections=collect_sections(sections, context, secrets),
        )
    finally:
        context.runtime.release()  # no live frame outlives the build
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
            if not result.masked:  # in the section's thread, if it was
                redactor.cut_count = 0
                result.data = redactor.data(result.data, patterns, limit)
                result.notes.extend(_cut_notes(redactor))
        except Exception as failure:  # withheld rather than shown unmasked
            result.data = None
            result.error = ("section withheld: its data could not be "
                            f"masked ({naming.error_text(failure)})")
        if result.error is not None:
            result.error = redact.cut(redactor.text(result.error), MAX_ERROR)
        result.notes = [redactor.text(note) for note in result.notes]


def _cut_notes(redactor: redact.Redactor) -> list[str]:
    """Say how many strings a masking walk cut (none: nothing to say)."""
    if not redactor.cut_count:
        return []
    return [f"{redactor.cut_count} strings longer than {redactor.limit} "
            "characters are cut"]


def _describe_failure(failure: BaseException) -> str:
    """Return a failure's traceback (in the thread that caught it)."""
    try:
        lines = traceback.format_exception(
            type(failure), failure, failure.__traceback__)
        return redact.cut("".join(lines).rstrip(), MAX_ERROR)
    except BaseException:  # an exception that cannot even print itself
        return naming.error_text(failure)


#: The process's one runner of isolated pieces (sections, readings).
isolation = Isolation(_describe_failure)


def _one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
