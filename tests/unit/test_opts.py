"""Options: same as oslo.reports', registrable beside it in either order."""

from __future__ import annotations

from oslo_config import cfg
from oslo_reports import opts as oslo_reports_opts

from df_gmr import opts
from tests.daemons import run_python


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
    # The entry point as installed, the options as in this checkout.
    result = run_python("-m", "oslo_config.generator",
                        "--namespace", "df_gmr")
    assert "[oslo_reports]" in result.stdout
    assert "#file_event_handler_interval = 1" in result.stdout
    assert "[df_gmr]" in result.stdout
