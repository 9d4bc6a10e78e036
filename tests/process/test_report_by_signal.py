"""A real daemon, a real SIGUSR2, the report it wrote."""

from __future__ import annotations

from importlib import resources
import json
import os
import re
import signal
import stat
import types

import jsonschema
import pytest

from tests.daemons import running

SECTION_TITLES = ["Findings", "Package", "Threads", "Green Threads",
                  "Eventlet Hub", "Green Pools", "Thread Pools", "Processes",
                  "Configuration", "Extra"]
FILE_NAME = re.compile(r"^testsvc_gurumeditation_\d{20}_(\d+)\.(txt|json)$")


def schema():
    text = resources.files("df_gmr").joinpath(
        "schema/report-v1.json").read_text()
    return json.loads(text)


def titles(report_text: str) -> list[str]:
    return re.findall(r"^==== (.+?) +====$", report_text, re.MULTILINE)[1:]


@pytest.fixture(scope="module")
def stderr_report() -> types.SimpleNamespace:
    """One SIGUSR2 to a single-process service; its report on stderr.

    Read by several tests, each for its part: ``pid``, ``text`` (the
    output once the report is there) and ``alive`` (right after it).
    """
    with running("service.py", "--event-waiters", "7") as daemon:
        daemon.wait_ready()
        daemon.signal(signal.SIGUSR2)
        text = daemon.wait_text("==== Extra")
        return types.SimpleNamespace(pid=daemon.pid, text=text,
                                     alive=daemon.alive())


def test_usr2_writes_report_to_stderr_and_daemon_lives(stderr_report):
    text = stderr_report.text
    assert titles(text) == SECTION_TITLES
    assert f"PID: {stderr_report.pid}" in text
    assert "Trigger: signal SIGUSR2" in text
    assert "version = 9.9.9" in text
    assert "extra text" in text
    assert stderr_report.alive


def test_report_masks_secret_and_url_password(stderr_report):
    text = stderr_report.text
    assert "HUNTER2" not in text and "SUPERSECRET" not in text
    assert "admin_password = ***" in text
    assert "connection = mysql+pymysql://nova:***@db/nova" in text


def test_green_threads_groups_identical_waiters(stderr_report):
    assert "7 x greenthread, parked, waiting: event" in stderr_report.text


def test_log_dir_gets_one_private_complete_file(tmp_path):
    log_dir = tmp_path / "reports"
    with running("service.py", "--log-dir", str(log_dir),
                 log_dir=str(log_dir)) as daemon:
        daemon.wait_ready()
        daemon.signal()
        [path] = daemon.wait_reports(1)
        name = os.path.basename(path)
        match = FILE_NAME.match(name)
        assert match, name
        assert int(match.group(1)) == daemon.pid
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(log_dir).st_mode) == 0o700
        with open(path) as handle:
            assert titles(handle.read()) == SECTION_TITLES
        assert "==== Package" not in daemon.text()


def test_two_quick_signals_never_overwrite(tmp_path):
    with running("service.py", "--log-dir", str(tmp_path),
                 log_dir=str(tmp_path)) as daemon:
        daemon.wait_ready()
        daemon.signal()
        [first] = daemon.wait_reports(1)
        with open(first) as handle:
            first_text = handle.read()
        daemon.signal()
        paths = daemon.wait_reports(2)
        assert len(paths) == 2, paths
        with open(first) as handle:
            assert handle.read() == first_text  # left as it was
        [second] = set(paths) - {first}
        with open(second) as handle:
            second_text = handle.read()
        assert titles(second_text) == SECTION_TITLES  # complete
        assert second_text != first_text


def test_json_report_validates_against_shipped_schema(tmp_path):
    with running("service.py", "--log-dir", str(tmp_path), "--format",
                 "json", log_dir=str(tmp_path)) as daemon:
        daemon.wait_ready()
        daemon.signal()
        [path] = daemon.wait_reports(1)
        assert path.endswith(".json")
        with open(path) as handle:
            document = json.load(handle)
        jsonschema.validate(document, schema())
        names = [section["name"] for section in document["sections"]]
        assert names == ["package", "threads", "green_threads",
                         "eventlet_hub", "green_pools", "thread_pools",
                         "processes", "configuration", "extra"]
        assert document["header"]["pid"] == daemon.pid


def test_broken_section_is_reported_in_place(tmp_path):
    with running("service.py", "--broken-section") as daemon:
        daemon.wait_ready()
        daemon.signal()
        text = daemon.wait_text("==== Broken")
        broken = text.split("==== Broken", 1)[1]
        assert "Section failed: Broken" in broken
        assert "this section is broken on purpose" in broken
        assert titles(text) == [*SECTION_TITLES, "Broken"]
        assert daemon.alive()


def test_unreadable_option_shows_its_error_and_the_rest(tmp_path):
    config = tmp_path / "bad.conf"
    config.write_text("[DEFAULT]\nbad_number = not-a-number\n")
    with running("service.py", "--config-file", str(config)) as daemon:
        daemon.wait_ready()
        daemon.signal()
        text = daemon.wait_text("==== Extra")
        assert re.search(r"bad_number = <unreadable: .*not-a-number", text)
        assert "admin_password = ***" in text


def test_unwritable_log_dir_falls_back_to_stderr(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    log_dir = blocker / "reports"
    with running("service.py", "--log-dir", str(log_dir)) as daemon:
        daemon.wait_ready()
        daemon.signal()
        text = daemon.wait_text("==== Extra")
        assert re.search(rf"df_gmr: cannot write report testsvc_\S+ to "
                         rf"{re.escape(str(log_dir))}: Not a directory; "
                         "writing it to stderr instead", text)
        assert daemon.alive()


def test_every_process_launcher_worker_answers_with_its_own_file(tmp_path):
    with running("service.py", "--launcher", "process", "--workers", "2",
                 "--log-dir", str(tmp_path), log_dir=str(tmp_path)) as daemon:
        daemon.wait_ready(count=3)
        workers = daemon.workers()
        assert len(workers) == 2
        for pid in [daemon.pid, *workers]:
            daemon.signal(pid=pid)
        paths = daemon.wait_reports(3)
        by_pid = {int(FILE_NAME.match(os.path.basename(p)).group(1)): p
                  for p in paths}
        assert set(by_pid) == {daemon.pid, *workers}
        for pid in workers:
            with open(by_pid[pid]) as handle:
                text = handle.read()
            assert "Role: worker" in text
            assert f"Service parent PID: {daemon.pid}" in text
        with open(by_pid[daemon.pid]) as handle:
            parent = handle.read()
        assert "Role: parent" in parent
        assert "Workers (2):" in parent
        assert daemon.workers() == workers
