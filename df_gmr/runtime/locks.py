"""oslo.concurrency's named locks, as a thread's or greenthread's stack
shows them.

``@lockutils.synchronized(name)`` runs the decorated function inside
``inner``, whose frame holds the lock's ``name``, when it started waiting
(``t1``) and, once acquired, when it got the lock (``t2``): a stack with
that frame, past the acquire, *holds* the lock; before it, *waits* for
it.  Found by the stack (a holder is the one whose stack is inside the
locked block); a ``with lockutils.lock(name):`` block runs outside the
generator's frame and is not seen.
"""

from __future__ import annotations

import os
import time
from types import CodeType
from types import FrameType
from typing import Any

LOCKUTILS = "lockutils.py"
#: Frames looked at from the innermost, at most.
DEPTH = 60


def on_stack(keys: tuple[tuple[CodeType, int], ...]) -> bool:
    """Say whether a stack has a ``@synchronized`` frame at all."""
    return any(_is_inner(code) for code, _ in keys)


def _is_inner(code: CodeType) -> bool:
    return code.co_name == "inner" and \
        os.path.basename(code.co_filename) == LOCKUTILS and \
        "oslo_concurrency" in code.co_filename


def named_locks(frame: FrameType | None) -> list[dict[str, Any]]:
    """Return the named locks a stack holds or waits for, innermost first.

    A stack inside ``@synchronized("a")`` that calls into
    ``@synchronized("b")`` holds "a" and waits for (or holds) "b".
    """
    found = []
    depth = 0
    while frame is not None and depth < DEPTH:
        if _is_inner(frame.f_code):
            lock = _read(frame)
            if lock is not None:
                found.append(lock)
        frame = frame.f_back
        depth += 1
    return found


def _read(frame: FrameType) -> dict[str, Any] | None:
    local = frame.f_locals
    name = local.get("name")
    if type(name) is not str:
        return None
    if type(local.get("t3")) is float:
        return None  # in the finally after the block: already released
    acquired = local.get("t2")
    started = local.get("t1")
    now = time.monotonic()  # oslo.utils' timeutils.now()
    found: dict[str, Any] = {"name": name,
                             "holding": type(acquired) is float,
                             "found_by": "the stack (inside @synchronized)"}
    since = acquired if type(acquired) is float else started
    if type(since) is float:
        found["seconds"] = round(now - since, 3)
    function = local.get("f_name")
    if type(function) is str:
        found["function"] = function
    return found
