"""The JSON Schema of a report, assembled from the sections' fragments.

Each built-in section keeps the schema of its data beside its module
(``sections/<name>.schema.json``, which may bring ``$defs`` of its own);
``schema/base.json`` holds the header and the shared definitions (a
frame, a stack).  ``assemble()`` puts them together: each section's
fragment applies when a section of that name has no error.  The shipped
``schema/report-v1.json`` is that assembly (a test keeps them equal);
``python -m df_gmr.report_schema > df_gmr/schema/report-v1.json``
writes it.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import sys
from typing import Any

from df_gmr.sections import Section
from df_gmr.sections import builtin_sections


def _read(package: str, *path: str) -> dict[str, Any]:
    text = importlib.resources.files(package).joinpath(*path).read_text()
    value = json.loads(text)
    if not isinstance(value, dict):
        msg = f"{package}/{'/'.join(path)} is not a JSON object"
        raise ValueError(msg)
    return value


def fragment(section: Section) -> dict[str, Any] | None:
    """Return the schema fragment beside a built-in section, if any."""
    try:
        return _read("df_gmr.sections", f"{section.name}.schema.json")
    except FileNotFoundError:
        return None


def assemble(sections: list[Section] | None = None) -> dict[str, Any]:
    """Return the whole report schema for ``sections`` (the built-ins)."""
    document = _read("df_gmr", "schema", "base.json")
    definitions = document["$defs"]
    cases = document["properties"]["sections"]["items"]["allOf"]
    for section in sections if sections is not None else builtin_sections():
        data = fragment(section)
        if data is None:
            continue
        data = copy.deepcopy(data)
        definitions.update(data.pop("$defs", {}))
        definitions[section.name] = data
        cases.append({
            "if": {"properties": {"name": {"const": section.name},
                                  "error": {"type": "null"}}},
            "then": {"properties": {
                "data": {"$ref": f"#/$defs/{section.name}"}}},
        })
    return document


def main() -> int:
    """Print the assembled schema (to regenerate the shipped file)."""
    sys.stdout.write(json.dumps(assemble(), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
