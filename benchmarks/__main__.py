"""``python -m benchmarks``: df_gmr and oslo.reports, side by side.

Prints a markdown table of medians and ratios on stdout (progress goes to
stderr); with ``--write-results`` also writes it, with the machine's
description, to ``benchmarks/RESULTS.md``.  ``--smoke`` is a seconds-long
run with tiny sizes and one repetition: the benchmarks' own check (``tox
-e bench -- --smoke``), which exits 0 only if every measurement gave its
rows.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import os
import sys
import time

from benchmarks import diagnosis_suite
from benchmarks import native_suite
from benchmarks import plan as plans
from benchmarks import suite
from benchmarks import table
from benchmarks.runner import Runner
from benchmarks.runner import speedups

RESULTS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "RESULTS.md")
NOTES = """\
## How to read it

- Every figure is the median of the runs counted in the last column,
  with the worst run beside it when there are several; each
  run is a fresh `python -m benchmarks.child` process (monkey-patched
  eventlet, the tool set up as a service does it, the greenthreads
  spawned, then one measurement; measurements 6 and 7, and 8's timing
  of df-gmr's commands, without eventlet).
  The children of measurements 1 and 6 (both tools) run on one CPU:
  they compare a report, whose sections a df_gmr thread reads, with a
  bare walk the main thread read just before, and on a VM whose vCPUs
  share no cache a section thread on the other vCPU took up to 1.5x as
  long at random (the walk's data pulled across; `runner.pinned_cpu`).
  Slow oslo.reports cases run fewer times (a case stops repeating after
  ~{budget:.0f} s).
- A goal on a time (a report's, a section's, a command's) is met only
  when the median and the worst run both meet it ("is over" names a
  worst run that missed).  A goal on a throughput (spawn, switch, the
  native hooks) is judged on its median: single runs of one code vary
  by more than the 3% the goal allows, so their worst is shown beside
  it, not judged.
- The mix: 49% identical Event waiters, 25% sleepers (half `spawn_n`,
  half periodic loops), 1% socket readers with live peers (half unix
  socketpairs, half loopback TCP), a saturated GreenPool (10% workers,
  5% callers waiting for a slot) and 10% waiting at 8 distinct stacks
  (queue or semaphore, at different call depths).
- Report cost: `TextGuruMeditation(version).run()` in the calling
  thread, after `setup_autorun()` was called before the greenthreads were
  spawned.  Peak memory growth is the RSS high-water mark (VmHWM, reset
  through `/proc/self/clear_refs`) minus the RSS before the report.  The
  bare frame walk reads `f_code` and `f_lineno` of every frame of every
  greenlet (found beforehand): the floor of any report; it runs with the
  cyclic collector off (the frame objects it makes could set off a
  collection inside it, which would raise the floor by a pause that is
  not reading frames; df_gmr's report also holds the collector off, and
  oslo.reports' does not).  The fixed cost
  is the report time minus that walk.  Both touch memory for the first
  time (the walk makes the frame objects of suspended greenlets; the
  report its own data): the minor page faults of each are counted, as
  on this VM each costs several microseconds, much of a first report's
  time beyond a later one's.  What a report keeps low for that: one
  copy of the registry as it is (a dict), the hubs' timers and
  listeners kept as read (a member's wait made when it is described),
  members of one Event found in its waiters set (no frame locals read,
  which Python 3.11 copies into a dict kept on the frame), eventlet's
  timers read by attribute (their __dict__ would be made), and only the
  source lines shown read (not whole files kept by linecache).  The
  phases (df_gmr only) are
  timed inside the measured report by wrapping, in the child, the steps
  df_gmr's report builder and text renderer call by name; each phase's
  own time (nested phases taken out), medians over runs.  The findings
  overhead is the findings pass over the rest of the same report; the
  cross-check pairs reports with findings and with the pass returning
  none, in one process after the measured report.
- Stall: the ticker sleeps 10 ms in a loop; the process sends itself
  SIGUSR2 (log_dir set) and the largest gap is taken from the signal until
  the report file exists.  "quiet" is the largest gap before the signal.
- Cost at rest: each round runs a process without either tool, one with
  df_gmr set up, one with oslo.reports set up and, as a control, one
  that only imports df_gmr, alive together on one CPU and taking turns:
  one timed run each, the order rotated from run to run and from round
  to round, each run after one untimed batch (the others' turns cooled
  its caches), so that the host's drift falls on all four alike; each
  process keeps the best of its runs; the share is the median over
  rounds of (with / without) paired within a round.  "without" is
  eventlet alone in a bare interpreter: importing any handful of
  modules lowers its spawn rate by a few percent here (the control shows
  df_gmr's share of that; set up / only imported is what set-up itself
  costs per spawn).
  What df_gmr does per spawn (the design, `df_gmr/greenlets.py`): a hook
  on `GreenThread.__init__` puts the greenthread in the registry (a
  table by identity in C, `_sites.Registry`, where the module is built;
  else a dict) with a tuple
  of its callers' codes and instruction offsets, through the wrapper
  libraries to the application's frame and its caller (`df_gmr/callers.py`;
  shared with the previous spawn's when equal: a loop of spawns, from the
  frame of the last spawn at the same instruction, reads that frame's
  offset only and builds nothing; codes and ints only, so the collector
  stops tracking it at its first collection); the greenthread's own exit
  (`_resolve_links`, which `main()` calls however it ends, and `kill()`
  for one killed before it ran) takes it out, calling eventlet's only
  when the greenthread has links.  No weak reference, no object per
  greenthread for the cyclic collector; plain greenlets of `spawn_n`
  and never-run greenthreads are swept when the registry has doubled, a
  check made after each run of the collector (`gc.callbacks`) and at
  each `spawn_n`, not per `spawn`.  When eventlet's
  `GreenThread.__init__` is the known one (its code compared at
  install), the hook does its four lines itself rather than calling it.
  Measured with valgrind (instructions per spawn + run, this workload):
  eventlet alone ~47,700; the hooks added ~4,500 before this design,
  ~2,300 with it, and ~1,540 with the four lines done in the hook.
  Later (whole process, 30,000 spawns against 10,000): eventlet alone
  49,462; df_gmr set up with its spawn hooks swapped back out 49,576
  (+0.2%: set-up costs nothing else per spawn); set up 50,985 (+3.1%).
  Of the hooks (PYTHONHASHSEED=0, the loop timed alone: eventlet 49,420,
  set up 51,032), the registry itself, a dict entry put and taken out,
  is ~410; the rest, ~1,200, is the spawn site: `sys._getframe(2)` ~380
  and its `f_lasti` ~380 (a getset the interpreter does not specialize,
  and a new int), the memo's reads and comparisons ~450.  No way to
  read a spawn origin for less in a Python hook was found (the variants
  tried cost the same or more), so the same work is done in C where the
  install can build it (`df_gmr/_sites.c`, the Machine section says
  which hook ran; the pure-Python one with DF_GMR_PURE_PYTHON=1):
  eventlet alone 49,446; set up with the C hook 50,302 (+1.7%); with
  the pure-Python hook 51,046 (+3.2%).  Of the C call's ~600, putting
  the registry's dict entry is ~250 and `sys._getframe` ~160.  Later
  (PYTHONHASHSEED=0, 30,000 spawns against 10,000, set up against only
  imported): the hooks +888 (1.8%), of which the dict's put and pop
  ~580 (a churned dict rebuilds itself from its smallest size at each
  batch); with the C registry +478 (1.0%): its put ~50, its pop ~80,
  `sys._getframe` ~210; with the spawner's frame object read from
  CPython 3.11's frames when it has one (no call of `sys._getframe`)
  +302 (0.6%).
  "The hooks swapped out and back in" times the same loop in each
  df_gmr process with the two hooks replaced by the methods they wrap
  and put back, interleaved, best of 2 runs each way per pair: the
  hooks' own share, without what differs between processes.
- Copy-on-write: the parent grows a heap of small objects, spawns the
  mix, calls `gc.freeze()` and forks; the worker reads its private memory
  (Private_Clean + Private_Dirty of `/proc/self/smaps_rollup`, i.e. USS)
  before and after a report made by SIGUSR2.
- Latency: a greenthread blocks the hub; the driver (another process)
  sends SIGUSR2 {settle:g} s after the block began and times until the
  report file exists.
- Native threads report (threading mode: no eventlet in the process):
  the tool is set up, then the native threads park: half in `get` of one
  `queue.Queue`, a tenth each in `Event.wait`, `time.sleep` (a C call),
  `Lock.acquire` and a `ThreadPoolExecutor`'s busy workers, a twentieth
  each in `RLock.acquire` and a socket read.  Each run, a fresh process,
  first times the bare walk (`sys._current_frames()`, `(f_code,
  f_lineno)` of every frame, identical stacks grouped; the collector
  off, as for the greenlets' walk), then one of:
  df_gmr's Threads section alone (`collect` with a fresh `Snapshot`, then
  `format_lines`), df_gmr's whole report, oslo.reports' whole report
  (`TextGuruMeditation(version).run()`).  The section runs as in a
  report, with the collector held off, and its clock stops, as the
  walk's does, before the collector is given back: the collection
  deferred meanwhile (shown apart in the row) is a report's to pay once
  it is built, and is in the whole report's time.  The section's ratio
  to the walk is paired within each process.  "worst" is the slowest run (the
  highest ratio).
- Native hooks at rest: each round runs, for each workload, a process
  with df_gmr's hook installed and one without (both import the hook's
  module; the order alternates round by round); each process warms up,
  then keeps the best of {hook_inner} timed repetitions.  "Across
  processes" is with / without, paired within a round: the median and
  the worst (lowest) over rounds.  Processes of the same code vary by
  more than the 3% a hook may cost (the row gives the spread of the runs
  without), so the goal is judged on "paired in one process": in each
  hooked process, {hook_pairs} pairs of the hook swapped out (the method
  it wraps) and back in, 5 runs each way, interleaved, the best of each
  side; the median and the worst over all pairs.  The hook's own work
  is timed apart, in the hooked process: the same wrapper around a
  method that does nothing, best of many calls, minus the bare method.
- Diagnosis: the reports are written once per run (two JSON reports of
  one process of the mix, seconds apart; one JSON report of a 1k mix
  copied with varied pid, host and time); each command's run is a fresh
  process without eventlet timing the handler the CLI calls
  (`df_gmr.analysis.commands`), output to /dev/null or a file; the
  reading of the JSON alone is timed after it.  The whole-CLI row times
  `python -m df_gmr.cli diff` from outside.  Goals are judged on the
  median.
"""


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark df_gmr against oslo.reports, side by side.")
    parser.add_argument("--smoke", action="store_true",
                        help="a seconds-long run: tiny sizes, 1 repetition")
    parser.add_argument("--write-results", action="store_true",
                        help="also write the table to benchmarks/RESULTS.md")
    parser.add_argument("--only", default="1,2,3,4,5,6,7,8",
                        help="measurements to run, e.g. 1,3 (default all)")
    parser.add_argument("--sizes",
                        help="greenthreads of the report cost mix, e.g. "
                        "1000,10000")
    parser.add_argument("--identical-sizes",
                        help="identical Event waiters of the report cost, "
                        "e.g. 10000,100000")
    parser.add_argument("--heap-mb", type=int,
                        help="the copy-on-write heap, in MB")
    parser.add_argument("--native-runs", type=int,
                        help="fresh processes per native threads report "
                        "case, and rounds of the native hooks at rest "
                        "(measurements 6 and 7)")
    parser.add_argument("--oslo-max-size", type=int,
                        help="extrapolate oslo.reports' report cost "
                        "linearly above this many greenthreads instead of "
                        "measuring it")
    parser.add_argument("--revision",
                        help="measure df_gmr as committed at this git "
                        "revision (default: the working tree as it is "
                        "when the run starts)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress on stderr")
    arguments = parser.parse_args(argv)
    try:
        arguments.only = {int(part) for part in arguments.only.split(",")}
    except ValueError:
        parser.error(f"--only takes numbers 1-8, not {arguments.only!r}")
    if not arguments.only or not arguments.only <= set(range(1, 9)):
        parser.error(f"--only takes numbers 1-8, not {arguments.only!r}")
    if arguments.native_runs is not None and arguments.native_runs < 1:
        parser.error("--native-runs takes a number >= 1")
    for option in ("sizes", "identical_sizes"):
        given = getattr(arguments, option)
        if not given:
            continue
        try:
            setattr(arguments, option,
                    tuple(int(part) for part in given.split(",")))
        except ValueError:
            parser.error(f"--{option.replace('_', '-')} takes numbers, "
                         f"not {given!r}")
    return arguments


def chosen_plan(arguments: argparse.Namespace) -> plans.Plan:
    """Return the plan, with the command line's overrides."""
    chosen = plans.SMOKE if arguments.smoke else plans.FULL
    changes: dict[str, object] = {}
    if arguments.sizes:
        changes["sizes"] = arguments.sizes
    if arguments.identical_sizes:
        changes["identical_sizes"] = arguments.identical_sizes
    if arguments.heap_mb:
        changes["heap_mb"] = arguments.heap_mb
    if arguments.native_runs:
        changes["native_runs"] = arguments.native_runs
        changes["hook_rounds"] = arguments.native_runs
    if changes:
        import dataclasses

        chosen = dataclasses.replace(chosen, **changes)
    return chosen


def results_document(rows: list[table.Row], command: str,
                     machine: list[tuple[str, str]], elapsed: float,
                     chosen: plans.Plan, failures: list[str]) -> str:
    """Return RESULTS.md's text."""
    from benchmarks.runner import BLOCK_SETTLE

    lines = [
        "# df_gmr against oslo.reports",
        "",
        f"Generated by `{command}` ({chosen.name} run, "
        f"{elapsed / 60:.1f} minutes).",
        "",
        "## Machine",
        "",
        *table.machine_lines(machine),
        "",
        "## Results",
        "",
        table.markdown(rows),
        "",
        NOTES.format(budget=chosen.slow_budget, settle=BLOCK_SETTLE,
                     hook_inner=chosen.hook_inner,
                     hook_pairs=chosen.hook_pairs),
    ]
    if failures:
        lines.extend(["## Failed cases", ""])
        lines.extend(f"- {failure}" for failure in failures)
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; return 1 if a child failed or gave no rows."""
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    chosen = chosen_plan(arguments)
    try:
        runner = Runner(chosen.child_timeout, verbose=not arguments.quiet,
                        revision=arguments.revision)
    except ValueError as error:
        print(f"python -m benchmarks: {error}", file=sys.stderr)
        return 2
    machine = table.machine(arguments.revision,
                            speedups(runner.environment(), runner.scratch))
    measurements = suite.Suite(runner, chosen, arguments.oslo_max_size)
    steps: list[tuple[int, Callable[[], list[table.Row]]]] = [
        (1, measurements.report_cost),
        (2, measurements.stall),
        (3, measurements.rest),
        (4, measurements.copy_on_write),
        (5, measurements.latency),
        (6, lambda: native_suite.native_report(measurements)),
        (7, lambda: native_suite.hooks_at_rest(measurements)),
        (8, lambda: diagnosis_suite.diagnosis(measurements)),
    ]
    started = time.monotonic()
    rows: list[table.Row] = []
    try:
        for number, step in steps:
            if number in arguments.only:
                produced = step()
                name = suite.MEASUREMENT_NAMES[number - 1]
                if not any(row.measurement.startswith(name)
                           for row in produced):
                    runner.failures.append(f"{name}: no rows")
                rows.extend(produced)
    finally:
        runner.close()
    elapsed = time.monotonic() - started
    print(table.markdown(rows))
    if runner.failures:
        print("\nFailed cases:", file=sys.stderr)
        for failure in runner.failures:
            print(f"- {failure}", file=sys.stderr)
    if arguments.write_results:
        command = "python -m benchmarks " + " ".join(
            sys.argv[1:] if argv is None else argv)
        with open(RESULTS_PATH, "w") as results:
            results.write(results_document(
                rows, command.strip(), machine, elapsed, chosen,
                runner.failures))
        runner.say(f"wrote {RESULTS_PATH}")
    runner.say(f"done in {elapsed / 60:.1f} minutes")
    return 1 if runner.failures else 0


if __name__ == "__main__":
    sys.exit(main())
