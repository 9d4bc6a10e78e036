"""Every value of a secret option is masked everywhere in a report."""

from __future__ import annotations

import json
import subprocess
import sys

from oslo_config import cfg
import pytest

from df_gmr import confread
from df_gmr import render
from df_gmr import report
from df_gmr.sections import builtin_sections
from df_gmr.sections import generator_section

DB_SECRET = "Db5 ecret,1"


def make_conf(mask_urls: bool = True) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    conf.register_opts([cfg.StrOpt("password", secret=True,
                                   default=DB_SECRET)], group="database")
    conf.register_opts([
        cfg.StrOpt("db_note", default="uses ${database.password} inside"),
        cfg.StrOpt("connection",
                   default="mysql://nova:${database.password}@db/nova"),
        cfg.ListOpt("keys", secret=True, default=["ListOne", "ListTwo"]),
        cfg.StrOpt("short", secret=True, default="abc"),
        cfg.IntOpt("pin", secret=True, default=123456),
    ])
    conf.register_opts([
        cfg.StrOpt("admin_password", default="AdminPw9"),
        cfg.StrOpt("auth_url", default="http://keystone:5000/v3"),
        cfg.IntOpt("token_cache_time", default=300),
    ], group="keystone_authtoken")
    conf.register_opts([cfg.StrOpt("backend", default="barbican")],
                       group="key_manager")
    conf.register_opts([cfg.BoolOpt("mask_url_credentials",
                                    default=mask_urls)], group="df_gmr")
    conf([], project="secrets-test")
    return conf


def test_secret_values_of_every_group_as_read():
    assert sorted(confread.secret_values(make_conf())) == sorted(
        [DB_SECRET, "ListOne", "ListTwo", "abc"])


def build(conf: cfg.ConfigOpts, *sections):
    context = report.ReportContext(conf=conf, section_timeout=5)
    return report.build(context, list(sections))


def leaky() -> dict:
    return {"said": f"the password is {DB_SECRET}!",
            DB_SECRET: "as a key", "listed": ["ListTwo"], "short": "abc"}


def test_secret_values_are_masked_in_every_section_text_and_json():
    sections = [*builtin_sections(), generator_section("Leaky", leaky)]
    built = build(make_conf(), *sections)
    text = render.as_text(built, {s.name: s for s in sections})
    document = render.as_json(built)
    for output in (text, document):
        assert DB_SECRET not in output
        assert "ListOne" not in output and "ListTwo" not in output
        assert "AdminPw9" not in output
    assert "the password is ***!" in text
    assert "db_note = uses *** inside" in text
    assert "connection = mysql://nova:***@db/nova" in text
    assert "admin_password = ***" in text
    assert "token_cache_time = 300" in text
    assert "backend = barbican" in text
    assert "auth_url = http://keystone:5000/v3" in text
    leaky_data = json.loads(document)["sections"][-1]["data"]
    assert leaky_data["short"] == "abc"  # too short to search for


def test_secret_values_are_masked_in_error_messages():
    def failing() -> None:
        raise RuntimeError(f"cannot connect with {DB_SECRET}")

    built = build(make_conf(), generator_section("Failing", failing))
    assert "cannot connect with ***" in built.sections[0].error


def test_child_command_lines_are_masked(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", DB_SECRET,
         "--token", "CliToken7"])
    try:
        [processes] = [s for s in builtin_sections()
                       if s.name == "processes"]
        built = build(make_conf(), processes)
        text = json.dumps(built.sections[0].data)
    finally:
        child.kill()
        child.wait(timeout=10)
    assert str(child.pid) in text
    assert DB_SECRET not in text and "CliToken7" not in text


def test_without_url_masking_secret_values_are_still_masked():
    [configuration_section] = [s for s in builtin_sections()
                               if s.name == "configuration"]
    built = build(make_conf(mask_urls=False), configuration_section)
    entries = {entry["name"]: entry["value"] for entry in
               built.sections[0].data["groups"]["DEFAULT"]}
    assert entries["db_note"] == "uses *** inside"
    assert entries["connection"] == "mysql://nova:***@db/nova"


@pytest.mark.parametrize("value", ["plain-secret", "with space, comma"])
def test_a_secret_value_in_the_header_is_masked(value):
    conf = cfg.ConfigOpts()
    conf.register_opt(cfg.StrOpt("password", secret=True, default=value))
    conf([], project="x")
    context = report.ReportContext(conf=conf, service_name=f"svc-{value}")
    built = report.build(context, [])
    assert built.header["service"] == "svc-***"
