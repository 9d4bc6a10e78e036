"""One structured journal entry per report, when stderr is journald's.

Under systemd a service's stderr is a stream to journald, and systemd
says which one in ``$JOURNAL_STREAM`` (``device:inode``).  When fd 2 is
that stream, each report also leaves one entry through journald's native
socket, with a fixed ``MESSAGE_ID`` so that ``journalctl
MESSAGE_ID=...`` finds every report of every service, and fields that
say where the report is (the file when ``log_dir`` is set), whose it is
and why it was made.  Nothing is sent otherwise; a journal that does not
answer costs one non-blocking send.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from df_gmr import _native

#: df_gmr's reports in the journal: ``journalctl MESSAGE_ID=<this>``.
MESSAGE_ID = "5b3c4e8f2a9d4f6b8c1e7a0d9f2b6c41"
SOCKET = "/run/systemd/journal/socket"
_socket: Any = _native.original("socket")


def connected() -> bool:
    """Say whether stderr is the journal stream systemd gave this service."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = stream.partition(":")
    try:
        info = os.fstat(2)
        return (info.st_dev, info.st_ino) == (int(device), int(inode))
    except (OSError, ValueError):
        return False


def entry(header: dict[str, Any], where: str) -> dict[str, str]:
    """Return the journal fields for a report written to ``where``."""
    process = header.get("process") or {}
    fields = {
        "MESSAGE": (f"Guru Meditation Report of {header.get('service')} "
                    f"pid {header.get('pid')} ({header.get('trigger')}): "
                    f"{where}"),
        "MESSAGE_ID": MESSAGE_ID,
        "PRIORITY": "6",
        "SYSLOG_IDENTIFIER": str(header.get("service")),
        "DF_GMR_REPORT": where,
        "DF_GMR_PID": str(header.get("pid")),
        "DF_GMR_SERVICE": str(header.get("service")),
        "DF_GMR_ROLE": str(process.get("role")),
        "DF_GMR_TRIGGER": str(header.get("trigger")),
    }
    findings = header.get("findings")
    if findings is not None:
        fields["DF_GMR_FINDINGS"] = str(findings)
    return fields


def send(fields: dict[str, str]) -> bool:
    """Send one entry (journald's native protocol); never raises.

    ``$DF_GMR_JOURNAL_SOCKET`` names another socket (a container with the
    host's journal socket mounted elsewhere).
    """
    path = os.environ.get("DF_GMR_JOURNAL_SOCKET") or SOCKET
    lines = []
    for name, value in fields.items():
        data = value.encode("utf-8", "replace")
        if b"\n" in data:  # the binary form: name, length, value
            lines.append(name.encode() + b"\n"
                         + len(data).to_bytes(8, "little") + data)
        else:
            lines.append(name.encode() + b"=" + data)
    with contextlib.suppress(OSError):
        connection = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
        try:
            connection.setblocking(False)
            connection.sendto(b"\n".join(lines) + b"\n", path)
            return True
        finally:
            connection.close()
    return False
