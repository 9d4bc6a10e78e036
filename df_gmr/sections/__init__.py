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
import json
import re
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from df_gmr.report import ReportContext

#: Built-in sections, in the order a report shows them.
BUILTIN: tuple[str, ...] = (
    "package",
    "threads",
    "green_threads",
    "eventlet_hub",
    "green_pools",
    "processes",
    "configuration",
)


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


def builtin_sections() -> list[Section]:
    """Return the built-in sections, in report order."""
    sections = []
    for name in BUILTIN:
        module = importlib.import_module(f"df_gmr.sections.{name}")
        sections.append(module.SECTION)
    return sections


def slug(title: str) -> str:
    """Return a JSON-friendly name for a section title."""
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "section"


def plain_data(value: Any) -> Any:
    """Return ``value`` as JSON-compatible data.

    Strings, numbers, mappings and sequences keep their shape; anything
    else (an oslo.reports model, an arbitrary object) becomes its ``str()``.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(key): plain_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain_data(item) for item in value]
    return str(value)


def generator_section(title: str, generator: Callable[[], Any]) -> Section:
    """Wrap an oslo.reports-style zero-argument generator as a section."""

    def collect(context: ReportContext) -> Any:
        return plain_data(generator())

    return Section(
        name=slug(title),
        title=title,
        collect=collect,
        format_lines=format_data,
        max_bytes=MAX_REGISTERED_BYTES,
    )


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
