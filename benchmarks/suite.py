"""Measurements 1-5: run their cases, turn the medians into rows.

Measurements 6 and 7 (threading mode) are in ``native_suite``.
"""

from __future__ import annotations

from collections.abc import Callable
import math
import statistics
from typing import Any

from benchmarks.plan import Plan
from benchmarks.runner import Case
from benchmarks.runner import Runner
from benchmarks.table import Row
from benchmarks.table import verdict

DF_GMR = "df_gmr"
OSLO = "oslo.reports"
WITHOUT = "none"
TOOLS = (DF_GMR, OSLO)
MIB = 2**20
#: The sizes the goals are stated for.
GOAL_MIDDLE = 10_000
GOAL_LARGE = 100_000

#: Measurement names, how the first cell of their rows begins (a run
#: fails when a measurement it ran has no row of its name).
REPORT_COST = "1. report cost"
STALL = "2. stall"
REST = "3. cost at rest"
COPY_ON_WRITE = "4. copy-on-write"
LATENCY = "5. latency when blocked"
#: Threading-mode processes (``benchmarks.native_suite``).
NATIVE_REPORT = "6. native threads report"
REST_HOOKS = "7. native hooks at rest"
MEASUREMENT_NAMES = (REPORT_COST, STALL, REST, COPY_ON_WRITE, LATENCY,
                     NATIVE_REPORT, REST_HOOKS)


def size_label(size: int) -> str:
    """Return ``10k`` for 10000 and so on."""
    if size >= 1000 and size % 1000 == 0:
        return f"{size // 1000}k"
    return str(size)


def seconds_label(seconds: float | None) -> str:
    """Return a duration with a sensible unit."""
    if seconds is None:
        return "failed"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def mib_label(size: float | None) -> str:
    """Return bytes as MiB."""
    if size is None:
        return "failed"
    return f"{size / MIB:.1f} MiB"


def kb_label(size: float | None) -> str:
    """Return bytes as KB (1000 bytes)."""
    if size is None:
        return "failed"
    return f"{size / 1000:.1f} KB"


def times(numerator: float | None, denominator: float | None) -> str:
    """Return ``numerator / denominator`` as ``12.3x``."""
    if not numerator or not denominator:
        return "n/a"
    return f"{numerator / denominator:.1f}x"


def runs_label(df_gmr: Case | None, oslo: Case | None) -> str:
    """Return ``5 / 2``."""
    def count(case: Case | None) -> str:
        if case is None:
            return "-"
        if case.params.get("extrapolated"):
            return "0 (extrapolated)"
        return str(case.runs)

    return f"{count(df_gmr)} / {count(oslo)}"


