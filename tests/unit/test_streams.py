"""streams.Stderr: the stderr of set-up, and the C-level dump's descriptor.

Each test puts what it needs on this process's fd 2 for its duration
(restored afterwards) and uses a fresh Stderr, never the module's own.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import fcntl
import os
import resource
import select
import socket

import pytest

from df_gmr import streams


@contextlib.contextmanager
def on_fd2(fd: int | None) -> Iterator[None]:
    """Make fd 2 a duplicate of ``fd`` (None: closed) for the block."""
    saved = os.dup(2)
    try:
        if fd is None:
            os.close(2)
        else:
            os.dup2(fd, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def identity(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


@pytest.fixture
def log_file(tmp_path):
    with open(tmp_path / "stderr.log", "w+b") as handle:
        yield handle


@pytest.fixture
def other_file(tmp_path):
    with open(tmp_path / "other", "w+b") as handle:
        yield handle


@pytest.fixture
def pipe():
    read_end, write_end = os.pipe()
    yield read_end, write_end
    for fd in (read_end, write_end):
        with contextlib.suppress(OSError):
            os.close(fd)


def contents(handle) -> bytes:
    handle.flush()
    with open(handle.name, "rb") as again:
        return again.read()


# Identity.


def test_capture_records_the_stream_on_fd_2(log_file):
    stderr = streams.Stderr()
    with on_fd2(log_file.fileno()):
        stderr.capture()
        assert stderr.captured
        assert stderr.identity == identity(log_file.fileno())
        assert stderr.current()
        stderr.write(b"one line\n")
    assert contents(log_file) == b"one line\n"


def test_current_captures_at_first_use():
    stderr = streams.Stderr()
    assert not stderr.captured
    assert stderr.current()
    assert stderr.captured
    assert stderr.identity == identity(2)


def test_another_stream_on_fd_2_is_never_written(log_file, other_file):
    stderr = streams.Stderr()
    with on_fd2(log_file.fileno()):
        stderr.capture()
    with on_fd2(other_file.fileno()):
        assert not stderr.current()
        with pytest.raises(OSError, match="no longer the stream it was at "
                                          "set-up"):
            stderr.write(b"a report\n")
    assert contents(other_file) == b""
    assert contents(log_file) == b""


def test_closed_at_set_up_then_reused_number_is_never_written(tmp_path):
    stderr = streams.Stderr()
    with on_fd2(None):
        stderr.capture()
        assert stderr.identity is None
        assert stderr.dump_fd() is None
        with open(tmp_path / "database", "wb") as database:
            assert database.fileno() == 2  # the lowest free number
            assert not stderr.current()
            with pytest.raises(OSError, match="closed at set-up"):
                stderr.write(b"a report\n")
            assert stderr.dump_fd() is None
        assert (tmp_path / "database").read_bytes() == b""


def test_the_stream_of_set_up_is_found_again_through_a_duplicate(log_file):
    stderr = streams.Stderr()
    with on_fd2(log_file.fileno()):
        stderr.capture()
    duplicate = os.dup(log_file.fileno())  # e.g. restored by the service
    try:
        with on_fd2(duplicate):
            assert stderr.current()
    finally:
        os.close(duplicate)


def test_fd_2_that_is_no_output_stream_at_set_up_counts_as_closed():
    poller = select.epoll()
    try:
        stderr = streams.Stderr()
        with on_fd2(poller.fileno()):
            stderr.capture()
            assert stderr.identity is None
            assert stderr.dump_fd() is None
    finally:
        poller.close()


# The C-level dump's descriptor: fd 2 itself, or a pipe's high reopening.


def test_dump_goes_to_fd_2_itself_for_a_regular_file(log_file):
    stderr = streams.Stderr()
    with on_fd2(log_file.fileno()):
        stderr.capture()
        assert stderr.dump_fd() == 2  # the service's own file offset
        assert stderr.dump_fd_is_current()


def test_dump_goes_to_fd_2_itself_for_a_terminal_or_dev_null():
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        stderr = streams.Stderr()
        with on_fd2(null):
            stderr.capture()
            assert stderr.dump_fd() == 2
    finally:
        os.close(null)


def test_dump_goes_to_fd_2_itself_for_a_socket():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        stderr = streams.Stderr()
        with on_fd2(theirs.fileno()):
            stderr.capture()
            assert stderr.dump_fd() == 2


def test_dump_for_a_pipe_is_a_high_non_blocking_reopening(pipe):
    read_end, write_end = pipe
    stderr = streams.Stderr()
    with on_fd2(write_end):
        stderr.capture()
        dump = stderr.dump_fd()
        try:
            assert dump is not None and 2 < dump <= streams.HIGH_FD
            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
            if soft > streams.HIGH_FD:
                assert dump >= streams.HIGH_FD - 31
            assert identity(dump) == identity(write_end)
            assert fcntl.fcntl(dump, fcntl.F_GETFL) & os.O_NONBLOCK
            assert fcntl.fcntl(dump, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
            # The service's own stderr keeps blocking.
            assert not fcntl.fcntl(2, fcntl.F_GETFL) & os.O_NONBLOCK
            assert stderr.dump_fd() == dump  # kept
            assert stderr.dump_fd_is_current()
            os.write(dump, b"dumped\n")
            assert os.read(read_end, 100) == b"dumped\n"
            # A full pipe nobody reads loses the dump, never hangs.
            with pytest.raises(BlockingIOError):
                for _ in range(1 << 16):
                    os.write(dump, b"x" * 4096)
        finally:
            stderr.forget_dump_fd()
        assert not is_open(dump)  # our own reopening: closed


def test_dump_for_a_pipe_stays_under_a_low_descriptor_limit(pipe):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    stderr = streams.Stderr()
    with on_fd2(pipe[1]):
        stderr.capture()
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, hard))
        try:
            dump = stderr.dump_fd()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        try:
            assert dump is not None and 96 <= dump < 128
            assert identity(dump) == identity(pipe[1])
        finally:
            stderr.forget_dump_fd()


def test_reused_dump_number_is_noticed_and_never_closed(pipe, other_file):
    stderr = streams.Stderr()
    with on_fd2(pipe[1]):
        stderr.capture()
        dump = stderr.dump_fd()
        assert dump is not None
        os.close(dump)  # the service's closerange() ...
        os.dup2(other_file.fileno(), dump)  # ... and a file of its own
        try:
            assert not stderr.dump_fd_is_current()
            stderr.forget_dump_fd()
            assert is_open(dump)  # not ours any more: left alone
            assert identity(dump) == identity(other_file.fileno())
            again = stderr.dump_fd()  # re-armed on a fresh reopening
            assert again is not None and again != dump
            assert identity(again) == identity(pipe[1])
            assert stderr.dump_fd_is_current()
        finally:
            stderr.forget_dump_fd()
            os.close(dump)
    assert contents(other_file) == b""


def test_dump_on_fd_2_is_disarmed_when_fd_2_changes(log_file, other_file):
    stderr = streams.Stderr()
    with on_fd2(log_file.fileno()):
        stderr.capture()
        assert stderr.dump_fd() == 2
    with on_fd2(other_file.fileno()):
        assert not stderr.dump_fd_is_current()
        stderr.forget_dump_fd()
        assert is_open(2)  # fd 2 is never closed
        assert stderr.dump is None
        assert stderr.dump_fd() is None  # not the stderr of set-up


def test_pipe_dump_is_disarmed_when_fd_2_changes(pipe, log_file):
    stderr = streams.Stderr()
    with on_fd2(pipe[1]):
        stderr.capture()
        dump = stderr.dump_fd()
    try:
        with on_fd2(log_file.fileno()):
            assert not stderr.dump_fd_is_current()
            stderr.forget_dump_fd()
            assert not is_open(dump)  # still ours: closed
            assert stderr.dump_fd() is None
    finally:
        stderr.forget_dump_fd()  # closes it only while still ours


def test_nothing_to_forget_and_nothing_armed_is_current():
    stderr = streams.Stderr()
    assert stderr.dump_fd_is_current()
    stderr.forget_dump_fd()
    assert stderr.dump is None
