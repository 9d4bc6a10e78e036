"""df-gmr's side of the exchange: connect, check, request, signal, read.

See ``exchange`` for the threat model and the daemon's side.  Every check
here is made on what the kernel says (the listener's credentials, the
process's start time, user and signal mask, through a pidfd), never on
what a file says alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import stat
from typing import Any

from df_gmr import registry
from df_gmr.exchange import MAX_ANSWER_BYTES
from df_gmr.exchange import MAX_REQUEST_BYTES
from df_gmr.exchange import NOT_PERMITTED
from df_gmr.exchange import PROTOCOL
from df_gmr.exchange import SENDABLE_SIGNALS
from df_gmr.exchange import STACK_SIGNAL
from df_gmr.exchange import Refusal
from df_gmr.exchange import peer_credentials


def ask(pid: int, entry: dict[str, Any], directory: registry.RunDir,
        fmt: str, timeout: float) -> Asking:
    """Connect to ``pid``'s socket, check who listens, request, signal.

    Raises Refusal, saying why, when the process is not (or no longer)
    the one its entry describes.
    """
    signal_name = entry.get("signal")
    if signal_name not in SENDABLE_SIGNALS:
        msg = (f"pid {pid}: reports on {signal_name or 'a file trigger'}, "
               "not a signal df-gmr sends; not signalled")
        raise Refusal(msg)
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.settimeout(timeout)
        try:
            _connect(connection, directory, f"{pid}{registry.SOCKET_SUFFIX}")
            peer_pid, peer_uid, _ = peer_credentials(connection)
        except OSError as error:
            msg = (f"pid {pid}: its df_gmr socket does not answer "
                   f"({error.strerror or error}); not signalled")
            raise Refusal(msg) from None
        if peer_pid != pid or peer_uid != directory.owner:
            msg = (f"pid {pid}: the socket in {directory.path} belongs to "
                   f"pid {peer_pid} uid {peer_uid}, not to it; not "
                   "signalled")
            raise Refusal(msg)
        connection.sendall(f"{PROTOCOL} report {fmt}\n".encode())
        _send_signal(pid, entry, getattr(signal, str(signal_name)),
                     peer_uid)
    except BaseException:
        connection.close()
        raise
    return Asking(pid, connection, entry, peer_uid)


def _connect(connection: Any, directory: registry.RunDir, name: str) -> None:
    """Connect to the socket ``name`` of ``directory``, never through a link.

    connect() follows a symbolic link in the last component: the name is
    opened first with O_PATH|O_NOFOLLOW through the directory's
    descriptor, checked to be a socket of the directory's owner, and
    connected to through that descriptor.
    """
    flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, dir_fd=directory.fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISSOCK(info.st_mode) or info.st_uid != directory.owner:
            msg = f"{name} is not a socket of uid {directory.owner}"
            raise OSError(errno.EPERM, msg)
        connection.connect(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def _send_signal(pid: int, entry: dict[str, Any], signum: int,
                 owner: int, main_thread: bool = False) -> bool:
    """Signal exactly the process of ``entry``, never a reused pid.

    With ``main_thread``, the signal goes to the process's main thread
    (``tgkill``), not to whichever thread the kernel picks: a process-
    directed signal goes to another thread when one is already pending
    in the main thread, and faulthandler dumps the thread it runs in.
    Returns whether it went to the main thread.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        msg = f"pid {pid}: exited before it could be signalled"
        raise Refusal(msg) from None
    try:
        # The pidfd pins the process: checked after opening it, the start
        # time proves it is the one whose socket answered.
        status = registry.process_status(pid)
        if (not registry.entry_is_current(entry)
                or registry.effective_uid(status) != owner):
            msg = (f"pid {pid}: no longer the process of its entry (start "
                   "time, user); not signalled")
            raise Refusal(msg)
        if not registry.catches_signal(status, signum):
            gone = ("its stack dump is off now (the interpreter is "
                    "exiting, or its stderr is gone)" if main_thread
                    else "its signal handler is gone")
            msg = f"pid {pid}: {gone}; not signalled"
            raise Refusal(msg)
        try:
            if main_thread and _to_main_thread(pid, signum):
                return True
            signal.pidfd_send_signal(pidfd, signum)
            return False
        except PermissionError:
            msg = f"pid {pid}: {NOT_PERMITTED}"
            raise Refusal(msg) from None
        except ProcessLookupError:
            msg = f"pid {pid}: exited before it could be signalled"
            raise Refusal(msg) from None
    finally:
        os.close(pidfd)


