"""A hook's cost measured in one process: swapped out and back in, paired.

Separate processes of the same code vary in throughput by more than a
hook costs; swapped in and out in one process, runs interleaved, that
variance is out, and what is left is the hook's.
"""

from __future__ import annotations

from collections.abc import Callable


def paired_shares(pairs: int, runs: int, swap: Callable[[bool], None],
                  rate: Callable[[], float]) -> list[float]:
    """Return hooked / unhooked throughput, pair by pair.

    ``swap(True)`` puts the hook in, ``swap(False)`` takes it out; each
    pair is ``runs`` runs of ``rate()`` each way, interleaved (the side
    that starts alternates), and keeps each side's best run: the one
    least disturbed.  The hook is back in at the end, whatever happens.
    """
    shares = []
    try:
        for index in range(pairs):
            rates: dict[bool, list[float]] = {True: [], False: []}
            for turn in range(2 * runs):
                hooked = (turn + index) % 2 == 0
                swap(hooked)
                rates[hooked].append(rate())
            shares.append(max(rates[True]) / max(rates[False]))
    finally:
        swap(True)
    return shares
