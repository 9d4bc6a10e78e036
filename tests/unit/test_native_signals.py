"""df_gmr's signal masks are read as plain ints: the same sets as
``signal``'s, without making an enum member of each number."""

from __future__ import annotations

import signal

import pytest

from df_gmr import _native
from df_gmr.lifecycle import process_signals

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"),
                                reason="no signal masks on this system")


def test_valid_signals_are_signals_own_as_plain_ints():
    found = _native.valid_signals()
    assert found == {int(signum) for signum in signal.valid_signals()}
    assert all(type(signum) is int for signum in found)


def test_a_full_mask_is_blocked_and_restored_as_plain_ints():
    blocked = process_signals()
    before = _native.signal_mask(signal.SIG_BLOCK, blocked)
    try:
        now = _native.signal_mask(signal.SIG_BLOCK, ())
        # Every process signal, real-time ones included (no enum has them).
        assert now >= blocked
        assert any(signum >= signal.SIGRTMIN for signum in now)
        assert all(type(signum) is int for signum in now)
        assert now == {int(signum) for signum in
                       signal.pthread_sigmask(signal.SIG_BLOCK, ())}
    finally:
        _native.signal_mask(signal.SIG_SETMASK, before)
    assert _native.signal_mask(signal.SIG_BLOCK, ()) == before