def _to_main_thread(pid: int, signum: int) -> bool:
    """Send ``signum`` to ``pid``'s main thread; False if tgkill is absent.

    No pidfd form exists for a thread: between the checks above and this
    call the process may exit and its pid be reused.  Only the stack
    signal goes this way, whose default action is to ignore it: such a
    stranger is not harmed.
    """
    tgkill = getattr(_libc(), "tgkill", None)
    if tgkill is None:
        return False
    if tgkill(pid, pid, signum) != 0:
        error = ctypes.get_errno()
        # OSError picks the subclass: PermissionError, ProcessLookupError.
        raise OSError(error, os.strerror(error))
    return True


def _libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


class Asking:
    """A request sent to one process, whose answer is awaited."""

    def __init__(self, pid: int, connection: Any, entry: dict[str, Any],
                 owner: int) -> None:
        self.pid = pid
        self.connection = connection
        self.entry = entry
        self.owner = owner
        self.buffer = b""

    def ask_for_stack(self) -> str | None:
        """Send the stack signal, once the report is late; say what it does.

        Returns None when the process has no C-level stack dump (its
        entry names none).  Raises Refusal as ``ask`` does.
        """
        name = self.entry.get("stack_signal")
        if name != STACK_SIGNAL.name:
            return None
        if _send_signal(self.pid, self.entry, STACK_SIGNAL, self.owner,
                        main_thread=True):
            return (f"sent {name} to its main thread: it writes that "
                    "thread's Python stack to its stderr at once, even "
                    "while the thread holds the GIL in a C call")
        return (f"sent {name} to the process (no tgkill here: the kernel "
                "picks the thread, the main thread unless a signal is "
                "pending there): it writes the Python stack of the thread "
                "that receives it to its stderr at once")

    def fileno(self) -> int:
        """Return the connection's descriptor (for select)."""
        return int(self.connection.fileno())

    def receive(self) -> str | None:
        """Read what is available; return the report once complete.

        Raises Refusal when the process closed without a full answer.
        """
        self.connection.setblocking(False)
        try:
            chunk = self.connection.recv(1 << 20)
        except BlockingIOError:
            return None
        if not chunk:
            msg = f"pid {self.pid}: closed the connection without a report"
            raise Refusal(msg)
        self.buffer += chunk
        return self._complete()

    def _complete(self) -> str | None:
        header, newline, body = self.buffer.partition(b"\n")
        if not newline:
            if len(header) > MAX_REQUEST_BYTES:
                self._bad("a malformed answer")
            return None
        words = header.decode("ascii", "replace").split()
        if len(words) != 3 or words[:2] != [PROTOCOL, "ok"] \
                or not words[2].isdigit():
            self._bad("a malformed answer")
        length = int(words[2])
        if length > MAX_ANSWER_BYTES:
            self._bad(f"an answer of {length} bytes (limit "
                      f"{MAX_ANSWER_BYTES})")
        if len(body) < length:
            return None
        self.close()
        return body[:length].decode("utf-8", "replace")

    def _bad(self, what: str) -> None:
        self.close()
        msg = f"pid {self.pid}: sent {what}"
        raise Refusal(msg)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with contextlib.suppress(OSError):
            self.connection.close()
