"""A call's chain is resolved in one walk, as two walks would."""

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


@pytest.mark.parametrize("chain", [
    _chain("local"),
    _chain("local", "inner"),
    _chain("local", "inner", "value"),
    _chain("local", "missing", "value"),  # lost before the last link
    _chain("local", "inner", "missing"),  # lost at the last link
    _chain("absent", "inner"),
    _chain("TOP", "inner", "value", kind="LOAD_GLOBAL"),
    _chain("len", kind="LOAD_GLOBAL"),
])
def test_resolve_both_finds_what_two_walks_find(chain):
    frame = _frame()
    owner = callsite.resolve(frame, chain[:-1]) if len(chain) > 1 else None
    whole = callsite.resolve(frame, chain)
    found = callsite.resolve_both(frame, chain)
    assert found[0] is owner and found[1] is whole
    if chain == _chain("local", "inner", "missing"):
        assert found == (TOP.inner, None)
    if chain == _chain("local", "missing", "value"):
        assert found == (None, None)
