"""How big and how often: the full run and the seconds-long smoke run."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Plan:
    """Sizes and repetitions of one benchmark run."""

    name: str
    #: Greenthreads in the realistic mix, for the report cost.
    sizes: tuple[int, ...]
    #: Identical Event waiters (the report size goal at 10k; the time
    #: and memory goals at 100k).
    identical_sizes: tuple[int, ...]
    #: oslo.reports is measured on identical waiters up to this many
    #: (None: all); above, its figures are extrapolated linearly.
    oslo_identical_max: int | None
    #: Runs (fresh processes) per report cost case.
    report_runs: int
    #: Pairs of reports (with findings, without) df_gmr's children make
    #: after the measured report, at the fixed cost's and the findings'
    #: mix sizes.
    findings_pairs: int
    #: Seconds a case may take in all before it stops repeating (slow
    #: oslo.reports cases then run fewer times, at least once).
    slow_budget: float
    stall_size: int
    stall_runs: int
    #: The stall's own time budget (oslo.reports' stall is its whole
    #: report time, so it need not repeat much).
    stall_budget: float
    #: Rounds of without / df_gmr / oslo.reports / df_gmr only imported
    #: processes taking turns (a multiple of the four: each starts a
    #: round as often as the others).  Taking turns, one round's ratio of
    #: two processes still varies by +-4% here (what differs between two
    #: processes, not the host's drift), and medians of 16 to 24 rounds
    #: of one pair by up to 3%: the precision comes from the number of
    #: processes, so forty rounds, of two timed runs each.
    rest_rounds: int
    #: Timed runs inside each process (the best one counts).
    rest_inner: int
    #: Pairs of the spawn loop with df_gmr's hooks swapped out and back
    #: in, in each df_gmr process of measurement 3 (``child.spawn_pairs``).
    rest_pairs: int
    spawns: int
    switches: int
    heap_mb: int
    cow_size: int
    cow_runs: int
    latency_size: int
    latency_block: float
    latency_runs: int
    #: Native threads of the threading-mode process (measurement 6).
    native_size: int
    #: Fresh processes per case of measurement 6.
    native_runs: int
    #: Rounds of measurement 7 (each: one process without the hook, one
    #: with it, for every workload; the order alternates).
    hook_rounds: int
    #: Timed repetitions inside each of its processes (the best counts:
    #: many short ones, so that some run undisturbed on a busy machine).
    hook_inner: int
    #: Pairs per hooked process of measurement 7: the hook swapped out
    #: and back in, in the same process (``benchmarks.native.paired_shares``).
    hook_pairs: int
    #: ``Thread.start(); join()`` per repetition.
    thread_starts: int
    #: Tasks submitted (and waited for) per repetition, per pool.
    pool_tasks: int
    #: Greenthreads of the mix whose two JSON reports measurement 8
    #: diffs and converts, and the seconds between the two.
    diagnosis_size: int
    diagnosis_gap: float
    #: ``df-gmr summarize``: this many JSON reports of a mix of
    #: ``fleet_size`` greenthreads.
    fleet_size: int
    fleet_reports: int
    #: Fresh processes per analysis command.
    diagnosis_runs: int
    #: Seconds a single child may take before it is given up.
    child_timeout: float


FULL = Plan(
    name="full",
    sizes=(1_000, 10_000, 100_000),
    identical_sizes=(10_000, 100_000),
    oslo_identical_max=10_000,
    report_runs=5,
    findings_pairs=2,
    slow_budget=90.0,
    stall_size=10_000,
    stall_runs=3,
    stall_budget=60.0,
    rest_rounds=40,
    rest_inner=2,
    rest_pairs=1,
    spawns=50_000,
    switches=100_000,
    heap_mb=1024,
    cow_size=1_000,
    cow_runs=3,
    latency_size=1_000,
    latency_block=5.0,
    latency_runs=3,
    native_size=1_000,
    native_runs=5,
    hook_rounds=9,
    hook_inner=40,
    hook_pairs=10,
    thread_starts=200,
    pool_tasks=2_000,
    diagnosis_size=100_000,
    diagnosis_gap=2.0,
    fleet_size=1_000,
    fleet_reports=1_000,
    diagnosis_runs=5,
    child_timeout=1800.0,
)

SMOKE = Plan(
    name="smoke",
    sizes=(100, 500),
    identical_sizes=(500,),
    oslo_identical_max=None,
    report_runs=1,
    findings_pairs=1,
    slow_budget=0.0,
    stall_size=300,
    stall_runs=1,
    stall_budget=0.0,
    rest_rounds=1,
    rest_inner=1,
    rest_pairs=1,
    spawns=5_000,
    switches=5_000,
    heap_mb=100,
    cow_size=100,
    cow_runs=1,
    latency_size=100,
    latency_block=1.0,
    latency_runs=1,
    native_size=200,
    native_runs=1,
    hook_rounds=1,
    hook_inner=3,
    hook_pairs=2,
    thread_starts=100,
    pool_tasks=1_000,
    diagnosis_size=300,
    diagnosis_gap=0.2,
    fleet_size=100,
    fleet_reports=20,
    diagnosis_runs=1,
    child_timeout=100.0,
)
