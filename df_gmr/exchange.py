"""How ``df-gmr report`` gets a copy of a report, safely between users.

Threat model
============

df_gmr runs inside daemons (as root or a service account such as
``nova``) and ``df-gmr`` is run by root or by the daemon's own user.  We
defend against three kinds of people on the same host:

* **another local user** (unprivileged): cannot make a daemon or the CLI
  read, write, create, replace, chown or signal anything on their behalf,
  cannot make the CLI print what they choose to root's terminal as if it
  were a report of someone else's process, and cannot stall a daemon's
  reporting.  At worst they can squat ``/tmp/df_gmr-UID`` before UID
  first uses it: then that user's daemons refuse the directory (and say
  so on stderr), ``df-gmr`` does not list them, and ``kill -USR2`` still
  works.  ``/run`` locations (root, systemd user sessions) cannot be
  squatted.
* **a compromised service account** (uid ``nova``): controls its own
  processes anyway; it cannot turn root's ``df-gmr`` against anything
  else: no file of another user is touched, no other process signalled,
  nothing but plain text (control sequences stripped) printed.
* **root running df-gmr**: is trusted, and is what the above protect.

Not defended: a user attacking their own processes, or root.

The mechanism (as the JVM's attach mechanism: a socket checked with the
peer's credentials, started by a signal)
---------------------------------------------------------------------

1. A daemon listens on ``<run dir>/<pid>.sock``, a UNIX socket bound
   through the descriptor of its verified run directory (see
   ``registry``: 0700, owned by its user, never a symlink).  Nothing
   accepts on it at rest: no thread runs for it.
2. ``df-gmr report PID`` trusts the entry ``<pid>.json`` only from a
   directory owned by the process's user (or root), connects to the
   socket, and checks the listener's credentials (``SO_PEERCRED``): the
   listener must be PID itself, running as the directory's owner.  This
   proves that PID set df_gmr up; a file alone proves nothing.
3. It sends one request line (the wanted format), then SIGUSR2 (or
   SIGUSR1, whichever the process's entry names and the kernel says it
   catches) through a pidfd opened after checking the process's start
   time, so a reused pid is never signalled.  Only when the report is
   late, SIGURG to the main thread (faulthandler's stack dump, see
   ``signals``), by ``tgkill`` after the same checks (no pidfd form
   exists for a thread; SIGURG is ignored by default, so a process that
   got the pid meanwhile is not harmed); never another signal.
4. The daemon's handler wakes its reporting thread, which accepts the
   pending connections, checks each peer's credentials (its own uid or
   root only), builds one report, answers every request first (before
   its own copy to stderr or a file, which may block), and closes.
5. The CLI reads the answer from the socket (bounded size and time),
   never from a file, and prints it with terminal control sequences
   removed (JSON re-serialised).

The daemon never reads a request from a file, never writes an answer into
a directory, never follows a path someone else could swap.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
from typing import Any

from df_gmr import _native
from df_gmr import registry
from df_gmr.streams import complain
from df_gmr.streams import identity
from df_gmr.streams import move_high

PROTOCOL = "df_gmr/1"
#: Signals df-gmr may send: only those df_gmr itself can listen on.
SENDABLE_SIGNALS = ("SIGUSR2", "SIGUSR1")
#: faulthandler's C-level dump of the main thread's stack (see signals):
#: ignored by default, so it harms no process that lost the dump.
STACK_SIGNAL = signal.SIGURG
FORMATS = ("text", "json")
#: Why df-gmr refuses, said the same wherever it is found out.
NOT_PERMITTED = "not permitted to signal it (run as its user)"
MAX_REQUEST_BYTES = 128
MAX_PENDING = 32
REQUEST_READ_TIMEOUT = 1.0
ANSWER_SEND_TIMEOUT = 10.0
MAX_ANSWER_BYTES = 256 * 1024 * 1024
_UCRED = struct.Struct("3i")

# The unpatched socket module, taken at import (from the main thread):
# the daemon's side runs in the reporting thread, off the hub.
_socket: Any = _native.original("socket")


class Refusal(Exception):
    """A process that df-gmr will not (or cannot) ask for a report."""


def peer_credentials(connection: Any) -> tuple[int, int, int]:
    """Return the (pid, uid, gid) of a UNIX socket's peer."""
    raw = connection.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED,
                                _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return pid, uid, gid


class Request:
    """One ``df-gmr report`` waiting for its copy: a connection and a format.
    """

    def __init__(self, connection: Any, fmt: str, peer_pid: int) -> None:
        self.connection = connection
        self.format = fmt
        self.peer_pid = peer_pid

    def answer(self, text: str) -> None:
        """Send the report and close (errors are the caller's to report)."""
        body = text.encode("utf-8", "replace")
        try:
            self.connection.settimeout(ANSWER_SEND_TIMEOUT)
            self.connection.sendall(
                f"{PROTOCOL} ok {len(body)}\n".encode() + body)
        finally:
            self.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with contextlib.suppress(OSError):
            self.connection.close()


