"""df_gmr's optional C module, ``df_gmr._sites``, or why it is not used.

setup.py builds it where it applies (CPython >= 3.11 with the GIL) and
goes on without it elsewhere; ``DF_GMR_PURE_PYTHON=1`` in a service's
environment turns it off.  Each part it speeds up (the spawn hook, the
walk of every stack) has a pure-Python twin that gives the same result;
the tests hold each pair to it.
"""

from __future__ import annotations

import os
from typing import Any

#: The environment variable that turns the C module off ("1").
PURE_PYTHON = "DF_GMR_PURE_PYTHON"


def module() -> Any:
    """Return ``df_gmr._sites``, or None (not built, or turned off)."""
    if os.environ.get(PURE_PYTHON) == "1":
        return None
    try:
        from df_gmr import _sites  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _sites
