"""df-gmr diff on synthetic JSON reports."""

from __future__ import annotations

import json

import pytest

from df_gmr import analysis
from df_gmr import cli
from df_gmr.analysis import compare
from tests.scripts import analysis_synth as synth


def pair(**new: object) -> tuple[dict, dict]:
    old = synth.report(100, 6, findings=[synth.long_wait(3, 61.5)])
    changed = {"seconds": 5.0, "moved": True, "extra_group": True,
               "drop_group": True, **new}
    return old, synth.report(100, 6, **changed)  # type: ignore[arg-type]


def by_handler(entries: list[dict]) -> dict[str, dict]:
    return {entry["where"].split(" ")[0]: entry for entry in entries}


def test_stuck_moving_appeared_vanished():
    old, new = pair()
    result = compare.diff(old, new)
    assert result["interval_seconds"] == 5.0
    stuck = by_handler(result["stuck"])
    # Even groups: same ids, same wait object, in both: stuck.
    assert set(stuck) == {"handler_0", "handler_2", "handler_4", "get",
                          "run"}  # the hub's loop
    assert stuck["handler_2"]["count"] == 17
    assert stuck["handler_2"]["ids"][0] == 10 ** 9 + 2 * 10 ** 6
    assert not stuck["handler_2"]["idle"]  # a lock wait
    assert stuck["handler_0"]["idle"]  # an event wait: idle by design
    # Odd groups: other ids (or waits begun since): moving.
    moving = by_handler(result["moving"])
    assert {"handler_1", "handler_3"} <= set(moving)
    groups = result["groups"]
    assert [g["where"].split(" ")[0] for g in groups["appeared"]] == [
        "handler_999"]
    assert [g["where"].split(" ")[0] for g in groups["vanished"]] == [
        "handler_5"]
    assert groups["vanished"][0]["old"] == 16
    # The running main thread building the report is never stuck.
    assert all(entry["kind"] != "main" for entry in result["stuck"])


def test_a_sleep_begun_since_is_not_stuck_but_an_old_one_is():
    old = synth.report(100, 2)
    new = synth.report(100, 2, seconds=5.0)
    stuck = by_handler(compare.diff(old, new)["stuck"])
    assert stuck["handler_1"]["waiting_seconds"] == {"min": 6.0, "max": 6.0}
    assert stuck["handler_1"]["members"][0]["waiting_seconds"] == 6.0
    new = synth.report(100, 2, seconds=5.0, moved=True)  # odd: restarted
    moved_ids = by_handler(compare.diff(old, new)["stuck"])
    assert "handler_1" not in moved_ids


def test_pools_and_findings():
    old, new = pair()
    new["findings"] = [synth.long_wait(4, 66.5),  # same pattern: still
                       {"kind": "pool_full", "severity": "warning",
                        "text": "GreenPool 0x5000 is full", "evidence": []}]
    result = compare.diff(old, new)
    assert [f["kind"] for f in result["findings"]["new"]] == ["pool_full"]
    assert result["findings"]["resolved"] == []
    assert [f["kind"] for f in result["findings"]["still"]] == ["long_wait"]
    [pool] = result["pools"]
    assert pool["change"] == "changed"
    assert pool["old"] == {"running": 4, "waiting": 0}
    assert pool["new"] == {"running": 10, "waiting": 5}
    text = compare.text(result)
    lines = text.splitlines()
    # The most important first: the new finding, then what is stuck.
    assert lines[2].startswith("NEW WARNING pool_full")
    assert lines[4].startswith("STUCK")
    assert "handler_2" in lines[5]
    assert "green pool eventlet.greenpool.GreenPool 0x5000" in text
    assert "Totals: threads 3 -> 3, greenlets 101 -> 88" in text


def test_resolved_finding():
    old, new = pair()
    new["findings"] = []
    result = compare.diff(old, new)
    assert [f["kind"] for f in result["findings"]["resolved"]] == [
        "long_wait"]
    assert "RESOLVED WARNING long_wait" in compare.text(result)


def test_refuses_two_processes_unless_forced():
    old, new = pair(pid=999)
    with pytest.raises(analysis.ReportError, match="--force"):
        compare.diff(old, new)
    result = compare.diff(old, new, force=True)
    assert result["stuck"] == []
    assert "different processes" in result["notes"][0]


def test_cli_text_json_and_refusal(tmp_path, capsys):
    old, new = pair()
    (tmp_path / "old.json").write_text(json.dumps(old))
    # JSON Lines and a one-element array are read the same.
    (tmp_path / "new.jsonl").write_text(json.dumps(new) + "\n")
    (tmp_path / "new.json").write_text(json.dumps([new]))
    assert cli.main(["diff", str(tmp_path / "old.json"),
                     str(tmp_path / "new.jsonl")]) == 0
    assert "STUCK" in capsys.readouterr().out
    assert cli.main(["diff", str(tmp_path / "old.json"),
                     str(tmp_path / "new.json"), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["groups"]["appeared"][0]["new"] == 3
    other = synth.report(10, 2, pid=7)
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert cli.main(["diff", str(tmp_path / "old.json"),
                     str(tmp_path / "other.json")]) == 1
    error = capsys.readouterr().err
    assert "not two reports of one process" in error
    (tmp_path / "bad.json").write_text("{nope")
    assert cli.main(["diff", str(tmp_path / "old.json"),
                     str(tmp_path / "bad.json")]) == 1
    assert "not JSON, a JSON array or JSON Lines" in capsys.readouterr().err


def _joining(kind: str, ident: int) -> dict:
    return {"count": 1, "state": "parked", "kind": kind, "wait_kind": "join",
            "wait": {"kind": "join"}, "spawn_site": None,
            "stack": [{"file": "/srv/service/cmd/api.py", "line": 61,
                       "function": f"{kind}_waits", "code": "x.wait()"}],
            "ids": [ident], "members": []}


def test_the_main_greenlet_joining_its_services_is_idle_by_design():
    # Every oslo.service process's main waits there for its life
    # (launcher.wait()); a greenthread joining another is no such state.
    old, new = synth.report(100, 2), synth.report(100, 2, seconds=5.0)
    for report in (old, new):
        data = next(s["data"] for s in report["sections"]
                    if s["name"] == "green_threads")
        data["groups"] += [_joining("main", 7), _joining("greenthread", 8)]
    stuck = by_handler(compare.diff(old, new)["stuck"])
    assert stuck["main_waits"]["idle"] is True
    assert stuck["greenthread_waits"]["idle"] is False
    text = compare.text(compare.diff(old, new))
    assert "Idle by design (same wait in both reports for at least" in text
    assert "1 x main, parked, waiting: join, at main_waits" in text


def test_a_waiting_thread_is_said_to_wait_once():
    entry = {"section": "threads", "kind": "main", "state": "waiting",
             "wait_kind": "select", "where": "do_poll (epolls.py:31)"}
    assert compare._headline(entry, 1) == \
        "1 x main, waiting: select, at do_poll (epolls.py:31)"
