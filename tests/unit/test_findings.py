"""Findings derived from plain report data."""

from __future__ import annotations

from df_gmr import findings
from df_gmr.report import SectionResult


def result(name: str, data: object, error: str | None = None
           ) -> SectionResult:
    return SectionResult(name=name, title=name.title(), data=data,
                         error=error, seconds=0.0)


def test_configuration_groups_are_no_report_limit():
    configuration = {"available": True,
                     "groups": {"DEFAULT": [{"name": "debug"}]}}
    assert findings.limits([result("configuration", configuration)]) == []


def test_a_section_cut_off_is_a_finding_naming_it():
    [finding] = findings.limits([result(
        "green_threads", None, "section cut off: it took more than 10 s")])
    assert finding["kind"] == "report_limits"
    assert "Green_Threads section was cut off" in finding["text"]


def test_a_cycle_of_rlock_waits_is_one_deadlock():
    def group(ident: int, name: str, lock: str, owner: int) -> dict:
        return {"ids": [ident], "wait": {"kind": "lock"},
                "members": [{"id": ident, "name": name, "wait": {
                    "kind": "lock", "lock": lock, "owner": owner}}]}

    threads = {"groups": [group(1, "a", "RLock 0x1", 2),
                          group(2, "b", "RLock 0x2", 1),
                          group(3, "c", "RLock 0x2", 1)]}
    found = findings.derive({"threads": threads})
    kinds = sorted(finding["kind"] for finding in found)
    assert kinds == ["deadlock", "lock_contention"]
    [deadlock] = [f for f in found if f["kind"] == "deadlock"]
    assert sorted(deadlock["evidence"]) == [1, 2]
