"""The C spawn hook (df_gmr/_sites.c) for the tests: built in place.

The tests import df_gmr from this checkout (tests/conftest.py, and
``child_env`` for the scenes), where no install put the compiled module.
``build_in_place`` builds it next to its source through setup.py, as an
editable install does, once per session (before pytest-xdist starts its
workers) and again only when the source is newer.  Where it cannot be
built (no compiler, another Python), the tests of the C hook are skipped
with the reason, and the pure-Python hook, which every test also runs,
is what df_gmr uses.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import sysconfig

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(SOURCE_ROOT, "df_gmr", "_sites.c")
TARGET = os.path.join(SOURCE_ROOT, "df_gmr",
                      "_sites" + (sysconfig.get_config_var("EXT_SUFFIX")
                                  or ".so"))
#: Set by build_in_place for the workers: empty when built, else why not.
NOT_BUILT = "DF_GMR_TEST_SITES_NOT_BUILT"


def build_in_place() -> str:
    """Build the C module next to its source; return "" or why not.

    Through setup.py (``build_ext --inplace``), as an install builds it:
    setup.py alone decides where the module applies.
    """
    if os.path.exists(TARGET) and \
            os.path.getmtime(TARGET) >= os.path.getmtime(SOURCE):
        return ""
    try:
        result = subprocess.run(
            [sys.executable, "setup.py", "--quiet", "build_ext",
             "--inplace"], capture_output=True, text=True, timeout=300,
            cwd=SOURCE_ROOT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"cannot run setup.py: {error}"
    if not os.path.exists(TARGET) or \
            os.path.getmtime(TARGET) < os.path.getmtime(SOURCE):
        # Its last lines: the error, whole (a cut line hides its cause).
        lines = (result.stdout + result.stderr).strip().splitlines()
        if result.returncode == 0 and not any("df_gmr._sites" in line
                                              for line in lines):
            return (f"setup.py builds it for CPython 3.11 or newer with "
                    f"the GIL, not for {platform.python_implementation()} "
                    f"{platform.python_version()}")
        return ("setup.py build_ext did not build it: "
                + " / ".join(lines[-3:]))
    return ""


def why_not_built() -> str:
    """Return why the C module is not there ("" when it is)."""
    return os.environ.get(NOT_BUILT, "")
