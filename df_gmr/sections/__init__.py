"""Report sections: each one collects plain data, then renders it as text.

A section is a ``Section``: a name (used in JSON), a title (shown to
people), ``collect(context)`` returning JSON-compatible data that holds no
live frame or greenlet, and ``format_lines(data)`` returning text lines.
Built-in sections live one per module in this package; adding one is a new
module exposing ``SECTION`` plus its name in ``BUILTIN``.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import dataclasses
import importlib
import importlib.metadata
import json
import re
import sys
import textwrap
from typing import TYPE_CHECKING
from typing import Any

from df_gmr.plain import Normaliser

if TYPE_CHECKING:
    from df_gmr.context import ReportContext

#: Built-in sections, in the order a report shows them.
BUILTIN: tuple[str, ...] = (
    "package",
    "threads",
    "green_threads",
    "eventlet_hub",
    "green_pools",
    "thread_pools",
    "processes",
    "configuration",
)


#: What sections about eventlet say in a process without it.
EVENTLET_NOT_LOADED = "eventlet is not loaded in this process"
#: ... and in a process that imports it without using it.
EVENTLET_NOT_USED = ("eventlet is imported but not in use: no hub has run "
                     "and no greenthread was spawned")
#: Columns of the text rendering.
WIDTH = 78

#: A registered section's JSON data larger than this is replaced by a
#: truncation note (a generator that returns a whole log, say).
MAX_REGISTERED_BYTES = 8 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Section:
    """A named part of a report."""

    name: str
    title: str
    collect: Callable[[ReportContext], Any]
    format_lines: Callable[[Any], list[str]]
    #: Cap on the section's JSON data (None: built-in, sized by design).
    max_bytes: int | None = None
    #: Whether the report masks credential patterns in the data (secret
    #: values are masked in every section); False for a section that
    #: masks them itself, as its options say.
    mask_patterns: bool = True

    def lines(self, data: Any) -> list[str]:
        """Render the section's data as text lines, whatever it holds.

        A section that does not apply (``not_available``) reads the same
        in every section: ``not available: <reason>``.
        """
        if not is_available(data):
            return [f"not available: {data.get('reason')}"]
        return self.format_lines(data)


def builtin_sections() -> list[Section]:
    """Return the built-in sections, in report order."""
    sections = []
    for name in BUILTIN:
        module = importlib.import_module(f"df_gmr.sections.{name}")
        sections.append(module.SECTION)
    return sections


def installed_sections() -> list[Section]:
    """Return every section of the ``df_gmr.sections`` entry-point group.

    Built-in and third-party sections register the same way: an entry
    point names a ``Section`` (or a zero-argument generator, titled by
    the entry point's name).  Built-ins come first, in report order, then
    the others by name; a built-in missing from the installed metadata (a
    source checkout) is taken from ``BUILTIN``.  One that cannot be
    loaded shows why in its place; it never stops a set-up.  Resolved
    once, at set-up (``Reporter.sections``).
    """
    found = {section.name: section for section in builtin_sections()}
    others = []
    for entry_point in sorted(_entry_points(), key=lambda ep: ep.name):
        if entry_point.name in BUILTIN:
            continue  # the built-ins above, from this very package
        try:
            loaded = entry_point.load()
        except Exception as error:
            others.append(_failed_section(entry_point.name, error))
            continue
        if isinstance(loaded, Section):
            others.append(loaded)
        elif callable(loaded):
            others.append(generator_section(entry_point.name, loaded))
        else:
            others.append(_failed_section(entry_point.name, TypeError(
                f"{type(loaded).__name__} is neither a Section nor a "
                "generator")))
    return [*(found[name] for name in BUILTIN), *others]


def _entry_points() -> list[Any]:
    try:
        return list(importlib.metadata.entry_points(group="df_gmr.sections"))
    except Exception:
        return []


def _failed_section(name: str, error: BaseException) -> Section:
    reason = f"{type(error).__name__}: {error}"

    def collect(context: ReportContext) -> Any:
        return not_available(f"the section could not be loaded: {reason}")

    return Section(slug(name), name, collect, format_data)


def not_available(reason: str, **empty: Any) -> dict[str, Any]:
    """Return the data of a section that does not apply to this process.

    One shape for every section, rendered the same everywhere (``render``
    shows ``not available: <reason>`` in place of the section's lines):
    ``{"available": false, "reason": ...}`` plus the section's empty
    fields, so JSON readers find the keys they expect.
    """
    return {"available": False, "reason": reason, **empty}


def is_available(data: Any) -> bool:
    """Say whether a section's data is not a ``not_available`` one."""
    return not (isinstance(data, Mapping) and data.get("available") is False)


def slug(title: str) -> str:
    """Return a JSON-friendly name for a section title."""
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "section"


#: ``rendered_by`` of a registered section's data that is the text an
#: oslo.reports model's own view made.
OSLO_REPORTS_VIEW = "oslo.reports text view"


def generator_section(title: str, generator: Callable[[], Any]) -> Section:
    """Wrap an oslo.reports-style zero-argument generator as a section.

    An oslo.reports model it returns is rendered by its own text view, as
    oslo.reports renders it (see ``oslo_reports_text``); anything else is
    shown as data.
    """

    def collect(context: ReportContext) -> Any:
        # Made plain data in its section's thread, views run there too.
        return oslo_reports_text(generator())

    return Section(
        name=slug(title),
        title=title,
        collect=collect,
        format_lines=format_registered,
        max_bytes=MAX_REGISTERED_BYTES,
    )


def oslo_reports_text(result: Any) -> Any:
    """Render an oslo.reports model as oslo.reports does; else return it.

    oslo.reports' text report asks the model for its text view
    (``set_current_view_type("text")``, which a model with default views
    answers by attaching it) and prints ``str(model)``: the attached view
    called on the model, nested models printed by their own views first.
    Done the same here, unflattened: ``{"rendered_by": OSLO_REPORTS_VIEW,
    "model": type, "text": what the view made, "data": the model's data
    as plain data (or None and ``data_error``)}``.  A model without a view
    (oslo.reports would fail the section) is shown as its data.
    """
    base = sys.modules.get("oslo_reports.models.base")
    model_type = getattr(base, "ReportModel", None)
    if not isinstance(model_type, type) or \
            not issubclass(type(result), model_type):
        return result
    try:
        result.set_current_view_type("text")
    except AttributeError:
        pass
    if getattr(result, "attached_view", None) is None:
        return result
    kind = type(result)
    rendered: dict[str, Any] = {
        "rendered_by": OSLO_REPORTS_VIEW,
        "model": f"{kind.__module__}.{kind.__qualname__}",
        "text": str(result),
    }
    try:
        rendered["data"] = Normaliser().plain(result.data)
    except Exception as error:
        rendered["data"] = None
        rendered["data_error"] = f"{type(error).__name__}: {error}"
    return rendered


def format_registered(data: Any) -> list[str]:
    """Render a registered section: a view's text as is, else the data."""
    text = data.get("text") if isinstance(data, Mapping) and \
        data.get("rendered_by") == OSLO_REPORTS_VIEW else None
    if isinstance(text, str):
        return text.splitlines()
    return format_data(data)


def format_data(data: Any, indent: str = "") -> list[str]:
    """Render generic data: text as is, mappings as ``key = value``."""
    if isinstance(data, str):
        return [indent + line for line in data.splitlines()]
    if isinstance(data, Mapping):
        lines = []
        for key, value in data.items():
            if isinstance(value, (Mapping, list)) and value:
                lines.append(f"{indent}{key}:")
                lines.extend(format_data(value, indent + "  "))
            else:
                lines.append(f"{indent}{key} = {_scalar(value)}")
        return lines
    if isinstance(data, list):
        lines = []
        for item in data:
            if isinstance(item, (Mapping, list)) and item:
                lines.append(f"{indent}-")
                lines.extend(format_data(item, indent + "  "))
            else:
                lines.append(f"{indent}- {_scalar(item)}")
        return lines
    return [indent + _scalar(data)]


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def wrap(text: str, indent: str = "", more: str | None = None
         ) -> list[str]:
    """Return ``text`` as lines of at most 78 columns, indented.

    A word longer than a line (a path, a dotted name, a request id) is
    kept whole on a line of its own: an operator copies and greps it.
    """
    if len(indent) + len(text) <= WIDTH and text.isprintable() and \
            text[:1] != " " and text[-1:] != " ":
        # What textwrap returns for a short line of printable text with
        # no space at either end (most lines), without its work.
        return [indent + text] if text else [indent]
    return textwrap.wrap(
        text, width=WIDTH, initial_indent=indent,
        subsequent_indent=more if more is not None else indent + "  ",
        break_on_hyphens=False, break_long_words=False) or [indent]


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """Return ``1 thread``, ``2 threads`` (``nouns`` for odd plurals)."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def held_lines(member: dict[str, Any]) -> list[str]:
    """Return the lines saying which locks a member holds, and how known."""
    lines: list[str] = []
    for held in member.get("held_locks") or []:
        lines.extend(wrap(f"holds {held['lock']} ({held['found_by']})",
                          "      "))
    return lines


def schedule_text(call: dict[str, Any]) -> str:
    """Say how often a looping call runs (green or native), from its
    ``interval``, ``schedule``, ``schedule_known``, ``state`` and ``type``."""
    schedule = call["schedule"]
    if not call.get("schedule_known", True):
        if call["state"] == "not started":
            return "interval unknown (not started)"
        return "interval unknown (started before df_gmr was set up)"
    if call["interval"] is not None:
        return f"every {call['interval']}s"
    if "periodic_interval_max" in schedule:
        return (f"dynamic interval, at most "
                f"{schedule['periodic_interval_max']}s")
    if "max_interval" in schedule:
        return (f"back-off from {schedule.get('starting_interval')}s to "
                f"{schedule['max_interval']}s")
    if schedule or "Dynamic" in call["type"]:
        return "dynamic interval, chosen by its function at each run"
    return "interval unknown (its schedule holds no number)"
