"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Callable
import json
from typing import Any

import pytest

from tests.daemons import outcome
from tests.daemons import run_python

#: ``scene(name, *flags)``: a scene's JSON document.
Scene = Callable[..., dict[str, Any]]


@pytest.fixture(scope="session")
def hub_pools_scene() -> Scene:
    """Return a function giving tests/scripts/hub_pools_scene.py's document.

    Each scene (name and flags) runs once, in a fresh interpreter, the
    first time a test asks for it; the tests read their part of it.
    """
    documents: dict[tuple[str, ...], dict[str, Any]] = {}

    def scene(name: str, *flags: str) -> dict[str, Any]:
        key = (name, *flags)
        if key not in documents:
            result = run_python("hub_pools_scene.py", *key)
            document = json.loads(result.stdout.splitlines()[-1])
            assert document["errors"] == [], outcome(result)
            documents[key] = document
        return documents[key]

    return scene
