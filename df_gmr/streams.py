"""stderr as it was when df_gmr was set up, and nothing that took its number.

A daemon may start with descriptor 2 closed, or close it later, and the
number then goes to the next file, socket or pipe it opens: a report
written to "fd 2" would land in a database file or go down a TCP
connection.  So df_gmr records which stream fd 2 was at set-up (device
and inode) and writes a report there only while fd 2 is still that
stream; otherwise the report goes nowhere on stderr, and says so where
it can (the CLI's copy and log_dir files are unaffected).

The C-level stack dump at signal time (faulthandler) writes from inside
the signal handler, where nothing can be checked, to a descriptor chosen
here:

* fd 2 itself when it is a regular file, a terminal or a socket: it
  shares the service's file offset, so a dump into ``service > log 2>&1``
  is never overwritten by the service's next lines, and ``closerange``
  (which daemons call on inherited descriptors) never closes it;
* for a pipe, a non-blocking reopening of the same pipe (so a full pipe
  nobody reads loses the dump, never hangs the service), moved to a high
  descriptor number that a service reaches last.

The reporting thread re-checks that descriptor at every wake and disarms
the dump when it no longer is the stderr of set-up.  Limit: between a
change of fd 2 (or a close and reuse of the pipe's high number) and the
next report, one C-level dump may still go to the new file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import resource
import stat

from df_gmr import _native

STDERR_FD = 2
#: Highest descriptor number used for the pipe's reopening.
HIGH_FD = 1023


def _identity(fd: int) -> tuple[int, int] | None:
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    return info.st_dev, info.st_ino


class Stderr:
    """This process's stderr, as identified at set-up."""

    def __init__(self) -> None:
        self.captured = False
        self.identity: tuple[int, int] | None = None
        self.dump: int | None = None

    def capture(self) -> None:
        """Record which stream fd 2 is now (at set-up, main thread)."""
        self.captured = True
        self.identity = _identity(STDERR_FD)

    def current(self) -> bool:
        """Say whether fd 2 is still the stream of set-up."""
        if not self.captured:
            self.capture()
        return self.identity is not None and \
            _identity(STDERR_FD) == self.identity

    def write(self, data: bytes) -> None:
        """Write to stderr in one call; OSError if it is not ours any more.
        """
        if not self.current():
            reason = ("closed at set-up" if self.identity is None
                      else "no longer the stream it was at set-up")
            raise OSError(f"stderr (fd 2) was {reason}")
        _native.write_all(STDERR_FD, data)

    def dump_fd(self) -> int | None:
        """Return the descriptor for the C-level dump, or None (no stderr).
        """
        if self.dump is not None:
            return self.dump
        if not self.current():
            return None
        try:
            is_pipe = stat.S_ISFIFO(os.fstat(STDERR_FD).st_mode)
            self.dump = _reopen_high() if is_pipe else STDERR_FD
        except OSError:
            return None
        return self.dump

    def dump_fd_is_current(self) -> bool:
        """Say whether the dump descriptor (if any) is still stderr."""
        if self.dump is None:
            return True
        return self.identity is not None and \
            _identity(self.dump) == self.identity and self.current()

    def forget_dump_fd(self) -> None:
        """Drop the dump descriptor (closing our own reopening)."""
        fd, self.dump = self.dump, None
        if fd is not None and fd != STDERR_FD:
            with contextlib.suppress(OSError):
                if _identity(fd) == self.identity:
                    os.close(fd)  # only if the number is still ours


def _reopen_high() -> int:
    # Reopening /proc/self/fd/2 gives a new open file description of the
    # same pipe, so O_NONBLOCK there leaves the service's stderr as it is.
    flags = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open("/proc/self/fd/2", flags)
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        top = min(soft, HIGH_FD + 1) - 1
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, max(3, top - 31))
    except OSError:
        return fd  # no room up there: the low number will do
    os.close(fd)
    return high

stderr = Stderr()


def complain(message: str) -> None:
    """Say one line on stderr, if stderr is still ours; never raises."""
    with contextlib.suppress(Exception):
        stderr.write(f"df_gmr: {message}\n".encode())
