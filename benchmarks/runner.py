"""Run measurements in fresh child processes and keep their results.

Every run of every case is a new ``python -m benchmarks.child`` process,
so that one measurement never inherits another's heap, caches or hub.
Children import a snapshot of df_gmr taken when the run starts (the
checkout's working tree, or a git revision), so that edits made to the
checkout meanwhile never mix revisions within one run.  They never
activate df_gmr from the environment (``DF_GMR_ENABLE`` removed), and
announce themselves in a private run directory.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import io
import json
import os
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from typing import Any
from typing import NoReturn

from benchmarks.child import DONE
from benchmarks.child import READY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULT_PREFIX = "RESULT "
#: How long the driver waits after the child says it blocks, before
#: signalling (the blocking call must have started).
BLOCK_SETTLE = 0.2
#: Measurements whose children run on one CPU (see ``pinned_cpu``).
PINNED = ("report_cost", "native_report")


def pinned_cpu() -> int | None:
    """Return the CPU that a report's children run on, or None (no
    affinity here, or one CPU only).

    They compare a report, whose sections are read by a df_gmr thread,
    with a bare walk read just before by the main thread: on a VM whose
    vCPUs share no cache (a 2-vCPU AMD EPYC guest), the section thread
    landing on the other vCPU read the data the walk had just warmed
    across them, and took up to 1.5x as long, at random (1k mix: 6.7 to
    9.7 ms, against 5.9 to 6.7 ms on one CPU; the walk alike).  One CPU
    for both threads measures the same reading on both sides.  The last
    CPU of the driver's own set: the driver waits meanwhile.
    """
    getter = getattr(os, "sched_getaffinity", None)
    if getter is None:
        return None
    allowed = sorted(getter(0))
    return allowed[-1] if len(allowed) > 1 else None


class ChildFailed(RuntimeError):
    """A child process did not produce a result."""


@dataclasses.dataclass
class Case:
    """One measurement of one tool on one workload, run several times."""

    measurement: str
    tool: str
    params: dict[str, Any]
    results: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    wall_seconds: list[float] = dataclasses.field(default_factory=list)
    error: str | None = None

    def median(self, key: str) -> Any:
        """Return the median of ``key`` over the runs (None if absent)."""
        values = [result[key] for result in self.results
                  if result.get(key) is not None]
        if not values:
            return None
        return statistics.median(values)

    def first(self, key: str) -> Any:
        """Return ``key`` of the first run, if any."""
        return self.results[0].get(key) if self.results else None

    @property
    def runs(self) -> int:
        """Return how many runs gave a result."""
        return len(self.results)


class Runner:
    """Starts the children, one at a time, and logs progress to stderr."""

    def __init__(self, timeout: float, verbose: bool = True,
                 revision: str | None = None) -> None:
        self.timeout = timeout
        self.verbose = verbose
        self.scratch = tempfile.mkdtemp(prefix="df_gmr_bench_")
        self.failures: list[str] = []
        try:
            self.source = snapshot(self.scratch, revision)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Remove the scratch directory (log dirs, run directory)."""
        shutil.rmtree(self.scratch, ignore_errors=True)

    def environment(self) -> dict[str, str]:
        """Return the children's environment."""
        env = dict(os.environ)
        env.pop("DF_GMR_ENABLE", None)
        env["PYTHONPATH"] = os.pathsep.join(
            [self.source] + [path for path in
                             env.get("PYTHONPATH", "").split(os.pathsep)
                             if path and os.path.abspath(path) != ROOT])
        env["PYTHONWARNINGS"] = "ignore"
        env["DF_GMR_RUN_DIR"] = os.path.join(self.scratch, "run")
        return env

    def log_dir(self) -> str:
        """Return a new, empty report directory."""
        return tempfile.mkdtemp(prefix="reports_", dir=self.scratch)

    def say(self, message: str) -> None:
        """Print progress to stderr."""
        if self.verbose:
            print(message, file=sys.stderr, flush=True)

    def repeat(self, case: Case, runs: int, budget: float) -> Case:
        """Run ``case`` up to ``runs`` times, within ``budget`` seconds.

        A first run always happens; another starts only if it would
        likely end within the budget (so a slow case runs fewer times).
        """
        spent = 0.0
        for index in range(runs):
            if index and spent + spent / index > budget:
                break
            started = time.monotonic()
            try:
                result = self.run_once(case)
            except ChildFailed as failure:
                case.error = str(failure)
                self.failures.append(
                    f"{case.measurement} {case.tool} {case.params}: "
                    f"{failure}")
                self.say(f"  FAILED: {failure}")
                break
            elapsed = time.monotonic() - started
            spent += elapsed
            case.results.append(result)
            case.wall_seconds.append(elapsed)
            self.say(f"  {case.measurement} {case.tool} "
                     f"{describe_params(case.params)} run {index + 1}: "
                     f"{summarise(result)} ({elapsed:.1f} s)")
        return case

    def run_once(self, case: Case) -> dict[str, Any]:
        """Run one child for ``case``; return its result."""
        params = dict(case.params, tool=case.tool)
        if "log_dir" in params:
            params["log_dir"] = self.log_dir()
        if case.measurement in PINNED:
            params["cpu"] = pinned_cpu()
        if case.measurement == "latency":
            return self._run_latency(params)
        command = [sys.executable, "-m", "benchmarks.child",
                   case.measurement, json.dumps(params)]
        try:
            finished = subprocess.run(
                command, cwd=self.source, env=self.environment(),
                capture_output=True, text=True, timeout=self.timeout,
                check=False)
        except subprocess.TimeoutExpired as expired:
            msg = f"timed out after {expired.timeout} s"
            raise ChildFailed(msg) from None
        return parse_result(finished.returncode, finished.stdout,
                            finished.stderr)

    def turns(self, measurement: str, cases: list[Case],
              script: list[tuple[int, str]]) -> list[dict[str, Any] | None]:
        """Run one child per case at once, giving them turns; return their
        results (None for a child that failed, its error in its case).

        Each child says ``READY`` once set up; ``script`` then tells the
        child at an index one word at a time (``child.TURNS``), waiting
        for its ``DONE``, so only one child runs at a time; ``end`` at
        last.  All on one CPU (``pinned_cpu``), as they never run at once.
        A child that fails, or any that overruns the timeout, ends the
        round: every child is killed and reaped.
        """
        deadline = time.monotonic() + self.timeout
        children: list[Turned] = []
        results: list[dict[str, Any] | None] = [None] * len(cases)
        try:
            for case in cases:
                params = dict(case.params, tool=case.tool,
                              cpu=pinned_cpu())
                if "log_dir" in params:
                    params["log_dir"] = self.log_dir()
                children.append(Turned(
                    [sys.executable, "-m", "benchmarks.child",
                     measurement, json.dumps(params)],
                    self.source, self.environment(), self.scratch))
            for child in children:
                child.expect(READY, deadline)
            for index, word in script:
                children[index].tell(word)
                children[index].expect(DONE, deadline)
            for index, child in enumerate(children):
                child.tell("end")
                results[index] = child.finish(deadline)
        except ChildFailed as failure:
            failed = next((index for index, child in enumerate(children)
                           if child.failed), None)
            for index, case in enumerate(cases):
                if failed is None or index == failed:
                    case.error = str(failure)
            self.failures.append(f"{measurement} round: {failure}")
            self.say(f"  FAILED: {failure}")
        finally:
            for child in children:
                child.close()
        for case, result in zip(cases, results, strict=True):
            if result is not None:
                case.results.append(result)
        return results

    def _run_latency(self, params: dict[str, Any]) -> dict[str, Any]:
        # The child blocks its hub; from here (another process, as an
        # operator's kill) the signal goes out once the block started, and
        # the clock runs until the report file exists.
        command = [sys.executable, "-m", "benchmarks.child", "latency",
                   json.dumps(params)]
        log_dir = params["log_dir"]
        with subprocess.Popen(
                command, cwd=self.source, env=self.environment(),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True) as child:
            deadline = time.monotonic() + self.timeout
            assert child.stdout is not None
            lines = []
            for line in child.stdout:
                lines.append(line)
                if line.strip() == "BLOCKING":
                    break
            else:
                _, errors = child.communicate()
                return parse_result(child.wait(), "".join(lines), errors)
            time.sleep(BLOCK_SETTLE)
            signalled = time.monotonic()
            os.kill(child.pid, signal.SIGUSR2)
            latency = None
            limit = signalled + params["block"] + params["timeout"]
            while time.monotonic() < min(limit, deadline):
                if any(not name.startswith(".")
                       for name in os.listdir(log_dir)):
                    latency = time.monotonic() - signalled
                    break
                time.sleep(0.002)
            try:
                output, errors = child.communicate(
                    timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                output, errors = child.communicate()
            result = parse_result(child.returncode,
                                  "".join(lines) + output, errors)
        if latency is None:
            msg = "no report file appeared"
            raise ChildFailed(msg)
        result["latency"] = latency
        result["blocked_for"] = params["block"] - BLOCK_SETTLE
        return result


class Turned:
    """A child taking turns (``Runner.turns``): its stdin and stdout are
    pipes, its stderr a file (shown when it fails)."""

    def __init__(self, command: list[str], cwd: str, env: dict[str, str],
                 scratch: str) -> None:
        self.failed = False
        self.pending = b""
        self.output: list[str] = []
        self.errors = tempfile.TemporaryFile(dir=scratch)
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.errors)

    def tell(self, word: str) -> None:
        """Send one word."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(word.encode() + b"\n")
            self.process.stdin.flush()
        except OSError as error:
            self.fail(f"could not tell it {word!r}: {error}")

    def line(self, deadline: float) -> str | None:
        """Return the next line of output, or None at its end."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.fail("timed out")
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        text = line.decode(errors="replace")
        self.output.append(text)
        return text

    def expect(self, word: str, deadline: float) -> None:
        """Read output up to a line that is ``word``."""
        while (line := self.line(deadline)) != word:
            if line is None:
                self.fail(f"ended before {word}")

    def finish(self, deadline: float) -> dict[str, Any]:
        """Read the rest of the output; return the child's result."""
        while self.line(deadline) is not None:
            pass
        try:
            code = self.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.fail("timed out")
        try:
            return parse_result(code, "\n".join(self.output),
                                self.stderr())
        except ChildFailed:
            self.failed = True
            raise

    def stderr(self) -> str:
        """Return what the child wrote to stderr."""
        self.errors.seek(0)
        return self.errors.read().decode(errors="replace")

    def fail(self, why: str) -> NoReturn:
        """Raise ChildFailed with ``why`` and the end of its stderr."""
        self.failed = True
        self.process.kill()
        self.process.wait()
        tail = "\n".join(self.stderr().strip().splitlines()[-8:])
        msg = f"{why}: {tail or 'no output'}"
        raise ChildFailed(msg)

    def close(self) -> None:
        """Kill the child if it still runs, reap it, close the pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        self.errors.close()


def snapshot(scratch: str, revision: str | None) -> str:
    """Copy df_gmr and the benchmarks into ``scratch``; return the path.

    df_gmr comes from the working tree, or from ``revision`` (any git
    revision) through ``git archive``.
    """
    source = os.path.join(scratch, "src")
    os.makedirs(source)
    ignored = shutil.ignore_patterns("__pycache__", "*.pyc", "RESULTS.md")
    shutil.copytree(os.path.join(ROOT, "benchmarks"),
                    os.path.join(source, "benchmarks"), ignore=ignored)
    if revision is None:
        shutil.copytree(os.path.join(ROOT, "df_gmr"),
                        os.path.join(source, "df_gmr"), ignore=ignored)
        return source
    archived = subprocess.run(
        ["git", "-C", ROOT, "archive", "--format=tar", revision, "df_gmr"],
        capture_output=True, check=False)
    if archived.returncode != 0:
        msg = (f"cannot take df_gmr at {revision!r}: "
               f"{archived.stderr.decode(errors='replace').strip()}")
        raise ValueError(msg)
    with tarfile.open(fileobj=io.BytesIO(archived.stdout)) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(source, filter="data")
        else:  # pragma: no cover - Python without extraction filters
            archive.extractall(source)
    build_sites(source)
    return source


def build_sites(source: str) -> None:
    """Compile the C spawn hook into a snapshot taken from git.

    What setup.py builds, compiled directly (a snapshot has df_gmr alone).
    A revision before it, or a failed build: the children run the
    pure-Python hook, and the Machine section says so.
    """
    module = os.path.join(source, "df_gmr", "_sites.c")
    if not os.path.exists(module):
        return
    target = os.path.join(source, "df_gmr", "_sites" + (
        sysconfig.get_config_var("EXT_SUFFIX") or ".so"))
    command = [*shlex.split(sysconfig.get_config_var("CC") or "cc"),
               *shlex.split(sysconfig.get_config_var("CFLAGS") or ""),
               *shlex.split(sysconfig.get_config_var("CCSHARED") or ""),
               "-shared", f"-I{sysconfig.get_paths()['include']}", module,
               "-o", target]
    try:
        subprocess.run(command, capture_output=True, check=False,
                       timeout=300, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        pass


#: What the children's df_gmr says of its C module (an older revision,
#: measured with --revision, has only its spawn hook's account).
SPEEDUPS_PROBE = """
try:
    from df_gmr import speedups
    print(speedups.available())
