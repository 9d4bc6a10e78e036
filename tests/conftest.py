import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pytest

from tests import compiled
from tests.daemons import child_env


def pytest_configure(config):
    # Once, in the controller: pytest-xdist's workers start later and
    # inherit the outcome through the environment.
    if not hasattr(config, "workerinput"):
        os.environ[compiled.NOT_BUILT] = compiled.build_in_place()


@pytest.fixture(params=["C", "pure Python"])
def hook_env(request):
    """A scene's environment with each spawn hook (see tests/compiled.py)."""
    if request.param == "C":
        reason = compiled.why_not_built()
        if reason:
            pytest.skip(f"the C spawn hook: {reason}")
        return child_env(DF_GMR_PURE_PYTHON=None)
    return child_env(DF_GMR_PURE_PYTHON="1")
