"""What post-config writes turns reports on in a real multi-worker daemon.

The environment comes from the systemd drop-in post-config wrote for the
unit and the options from the config file it edited; the daemon itself
has no df_gmr code, as an OpenStack service under DevStack.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
import re
import signal

import pytest

from tests.daemons import running
from tests.daemons import wait_for
from tests.devstack.harness import Devstack
from tests.devstack.harness import environment_lines

DAEMON = str(Path(__file__).resolve().parent / "gmr_daemon.py")
WORKERS = 2
TIMEOUT = 20.0


@pytest.mark.skipif(
    importlib.util.find_spec("df_gmr.autostart") is None,
    reason="df_gmr.autostart (activation by DF_GMR_ENABLE) is not there yet")
@pytest.mark.parametrize("log_dir_from", ["environment", "config file"])
def test_every_process_of_a_service_writes_a_report_on_usr2(
        devstack: Devstack, log_dir_from: str) -> None:
    nova_conf = devstack.config_file("nova/nova.conf", "[DEFAULT]\n")
    log_dir = devstack.root / "reports"
    devstack.variables.update(ENABLED_SERVICES="n-sch",
                              NOVA_CONF=str(nova_conf),
                              DF_GMR_LOG_DIR=str(log_dir))
    devstack.run("stack", "post-config")
    environment = environment_lines(devstack.dropin("n-sch"))
    if log_dir_from == "config file":
        # [oslo_reports] log_dir, which post-config wrote, alone.
        del environment["DF_GMR_LOG_DIR"]

    with running(DAEMON, "--config-file", str(nova_conf),
                 "--workers", str(WORKERS), env=environment,
                 log_dir=str(log_dir)) as daemon:
        daemon.wait_ready(count=WORKERS + 1, timeout=TIMEOUT)
        workers = wait_for(lambda: len(daemon.workers()) == WORKERS
                           and daemon.workers(), TIMEOUT,
                           f"{WORKERS} workers", daemon)
        pids = [daemon.pid, *workers]
        for pid in pids:
            os.kill(pid, signal.SIGUSR2)

        def reported_pids() -> set[int]:
            return {int(re.search(r"_(\d+)\.txt$", path).group(1))
                    for path in daemon.reports()
                    if re.search(r"_(\d+)\.txt$", path)}

        wait_for(lambda: reported_pids() >= set(pids), TIMEOUT,
                 f"a report from each of {pids}", daemon)
        names = [os.path.basename(path) for path in daemon.reports()]
        assert all(name.startswith("n-sch_gurumeditation_")
                   for name in names), names
        assert daemon.alive()
