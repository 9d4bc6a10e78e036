"""Threading mode: the child side of measurements 6 and 7.

Run through ``python -m benchmarks.child`` like every measurement, but
without ``eventlet.monkey_patch()``: these processes are services of the
threading kind, whose concurrency is native threads.

*Native report* (6): the tool is set up first (``setup_autorun``, before
any thread starts, as a service does), then ``size`` native threads park:
half take from one ``queue.Queue`` (identical stacks), the rest are spread
over ``Event.wait``, ``time.sleep`` (a C call), a held ``Lock`` and
``RLock``, socket reads whose peer stays connected, and the workers of a
saturated ``concurrent.futures.ThreadPoolExecutor``.  The bare walk
(``sys._current_frames()``, every frame's ``(f_code, f_lineno)``, stacks
grouped by identity) is timed first, then one of: df_gmr's Threads section
alone, df_gmr's whole report, oslo.reports' whole report.

*Hooks at rest* (7): the throughput of starting and joining threads, and
of submitting to a thread pool and waiting for the result, in a process
that imported df_gmr's hook module and either installed the hook or not.
"""

from __future__ import annotations

from collections.abc import Callable
import socket
import statistics
import sys
import threading
import time
from typing import Any

#: The other half: each kind's divisor of the size (1/10 ...); Event
#: waiters take what is left (1/10 too).
SHARES = (("sleepers in C", 10), ("Lock acquirers", 10),
          ("RLock acquirers", 20), ("socket readers", 20),
          ("executor workers", 10))
#: Worker threads of the pools whose throughput is measured.
POOL_WORKERS = 4


class NativeWorkload:
    """``size`` parked native threads, and what releases them."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.counts: dict[str, int] = {}
        self.ready: list[int] = []
        self.keep: list[Any] = []
        self.queue: Any = None
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.rlock = threading.RLock()
        self.executor: Any = None

    def build(self) -> NativeWorkload:
        """Start the threads; return once every one of them waits."""
        import concurrent.futures
        import queue

        self.lock.acquire()
        self.rlock.acquire()
        self.queue = queue.Queue()
        plan = {"queue readers": self.size // 2}
        plan.update((name, self.size // part) for name, part in SHARES)
        plan["event waiters"] = self.size - sum(plan.values())
        self.counts = plan
        targets = {
            "queue readers": self.read_queue,
            "event waiters": self.wait_event,
            "sleepers in C": self.sleep,
            "Lock acquirers": self.acquire_lock,
            "RLock acquirers": self.acquire_rlock,
        }
        for name, target in targets.items():
            for _ in range(plan[name]):
                threading.Thread(target=target, daemon=True).start()
        for _ in range(plan["socket readers"]):
            server, client = socket.socketpair()
            self.keep.append((server, client))
            threading.Thread(target=self.read_socket, args=(server,),
                             daemon=True).start()
        workers = plan["executor workers"]
        if workers:
            self.executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="bench-pool")
            for _ in range(workers):
                self.executor.submit(self.pool_task)
        deadline = time.monotonic() + 60
        while len(self.ready) < self.size:
            if time.monotonic() > deadline:
                msg = f"only {len(self.ready)} of {self.size} threads parked"
                raise TimeoutError(msg)
            time.sleep(0.01)
        time.sleep(0.2)  # from "about to wait" to inside the wait
        return self

    def read_queue(self) -> None:
        """Take from the shared queue (the identical half)."""
        self.ready.append(1)
        self.queue.get()

    def wait_event(self) -> None:
        """Wait for the gate."""
        self.ready.append(1)
        self.gate.wait()

    def sleep(self) -> None:
        """Sleep in C until the process ends."""
        self.ready.append(1)
        time.sleep(3600)

    def acquire_lock(self) -> None:
        """Block on a lock the main thread holds."""
        self.ready.append(1)
        self.lock.acquire()

    def acquire_rlock(self) -> None:
        """Block on an RLock the main thread holds."""
        self.ready.append(1)
        self.rlock.acquire()

    def read_socket(self, connection: socket.socket) -> None:
        """Read a socket whose peer never writes."""
        self.ready.append(1)
        try:
            connection.recv(1)
        except OSError:
            pass

    def pool_task(self) -> None:
        """Hold a pool worker until the gate opens."""
        self.ready.append(1)
        self.gate.wait()

    def release(self) -> None:
        """Let the pool's workers finish (the process can then exit)."""
        self.gate.set()
        if self.executor is not None:
            self.executor.shutdown(wait=True)


