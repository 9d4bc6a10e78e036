"""Text and JSON renderings of a built report.

Both read only the report's plain data, masked as ``report.build`` left
it.  The text is for a person in an 80-column terminal; the JSON follows
``schema/report-v1.json`` and is strict (no NaN or Infinity: sections
show them as strings and say so in ``notes``).  A section that still
cannot be written shows its reason in its place; the rest comes out.
"""

from __future__ import annotations

import json
from typing import Any

from df_gmr import naming
from df_gmr import report as report_module
from df_gmr.runtime import fingerprint
from df_gmr.sections import Section
from df_gmr.sections import format_data
from df_gmr.sections import wrap

WIDTH = 78
RULE = "=" * WIDTH
THIN_RULE = "-" * WIDTH

HEADER_FIELDS = (
    ("service", "Service"),
    ("pid", "PID"),
    ("ppid", "Parent PID"),
    ("host", "Host"),
    ("time", "Time (UTC)"),
    ("trigger", "Trigger"),
    ("df_gmr_version", "df_gmr"),
    ("python", "Python"),
)

PROCESS_FIELDS = (
    ("role", "Role"),
    ("worker_index", "Worker index"),
    ("launcher", "Launcher"),
    ("backend", "Backend"),
    ("parent_pid", "Service parent PID"),
)


def as_text(
    report: report_module.Report, sections: dict[str, Section]
) -> str:
    """Return the report as text; ``sections`` maps names to renderers."""
    lines = [RULE, _centered(report.header.get("title", "Guru Meditation"))]
    lines.append(RULE)
    lines.extend(_header_lines(report.header))
    lines.extend(_read_while_running(report.sections))
    lines.extend(("", RULE, _centered("Findings"), RULE))
    lines.extend(finding_lines(report.findings))
    for result in report.sections:
        lines.extend(("", RULE, _centered(result.title), RULE))
        lines.extend(_section_lines(result, sections.get(result.name)))
        lines.extend(f"note: {note}" for note in result.notes)
    lines.append("")
    return "\n".join(lines)


def _read_while_running(results: list[report_module.SectionResult]
                        ) -> list[str]:
    """Say that the sections were read one after another, live.

    The service keeps running while its report is built (that is how a
    report comes from a hung hub): each part is read once, but a thread
    or greenthread that moves between two readings shows its state at
    each (running in Threads, finished in Green Threads, say).
    """
    spent = sum(result.seconds for result in results
                if isinstance(result.seconds, (int, float)))
    return wrap(f"Read: live, section after section over {spent * 1000:.0f}"
                " ms while the service ran; a thread or greenthread that "
                "moved meanwhile shows its state at each reading", "", "  ")


def finding_lines(findings: list[dict[str, Any]]) -> list[str]:
    """Render the findings, the worst first, or say there are none."""
    if not findings:
        return ["no findings"]
    lines = []
    for finding in findings:
        lines.extend(wrap(f"{finding['severity'].upper()} {finding['kind']}:"
                          f" {finding['text']}", "", "  "))
        evidence = ", ".join(str(item) for item in finding["evidence"])
        if evidence:
            lines.extend(wrap(f"evidence: {evidence}", "  "))
    return lines


def as_json(report: report_module.Report) -> str:
    """Return the report as a JSON document (schema version 1)."""
    document: dict[str, Any] = {
        "schema_version": report.schema_version,
        "header": report.header,
        "findings": report.findings,
        "sections": [_json_section(result) for result in report.sections],
    }
    try:
        return json.dumps(document, indent=1, allow_nan=False) + "\n"
    except (TypeError, ValueError, RecursionError):
        # Sections are made strict as they are collected; should one slip
        # through still, it alone shows why.
        document["sections"] = [_writable(entry)
                                for entry in document["sections"]]
        return json.dumps(document, indent=1, allow_nan=False) + "\n"


def _json_section(result: report_module.SectionResult) -> dict[str, Any]:
    entry = {
        "name": result.name,
        "title": result.title,
        "data": result.data,
        "error": result.error,
        "seconds": result.seconds,
    }
    if result.notes:
        entry["notes"] = result.notes
    return entry


def _writable(entry: dict[str, Any]) -> dict[str, Any]:
    try:
        json.dumps(entry, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        entry = {**entry, "data": None, "notes": [],
                 "error": ("section data cannot be written as JSON: "
                           + naming.error_text(error))}
    return entry


def _centered(text: str) -> str:
    return f"==== {text} ".ljust(WIDTH - 4, " ") + "===="


def _header_lines(header: dict[str, Any]) -> list[str]:
    lines = [f"{label}: {header.get(key)}" + (
        _speedups(header["df_gmr_speedups"])
        if key == "df_gmr_version" and header.get("df_gmr_speedups")
        else "") for key, label in HEADER_FIELDS]
    if header.get("redaction"):
        lines.append(f"Redaction: {header['redaction']}")
    concurrency = header.get("concurrency") or {}
    if concurrency:
        lines.append("Concurrency: " + (
            f"unavailable ({concurrency['error']})" if "error" in concurrency
            else fingerprint.text(concurrency)))
    process = header.get("process") or {}
    if "error" in process:
        lines.append(f"Process identity: unavailable ({process['error']})")
        return lines
    for key, label in PROCESS_FIELDS:
        if process.get(key) is not None:
            lines.append(f"{label}: {process[key]}")
    workers = process.get("workers") or []
    if workers:
        lines.append(f"Workers ({len(workers)}):")
        for worker in workers:
            state = "alive" if worker["alive"] else "dead"
            lines.append(
                f"  pid {worker['pid']} index {worker['index']} {state}, "
                f"started {worker['started_at']}, "
                f"restarts {worker['restarts']}, {worker['service']}"
            )
    return lines


def _speedups(used: dict[str, Any]) -> str:
    """Say, after df_gmr's version, which of its parts ran in C."""
    if used.get("c"):
        return f" (in C: {', '.join(used['c'])})"
    return f" (pure Python: {used.get('why_not', 'unknown')})"


def _section_lines(
    result: report_module.SectionResult, section: Section | None
) -> list[str]:
    if result.error is not None:
        lines = [f"Section failed: {result.title}"]
        lines.extend("  " + line for line in result.error.splitlines())
        return lines
    renderer = section.lines if section is not None else format_data
    try:
        return renderer(result.data)
    except Exception as error:  # a renderer bug must not lose the report
        fallback = ["Could not render this section as text: "
                    + naming.error_text(error)]
    try:
        return fallback + format_data(result.data)
    except Exception as error:
        return [*fallback, "nor as data: " + naming.error_text(error)]
