"""``python -m benchmarks --smoke`` runs all five measurements and exits 0.

Only the shape of the output is checked, never the figures: they depend
on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEASUREMENTS = (
    "1. report cost",
    "2. stall",
    "3. cost at rest",
    "4. copy-on-write",
    "5. latency when blocked",
)


@pytest.mark.timeout(150)
def test_smoke_run_prints_all_five_measurements() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT
    env.pop("DF_GMR_ENABLE", None)
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--quiet"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        check=False)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    rows = [line for line in finished.stdout.splitlines()
            if line.startswith("| ")]
    first_cells = [row.split("|")[1].strip() for row in rows]
    for measurement in MEASUREMENTS:
        assert any(cell.startswith(measurement) for cell in first_cells), (
            f"no {measurement!r} row in:\n{finished.stdout}")
