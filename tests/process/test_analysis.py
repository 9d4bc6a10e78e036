"""diff, --watch, convert, show and summarize on reports of real daemons."""

from __future__ import annotations

import json
import re
import subprocess
import time

import jsonschema
import pytest

from tests.daemons import run_python
from tests.daemons import running
from tests.unit.test_analysis_convert import SPEEDSCOPE


def df_gmr(*args: str, timeout: float = 60
           ) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "df_gmr.cli", *args, timeout=timeout,
                      status=None)


@pytest.fixture(scope="module")
def scene():
    """5 greenthreads on an Event, 3 on a Semaphore, 4 cycling sleeps."""
    with running("analysis_scene.py") as daemon:
        daemon.wait_ready()
        yield daemon


def json_report(pid: int, path) -> dict:
    result = df_gmr("report", str(pid), "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    path.write_text(result.stdout)
    return json.loads(result.stdout)


def functions(entries: list[dict]) -> set[str]:
    return {entry["where"].split(" ")[0] for entry in entries}


def test_diff_of_two_reports_a_second_apart(scene, tmp_path):
    json_report(scene.pid, tmp_path / "old.json")
    time.sleep(1)
    json_report(scene.pid, tmp_path / "new.json")
    result = df_gmr("diff", str(tmp_path / "old.json"),
                    str(tmp_path / "new.json"), "--format", "json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["interval_seconds"] >= 1.0
    stuck = {entry["where"].split(" ")[0]: entry
             for entry in found["stuck"]}
    assert stuck["stuck_on_semaphore"]["count"] == 3
    assert not stuck["stuck_on_semaphore"]["idle"]
    assert stuck["stuck_forever"]["count"] == 5
    assert "keeps_moving" not in stuck
    assert "keeps_moving" in functions(found["moving"])
    text = df_gmr("diff", str(tmp_path / "old.json"),
                  str(tmp_path / "new.json")).stdout
    lines = text.splitlines()
    first = lines.index(next(line for line in lines
                             if line.startswith("STUCK")))
    assert "3 greenthreads, parked, waiting: semaphore, at " \
        "stuck_on_semaphore" in lines[first + 1]
    assert "5 greenthreads, parked, waiting: event, at stuck_forever" in text
    assert "4 greenthreads, parked, waiting: sleep, at keeps_moving" in \
        text.split("Moving")[1]


def test_watch_takes_reports_and_says_what_is_stuck(scene):
    started = time.monotonic()
    result = df_gmr("report", str(scene.pid), "--watch", "0.5", "--count",
                    "3")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 1.0
    lines = result.stdout.splitlines()
    assert [line[:5] for line in lines[:3]] == ["[1/3]", "[2/3]", "[3/3]"]
    assert f"analysis/{scene.pid}: " in lines[0]
    # Counted as the Green Threads section counts: every greenlet.
    assert re.search(r": \d+ threads?, \d+ greenlets?, ", lines[0]), lines[0]
    # Three reports 0.5 s apart: the first and last about 1 s apart.
    stuck_for = re.search(r"^STUCK \(same wait in both reports for at "
                          r"least ([\d.]+) s\)", result.stdout, re.M)
    assert stuck_for is not None, result.stdout
    assert float(stuck_for[1]) >= 0.9
    assert "at stuck_on_semaphore" in result.stdout
    moving = result.stdout.split("Moving")[1]
    assert "keeps_moving" in moving
    # Machine formats: stdout stays the format, the diff goes to stderr.
    result = df_gmr("report", str(scene.pid), "--watch", "0.2", "--count",
                    "2", "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    assert len([json.loads(line) for line in
                result.stdout.splitlines()]) == 2
    assert "at stuck_on_semaphore" in result.stderr
    bad = df_gmr("report", str(scene.pid), "--watch", "1", "--count", "1")
    assert bad.returncode == 2
    assert "--count N (N >= 2)" in bad.stderr


def test_folded_counts_sum_to_greenlets_and_threads(scene, tmp_path):
    report = json_report(scene.pid, tmp_path / "r.json")
    sections = {s["name"]: s["data"] for s in report["sections"]}
    total = sections["threads"]["count"] + sections["green_threads"]["total"]
    assert sections["green_threads"]["total"] == 14  # 12 + main + hub
    result = df_gmr("convert", str(tmp_path / "r.json"), "--to", "folded")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sum(int(line.rsplit(" ", 1)[1]) for line in lines) == total
    prefix = f"analysis/{scene.pid};greenthreads;"
    [stuck] = [line for line in lines if "stuck_forever" in line]
    assert stuck.startswith(prefix) and stuck.endswith(" 5")
    # Straight from the process, as flamegraph.pl reads it.
    direct = df_gmr("report", str(scene.pid), "--format", "folded")
    assert direct.returncode == 0, direct.stderr
    assert sum(int(line.rsplit(" ", 1)[1])
               for line in direct.stdout.splitlines()) == total


def test_speedscope_follows_its_schema(scene, tmp_path):
    report = json_report(scene.pid, tmp_path / "r.json")
    out = tmp_path / "r.speedscope.json"
    result = df_gmr("convert", str(tmp_path / "r.json"), "--to",
                    "speedscope", "-o", str(out))
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    jsonschema.validate(document, SPEEDSCOPE)
    [profile] = document["profiles"]
    sections = {s["name"]: s["data"] for s in report["sections"]}
    assert profile["endValue"] == sum(profile["weights"]) == (
        sections["threads"]["count"] + sections["green_threads"]["total"])


def test_show_renders_a_json_report(scene, tmp_path):
    json_report(scene.pid, tmp_path / "r.json")
    result = df_gmr("show", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr
    assert f"PID: {scene.pid}" in result.stdout
    assert "5 x greenthread, parked, waiting: event" in result.stdout
    assert "stuck_forever" in result.stdout


def test_a_reader_that_goes_away_ends_the_command_quietly(scene, tmp_path):
    # df-gmr show report.json | head -1: no traceback, the shell's status.
    import sys

    from tests.daemons import child_env

    report = json_report(scene.pid, tmp_path / "r.json")
    many = tmp_path / "many.jsonl"  # more text than a pipe holds
    many.write_text("\n".join([json.dumps(report)] * 100) + "\n")
    command = subprocess.Popen(
        [sys.executable, "-m", "df_gmr.cli", "show", str(many)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
    try:
        assert command.stdout is not None and command.stderr is not None
        assert command.stdout.readline()  # what head -1 reads
        command.stdout.close()  # then it goes away
        status = command.wait(timeout=60)
        errors = command.stderr.read().decode()
    finally:
        if command.poll() is None:
            command.kill()
            command.wait(timeout=10)
    assert status == 141, errors
    assert "Traceback" not in errors and "BrokenPipe" not in errors, errors


def test_summary_over_three_workers(tmp_path):
    with running("service.py", "--launcher", "process",
                 "--workers", "3") as daemon:
        daemon.wait_ready(count=4)
        result = df_gmr("report", str(daemon.pid), "--workers",
                        "--format", "json")
        assert result.returncode == 0, result.stderr
        workers = daemon.workers()
    path = tmp_path / "service.json"
    path.write_text(result.stdout)
    summary = df_gmr("summarize", str(path), "--format", "json")
    assert summary.returncode == 0, summary.stderr
    found = json.loads(summary.stdout)
    assert found["reports"] == 4  # the parent and its 3 workers
    assert found["services"] == {"testsvc": 4}
    # Each worker parks 3 greenthreads on one Event: one stack, 3 x 3.
    parked = [entry for entry in found["stacks"]
              if entry["section"] == "greenthreads"
              and entry["wait_kind"] == "event" and entry["processes"] == 3]
    assert parked, found["stacks"]
    assert parked[0]["count"] == 9
    assert sum(parked[0]["hosts"].values()) == 9
    assert len(workers) == 3
    text = df_gmr("summarize", str(path)).stdout
    assert text.startswith("4 reports from 1 host")
    assert "9 greenthreads waiting: event in 3 processes" in text
