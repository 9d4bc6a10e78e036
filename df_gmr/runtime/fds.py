"""What a file descriptor is: a socket's addresses, a path, a pipe.

Sockets are read once per report from /proc (through psutil: creating
socket objects here would go through eventlet's green socket, which makes
the shared descriptor non-blocking).  Every section that names a
descriptor asks the one ``FdTable`` of the report's snapshot.
"""

from __future__ import annotations

import os
from typing import Any

#: psutil's socket families and types (AF_UNIX, AF_INET, AF_INET6; DGRAM).
_FAMILIES = {1: "unix", 2: "tcp", 10: "tcp6"}
_DGRAM = 2


class FdTable:
    """Descriptions of this process's descriptors, read once."""

    def __init__(self) -> None:
        self._sockets: dict[int, str] | None = None

    def describe(self, fd: int) -> str:
        """Say what ``fd`` is: ``tcp socket a:1 -> b:2``, a path, ..."""
        sockets = self.sockets()
        if fd in sockets:
            return sockets[fd]
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return "unknown"

    def sockets(self) -> dict[int, str]:
        """Map socket descriptors to their description (read once)."""
        if self._sockets is None:
            self._sockets = _read_sockets()
        return self._sockets


def _read_sockets() -> dict[int, str]:
    try:
        import psutil

        connections = psutil.Process().net_connections(kind="all")
    except Exception:
        return {}
    described = {}
    for connection in connections:
        kind = _FAMILIES.get(int(connection.family), "socket")
        if int(connection.type) == _DGRAM and kind != "unix":
            kind = kind.replace("tcp", "udp")
        local = _address(connection.laddr) or "(unnamed)"
        peer = _address(connection.raddr)
        described[connection.fd] = (
            f"{kind} socket {local} -> {peer}" if peer
            else f"{kind} socket {local} "
            f"({connection.status or 'unconnected'})"
        )
    return described


def _address(address: Any) -> str | None:
    if not address:
        return None
    if isinstance(address, tuple):
        return f"{address[0]}:{address[1]}"
    return str(address)
