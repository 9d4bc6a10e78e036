"""Measurement 8: df-gmr's analysis commands on big JSON reports.

Once per benchmark run, two children write the reports (see
``benchmarks.diagnosis``): two JSON reports of one process of the mix
(``plan.diagnosis_size`` greenthreads, ``plan.diagnosis_gap`` seconds
apart), and ``plan.fleet_reports`` copies of one JSON report of a
smaller mix, each with its own pid, host and time.  Then each command
runs ``plan.diagnosis_runs`` times, each run a fresh process (no
eventlet) that times what the CLI's handler does, in-process; and the
whole ``python -m df_gmr.cli diff`` is timed from outside, as the
operator sees it.  Each figure is the median of the runs, shown with the
worst run.
"""

from __future__ import annotations

import math

from benchmarks.runner import Case
from benchmarks.suite import DF_GMR
from benchmarks.suite import DIAGNOSIS
from benchmarks.suite import FAILED
from benchmarks.suite import Suite
from benchmarks.suite import kb_label
from benchmarks.suite import median_worst
from benchmarks.suite import runs_label
from benchmarks.suite import seconds_label
from benchmarks.suite import size_label
from benchmarks.suite import values
from benchmarks.suite import with_worst
from benchmarks.table import Row
from benchmarks.table import verdict

#: The sizes the goals are stated for.
GOAL_REPORT_SIZE = 100_000
GOAL_FLEET_SIZE = 1_000
GOAL_FLEET_REPORTS = 1_000
#: What oslo.reports has instead: nothing (its reports are text only).
NO_EQUIVALENT = "no equivalent (text reports only)"


def diagnosis(suite: Suite) -> list[Row]:
    """Time diff, convert and summarize on big reports."""
    plan = suite.plan
    out = suite.runner.log_dir()  # removed with the run's scratch
    size = plan.diagnosis_size
    suite.runner.say(f"{DIAGNOSIS}: writing the reports ({size} mix, "
                     f"{plan.fleet_reports} x {plan.fleet_size} mix)")
    pair = suite.case("diagnosis_reports", DF_GMR,
                      {"kind": "pair", "workload": "mix", "size": size,
                       "gap": plan.diagnosis_gap, "out": out}, 1, math.inf)
    fleet = suite.case("diagnosis_reports", DF_GMR,
                       {"kind": "fleet", "workload": "mix",
                        "size": plan.fleet_size,
                        "copies": plan.fleet_reports, "out": out},
                       1, math.inf)
    pair_goals = size == GOAL_REPORT_SIZE
    fleet_goals = (plan.fleet_size == GOAL_FLEET_SIZE
                   and plan.fleet_reports == GOAL_FLEET_REPORTS)
    report = (_bytes_label(pair.first("report_bytes")) if pair.results
              else "not written")
    two = (f"2 JSON reports of one {size_label(size)} mix process, "
           f"{plan.diagnosis_gap:g} s apart ({report} each)")
    one = f"1 JSON report of a {size_label(size)} mix ({report})"
    many = (f"{plan.fleet_reports:,} JSON reports of a "
            f"{size_label(plan.fleet_size)} mix, varied pid/host/time "
            f"({kb_label(fleet.first('report_bytes'))} each)"
            if fleet.results else
            f"{plan.fleet_reports:,} JSON reports: not written")
    commands = (
        ("diff", "df-gmr diff OLD NEW (in-process)", two, pair, 1.0,
         pair_goals),
        ("cli_diff", "python -m df_gmr.cli diff OLD NEW (whole CLI, wall "
         "clock)", two, pair, 1.0, pair_goals),
        ("folded", "df-gmr convert --to folded (in-process)", one, pair,
         0.5, pair_goals),
        ("speedscope", "df-gmr convert --to speedscope (in-process)", one,
         pair, 0.5, pair_goals),
        ("summarize", "df-gmr summarize (in-process)", many, fleet, 10.0,
         fleet_goals),
    )
    rows = []
    for command, title, workload, source, goal, applies in commands:
        if not source.results:
            rows.append(Row(f"{DIAGNOSIS}: {title}", workload, "failed "
                            "(the reports could not be written)",
                            NO_EQUIVALENT, "", _goal_text(goal, applies),
                            FAILED if applies else "", "0 / -"))
            continue
        suite.runner.say(f"{DIAGNOSIS}: {command}")
        case = suite.case("diagnosis", DF_GMR,
                          {"command": command, "dir": out},
                          plan.diagnosis_runs, math.inf)
        rows.append(_row(title, workload, case, goal, applies))
    return rows


def _bytes_label(size: float | None) -> str:
    if size is not None and size >= 1_000_000:
        return f"{size / 1_000_000:.1f} MB"
    return kb_label(size)


def _goal_text(goal: float, applies: bool) -> str:
    return f"< {goal:g} s" if applies else ""


def _row(title: str, workload: str, case: Case, goal: float,
         applies: bool) -> Row:
    found = values(case, "seconds")
    middle, worst = median_worst(found)
    met = ""
    if applies:
        met = FAILED if middle is None or worst is None else verdict(
            middle < goal and worst < goal,
            f"{seconds_label(middle)}; worst "
            f"{seconds_label(worst)}"
            + (" is over" if worst >= goal else ""))
    reading = values(case, "read_seconds")
    if reading:
        detail = (f"of which reading the JSON (json.loads, timed apart): "
                  f"{with_worst(reading, seconds_label)}")
        written = case.median("output_bytes")
        if written is not None:
            detail += f"; writes {kb_label(written)}"
    else:
        detail = ("interpreter start, imports, reading, diff and text "
                  "output, stdout to /dev/null")
    return Row(f"{DIAGNOSIS}: {title}", workload,
               with_worst(found, seconds_label), NO_EQUIVALENT, detail,
               _goal_text(goal, applies), met, runs_label(case, None))
