"""Greenlets as threads of execution: gather, classify, describe.

Every live greenlet comes from df_gmr's registry and the hubs' timers and
listeners (a heap scan only where df_gmr was not set up, see
``greenlets``), with the main and hub greenlet of each hub.  Gathering is
kept to the minimum per greenlet (100,000 greenthreads): its stack as
hashable keys, its state and kind, and its wait kind, which identical
stacks share (classified once).
Describing reads, for the first members of each group, what each waits
on, since when, its spawn site and the request it serves.

Every statement is observed or says why it is not known: a spawn site is
the first recorded caller outside df_gmr and the wrapper libraries
(``stacks.WRAPPER_LIBRARIES``), else ``{"unknown": why}``; a greenlet
whose timer or descriptor is in a stale hub (from before a fork,
replaced, or of a thread that is gone) is "stranded": that hub never
runs again, so neither does the greenlet, whatever its timer says.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from typing import TYPE_CHECKING
from typing import Any

from df_gmr import callers
from df_gmr import greenlets
from df_gmr import pools
from df_gmr import speedups
from df_gmr import stacks
from df_gmr.runtime import grouping
from df_gmr.runtime import hubs as hub_reading
from df_gmr.runtime import waits
from df_gmr.runtime.grouping import GroupKey
from df_gmr.runtime.hubs import STALE_HUBS

if TYPE_CHECKING:
    from df_gmr.runtime import Snapshot

#: Why a greenlet has no recorded spawn site.
NOT_RECORDED = {
    "scan": "df_gmr was not set up: spawn sites are recorded from set-up on",
    "before": ("spawned before df_gmr was set up, or from a greenlet's "
               "first frame: not recorded"),
    "bare": "a bare greenlet.greenlet(), not spawned through eventlet",
}


#: Neither a reading nor a site (see Greens._describer).
_NONE = object()


class Greens:
    """The greenlets of one snapshot, gathered into groups."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        #: The registry's copy: greenlet -> raw spawn site (or None).
        self.tracked: dict[Any, tuple[Any, ...] | None] = {}
        #: The other greenlets: the hubs', their threads' main ones, and
        #: those waiting in a hub that the registry does not hold.
        self.extras: list[Any] = []
        self.hub_greenlets: set[Any] = set()
        #: A hub's greenlet and its thread's main greenlet -> the thread
        #: that runs them (0: unknown).
        self.thread_of: dict[Any, int] = {}
        #: id(stack keys) -> the index of its matching wait frame.
        self.match_of: dict[int, int | None] = {}
        #: id(raw spawn site) -> (that raw site, its site); and by the
        #: site's value (``callers.key``) for equal raw sites.
        self.site_of: dict[int, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        self.site_by_key: dict[tuple[int, ...], dict[str, Any]] = {}
        #: Waits read per waited-on object (see ``waits.details``).
        self.wait_readings: dict[tuple[str, int],
                                 tuple[Any, dict[str, Any]]] = {}
        self.hub_waits = snapshot.greenlet_waits()
        self.sites: dict[Any, dict[str, Any]] = {}
        self.prefixes = stacks.wrapper_prefixes()
        self.eventlet = waits.library_dirs(("eventlet",))
        # Under monkey patching, threading's Event, Condition and Queue
        # wait in eventlet's primitives: their own frames name the wait.
        self.stdlib = waits.library_dirs(
            ("threading", "queue", *waits.DB_POOL_LIBRARIES))
        self.found_by = greenlets.found_by()
        self.stranded = _stranded(snapshot.hubs())
        self.looping_starts = _looping_starts()

    def groups(self) -> list[dict[str, Any]]:
        """Return the greenlets grouped, biggest group first."""
        gathered = self._gather()
        self.request_ids = self.snapshot.request_ids()
        self.now = time.monotonic()
        built = grouping.build(gathered, self._describer, id, "spawn_site",
                               own_past_budget=self.request_ids)
        gathered.clear()
        return built

    def _collect(self) -> None:
        # The registry's copy is used as it is (no dict, set or id per
        # greenlet made here: 100,000 greenthreads); the few others are
        # listed beside it, each once.
        tracked = self.tracked = self.snapshot.tracked_with_sites()
        seen: set[Any] = set()
        extras = self.extras

        def add(green: Any) -> None:
            if green not in tracked and green not in seen:
                seen.add(green)
                extras.append(green)

        for green in self.hub_waits.waits:
            add(green)
        for reading in self.snapshot.hubs():
            hub_greenlet = getattr(reading.hub, "greenlet", None)
            if hub_greenlet is None:
                continue
            self.hub_greenlets.add(hub_greenlet)
            self.thread_of[hub_greenlet] = reading.thread
            add(hub_greenlet)
            main = hub_greenlet.parent
            if main is not None:
                self.thread_of.setdefault(main, reading.thread)
                add(main)

    def _gather(self) -> dict[GroupKey, list[Any]]:
        import greenlet

        self._collect()
        # A running greenlet has no gr_frame: its stack is its thread's.
        # Eventlet services run greenthreads on the main thread: a running
        # tracked one there gets the main thread's current frames.
        main = self.snapshot.main_thread
        tracked = self.tracked
        # One dict look-up per greenlet, by its stack's ids and positions
        # (stacks.frame_ids: ints, cheap to hash), then by (state, kind,
        # wait kind), whose strings cache their hashes.  The stack's
        # positions (codes and offsets, which keep the ids' codes alive)
        # are read on a miss only, and made lines once per distinct
        # stack, below.  An entry is (its own wait kind, lists by head,
        # its match, its positions, lists by kind): the C gather reads the
        # first and the last (tests/unit/test_sites.py builds the same).
        by_stack: dict[tuple[Any, ...], tuple[
            str, dict[tuple[str, str, str], list[Any]], int | None,
            stacks.StackKey, dict[str, list[Any]]]] = {}
        on_fd = self.hub_waits.on_fd
        hub_greenlets = self.hub_greenlets
        plain = greenlet.greenlet
        frame_ids = stacks.frame_ids
        memo: dict[int, tuple[int, ...]] = {}  # equal stacks, one key
        # Once per greenlet (100,000 and more): the common case, a parked
        # greenthread, costs attribute reads and one call (its stack's
        # key), and is filed by its kind alone in the lists of its stack's
        # own wait kind (found[4]).  In C where df_gmr._sites was built
        # (_sites.gather: that case, the rest handed to file(), in turn).
        def file(green: Any) -> None:
            frame = green.gr_frame
            keys: stacks.StackKey = ()
            if frame is not None:  # a dead greenlet has no frame
                state = "parked"
                key: tuple[Any, ...] = frame_ids(frame, 200, memo)
            else:
                state = greenlets.state(green)
                # Rare (one running greenlet per thread, the dead): by
                # positions, which never equal a stack's ids (an empty
                # stack is one stack either way).  The running one's, its
                # thread's now, walked steadily (it moves): a hub's or a
                # main greenlet's thread is known; a greenthread runs on
                # the main thread (eventlet services).
                thread = self.thread_of.get(green) or (
                    main if green in tracked else None)
                if state == "running" and thread:
                    frame, keys = self.snapshot.steady_walk(thread)
                else:
                    keys = stacks.frame_positions(frame)
                if state == "running":
                    keys, _ = stacks.without_own_frames(keys)
                key = keys
            if green in hub_greenlets:
                kind = "hub"
            elif green.parent is None:
                kind = "main"
            else:
                kind = "greenlet" if type(green) is plain else "greenthread"
            found = by_stack.get(key)
            if found is None:
                if key is not keys:
                    # Read again: the positions and the key they file
                    # under must be of one moment (a greenlet another
                    # thread switched into meanwhile has moved on).
                    keys = stacks.frame_positions(frame)
                    key = stacks.ids_of(keys)
                classified = waits.outward(
                    keys, waits.classify(keys, waits.EVENTLET_WAITS,
                                         self.eventlet),
                    waits.THREAD_WAITS, self.stdlib)
                found = by_stack[key] = (classified[0], {}, classified[1],
                                         keys, {})
            del frame
            if state == "parked" and kind != "hub" and not (
                    found[0] in _FD_WHEN_LISTENED and green in on_fd):
                # _wait_kind's answer, without the call: the stack's own.
                members = found[4].get(kind)
                if members is None:
                    members = found[4][kind] = found[1].setdefault(
                        (state, kind, found[0]), [])
            else:
                wait_kind = _wait_kind(state, kind, found[0],
                                       green in on_fd)
                members = found[1].get((state, kind, wait_kind))
                if members is None:
                    members = found[1][(state, kind, wait_kind)] = []
            members.append(green)

        greens = itertools.chain(tracked, self.extras)
        if _C_GATHER is not None:
            _C_GATHER(greens, by_stack, memo, hub_greenlets, on_fd,
                      _FD_WHEN_LISTENED, plain, file)
        else:
            for green in greens:
                file(green)
        self.extras.clear()
        gathered: dict[GroupKey, list[Any]] = {}
        same: dict[stacks.StackKey, stacks.StackKey] = {}
        for _, heads, match, positions, _ in by_stack.values():
            # Stacks at different instructions of the same lines are one
            # stack: one tuple, so that it is found by identity.
            keys = stacks.lined(positions)
            keys = same.setdefault(keys, keys)
            # By id for the members' details: the keys stay alive in the
            # gathered groups while they are described.
            self.match_of[id(keys)] = match
            for head, members in heads.items():
                group = gathered.setdefault((*head, keys), members)
                if group is not members:
                    group.extend(members)
        return gathered

    def _spawn_site(self, green: Any) -> dict[str, Any]:
        """Describe where a greenlet was spawned, or why that is unknown."""
        raw = self.tracked.get(green) or None
        started = self.looping_starts.get(id(green), ())
        if raw is None or started:
            positions = greenlets.spawn_positions(raw) if raw else None
            return self._site(green, positions or (), started)
        # Greenlets spawned from one place mostly share one raw site tuple
        # (see greenlets' spawn hook): found by identity, then by its
        # codes' identities and offsets, never by hashing code objects.
        shared = self.site_of.get(id(raw))
        if shared is not None and shared[0] is raw:
            return shared[1]
        key = callers.key(raw)
        site = self.site_by_key.get(key)
        if site is None:
            site = self.site_by_key[key] = self._site(
                green, greenlets.spawn_positions(raw) or (), ())
        self.site_of[id(raw)] = (raw, site)
        return site

    def _site(self, green: Any, positions: tuple[Any, ...],
              started: tuple[Any, ...]) -> dict[str, Any]:
        key: tuple[Any, ...]
        if positions or started:
            key = ("recorded", positions, started)
        elif self.found_by == "heap scan":
            key = ("scan",)
        elif green in self.tracked:
            key = ("before",)
        else:
            key = ("bare",)
        if key not in self.sites:
            if key[0] == "recorded":
                pairs = [*zip(positions[::2], positions[1::2], strict=True),
                         *started]
                self.sites[key] = stacks.origin(pairs, self.prefixes)
            else:
                self.sites[key] = {"unknown": NOT_RECORDED[key[0]]}
        return self.sites[key]

    def _describer(self, key: GroupKey) -> grouping.Describe:
        """Return the describer of one group's members.

        What the members share (their state, kind, wait kind and stack) is
        looked at once per group; the returned function runs once per
        member (up to DETAILS_PER_GROUP of each group): dict reads and
        attribute reads, calls only for what the member has.
        """
        state, kind, wait_kind, keys = key
        match = self.match_of[id(keys)]
        plain_parked = state == "parked" and kind != "hub"
        reads_wait = match is not None and plain_parked
        steps = len(keys) - 1 - match if match is not None else 0
        plan = self.snapshot.lock_plan(keys) if (
            state == "parked" and kind == "greenthread") else None
        spawned = kind not in ("main", "hub")
        sleeps = reads_wait and wait_kind == "sleep"
        by_object = reads_wait and wait_kind in waits.BY_OBJECT
        request_ids = self.request_ids
        hub_waits = self.hub_waits.waits
        hub_entry = self.hub_waits.entry
        stranded = self.stranded
        readings = self.wait_readings
        tracked, site_of = self.tracked, self.site_of
        looping_starts = self.looping_starts
        now = self.now
        details = waits.details

        # The reading and site of the member described just before, when
        # it had nothing else (see SAME below).
        last: list[Any] = [_NONE, _NONE]
        # This group's readings by the id of the waited-on object (its
        # frame's ``self``): waits.details' shared reading without its
        # call, its tuple key and its checks, once per member.
        seen: dict[int, tuple[Any, dict[str, Any]]] = {}
        # eventlet's Event, Semaphore and queue list their waiting
        # greenlets, from the wait's start to its finally: a member listed
        # by the object that the member before it waits on waits on it
        # too, and is described without its frame's locals (see
        # waits.waiting_greenlets).
        joins = by_object and wait_kind in waits.LISTS_WAITERS
        # (the greenlets that object lists, its reading)
        joined: list[Any] = [None, None]
        listed: dict[int, tuple[Any, Any]] = {}  # each object's, once

        def describe(index: int, green: Any
                     ) -> dict[str, Any] | grouping.Same | None:
            ident = id(green)
            if index >= grouping.DETAILS_PER_GROUP:
                if ident in request_ids:
                    return {"id": ident, "wait": {"kind": wait_kind},
                            "request_id": request_ids[ident],
                            "unread": True}
                return None
            waits_in_hub = hub_waits.get(green)
            stranded_by = stranded.get(ident) if stranded else None
            # A parked greenthread's wait in a hub (a sleeper's timer, a
            # reader's descriptor), not stranded: made as its own wait,
            # kind first, at once (see _wait, which says the same).
            own_wait = plain_parked and stranded_by is None
            hub_wait = None if waits_in_hub is None else hub_entry(
                waits_in_hub, wait_kind if own_wait else None)
            reading: dict[str, Any] | None = None
            timed_sleep = sleeps and hub_wait is not None and \
                "sleep_seconds" in hub_wait
            if timed_sleep:
                pass  # its length is its timer's (below): no locals read
            elif joins and joined[0] is not None and green in joined[0]:
                reading = joined[1]
            elif reads_wait:
                frame = green.gr_frame
                if frame is not None:
                    # waits.nth_back, inline: once per member.
                    for _ in range(steps):  # out to the wait's own frame
                        if frame.f_back is None:
                            break
                        frame = frame.f_back
                    owner = None
                    if by_object:
                        try:
                            owner = frame.f_locals.get("self")
                        except Exception:  # details says why
                            owner = None
                        known = seen.get(id(owner)) if owner is not None \
                            else None
                        if known is not None and known[0] is owner:
                            reading = known[1]
                    if reading is None:
                        reading = details(wait_kind, frame, readings)
                        if owner is not None:
                            seen[id(owner)] = (owner, reading)
                    if joins and owner is not None:
                        joined[0] = waits.waiting_greenlets(
                            wait_kind, owner, listed)
                        joined[1] = reading
                del frame
            site = None
            if spawned:
                # The common case inline: a site shared by identity (see
                # _spawn_site for the rest).
                raw = tracked.get(green)
                shared = site_of.get(id(raw)) if raw else None
                if shared is not None and shared[0] is raw and \
                        ident not in looping_starts:
                    site = shared[1]
                else:
                    site = self._spawn_site(green)
            since = None
            if hub_wait is None and stranded_by is None and plain_parked \
                    and not plan and ident not in request_ids:
                # Nothing but its wait and its site: the same reading and
                # site objects as the member just before, which had
                # nothing else either (readings of one waited-on object
                # are shared, see waits.details), make the same member.
                # 5,000 waiters of one Event cost one dict.
                if reading is last[0] and site is last[1]:
                    return grouping.SAME
                last[0], last[1] = reading, site
                wait: dict[str, Any] = {"kind": wait_kind}
            elif own_wait and hub_wait is not None:
                last[0] = _NONE
                wait = hub_wait
                since = wait.pop("since", None)
                seconds = wait.pop("sleep_seconds", None)
                if timed_sleep:
                    wait["seconds"] = seconds
            else:
                last[0] = _NONE
                wait = _wait(state, kind, wait_kind, hub_wait, stranded_by)
                since = wait.pop("since", None)
                if timed_sleep and hub_wait is not None:
                    wait["seconds"] = hub_wait["sleep_seconds"]
            if reading:
                wait.update(reading)
            member: dict[str, Any] = {"id": ident, "wait": wait}
            if plan:
                member.update(self.snapshot.locks_by_plan(
                    plan, green.gr_frame))
            if spawned:
                member["spawn_site"] = site
            if ident in request_ids:
                member["request_id"] = request_ids[ident]
            if since is not None:
                member["waiting_seconds"] = round(
                    now - since, 3) + 0.0  # never "-0.0"
            return member

        return describe


#: Green Threads' gather loop in C (see ``Greens._gather``), or None.
_C_GATHER = getattr(speedups.module(), "gather", None)
#: Stack wait kinds that a greenlet on a hub listener's fd waits as "fd".
_FD_WHEN_LISTENED = frozenset({"unknown", "no frames"})


def _wait_kind(state: str, kind: str, by_stack: str, on_fd: bool) -> str:
    """Return the wait kind that groups a greenlet."""
    if state == "running":
        return "running"
    if state in ("not started", "finished"):
        return state
    if kind == "hub":
        return "hub loop"
    if on_fd and by_stack in _FD_WHEN_LISTENED:
        return "fd"
    return by_stack


def _wait(state: str, kind: str, wait_kind: str,
          hub_wait: dict[str, Any] | None, stranded: str | None = None
          ) -> dict[str, Any]:
    if state in ("running", "finished"):
        return {"kind": state}
    if state == "not started":
        wait: dict[str, Any] = {"kind": "not started"}
        if stranded:
            wait["stranded"] = stranded
        elif hub_wait and "due_in" in hub_wait:
            wait["starts_in"] = hub_wait["due_in"]
        return wait
    if kind == "hub":
        return {"kind": "hub loop", "stranded": stranded} if stranded \
            else {"kind": "hub loop"}
    wait = {"kind": wait_kind}
    if hub_wait:
        if "fd" in hub_wait:
            wait["fd"] = hub_wait["fd"]
            wait["mode"] = hub_wait["mode"]
            wait["fd_is"] = hub_wait["fd_is"]
        elif "due_in" in hub_wait and not stranded:
            wait["due_in"] = hub_wait["due_in"]
        if "since" in hub_wait:
            wait["since"] = hub_wait["since"]
    if stranded:
        wait["stranded"] = stranded
    return wait


def _stranded(readings: list[hub_reading.HubReading]) -> dict[int, str]:
    """Map greenlets waiting in a stale hub to why they never run."""
    found: dict[int, str] = {}
    for reading in readings:
        where = STALE_HUBS.get(reading.status)
        if where is None:
            continue
        loop = getattr(reading.hub, "greenlet", None)
        if loop is not None:
            found[id(loop)] = f"the loop of {where}, it will never run"
        for timer in reading.timers:
            if timer.greenlet is not None:
                found.setdefault(id(timer.greenlet), (
                    f"its timer is in {where}, it will never run"))
        for listener in reading.listeners:
            if listener.greenlet is not None:
                found.setdefault(id(listener.greenlet), (
                    f"it waits on fd {listener.fd} in {where}, it will "
                    "never run"))
    return found


def _looping_starts() -> dict[int, tuple[Any, ...]]:
    """Map looping calls' greenlets to the recorded callers of start()."""
    found = {}
    for call in pools.tracked()["looping_calls"]:
        green = getattr(call, "_thread", None)
        site = pools.start_site(call)
        if green is not None and site:
            found[id(green)] = site
    return found


def package_dir(name: str) -> str | None:
    """Return the directory of the loaded package ``name``, if any."""
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    return os.path.dirname(path) + os.sep if path else None
