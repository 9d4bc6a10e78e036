"""Reading df_gmr's JSON reports after the fact: diff, convert, summarize.

Everything here works on plain data only (a report file, or what
``df-gmr report --format json|jsonl`` printed), never on a live process:
the operator's laptop, a log shipper's archive and a CI job read the
same.  A file may hold one report, a JSON array of reports, or JSON Lines
(one report per line); documents that are not reports (``df-gmr
report``'s ``{"error": ...}`` placeholders) are skipped and named.

Groups are compared across reports by a key made of what the report
itself groups by: the section (``threads`` or ``greenthreads``), the
group's kind, state and wait kind, and its stack frames (file, function,
line; outermost first).  Code text, ids and addresses are left out, so
the same wait in two processes or two moments has the same key.
"""

from __future__ import annotations

from collections.abc import Iterator
import datetime
import json
import re
import sys
from typing import Any

#: Sections holding stacks: report section name -> the short label used in
#: keys, folded stacks and texts.
STACK_SECTIONS = (("threads", "threads"), ("green_threads", "greenthreads"))
#: Singular names of the members of each labelled section.
MEMBER = {"threads": "thread", "greenthreads": "greenthread"}
#: What ``totals`` counts, in words: the Green Threads section's total is
#: every greenlet (greenthreads, plain greenlets, hubs, main greenlets).
COUNTED = {"threads": "threads", "greenthreads": "greenlets"}

Frame = tuple[str, str, Any]
Key = tuple[str, str, str, str, tuple[Frame, ...]]


class ReportError(Exception):
    """A file or document that cannot be read as df_gmr reports."""


def read(path: str, skipped: list[str] | None = None
         ) -> list[dict[str, Any]]:
    """Return the reports in a file (``-``: stdin).

    One report, a JSON array of them, or JSON Lines.  Documents that are
    not reports are left out and named in ``skipped`` (when given);
    a file with no report at all raises ReportError.
    """
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8", errors="replace") as stream:
                text = stream.read()
    except OSError as error:
        msg = f"{path}: cannot read: {error.strerror or error}"
        raise ReportError(msg) from None
    return parse(text, path, skipped)


def parse(text: str, source: str = "<input>",
          skipped: list[str] | None = None) -> list[dict[str, Any]]:
    """Return the reports of a text (see ``read``)."""
    try:
        documents = [json.loads(text)]
    except RecursionError:
        msg = f"{source}: JSON nested too deep"
        raise ReportError(msg) from None
    except ValueError as error:
        whole = (f"{error.msg} at line {error.lineno}"
                 if isinstance(error, json.JSONDecodeError) else str(error))
        documents = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                documents.append(json.loads(line))
            except (ValueError, RecursionError):
                msg = (f"{source}: not JSON, a JSON array or JSON Lines "
                       f"({whole}; line "
                       f"{number} is not a JSON document either)")
                raise ReportError(msg) from None
    if len(documents) == 1 and isinstance(documents[0], list):
        documents = documents[0]
    reports = []
    for index, document in enumerate(documents):
        if is_report(document):
            reports.append(document)
        elif skipped is not None:
            what = (document.get("error") if isinstance(document, dict)
                    else None) or "not a df_gmr report"
            skipped.append(f"{source}: document {index + 1}: {what}")
    if not reports:
        msg = f"{source}: no df_gmr report in it"
        raise ReportError(msg)
    return reports


def is_report(document: Any) -> bool:
    """Say whether a JSON document looks like a df_gmr report."""
    return (isinstance(document, dict)
            and isinstance(document.get("header"), dict)
            and isinstance(document.get("sections"), list))


def header(report: dict[str, Any]) -> dict[str, Any]:
    """Return a report's header (a dict, possibly empty)."""
    found = report.get("header")
    return found if isinstance(found, dict) else {}


def label(report: dict[str, Any]) -> str:
    """Return ``service/pid``, how a process is named in every output."""
    head = header(report)
    return f"{head.get('service', '?')}/{head.get('pid', '?')}"


def section(report: dict[str, Any], name: str) -> dict[str, Any] | None:
    """Return the data of a section that came out, else None."""
    for entry in report.get("sections") or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            data = entry.get("data")
            if entry.get("error") is None and isinstance(data, dict) \
                    and data.get("available") is not False:
                return data
            return None
    return None


def stack_groups(report: dict[str, Any]
                 ) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (section label, group) for every group with a stack."""
    for name, short in STACK_SECTIONS:
        data = section(report, name)
        if data is None:
            continue
        for group in data.get("groups") or []:
            if isinstance(group, dict):
                yield short, group


def frames(group: dict[str, Any]) -> tuple[Frame, ...]:
    """Return a group's stack as (file, function, line), outermost first."""
    return tuple((str(frame.get("file")), str(frame.get("function")),
                  frame.get("line"))
                 for frame in group.get("stack") or ()
                 if isinstance(frame, dict))


def group_key(short: str, group: dict[str, Any]) -> Key:
    """Return the key that identifies a group across reports."""
    return (short, str(group.get("kind")), str(group.get("state")),
            str(group.get("wait_kind")), frames(group))


def frame_name(frame: Frame) -> str:
    """Return ``function (file:line)`` for a frame."""
    file, function, line = frame
    return f"{function} ({file}:{line})"


def totals(report: dict[str, Any]) -> dict[str, int]:
    """Return the threads and greenlets a report counts (keys ``threads``
    and ``greenthreads``, the sections' short names; see COUNTED)."""
    found = {}
    for name, short in STACK_SECTIONS:
        data = section(report, name)
        count = 0
        if data is not None:
            count = data.get("count" if name == "threads" else "total") or 0
        found[short] = int(count) if isinstance(count, int) else 0
    return found


#: Library code: the frame a person wants named is the innermost one
#: that is not in these (the wait itself is always in a library).
_LIBRARY = re.compile(
    r"/(eventlet|greenlet|futurist|oslo_service|oslo_messaging|df_gmr|"
    r"concurrent/futures|asyncio)/|/(threading|queue|selectors|socket|"
    r"subprocess|ssl|socketserver)\.py$")


def where(stack: tuple[Frame, ...]) -> str:
    """Name the innermost frame of a stack outside the known libraries."""
    for frame in reversed(stack):
        if not _LIBRARY.search(frame[0]):
            return frame_name(frame)
    return frame_name(stack[-1]) if stack else "(no frames)"


_NUMBER = re.compile(r"0x[0-9a-fA-F]+|\d+(?:\.\d+)?")


def pattern(text: str) -> str:
    """Return a finding's text with ids, addresses and numbers as ``#``."""
    return _NUMBER.sub("#", text)


def moment(report: dict[str, Any]) -> datetime.datetime | None:
    """Return when a report was taken (its header's time), if it says."""
    value = header(report).get("time")
    if not isinstance(value, str):
        return None
    try:
        found = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if found.tzinfo is None:
        found = found.replace(tzinfo=datetime.timezone.utc)
    return found


def plural(count: int, word: str) -> str:
    """Return ``1 thread`` or ``2 threads``."""
    if count == 1:
        return f"{count} {word}"
    return f"{count} {word}{'es' if word.endswith('s') else 's'}"
