"""Options: same as oslo.reports', registrable beside it in either order."""

from __future__ import annotations

import os
import subprocess
import sys

from oslo_config import cfg
from oslo_reports import opts as oslo_reports_opts

from df_gmr import opts


def test_df_gmr_then_oslo_reports():
    conf = cfg.ConfigOpts()
    opts.set_defaults(conf)
    oslo_reports_opts.set_defaults(conf)
    conf([])
    assert conf.oslo_reports.file_event_handler_interval == 1


def test_oslo_reports_then_df_gmr():
    conf = cfg.ConfigOpts()
    oslo_reports_opts.set_defaults(conf)
    opts.set_defaults(conf)
    conf([])
    assert conf.df_gmr.format == "text"


def test_list_opts_names_both_groups():
    groups = dict(opts.list_opts())
    assert [o.name for o in groups["oslo_reports"]] == [
        "log_dir", "file_event_handler", "file_event_handler_interval"]
    assert "format" in [o.name for o in groups["df_gmr"]]


def test_config_generator_lists_the_namespace():
    generator = os.path.join(os.path.dirname(sys.executable),
                             "oslo-config-generator")
    result = subprocess.run(
        [generator, "--namespace", "df_gmr"], capture_output=True,
        text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "[oslo_reports]" in result.stdout
    assert "#file_event_handler_interval = 1" in result.stdout
    assert "[df_gmr]" in result.stdout
