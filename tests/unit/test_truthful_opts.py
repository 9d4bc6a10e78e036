"""`namespace = oslo.reports` keeps [oslo_reports] in a sample config.

oslo-config-generator finds a namespace's lister through the
``oslo.config.opts`` entry points (stevedore); here its loader look-up is
replaced by what stevedore returns with df_gmr's ``oslo.reports`` entry
point installed, with and without oslo.reports' own.
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg
from oslo_config import generator
from oslo_reports import opts as oslo_reports_opts
import pytest

from df_gmr import opts
from tests.daemons import run_python


def sample(monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
           loaders: list[tuple[str, Any]]) -> str:
    """Return oslo-config-generator's sample for ``namespace=oslo.reports``."""
    monkeypatch.setattr(generator, "_get_raw_opts_loaders",
                        lambda namespaces: loaders)
    output = tmp_path / "sample.conf"
    conf = cfg.ConfigOpts()
    generator.register_cli_opts(conf)
    conf(["--namespace", "oslo.reports", "--output-file", str(output)])
    generator.generate(conf)
    return output.read_text()


def test_swapped_out_oslo_reports_keeps_its_group(monkeypatch, tmp_path):
    monkeypatch.setattr(opts, "oslo_reports_lists_its_options",
                        lambda: False)
    text = sample(monkeypatch, tmp_path,
                  [("oslo.reports", opts.list_oslo_reports_opts)])
    assert "[oslo_reports]" in text
    for _, group in oslo_reports_opts.list_opts():
        for opt in group:
            assert f"#{opt.name} = " in text
    assert "[df_gmr]" not in text


def test_with_oslo_reports_installed_the_group_is_listed_once(
        monkeypatch, tmp_path):
    assert opts.oslo_reports_lists_its_options()  # oslo.reports is here
    assert opts.list_oslo_reports_opts() == []
    text = sample(monkeypatch, tmp_path, [
        ("oslo.reports", oslo_reports_opts.list_opts),
        ("oslo.reports", opts.list_oslo_reports_opts)])
    assert text.count("[oslo_reports]") == 1
    assert text.count("#log_dir = ") == 1


def test_the_df_gmr_namespace_still_lists_both_groups():
    assert [group for group, _ in opts.list_opts()] == [
        "oslo_reports", "df_gmr"]


def test_a_report_reads_deprecated_options_without_the_services_warnings(
        tmp_path):
    # oslo.config warns once per process at the first read of an option
    # deprecated for removal or set under a deprecated name: a report in
    # a worker that never read it must not log it, nor use it up.
    lines = run_python("deprecated_opts.py", str(tmp_path)).stdout.splitlines()
    assert lines[:2] == ["STARTED", "REPORTED True"], lines
    warnings = lines[2:-1]
    assert len(warnings) == 3 and all(
        line.startswith("LOG Deprecated: Option ") for line in warnings), lines
    assert '"former"' in warnings[1] and '"things"' in warnings[2]
    assert lines[-1] == "READ a b c"