class Suite:
    """Runs the measurements of a plan and collects the table's rows."""

    def __init__(self, runner: Runner, plan: Plan,
                 oslo_max_size: int | None = None) -> None:
        self.runner = runner
        self.plan = plan
        self.oslo_max_size = oslo_max_size
        self.smoke = plan.name == "smoke"

    def case(self, measurement: str, tool: str, params: dict[str, Any],
             runs: int, budget: float | None = None) -> Case:
        """Run one case ``runs`` times (fewer if slow); return it."""
        chosen = Case(measurement, tool, dict(params))
        limit = self.plan.slow_budget if budget is None else budget
        return self.runner.repeat(chosen, runs, limit)

    def goal(self, applies: bool, met: Callable[[], bool | None],
             detail: Callable[[], str]) -> str:
        """Return the verdict of a goal that applies to this row."""
        if not applies:
            return ""
        try:
            return verdict(met(), detail())
        except TypeError:  # a figure is missing: the case failed
            return "n/a (failed)"

    # -- 1. report cost ------------------------------------------------

    def report_cost(self) -> list[Row]:
        """Time, peak memory, size and completeness of one report."""
        workloads = [("mix", size) for size in self.plan.sizes]
        workloads.append(("identical", self.plan.identical_size))
        cases: dict[tuple[str, int], dict[str, Case]] = {}
        for workload, size in workloads:
            self.runner.say(f"{REPORT_COST}: {workload} {size}")
            params = {"workload": workload, "size": size, "log_dir": True}
            found = {DF_GMR: self.case("report_cost", DF_GMR, params,
                                       self.plan.report_runs)}
            if self.oslo_max_size is None or size <= self.oslo_max_size:
                found[OSLO] = self.case("report_cost", OSLO, params,
                                        self.plan.report_runs)
            else:
                found[OSLO] = self.extrapolated(cases, workload, size)
            cases[(workload, size)] = found
        rows: list[Row] = []
        for metric in (self._time_row, self._floor_row, self._memory_row,
                       self._size_row, self._listed_row):
            for (workload, size), found in cases.items():
                row = metric(workload, size, found[DF_GMR], found[OSLO])
                if row is not None:
                    rows.append(row)
        return rows

    def extrapolated(self, cases: dict[tuple[str, int], dict[str, Case]],
                     workload: str, size: int) -> Case:
        """Scale oslo.reports' largest measured mix linearly to ``size``."""
        measured = [(known, found[OSLO]) for (kind, known), found
                    in cases.items()
                    if kind == workload and found[OSLO].results]
        case = Case("report_cost", OSLO,
                    {"workload": workload, "size": size,
                     "extrapolated": True})
        if not measured:
            case.error = "nothing measured to extrapolate from"
            return case
        known, source = max(measured, key=lambda item: item[0])
        scale = size / known
        case.params["from_size"] = known
        case.results.append({
            key: source.median(key) * scale
            for key in ("seconds", "floor_seconds", "peak_growth",
                        "report_bytes", "listed", "greenlets")
            if source.median(key) is not None
        })
        return case

    @staticmethod
    def _workload_label(workload: str, size: int) -> str:
        if workload == "identical":
            return f"{size_label(size)} identical Event waiters"
        return f"{size_label(size)} mix"

    @staticmethod
    def _oslo_note(case: Case, text: str) -> str:
        if case.params.get("extrapolated") and not case.results:
            return "not measured (above --oslo-max-size)"
        if case.params.get("extrapolated"):
            return (f"~{text} (extrapolated from "
                    f"{size_label(case.params.get('from_size', 0))})")
        return text

    def _time_row(self, workload: str, size: int, df_gmr: Case,
                  oslo: Case) -> Row:
        df_seconds = df_gmr.median("seconds")
        oslo_seconds = oslo.median("seconds")
        goal = ""
        met = ""
        if workload == "mix" and size == GOAL_MIDDLE:
            goal = ">= 50x faster than oslo.reports"
            met = self.goal(True, lambda: oslo_seconds / df_seconds >= 50,
                            lambda: times(oslo_seconds, df_seconds))
        elif workload == "mix" and size == GOAL_LARGE:
            goal = "< 2 s"
            met = self.goal(True, lambda: df_seconds < 2,
                            lambda: f"{df_seconds / 2:.2f}x the goal")
        return Row(
            f"{REPORT_COST}: time", self._workload_label(workload, size),
            seconds_label(df_seconds),
            self._oslo_note(oslo, seconds_label(oslo_seconds)),
            f"oslo.reports / df_gmr = {times(oslo_seconds, df_seconds)}",
            goal, met, runs_label(df_gmr, oslo))

    def _floor_row(self, workload: str, size: int, df_gmr: Case,
                   oslo: Case) -> Row | None:
        if workload != "mix":
            return None
        df_ratio = _median_ratio(df_gmr, "seconds", "floor_seconds")
        oslo_ratio = _median_ratio(oslo, "seconds", "floor_seconds")
        goal = ""
        met = ""
        if size == GOAL_MIDDLE:
            goal = "<= 3x the walk"
            met = self.goal(True, lambda: df_ratio <= 3,
                            lambda: f"{df_ratio / 3:.1f}x the goal")
        walk = df_gmr.median("floor_seconds")
        return Row(
            f"{REPORT_COST}: time / bare frame walk",
            self._workload_label(workload, size),
            f"{df_ratio:.1f}x" if df_ratio else "failed",
            self._oslo_note(oslo, f"{oslo_ratio:.0f}x" if oslo_ratio
                            else "failed"),
            f"walk of the same greenlets: {seconds_label(walk)}",
            goal, met, runs_label(df_gmr, oslo))

    def _memory_row(self, workload: str, size: int, df_gmr: Case,
                    oslo: Case) -> Row:
        df_growth = df_gmr.median("peak_growth")
        oslo_growth = oslo.median("peak_growth")
        goal = ""
        met = ""
        if workload == "mix" and size == GOAL_LARGE:
            goal = "< 64 MiB"
            met = self.goal(True, lambda: df_growth < 64 * MIB,
                            lambda: f"{df_growth / (64 * MIB):.1f}x the "
                            "goal")
        exact = df_gmr.first("peak_exact")
        method = "VmHWM" if exact or exact is None else "sampled RSS"
        return Row(
            f"{REPORT_COST}: peak memory growth ({method})",
            self._workload_label(workload, size),
            mib_label(df_growth),
            self._oslo_note(oslo, mib_label(oslo_growth)),
            f"oslo.reports / df_gmr = {times(oslo_growth, df_growth)}",
            goal, met, runs_label(df_gmr, oslo))

    def _size_row(self, workload: str, size: int, df_gmr: Case,
                  oslo: Case) -> Row:
        df_bytes = df_gmr.median("report_bytes")
        oslo_bytes = oslo.median("report_bytes")
        goal = ""
        met = ""
        if workload == "identical" and size == GOAL_MIDDLE:
            goal = "< 100 KB"
            met = self.goal(True, lambda: df_bytes < 100_000,
                            lambda: kb_label(df_bytes))
        return Row(
            f"{REPORT_COST}: report size (text)",
            self._workload_label(workload, size),
            kb_label(df_bytes), self._oslo_note(oslo, kb_label(oslo_bytes)),
            f"oslo.reports / df_gmr = {times(oslo_bytes, df_bytes)}",
            goal, met, runs_label(df_gmr, oslo))

    def _listed_row(self, workload: str, size: int, df_gmr: Case,
                    oslo: Case) -> Row:
        def listed(case: Case) -> str:
            if case.params.get("extrapolated"):
                return "not measured"
            count = case.median("listed")
            total = case.median("greenlets")
            if count is None:
                return "failed"
            return f"{count:.0f} of {total:.0f}"

        count = df_gmr.median("listed")
        total = df_gmr.median("greenlets")
        return Row(
            f"{REPORT_COST}: greenlets in the report",
            self._workload_label(workload, size),
            listed(df_gmr), listed(oslo),
            "of all greenlet objects in the process", "all",
            self.goal(True, lambda: count >= total,
                      lambda: "" if count >= total
                      else f"{total - count:.0f} missing"),
            runs_label(df_gmr, oslo))

    # -- 2. stall ------------------------------------------------------

    def stall(self) -> list[Row]:
        """Largest gap of a 10 ms ticker while a signalled report is made."""
        size = self.plan.stall_size
        self.runner.say(f"{STALL}: mix {size}")
        params = {"workload": "mix", "size": size, "log_dir": True,
                  "baseline": 0.5,
                  "timeout": self.plan.child_timeout - 60}
        found = {tool: self.case("stall", tool, params,
                                 self.plan.stall_runs,
                                 self.plan.stall_budget)
                 for tool in TOOLS}
        df_gap = found[DF_GMR].median("max_gap")
        oslo_gap = found[OSLO].median("max_gap")

        def describe(case: Case) -> str:
            gap = case.median("max_gap")
            if gap is None:
                return "failed"
            return (f"{seconds_label(gap)} (quiet: "
                    f"{seconds_label(case.median('quiet_max_gap'))}; "
                    f"report after "
                    f"{seconds_label(case.median('report_seconds'))})")

        return [Row(
            f"{STALL}: largest gap of a 10 ms ticker",
            f"{size_label(size)} mix, SIGUSR2 to itself",
            describe(found[DF_GMR]), describe(found[OSLO]),
            f"oslo.reports / df_gmr = {times(oslo_gap, df_gap)}",
            "< 50 ms",
            self.goal(True, lambda: df_gap < 0.05,
                      lambda: seconds_label(df_gap)),
            runs_label(found[DF_GMR], found[OSLO]))]

    # -- 3. cost at rest -----------------------------------------------

    def rest(self) -> list[Row]:
        """Spawn and switch throughput with each tool set up, or none."""
        self.runner.say(f"{REST}: {self.plan.rest_rounds} rounds")
        params = {"spawns": self.plan.spawns,
                  "switches": self.plan.switches,
                  "inner": self.plan.rest_inner, "log_dir": True}
        order = [WITHOUT, DF_GMR, OSLO]
        rounds: list[dict[str, dict[str, Any]]] = []
        cases = {tool: Case("rest", tool, dict(params))
                 for tool in order}
        for index in range(self.plan.rest_rounds):
            shift = index % len(order)
            this_round: dict[str, dict[str, Any]] = {}
            for tool in order[shift:] + order[:shift]:
                single = self.case("rest", tool, params, 1, math.inf)
                if single.results:
                    this_round[tool] = single.results[0]
                    cases[tool].results.append(single.results[0])
                else:
                    cases[tool].error = single.error
            rounds.append(this_round)
        rows = []
        for key, title, unit, higher_is_better in (
                ("spawn_seconds", "spawn throughput", "spawns/s", False),
                ("switch_rate", "switch throughput", "switches/s", True)):
            shares = {tool: _paired_shares(rounds, tool, key,
                                           higher_is_better)
                      for tool in TOOLS}
            baseline = cases[WITHOUT].median(key)
            if baseline and not higher_is_better:
                baseline = 1 / baseline
            df_share = shares[DF_GMR]
            workload = (f"{self.plan.spawns:,} eventlet.spawn + sleep(0)"
                        if key == "spawn_seconds" else
                        f"{self.plan.switches:,} sleep(0) switches, "
                        "2 greenthreads")
            rows.append(Row(
                f"{REST}: {title}", workload,
                _share_label(df_share), _share_label(shares[OSLO]),
                f"without either: {baseline:,.0f} {unit}" if baseline
                else "without either: failed",
                ">= 97% of without",
                self.goal(True, lambda share=df_share: share >= 0.97,
                          lambda share=df_share: f"{share:.1%}"),
                f"{cases[DF_GMR].runs} / {cases[OSLO].runs} rounds"))
        return rows

    # -- 4. copy-on-write ----------------------------------------------

    def copy_on_write(self) -> list[Row]:
        """Private memory a forked worker gains by making one report."""
        self.runner.say(f"{COPY_ON_WRITE}: heap {self.plan.heap_mb} MB")
        params = {"workload": "mix", "size": self.plan.cow_size,
                  "heap_mb": self.plan.heap_mb, "log_dir": True,
                  "timeout": self.plan.child_timeout - 60}
        found = {tool: self.case("copy_on_write", tool, params,
                                 self.plan.cow_runs, math.inf)
                 for tool in TOOLS}

        def describe(case: Case) -> str:
            growth = case.median("growth")
            if growth is None:
                return "failed"
            return (f"+{mib_label(growth)} (second report "
                    f"+{mib_label(case.median('second_growth'))}; "
                    f"lists {case.median('listed'):.0f} greenlets)")

        df_growth = found[DF_GMR].median("growth")
        heap = found[DF_GMR].median("heap_bytes")
        heap_text = f"{heap / 2**30:.2f} GiB" if heap else "?"
        return [Row(
            f"{COPY_ON_WRITE}: worker's private memory growth",
            f"{heap_text} frozen heap + {size_label(self.plan.cow_size)} "
            "mix, forked worker, SIGUSR2",
            describe(found[DF_GMR]), describe(found[OSLO]),
            "oslo.reports / df_gmr = "
            f"{times(found[OSLO].median('growth'), df_growth)}",
            "< 16 MiB",
            self.goal(True, lambda: df_growth < 16 * MIB,
                      lambda: mib_label(df_growth)),
            runs_label(found[DF_GMR], found[OSLO]))]

    # -- 5. latency ----------------------------------------------------

    def latency(self) -> list[Row]:
        """Signal-to-file time while a greenthread blocks the hub."""
        rows = []
        block = self.plan.latency_block
        for variant, workload, goal in (
                ("sleep", f"hub blocked in unpatched time.sleep({block:g})",
                 "< 1 s"),
                ("restarting", f"hub blocked in a C call that retries on "
                 f"EINTR ({block:g} s, glibc system())", "")):
            self.runner.say(f"{LATENCY}: {variant}")
            params = {"workload": "mix", "size": self.plan.latency_size,
                      "log_dir": True, "block": block, "variant": variant,
                      "timeout": 60.0}
            found = {tool: self.case("latency", tool, params,
                                     self.plan.latency_runs, math.inf)
                     for tool in TOOLS}

            def describe(case: Case) -> str:
                latency = case.median("latency")
                if latency is None:
                    return "failed"
                waited = case.median("blocked_for") or 0
                after = latency >= waited - 0.05
                return seconds_label(latency) + (
                    " (only once the call returned)" if after else "")

            df_latency = found[DF_GMR].median("latency")
            rows.append(Row(
                f"{LATENCY}: SIGUSR2 to report file",
                f"{workload}, {size_label(self.plan.latency_size)} mix",
                describe(found[DF_GMR]), describe(found[OSLO]),
                "oslo.reports / df_gmr = "
                f"{times(found[OSLO].median('latency'), df_latency)}",
                goal or "(no goal; shows the limit)",
                self.goal(bool(goal), lambda value=df_latency: value < 1,
                          lambda value=df_latency: seconds_label(value)),
                runs_label(found[DF_GMR], found[OSLO])))
        return rows


def _median_ratio(case: Case, numerator: str, denominator: str
                  ) -> float | None:
    ratios = [result[numerator] / result[denominator]
              for result in case.results
              if result.get(numerator) and result.get(denominator)]
    return statistics.median(ratios) if ratios else None


def _paired_shares(rounds: list[dict[str, dict[str, Any]]], tool: str,
                   key: str, higher_is_better: bool) -> float | None:
    # Each round pairs a tool's process with the process without either
    # that ran next to it: the median of those ratios resists drift.
    shares = []
    for this_round in rounds:
        if tool not in this_round or WITHOUT not in this_round:
            continue
        value = this_round[tool][key]
        baseline = this_round[WITHOUT][key]
        if not value or not baseline:
            continue
        shares.append(value / baseline if higher_is_better
                      else baseline / value)
    return statistics.median(shares) if shares else None


def _share_label(share: float | None) -> str:
    if share is None:
        return "failed"
    return f"{share:.1%} of without"
