"""stderr as it was when df_gmr was set up, and nothing that took its number.

A daemon may start with descriptor 2 closed, or close it later, and the
number then goes to the next file, socket or pipe it opens: a report
written to "fd 2" would land in a database file or go down a TCP
connection.  So df_gmr records which stream fd 2 was at set-up (device
and inode; only a file, pipe, socket or terminal open for writing counts,
not the epoll or connection that took a free number) and writes there
only while fd 2 is still that stream; otherwise the report goes nowhere
on stderr, and says so where it can (the CLI's copy and log_dir files are
unaffected).

Writes never hang the service or df_gmr: on a pipe or a socket they wait
for room only while the reader takes something (``STALL_TIMEOUT``
without progress ends it: a pipe nobody reads, a stuck journal; at most
``WRITE_TIMEOUT`` in all), through a non-blocking reopening of the pipe or a
``MSG_DONTWAIT`` send, which leave the service's own descriptor as it is;
what did not fit is dropped and said.

The C-level stack dump on SIGURG (faulthandler) writes from inside
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
next report, a SIGURG dump may still go to the new file.
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
import fcntl
import os
import posix
import resource
import stat
import time

from df_gmr import _native

STDERR_FD = 2
#: Highest descriptor number used for our own descriptors (a table of
#: that size costs a process 32 KiB of kernel memory).
HIGH_FD = 4095
#: How long a write to a pipe or socket waits while nothing is taken
#: from it (a reader that reads, however slowly, is waited for), and the
#: most it waits in all.
STALL_TIMEOUT = 1.0
WRITE_TIMEOUT = 30.0
_OUTPUT_TYPES = (stat.S_IFREG, stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR)
_socket = _native.original("socket")
_select = _native.original("select")


def identity(fd: int) -> tuple[int, int] | None:
    """Return (device, inode) of an open descriptor, or None if closed."""
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _output_stream(fd: int) -> os.stat_result | None:
    """Return fd's status if it is a stream open for writing, else None."""
    try:
        info = os.fstat(fd)
        mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    except OSError:
        return None
    if stat.S_IFMT(info.st_mode) not in _OUTPUT_TYPES or \
            mode not in (os.O_WRONLY, os.O_RDWR):
        return None
    return info


def move_high(fd: int) -> int:
    """Move a descriptor of ours to a high number (close-on-exec).

    Numbers are handed out lowest first: a service that closes its
    descriptors (closerange) and opens new ones reaches a high number
    last.  Returns ``fd`` itself when there is no room up there.
    """
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        top = min(soft, HIGH_FD + 1) - 1
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, max(3, top - 31))
    except (OSError, ValueError):
        return fd
    os.close(fd)
    return high


class Stderr:
    """This process's stderr, as identified at set-up."""

    def __init__(self) -> None:
        self.captured = False
        self.identity: tuple[int, int] | None = None
        self.kind = 0  # S_IFMT of the stream at set-up
        self.dump: int | None = None

    def capture(self) -> None:
        """Record which stream fd 2 is now (at set-up, main thread)."""
        self.captured = True
        info = _output_stream(STDERR_FD)
        self.identity = None if info is None else (info.st_dev, info.st_ino)
        self.kind = 0 if info is None else stat.S_IFMT(info.st_mode)

    def current(self) -> bool:
        """Say whether fd 2 is still the stream of set-up."""
        if not self.captured:
            self.capture()
        return self.identity is not None and \
            identity(STDERR_FD) == self.identity

    def write(self, data: bytes) -> None:
        """Write to stderr; OSError if it is not ours any more or stays
        full for WRITE_TIMEOUT seconds (what did not fit is dropped)."""
        if not self.current():
            reason = ("closed at set-up (or no output stream)"
                      if self.identity is None
                      else "no longer the stream it was at set-up")
            raise OSError(f"stderr (fd 2) was {reason}")
        if self.kind == stat.S_IFIFO:
            _write_to_pipe(data)
        elif self.kind == stat.S_IFSOCK:
            _send_to_socket(data)
        else:
            _native.write_all(STDERR_FD, data)

    def dump_fd(self) -> int | None:
        """Return the descriptor for the C-level dump, or None (no stderr).
        """
        if self.dump is not None:
            return self.dump
        if not self.current():
            return None
        try:
            if self.kind == stat.S_IFIFO:
                self.dump = move_high(_reopen_nonblocking())
            else:
                self.dump = STDERR_FD
        except OSError:
            return None
        return self.dump

    def dump_fd_is_current(self) -> bool:
        """Say whether the dump descriptor (if any) is still stderr."""
        if self.dump is None:
            return True
        return self.identity is not None and \
            identity(self.dump) == self.identity and self.current()

    def forget_dump_fd(self) -> None:
        """Drop the dump descriptor (closing our own reopening)."""
        fd, self.dump = self.dump, None
        if fd is not None and fd != STDERR_FD:
            with contextlib.suppress(OSError):
                if identity(fd) == self.identity:
                    os.close(fd)  # only if the number is still ours


def _reopen_nonblocking() -> int:
    # Reopening /proc/self/fd/2 gives a new open file description of the
    # same pipe, so O_NONBLOCK there leaves the service's stderr as it is.
    return posix.open("/proc/self/fd/2",
                   os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)


def _write_to_pipe(data: bytes) -> None:
    fd = _reopen_nonblocking()
    try:
        # posix.write: eventlet's os.write would wait in a hub for room.
        _write_bounded(data, lambda view: posix.write(fd, view), fd)
    finally:
        os.close(fd)


def _send_to_socket(data: bytes) -> None:
    # MSG_DONTWAIT makes this one send non-blocking, whatever the flags of
    # the descriptor it shares with the service (journald's stream).
    connection = _socket.socket(fileno=os.dup(STDERR_FD))
    try:
        _write_bounded(
            data, lambda view: connection.send(view, _socket.MSG_DONTWAIT),
            connection.fileno())
    finally:
        connection.close()


def _write_bounded(data: bytes, write: Callable[[memoryview], int],
                   fd: int) -> None:
    """Write all of ``data`` while the reader makes progress."""
    view = memoryview(data)
    end = time.monotonic() + WRITE_TIMEOUT
    while view:
        try:
            view = view[write(view):]
            continue
        except BlockingIOError:
            pass
        waiting = _select.poll()  # not select(): numbers above 1023 too
        waiting.register(fd, _select.POLLOUT)
        wait = min(STALL_TIMEOUT, end - time.monotonic())
        if wait <= 0 or not waiting.poll(wait * 1000):
            written = len(data) - len(view)
            msg = (f"stderr took nothing for {STALL_TIMEOUT:g} s: {written} "
                   f"of {len(data)} bytes written, the rest dropped")
            raise OSError(msg)

stderr = Stderr()


def complain(message: str) -> None:
    """Say one line on stderr, if stderr is still ours; never raises."""
    with contextlib.suppress(Exception):
        stderr.write(f"df_gmr: {message}\n".encode())
