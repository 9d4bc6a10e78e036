"""What df-gmr prints to a terminal: exit codes, and text made safe.

Everything df-gmr prints from a process or a file (entries, reports,
errors) goes through ``printable``: a report may hold text chosen by the
process's user, and root's terminal must not obey it.
"""

from __future__ import annotations

import re

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: What a shell reports for a command that SIGPIPE ended (128 + 13).
EXIT_BROKEN_PIPE = 141


#: Terminal control characters (C0 but tab and newline, DEL, C1) and
#: the bidirectional overrides that reorder what a terminal shows.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f"
                      "\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """Return ``text`` with terminal control sequences made visible."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}"
                        if ord(match.group()) < 0x100
                        else f"\\u{ord(match.group()):04x}", text)
