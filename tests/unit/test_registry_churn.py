"""The greenlet registry forgets dead greenlets and keeps sites aligned."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.daemons import SCRIPTS
from tests.daemons import SOURCE_ROOT


def test_registry_stays_small_under_churn():
    env = dict(os.environ, PYTHONPATH=SOURCE_ROOT, PYTHONWARNINGS="ignore")
    result = subprocess.run(
        [sys.executable, os.path.join(SCRIPTS, "churn.py")],
        capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    refs, sites, alive, kept_with_sites = map(int, result.stdout.split())
    assert refs == sites  # the flat site containers stay aligned
    assert refs < 8192  # 20,000 spawned, compacted as it grew
    assert alive >= 10
    assert kept_with_sites == 10  # the survivors kept their spawn sites


def test_spawn_with_no_caller_frame_still_runs_and_is_tracked():
    env = dict(os.environ, PYTHONPATH=SOURCE_ROOT, PYTHONWARNINGS="ignore")
    result = subprocess.run(
        [sys.executable, os.path.join(SCRIPTS, "spawn_edge.py")],
        capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["['ran']", "True", "True"]
