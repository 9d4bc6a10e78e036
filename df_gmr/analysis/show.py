"""A JSON report rendered as text, as the process would have written it.

The report is rebuilt as a ``df_gmr.report.Report`` and given to
``df_gmr.render.as_text`` with the built-in sections by name; a section
df_gmr does not know (a service's own) is shown by ``format_data``.
"""

from __future__ import annotations

from typing import Any

from df_gmr import render
from df_gmr import report as report_module
from df_gmr.sections import builtin_sections


def rebuild(document: dict[str, Any]) -> report_module.Report:
    """Return the ``Report`` a JSON report was rendered from."""
    results = []
    for entry in document.get("sections") or ():
        if not isinstance(entry, dict):
            continue
        notes = entry.get("notes")
        seconds = entry.get("seconds")
        error = entry.get("error")
        results.append(report_module.SectionResult(
            name=str(entry.get("name")),
            title=str(entry.get("title", entry.get("name"))),
            data=entry.get("data"),
            error=None if error is None else str(error),
            seconds=float(seconds) if isinstance(seconds, (int, float))
            else 0.0,
            notes=[str(note) for note in notes]
            if isinstance(notes, list) else []))
    found = document.get("findings")
    header = document.get("header")
    version = document.get("schema_version")
    return report_module.Report(
        header=header if isinstance(header, dict) else {},
        sections=results,
        schema_version=version if isinstance(version, int)
        else report_module.SCHEMA_VERSION,
        findings=[{"kind": "?", "severity": "info", "text": "",
                   "evidence": [], **finding}
                  for finding in found if isinstance(finding, dict)]
        if isinstance(found, list) else [])


def text(document: dict[str, Any]) -> str:
    """Return a JSON report (plain data) as the report's text."""
    sections = {section.name: section for section in builtin_sections()}
    return render.as_text(rebuild(document), sections)
