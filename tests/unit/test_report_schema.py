"""The shipped JSON Schema is the assembly of the sections' fragments."""

from __future__ import annotations

import importlib.resources
import json

from df_gmr import report_schema
from df_gmr.sections import builtin_sections


def test_shipped_schema_is_the_assembled_one():
    shipped = json.loads(importlib.resources.files("df_gmr").joinpath(
        "schema", "report-v1.json").read_text())
    assert shipped == report_schema.assemble(), (
        "regenerate: python -m df_gmr.report_schema > "
        "df_gmr/schema/report-v1.json")


def test_every_built_in_section_has_its_fragment_beside_it():
    for section in builtin_sections():
        fragment = report_schema.fragment(section)
        assert fragment is not None, section.name
        assert fragment["type"] == "object", section.name
