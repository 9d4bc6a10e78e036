"""df_gmr's optional C module, ``df_gmr._sites``, or why it is not used.

setup.py builds it where it applies (CPython >= 3.11 with the GIL) and
goes on without it elsewhere; ``DF_GMR_PURE_PYTHON=1`` in a service's
environment turns it off.  Each part it speeds up (the spawn hook, the
walk of every stack, the masking walk's common case) has a pure-Python
twin that gives the same result; the tests hold each pair to it.  Each
part notes here when it runs in C (``used``), so that a report's header
says which did in its process.
"""

from __future__ import annotations

import os
from typing import Any

#: The environment variable that turns the C module off ("1").
PURE_PYTHON = "DF_GMR_PURE_PYTHON"
#: The module's name, as reports and doctor give it.
NAME = "df_gmr._sites"
#: The parts the module can speed up, in the order they are told.
PARTS = ("spawn hook", "stack walk", "masking")


def module() -> Any:
    """Return ``df_gmr._sites``, or None (not built, or turned off).

    Each part asks once, when it chooses its code: why it got None is
    kept for the report's header (the environment may change later).
    """
    found = _module()
    if found is None and used.refused is None:
        used.refused = why_not()
    return found


def _module() -> Any:
    if os.environ.get(PURE_PYTHON) == "1":
        return None
    try:
        from df_gmr import _sites  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _sites


def why_not() -> str | None:
    """Return why the C module is not used here, or None when it is."""
    if os.environ.get(PURE_PYTHON) == "1":
        return f"{PURE_PYTHON}=1"
    if _module() is None:
        return f"{NAME} was not built for this Python"
    return None


def available() -> str:
    """Say what would run in C in a service started now (for doctor)."""
    reason = why_not()
    if reason is not None:
        return f"pure Python ({reason})"
    # The spawn hook runs only where eventlet is imported.
    return (f"C ({NAME}: the spawn hook where eventlet runs, the stack "
            "walk, masking)")


class Use:
    """The parts that run in C in this process, as each noted it."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        #: Why a part was refused the module, when one was.
        self.refused: str | None = None

    def note(self, part: str) -> None:
        """Record that ``part`` (one of ``PARTS``) runs in C here."""
        if part not in self.parts:
            self.parts.append(part)

    def header(self) -> dict[str, Any]:
        """Return the report header's account: ``c`` lists the parts run
        in C (in ``PARTS`` order), ``why_not`` says why none is."""
        parts = [part for part in PARTS if part in self.parts]
        if parts:
            return {"c": parts}
        return {"c": [], "why_not": self.refused or
                "none of its parts chose it in this process"}


#: This process's parts in C (set where each part chooses its code).
used = Use()
