"""Every process of an oslo.service daemon answers SIGUSR2 for itself."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from tests.daemons import running
from tests.daemons import wait_for

FILE_PID = re.compile(r"_gurumeditation_\d{20}_(\d+)\.txt$")


def by_pid(paths: list[str]) -> dict[int, str]:
    found = {}
    for path in paths:
        match = FILE_PID.search(path)
        if match:
            with open(path) as handle:
                found[int(match.group(1))] = handle.read()
    return found


def signal_all_and_collect(daemon, pids, already=0):
    for pid in pids:
        daemon.signal(pid=pid)
    return by_pid(daemon.wait_reports(already + len(pids)))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_threading_backend_workers_answer(tmp_path, method):
    with running("threading_service.py", method, "2", str(tmp_path),
                 log_dir=str(tmp_path)) as daemon:
        daemon.wait_ready(count=3, timeout=60)
        workers = wait_for(lambda: len(daemon.workers()) >= 2 and
                           daemon.workers(), 30, "2 workers", daemon)
        # multiprocessing's spawn start method adds a resource tracker.
        workers = [pid for pid in workers
                   if "resource_tracker" not in _cmdline(pid)]
        reports = signal_all_and_collect(daemon, [daemon.pid, *workers])
        assert set(reports) == {daemon.pid, *workers}
        indexes = set()
        for pid in workers:
            text = reports[pid]
            assert "Role: worker" in text
            assert "Backend: threading" in text
            indexes.add(re.search(r"^Worker index: (\d+)$", text,
                                  re.M).group(1))
        assert indexes == {"0", "1"}
        assert "Role: parent" in reports[daemon.pid]
        assert daemon.workers() == sorted(daemon.workers())
        assert all(_alive(pid) for pid in workers)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("launcher", ["service", "process"])
def test_launch_function_and_service_launcher(tmp_path, launcher):
    args = ["--launcher", launcher, "--workers", "1" if launcher ==
            "service" else "2", "--log-dir", str(tmp_path)]
    with running("service.py", *args, log_dir=str(tmp_path)) as daemon:
        daemon.wait_ready(count=2 if launcher == "service" else 3)
        pids = [daemon.pid, *daemon.workers()]
        reports = signal_all_and_collect(daemon, pids)
        assert set(reports) == set(pids)
        if launcher == "service":
            assert "Role: single process" in reports[daemon.pid]
            assert "Launcher: ServiceLauncher" in reports[daemon.pid]


def test_respawned_worker_answers_and_parent_counts_restarts(tmp_path):
    with running("service.py", "--launcher", "process", "--workers", "2",
                 "--log-dir", str(tmp_path), log_dir=str(tmp_path)) as daemon:
        daemon.wait_ready(count=3)
        first = set(daemon.workers())
        os.kill(min(first), signal.SIGKILL)

        def respawned() -> set[int]:
            now = set(daemon.workers())  # one snapshot, used twice
            return now - first if len(now) == 2 else set()

        [new] = wait_for(respawned, 30, "a respawned worker", daemon)
        daemon.wait_text("READY", count=4)
        reports = signal_all_and_collect(daemon, [new, daemon.pid])
        assert "Role: worker" in reports[new]
        assert "restarts 1" in reports[daemon.pid]
        assert f"pid {new} index" in reports[daemon.pid]


def test_burst_of_signals_while_workers_fork_and_respawn(tmp_path):
    with running("service.py", "--launcher", "process", "--workers", "3",
                 "--log-dir", str(tmp_path), log_dir=str(tmp_path)) as daemon:
        # From set-up on, signals aimed at the parent and at every child
        # while the launcher forks them, then while it respawns killed ones.
        daemon.wait_text("SET UP")
        deadline = time.monotonic() + 4
        killed: set[int] = set()
        while time.monotonic() < deadline:
            for pid in [daemon.pid, *daemon.workers()]:
                try:
                    os.kill(pid, signal.SIGUSR2)
                except ProcessLookupError:
                    pass
            workers = [pid for pid in daemon.workers() if pid not in killed]
            if len(killed) < 2 and len(workers) == 3 and \
                    time.monotonic() > deadline - 3:
                os.kill(workers[0], signal.SIGTERM)
                killed.add(workers[0])
            time.sleep(0.005)
        assert daemon.alive()
        wait_for(lambda: len(daemon.workers()) == 3, 30, "3 workers", daemon)
        assert len(killed) == 2
        for pid in killed:  # each ended by its SIGTERM, not by a SIGUSR2
            daemon.wait_text(f"Child {pid} exited with status 0")
        assert not re.search(r"Child \d+ killed by signal", daemon.text())


def test_df_gmr_run_enables_a_daemon_without_code(tmp_path):
    import subprocess
    import sys

    from tests.daemons import SCRIPTS
    from tests.daemons import SOURCE_ROOT

    log_dir = tmp_path / "reports"
    env = dict(os.environ, PYTHONPATH=SOURCE_ROOT, PYTHONWARNINGS="ignore")
    env.pop("DF_GMR_ENABLE", None)
    command = [sys.executable, "-m", "df_gmr.cli", "run", "--service-name",
               "nocode", "--log-dir", str(log_dir), "--", sys.executable,
               os.path.join(SCRIPTS, "service.py"), "--no-gmr",
               "--launcher", "process", "--workers", "2"]
    output = tmp_path / "out"
    with open(output, "w") as sink:
        daemon = subprocess.Popen(command, stdout=sink, stderr=sink, env=env,
                                  start_new_session=True)
    try:
        wait_for(lambda: output.read_text().count("READY") >= 3, 30,
                 "3 READY lines")
        import psutil

        pids = [daemon.pid, *(c.pid for c in
                              psutil.Process(daemon.pid).children())]
        for pid in pids:
            os.kill(pid, signal.SIGUSR2)
        wait_for(lambda: log_dir.is_dir() and
                 len(list(log_dir.glob("nocode_gurumeditation_*"))) == 3,
                 30, "3 reports")
        texts = [p.read_text() for p in log_dir.glob("nocode_*")]
        assert sorted(re.search(r"^Role: (.+)$", t, re.M).group(1)
                      for t in texts) == ["parent", "worker", "worker"]
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=15)


def test_installed_df_gmr_costs_nothing_when_not_enabled():
    import subprocess
    import sys

    env = dict(os.environ)
    env.pop("DF_GMR_ENABLE", None)
    result = subprocess.run(
        [sys.executable, "-c",
         "import sys, signal; print('df_gmr' in sys.modules, "
         "signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL)"],
        capture_output=True, text=True, timeout=30, env=env)
    assert result.stdout.split() == ["False", "True"], result.stderr


def test_enable_variable_activates_at_interpreter_start():
    import subprocess
    import sys

    from tests.daemons import SOURCE_ROOT

    env = dict(os.environ, DF_GMR_ENABLE="1", PYTHONPATH=SOURCE_ROOT)
    result = subprocess.run(
        [sys.executable, "-c",
         "import sys, signal; print('df_gmr' in sys.modules, "
         "signal.getsignal(signal.SIGUSR2).__name__)"],
        capture_output=True, text=True, timeout=30, env=env)
    assert result.stdout.split() == ["True", "on_signal"], result.stderr


def test_enabled_service_written_for_oslo_reports_gets_df_gmr(tmp_path):
    with running("oslo_reports_service.py", str(tmp_path),
                 env={"DF_GMR_ENABLE": "1"}, log_dir=str(tmp_path)) as daemon:
        daemon.wait_ready()
        daemon.signal()
        [path] = daemon.wait_reports(1)
        with open(path) as handle:
            text = handle.read()
        assert path.endswith(f"_{daemon.pid}.txt")
        assert re.search(r"^df_gmr: ", text, re.M)
        assert "==== Green Threads" in text
        assert "==== Legacy Section" in text and "legacy" in text
        assert "version = 7.7" in text


def test_other_children_of_the_service_are_left_alone():
    import subprocess
    import sys

    from tests.daemons import SOURCE_ROOT

    script = (
        "import os, subprocess, sys\n"
        "from df_gmr import guru_meditation_report as gmr\n"
        "gmr.TextGuruMeditation.setup_autorun('1', service_name='svc',"
        " log_dir='/tmp')\n"
        "print(os.environ.get('DF_GMR_ENABLE'))\n"
        "print(subprocess.run([sys.executable, '-c', 'import sys, signal;"
        " print(\"df_gmr\" in sys.modules)'], capture_output=True,"
        " text=True).stdout.strip())\n")
    env = dict(os.environ, PYTHONPATH=SOURCE_ROOT, PYTHONWARNINGS="ignore")
    env.pop("DF_GMR_ENABLE", None)
    result = subprocess.run([sys.executable, "-c", script],
                            capture_output=True, text=True, timeout=60,
                            env=env)
    assert result.stdout.split() == ["None", "False"], result.stderr


def test_parent_lists_workers_of_each_service_apart(tmp_path):
    with running("service.py", "--launcher", "process", "--workers", "2",
                 "--two-services", "--log-dir", str(tmp_path),
                 log_dir=str(tmp_path)) as daemon:
        daemon.wait_ready(count=5)
        reports = signal_all_and_collect(daemon, [daemon.pid])
        text = reports[daemon.pid]
        assert "Workers (4):" in text
        rows = re.findall(
            r"^  pid \d+ index (\d) alive, .*restarts (\d), (\w+)$",
            text, re.M)
        assert sorted(rows) == [("0", "0", "OtherWorker"),
                                ("0", "0", "Worker"),
                                ("1", "0", "OtherWorker"),
                                ("1", "0", "Worker")]
