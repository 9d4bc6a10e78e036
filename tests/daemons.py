"""Run real daemons and Python scenes for the tests, in subprocesses.

``run_python`` runs a scene to its end (as eventlet's ``run_python`` and
CPython's faulthandler tests do); ``running`` keeps a daemon up for a
block, for real signals.  Both give the child ``child_env()``: this
checkout's df_gmr, no activation by ``DF_GMR_ENABLE`` unless asked.
Every wait is bounded; every child is reaped (and its process group
killed); a failing test shows the child's command, output and status.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import contextlib
import glob
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

import psutil

SCRIPTS = os.path.join(os.path.dirname(__file__), "scripts")
#: The checkout under test: children import df_gmr from it.
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TIMEOUT = 30.0


def child_env(**extra: str | None) -> dict[str, str]:
    """Return the environment of a child Python process.

    This checkout first on ``PYTHONPATH``, ``DF_GMR_ENABLE`` removed (a
    test that wants activation says so), warnings off, output unbuffered;
    then ``extra`` on top (a value of None removes the variable).
    """
    environment = dict(os.environ)
    environment.pop("DF_GMR_ENABLE", None)
    environment["PYTHONWARNINGS"] = "ignore"
    environment["PYTHONUNBUFFERED"] = "1"
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [SOURCE_ROOT, environment.get("PYTHONPATH")]))
    for name, value in extra.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return environment


def python_command(script_or_code: str, *args: str) -> list[str]:
    """Return the command line that runs a scene with this interpreter.

    ``script_or_code`` is a script (a name ending in ``.py``, under
    tests/scripts unless absolute), ``-m`` (the first of ``args`` is then
    the module), or Python code run with ``-c``.
    """
    if script_or_code == "-m":
        return [sys.executable, "-m", *args]
    if script_or_code.endswith(".py") and "\n" not in script_or_code:
        return [sys.executable, os.path.join(SCRIPTS, script_or_code), *args]
    return [sys.executable, "-c", script_or_code, *args]


def outcome(result: subprocess.CompletedProcess[str]) -> str:
    """Return what a finished child did, for an assertion message."""
    def block(text: str) -> str:
        return text if not text or text.endswith("\n") else text + "\n"

    command = [str(argument) for argument in result.args]
    code = ""
    if command[1:2] == ["-c"]:  # the code on lines of its own
        code = block(command[2])
        command[2] = "CODE"
    return (f"--- {shlex.join(command)}\n{code}"
            f"--- exit status {result.returncode}; stdout:\n"
            f"{block(result.stdout)}--- stderr:\n{block(result.stderr)}"
            "--- end")


def run_python(script_or_code: str, *args: str,
               env: dict[str, str] | None = None,
               timeout: float = 60.0, status: int | None = 0,
               cwd: str | None = None
               ) -> subprocess.CompletedProcess[str]:
    """Run a Python scene to its end and return what it did.

    ``script_or_code`` as for ``python_command``; ``env`` defaults to
    ``child_env()``, ``cwd`` to this process's.  The child runs in a
    session of its own; once it exited (or after ``timeout`` seconds,
    which fails the test) its whole process group is killed and the
    child reaped.  Unless ``status`` is
    None, an exit status other than ``status`` fails the test; either
    failure shows the child's command, status, stdout and stderr.
    """
    command = python_command(script_or_code, *args)
    # Files rather than pipes: nothing to drain while waiting, and a
    # grandchild that keeps them open cannot hold the test up.
    with tempfile.TemporaryFile() as stdout, \
            tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            command, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
            env=child_env() if env is None else env,
            start_new_session=True, cwd=cwd)
        exited = _wait_exited(process, timeout)
        _end(process)
        result = subprocess.CompletedProcess(
            command, process.returncode, _read(stdout), _read(stderr))
    if not exited:
        raise AssertionError(f"timed out after {timeout}s\n"
                             f"{outcome(result)}")
    if status is not None and result.returncode != status:
        raise AssertionError(f"expected exit status {status}\n"
                             f"{outcome(result)}")
    return result


def _read(stream: Any) -> str:
    stream.seek(0)
    return stream.read().decode("utf-8", errors="replace")


def _exit_status(process: subprocess.Popen[Any]) -> int | None:
    """Return how the child ended (as ``returncode``), None if it runs.

    The child is left unreaped: while it is a zombie its pid, and so its
    process group id, cannot be reused, and killing the group is safe.
    """
    if process.returncode is not None:
        return process.returncode
    try:
        found = os.waitid(os.P_PID, process.pid,
                          os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # reaped behind our back (Popen.poll())
        return process.poll()
    if found is None:
        return None
    if found.si_code == os.CLD_EXITED:
        return found.si_status
    return -found.si_status


def _wait_exited(process: subprocess.Popen[Any], timeout: float) -> bool:
    """Wait until the child exited (unreaped); say whether it did."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while _exit_status(process) is None:
        if time.monotonic() > deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
    return True


