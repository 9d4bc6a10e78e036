"""What a file descriptor is: a socket's addresses and state, a path, a pipe.

Every section that names a descriptor asks the one ``FdTable`` of the
report's snapshot.  A descriptor is resolved through its link in
``/proc/self/fd``: a socket links to ``socket:[INODE]``.  The socket is
then asked itself, through the descriptor: its family and type, its own
and its peer's address, whether it listens, TCP's state (``TCP_INFO``).
That costs microseconds per socket, where the kernel's tables
(``/proc/self/net/tcp``...) walk every socket of the network namespace
(milliseconds on a busy host).  The question is asked through a plain
``_socket.socket`` wrapped around the descriptor and detached after,
never a green socket and never closed; only when no default timeout is
set (one would make the shared descriptor non-blocking).  Otherwise,
and for families other than TCP, UDP and UNIX, the tables are read once
per report, keyed by inode.  Either way a socket duplicated with
``dup()`` (oslo.service's WSGI server dups its listening socket; a
forked worker inherits it) reads the same from every descriptor.

Wording: ``tcp socket listening on 127.0.0.1:8774``, ``tcp socket
127.0.0.1:8774 -> 127.0.0.1:50312 (connected)``, the same for ``tcp6``
(``[::1]:8774``) and ``udp``/``udp6`` (``bound to``), ``unix socket
listening on /run/x.sock``, ``unix socket /run/x.sock (connected)``,
``unix socket unnamed (connected)``; another TCP state is named in
words (``close wait``, ``time wait``...).
"""

from __future__ import annotations

import _socket
import errno
import os
import re
import stat
import struct

#: /proc/self/net tables: file -> (kind shown, address family).
_INET_TABLES = (
    ("tcp", "tcp", _socket.AF_INET),
    ("tcp6", "tcp6", _socket.AF_INET6),
    ("udp", "udp", _socket.AF_INET),
    ("udp6", "udp6", _socket.AF_INET6),
)
#: TCP states (include/net/tcp_states.h), as /proc prints them.
_TCP_STATES = {
    "01": "connected", "02": "syn sent", "03": "syn received",
    "04": "fin wait 1", "05": "fin wait 2", "06": "time wait",
    "07": "closed", "08": "close wait", "09": "last ack",
    "0A": "listening", "0B": "closing", "0C": "new syn received",
}
#: UNIX socket states (SS_*) and types, as /proc/self/net/unix prints them.
_UNIX_STATES = {"01": "unconnected", "02": "connecting", "03": "connected",
                "04": "disconnecting"}
_UNIX_TYPES = {"0001": "unix socket", "0002": "unix datagram socket",
               "0005": "unix seqpacket socket"}
_UNIX_KINDS = {_socket.SOCK_STREAM: "unix socket",
               _socket.SOCK_DGRAM: "unix datagram socket",
               _socket.SOCK_SEQPACKET: "unix seqpacket socket"}
#: __SO_ACCEPTCON: a UNIX socket that listens.
_ACCEPTING = 0x10000
_SOCKET_LINK = re.compile(r"socket:\[(\d+)\]\Z")
#: Why a socket inode has no entry in the tables.
NOT_LISTED = ("not in /proc/self/net's tcp, udp or unix tables: neither "
              "listening nor connected yet, or of another family")


class FdTable:
    """Descriptions of this process's descriptors, read once (a table
    lives for one report)."""

    def __init__(self) -> None:
        self._by_inode: dict[int, str] | None = None
        self._asked: dict[int, str] = {}
        #: fd -> its description, as first read in this report: the
        #: sections that name one descriptor (a listener in Eventlet Hub,
        #: its greenthread in Green Threads) say the same of it.
        self._by_fd: dict[int, str] = {}

    def describe(self, fd: int) -> str:
        """Say what ``fd`` is: ``tcp socket listening on a:1``, a path..."""
        described = self._by_fd.get(fd)
        if described is None:
            described = self._by_fd[fd] = self._describe(fd)
        return described

    def _describe(self, fd: int) -> str:
        # fstat first: a socket's inode is its st_ino (what its link in
        # /proc/self/fd names), and the link's lookup costs five times
        # the call here; the link is read for a path only.
        try:
            status = os.fstat(fd)
        except OSError as error:
            if error.errno == errno.EBADF:
                return "not open now (closed since)"
            return f"unknown ({error.strerror or error})"
        if not stat.S_ISSOCK(status.st_mode):
            try:
                return os.readlink(f"/proc/self/fd/{fd}")
            except FileNotFoundError:  # closed since, or no /proc
                return ("not open now (closed since)"
                        if _inode(fd) is None else "unknown (no /proc)")
            except OSError as error:
                return f"unknown ({error.strerror or error})"
        inode = status.st_ino
        described = self._asked.get(inode)
        if described is None:
            described = ask_socket(fd)
            if described is not None and _inode(fd) == inode:
                self._asked[inode] = described
            else:  # closed and reused meanwhile: that was another socket
                described = None
        if described is None:
            described = self.by_inode().get(inode)
        return described if described is not None else \
            f"socket:[{inode}] ({NOT_LISTED})"

    def sockets(self) -> dict[int, str]:
        """Map every socket descriptor of the process to its description."""
        found = {}
        for fd in _open_fds():
            try:
                link = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if socket_inode(link) is not None:
                found[fd] = self.describe(fd)
        return found

    def by_inode(self) -> dict[int, str]:
        """Map socket inodes to their description (read once)."""
        if self._by_inode is None:
            self._by_inode = read_socket_tables()
        return self._by_inode


def socket_inode(link: str) -> int | None:
    """Return the inode of a ``socket:[INODE]`` link, else None."""
    match = _SOCKET_LINK.match(link)
    return int(match.group(1)) if match else None


