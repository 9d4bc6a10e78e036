"""Profiling for a benchmark child: cProfile in every thread df_gmr starts."""

from __future__ import annotations

import sys
from typing import Any


def start_profile() -> Any:
    """Start cProfile here and in every thread df_gmr starts from now on.

    df_gmr collects sections in threads of its own (started through
    ``df_gmr._native.start_thread``); each gets its own profiler, and
    ``print_profile`` merges them.
    """
    import cProfile

    main = cProfile.Profile()
    main.thread_profiles = []
    try:
        from df_gmr import _native
    except ImportError:
        _native = None
    start_thread = getattr(_native, "start_thread", None)
    if start_thread is not None:
        def profiled_start(function: Any, args: tuple[Any, ...] = ()
                           ) -> int:
            def profiled(*arguments: Any) -> Any:
                profile = cProfile.Profile()
                main.thread_profiles.append(profile)
                profile.enable()
                try:
                    return function(*arguments)
                finally:
                    profile.disable()

            return int(start_thread(profiled, args))

        _native.start_thread = profiled_start
    main.enable()
    return main


def print_profile(profiler: Any, top: int) -> None:
    """Print the ``top`` entries by cumulative and by own time, to stderr."""
    import pstats

    profiler.disable()
    for order in ("cumulative", "tottime"):
        stats = pstats.Stats(profiler, stream=sys.stderr)
        for profile in profiler.thread_profiles:
            stats.add(profile)
        stats.sort_stats(order).print_stats(int(top))


# -- measurements -----------------------------------------------------------
