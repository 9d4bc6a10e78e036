"""A call's chain is resolved in one walk: what it is made on, and what."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from df_gmr.runtime import callsite

TOP = SimpleNamespace(inner=SimpleNamespace(value=5))


def _frame():
    local = TOP  # noqa: F841 (read from the frame)
    return sys._getframe()


def _chain(root: str, *attributes: str, kind: str = "LOAD_FAST"):
    return ((kind, root), *(("attr", name) for name in attributes))


@pytest.mark.parametrize(("chain", "owner", "value"), [
    (_chain("local"), None, TOP),
    (_chain("local", "inner"), TOP, TOP.inner),
    (_chain("local", "inner", "value"), TOP.inner, 5),
    (_chain("local", "missing", "value"), None, None),  # lost before last
    (_chain("local", "inner", "missing"), TOP.inner, None),  # at the last
    (_chain("absent", "inner"), None, None),
    (_chain("TOP", "inner", "value", kind="LOAD_GLOBAL"), TOP.inner, 5),
    (_chain("len", kind="LOAD_GLOBAL"), None, len),
])
def test_resolve_both_returns_the_owner_and_the_value(chain, owner, value):
    found = callsite.resolve_both(_frame(), chain)
    assert found[0] is owner and found[1] is value
    assert callsite.resolve(_frame(), chain) is value
