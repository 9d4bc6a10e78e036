"""The Processes section's /proc reader, against psutil's view."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
import os
import subprocess
import sys
import time

import psutil
import pytest

from df_gmr import procfs
from df_gmr import redact
from df_gmr.sections import processes

pytestmark = pytest.mark.skipif(not procfs.available(),
                                reason="no /proc on this system")


@pytest.fixture
def family() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two children of this process, one with a child of its own."""
    started = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)",
                          "--password", "hunter2"]),
        subprocess.Popen(["sh", "-c", "sleep 30 & wait"]),
    ]
    def ready() -> bool:  # all three asleep, the grandchild past its exec
        descendants = psutil.Process().children(recursive=True)
        try:
            return len(descendants) == 3 and ["sleep", "30"] in [
                process.cmdline() for process in descendants] and all(
                process.status() == psutil.STATUS_SLEEPING
                for process in descendants)
        except psutil.Error:
            return False

    deadline = time.monotonic() + 10
    while not ready():
        assert time.monotonic() < deadline, "the children did not start"
        time.sleep(0.02)
    yield started
    for child in started:
        for grandchild in psutil.Process(child.pid).children(recursive=True):
            grandchild.kill()
        child.kill()
        child.wait(timeout=10)


def test_the_same_facts_as_psutil(family: list[subprocess.Popen[bytes]]
                                  ) -> None:
    read = processes.collect(None)  # type: ignore[arg-type]
    me = psutil.Process()
    expected = {p.pid: p for p in [me, *me.children(recursive=True)]}
    described = [read["process"], *read["children"]]
    assert sorted(entry["pid"] for entry in described) == sorted(expected)
    for entry in described:
        process = expected[entry["pid"]]
        seen = processes._describe_psutil(process)
        for key in ("pid", "ppid", "user", "status", "command_line",
                    "threads"):
            assert entry[key] == seen[key], (key, entry, seen)
        # psutil's start counts from /proc/stat's whole-second boot time:
        # up to a second earlier than ours
        ours, theirs = (calendar.timegm(time.strptime(
            started, "%Y-%m-%dT%H:%M:%SZ")) for started in (
            entry["started_at"], seen["started_at"]))
        assert 0 <= ours - theirs <= 1, (entry, seen)
        # what changes by itself between two readings: close, not equal
        assert abs(entry["rss_bytes"] - seen["rss_bytes"]) < 8 << 20
        assert abs(entry["cpu_user_seconds"]
                   - seen["cpu_user_seconds"]) < 0.5
    # our own count leaves out the descriptors the reading holds open;
    # psutil's counts the one its own listing holds
    assert read["process"]["open_fds"] == me.num_fds() - 1
    python_child = next(entry for entry in read["children"]
                        if entry["pid"] == family[0].pid)
    assert "hunter2" not in " ".join(python_child["command_line"])
    assert redact.MASK in python_child["command_line"]


def test_a_pid_that_is_not_the_named_parents_child_is_not_described(
        family: list[subprocess.Popen[bytes]]) -> None:
    child = family[0].pid
    assert procfs.describe(child, list, os.getpid()).facts["pid"] == child
    with pytest.raises(procfs.ProcessGone, match="no longer"):
        procfs.describe(child, list, os.getppid())


def test_a_process_that_exited_is_gone() -> None:
    done = subprocess.Popen(["true"])
    done.wait(timeout=10)
    with pytest.raises(procfs.ProcessGone):
        procfs.describe(done.pid, list)


@pytest.mark.parametrize(("raw", "expected"), [
    (b"nova-api\0--config-file\0a b.conf\0", ["nova-api", "--config-file",
                                              "a b.conf"]),
    # setproctitle: one argument with blanks, NUL-padded or not
    (b"nova-conductor: worker --password s\0\0\0", [
        "nova-conductor: worker --password s"]),
    (b"svc: master --password s", ["svc:", "master", "--password", "s"]),
    (b"", []),
])
def test_command_lines_split_as_psutil_splits_them(
        raw: bytes, expected: list[str]) -> None:
    assert procfs._arguments(raw) == expected


def test_without_proc_the_section_reads_psutil(
        monkeypatch: pytest.MonkeyPatch,
        family: list[subprocess.Popen[bytes]]) -> None:
    monkeypatch.setattr(procfs, "available", lambda: False)
    read = processes.collect(None)  # type: ignore[arg-type]
    assert read["process"]["pid"] == os.getpid()
    assert sorted(entry["pid"] for entry in read["children"]) == sorted(
        p.pid for p in psutil.Process().children(recursive=True))


def test_a_kernel_without_children_lists_falls_back_to_psutil(
        monkeypatch: pytest.MonkeyPatch,
        family: list[subprocess.Popen[bytes]]) -> None:
    read = procfs._read

    def no_children_file(directory: int, name: str) -> bytes:
        if name.endswith("/children"):  # no CONFIG_PROC_CHILDREN
            raise FileNotFoundError(name)
        return read(directory, name)

    monkeypatch.setattr(procfs, "_read", no_children_file)
    assert procfs.describe(os.getpid(), list, myself=True).children is None
    found = processes.collect(None)  # type: ignore[arg-type]
    assert sorted(entry["pid"] for entry in found["children"]) == sorted(
        p.pid for p in psutil.Process().children(recursive=True))


@pytest.mark.skipif(not os.path.exists("/proc/uptime"), reason="no /proc")
def test_boot_time_is_precise_not_whole_seconds():
    # /proc/stat's btime is whole seconds: start times computed from it
    # came out up to 1 s early (a worker "started" a second before its
    # fork); the boot clock gives the boot time to its precision.
    with open("/proc/uptime") as handle:
        uptime = float(handle.read().split()[0])  # hundredths of a second
    assert abs(procfs._boot_time() - (time.time() - uptime)) < 0.05
