"""The blocked-hub watchdog (opt-in): a report when the hub stops turning.

Each eventlet hub gets a heartbeat: a hub timer (not a greenthread, so it
belongs to the hub and dies with it) that stamps the time and re-arms
itself every ``BEAT`` seconds.  A real OS thread looks at the main
thread's live hub; when its last beat is older than ``interval`` seconds,
something is blocking the hub, and the thread asks for a report, its
trigger marked ``watchdog``, at most once per ``min_gap`` seconds.

Nothing of this runs unless ``[df_gmr] watchdog_interval`` is positive.
"""

from __future__ import annotations

import os
import time
from typing import Any

from df_gmr import _native
from df_gmr import greenlets
from df_gmr import trigger

BEAT = 0.5
BEAT_ATTR = "_df_gmr_beat"
#: A hub copied into a forked child does not turn there: only hubs armed
#: in this very process count.
BEAT_PID_ATTR = "_df_gmr_beat_pid"

_settings: tuple[float, float] | None = None
_thread_pid = 0


def start(interval: float, min_gap: float) -> None:
    """Arm the watchdog in this process and in its forked children."""
    global _settings
    if interval <= 0:
        return
    _settings = (float(interval), float(min_gap))
    greenlets.on_new_hub(_arm)
    for hub, _ in greenlets.hubs():
        _arm(hub)
    trigger.on_fork_in_child(_restart)
    _start_thread()


def _arm(hub: Any) -> None:
    # Runs in the hub's own thread (at hub creation or from set-up in the
    # main thread), so scheduling a timer on it is safe.
    if getattr(hub, BEAT_PID_ATTR, None) != os.getpid():
        setattr(hub, BEAT_PID_ATTR, os.getpid())
        setattr(hub, BEAT_ATTR, time.monotonic())
        hub.schedule_call_global(BEAT, _beat, hub)


def _beat(hub: Any) -> None:
    setattr(hub, BEAT_ATTR, time.monotonic())
    hub.schedule_call_global(BEAT, _beat, hub)


def _restart() -> None:
    if _settings is not None:
        _start_thread()


def _start_thread() -> None:
    global _thread_pid
    if _thread_pid == os.getpid():
        return
    _thread_pid = os.getpid()
    _native.start_thread(_watch, (os.getpid(),))


def _main_hub() -> Any:
    main_ident = trigger.main_thread_ident()
    found = None
    for hub, ident in greenlets.hubs():
        if ident == main_ident and getattr(hub, BEAT_PID_ATTR,
                                           None) == os.getpid():
            found = hub  # the most recent one is the live one
    return found


def _watch(pid: int) -> None:
    last_report = 0.0
    while _settings is not None and os.getpid() == pid:
        interval, min_gap = _settings
        _native.sleep(min(1.0, interval / 4))
        hub = _main_hub()
        if hub is None:
            continue
        now = time.monotonic()
        stalled = now - getattr(hub, BEAT_ATTR, now)
        if stalled > interval and now - last_report >= min_gap:
            last_report = now
            trigger.request(f"watchdog: hub blocked for {stalled:.1f} s")