def _open_fds() -> list[int]:
    try:
        return sorted(int(name) for name in os.listdir("/proc/self/fd")
                      if name.isdigit())
    except OSError:
        return []


def _inode(fd: int) -> int | None:
    try:
        return os.fstat(fd).st_ino
    except OSError:
        return None


def ask_socket(fd: int) -> str | None:
    """Describe the socket ``fd`` by asking it, or None (read the tables).
    """
    if _socket.getdefaulttimeout() is not None:
        return None  # a socket object would make fd non-blocking
    try:
        # Family and type asked of the descriptor; the protocol is not
        # used (given: one question less).
        sock = _socket.socket(-1, -1, 0, fd)
    except OSError:
        return None
    try:
        if sock.family in (_socket.AF_INET, _socket.AF_INET6):
            return _ask_inet(sock)
        if sock.family == _socket.AF_UNIX:
            return _ask_unix(sock)
        return None
    except OSError:
        return None
    finally:
        sock.detach()  # the descriptor stays the application's


def _ask_inet(sock: _socket.socket) -> str | None:
    six = "6" if sock.family == _socket.AF_INET6 else ""
    local = _address(sock.getsockname())
    peer = _peer(sock)
    if sock.type == _socket.SOCK_DGRAM:
        if peer is not None:
            return f"udp{six} socket {local} -> {peer} (connected)"
        return f"udp{six} socket bound to {local}"
    if sock.type != _socket.SOCK_STREAM:
        return None
    info = sock.getsockopt(_socket.IPPROTO_TCP, _socket.TCP_INFO, 1)
    state = f"{info[0]:02X}"  # tcpi_state: the numbers /proc prints
    if state == "0A":
        return f"tcp{six} socket listening on {local}"
    words = _TCP_STATES.get(state, f"state {state}")
    if peer is None:
        return f"tcp{six} socket {local} ({words})"
    return f"tcp{six} socket {local} -> {peer} ({words})"


def _ask_unix(sock: _socket.socket) -> str:
    kind = _UNIX_KINDS.get(sock.type, "unix socket")
    name = sock.getsockname()
    if isinstance(name, bytes):  # an abstract name: /proc shows '@'
        name = "@" + name[1:].decode("utf-8", "replace")
    if sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ACCEPTCONN):
        return f"{kind} listening on {name or 'an unnamed address'}"
    state = "connected" if _peer(sock) is not None else "unconnected"
    return f"{kind} {name or 'unnamed'} ({state})"


def _peer(sock: _socket.socket) -> str | None:
    try:
        return _address(sock.getpeername())
    except OSError:  # ENOTCONN
        return None


def _address(name: object) -> str:
    if isinstance(name, tuple) and len(name) >= 2:
        host, port = name[0], name[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    if isinstance(name, bytes):
        return "@" + name[1:].decode("utf-8", "replace")
    return str(name)


def read_socket_tables(root: str = "/proc/self/net") -> dict[int, str]:
    """Describe every socket of the network namespace, by inode.

    Only the process's own sockets are kept (their inodes are read from
    ``/proc/self/fd`` first): a busy host lists many more.
    """
    own = set()
    for fd in _open_fds():
        try:
            inode = socket_inode(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
        if inode is not None:
            own.add(inode)
    found: dict[int, str] = {}
    if not own:
        return found
    for name, kind, family in _INET_TABLES:
        for fields in _rows(os.path.join(root, name)):
            if len(fields) > 9 and fields[9].isdigit() and \
                    int(fields[9]) in own:
                found.setdefault(int(fields[9]),
                                 _inet(kind, family, fields))
        if len(found) == len(own):
            return found  # every socket named: no other table to read
    for fields in _rows(os.path.join(root, "unix")):
        if len(fields) > 6 and fields[6].isdigit() and int(fields[6]) in own:
            found.setdefault(int(fields[6]), _unix(fields))
    return found


def _rows(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="ascii", errors="replace") as table:
            next(table, None)  # the header
            return [line.split() for line in table]
    except OSError:
        return []


def _inet(kind: str, family: int, fields: list[str]) -> str:
    local = _inet_address(fields[1], family)
    peer = _inet_address(fields[2], family)
    state = fields[3].upper()
    if kind.startswith("udp"):
        if state == "01":
            return f"{kind} socket {local} -> {peer} (connected)"
        return f"{kind} socket bound to {local}"
    words = _TCP_STATES.get(state, f"state {state}")
    if state == "0A":
        return f"{kind} socket listening on {local}"
    return f"{kind} socket {local} -> {peer} ({words})"


def _inet_address(text: str, family: int) -> str:
    """Decode /proc's ``HEX:PORT`` (host-order 32-bit words) address."""
    address, _, port = text.partition(":")
    try:
        words = [int(address[i:i + 8], 16)
                 for i in range(0, len(address), 8)]
        packed = struct.pack(f"={len(words)}I", *words)
        host = _socket.inet_ntop(family, packed)
        number = int(port, 16)
    except (ValueError, struct.error, OSError):
        return text
    if family == _socket.AF_INET6:
        return f"[{host}]:{number}"
    return f"{host}:{number}"


def _unix(fields: list[str]) -> str:
    kind = _UNIX_TYPES.get(fields[4], "unix socket")
    path = " ".join(fields[7:]) if len(fields) > 7 else ""
    try:
        listening = int(fields[3], 16) & _ACCEPTING
    except ValueError:
        listening = 0
    if listening:
        return f"{kind} listening on {path or 'an unnamed address'}"
    state = _UNIX_STATES.get(fields[5], f"state {fields[5]}")
    return f"{kind} {path or 'unnamed'} ({state})"