def bare_walk() -> tuple[float, int, int]:
    """Group every thread's stack by identity; return (s, threads, groups).

    The floor of a Threads section: one ``sys._current_frames()``, then
    ``(f_code, f_lineno)`` of every frame, each stack a tuple, identical
    stacks in one group.
    """
    import gc

    collecting = gc.isenabled()
    gc.disable()  # as for the greenlets' walk (benchmarks.child)
    started = time.perf_counter()
    groups: dict[tuple[Any, ...], list[int]] = {}
    current = sys._current_frames()
    for ident, frame in current.items():
        keys = []
        while frame is not None:
            keys.append((frame.f_code, frame.f_lineno))
            frame = frame.f_back
        groups.setdefault(tuple(keys), []).append(ident)
    seconds = time.perf_counter() - started
    if collecting:
        gc.enable()
    del current, frame
    return seconds, sum(map(len, groups.values())), len(groups)


def threads_section() -> tuple[dict[str, Any], list[str], float]:
    """Run df_gmr's Threads section alone, as a report's builder would.

    Returns its data, its lines and when it was done: the
    ``perf_counter()`` read before the collector is given back.  In a
    report, the section runs with the collector held off, and the
    collection deferred meanwhile runs once the whole report is built
    (it is in the whole report's time, not in any one section's); the
    bare walk is timed the same way (``bare_walk``).
    """
    from df_gmr.context import ReportContext
    from df_gmr.runtime import Snapshot
    from df_gmr.sections import threads
    from df_gmr.trigger import trigger

    builder = threading.get_ident()
    context = ReportContext(builder_thread=builder,
                            runtime=Snapshot(builder))
    # A report holds the collector off while it is built (see
    # Trigger.collection_deferred): so does the section timed alone.
    with trigger.collection_deferred():
        try:
            data = threads.collect(context)
            lines = threads.format_lines(data)
        finally:
            context.runtime.release()
        done = time.perf_counter()
    return data, lines, done


def measure_native_report(params: dict[str, Any],
                          set_up: Any, version: Any) -> dict[str, Any]:
    """Time the walk, then the section or a whole report, once."""
    import gc

    tool = params["tool"]
    part = params["part"]
    report_class = set_up(tool, params["log_dir"])
    workload = NativeWorkload(params["size"]).build()
    gc.collect()
    floor, walked, groups = bare_walk()
    found: dict[str, Any] = {"floor_seconds": floor, "threads": walked,
                             "walk_groups": groups,
                             "counts": workload.counts}
    profiler = None
    if params.get("profile"):
        from benchmarks.profiling import start_profile

        profiler = start_profile()
    started = time.perf_counter()
    if part == "section":
        if tool != "df_gmr":
            msg = "only df_gmr has a Threads section to time alone"
            raise ValueError(msg)
        data, lines, done = threads_section()
        found["seconds"] = done - started
        # The collection deferred while the section ran: set off by the
        # first allocation once the collector is back (by now).
        found["collection_seconds"] = time.perf_counter() - done
        found["listed"] = data["count"]
        found["groups"] = len(data["groups"])
        found["report_bytes"] = len("\n".join(lines).encode("utf-8"))
    else:
        text = report_class(version).run()
        found["seconds"] = time.perf_counter() - started
        found["report_bytes"] = len(text.encode("utf-8"))
        found["listed"] = threads_in_report(tool, text)
    if profiler is not None:
        from benchmarks.profiling import print_profile

        print_profile(profiler, params["profile"])
    if params.get("keep_text"):
        with open(params["keep_text"], "w") as kept:
            kept.write(text if part != "section" else "\n".join(lines))
    workload.release()
    return found


def threads_in_report(tool: str, text: str) -> int:
    """Return how many native threads a whole report lists."""
    import re

    if tool == "df_gmr":
        match = re.search(r"^(\d+) native threads in \d+ groups", text,
                          re.MULTILINE)
        return int(match.group(1)) if match else 0
    return len(re.findall(r"^-+ +Thread #-?\d+ +-+$", text, re.MULTILINE))


# -- hooks at rest ----------------------------------------------------------

def trivial() -> None:
    """Do nothing (what the started threads and the tasks run)."""


def thread_rate(count: int) -> float:
    """Return ``Thread(target=f).start(); join()`` per second."""
    started = time.perf_counter()
    for _ in range(count):
        thread = threading.Thread(target=trivial)
        thread.start()
        thread.join()
    return count / (time.perf_counter() - started)


def pool_rate(executor: Any, count: int, batch: int) -> float:
    """Return tasks per second: ``batch`` submits, then their results."""
    started = time.perf_counter()
    for _ in range(0, count, batch):
        futures = [executor.submit(trivial) for _ in range(batch)]
        for future in futures:
            future.result()
    return count // batch * batch / (time.perf_counter() - started)