def _end(process: subprocess.Popen[Any]) -> None:
    """Kill the child's process group (leftover workers too); reap it."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=DEFAULT_TIMEOUT)


def _process_state(pid: int) -> str:
    """Say what a live process and its threads are doing (a hung worker:
    its signals pending, blocked and caught, each thread's wait)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.rstrip("\n").split(":\t", 1)
                          for line in status if ":\t" in line)
        lines = [f"--- process {pid}: " + ", ".join(
            f"{key} {fields.get(key, '?').strip()}" for key in (
                "State", "SigPnd", "ShdPnd", "SigBlk", "SigCgt"))]
        for task in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
            def read(name: str, task: str = task) -> str:
                try:
                    with open(f"/proc/{pid}/task/{task}/{name}") as file:
                        return file.read().strip()
                except OSError:
                    return "?"
            lines.append(f"    thread {task} {read('comm')!r}: "
                         f"wchan {read('wchan')}, "
                         f"state {read('stat').split(') ')[-1][:1]}")
        return "\n".join(lines) + "\n"
    except (OSError, ValueError) as error:
        return f"--- process {pid}: {error}\n"


def wait_for(predicate: Callable[[], Any], timeout: float, what: str,
             daemon: Daemon | None = None) -> Any:
    """Poll ``predicate`` until it is true; fail with context on time-out."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            details = daemon.describe() if daemon is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for "
                                 f"{what}\n{details}")
        time.sleep(0.05)


class Daemon:
    """A scene (as for ``python_command``) run as a daemon subprocess."""

    def __init__(self, script: str, *args: str,
                 env: dict[str, str | None] | None = None,
                 log_dir: str | None = None, stderr: Any = None) -> None:
        self.log_dir = log_dir
        self.output = tempfile.NamedTemporaryFile(
            prefix="df-gmr-test-", suffix=".out", delete=False)
        command = python_command(script, *args)
        self.command = command
        self.process = subprocess.Popen(
            command, stdout=self.output,
            stderr=subprocess.STDOUT if stderr is None else stderr,
            stdin=subprocess.DEVNULL, env=child_env(**(env or {})),
            start_new_session=True)
        self.pid = self.process.pid

    def text(self) -> str:
        """Return everything the daemon printed so far.

        stdout and stderr, in the order written, unless ``stderr`` was
        given: then stdout only.
        """
        with open(self.output.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def describe(self) -> str:
        """Return the command, its state and its output, for failures."""
        state = _exit_status(self.process)
        processes = "" if state is not None else "".join(
            _process_state(pid) for pid in [self.pid, *self.workers()])
        return (f"--- daemon {shlex.join(self.command)} (pid {self.pid}, "
                f"{'running' if state is None else f'exit status {state}'})"
                f" output:\n{self.text()}\n{processes}--- end")

    def wait_ready(self, count: int = 1, timeout: float = DEFAULT_TIMEOUT
                   ) -> None:
        """Wait until the daemon printed ``count`` lines with ``READY``."""
        def ready() -> bool:
            if not self.alive():
                raise AssertionError(f"daemon exited early\n"
                                     f"{self.describe()}")
            return self.text().count("READY") >= count
        wait_for(ready, timeout, f"{count} READY lines", self)

    def workers(self) -> list[int]:
        """Return the pids of the daemon's child processes."""
        try:
            return sorted(child.pid for child in
                          psutil.Process(self.pid).children())
        except psutil.Error:
            return []

    def signal(self, signum: int = signal.SIGUSR2,
               pid: int | None = None) -> None:
        """Send a real signal to the daemon (or one of its processes)."""
        os.kill(pid or self.pid, signum)

    def wait_text(self, needle: str, count: int = 1,
                  timeout: float = DEFAULT_TIMEOUT) -> str:
        """Wait until ``needle`` appears ``count`` times in the output."""
        wait_for(lambda: self.text().count(needle) >= count, timeout,
                 f"{count} x {needle!r} in the output", self)
        return self.text()

    def reports(self) -> list[str]:
        """Return the report files in the daemon's log_dir."""
        assert self.log_dir is not None
        return sorted(path for path in glob.glob(
            os.path.join(self.log_dir, "*_gurumeditation_*"))
            if not os.path.basename(path).startswith("."))

    def wait_reports(self, count: int, timeout: float = DEFAULT_TIMEOUT
                     ) -> list[str]:
        """Wait until ``count`` complete report files exist."""
        return wait_for(lambda: len(self.reports()) >= count and
                        self.reports(), timeout,
                        f"{count} report files in {self.log_dir}", self)

    def alive(self) -> bool:
        """Say whether the daemon's main process still runs."""
        return _exit_status(self.process) is None

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM the daemon, wait, SIGKILL its group; reap; its status.

        The status is the main process's answer to SIGTERM (-9 when it
        had to be killed).
        """
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            _wait_exited(self.process, timeout)
        _end(self.process)
        self.output.close()
        return self.process.returncode


@contextlib.contextmanager
def running(script: str, *args: str,
            env: dict[str, str | None] | None = None,
            log_dir: str | None = None, stderr: Any = None
            ) -> Iterator[Daemon]:
    """Run a daemon for the block; show its output if the block fails.

    ``env`` adds to (or, with None values, removes from) ``child_env()``;
    ``stderr`` (a file, descriptor or socket) replaces the output file as
    the daemon's stderr.
    """
    daemon = Daemon(script, *args, env=env, log_dir=log_dir, stderr=stderr)
    try:
        yield daemon
    except BaseException:
        sys.stderr.write(daemon.describe() + "\n")
        raise
    finally:
        daemon.stop()
        os.unlink(daemon.output.name)
