"""Find every greenlet and hub by one heap scan, where df_gmr was not set up.

oslo.reports' on-demand ``TextGuruMeditation(version).run()`` may be
called in a process that never called ``setup_autorun``: without the
registry of ``greenlets``, the report finds greenlets and hubs by one
``gc.get_objects()`` per report.  The scan cannot see objects frozen by
``gc.freeze()`` (it counts them, for the report to say so) and knows the
thread of the scanning thread's own hub only.  What it found is held
weakly until the next scan.
"""

from __future__ import annotations

import dataclasses
import gc
import sys
from typing import Any
import weakref

from df_gmr import _native
from df_gmr.lifecycle import lifecycle


@dataclasses.dataclass
class HeapScan:
    """What one heap scan found, held weakly."""

    greenlets: list[weakref.ref[Any]]
    #: (hub, thread ident or None when the scan cannot tell)
    hubs: list[tuple[weakref.ref[Any], int | None]]
    #: Objects frozen by gc.freeze() at the time: the scan misses them.
    frozen: int


class Scanner:
    """Scans the heap on demand and keeps the last scan."""

    def __init__(self) -> None:
        self.last: HeapScan | None = None

    def scan(self) -> None:
        """Find every greenlet and hub by one heap scan.

        Threads that are gone but not yet collected are left out (their
        finished hub and main greenlets), and so are hubs' threads other
        than the scanning thread's own, which the scan cannot tell.
        """
        greenlet = sys.modules.get("greenlet")
        greenlet_type = getattr(greenlet, "greenlet", None)
        hub_module = sys.modules.get("eventlet.hubs.hub")
        hub_type = getattr(hub_module, "BaseHub", None)
        if greenlet_type is None:
            self.last = HeapScan([], [], gc.get_freeze_count())
            return
        greens = []
        hubs_found = []
        for candidate in gc.get_objects():
            kind = type(candidate)
            if issubclass(kind, greenlet_type):
                greens.append(candidate)
            elif hub_type is not None and issubclass(kind, hub_type):
                hubs_found.append(candidate)
        # A finished hub greenlet or main greenlet is a thread that is
        # gone (df_gmr's section threads of earlier reports among them),
        # not yet collected: not the service's, left out.
        gone = {id(getattr(hub, "greenlet", None)) for hub in hubs_found
                if getattr(getattr(hub, "greenlet", None), "dead", False)}
        # The hubs of df_gmr's own threads (see Lifecycle.note_own_hub),
        # their loop greenlets and their threads' main greenlets are not
        # the service's either.
        own = lifecycle.own_hub_ids()
        theirs: set[int] = set()
        for hub in hubs_found:
            if id(hub) in own:
                loop = getattr(hub, "greenlet", None)
                theirs.update((id(loop), id(getattr(loop, "parent", None))))
        hubs_found = [hub for hub in hubs_found
                      if id(getattr(hub, "greenlet", None)) not in gone
                      and id(hub) not in own]
        found = [weakref.ref(green) for green in greens
                 if not (green.dead and (green.parent is None
                                         or id(green) in gone))
                 and id(green) not in theirs]
        del greens
        local = getattr(sys.modules.get("eventlet.hubs"), "_threadlocal",
                        None)
        own_hub = getattr(local, "hub", None)
        ident = _native.get_ident()
        mine = ident if ident not in lifecycle.own_threads() else None
        self.last = HeapScan(
            found,
            [(weakref.ref(hub), mine if hub is own_hub else None)
             for hub in hubs_found],
            gc.get_freeze_count())

    def greenlets(self) -> list[Any]:
        """Return the greenlets of the last scan that still exist."""
        last = self.last
        if last is None:
            return []
        return [green for green in
                (reference() for reference in last.greenlets)
                if green is not None]

    def hubs(self) -> list[tuple[Any, int]]:
        """Return ``(hub, thread ident or 0)`` of the last scan's hubs."""
        last = self.last
        if last is None:
            return []
        return [(hub, ident or 0) for hub, ident in
                ((reference(), ident) for reference, ident in last.hubs)
                if hub is not None]


#: The process's one scanner.
scanner = Scanner()
