"""df-gmr convert (folded, speedscope) and show, on synthetic JSON reports."""

from __future__ import annotations

import json

import jsonschema

from df_gmr import analysis
from df_gmr import cli
from df_gmr import render
from df_gmr.analysis import folded
from df_gmr.analysis import show
from df_gmr.sections import builtin_sections
from tests.scripts import analysis_synth as synth

#: What https://www.speedscope.app/file-format-schema.json requires of a
#: file of sampled profiles (its required fields, types and enums), kept
#: here: the tests run without network.
SPEEDSCOPE = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["$schema", "shared", "profiles"],
    "properties": {
        "$schema": {
            "const": "https://www.speedscope.app/file-format-schema.json"},
        "shared": {
            "type": "object", "required": ["frames"],
            "properties": {"frames": {"type": "array", "items": {
                "type": "object", "required": ["name"],
                "properties": {"name": {"type": "string"},
                               "file": {"type": "string"},
                               "line": {"type": "number"},
                               "col": {"type": "number"}}}}}},
        "profiles": {"type": "array", "items": {
            "type": "object",
            "required": ["type", "name", "unit", "startValue", "endValue",
                         "samples", "weights"],
            "properties": {
                "type": {"const": "sampled"},
                "name": {"type": "string"},
                "unit": {"enum": ["none", "nanoseconds", "microseconds",
                                  "milliseconds", "seconds", "bytes"]},
                "startValue": {"type": "number"},
                "endValue": {"type": "number"},
                "samples": {"type": "array", "items": {
                    "type": "array", "items": {"type": "number"}}},
                "weights": {"type": "array", "items": {"type": "number"}},
            }}},
        "name": {"type": "string"},
        "activeProfileIndex": {"type": "number"},
        "exporter": {"type": "string"},
    },
}


def test_folded_counts_sum_to_the_totals():
    report = synth.report(1000, 7)
    lines = list(folded.lines([report]))
    counts = [int(line.rsplit(" ", 1)[1]) for line in lines]
    totals = analysis.totals(report)
    assert sum(counts) == totals["threads"] + totals["greenthreads"] == 1004
    first = next(line for line in lines if ";greenthreads;" in line)
    assert first.startswith(
        "nova-compute/4242;greenthreads;main (/usr/lib/python3/"
        "site-packages/eventlet/greenthread.py:272);handler_0 "
        "(/opt/app/service.py:100);")
    assert first.endswith(" 143")
    assert sum(";threads;" in line for line in lines) == 2


def test_folded_frames_without_stack_and_separators():
    report = synth.report(10, 1)
    group = report["sections"][1]["data"]["groups"][0]
    group["stack"] = []
    group["wait_kind"] = "not started"
    report["sections"][0]["data"]["groups"][0]["stack"][0]["function"] = \
        "odd;name"
    lines = list(folded.lines([report]))
    assert "nova-compute/4242;greenthreads;[not started] 10" in lines
    assert any("odd:name (/opt/app/main.py:1) 1" in line for line in lines)


def test_speedscope_follows_the_schema():
    reports = [synth.report(500, 5), synth.report(300, 3, pid=7)]
    document = folded.speedscope(reports)
    jsonschema.validate(document, SPEEDSCOPE)
    json.dumps(document, allow_nan=False)
    first, second = document["profiles"]
    assert first["endValue"] == sum(first["weights"]) == 503 + 1
    assert second["name"] == "nova-compute/7"
    frames = document["shared"]["frames"]
    root = [frames[sample[0]]["name"] for sample in first["samples"]]
    assert set(root) == {"threads", "greenthreads"}
    # Root first: the section, then the outermost frame, the wait last.
    green = first["samples"][root.index("greenthreads")]
    assert frames[green[1]]["name"].startswith("main (")
    assert frames[green[-1]]["name"].startswith(
        "switch (")
    assert frames[green[-1]]["line"] == 310
    assert document["exporter"].startswith("df_gmr ")


def test_cli_convert_to_a_file_and_stdout(tmp_path, capsys):
    path = tmp_path / "reports.jsonl"
    path.write_text("\n".join(json.dumps(synth.report(50, 2, pid=pid))
                              for pid in (1, 2)) + "\n")
    out = tmp_path / "profile.speedscope.json"
    assert cli.main(["convert", str(path), "--to", "speedscope",
                     "-o", str(out)]) == 0
    jsonschema.validate(json.loads(out.read_text()), SPEEDSCOPE)
    assert cli.main(["convert", str(path), "--to", "folded"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(int(line.rsplit(" ", 1)[1]) for line in lines) == 2 * 54


def test_show_renders_as_the_process_would():
    document = synth.report(30, 3, findings=[synth.long_wait(2, 70)])
    built = show.rebuild(document)
    # What the process would have written from the same data.
    expected = render.as_text(built, {section.name: section
                                      for section in builtin_sections()})
    again = json.loads(render.as_json(built))
    assert show.text(again) == expected
    text = show.text(document)
    assert "==== Green Threads" in text
    assert "31 greenlets in 4 groups" in text
    assert "WARNING long_wait: 2 greenthreads wait" in text
    assert "==== Custom Thing" in text and "answer = 42" in text


def test_cli_show(tmp_path, capsys):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(synth.report(5, 1)))
    assert cli.main(["show", str(path)]) == 0
    assert "PID: 4242" in capsys.readouterr().out
