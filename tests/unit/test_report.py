"""A report is built whatever its sections do."""

from __future__ import annotations

import json

from oslo_config import cfg

from df_gmr import guru_meditation_report as gmr
from df_gmr import render
from df_gmr import report
from df_gmr.sections import Section
from df_gmr.sections import configuration
from df_gmr.sections import generator_section


class Unprintable:
    def __str__(self):
        raise ValueError("cannot print me")


def build(*sections):
    context = report.ReportContext(version="1.0")
    return report.build(context, sections)


def test_raising_section_keeps_header_and_other_sections():
    def explode(context):
        raise KeyError("boom")

    good = generator_section("Good", lambda: {"fine": True})
    bad = Section("bad", "Bad", explode, lambda data: [])
    built = build(bad, good)
    assert built.header["pid"] > 0
    assert "KeyError: 'boom'" in built.sections[0].error
    assert built.sections[1].data == {"fine": True}


def test_junk_return_value_is_an_error_in_place():
    built = build(generator_section("Junk", Unprintable))
    assert built.sections[0].data is None
    assert "cannot print me" in built.sections[0].error


def test_generator_results_of_every_shape():
    built = build(
        generator_section("Text", lambda: "line one\nline two"),
        generator_section("Mapping", lambda: {"k": [1, 2]}),
        generator_section("List", lambda: ["a", ("b", "c")]),
    )
    assert [s.data for s in built.sections] == [
        "line one\nline two", {"k": [1, 2]}, ["a", ["b", "c"]]]
    text = render.as_text(built, {})
    assert "line two" in text and "k:" in text


def test_json_rendering_has_the_documented_top_level():
    document = json.loads(render.as_json(build(
        generator_section("X", lambda: 1))))
    assert set(document) == {"schema_version", "header", "findings",
                             "sections"}
    assert document["schema_version"] == 1
    assert set(document["sections"][0]) >= {"name", "title", "data", "error"}


def test_configuration_reports_the_given_conf_not_the_global_one():
    mine = cfg.ConfigOpts()
    mine.register_opt(cfg.StrOpt("only_in_mine", default="yes"))
    mine([], project="x")
    cfg.CONF.register_opt(cfg.StrOpt("only_in_global", default="no"))
    data = configuration.collect(report.ReportContext(conf=mine))
    names = {entry["name"] for entry in data["groups"]["DEFAULT"]}
    assert "only_in_mine" in names
    assert "only_in_global" not in names


def test_run_returns_text_without_df_gmr_frames():
    text = gmr.TextGuruMeditation("3.2.1").run()
    threads = text.split("==== Threads", 1)[1].split("==== Green", 1)[0]
    assert "building this report (df_gmr frames omitted)" in threads
    assert "df_gmr/report.py" not in threads
    assert "test_run_returns_text_without_df_gmr_frames" in threads


def test_unreadable_secret_option_error_does_not_quote_the_value(tmp_path):
    config = tmp_path / "bad.conf"
    config.write_text("[DEFAULT]\nsecret_number = hunter2\n"
                      "plain_number = rabbit://u:PW@h/\n")
    conf = cfg.ConfigOpts()
    conf.register_opts([cfg.IntOpt("secret_number", secret=True),
                        cfg.IntOpt("plain_number")])
    conf(["--config-file", str(config)])
    data = configuration.collect(report.ReportContext(conf=conf))
    text = json.dumps(data)
    assert "hunter2" not in text and "PW" not in text
    entries = {e["name"]: e for e in data["groups"]["DEFAULT"]}
    assert entries["secret_number"]["error"] == "ConfigFileValueError"
    assert "rabbit://u:***@h/" in entries["plain_number"]["error"]


def test_the_header_says_the_sections_were_read_live_one_after_another():
    import time

    def slow(context):
        time.sleep(0.05)
        return {"slept": True}

    built = build(Section("slow", "Slow", slow, lambda data: ["slept"]),
                  generator_section("Quick", lambda: {"fine": True}))
    text = render.as_text(built, {})
    header = text.split("==== Findings")[0]
    said = " ".join(" ".join(
        line for line in header.splitlines()
        if line.startswith(("Read:", "  "))).split())
    assert said.startswith("Read: live, section after section over "), said
    spent = int(said.split(" over ")[1].split(" ms")[0])
    assert spent >= 50, said  # the sections' own time, the sleep in it
    assert "moved meanwhile shows its state at each reading" in said
