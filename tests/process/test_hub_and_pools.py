"""A real eventlet daemon, a real SIGUSR2: the Eventlet Hub and Green Pools.

The daemon (tests/scripts/hub_pools.py) crowds a GreenPool, connects two
sockets in-process, runs a ThreadGroup timer and, on request, blocks its
hub with the original time.sleep.
"""

from __future__ import annotations

from importlib import resources
import json
import re
import signal
import time

import jsonschema
import pytest

from tests.daemons import running
from tests.daemons import wait_for

LAST_SECTION = "==== Configuration"


def section(report: str, title: str) -> str:
    """Return a section's body, wrapped lines joined by one space."""
    match = re.search(
        rf"^==== {re.escape(title)} +====\n=+\n(.*?)(?:\n=+\n==== |\Z)",
        report, re.MULTILINE | re.DOTALL)
    assert match, f"no {title!r} section in:\n{report}"
    return " ".join(match.group(1).split())


@pytest.fixture(scope="module")
def report() -> str:
    """The daemon's output once its report on one SIGUSR2 is there."""
    with running("hub_pools.py") as daemon:
        daemon.wait_ready()
        daemon.signal(signal.SIGUSR2)
        return daemon.wait_text(LAST_SECTION)


def test_usr2_report_shows_pool_with_waiting_spawners(report):
    text = section(report, "Green Pools")
    assert "size 2, running 2, free 0, waiting 3" in text
    assert re.search(r"waiting for a slot: \d+, \d+, \d+", text)
    assert "in crowd_a_pool" in text


def test_usr2_report_shows_socket_listeners_with_peer_address(report):
    server, client = re.search(r"^SOCKETS (\S+) (\S+)$", report,
                               re.MULTILINE).groups()
    text = section(report, "Eventlet Hub")
    assert f"tcp socket {server} -> {client}" in text
    assert f"tcp socket {client} -> {server}" in text
    assert re.search(r"read fd \d+, greenlet \d+ tcp socket "
                     rf"{re.escape(server)} -> ", text)


def test_usr2_report_shows_thread_group_with_its_looping_call(report):
    text = section(report, "Green Pools")
    assert "ThreadGroup 0x" in text
    assert "timer __main__.heartbeat: every 0.25s" in text
    assert "FixedIntervalLoopingCall 0x" in text
    assert "oslo.service backend: eventlet" in text


def test_usr2_while_the_hub_is_blocked_shows_overdue_timers(tmp_path):
    flag = tmp_path / "unblock"
    with running("hub_pools.py", "--block-until", str(flag)) as daemon:
        daemon.wait_ready()
        daemon.wait_text("BLOCKING")
        time.sleep(1.0)  # let the hub's timers fall due meanwhile
        daemon.signal(signal.SIGUSR2)
        report = daemon.wait_text(LAST_SECTION)
        assert "UNBLOCKED" not in report, "the report came too late"
        flag.touch()
        daemon.wait_text("UNBLOCKED")
        text = section(report, "Eventlet Hub")
        delay = float(re.search(r"overdue \(by up to ([\d.]+)s\)",
                                text).group(1))
        assert delay > 0.5, text
        assert "LATE: timers overdue by up to" in text
        assert "now: a greenthread is running" in text
        assert "in block_the_hub" in text


def test_json_report_has_both_sections_and_fits_the_schema(tmp_path):
    log_dir = tmp_path / "reports"
    with running("hub_pools.py", "--log-dir", str(log_dir), "--format",
                 "json", log_dir=str(log_dir)) as daemon:
        daemon.wait_ready()
        daemon.signal(signal.SIGUSR2)
        [path] = daemon.wait_reports(1)
    with open(path) as handle:
        document = json.load(handle)
    schema = json.loads(resources.files("df_gmr").joinpath(
        "schema/report-v1.json").read_text())
    jsonschema.validate(document, schema)
    sections = {item["name"]: item for item in document["sections"]}
    hub = sections["eventlet_hub"]
    assert hub["error"] is None
    [live] = [entry for entry in hub["data"]["hubs"]
              if entry["status"] == "live" and entry["main_thread"]]
    assert len(live["listeners"]) >= 2
    green_pools = sections["green_pools"]
    assert green_pools["error"] is None
    assert [pool["waiting"] for pool in green_pools["data"]["pools"]
            if pool["size"] == 2] == [3]


def test_each_worker_reports_its_own_pools():
    with running("hub_pools.py", "--launcher", "process") as daemon:
        daemon.wait_ready(count=2)
        worker = int(re.search(r"^READY worker (\d+)$", daemon.text(),
                               re.MULTILINE).group(1))
        daemon.signal(signal.SIGUSR2, pid=worker)
        report = daemon.wait_text(LAST_SECTION)
        assert f"PID: {worker}" in report
        pools = section(report, "Green Pools")
        assert "size 2, running 2, free 0, waiting 3" in pools
        hub = section(report, "Eventlet Hub")
        assert re.search(r"Hub \S+: live thread \d+ \(main thread\)", hub)
        wait_for(daemon.alive, 5, "the daemon still running", daemon)
