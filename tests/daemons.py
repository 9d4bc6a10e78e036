"""Run real daemons for the tests: subprocesses, real signals, bounded waits.

Every wait is bounded; every child is reaped (and its process group
killed) at the end of the test; a failing test shows the child's output.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import contextlib
import glob
import os
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
    """A script under tests/scripts run as a subprocess."""

    def __init__(self, script: str, *args: str,
                 env: dict[str, str] | None = None,
                 log_dir: str | None = None) -> None:
        self.log_dir = log_dir
        self.output = tempfile.NamedTemporaryFile(
            prefix="df-gmr-test-", suffix=".out", delete=False)
        environment = dict(os.environ)
        environment.pop("DF_GMR_ENABLE", None)
        environment["PYTHONWARNINGS"] = "ignore"
        environment["PYTHONUNBUFFERED"] = "1"
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [SOURCE_ROOT, environment.get("PYTHONPATH")]))
        if env:
            environment.update(env)
        command = [sys.executable, os.path.join(SCRIPTS, script), *args]
        self.command = command
        self.process = subprocess.Popen(
            command, stdout=self.output, stderr=subprocess.STDOUT,
            env=environment, start_new_session=True)
        self.pid = self.process.pid

    def text(self) -> str:
        """Return everything the daemon printed so far."""
        with open(self.output.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def describe(self) -> str:
        """Return the command, its state and its output, for failures."""
        state = self.process.poll()
        return (f"--- daemon {self.command} (pid {self.pid}, "
                f"exit {state}) output:\n{self.text()}\n--- end")

    def wait_ready(self, count: int = 1, timeout: float = DEFAULT_TIMEOUT
                   ) -> None:
        """Wait until the daemon printed ``count`` lines with ``READY``."""
        def ready() -> bool:
            if self.process.poll() is not None:
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
        return self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM the daemon, wait, SIGKILL the group if needed; reap."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=timeout)
        self.output.close()
        return self.process.returncode


@contextlib.contextmanager
def running(script: str, *args: str, env: dict[str, str] | None = None,
            log_dir: str | None = None) -> Iterator[Daemon]:
    """Run a daemon for the block; show its output if the block fails."""
    daemon = Daemon(script, *args, env=env, log_dir=log_dir)
    try:
        yield daemon
    except BaseException:
        sys.stderr.write(daemon.describe() + "\n")
        raise
    finally:
        daemon.stop()
        os.unlink(daemon.output.name)