except (ImportError, AttributeError):
    from df_gmr import greenlets
    print("spawn hook: " + greenlets.spawn_hook())
"""


def speedups(environment: dict[str, str], cwd: str) -> str:
    """Say what the children run in C (df_gmr.speedups).

    ``cwd``: a directory without df_gmr (``-c`` puts it first).
    """
    result = subprocess.run(
        [sys.executable, "-c", SPEEDUPS_PROBE],
        capture_output=True, text=True, env=environment, check=False,
        timeout=60, stdin=subprocess.DEVNULL, cwd=cwd)
    return result.stdout.strip() or f"unknown: {result.stderr.strip()}"


def parse_result(returncode: int, stdout: str, stderr: str
                 ) -> dict[str, Any]:
    """Return the child's ``RESULT`` line as data, or raise ChildFailed."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            if returncode != 0:
                break
            return dict(json.loads(line[len(RESULT_PREFIX):]))
    tail = "\n".join(stderr.strip().splitlines()[-8:])
    msg = f"exit status {returncode}: {tail or 'no output'}"
    raise ChildFailed(msg)


def describe_params(params: dict[str, Any]) -> str:
    """Return the interesting parameters of a case, briefly."""
    shown = []
    for key in ("workload", "size", "heap_mb", "variant", "spawns",
                "part", "kind", "copies", "command"):
        if key in params:
            shown.append(f"{key}={params[key]}")
    return " ".join(shown)


SUMMARY_KEYS: dict[str, Callable[[Any], str]] = {
    "seconds": lambda value: f"report {value:.3f} s",
    "floor_seconds": lambda value: f"walk {value * 1000:.1f} ms",
    "max_gap": lambda value: f"max gap {value * 1000:.0f} ms",
    "spawn_seconds": lambda value: f"spawn {value * 1e6:.2f} us",
    "switch_rate": lambda value: f"{value:,.0f} switches/s",
    "growth": lambda value: f"private +{value / 2**20:.1f} MiB",
    "latency": lambda value: f"latency {value:.3f} s",
    "rate": lambda value: f"{value:,.0f}/s",
}


def summarise(result: dict[str, Any]) -> str:
    """Return one progress line's worth of a result."""
    parts = [show(result[key]) for key, show in SUMMARY_KEYS.items()
             if result.get(key) is not None]
    return ", ".join(parts)
