"""One measurement in a fresh, monkey-patched process.

Run by the driver as ``python -m benchmarks.child MEASUREMENT PARAMS``
(PARAMS is a JSON object); prints ``RESULT <json>`` as its last line.
Nothing here imports eventlet, df_gmr or oslo.reports before
``eventlet.monkey_patch()`` has run, as in a service.  The threading-mode
measurements (``NATIVE``, in ``benchmarks.native``) never import eventlet
nor monkey-patch: their processes are services of native threads; nor
does measurement 8's timing of df-gmr's analysis commands (an operator's
process, ``benchmarks.diagnosis``).
"""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import sys
import time
from typing import Any

from benchmarks.profiling import print_profile
from benchmarks.profiling import start_profile

SERVICE_NAME = "bench"
RESULT_PREFIX = "RESULT "
#: The turn-taking children's words (``measure_rest``): ready to take
#: turns, a turn done, and the turns they take.
READY = "READY"
DONE = "DONE"
TURNS = ("spawn", "switch", "pairs", "end")
#: Lines that count the greenthreads listed in each tool's report.
DF_GMR_COUNT = re.compile(r"^(\d+) greenlets in \d+ groups$", re.MULTILINE)
OSLO_GREEN_THREAD = re.compile(r"^-+ +Green Thread +-+$", re.MULTILINE)
TOOLS = ("df_gmr", "oslo.reports", "none", "df_gmr imported")


class BenchVersion:
    """A version object of the kind both tools' Package section reads."""

    def vendor_string(self) -> str:
        """Return the vendor."""
        return "df_gmr benchmarks"

    def product_string(self) -> str:
        """Return the product."""
        return "bench"

    def version_string_with_package(self) -> str:
        """Return the version."""
        return "1.0.0"


def monkey_patch() -> None:
    """Monkey-patch as an eventlet service does, first thing."""
    import eventlet

    eventlet.monkey_patch()
    from benchmarks import workloads

    workloads.raise_fd_limit()


def set_up(tool: str, log_dir: str | None) -> Any:
    """Set ``tool`` up as a service does; return its report class."""
    if tool == "df_gmr":
        from df_gmr import guru_meditation_report as df_gmr_report

        df_gmr_report.TextGuruMeditation.setup_autorun(
            BenchVersion(), service_name=SERVICE_NAME, log_dir=log_dir)
        return df_gmr_report.TextGuruMeditation
    if tool == "oslo.reports":
        from oslo_reports import guru_meditation_report as oslo_report

        oslo_report.TextGuruMeditation.setup_autorun(
            BenchVersion(), service_name=SERVICE_NAME, log_dir=log_dir)
        return oslo_report.TextGuruMeditation
    if tool == "none":
        return None
    if tool == "df_gmr imported":  # the control of cost at rest: no set-up
        import df_gmr.guru_meditation_report  # noqa: F401

        return None
    msg = f"tool must be one of {', '.join(TOOLS)}, not {tool!r}"
    raise ValueError(msg)


def greenthreads_in_report(tool: str, text: str) -> int:
    """Return how many greenthreads a report lists."""
    if tool == "df_gmr":
        match = DF_GMR_COUNT.search(text)
        return int(match.group(1)) if match else 0
    return len(OSLO_GREEN_THREAD.findall(text))


# -- memory -----------------------------------------------------------------

def status_bytes(field: str) -> int:
    """Return a ``/proc/self/status`` size field (``VmHWM``...) in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    msg = f"no {field} in /proc/self/status"
    raise LookupError(msg)


def reset_high_water_mark() -> bool:
    """Reset VmHWM to the current RSS; say whether the kernel allows it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return status_bytes("VmHWM") <= status_bytes("VmRSS") + 64 * 1024


class PeakSampler:
    """The RSS high-water mark, from VmHWM or else from a sampling thread."""

    def __init__(self) -> None:
        self.exact = reset_high_water_mark()
        self.start = status_bytes("VmRSS")
        self.peak = self.start
        self.running = not self.exact
        if self.running:
            from eventlet import patcher

            thread = patcher.original("_thread")
            thread.start_new_thread(self._sample, ())

    def _sample(self) -> None:
        from eventlet import patcher

        sleep = patcher.original("time").sleep
        while self.running:
            self.peak = max(self.peak, status_bytes("VmRSS"))
            sleep(0.001)

    def growth(self) -> int:
        """Stop sampling; return the peak RSS growth in bytes."""
        self.running = False
        if self.exact:
            self.peak = status_bytes("VmHWM")
        else:
            self.peak = max(self.peak, status_bytes("VmRSS"))
        return self.peak - self.start


