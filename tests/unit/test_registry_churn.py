"""The greenlet registry forgets dead greenlets and keeps sites aligned."""

from __future__ import annotations

from tests.daemons import run_python


def test_registry_stays_small_under_churn():
    result = run_python("churn.py")
    refs, sites, alive, kept_with_sites = map(int, result.stdout.split())
    assert refs == sites  # the flat site containers stay aligned
    assert refs < 8192  # 20,000 spawned, compacted as it grew
    assert alive >= 10
    assert kept_with_sites == 10  # the survivors kept their spawn sites


def test_spawn_with_no_caller_frame_still_runs_and_is_tracked():
    result = run_python("spawn_edge.py")
    assert result.stdout.split() == ["['ran']", "True", "True"]
