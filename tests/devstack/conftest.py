from __future__ import annotations

from pathlib import Path

import pytest

from tests.devstack.harness import Devstack


@pytest.fixture
def devstack(tmp_path: Path) -> Devstack:
    """Return a scratch DevStack with nova and neutron services enabled."""
    return Devstack(root=tmp_path, variables={
        "ENABLED_SERVICES": "n-api,n-cpu,n-sch,q-agt",
    })