def private_bytes() -> int:
    """Return this process's private memory (USS): Private_* of smaps."""
    total = 0
    try:
        with open("/proc/self/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    total += int(line.split()[1]) * 1024
        return total
    except OSError:
        import psutil

        return int(psutil.Process().memory_full_info().uss)


# -- helpers ----------------------------------------------------------------

def minor_faults() -> int:
    """Return the process's minor page faults so far (memory touched
    for the first time: what makes a first report slower than the next
    on a VM where each costs microseconds)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def bare_frame_walk() -> tuple[float, int, int]:
    """Walk every greenlet's frames; return (seconds, greenlets, frames).

    The greenlets are found before the clock starts: this is the floor of
    any report, the reading of ``f_code``/``f_lineno`` of every frame.
    """
    import greenlet

    everything = [candidate for candidate in gc.get_objects()
                  if isinstance(candidate, greenlet.greenlet)]
    frame = None
    collecting = gc.isenabled()
    gc.disable()  # a collection set off here is no part of reading frames
    started = time.perf_counter()
    frames = 0
    for green in everything:
        frame = green.gr_frame
        while frame is not None:
            frame.f_code  # noqa: B018 - reading is the measurement
            frame.f_lineno  # noqa: B018
            frames += 1
            frame = frame.f_back
    seconds = time.perf_counter() - started
    if collecting:
        gc.enable()
    del frame
    return seconds, len(everything), frames


def report_files(log_dir: str) -> list[str]:
    """Return the finished reports in ``log_dir`` (not temporary files)."""
    try:
        names = os.listdir(log_dir)
    except FileNotFoundError:
        return []
    return sorted(os.path.join(log_dir, name) for name in names
                  if not name.startswith("."))


def wait_for_report(log_dir: str, timeout: float, poll: float = 0.005
                    ) -> str:
    """Wait (green) until a report file appears; return its path."""
    import eventlet

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = report_files(log_dir)
        if found:
            return found[0]
        eventlet.sleep(poll)
    msg = f"no report in {log_dir} after {timeout} s"
    raise TimeoutError(msg)


def read_text(path: str) -> str:
    """Return a report file's text."""
    with open(path, encoding="utf-8", errors="replace") as report:
        return report.read()


def measure_report_cost(params: dict[str, Any]) -> dict[str, Any]:
    """Time one in-process report of a workload; its peak memory, size.

    With ``phases`` (df_gmr only), the report's phases are timed inside
    it (``benchmarks.phases``); with ``findings_pairs`` too, pairs of
    reports with and without findings follow (``findings_pairs``).
    """
    tool = params["tool"]
    report_class = set_up(tool, params["log_dir"])
    from benchmarks import workloads

    workload = workloads.build(params["workload"], params["size"])
    faults = minor_faults()
    floor, greenlet_count, frames = bare_frame_walk()
    floor_faults = minor_faults() - faults
    clock = None
    if tool == "df_gmr" and params.get("phases"):
        from benchmarks.phases import PhaseClock

        clock = PhaseClock().install()
    gc.collect()
    sampler = PeakSampler()
    profiler = start_profile() if params.get("profile") else None
    faults = minor_faults()
    started = time.perf_counter()
    text = report_class(BenchVersion()).run()
    seconds = time.perf_counter() - started
    report_faults = minor_faults() - faults
    growth = sampler.growth()
    if profiler is not None:
        print_profile(profiler, params["profile"])
    if params.get("keep_text"):
        with open(params["keep_text"], "w") as kept:
            kept.write(text)
    extra: dict[str, Any] = {}
    if clock is not None:
        extra["phases"] = clock.finish(seconds)
        extra.update(findings_pairs(report_class, clock,
                                    params.get("findings_pairs", 0)))
        clock.uninstall()
    return {
        **extra,
        "seconds": seconds,
        "floor_seconds": floor,
        "floor_faults": floor_faults,
        "report_faults": report_faults,
        "greenlets": greenlet_count,
        "frames": frames,
        "peak_growth": growth,
        "peak_exact": sampler.exact,
        "report_bytes": len(text.encode("utf-8")),
        "listed": greenthreads_in_report(tool, text),
        "counts": workload.counts,
    }


def findings_pairs(report_class: Any, clock: Any, pairs: int
                   ) -> dict[str, Any]:
    """Time reports with and without findings, in pairs, in this process.

    Each pair is one report as it is and one whose findings pass returns
    no findings (``PhaseClock.skip_findings``), the order alternating
    pair by pair; these follow the measured (first) report, so they are
    warm.  Also returns the phases of the first warm report with
    findings.
    """
    found: dict[str, Any] = {"with_findings": [], "without_findings": []}
    for index in range(pairs):
        for skip in (False, True) if index % 2 == 0 else (True, False):
            clock.reset()
            clock.skip_findings = skip
            gc.collect()
            started = time.perf_counter()
            report_class(BenchVersion()).run()
            spent = time.perf_counter() - started
            if skip:
                found["without_findings"].append(spent)
            else:
                found["with_findings"].append(spent)
                found.setdefault("warm_phases", clock.finish(spent))
    clock.skip_findings = False
    return found


def measure_stall(params: dict[str, Any]) -> dict[str, Any]:
    """The largest gap of a 10 ms ticker while a signalled report is made."""
    import eventlet

    tool = params["tool"]
    log_dir = params["log_dir"]
    set_up(tool, log_dir)
    from benchmarks import workloads

    workload = workloads.build(params["workload"], params["size"])
    gaps: list[float] = []

    def ticker() -> None:
        while True:
            before = time.monotonic()
            eventlet.sleep(0.01)
            gaps.append(time.monotonic() - before)

    eventlet.spawn(ticker)
    eventlet.sleep(params["baseline"])
    quiet = list(gaps)
    first = len(gaps)
    signalled = time.monotonic()
    os.kill(os.getpid(), signal.SIGUSR2)
    path = wait_for_report(log_dir, params["timeout"])
    written = time.monotonic() - signalled
    eventlet.sleep(0.1)  # the ticks that were due while it finished
    during = gaps[first:]
    return {
        "max_gap": max(during) if during else None,
        "quiet_max_gap": max(quiet) if quiet else None,
        "ticks": len(during),
        "report_seconds": written,
        "listed": greenthreads_in_report(tool, read_text(path)),
        "counts": workload.counts,
    }


def trivial() -> None:
    """Do nothing (the greenthread whose spawn is measured)."""


def spawn_seconds(total: int, batch: int) -> float:
    """Return the time per ``eventlet.spawn`` (plus running it)."""
    import eventlet

    started = time.perf_counter()
    for _ in range(0, total, batch):
        for _ in range(batch):
            eventlet.spawn(trivial)
        eventlet.sleep(0)
    return (time.perf_counter() - started) / total


def switch_rate(switches: int) -> float:
    """Return greenthread switches per second (two ping-ponging sleepers)."""
    import eventlet

    def ping_pong(count: int) -> None:
        for _ in range(count):
            eventlet.sleep(0)

    started = time.perf_counter()
    first = eventlet.spawn(ping_pong, switches // 2)
    second = eventlet.spawn(ping_pong, switches // 2)
    first.wait()
    second.wait()
    return (switches // 2 * 2) / (time.perf_counter() - started)


def spawn_pairs(total: int, batch: int, pairs: int) -> list[float]:
    """Return spawn rates with / without df_gmr's spawn hooks, in pairs.

    The hooks (``GreenThread.__init__`` and ``_resolve_links``) are
    swapped out for what they wrap and back in, in this process, 2 runs
    each way per pair, interleaved, the best of each side: the hooks'
    own share, free of what differs between processes.
    """
    from eventlet import greenthread

    from benchmarks.pairing import paired_shares

    thread_class = greenthread.GreenThread
    hooked = (thread_class.__init__, thread_class._resolve_links)
    bare = tuple(getattr(method, "__wrapped__", None) for method in hooked)
    if None in bare:
        return []

    def swap(with_hooks: bool) -> None:
        (thread_class.__init__, thread_class._resolve_links) = \
            hooked if with_hooks else bare

    return paired_shares(pairs, 2, swap,
                         lambda: total / spawn_seconds(total, batch))


class RestTurns:
    """One process of a round of cost at rest, measuring when told to.

    The driver keeps a round's processes (one per tool) alive together
    and gives them turns, one timed run each in rotation (see
    ``runner.Runner.turns``): the host's drift, which moves one process's
    throughput against the next by up to +-10% here, then falls on all of
    them alike, run by run, where whole processes in a row met it apart.
    """

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.batch = min(params["spawns"], 10_000)
        self.spawns: list[float] = []
        self.switches: list[float] = []
        self.paired: list[float] = []
        self.kernel = 0.0
        self.cpu = 0.0
        self.faults = 0

    def warm_up(self) -> None:
        """Run each loop once, untimed (the first run pays for imports)."""
        spawn_seconds(self.batch, self.batch)
        switch_rate(min(self.params["switches"], 10_000))

    def spawn(self) -> None:
        """Time one run of the spawn loop (after one untimed batch)."""
        import resource

        # The other processes' turns ran since this one's: one batch
        # warms the caches again, alike for every tool.
        spawn_seconds(self.batch, self.batch)
        # What the kernel's share of the spawn loop is (page faults: a
        # spawn takes about one here, with or without either tool),
        # shown beside the share: the part a tool's hooks do not touch.
        before = resource.getrusage(resource.RUSAGE_SELF)
        self.spawns.append(spawn_seconds(self.params["spawns"], self.batch))
        after = resource.getrusage(resource.RUSAGE_SELF)
        self.kernel += after.ru_stime - before.ru_stime
        self.cpu += (after.ru_stime - before.ru_stime
                     + after.ru_utime - before.ru_utime)
        self.faults += after.ru_minflt - before.ru_minflt

    def switch(self) -> None:
        """Time one run of the switch loop."""
        self.switches.append(switch_rate(self.params["switches"]))

    def pairs(self) -> None:
        """Time the hooks swapped out and back in (df_gmr only)."""
        if self.params["tool"] == "df_gmr":
            self.paired = spawn_pairs(self.params["spawns"], self.batch,
                                      self.params.get("pairs", 0))

    def result(self) -> dict[str, Any]:
        """Return what the turns measured; the best run of each loop."""
        import statistics

        # The best run: the one least disturbed by other processes.
        return {
            "spawn_paired": self.paired,
            "spawn_seconds": min(self.spawns) if self.spawns else None,
            "switch_rate": max(self.switches) if self.switches else None,
            "spawn_seconds_median": statistics.median(self.spawns)
            if self.spawns else None,
            "spawn_kernel_share": self.kernel / self.cpu
            if self.cpu > 0 else None,
            "spawn_faults": self.faults
            / (self.params["spawns"] * len(self.spawns))
            if self.spawns else None,
            "switch_rate_median": statistics.median(self.switches)
            if self.switches else None,
        }


def measure_rest(params: dict[str, Any]) -> dict[str, Any]:
    """Spawn and switch throughput with ``tool`` set up (or not), in turns.

    Prints ``READY`` once set up and warm, then reads one word a line
    from stdin (``TURNS``), answers each with ``DONE``, and returns at
    ``end``.
    """
    set_up(params["tool"], params["log_dir"])
    turns = RestTurns(params)
    turns.warm_up()
    actions = {"spawn": turns.spawn, "switch": turns.switch,
               "pairs": turns.pairs}
    print(READY, flush=True)
    for line in sys.stdin:
        word = line.strip()
        if word == "end":
            break
        if word not in actions:
            msg = f"unknown turn {word!r}; one of {', '.join(TURNS)}"
            raise ValueError(msg)
        actions[word]()
        print(DONE, flush=True)
    return turns.result()


def build_heap(megabytes: int) -> tuple[list[Any], int]:
    """Grow a heap of small objects by ``megabytes`` of RSS; return it."""
    start = status_bytes("VmRSS")
    target = megabytes * 1024 * 1024
    heap: list[Any] = []
    counter = 0
    gc.disable()
    try:
        while status_bytes("VmRSS") - start < target:
            heap.extend((number, str(number), [number])
                        for number in range(counter, counter + 50_000))
            counter += 50_000
    finally:
        gc.enable()
    return heap, status_bytes("VmRSS") - start


def measure_copy_on_write(params: dict[str, Any]) -> dict[str, Any]:
    """Private memory growth of a forked worker making one report."""
    import eventlet

    tool = params["tool"]
    log_dir = params["log_dir"]
    set_up(tool, log_dir)
    from benchmarks import workloads

    heap, heap_bytes = build_heap(params["heap_mb"])
    workload = workloads.build(params["workload"], params["size"])
    gc.collect()
    gc.freeze()  # as oslo.service does before forking workers
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        status = 1
        try:
            os.close(reading)
            eventlet.sleep(0.2)
            before = private_bytes()
            os.kill(os.getpid(), signal.SIGUSR2)
            path = wait_for_report(log_dir, params["timeout"])
            after = private_bytes()
            listed = greenthreads_in_report(tool, read_text(path))
            # A second report shows what is left once the first report's
            # one-time costs (imports, caches, arenas) are paid.
            os.unlink(path)
            os.kill(os.getpid(), signal.SIGUSR2)
            wait_for_report(log_dir, params["timeout"])
            found = {
                "before": before,
                "after": after,
                "growth": after - before,
                "second_growth": private_bytes() - after,
                "listed": listed,
            }
            os.write(writing, json.dumps(found).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(writing)
    from eventlet import patcher

    real_os = patcher.original("os")
    data = b""
    while True:
        chunk = real_os.read(reading, 65536)
        if not chunk:
            break
        data += chunk
    real_os.waitpid(pid, 0)
    if not data:
        msg = "the worker reported nothing"
        raise RuntimeError(msg)
    found = json.loads(data)
    found["heap_bytes"] = heap_bytes
    found["counts"] = workload.counts
    del heap
    return found


def measure_latency(params: dict[str, Any]) -> dict[str, Any]:
    """Block the hub; the driver signals and times the report file."""
    import eventlet
    from eventlet import patcher

    tool = params["tool"]
    log_dir = params["log_dir"]
    set_up(tool, log_dir)
    from benchmarks import workloads

    workload = workloads.build(params["workload"], params["size"])
    block = params["block"]

    def blocker() -> None:
        print("BLOCKING", flush=True)
        if params["variant"] == "restarting":
            # A C call that retries on EINTR and never returns to the
            # interpreter (as many C client libraries do): glibc's
            # system() waits for its child in such a loop.
            import ctypes

            ctypes.CDLL(None).system(f"sleep {block}".encode())
        else:
            patcher.original("time").sleep(block)
        print("UNBLOCKED", flush=True)

    eventlet.spawn(blocker).wait()
    path = wait_for_report(log_dir, params["timeout"])
    return {
        "listed": greenthreads_in_report(tool, read_text(path)),
        "counts": workload.counts,
    }


def measure_native_report(params: dict[str, Any]) -> dict[str, Any]:
    """A threading-mode process's report (``benchmarks.native``)."""
    from benchmarks import native

    return native.measure_native_report(params, set_up, BenchVersion())


def measure_hook_rest(params: dict[str, Any]) -> dict[str, Any]:
    """A native-threads hook's cost at rest (``benchmarks.native``)."""
    from benchmarks import native

    return native.measure_hook_rest(params)


def measure_diagnosis_reports(params: dict[str, Any]) -> dict[str, Any]:
    """Write the JSON reports measurement 8 reads (``benchmarks.diagnosis``).
    """
    from benchmarks import diagnosis

    return diagnosis.measure_reports(params, set_up, BenchVersion())


def measure_diagnosis(params: dict[str, Any]) -> dict[str, Any]:
    """Time one analysis command (``benchmarks.diagnosis``)."""
    from benchmarks import diagnosis

    return diagnosis.measure_command(params)


MEASUREMENTS = {
    "report_cost": measure_report_cost,
    "stall": measure_stall,
    "rest": measure_rest,
    "copy_on_write": measure_copy_on_write,
    "latency": measure_latency,
    "native_report": measure_native_report,
    "hook_rest": measure_hook_rest,
    "diagnosis_reports": measure_diagnosis_reports,
    "diagnosis": measure_diagnosis,
}
#: Measurements of threading-mode processes: no eventlet at all.
NATIVE = ("native_report", "hook_rest")
#: Processes that never monkey-patch: those, and an operator's df-gmr.
UNPATCHED = (*NATIVE, "diagnosis")


def main(argv: list[str]) -> int:
    """Run one measurement; print its result as the last line."""
    if len(argv) != 2 or argv[0] not in MEASUREMENTS:
        names = ", ".join(MEASUREMENTS)
        print(f"usage: python -m benchmarks.child {{{names}}} PARAMS_JSON",
              file=sys.stderr)
        return 2
    params = json.loads(argv[1])
    if params.get("cpu") is not None:
        # Before any thread starts: df_gmr's own threads inherit it (see
        # runner.pinned_cpu).
        os.sched_setaffinity(0, {params["cpu"]})
    if argv[0] not in UNPATCHED:
        monkey_patch()
    result = MEASUREMENTS[argv[0]](params)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
