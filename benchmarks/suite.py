"""Measurements 1-5: run their cases, turn the medians into rows.

Measurements 6 and 7 (threading mode) are in ``native_suite``, 8 (the
analysis commands) in ``diagnosis_suite``.  Every figure is the median of
the runs, shown with the worst run when there are several.
"""

from __future__ import annotations

from collections.abc import Callable
import math
import statistics
from typing import Any

from benchmarks.phases import FINDINGS as FINDINGS_PHASE
from benchmarks.plan import Plan
from benchmarks.runner import Case
from benchmarks.runner import Runner
from benchmarks.table import Row
from benchmarks.table import verdict

DF_GMR = "df_gmr"
OSLO = "oslo.reports"
WITHOUT = "none"
#: Cost at rest's control: df_gmr's modules imported, nothing set up.
IMPORTED = "df_gmr imported"
TOOLS = (DF_GMR, OSLO)
MIB = 2**20
#: The verdict of a goal whose figures are missing (the case failed).
FAILED = "n/a (failed)"
#: The sizes the goals are stated for.
GOAL_SMALL = 1_000
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
#: df-gmr's analysis commands on big reports (``benchmarks.diagnosis_suite``).
DIAGNOSIS = "8. diagnosis"
MEASUREMENT_NAMES = (REPORT_COST, STALL, REST, COPY_ON_WRITE, LATENCY,
                     NATIVE_REPORT, REST_HOOKS, DIAGNOSIS)


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


def values(case: Case, key: str) -> list[float]:
    """Return ``key`` of every run of ``case`` that has it."""
    return [result[key] for result in case.results
            if result.get(key) is not None]


def ratios(case: Case, numerator: str, denominator: str) -> list[float]:
    """Return ``numerator / denominator`` of every run, paired in it."""
    return [result[numerator] / result[denominator]
            for result in case.results
            if result.get(numerator) and result.get(denominator)]


def _over(worst: float, goal: float) -> str:
    """Say that a time goal's worst run missed it (it then is not met)."""
    return " is over" if worst > goal else ""


def median_worst(found: list[float], worst: Any = max
                 ) -> tuple[float | None, float | None]:
    """Return the median and the worst (``max`` or ``min``) of ``found``."""
    if not found:
        return None, None
    return statistics.median(found), worst(found)


def seconds_pair(found: list[float]) -> str:
    """Return ``33.8 ms (worst 55.2 ms)``."""
    middle, worst = median_worst(found)
    if middle is None:
        return "failed"
    return f"{seconds_label(middle)} (worst {seconds_label(worst)})"


def with_worst(found: list[float], label: Callable[[float], str],
               worst: Callable[[list[float]], float] = max) -> str:
    """Return ``median (worst W)``, or the one value of a single run."""
    middle, bad = median_worst(found, worst)
    if middle is None:
        return "failed"
    if len(found) < 2 or bad is None:
        return label(middle)
    return f"{label(middle)} (worst {label(bad)})"