def measure_hook_rest(params: dict[str, Any]) -> dict[str, Any]:
    """Throughput of one workload, with its df_gmr hook installed or not.

    Both kinds of process import the hook's module; only df_gmr's (the
    tool ``df_gmr``, not ``none``) call its ``install()``, so the
    difference is the hook alone.
    """
    variant = params["variant"]
    hooked = params["tool"] == "df_gmr"
    count = params["count"]
    if variant == "thread_start":
        from df_gmr import origins

        if hooked:
            origins.install()
        installed = bool(getattr(threading.Thread, "_df_gmr_start_wrapped",
                                 False))

        def once(total: int) -> float:
            return thread_rate(total)
        executor = None
        owner: Any = threading.Thread
        method = "start"
    else:
        from df_gmr.runtime import executors

        if hooked:
            executors.install()
        if variant == "cf_executor":
            from concurrent.futures import thread as cf_thread

            executor = cf_thread.ThreadPoolExecutor(
                max_workers=POOL_WORKERS)
            item_class: Any = cf_thread._WorkItem
        elif variant == "futurist_executor":
            import futurist
            from futurist import _utils

            executor = futurist.ThreadPoolExecutor(max_workers=POOL_WORKERS)
            item_class = _utils.WorkItem
        else:
            msg = f"unknown variant {variant!r}"
            raise ValueError(msg)
        installed = bool(getattr(item_class, "_df_gmr_stamped", False))
        batch = min(count, params["batch"])
        owner, method = item_class, "run"

        def once(total: int) -> float:
            return pool_rate(executor, total, batch)
    if installed != hooked:
        msg = f"hook installed: {installed}, expected {hooked}"
        raise RuntimeError(msg)
    once(max(1, count // 5))  # warm up: workers started, code cached
    rates = [once(count) for _ in range(params["inner"])]
    paired = paired_shares(owner, method, once, count,
                           params.get("pairs", 0)) if hooked else []
    if executor is not None:
        executor.shutdown(wait=True)
    # The best repetition: the one least disturbed by other processes.
    found = {"rate": max(rates), "rate_median": statistics.median(rates),
             "rates": rates, "hooked": installed, "paired": paired}
    if hooked:
        found["hook_seconds"] = hook_own_cost(variant)
    return found


#: Runs of each side per pair, interleaved (the best of each counts).
PAIR_RUNS = 5


def paired_shares(owner: Any, method: str, once: Callable[[int], float],
                  count: int, pairs: int) -> list[float]:
    """Return hooked / unhooked throughput, pair by pair, in this process.

    The hook is swapped out (the method it wraps, its ``__wrapped__``)
    and back in, ``PAIR_RUNS`` runs each way, interleaved; a pair is the
    best of each side.  Separate processes
    of the same code vary in throughput by more than a hook costs (the
    row gives their spread); paired in one process, that variance is
    out, and what is left is the hook's.
    """
    from benchmarks import pairing

    hooked = getattr(owner, method)
    original = getattr(hooked, "__wrapped__", None)
    if original is None:
        return []
    return pairing.paired_shares(
        pairs, PAIR_RUNS,
        lambda wrapped: setattr(owner, method,
                                hooked if wrapped else original),
        lambda: once(count))


def hook_own_cost(variant: str) -> float | None:
    """Return the seconds a hook adds to one call, on a no-op method.

    The hook wraps the method of a subclass of the real class (a
    ``Thread``, a work item), overridden to do nothing, as ``install()``
    wraps ``Thread.start`` or a work item's ``run``; each call is on a new
    object, as in a service.  The best of 20 alternated timings, wrapped
    minus bare, is the hook's own work, free of the thread switches that make
    throughput noisy.  (This uses df_gmr's private wrapping functions:
    None if they are gone.)
    """
    import timeit
    import types

    def noop(self: Any) -> None:
        """Do nothing."""

    if variant == "thread_start":
        from df_gmr import origins

        wrap = getattr(origins, "_wrap", None)
        if wrap is None:
            return None
        base: Any = threading.Thread
        method = "start"
        arguments: tuple[Any, ...] = ()
    else:
        from df_gmr.runtime import executors

        stamp = getattr(executors, "_stamp_runs", None)
        if stamp is None:
            return None
        if variant == "cf_executor":
            from concurrent.futures import thread as cf_thread

            base = cf_thread._WorkItem
            arguments = (None, trivial, (), {})
        else:
            from futurist import _utils

            base = _utils.WorkItem
            arguments = (None, trivial)
        method = "run"
    # The stamp's mark is inherited from a stamped base: not on these.
    fresh = {method: noop, "_df_gmr_stamped": False}
    plain = type("Plain", (base,), dict(fresh))
    wrapped = type("Wrapped", (base,), dict(fresh))
    if variant == "thread_start":
        wrap(wrapped)
    else:
        stamp("Wrapped", types.SimpleNamespace(Wrapped=wrapped))
    number = 5_000 if variant == "thread_start" else 20_000
    calls = {cls: (lambda cls=cls: getattr(cls(*arguments), method)())
             for cls in (plain, wrapped)}
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(20):  # alternated, so that both meet the same noise
        for cls, call in calls.items():
            best[cls] = min(best[cls], timeit.timeit(call, number=number))
    return (best[wrapped] - best[plain]) / number
