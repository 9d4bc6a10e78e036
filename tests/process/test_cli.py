"""The df-gmr command against real daemons."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from tests.daemons import outcome
from tests.daemons import run_python
from tests.daemons import running


def df_gmr(*args: str, timeout: float = 60
           ) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "df_gmr.cli", *args, timeout=timeout,
                      status=None)


def start_service():
    return running("service.py", "--launcher", "process", "--workers", "2")


@pytest.fixture(scope="module")
def service():
    """One service for the tests that only list it or ask for reports."""
    with start_service() as daemon:
        daemon.wait_ready(count=3)
        yield daemon


@pytest.fixture
def own_service():
    """A service of its own, for a test that stops it."""
    with start_service() as daemon:
        daemon.wait_ready(count=3)
        yield daemon


def test_list_shows_parent_and_workers(service):
    result = df_gmr("list")
    assert result.returncode == 0, result.stderr
    rows = {int(line.split()[0]): line.split()
            for line in result.stdout.splitlines()[1:]}
    assert rows[service.pid][3] == "parent"
    workers = service.workers()
    assert sorted(rows[pid][4] for pid in workers) == ["0", "1"]
    for pid in workers:
        assert rows[pid][1] == str(service.pid)
        assert rows[pid][2] == "testsvc"
        assert rows[pid][-1] == "stderr"


def test_report_with_workers_prints_every_report_to_stdout(service):
    result = df_gmr("report", str(service.pid), "--workers")
    assert result.returncode == 0, result.stderr
    pids = [int(p) for p in re.findall(r"^PID: (\d+)$", result.stdout, re.M)]
    workers = service.workers()
    assert sorted(pids) == sorted([service.pid, *workers])
    roles = re.findall(r"^Role: (.+)$", result.stdout, re.M)
    assert sorted(roles) == ["parent", "worker", "worker"]
    # Each report apart: a blank line before every report but the first.
    starts = [match.start() for match in re.finditer(
        r"^=+$\n^=+ +Guru Meditation", result.stdout, re.M)]
    assert len(starts) == 3 and starts[0] == 0, result.stdout[:500]
    assert all(result.stdout[start - 2:start] == "\n\n"
               for start in starts[1:])
    assert service.workers() == workers  # nobody harmed


def test_report_json_is_one_array_of_every_report(service):
    result = df_gmr("report", str(service.pid), "--workers",
                    "--format", "json")
    assert result.returncode == 0, result.stderr
    documents = json.loads(result.stdout)  # one document, whole
    pids = sorted(document["header"]["pid"] for document in documents)
    assert pids == sorted([service.pid, *service.workers()])
    roles = sorted(document["header"]["process"]["role"]
                   for document in documents)
    assert roles == ["parent", "worker", "worker"]


def test_report_jsonl_is_one_report_per_line(service):
    result = df_gmr("report", str(service.pid), "--workers",
                    "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    pids = sorted(json.loads(line)["header"]["pid"] for line in lines)
    assert pids == sorted([service.pid, *service.workers()])


def test_refuses_a_process_without_df_gmr_and_leaves_it_alive():
    bystander = subprocess.Popen([sys.executable, "-c",
                                  "import time; time.sleep(60)"])
    try:
        result = df_gmr("report", str(bystander.pid))
        assert result.returncode == 1
        assert result.stderr.strip() == (
            f"df-gmr: pid {bystander.pid}: has not set up df_gmr "
            "(SIGUSR2 could kill it); not signalled")
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait(timeout=10)


def test_refuses_a_dead_pid():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=10)
    result = df_gmr("report", str(gone.pid))
    assert result.returncode == 1
    assert result.stderr.strip() == f"df-gmr: pid {gone.pid}: no such process"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch user")
def test_refuses_a_pid_it_may_not_signal(service):
    # The command runs in a forked child that became 'nobody' (the
    # interpreter itself may not be executable by nobody).
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        code = 99
        try:
            sys.stderr = os.fdopen(write_end, "w")
            os.setgid(65534)
            os.setuid(65534)
            from df_gmr import cli

            code = cli.main(["report", str(service.pid)])
            sys.stderr.flush()
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(child, 0)
    with os.fdopen(read_end) as errors:
        message = errors.read()
    assert os.waitstatus_to_exitcode(status) == 1, message
    assert message.strip() == (
        f"df-gmr: pid {service.pid}: not permitted to signal it "
        "(run as its user)")


def test_names_a_process_that_does_not_answer_in_time(own_service):
    os.kill(own_service.pid, signal.SIGSTOP)
    try:
        result = df_gmr("report", str(own_service.pid), "--timeout", "1")
    finally:
        os.kill(own_service.pid, signal.SIGCONT)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"df-gmr: pid {own_service.pid}: no report within 1 s")
    assert own_service.alive()


def test_usage_errors_exit_2():
    assert df_gmr().returncode == 2
    assert df_gmr("report").returncode == 2
    assert df_gmr("report", "12", "--timeout", "0").returncode == 2
    assert df_gmr("--help").returncode == 0


DEMO_FROM_ELSEWHERE = """
import os, sys
here = os.getcwd()
sys.path[:] = [entry for entry in sys.path if entry not in ("", here)]
from df_gmr import cli
sys.exit(cli.main(["demo", "--workers", "1"]))
"""


def test_the_demo_daemon_imports_the_df_gmr_of_the_tour(tmp_path):
    # The README runs `df-gmr demo` in the checkout it installed from: the
    # daemon (``python -m``) must not import what lies in that directory.
    decoy = tmp_path / "df_gmr"
    decoy.mkdir()
    (decoy / "__init__.py").write_text(
        "raise ImportError('the decoy in the working directory')\n")
    result = run_python(DEMO_FROM_ELSEWHERE, cwd=str(tmp_path), timeout=90)
    assert result.stdout.count("  report of ") == 2, outcome(result)
    assert "not written" not in result.stdout, outcome(result)
    [header] = [line for line in result.stdout.splitlines()
                if line.startswith("  df_gmr: ")]
    assert header.startswith("  df_gmr: 0.1.0 ("), header