class Listener:
    """This process's socket in its run directory; one per pid.

    Its two descriptors (the socket, the directory) sit at high numbers
    and are checked before every use: a service that closes descriptors
    it did not open (closerange) and gets those numbers back for its own
    files or listeners never has them used, closed or written by df_gmr;
    df_gmr then listens anew.
    """

    def __init__(self) -> None:
        self.pid = 0
        self.directory: registry.RunDir | None = None
        self.socket: Any = None
        #: start() and announce() come from the main thread (launchers,
        #: handler changes) and from the reporting thread (listening
        #: anew): one at a time.
        self._lock = _native.allocate_lock()
        self._identities: tuple[Any, Any] = (None, None)
        #: The entry last announced, written again after listening anew.
        self._entry: dict[str, Any] | None = None

    def listening(self) -> bool:
        """Say whether this process (not a parent) listens now."""
        return self.pid == os.getpid() and self.socket is not None

    def start(self) -> None:
        """Open the run directory and listen, once per process.

        Stale entries of this user's dead processes are removed on the way.
        A directory that cannot be trusted is said once on stderr.
        """
        if self.pid == os.getpid():
            return
        self.forget_inherited()
        self.pid = os.getpid()
        try:
            directory = registry.open_own_run_dir()
        except (registry.UnsafeDirectory, OSError) as error:
            complain(f"df-gmr cannot reach this process: {error}")
            return
        directory.fd = move_high(directory.fd)
        self.directory = directory
        registry.remove_stale(directory)
        name = f"{self.pid}{registry.SOCKET_SUFFIX}"
        directory.unlink(name)  # left by an earlier process with our pid
        listening = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            listening.bind(directory.socket_path(name))
            listening.listen(MAX_PENDING)
            listening = _socket.socket(fileno=move_high(listening.detach()))
            listening.setblocking(False)
        except OSError as error:
            listening.close()
            complain(f"df-gmr cannot reach this process: cannot listen in "
                     f"{directory.path}: {error}")
            return
        self.socket = listening
        self._identities = (identity(listening.fileno()),
                            identity(directory.fd))

    def _intact(self) -> bool:
        """Say whether our descriptors are still ours; if not, let go."""
        if not self.listening() or self.directory is None:
            return False
        if (identity(self.socket.fileno()), identity(self.directory.fd)) \
                == self._identities:
            return True
        # Closed under us, the numbers maybe reused by the service: never
        # close or use them again.
        self.socket.detach()
        self.socket = None
        self.directory.fd = -1
        self.directory = None
        self.pid = 0
        complain("df_gmr's socket or run directory was closed by the "
                 "service (closerange?); listening anew")
        return False

    def announce(self, entry: dict[str, Any]) -> None:
        """Write (or rewrite) this process's entry; never raises."""
        with self._lock:
            self._announce(entry)

    def _announce(self, entry: dict[str, Any]) -> None:
        self._entry = entry
        try:
            if self.pid == os.getpid():
                self._intact()
            self.start()
            if self.directory is not None and self.listening():
                self.directory.write_json(
                    f"{self.pid}{registry.ENTRY_SUFFIX}", entry)
        except Exception as error:
            complain(f"cannot write the run-directory entry: {error!r}")

    def take_requests(self) -> list[Request]:
        """Accept every pending request (non-blocking; reporting thread)."""
        if self.pid == os.getpid() and self._entry is not None:
            with self._lock:
                if not self._intact():
                    self._announce(self._entry)
        if not self.listening():
            return []
        requests: list[Request] = []
        while len(requests) < MAX_PENDING:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                break  # nothing pending (EAGAIN), or the socket is gone
            request = _read_request(connection)
            if request is not None:
                requests.append(request)
        return requests

    def after_fork(self) -> None:
        """In a forked child (inside fork): a fresh lock, the parent's
        socket dropped (the lock may have been copied held)."""
        self._lock = _native.allocate_lock()
        self.forget_inherited()

    def forget_inherited(self) -> None:
        """In a forked child: drop the parent's socket, never unlink it.

        Called inside fork (os.close only): the parent still listens on
        that file, and our own comes when the child becomes a worker.
        """
        if self.socket is not None and self.pid != os.getpid():
            with contextlib.suppress(OSError):
                os.close(self.socket.detach())
            self.socket = None
            if self.directory is not None:
                self.directory.close()
                self.directory = None
            self.pid = 0

    def withdraw(self) -> None:
        """Remove this process's socket and entry, and the entries of
        processes that are gone (at exit); never raises."""
        if not self._intact() or self.directory is None:
            return
        with contextlib.suppress(Exception):
            self.socket.close()
            self.socket = None
            self.directory.unlink(f"{self.pid}{registry.SOCKET_SUFFIX}")
            self.directory.unlink(f"{self.pid}{registry.ENTRY_SUFFIX}")
            # Workers that left with os._exit (their launcher's way) are
            # gone by now: their entries go with their parent's.
            registry.remove_stale(self.directory)

    def forget_gone(self) -> None:
        """Remove the entries of this user's processes that are gone."""
        if self._intact() and self.directory is not None:
            with contextlib.suppress(Exception):
                registry.remove_stale(self.directory)


def _read_request(connection: Any) -> Request | None:
    """Read one request line; refuse peers other than our uid and root."""
    try:
        peer_pid, peer_uid, _ = peer_credentials(connection)
        if peer_uid not in (os.geteuid(), 0):
            connection.close()
            return None
        connection.settimeout(REQUEST_READ_TIMEOUT)
        line = b""
        while not line.endswith(b"\n") and len(line) < MAX_REQUEST_BYTES:
            chunk = connection.recv(MAX_REQUEST_BYTES - len(line))
            if not chunk:
                break
            line += chunk
        words = line.decode("ascii", "replace").split()
        if len(words) != 3 or words[0] != PROTOCOL or words[1] != "report":
            connection.close()
            return None
        fmt = words[2] if words[2] in FORMATS else "text"
        return Request(connection, fmt, peer_pid)
    except OSError:
        with contextlib.suppress(OSError):
            connection.close()
        return None
