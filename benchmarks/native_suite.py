"""Measurements 6 and 7: a threading-mode service's native threads.

6. **Native threads report**: a process of ``plan.native_size`` native
   threads (no eventlet), df_gmr or oslo.reports set up first.  Each run
   (a fresh process) times the bare walk, then one of: df_gmr's Threads
   section alone, df_gmr's whole report, oslo.reports' whole report.
7. **Hooks at rest**: the throughput of ``Thread.start(); join()`` and of
   two thread pools' ``submit`` + ``result``, with df_gmr's hook installed
   or not, in interleaved fresh processes.

Each figure is the median of the runs, shown with the worst run.
"""

from __future__ import annotations

import statistics

from benchmarks.native import POOL_WORKERS
from benchmarks.runner import Case
from benchmarks.suite import DF_GMR
from benchmarks.suite import NATIVE_REPORT
from benchmarks.suite import OSLO
from benchmarks.suite import REST_HOOKS
from benchmarks.suite import WITHOUT
from benchmarks.suite import Suite
from benchmarks.suite import kb_label
from benchmarks.suite import median_worst
from benchmarks.suite import ratios
from benchmarks.suite import runs_label
from benchmarks.suite import seconds_pair
from benchmarks.suite import size_label
from benchmarks.suite import times
from benchmarks.suite import values
from benchmarks.table import Row

#: The goal of the Threads section, in multiples of the bare walk.
SECTION_GOAL = 3.0
#: The goal of each hook, as a share of the throughput without it.
HOOK_GOAL = 0.97
#: (variant, title, workload, unit, what one operation is).
HOOK_WORKLOADS = (
    ("thread_start", "threading.Thread start + join",
     "{threads:,} x Thread(target=f).start(); join(), with "
     "df_gmr.origins.install()", "threads/s", "start + join"),
    ("cf_executor", "concurrent.futures.ThreadPoolExecutor",
     "{tasks:,} x submit(f) + result() (batches of {batch:,}), "
     "{workers} workers, with df_gmr.runtime.executors.install()",
     "tasks/s", "task"),
    ("futurist_executor", "futurist.ThreadPoolExecutor",
     "{tasks:,} x submit(f) + result() (batches of {batch:,}), "
     "{workers} workers, with df_gmr.runtime.executors.install()",
     "tasks/s", "task"),
)
#: Tasks submitted before their results are waited for.
POOL_BATCH = 1_000


def native_workload(size: int) -> str:
    """Describe the threading-mode workload."""
    return (f"{size_label(size)} native threads (half in one "
            "Queue.get; Event, sleep, Lock, RLock, socket, executor "
            "workers), no eventlet")


def native_report(suite: Suite) -> list[Row]:
    """The Threads section and whole reports of a threading-mode process."""
    size = suite.plan.native_size
    runs = suite.plan.native_runs
    suite.runner.say(f"{NATIVE_REPORT}: {size} native threads")
    params = {"size": size, "log_dir": True}
    section = suite.case("native_report", DF_GMR,
                         dict(params, part="section"), runs)
    found = {tool: suite.case("native_report", tool,
                              dict(params, part="report"), runs)
             for tool in (DF_GMR, OSLO)}
    workload = native_workload(size)
    rows = [_section_row(suite, workload, section)]

    df_time, df_worst = median_worst(values(found[DF_GMR], "seconds"))
    oslo_time, oslo_worst = median_worst(values(found[OSLO], "seconds"))
    rows.append(Row(
        f"{NATIVE_REPORT}: whole report time", workload,
        seconds_pair(values(found[DF_GMR], "seconds")),
        seconds_pair(values(found[OSLO], "seconds")),
        f"oslo.reports / df_gmr = {times(oslo_time, df_time)} "
        f"(worst / worst: {times(oslo_worst, df_worst)})",
        "", "", runs_label(found[DF_GMR], found[OSLO])))

    df_bytes = found[DF_GMR].median("report_bytes")
    oslo_bytes = found[OSLO].median("report_bytes")
    rows.append(Row(
        f"{NATIVE_REPORT}: report size (text)", workload,
        kb_label(df_bytes), kb_label(oslo_bytes),
        f"oslo.reports / df_gmr = {times(oslo_bytes, df_bytes)}",
        "", "", runs_label(found[DF_GMR], found[OSLO])))

    def listed(case: Case) -> str:
        count = case.median("listed")
        total = case.median("threads")
        if count is None or total is None:
            return "failed"
        return f"{count:.0f} of {total:.0f}"

    count = found[DF_GMR].median("listed")
    total = found[DF_GMR].median("threads")
    rows.append(Row(
        f"{NATIVE_REPORT}: threads in the report", workload,
        listed(found[DF_GMR]), listed(found[OSLO]),
        "of sys._current_frames()", "all",
        suite.goal(True, lambda: count >= total,
                   lambda: "" if count >= total
                   else f"{total - count:.0f} missing"),
        runs_label(found[DF_GMR], found[OSLO])))
    return rows