def differences(case: Case, minuend: str, subtrahend: str) -> list[float]:
    """Return ``minuend - subtrahend`` of every run, paired in it."""
    return [result[minuend] - result[subtrahend]
            for result in case.results
            if result.get(minuend) is not None
            and result.get(subtrahend) is not None]


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
        """Time, peak memory, size and completeness of one report.

        df_gmr's children also time the report's phases; at the fixed
        cost's size and the findings' size they then make reports with
        and without findings, in pairs (``findings_pairs``).
        """
        workloads = [("mix", size) for size in self.plan.sizes]
        workloads.extend(("identical", size)
                         for size in self.plan.identical_sizes)
        paired = {self.fixed_size(), self.findings_size()}
        cases: dict[tuple[str, int], dict[str, Case]] = {}
        for workload, size in workloads:
            self.runner.say(f"{REPORT_COST}: {workload} {size}")
            params = {"workload": workload, "size": size, "log_dir": True}
            pairs = self.plan.findings_pairs if (
                workload == "mix" and size in paired) else 0
            found = {DF_GMR: self.case(
                "report_cost", DF_GMR,
                dict(params, phases=True, findings_pairs=pairs),
                self.plan.report_runs)}
            why = self.oslo_not_measured(workload, size)
            if why is None:
                found[OSLO] = self.case("report_cost", OSLO, params,
                                        self.plan.report_runs)
            else:
                found[OSLO] = self.extrapolated(cases, workload, size, why)
            cases[(workload, size)] = found
        rows: list[Row] = []
        for metric in (self._time_row, self._floor_row, self._fixed_row,
                       self._phases_row, self._findings_row,
                       self._memory_row, self._size_row, self._listed_row):
            for (workload, size), found in cases.items():
                row = metric(workload, size, found[DF_GMR], found[OSLO])
                if row is not None:
                    rows.append(row)
        return rows

    def fixed_size(self) -> int:
        """Return the mix size of the fixed cost row (the smallest)."""
        return min(self.plan.sizes)

    def findings_size(self) -> int:
        """Return the mix size of the findings overhead row.

        The goal's (10k), else the largest below it, else the smallest.
        """
        below = [size for size in self.plan.sizes if size <= GOAL_MIDDLE]
        return max(below) if below else min(self.plan.sizes)

    def oslo_not_measured(self, workload: str, size: int) -> str | None:
        """Say why oslo.reports' case is extrapolated, or None."""
        if self.oslo_max_size is not None and size > self.oslo_max_size:
            return "above --oslo-max-size"
        limit = self.plan.oslo_identical_max
        if workload == "identical" and limit is not None and size > limit:
            return (f"measured up to {size_label(limit)} identical "
                    "waiters, to keep the run short")
        return None

    def extrapolated(self, cases: dict[tuple[str, int], dict[str, Case]],
                     workload: str, size: int, why: str) -> Case:
        """Scale oslo.reports' largest measured case linearly to ``size``.
        """
        measured = [(known, found[OSLO]) for (kind, known), found
                    in cases.items()
                    if kind == workload and found[OSLO].results
                    and not found[OSLO].params.get("extrapolated")]
        case = Case("report_cost", OSLO,
                    {"workload": workload, "size": size,
                     "extrapolated": True, "why": why})
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
            return f"not measured ({case.params.get('why')})"
        if case.params.get("extrapolated"):
            return (f"~{text} (extrapolated from "
                    f"{size_label(case.params.get('from_size', 0))}: "
                    f"{case.params.get('why')})")
        return text

    def _time_row(self, workload: str, size: int, df_gmr: Case,
                  oslo: Case) -> Row:
        df_seconds, df_worst = median_worst(values(df_gmr, "seconds"))
        oslo_seconds = oslo.median("seconds")
        goal = ""
        met = ""
        if workload == "mix" and size == GOAL_MIDDLE:
            goal = ">= 50x faster than oslo.reports"
            if oslo.params.get("extrapolated") and not oslo.results:
                met = "n/a (oslo.reports not measured)"
            else:
                met = self.goal(
                    True, lambda: oslo_seconds / df_seconds >= 50,
                    lambda: times(oslo_seconds, df_seconds))
        elif size == GOAL_LARGE:
            goal = "< 1 s median, < 2 s worst"
            met = FAILED if df_seconds is None or df_worst is None \
                else verdict(df_seconds < 1 and df_worst < 2,
                             f"median {seconds_label(df_seconds)}, worst "
                             f"{seconds_label(df_worst)}")
        return Row(
            f"{REPORT_COST}: time", self._workload_label(workload, size),
            with_worst(values(df_gmr, "seconds"), seconds_label),
            self._oslo_note(oslo, with_worst(values(oslo, "seconds"),
                                             seconds_label)),
            f"oslo.reports / df_gmr = {times(oslo_seconds, df_seconds)}",
            goal, met, runs_label(df_gmr, oslo))

    def _floor_row(self, workload: str, size: int, df_gmr: Case,
                   oslo: Case) -> Row | None:
        if workload != "mix":
            return None
        df_ratio = _median_ratio(df_gmr, "seconds", "floor_seconds")
        _, worst_ratio = median_worst(ratios(df_gmr, "seconds",
                                             "floor_seconds"))
        goal = ""
        met = ""
        if size == GOAL_MIDDLE:
            goal = "<= 3x the walk"
            met = FAILED if df_ratio is None or worst_ratio is None \
                else verdict(df_ratio <= 3 and worst_ratio <= 3,
                             f"{df_ratio / 3:.1f}x the goal, worst "
                             f"{worst_ratio:.1f}x" + _over(worst_ratio, 3))
        walk = df_gmr.median("floor_seconds")
        faults = (df_gmr.median("report_faults"),
                  df_gmr.median("floor_faults"))
        touched = "" if None in faults else (
            f"; memory touched for the first time (minor page faults, "
            f"medians): {faults[0]:.0f} in the report, {faults[1]:.0f} "
            "in the walk")
        return Row(
            f"{REPORT_COST}: time / bare frame walk",
            self._workload_label(workload, size),
            with_worst(ratios(df_gmr, "seconds", "floor_seconds"),
                       lambda ratio: f"{ratio:.1f}x"),
            self._oslo_note(oslo, with_worst(
                ratios(oslo, "seconds", "floor_seconds"),
                lambda ratio: f"{ratio:.0f}x")),
            f"walk of the same greenlets: {seconds_label(walk)}{touched}",
            goal, met, runs_label(df_gmr, oslo))

    def _fixed_row(self, workload: str, size: int, df_gmr: Case,
                   oslo: Case) -> Row | None:
        if workload != "mix" or size != self.fixed_size():
            return None
        fixed = differences(df_gmr, "seconds", "floor_seconds")
        middle, worst = median_worst(fixed)
        warm = [statistics.median(result["with_findings"])
                for result in df_gmr.results
                if result.get("with_findings")]
        goal = ""
        met = ""
        if size == GOAL_SMALL:
            goal = "<= 10 ms"
            met = FAILED if middle is None or worst is None \
                else verdict(middle <= 0.010 and worst <= 0.010,
                             f"{middle * 1000:.1f} ms, worst "
                             f"{worst * 1000:.1f} ms" + _over(worst, 0.010))
        return Row(
            f"{REPORT_COST}: fixed cost (report time - bare frame walk)",
            self._workload_label(workload, size),
            with_worst(fixed, seconds_label),
            self._oslo_note(oslo, with_worst(
                differences(oslo, "seconds", "floor_seconds"),
                seconds_label)),
            "first report of the process (the measured one); later "
            "reports in the same process: "
            + (with_worst(warm, seconds_label) if warm else "not taken")
            + "; top phases in the next row",
            goal, met, runs_label(df_gmr, oslo))

    def _phases_row(self, workload: str, size: int, df_gmr: Case,
                    oslo: Case) -> Row | None:
        found = [result["phases"] for result in df_gmr.results
                 if isinstance(result.get("phases"), dict)]
        if not found and df_gmr.results:
            return None  # a df_gmr without the phases (no such names)
        medians = {name: statistics.median(
            [phases.get(name, 0.0) for phases in found])
            for name in {name for phases in found for name in phases}}
        biggest = sorted(medians.items(), key=lambda item: -item[1])[:5]
        total = df_gmr.median("seconds")
        shown = sum(seconds for _, seconds in biggest)
        cell = ("; ".join(f"{name} {seconds_label(seconds)}"
                          for name, seconds in biggest)
                if biggest else "failed")
        return Row(
            f"{REPORT_COST}: top 5 phases of the report (own time, "
            "medians)",
            self._workload_label(workload, size), cell, "not timed",
            (f"these 5: {shown / total:.0%} of the median "
             f"{seconds_label(total)}; all phases in each run's RESULT "
             "(benchmarks/phases.py)") if total and biggest else "",
            "(breakdown, no goal)", "", runs_label(df_gmr, None))

    def _findings_row(self, workload: str, size: int, df_gmr: Case,
                      oslo: Case) -> Row | None:
        if workload != "mix" or size != self.findings_size():
            return None
        passes = [result["phases"][FINDINGS_PHASE]
                  for result in df_gmr.results
                  if FINDINGS_PHASE in (result.get("phases") or {})]
        shares = [result["phases"][FINDINGS_PHASE] / (
            result["seconds"] - result["phases"][FINDINGS_PHASE])
            for result in df_gmr.results
            if FINDINGS_PHASE in (result.get("phases") or {})]
        paired = [statistics.median(result["with_findings"])
                  / statistics.median(result["without_findings"]) - 1
                  for result in df_gmr.results
                  if result.get("with_findings")
                  and result.get("without_findings")]
        share, worst = median_worst(shares)
        pairs = len(df_gmr.results[0].get("with_findings", ())) \
            if df_gmr.results else 0
        goal = ""
        met = ""
        if size == GOAL_MIDDLE:
            goal = "<= 10% extra report time"
            met = FAILED if share is None or worst is None \
                else verdict(share <= 0.10 and worst <= 0.10,
                             f"{share:.1%}, worst {worst:.1%}"
                             + _over(worst, 0.10))
        return Row(
            f"{REPORT_COST}: findings overhead (findings pass / rest of "
            "the report)",
            self._workload_label(workload, size),
            with_worst(shares, lambda value: f"{value:.1%}"),
            "no findings",
            f"the pass (derive, limits, their text): "
            f"{with_worst(passes, seconds_label)} per report; paired in "
            "one process, report with findings / with the pass returning "
            f"none ({pairs} pair{'' if pairs == 1 else 's'}, warm): "
            + with_worst(paired, lambda value: f"{value:+.1%}"),
            goal, met, runs_label(df_gmr, None))

    def _memory_row(self, workload: str, size: int, df_gmr: Case,
                    oslo: Case) -> Row:
        df_growth, df_worst = median_worst(values(df_gmr, "peak_growth"))
        oslo_growth = oslo.median("peak_growth")
        goal = ""
        met = ""
        if size == GOAL_LARGE:
            goal = "< 64 MiB"
            met = FAILED if df_growth is None \
                else verdict(df_growth < 64 * MIB,
                             f"{df_growth / (64 * MIB):.2f}x the goal; "
                             f"worst {mib_label(df_worst)}")
        exact = df_gmr.first("peak_exact")
        method = "VmHWM" if exact or exact is None else "sampled RSS"
        return Row(
            f"{REPORT_COST}: peak memory growth ({method})",
            self._workload_label(workload, size),
            with_worst(values(df_gmr, "peak_growth"), mib_label),
            self._oslo_note(oslo, with_worst(values(oslo, "peak_growth"),
                                             mib_label)),
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
            with_worst(values(df_gmr, "report_bytes"), kb_label),
            self._oslo_note(oslo, with_worst(values(oslo, "report_bytes"),
                                             kb_label)),
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

        # Every run must list them all: the worst run's shortfall counts.
        missing = max((result["greenlets"] - result["listed"]
                       for result in df_gmr.results
                       if result.get("listed") is not None
                       and result.get("greenlets") is not None),
                      default=None)
        return Row(
            f"{REPORT_COST}: greenlets in the report",
            self._workload_label(workload, size),
            listed(df_gmr), listed(oslo),
            "of all greenlet objects in the process (median run)", "all",
            FAILED if missing is None else verdict(
                missing <= 0, "every run" if missing <= 0
                else f"{missing:.0f} missing in the worst run"),
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
                  "inner": self.plan.rest_inner, "log_dir": True,
                  "pairs": self.plan.rest_pairs}
        order = [WITHOUT, DF_GMR, OSLO, IMPORTED]
        rounds: list[dict[str, dict[str, Any]]] = []
        cases = {tool: Case("rest", tool, dict(params))
                 for tool in order}
        for index in range(self.plan.rest_rounds):
            # One process per tool, alive together, taking turns: each
            # runs the spawn loop in its turn, the order rotated from one
            # run to the next and from one round to the next, then the
            # switch loop alike; df_gmr's then times its hooks swapped
            # out and back in.
            this_round = [Case("rest", tool, dict(params))
                          for tool in order]
            script = [(position, word)
                      for word in ("spawn", "switch")
                      for run in range(self.plan.rest_inner)
                      for position in _rotated(range(len(order)),
                                               index + run)]
            script.append((order.index(DF_GMR), "pairs"))
            self.runner.turns("rest", this_round, script)
            found: dict[str, dict[str, Any]] = {}
            for tool, case in zip(order, this_round, strict=True):
                if case.results:
                    found[tool] = case.results[0]
                    cases[tool].results.append(case.results[0])
                elif case.error:
                    cases[tool].error = case.error
            self.runner.say(f"  rest round {index + 1}: " + "; ".join(
                f"{tool} {result['spawn_seconds'] * 1e6:.2f} us/spawn"
                for tool, result in found.items()))
            rounds.append(found)
        rows = []
        for key, title, unit, higher_is_better in (
                ("spawn_seconds", "spawn throughput", "spawns/s", False),
                ("switch_rate", "switch throughput", "switches/s", True)):
            shares = {tool: _paired_shares(rounds, tool, key,
                                           higher_is_better)
                      for tool in (*TOOLS, IMPORTED)}
            # The set-up's own share: df_gmr set up against df_gmr only
            # imported, paired within each round.
            set_up_share = _paired_shares(rounds, DF_GMR, key,
                                          higher_is_better, IMPORTED)
            baseline = cases[WITHOUT].median(key)
            if baseline and not higher_is_better:
                baseline = 1 / baseline
            df_share = shares[DF_GMR]
            kernel = ""
            if key == "spawn_seconds":
                paired, paired_worst = median_worst(
                    [pair for result in cases[DF_GMR].results
                     for pair in result.get("spawn_paired", [])], min)
                if paired is not None and paired_worst is not None:
                    kernel += (f"; the hooks swapped out and back in, in "
                               f"each df_gmr process: {paired:.1%} of "
                               f"without them (worst {paired_worst:.1%})")
                kernel += "; " + "; ".join(
                    f"{label}: kernel {share:.0%} of the loop's CPU time, "
                    f"{faults:.2f} page faults per spawn"
                    for label, tool in (("without either", WITHOUT),
                                        ("df_gmr", DF_GMR))
                    if (share := cases[tool].median("spawn_kernel_share"))
                    is not None and (faults := cases[tool].median(
                        "spawn_faults")) is not None)
            workload = (f"{self.plan.spawns:,} eventlet.spawn + sleep(0)"
                        if key == "spawn_seconds" else
                        f"{self.plan.switches:,} sleep(0) switches, "
                        "2 greenthreads")
            rows.append(Row(
                f"{REST}: {title}", workload,
                _share_label(df_share), _share_label(shares[OSLO]),
                (f"without either: {baseline:,.0f} {unit}" if baseline
                 else "without either: failed")
                + f"; df_gmr only imported (no set-up): "
                f"{_share_label(shares[IMPORTED])}, so set up / only "
                f"imported: {_share_label(set_up_share, 'of imported')}"
                + kernel,
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
                   key: str, higher_is_better: bool,
                   against: str = WITHOUT) -> float | None:
    # Each round pairs a tool's process with the process without either
    # (or ``against``) that ran next to it: the median of those ratios
    # resists drift.
    shares = []
    for this_round in rounds:
        if tool not in this_round or against not in this_round:
            continue
        value = this_round[tool][key]
        baseline = this_round[against][key]
        if not value or not baseline:
            continue
        shares.append(value / baseline if higher_is_better
                      else baseline / value)
    return statistics.median(shares) if shares else None


def _rotated(items: range, shift: int) -> list[int]:
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def _share_label(share: float | None, of: str = "of without") -> str:
    if share is None:
        return "failed"
    return f"{share:.1%} {of}"
