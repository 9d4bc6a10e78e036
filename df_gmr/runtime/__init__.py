"""One snapshot of the process's concurrency, read once per report.

Every section reads the ``Snapshot`` of its report (``context.runtime``)
instead of walking threads, greenlets, hubs and descriptors itself: the
native threads and their frames, the hubs' timers and listeners, what
each greenlet waits on in a hub, the request ids, the descriptors' and
sockets' descriptions.  Each part is read on first use and kept for the
rest of the report, so nothing is read twice and sections that show one
part (the hubs' timers, the registry) show the same reading of it.  The
service keeps running meanwhile: a thread or greenthread that moves
between two parts' readings shows its state at each (the report's header
says so).  Threads and greenlets are the same kind of thing there (a
stack, a state, a wait, an origin), classified by ``waits`` and grouped
by ``grouping``.

A snapshot holds live frames while the report is built; ``release()``
drops them (the builder calls it).
"""

from __future__ import annotations

import dataclasses
import sys
import time
import types
from types import FrameType
from typing import Any

from df_gmr import greenlets
from df_gmr import naming
from df_gmr import stacks
from df_gmr import trigger
from df_gmr.lifecycle import UNREGISTERED_ROLE
from df_gmr.lifecycle import lifecycle
from df_gmr.runtime import hubs as hub_reading
from df_gmr.runtime import locks
from df_gmr.runtime import requests
from df_gmr.runtime.fds import FdTable
from df_gmr.runtime.withblocks import Plan
from df_gmr.runtime.withblocks import code_blocks
from df_gmr.stacks import StackKey

#: What a greenlet waits on in a hub: the soonest timer that wakes or
#: starts it, or the descriptor it waits on (with its timeout's timer, if
#: any).
HubWait = hub_reading.Timer | tuple[hub_reading.Listener,
                                    hub_reading.Timer | None]


@dataclasses.dataclass
class GreenletWaits:
    """What greenlets wait on in hubs: a timer or a descriptor.

    Kept as the hubs were read (their own timer and listener records, by
    greenlet); ``entry`` makes one greenlet's plain description when
    it is described: 25,000 sleepers cost no dict each, only those read.
    """

    #: greenlet -> what it waits on (by the greenlet itself, which hashes
    #: by identity: no id made per timer).
    waits: dict[Any, HubWait] = dataclasses.field(default_factory=dict)
    #: The greenlets waiting on a descriptor.
    on_fd: set[Any] = dataclasses.field(default_factory=set)
    #: ``time.monotonic()`` when the hubs were read (``since`` is on it).
    offset: float = 0.0
    fds: FdTable | None = None

    def entry(self, wait: HubWait, kind: str | None = None
              ) -> dict[str, Any]:
        """Describe one wait of ``waits``: ``due_in``, ``since`` (on the
        monotonic clock) and, for ``eventlet.sleep``, ``sleep_seconds``;
        or ``fd``, ``mode``, ``fd_is`` and ``since``.  With ``kind``, the
        dict starts with it (a member's wait, made at once: one dict per
        sleeper, not two)."""
        if isinstance(wait, tuple):
            listener, timed = wait
            entry: dict[str, Any] = {} if kind is None else {"kind": kind}
            entry["fd"] = listener.fd
            entry["mode"] = listener.mode
            entry["fd_is"] = self.fds.describe(listener.fd) \
                if self.fds is not None else None
            # A wait with a timeout has its timer too: it began when the
            # timer was set.
            if timed is not None and timed.seconds is not None:
                entry["since"] = self.offset + timed.due_in - timed.seconds
            return entry
        timer = wait
        entry = {"due_in": timer.due_in} if kind is None else {
            "kind": kind, "due_in": timer.due_in}
        if timer.seconds is not None:
            entry["since"] = self.offset + timer.due_in - timer.seconds
            # eventlet.sleep's own timer, the greenlet's switch with no
            # arguments (a Timeout's throws): the length of the sleep, as
            # its frame's ``seconds``.  A builtin method's name is C's: no
            # application code is run.
            callback = timer.callback
            if not timer.args and \
                    type(callback) is types.BuiltinMethodType \
                    and callback.__name__ == "switch":
                entry["sleep_seconds"] = round(timer.seconds, 3)
        return entry


