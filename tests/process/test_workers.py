"""Every process of an oslo.service daemon answers SIGUSR2 for itself."""

from __future__ import annotations

import os
import re
import signal
import sys
import time

import pytest

from tests.daemons import SCRIPTS
from tests.daemons import child_env
from tests.daemons import run_python
from tests.daemons import running
from tests.daemons import wait_for

FILE_PID = re.compile(r"_gurumeditation_\d{20}_(\d+)\.txt$")
WORKER_ROW = re.compile(r"^  pid (\d+) index (\d+) alive, .*restarts (\d+), "
                        r"(\w+)$", re.M)


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
        index_of = {}  # as each worker states it in its own report
        for pid in workers:
            text = reports[pid]
            assert "Role: worker" in text
            assert "Backend: threading" in text
            assert f"Service parent PID: {daemon.pid}" in text
            index_of[pid] = re.search(r"^Worker index: (\d+)$", text,
                                      re.M).group(1)
        assert sorted(index_of.values()) == ["0", "1"]
        parent = reports[daemon.pid]
        assert "Role: parent" in parent
        # The parent's list agrees with what each worker says of itself.
        assert {int(pid): index for pid, index, _, _ in
                WORKER_ROW.findall(parent)} == index_of
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
        roles = sorted(re.search(r"^Role: (.+)$", text, re.M).group(1)
                       for text in reports.values())
        if launcher == "service":
            assert roles == ["single process"]
            assert "Launcher: ServiceLauncher" in reports[daemon.pid]
        else:
            assert roles == ["parent", "worker", "worker"]
            assert "Launcher: ProcessLauncher" in reports[daemon.pid]
        # Stopped by its SIGTERM, not killed once that was waited out.
        assert daemon.stop() == 0


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


def test_a_sigterm_right_after_a_worker_forked_still_stops_it(tmp_path):
    # oslo.service sets a worker's handlers, then gives it a new hub: a
    # SIGTERM in between (or before) spawned its call on the hub the fork
    # copied, which was then dropped, and the worker ran on, its SIGTERM
    # lost (7 of 10 without df_gmr, 10 of 10 with it, before df_gmr held
    # those signals until the worker's hub exists).  Each round signals a
    # worker the moment it is seen, the respawned one next.
    with running("service.py", "--launcher", "process", "--workers", "1",
                 "--log-dir", str(tmp_path), log_dir=str(tmp_path)) as daemon:
        daemon.wait_text("SET UP")
        seen: set[int] = set()
        for _ in range(4):
            deadline = time.monotonic() + 30
            fresh: list[int] = []
            while not fresh:
                assert time.monotonic() < deadline, "no new worker"
                fresh = [pid for pid in daemon.workers() if pid not in seen]
            os.kill(fresh[0], signal.SIGTERM)
            seen.add(fresh[0])
            daemon.wait_text(f"Child {fresh[0]} exited with status 0",
                             timeout=15)


@pytest.mark.parametrize("mode", ["plain", "other", "subclass", "worker"])
def test_only_a_worker_start_holds_the_hub_signals_and_lets_them_in(mode):
    # plain: a fork of the service's own holds nothing; other: nor one
    # in another greenthread while the launcher starts a worker; subclass: a
    # launcher whose _child_process is its own would never let them in
    # (so none are held); worker: let in once the worker runs.
    done = run_python(os.path.join(SCRIPTS, "fork_hold.py"), mode)
    masks = re.findall(r"^MASK (\w+) (.*)$", done.stdout, re.M)
    assert len(masks) == 2 and "DONE" in done.stdout, done.stdout
    assert all(held == "[]" for _, held in masks), done.stdout


def test_df_gmr_run_enables_a_daemon_without_code(tmp_path):
    log_dir = tmp_path / "reports"
    with running("-m", "df_gmr.cli", "run", "--service-name", "nocode",
                 "--log-dir", str(log_dir), "--", sys.executable,
                 os.path.join(SCRIPTS, "service.py"), "--no-gmr",
                 "--launcher", "process", "--workers", "2",
                 log_dir=str(log_dir)) as daemon:
        daemon.wait_ready(count=3)
        pids = [daemon.pid, *daemon.workers()]
        reports = signal_all_and_collect(daemon, pids)
        assert set(reports) == set(pids)
        assert all(os.path.basename(path).startswith("nocode_")
                   for path in daemon.reports())
        roles = {pid: re.search(r"^Role: (.+)$", text, re.M).group(1)
                 for pid, text in reports.items()}
        assert roles.pop(daemon.pid) == "parent"
        assert list(roles.values()) == ["worker", "worker"]


ACTIVATION_PROBE = """\
import os, signal, site, sys
print(any(os.path.isfile(os.path.join(directory, "df_gmr_autostart.pth"))
          for directory in site.getsitepackages()))
print(sorted(name for name in sys.modules if name.startswith("df_gmr")))
print(signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL)
"""


def test_installed_df_gmr_costs_nothing_when_not_enabled():
    # First, that df_gmr is installed here with its activation hook, and
    # the hook works: DF_GMR_ENABLE=1 activates it at interpreter start.
    enabled = run_python(ACTIVATION_PROBE, env=child_env(DF_GMR_ENABLE="1"))
    installed, imported, untouched = enabled.stdout.splitlines()
    assert installed == "True", enabled.stdout
    assert "df_gmr.autostart" in imported, enabled.stdout
    assert untouched == "False", enabled.stdout
    # Then, without the variable: nothing of df_gmr imported, no handler.
    disabled = run_python(ACTIVATION_PROBE)
    assert disabled.stdout.splitlines() == ["True", "[]", "True"], \
        disabled.stdout


