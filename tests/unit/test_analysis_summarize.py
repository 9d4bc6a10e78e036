"""df-gmr summarize on synthetic JSON reports."""

from __future__ import annotations

import json

from df_gmr import cli
from df_gmr.analysis import fleet
from tests.scripts import analysis_synth as synth


def deadlock(pid: int) -> dict:
    return {"kind": "deadlock", "severity": "critical",
            "text": f"deadlock of 2 threads: thread {pid}1 waits for "
                    f"RLock 0x7f{pid:x} held by thread {pid}2",
            "evidence": [pid]}


def reports() -> list[dict]:
    found = []
    for number in range(6):
        findings = [synth.long_wait(number + 1, 61.5 + number)]
        if number in (2, 4):
            findings.insert(0, deadlock(number))
        found.append(synth.report(
            100 * (number + 1), 4, pid=100 + number,
            host=f"host-{number % 3}",
            service=("api", "conductor")[number % 2], findings=findings))
    return found


def test_identical_stacks_across_processes_biggest_first():
    result = fleet.summarize(reports())
    assert result["reports"] == 6
    assert result["hosts"] == {"host-0": 2, "host-1": 2, "host-2": 2}
    assert result["services"] == {"api": 3, "conductor": 3}
    stacks = result["stacks"]
    counts = [entry["count"] for entry in stacks]
    assert counts == sorted(counts, reverse=True)
    first = stacks[0]
    # 100+200+...+600 = 2100 greenthreads in 4 groups; the first group
    # of each takes the remainder: 25+50+75+100+125+150.
    assert first["count"] == 525 and first["processes"] == 6
    assert first["section"] == "greenthreads"
    assert first["where"] == "handler_0 (/opt/app/service.py:100)"
    assert first["hosts"] == {"host-2": 75 + 150, "host-1": 50 + 125,
                              "host-0": 25 + 100}
    assert first["services"] == {"conductor": 50 + 100 + 150,
                                 "api": 25 + 75 + 125}
    assert sum(entry["count"] for entry in stacks) == (
        result["totals"]["threads"] + result["totals"]["greenthreads"])
    hub = [entry for entry in stacks if entry["wait_kind"] == "hub loop"]
    assert hub[0]["count"] == 6


def test_findings_merged_worst_first():
    result = fleet.summarize(reports())
    first, second = result["findings"]
    assert first["kind"] == "deadlock" and first["count"] == 2
    assert [p["pid"] for p in first["processes"]] == [102, 104]
    assert "#" in first["pattern"] and "0x" not in first["pattern"]
    assert second["kind"] == "long_wait" and second["count"] == 6
    text = fleet.text(result)
    lines = text.splitlines()
    assert lines[0] == ("6 reports from 3 hosts (host-0 2, host-1 2, "
                        "host-2 2); services: api 3, conductor 3")
    assert lines[3] == "Findings (2 merged, the worst first):"
    assert lines[4].startswith("  CRITICAL deadlock in 2 processes: ")
    assert "in host-2:api/102, host-1:api/104" in text
    assert "greenthreads waiting: event in 6 processes, at handler_0" in text


def test_healthy_fleet_and_top(tmp_path, capsys):
    plain = [synth.report(10, 3, pid=pid) for pid in range(3)]
    result = fleet.summarize(plain)
    assert result["findings"] == []
    text = fleet.text(result, top=2)
    assert "no findings in any report" in text
    assert "... 4 more stacks in --format json" in text


def test_cli_many_files_and_formats(tmp_path, capsys):
    paths = []
    for number, report in enumerate(reports()):
        path = tmp_path / f"r{number}.json"
        path.write_text(json.dumps(report))
        paths.append(str(path))
    array = tmp_path / "array.json"  # as df-gmr report --format json
    array.write_text(json.dumps([synth.report(10, 2, pid=7),
                                 {"error": "no report within 10 s"}]))
    assert cli.main(["summarize", *paths, str(array),
                     "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["reports"] == 7
    assert "skipped" in captured.err and "no report within" in captured.err
    assert cli.main(["summarize", *paths]) == 0
    assert "CRITICAL deadlock" in capsys.readouterr().out
    assert cli.main(["summarize", str(tmp_path / "missing.json")]) == 1
    assert "cannot read" in capsys.readouterr().err