class Snapshot:
    """The concurrency of this process, as read for one report."""

    def __init__(self, builder_thread: int | None = None) -> None:
        #: The thread building the report (its df_gmr frames are left out).
        self.builder_thread = builder_thread
        self.main_thread = trigger.main_thread_ident()
        self.fds = FdTable()
        #: The ``with`` blocks of code objects (a cache kept across reports).
        self.with_blocks = code_blocks
        self._frames: dict[int, FrameType] | None = None
        self._hubs: list[hub_reading.HubReading] | None = None
        self._waits: GreenletWaits | None = None
        self._request_ids: dict[int, str] | None = None
        #: id(stack keys) -> (those keys, a lockutils frame?, a with block?)
        #: The keys are kept and compared by identity: an id is reused
        #: once its tuple is freed (another section's stacks).
        self._lock_stacks: dict[int, tuple[StackKey, bool, Plan]] = {}
        self._tracked: dict[Any, tuple[Any, ...] | None] | None = None
        self._own: dict[int, str] | None = None
        self._known: dict[int, Any] | None = None
        # Source files' status read once for this report's stacks.
        stacks.source_lines.begin()
        naming.forget_plain_types()

    def frames(self) -> dict[int, FrameType]:
        """Return every native thread's current frame (read once; a
        running thread's stack is walked from its frame now, see
        ``steady_walk``)."""
        if self._frames is None:
            self._frames = sys._current_frames()
        return self._frames

    def moved(self, frames: dict[int, FrameType]) -> list[int]:
        """Return the threads whose innermost frame is no longer the one
        in ``frames`` (read just before their stacks were walked)."""
        now = sys._current_frames()
        return [ident for ident, frame in frames.items()
                if now.get(ident) is not frame]

    def steady_walk(self, ident: int) -> tuple[FrameType | None, StackKey]:
        """Walk a live thread's stack from its innermost frame now, again
        while that frame changed during the walk (three tries at most).

        A thread's Python frames move only while it holds the GIL, and
        the walking thread holds it through a walk unless the interpreter
        switches threads in the middle (every few milliseconds at most).
        Walked from a frame read before such a switch, a frame that has
        returned since still links to its caller, which has moved on:
        the stack would join two moments (a line shown calling a function
        it does not call).  The same innermost frame before and after the
        walk means the frames outside it stood still.  Returns the frame
        walked from and its positions (``None, ()``: the thread ended).
        """
        frame: FrameType | None = None
        positions: StackKey = ()
        for _ in range(3):
            frame = sys._current_frames().get(ident)
            if frame is None:
                return None, ()
            positions = stacks.frame_positions(frame)
            if sys._current_frames().get(ident) is frame:
                break
        if frame is not None:
            self.frames()[ident] = frame  # what the other readings see
        return frame, positions

    def lock_plan(self, keys: StackKey) -> tuple[bool, Plan] | None:
        """Return where a stack's locks are to be read, once per stack:
        ``(has a lockutils frame, with-block plan)``, None when neither.

        ``keys`` is the stack's (code, line) tuple, the same object for
        every member of a group: 100,000 identical waiters outside any
        lock cost no walk each.
        """
        walks = self._lock_stacks.get(id(keys))
        if walks is None or walks[0] is not keys:
            walks = self._lock_stacks[id(keys)] = (
                keys, locks.on_stack(keys), self.with_blocks.plan(keys))
        return (walks[1], walks[2]) if walks[1] or walks[2] else None

    def locks_by_plan(self, plan: tuple[bool, Plan], frame: FrameType | None
                      ) -> dict[str, Any]:
        """Return the locks of one member of a stack (see ``lock_plan``)."""
        found: dict[str, Any] = {}
        if plan[0]:
            named = locks.named_locks(frame)
            if named:
                found["named_locks"] = named
        if plan[1]:
            held = self.with_blocks.held_by_plan(frame, plan[1])
            if held:
                found["held_locks"] = held
        return found

    def tracked_with_sites(self) -> dict[Any, tuple[Any, ...] | None]:
        """Return the live tracked greenlets with their spawn sites, read
        once per report (every section that needs them shares one read
        of the registry: 100,000 greenthreads cost it once)."""
        if self._tracked is None:
            self._tracked = greenlets.tracked_with_sites()
        return self._tracked

    def own_threads(self) -> dict[int, str]:
        """Return df_gmr's own threads: ident -> role (read once).

        Those of the registry, and those caught starting or ending (out
        of it, but in their first frame still): a report must never list
        one as the service's.  Only the threads ``threading`` does not
        know are walked (df_gmr starts bare threads).
        """
        if self._own is None:
            own = dict(lifecycle.own_threads())
            known = self.known_threads()
            for ident, frame in self.frames().items():
                if ident not in own and ident not in known and \
                        lifecycle.is_own_thread(frame):
                    own[ident] = UNREGISTERED_ROLE
            self._own = own
        return self._own

    def known_threads(self) -> dict[int, Any]:
        """Map thread idents to their ``threading.Thread`` (read once)."""
        if self._known is None:
            # Imported by the first report, as the Threads section does:
            # nothing of it is needed at rest.
            from df_gmr.runtime import natives

            self._known = natives.known_threads()
        return self._known

    def hubs(self) -> list[hub_reading.HubReading]:
        """Return every known hub, read once (see ``runtime.hubs``)."""
        if self._hubs is None:
            self._hubs = hub_reading.read(set(self.frames()))
        return self._hubs

    def greenlet_waits(self) -> GreenletWaits:
        """Map greenlets to the hub timer or descriptor they wait on."""
        if self._waits is None:
            self._waits = self._read_greenlet_waits()
        return self._waits

    def _read_greenlet_waits(self) -> GreenletWaits:
        found = GreenletWaits(offset=time.monotonic(), fds=self.fds)
        waits = found.waits
        for reading in self.hubs():
            for timer in reading.timers:  # soonest first
                green = timer.greenlet
                if green is not None and green not in waits:
                    waits[green] = timer
            for listener in reading.listeners:
                green = listener.greenlet
                if green is None:
                    continue
                # Its timeout's timer, if any (kept from an earlier
                # descriptor when it waits on two).
                timed = waits.get(green)
                waits[green] = (listener, timed[1] if isinstance(
                    timed, tuple) else timed)
                found.on_fd.add(green)
        return found

    def wakeups(self) -> dict[int, float]:
        """Map greenlet ids to seconds until a hub timer wakes them."""
        found: dict[int, float] = {}
        for reading in self.hubs():
            for timer in reading.timers:  # soonest first
                if timer.greenlet is not None:
                    found.setdefault(id(timer.greenlet), timer.due_in)
        return found

    def request_ids(self) -> dict[int, str]:
        """Map greenlet ids to the oslo.context request id they serve."""
        if self._request_ids is None:
            self._request_ids = requests.request_ids()
        return self._request_ids

    def release(self) -> None:
        """Drop the live frames and objects this snapshot holds."""
        stacks.source_lines.end()
        self._frames = None
        self._known = None
        self._tracked = None
        self._lock_stacks.clear()
        self._hubs = None
        self._waits = None
