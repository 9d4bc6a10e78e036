"""Turn live frames into plain, comparable stack data.

A stack is collected in two steps so that 100,000 greenthreads stay cheap:
``frame_keys`` walks a frame chain into a tuple of ``(code, lineno)`` pairs
(hashable, so identical stacks group by dict look-up without touching any
source file), and ``describe`` turns one such tuple into dicts with file,
line, function and source text, once per distinct stack.  Neither keeps a
frame alive.
"""

from __future__ import annotations

import linecache
import os
import sys
from types import CodeType
from types import FrameType
from typing import Any

FrameKey = tuple[CodeType, int]
StackKey = tuple[FrameKey, ...]

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
#: df_gmr's report machinery: frames from here on are the report being
#: built, not the application (df_gmr's launcher and spawn wrappers, which
#: sit in the middle of application stacks, are not in this list).
REPORT_MACHINERY = tuple(
    PACKAGE_DIR + name
    for name in ("guru_meditation_report.py", "report.py", "render.py",
                 "sections" + os.sep)
)


#: Libraries whose frames stand between an application and its spawn or
#: creation call: a spawn site is the first frame outside them.
WRAPPER_PACKAGES = ("eventlet", "oslo_service", "futurist", "greenlet")


def wrapper_dirs() -> tuple[str, ...]:
    """Return the directories of df_gmr and of the loaded wrapper libraries."""
    dirs = [PACKAGE_DIR]
    for name in WRAPPER_PACKAGES:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            dirs.append(os.path.dirname(path) + os.sep)
    return tuple(dirs)


def frame_keys(frame: FrameType | None, limit: int = 200) -> StackKey:
    """Return the chain of ``frame`` as keys, outermost call first."""
    keys: list[FrameKey] = []
    while frame is not None and len(keys) < limit:
        keys.append((frame.f_code, frame.f_lineno))
        frame = frame.f_back
    del frame  # no reference cycle through this function's locals
    keys.reverse()
    return tuple(keys)


def without_own_frames(keys: StackKey) -> tuple[StackKey, bool]:
    """Cut the stack where it enters df_gmr; say whether anything was cut.

    A report built by an application thread (``TextGuruMeditation.run()``)
    would otherwise present df_gmr's own machinery as the thread's stack.
    """
    for index, (code, _) in enumerate(keys):
        if code.co_filename.startswith(REPORT_MACHINERY):
            return keys[:index], True
    return keys, False


def describe(keys: StackKey) -> list[dict[str, Any]]:
    """Return one dict per frame: file, line, function and source line."""
    return [
        {
            "file": code.co_filename,
            "line": lineno,
            "function": code.co_name,
            "code": linecache.getline(code.co_filename, lineno).strip(),
        }
        for code, lineno in keys
    ]


def format_stack(frames: list[dict[str, Any]], indent: str = "  "
                 ) -> list[str]:
    """Return traceback-style lines for described frames, most recent last."""
    lines: list[str] = []
    for frame in frames:
        lines.append(
            f'{indent}File "{frame["file"]}", line {frame["line"]}, '
            f"in {frame['function']}"
        )
        if frame["code"]:
            lines.append(f"{indent}  {frame['code']}")
    return lines
