"""A small eventlet oslo.service daemon to try df_gmr on.

``python -m df_gmr.demo serve --workers 2`` runs the daemon until SIGTERM:
a parent and N forked workers, each with a few greenthreads (an Event
waiter, a sleeper, a ticker).  ``python -m df_gmr.demo tour`` starts that
daemon, sends SIGUSR2 to the parent and to each worker, prints where each
report went and the head of one, then stops the daemon.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

READY = "df_gmr demo ready"
#: ``<service>_gurumeditation_<stamp>_<pid>[-n].txt``
REPORT_NAME = re.compile(r"^[^.].*_gurumeditation_\d+_(\d+)(?:-\d+)?\.txt$")


def serve(workers: int, log_dir: str | None) -> None:
    """Run the demo daemon (monkey-patches eventlet first)."""
    import eventlet

    eventlet.monkey_patch()
    from oslo_config import cfg
    from oslo_service import service

    from df_gmr import guru_meditation_report as gmr
    from df_gmr import opts as gmr_opts

    conf = cfg.ConfigOpts()
    gmr_opts.set_defaults(conf)
    conf([], project="df-gmr-demo")
    if log_dir:
        conf.set_override("log_dir", log_dir, group="oslo_reports")
    gmr.TextGuruMeditation.register_section(
        "Demo", lambda: {"workers": workers, "purpose": "df_gmr demo"})
    gmr.TextGuruMeditation.setup_autorun(
        "0.1.0", service_name="df-gmr-demo", conf=conf)

    class DemoService(service.Service):  # type: ignore[misc]
        def start(self) -> None:
            super().start()
            done = eventlet.event.Event()
            self.tg.add_thread(done.wait)
            self.tg.add_thread(eventlet.sleep, 3600)
            self.tg.add_timer(1.0, _tick)
            print(f"{READY}: worker {os.getpid()}", flush=True)

    launcher = service.ProcessLauncher(conf, restart_method="mutate")
    launcher.launch_service(DemoService(), workers=workers)
    print(f"{READY}: parent {os.getpid()}", flush=True)
    launcher.wait()


def _tick() -> None:
    pass


def tour(workers: int, timeout: float = 30.0) -> int:
    """Start the demo daemon, signal each process, show the reports."""
    import psutil

    log_dir = tempfile.mkdtemp(prefix="df-gmr-demo-")
    command = [sys.executable, "-m", "df_gmr.demo", "serve",
               "--workers", str(workers), "--log-dir", log_dir]
    print(f"$ {' '.join(command)}")
    # In the demo's directory: ``-m`` puts the working directory first on
    # the path, and from a checkout (the README's `pip install .` is run
    # in one) the daemon would import the source tree, not the df_gmr
    # installed and running this tour (its C module is not built there).
    daemon = subprocess.Popen(command, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              cwd=log_dir, env=_same_df_gmr())
    try:
        parent = psutil.Process(daemon.pid)
        deadline = time.monotonic() + timeout
        while len(_ready_workers(parent)) < workers:
            if time.monotonic() > deadline or daemon.poll() is not None:
                print("the demo daemon did not start its workers in time")
                return 1
            time.sleep(0.1)
        time.sleep(0.5)  # let the workers reach their wait
        pids = [daemon.pid, *_ready_workers(parent)]
        for pid in pids:
            role = "parent" if pid == daemon.pid else "worker"
            print(f"kill -USR2 {pid}   ({role})")
            os.kill(pid, signal.SIGUSR2)
        reports = _wait_reports(log_dir, pids, deadline)
        for pid in pids:
            print(f"  report of {pid}: {reports.get(pid, 'not written')}")
        if reports:
            first = reports[pids[-1]] if pids[-1] in reports else next(
                iter(reports.values()))
            print(f"\nhead of {first}:")
            with open(first, encoding="utf-8") as handle:
                for _, line in zip(range(40), handle, strict=False):
                    print("  " + line.rstrip())
        return 0 if len(reports) == len(pids) else 1
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def _same_df_gmr() -> dict[str, str]:
    """Return an environment whose Python imports this df_gmr.

    An installed one is found from any directory; one run from a tree
    that is not installed (``python -m df_gmr.cli demo`` in a checkout)
    is put on PYTHONPATH.  A site directory is never put there: it would
    come before the standard library.
    """
    import site

    import df_gmr

    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(df_gmr.__file__)))
    sites = {os.path.abspath(path) for path in (
        *getattr(site, "getsitepackages", list)(),
        getattr(site, "getusersitepackages", str)())}
    if root not in sites:
        env["PYTHONPATH"] = os.pathsep.join(
            [root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _ready_workers(parent: Any) -> list[int]:
    try:
        return [child.pid for child in parent.children()]
    except Exception:
        return []


def _wait_reports(log_dir: str, pids: list[int], deadline: float
                  ) -> dict[int, str]:
    found: dict[int, str] = {}
    while time.monotonic() < deadline and len(found) < len(pids):
        for name in os.listdir(log_dir):
            match = REPORT_NAME.match(name)
            if match:
                found.setdefault(int(match.group(1)),
                                 os.path.join(log_dir, name))
        time.sleep(0.1)
    return found


def main(argv: list[str] | None = None) -> int:
    """Run ``serve`` or ``tour`` (the default)."""
    parser = argparse.ArgumentParser(prog="python -m df_gmr.demo")
    parser.add_argument("mode", nargs="?", choices=("tour", "serve"),
                        default="tour")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--log-dir")
    args = parser.parse_args(argv)
    if args.mode == "serve":
        serve(args.workers, args.log_dir)
        return 0
    return tour(args.workers)


if __name__ == "__main__":
    sys.exit(main())