def _section_row(suite: Suite, workload: str, section: Case) -> Row:
    ratio, worst = median_worst(ratios(section, "seconds", "floor_seconds"))
    groups = section.median("groups")
    return Row(
        f"{NATIVE_REPORT}: Threads section alone / bare walk", workload,
        f"{ratio:.1f}x (worst {worst:.1f}x)" if ratio else "failed",
        "n/a (no section alone)",
        f"section {seconds_pair(values(section, 'seconds'))}; walk "
        f"{seconds_pair(values(section, 'floor_seconds'))}"
        + (f"; {groups:.0f} groups" if groups is not None else "")
        + (f"; then the collection deferred meanwhile "
           f"{seconds_pair(collected)} (a report's is in its whole time)"
           if (collected := values(section, "collection_seconds"))
           else ""),
        f"<= {SECTION_GOAL:g}x the walk",
        suite.goal(True, lambda: ratio <= SECTION_GOAL and
                   worst <= SECTION_GOAL,
                   lambda: f"{ratio:.1f}x, {ratio / SECTION_GOAL:.1f}x "
                   f"the goal; worst {worst:.1f}x"
                   + (" is over" if worst > SECTION_GOAL else "")),
        runs_label(section, None))


def hooks_at_rest(suite: Suite) -> list[Row]:
    """Throughput with each native-threads hook installed, or not."""
    plan = suite.plan
    suite.runner.say(f"{REST_HOOKS}: {plan.hook_rounds} rounds")
    common = {"inner": plan.hook_inner, "batch": POOL_BATCH,
              "pairs": plan.hook_pairs}
    counts = {"thread_start": plan.thread_starts,
              "cf_executor": plan.pool_tasks,
              "futurist_executor": plan.pool_tasks}
    cases = {(variant, tool): Case("hook_rest", tool, {})
             for variant in counts for tool in (WITHOUT, DF_GMR)}
    shares: dict[str, list[float]] = {variant: [] for variant in counts}
    for index in range(plan.hook_rounds):
        order = (WITHOUT, DF_GMR) if index % 2 == 0 else (DF_GMR, WITHOUT)
        for variant, count in counts.items():
            this_round: dict[str, float] = {}
            for tool in order:
                params = dict(common, variant=variant, count=count)
                single = suite.case("hook_rest", tool, params, 1)
                case = cases[(variant, tool)]
                if single.results:
                    case.results.extend(single.results)
                    this_round[tool] = single.results[0]["rate"]
                else:
                    case.error = single.error
            if this_round.get(WITHOUT) and this_round.get(DF_GMR):
                shares[variant].append(this_round[DF_GMR]
                                       / this_round[WITHOUT])
    rows = []
    for variant, title, workload, unit, operation in HOOK_WORKLOADS:
        without = cases[(variant, WITHOUT)]
        hooked = cases[(variant, DF_GMR)]
        across, across_worst = median_worst(shares[variant], min)
        share, worst = median_worst(
            [pair for result in hooked.results
             for pair in result.get("paired", [])], min)
        rates = values(without, "rate")
        baseline = statistics.median(rates) if rates else None
        own = hooked.median("hook_seconds")
        spread = ""
        if len(rates) > 1 and min(rates):
            spread = (f"; the runs without vary by "
                      f"{max(rates) / min(rates) - 1:.0%}")
        if baseline:
            noted = (f"without: {baseline:,.0f} {unit} (its runs "
                     f"{min(rates):,.0f} to {max(rates):,.0f})")
            if own is not None:
                noted += (f"; the hook's own work: {own * 1e6:.2f} us per "
                          f"{operation}, {own * baseline:.1%} of one")
        else:
            noted = "without: failed"
        rows.append(Row(
            f"{REST_HOOKS}: {title}",
            workload.format(threads=plan.thread_starts,
                            tasks=plan.pool_tasks, batch=POOL_BATCH,
                            workers=POOL_WORKERS),
            (f"{share:.1%} of without (worst {worst:.1%}), paired in "
             f"one process; across processes {across:.1%} (worst "
             f"{across_worst:.1%})")
            if share is not None and across is not None else "failed",
            "n/a (no such hook)", noted,
            f">= {HOOK_GOAL:.0%} of without",
            suite.goal(True, lambda share=share: share >= HOOK_GOAL,
                       lambda share=share, worst=worst, spread=spread,
                       across=across:
                       f"{share:.1%} paired, worst {worst:.1%}; across "
                       f"processes {across:.1%}{spread}"),
            f"{len(shares[variant])} round"
            + ("" if len(shares[variant]) == 1 else "s")
            + f", {len(hooked.results)} processes x "
            f"{plan.hook_pairs} pairs"))
    return rows
