"""Report files: private, complete, never overwritten, never via symlinks."""

from __future__ import annotations

import datetime
import os
import stat

import pytest

from df_gmr import output
from df_gmr import streams


@pytest.fixture(autouse=True)
def captured_stderr(capfd):
    """stderr is the stream of set-up: here, the one capfd put in place."""
    streams.stderr.capture()

NOW = datetime.datetime(2026, 11, 25, 9, 0, 0, 123456,
                        tzinfo=datetime.timezone.utc)


def test_file_name_format():
    assert output.file_name("nova-compute", 42, "txt", NOW) == (
        "nova-compute_gurumeditation_20261125090000123456_42.txt")


def test_new_file_is_private_and_log_dir_created_private(tmp_path):
    log_dir = tmp_path / "new"
    path = output.write_to_log_dir(str(log_dir), "r.txt", "hello")
    with open(path) as handle:
        assert handle.read() == "hello"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(log_dir).st_mode) == 0o700
    assert os.listdir(log_dir) == ["r.txt"]


def test_existing_file_is_never_overwritten(tmp_path):
    (tmp_path / "r.txt").write_text("first")
    path = output.write_to_log_dir(str(tmp_path), "r.txt", "second")
    assert (tmp_path / "r.txt").read_text() == "first"
    assert path.endswith("r-1.txt")
    with open(path) as handle:
        assert handle.read() == "second"


def test_planted_symlink_is_not_followed(tmp_path):
    target = tmp_path / "victim"
    target.write_text("precious")
    (tmp_path / "r.txt").symlink_to(target)
    output.write_to_log_dir(str(tmp_path), "r.txt", "report")
    assert target.read_text() == "precious"


def test_deliver_falls_back_to_stderr_with_reason(tmp_path, capfd):
    blocker = tmp_path / "file"
    blocker.write_text("")
    where = output.deliver("REPORT\n", str(blocker / "sub"), "r.txt")
    assert where == "stderr"
    err = capfd.readouterr().err
    assert err.startswith(f"df_gmr: cannot write report r.txt to "
                          f"{blocker / 'sub'}: ")
    assert err.endswith("REPORT\n")


@pytest.mark.parametrize("size", [10, 200_000])
def test_stderr_gets_the_whole_text(capfd, size):
    # Recorded again right here: once, in a full run, the stream recorded
    # by the fixture was no longer fd 2 when the test ran (cause unknown:
    # pytest's capture between its setup and call phases).
    streams.stderr.capture()
    output.write_to_stderr("x" * size)
    assert capfd.readouterr().err == "x" * size


def test_vanished_log_dir_is_created_again(tmp_path):
    log_dir = tmp_path / "reports"
    output.write_to_log_dir(str(log_dir), "a.txt", "one")
    for path in log_dir.iterdir():
        path.unlink()
    log_dir.rmdir()
    path = output.write_to_log_dir(str(log_dir), "b.txt", "two")
    with open(path) as handle:
        assert handle.read() == "two"
    assert stat.S_IMODE(os.stat(log_dir).st_mode) == 0o700
