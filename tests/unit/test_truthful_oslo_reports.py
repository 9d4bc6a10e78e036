"""oslo.reports models from register_section render through their own view.

The expected text is what oslo.reports itself makes of the same
generator (its ``TextReport``), title banner aside.
"""

from __future__ import annotations

import json
from typing import Any

from oslo_reports import report as oslo_report
from oslo_reports.models import base as base_model
from oslo_reports.models import with_default_views

from df_gmr import report
from df_gmr.context import ReportContext
from df_gmr.sections import generator_section


class PoolStatsView:
    """A custom text view, as a networking agent's "ThreadPool Stats"."""

    def __call__(self, model: Any) -> str:
        rows = [f"  {key}: {model[key]}" for key in sorted(model)]
        return "\n".join(["ThreadPool Stats (custom view)", *rows])


def stats_with_default_views() -> Any:
    return with_default_views.ModelWithDefaultViews(
        {"size": 64, "busy": 3, "queued": 0}, text_view=PoolStatsView())


def stats_with_attached_view() -> Any:
    return base_model.ReportModel(data={"workers": 4},
                                  attached_view=PoolStatsView())


def oslo_reports_text(generator: Any) -> list[str]:
    """Return the section's body as oslo.reports renders it."""
    text_report = oslo_report.TextReport("unused")
    text_report.add_section("ThreadPool Stats", generator)
    rendered = text_report.run()
    body = rendered.split("====" + "ThreadPool Stats".center(64) + "====\n"
                          + "=" * 72 + "\n", 1)[1]
    return body.splitlines()


def df_gmr_lines(generator: Any) -> tuple[list[str], Any]:
    section = generator_section("ThreadPool Stats", generator)
    result = report.collect_section(section, ReportContext())
    assert result.error is None, result.error
    return section.lines(result.data), result.data


def test_a_model_with_a_custom_text_view_renders_as_in_oslo_reports():
    lines, _ = df_gmr_lines(stats_with_default_views)
    assert lines == oslo_reports_text(stats_with_default_views)
    assert lines[0] == "ThreadPool Stats (custom view)"


def test_a_model_with_an_attached_view_renders_as_in_oslo_reports():
    lines, _ = df_gmr_lines(stats_with_attached_view)
    assert lines == oslo_reports_text(stats_with_attached_view)


def test_json_keeps_the_view_s_text_and_the_plain_data():
    _, data = df_gmr_lines(stats_with_default_views)
    assert json.loads(json.dumps(data)) == {
        "rendered_by": "oslo.reports text view",
        "model": "oslo_reports.models.with_default_views."
                 "ModelWithDefaultViews",
        "text": "ThreadPool Stats (custom view)\n  busy: 3\n  queued: 0\n"
                "  size: 64",
        "data": {"size": 64, "busy": 3, "queued": 0},
    }


def test_other_generators_are_shown_as_data():
    lines, data = df_gmr_lines(lambda: {"a": 1, "b": [1, 2]})
    assert data == {"a": 1, "b": [1, 2]}
    assert lines == ["a = 1", "b:", "  - 1", "  - 2"]
