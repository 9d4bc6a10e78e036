"""Triggers polled by a real OS thread: a file's change, a blocked hub.

Both run off the hub, so they work while a greenthread blocks it, and
both only ask the reporting thread for a report (see ``trigger``).

* ``[oslo_reports] file_event_handler``: a report whenever the file's
  modification time changes.  A missing or unreadable file is said once
  on stderr, and watching goes on (the file may be created later).
* ``[df_gmr] watchdog_interval`` (opt-in): each eventlet hub gets a
  heartbeat, a hub timer (not a greenthread, so it belongs to the hub and
  dies with it) that stamps the time and re-arms itself every ``BEAT``
  seconds.  When the main thread's live hub has not beaten for
  ``interval`` seconds, something blocks it: a report, its trigger marked
  ``watchdog``, at most once per ``min_gap`` seconds.

Both restart in every forked worker (see ``lifecycle``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from df_gmr import _native
from df_gmr import greenlets
from df_gmr import trigger
from df_gmr.lifecycle import lifecycle
from df_gmr.streams import complain

BEAT = 0.5
BEAT_ATTR = "_df_gmr_beat"
#: A hub copied into a forked child does not turn there: only hubs armed
#: in this very process count.
BEAT_PID_ATTR = "_df_gmr_beat_pid"


@dataclasses.dataclass
class FileWatch:
    """Report whenever ``path``'s modification time changes."""

    path: str
    interval: float
    label: str

    def start(self) -> None:
        """Watch from now on, and in every worker."""
        lifecycle.on_worker_start(self._run)
        self._run()

    def _run(self) -> None:
        lifecycle.start_thread("file trigger", self._loop, (os.getpid(),))

    def _loop(self, pid: int) -> None:
        last = _mtime(self.path)
        complained = False
        while os.getpid() == pid:
            _native.sleep(self.interval)
            current = _mtime(self.path)
            if current is None:
                if not complained:
                    complain(f"cannot read the trigger file {self.path}; "
                             "still watching")
                    complained = True
                continue
            complained = False
            if current != last:
                trigger.request(self.label)
            last = current


def watch_file(path: str, interval: float, label: str = "") -> None:
    """Report whenever ``path`` changes (polled every ``interval`` s)."""
    FileWatch(path, max(interval, 0.05), label or f"file {path}").start()


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime_ns / 1e9
    except OSError:
        return None


@dataclasses.dataclass
class HubWatchdog:
    """Report when the main thread's hub has not turned for a while."""

    interval: float
    min_gap: float

    def start(self) -> None:
        """Arm every hub, now and later, and watch, in workers too."""
        greenlets.on_new_hub(_arm)
        for hub, _ in greenlets.hubs():
            _arm(hub)
        lifecycle.on_worker_start(self._run)
        self._run()

    def _run(self) -> None:
        lifecycle.start_thread("watchdog", self._watch, (os.getpid(),))

    def _watch(self, pid: int) -> None:
        last_report = 0.0
        while os.getpid() == pid:
            _native.sleep(min(1.0, self.interval / 4))
            hub = _main_hub()
            if hub is None:
                continue
            now = time.monotonic()
            stalled = now - getattr(hub, BEAT_ATTR, now)
            if stalled > self.interval and now - last_report >= self.min_gap:
                last_report = now
                trigger.request(f"watchdog: hub blocked for {stalled:.1f} s")


def start_watchdog(interval: float, min_gap: float) -> None:
    """Arm the watchdog (nothing when ``interval`` is not positive)."""
    if interval > 0:
        HubWatchdog(float(interval), float(min_gap)).start()


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


def _main_hub() -> Any:
    main_ident = trigger.main_thread_ident()
    found = None
    for hub, ident in greenlets.hubs():
        if ident == main_ident and getattr(hub, BEAT_PID_ATTR,
                                           None) == os.getpid():
            found = hub  # the most recent one is the live one
    return found
