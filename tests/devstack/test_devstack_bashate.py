"""The plugin's shell passes bashate with DevStack's own flags.

DevStack's tox.ini (testenv:bashate) runs ``bashate -v -iE006 -eE005,E042``:
long lines are fine, a missing #! and a "local x=$(...)" are errors.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.devstack.harness import FAKE_DEVSTACK
from tests.devstack.harness import PLUGIN_DIR

DEVSTACK_BASHATE_FLAGS = ["-v", "-iE006", "-eE005,E042"]
# "python -m bashate" is broken in bashate 2.1; call what its script calls.
RUN_BASHATE = ("import sys; from bashate.bashate import main; "
               "sys.argv[0] = 'bashate'; sys.exit(main())")


@pytest.mark.skipif(importlib.util.find_spec("bashate") is None,
                    reason="bashate is not installed (pip install bashate)")
def test_plugin_shell_passes_bashate_with_devstack_flags() -> None:
    files = [PLUGIN_DIR / "plugin.sh", PLUGIN_DIR / "settings",
             FAKE_DEVSTACK]
    result = subprocess.run(
        [sys.executable, "-c", RUN_BASHATE, *DEVSTACK_BASHATE_FLAGS,
         *map(str, files)],
        capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error(s) found" not in result.stdout + result.stderr
