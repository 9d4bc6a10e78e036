"""Every process of a service answers, whatever launches it."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests import compiled
from tests.daemons import SCRIPTS
from tests.daemons import SOURCE_ROOT
from tests.daemons import child_env
from tests.daemons import run_python
from tests.daemons import running
from tests.daemons import wait_for


def df_gmr(*args: str, timeout: float = 60
           ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=SOURCE_ROOT, PYTHONWARNINGS="ignore")
    env.pop("DF_GMR_ENABLE", None)
    return subprocess.run(
        [sys.executable, "-m", "df_gmr.cli", *args], capture_output=True,
        text=True, timeout=timeout, env=env)


def listed(parent: int) -> dict[int, dict]:
    result = df_gmr("list", "--format", "json")
    assert result.returncode == 0, result.stderr
    return {entry["pid"]: entry for entry in json.loads(result.stdout)
            if entry["pid"] == parent or entry.get("ppid") == parent}


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_cotyledon_used_directly_every_worker_listed_and_reporting(method):
    with running("cotyledon_direct.py", method, "2",
                 env={"DF_GMR_ENABLE": "1",
                      "DF_GMR_SERVICE_NAME": "notifier"}) as daemon:
        daemon.wait_ready(count=3, timeout=60)
        entries = wait_for(lambda: _workers(listed(daemon.pid)) >= 2
                           and listed(daemon.pid), 30,
                           "the parent and 2 workers listed", daemon)
        # (with spawn, multiprocessing's resource tracker is a child too:
        # enabled by the same environment, it is a single process.)
        workers = {pid: entry for pid, entry in entries.items()
                   if entry["role"] == "worker"}
        assert entries[daemon.pid]["role"] == "parent"
        assert sorted(entry["worker_index"] for entry in workers.values()
                      ) == [0, 1]
        assert all(entry["role"] == "worker" and entry["ready"]
                   for entry in workers.values())

        result = df_gmr("report", str(daemon.pid), "--workers")
        assert result.returncode == 0, result.stderr
        pids = [int(pid) for pid in
                re.findall(r"^PID: (\d+)$", result.stdout, re.M)]
        assert sorted(pids) == sorted([daemon.pid, *workers])
        roles = re.findall(r"^Role: (.+)$", result.stdout, re.M)
        assert sorted(roles) == ["parent", "worker", "worker"]
        launchers = set(re.findall(r"^Launcher: (.+)$", result.stdout,
                                   re.M))
        assert launchers == {"cotyledon ServiceManager"}
        # Neither oslo.service backend: cotyledon alone runs this service.
        assert "Backend:" not in result.stdout
        # oslo.service chose its backend all the same (an import, as in
        # aodh): each header where it did says it does not run the process
        # (a spawned worker is a new interpreter: chosen there by nothing).
        assert result.stdout.count(
            "oslo.service backend eventlet (chosen, but this process runs "
            "under cotyledon ServiceManager, not an oslo.service launcher)"
        ) == (3 if method == "fork" else 1), result.stdout
        # cotyledon's own threads start in a worker that multiprocessing
        # runs: their origin is never a library's file (the standard
        # library's multiprocessing included).
        started = re.findall(r"started at (\S+):\d+", result.stdout)
        libraries = (os.path.dirname(os.__file__) + os.sep,
                     os.path.dirname(cotyledon_file()) + os.sep)
        assert not [path for path in started
                    if path.startswith(libraries)], started
        # cotyledon forks its workers from a supervisor thread: a forked
        # worker's main thread is that thread of the parent, and says so.
        forked = re.findall(r"^  - \d+ (.+): .*the parent's thread that "
                            r"forked this process", result.stdout, re.M)
        if method == "fork":
            assert len(forked) == 2, result.stdout
            assert all("_child_supervisor_thread" in name
                       for name in forked), forked
            assert result.stdout.count(
                "(in the parent, which forked this process from it)") == 2
            # Who started it is the parent's business: not claimed here.
            lines = re.findall(r"^  - .*the parent's thread that forked "
                               r"this process.*$", result.stdout, re.M)
            assert not [line for line in lines if "started by" in line]
        else:  # a fresh interpreter: its own main thread
            assert not forked, forked


def cotyledon_file() -> str:
    import cotyledon

    return cotyledon.__file__


def _workers(entries: dict[int, dict]) -> int:
    return sum(entry["role"] == "worker" for entry in entries.values())


def _base_python() -> str:
    """The interpreter under the test venv: df_gmr is not installed there."""
    return os.path.join(sys.base_prefix, "bin", "python3")


def test_doctor_says_a_set_up_daemon_is_ready():
    with running("service.py", "--launcher", "process",
                 "--workers", "1") as daemon:
        daemon.wait_ready(count=2)
        result = df_gmr("doctor", str(daemon.pid))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: SIGUSR2 is caught" in result.stdout
    assert f"pid {daemon.pid}: ready for Guru Meditation Reports" in \
        result.stdout


def test_doctor_says_why_a_plain_process_is_not_ready():
    plain = subprocess.Popen([sys.executable, "-c",
                              "import time; time.sleep(60)"])
    try:
        result = df_gmr("doctor", str(plain.pid))
        assert result.returncode == 1
        assert "PROBLEM: SIGUSR2 is not caught: kill -USR2 would KILL" in \
            result.stdout
        assert plain.poll() is None  # doctor signals nothing
    finally:
        plain.kill()
        plain.wait(timeout=10)


def test_doctor_finds_the_activation_file_missing():
    if sys.prefix == sys.base_prefix:
        pytest.skip("the tests do not run in a virtual environment")
    result = df_gmr("doctor", "--python", _base_python())
    assert result.returncode == 1, result.stdout
    assert "activation file df_gmr_autostart.pth is missing" in \
        result.stdout


@pytest.mark.parametrize("pure", [False, True])
def test_doctor_says_which_c_parts_the_interpreter_runs(pure):
    if not pure and compiled.why_not_built():
        pytest.skip(f"the C spawn hook: {compiled.why_not_built()}")
    result = run_python("-m", "df_gmr.cli", "doctor", "--python",
                        sys.executable, status=None, env=child_env(
                            DF_GMR_PURE_PYTHON="1" if pure else None))
    assert ("ok: speedups: pure Python (DF_GMR_PURE_PYTHON=1)" if pure
            else "ok: speedups: C (df_gmr._sites: the spawn hook where "
            "eventlet runs, the stack walk, masking), unless the "
            "service's "
            "environment sets DF_GMR_PURE_PYTHON=1"
            ) in result.stdout, \
        result.stdout + result.stderr


def test_run_refuses_what_activation_cannot_reach(tmp_path):
    marker = tmp_path / "ran"
    result = df_gmr("run", "--", sys.executable, "-S", "-c",
                    f"open({str(marker)!r}, 'w')")
    assert result.returncode == 1
    assert "runs without site (-S)" in result.stderr
    assert "not started (SIGUSR2 would kill it)" in result.stderr
    assert not marker.exists()


def test_run_starts_an_activated_program(tmp_path):
    result = df_gmr("run", "--", sys.executable, "-c",
                    "import signal; "
                    "print(signal.getsignal(signal.SIGUSR2).__qualname__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Trigger.on_signal"


def _roles(paths: list[str]) -> dict[int, str]:
    roles = {}
    for path in paths:
        with open(path) as handle:
            text = handle.read()
        pid = int(re.search(r"^PID: (\d+)$", text, re.M)[1])
        roles[pid] = re.search(r"^Role: (.+)$", text, re.M)[1]
    return roles


@pytest.mark.parametrize("launcher", ["process", "cotyledon"])
def test_one_signal_to_the_parent_reports_every_worker(tmp_path, launcher):
    script, args = (("service.py", ("--launcher", "process", "--workers",
                                    "2", "--log-dir", str(tmp_path)))
                    if launcher == "process" else
                    ("cotyledon_direct.py", ("fork", "2", str(tmp_path))))
    env = {"DF_GMR_PROPAGATE": "1"}
    if launcher == "cotyledon":
        env.update(DF_GMR_ENABLE="1", DF_GMR_LOG_DIR=str(tmp_path))
    with running(script, *args, env=env, log_dir=str(tmp_path)) as daemon:
        daemon.wait_ready(count=3, timeout=60)
        workers = wait_for(lambda: len(daemon.workers()) >= 2 and
                           daemon.workers(), 30, "2 workers", daemon)
        daemon.signal()  # one signal, to the parent only
        roles = _roles(daemon.wait_reports(3))
        assert roles == {daemon.pid: "parent",
                         **{pid: "worker" for pid in workers}}
        time.sleep(1.0)  # and no more than one each
        assert len(daemon.reports()) == 3, daemon.reports()


def test_without_propagation_a_signal_reports_one_process(tmp_path):
    with running("service.py", "--launcher", "process", "--workers", "2",
                 "--log-dir", str(tmp_path), log_dir=str(tmp_path)) as daemon:
        daemon.wait_ready(count=3)
        daemon.signal()
        daemon.wait_reports(1)
        time.sleep(1.0)
        assert _roles(daemon.reports()) == {daemon.pid: "parent"}


def test_journald_stream_gets_one_structured_entry_per_report(tmp_path):
    journal_path = str(tmp_path / "journal.socket")
    journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    journal.bind(journal_path)
    journal.settimeout(20)
    ours, theirs = socket.socketpair()  # stderr: a stream, as journald's
    info = os.fstat(theirs.fileno())
    log_dir = tmp_path / "reports"
    env = dict(os.environ, PYTHONPATH=SOURCE_ROOT, PYTHONWARNINGS="ignore",
               JOURNAL_STREAM=f"{info.st_dev}:{info.st_ino}",
               DF_GMR_JOURNAL_SOCKET=journal_path)
    env.pop("DF_GMR_ENABLE", None)
    service = subprocess.Popen(
        [sys.executable, os.path.join(SCRIPTS, "service.py"),
         "--log-dir", str(log_dir)],
        stdout=subprocess.PIPE, stderr=theirs, env=env,
        start_new_session=True)
    theirs.close()
    try:
        while b"READY" not in service.stdout.readline():
            assert service.poll() is None
        os.kill(service.pid, signal.SIGUSR2)
        fields = dict(line.split("=", 1) for line in
                      journal.recv(65536).decode().splitlines())
        ours.settimeout(20)
        said = b""
        while b"written to" not in said:
            said += ours.recv(4096)
    finally:
        service.kill()
        service.wait(timeout=30)
        journal.close()
        ours.close()
    assert fields["MESSAGE_ID"] == "5b3c4e8f2a9d4f6b8c1e7a0d9f2b6c41"
    assert fields["DF_GMR_PID"] == str(service.pid)
    [report] = os.listdir(log_dir)
    assert fields["DF_GMR_REPORT"] == str(log_dir / report)
    assert fields["DF_GMR_ROLE"] == "single process"
    assert f"written to {log_dir / report}".encode() in said