def test_enable_variable_activates_at_interpreter_start(tmp_path):
    # The program itself knows nothing of df_gmr: its SIGUSR2 would be
    # fatal, unless the activation hook set df_gmr up before it ran.
    program = (
        "import glob, os, signal, sys, time\n"
        "print(os.getpid(), 'df_gmr' in sys.modules)\n"
        "os.kill(os.getpid(), signal.SIGUSR2)\n"
        "deadline = time.monotonic() + 20\n"
        "while not glob.glob(os.path.join(sys.argv[1], '*.txt')):\n"
        "    assert time.monotonic() < deadline, 'no report'\n"
        "    time.sleep(0.05)\n"
        "print('reported')\n")
    result = run_python(program, str(tmp_path), env=child_env(
        DF_GMR_ENABLE="1", DF_GMR_SERVICE_NAME="bare",
        DF_GMR_LOG_DIR=str(tmp_path)))
    pid, imported, reported = result.stdout.split()
    assert (imported, reported) == ("True", "reported")
    [path] = tmp_path.glob("bare_gurumeditation_*.txt")
    assert path.name.endswith(f"_{pid}.txt")
    assert "Trigger: signal SIGUSR2" in path.read_text()


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
    script = (
        "import os, subprocess, sys\n"
        "from df_gmr import guru_meditation_report as gmr\n"
        "gmr.TextGuruMeditation.setup_autorun('1', service_name='svc')\n"
        "print(os.environ.get('DF_GMR_ENABLE'))\n"
        "print(subprocess.run([sys.executable, '-c', 'import sys, signal;"
        " print(\"df_gmr\" in sys.modules)'], capture_output=True,"
        " text=True, timeout=30).stdout.strip())\n")
    result = run_python(script)
    assert result.stdout.split() == ["None", "False"]


def test_parent_lists_workers_of_each_service_apart(tmp_path):
    with running("service.py", "--launcher", "process", "--workers", "2",
                 "--two-services", "--log-dir", str(tmp_path),
                 log_dir=str(tmp_path)) as daemon:
        daemon.wait_ready(count=5)
        reports = signal_all_and_collect(daemon, [daemon.pid])
        text = reports[daemon.pid]
        assert "Workers (4):" in text
        rows = WORKER_ROW.findall(text)
        assert sorted(row[1:] for row in rows) == [
            ("0", "0", "OtherWorker"), ("0", "0", "Worker"),
            ("1", "0", "OtherWorker"), ("1", "0", "Worker")]
        assert sorted(int(row[0]) for row in rows) == daemon.workers()


@pytest.mark.parametrize("point", ["start", "poke", "entry"])
def test_sigterm_inside_the_handler_still_stops_an_idle_worker(tmp_path,
                                                               point):
    # A worker whose hub has nothing to do sleeps a minute in its wait;
    # oslo.service's SIGTERM handler wakes it only when it interrupts that
    # wait itself.  Run inside df_gmr's handler (the signal came in while
    # it ran: a burst of SIGUSR2 makes this happen by chance), it cannot;
    # df_gmr's handler must then end the wait in its place.
    with running("nested_signal.py", str(tmp_path), point,
                 log_dir=str(tmp_path)) as daemon:
        daemon.wait_ready(count=2)
        (worker,) = daemon.workers()
        reports = len(daemon.reports())
        daemon.signal(pid=worker)
        daemon.wait_text(f"Child {worker} exited with status 0", timeout=15)
        # The report asked for before the SIGTERM is not lost.
        daemon.wait_reports(reports + 1)


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("scene", ["threading_service.py",
                                   "cotyledon_direct.py"])
def test_report_asked_just_before_sigterm_survives_cotyledon_exit(
        tmp_path, scene, method):
    # A cotyledon worker (oslo.service's threading backend, or cotyledon
    # used directly) ends its SIGTERM with os._exit as soon as its
    # service's terminate returns: no atexit function runs.  The worker
    # asks itself for a report, then for its end, a few microseconds apart.
    env = {"DF_GMR_ENABLE": "1", "DF_GMR_SERVICE_NAME": "notifier",
           "DF_GMR_LOG_DIR": str(tmp_path)} \
        if scene == "cotyledon_direct.py" else None
    with running(scene, method, "1", str(tmp_path), "leave", env=env,
                 log_dir=str(tmp_path)) as daemon:
        text = daemon.wait_text("LEAVING worker", timeout=60)
        worker = int(re.search(r"^LEAVING worker (\d+)$", text, re.M)[1])
        # Stopped by its SIGTERM (not killed by the signals).
        daemon.wait_text(f"Child {worker} exited with status 0")
        # Nothing writes for the worker once it is gone: its report is
        # there now or never.
        reports = by_pid(daemon.reports())
        assert worker in reports, sorted(reports)
        assert "Trigger: signal SIGUSR2" in reports[worker]
        assert "Role: worker" in reports[worker]
        # Its successor (which leaves nothing) came up.
        daemon.wait_ready(count=3, timeout=60)
