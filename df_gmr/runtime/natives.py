"""Native threads as threads of execution: gather, classify, describe.

Every thread with a Python thread state (``sys._current_frames()``) is
gathered with its stack, its kind (main, thread, or df_gmr's own) and its
wait kind, classified from the stack as greenlets are (``waits``); the
thread's name, native id, daemon flag and origin come from the
``threading.Thread`` objects (the module in use and, under eventlet, its
unpatched copy).  df_gmr's own threads are gathered apart: never counted
as the service's.

A native thread's state is what its stack says: ``waiting`` when it is
inside a known waiting function, else ``running`` (which includes a call
into C that df_gmr cannot see into: a lock's acquire, a blocking read);
the report says so.
"""

from __future__ import annotations

import os
import sys
import types
from typing import TYPE_CHECKING
from typing import Any

from df_gmr import callers
from df_gmr import naming
from df_gmr import origins
from df_gmr import stacks
from df_gmr.lifecycle import UNREGISTERED_ROLE
from df_gmr.lifecycle import os_thread_name
from df_gmr.runtime import ccalls
from df_gmr.runtime import grouping
from df_gmr.runtime import waits
from df_gmr.runtime.grouping import GroupKey

if TYPE_CHECKING:
    from df_gmr.runtime import Snapshot

#: Members of a group whose waits are read from their frames: 500
#: identical executor workers are described from their first ones (every
#: id, name and native id is still listed).
DETAILS_PER_GROUP = 100
#: Modules whose ``_active`` maps thread idents to Thread objects: the
#: threading module in use and, under eventlet, its unpatched copy.
THREADING_MODULES = ("threading", "__original_module_threading")
#: Libraries whose frames hold the waits of native threads.
WAIT_LIBRARIES = ("threading", "queue", "selectors", "socket",
                  "subprocess", "concurrent.futures._base",
                  "concurrent.futures.thread", "futurist",
                  "oslo_service")


def known_threads() -> dict[int, Any]:
    """Map thread idents to their ``threading.Thread`` objects."""
    known: dict[int, Any] = {}
    for module_name in THREADING_MODULES:
        module = sys.modules.get(module_name)
        active = getattr(module, "_active", None)
        if isinstance(active, dict):
            # Copied in C, at once (a thread may start or end meanwhile);
            # the first module's Thread of an ident wins.
            merged = dict(active)
            merged.update(known)
            known = merged
    return known


class Natives:
    """The native threads of one snapshot, gathered into groups."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.known = snapshot.known_threads()
        #: The C lock and RLock types, read once per report.
        self.lock_types = ccalls.lock_types()
        self.own = snapshot.own_threads()
        self.inside = waits.library_dirs(
            (*WAIT_LIBRARIES, *waits.DB_POOL_LIBRARIES))
        #: id(stack keys) -> (those keys, the index of the matching frame)
        self.match_of: dict[int, tuple[stacks.StackKey, int | None]] = {}
        self.wrappers = stacks.wrapper_prefixes()
        hubs = getattr(sys.modules.get("eventlet.hubs"), "__file__", None)
        #: eventlet's hubs' directory (None: no eventlet loaded).
        self.hub_code = os.path.dirname(hubs) + os.sep if hubs else None
        #: id(recorded positions) -> (those positions, their origin)
        self.origins: dict[int, tuple[Any, dict[str, Any] | None]] = {}
        self.origin_by_key: dict[tuple[Any, ...], Any] = {}
        #: Waits read per waited-on object (see ``waits.details``).
        self.wait_readings: dict[tuple[str, int],
                                 tuple[Any, dict[str, Any]]] = {}
        self.targets: dict[Any, str] = {}
        #: (id(start positions), starter's ident, name, native id) -> (those
        #: positions, the origin, who started).
        self.started: dict[tuple[Any, ...], tuple[Any, Any, Any]] = {}
        #: id(start record) -> (that record, what _start returned for it).
        self.by_record: dict[int, tuple[Any, tuple[Any, Any, Any]]] = {}
        #: ident -> (its innermost frame, the C call it makes, resolved):
        #: decoded and resolved once, for its wait kind and its details.
        self.calls: dict[int, tuple[Any, ccalls.Resolved | None]] = {}
        #: What each call means, and what it blocks on.
        self.verdicts = PerCall()
        self.call_details = PerCall()

    def groups(self) -> list[dict[str, Any]]:
        """Return the service's threads grouped, biggest group first."""
        gathered = self._gather()
        return grouping.build(gathered, self._describer, _ident)

    def own_threads(self) -> list[dict[str, Any]]:
        """Return df_gmr's own threads (kept apart from the service's)."""
        return [{"ident": ident, "role": f"df_gmr {role}",
                 "name": naming.stored_attribute(self.known.get(ident),
                                                 "_name"),
                 # What top -H and ps -L show (they have no Thread): a
                 # registered thread named itself so (lifecycle._run_own).
                 "system_name": None if role == UNREGISTERED_ROLE
                 else os_thread_name(role)}
                for ident, role in sorted(self.own.items())
                if ident in self.snapshot.frames()]

    def _gather(self) -> dict[GroupKey, list[tuple[int, Any]]]:
        # A code object's hash is not cached (it hashes its name,
        # constants, names...): each thread's stack is looked up by its
        # frames' code ids and offsets (stacks.frame_ids: ints), and its
        # positions (codes and offsets, which keep the ids' codes alive)
        # are read on a miss only, then classified and made lines once
        # per distinct stack.  Members are then found by the stack's
        # identity.
        by_stack: dict[tuple[Any, ...], tuple[
            tuple[str, int | None],
            dict[tuple[str, str, str], list[tuple[int, Any]]],
            stacks.StackKey]] = {}
        builder = self.snapshot.builder_thread
        main = self.snapshot.main_thread
        frame_ids = stacks.frame_ids
        memo: dict[int, tuple[int, ...]] = {}  # equal stacks, one key
        # Every stack walked from the snapshot's frames; a thread that has
        # moved since (its innermost frame another: a running one) is
        # walked again, steadily (see Snapshot.steady_walk), and filed
        # anew; one that ended since is left out.
        frames = self.snapshot.frames()
        own = self.own

        def file(ident: int, frame: Any, key: tuple[Any, ...],
                 positions: stacks.StackKey | None = None) -> None:
            found = by_stack.get(key)
            if found is None:
                keys = key if ident == builder else positions or \
                    stacks.frame_positions(frame)
                if ident != builder:
                    # Read again: the positions and the key they file
                    # under must be of one moment (a live thread moves).
                    key = stacks.ids_of(keys)
                classified = waits.classify_chain(keys, waits.THREAD_WAITS,
                                                  self.inside)
                found = by_stack.get(key)
                if found is None:
                    found = by_stack[key] = (classified, {}, keys)
            wait_kind, match = found[0]
            state = "waiting"
            if ident == builder:
                state, wait_kind = "running", "building this report"
            elif match is None:
                state, wait_kind = ccalls.settle(
                    self._verdict(self._call_of(ident, frame)), ident)
                if wait_kind == ccalls.RUNNING_PYTHON and self.hub_code and \
                        frame.f_code.co_filename.startswith(self.hub_code):
                    # An eventlet thread between two waits of its hub (a
                    # timer, an I/O callback, the report's own signal):
                    # not the application's code.
                    wait_kind = "running eventlet's hub code"
            kind = "main" if ident == main else "thread"
            heads = found[1]
            members = heads.get((state, kind, wait_kind))
            if members is None:
                members = heads[(state, kind, wait_kind)] = []
            members.append((ident, frame))

        for ident, frame in frames.items():
            if ident in own:
                continue
            if ident == builder:
                # Its stack without df_gmr's frames: by positions, which
                # never equal a stack's ids (one thread, once).
                file(ident, frame, stacks.without_own_frames(
                    stacks.frame_positions(frame))[0])
            else:
                file(ident, frame, frame_ids(frame, 200, memo))
        for ident in self.snapshot.moved(frames):
            if ident in own or ident == builder:
                continue
            # Its innermost frame changed since it was read: its stack may
            # join two moments.  Walked again, steadily, and filed anew.
            for _, heads, _ in by_stack.values():
                for members in heads.values():
                    if any(member[0] == ident for member in members):
                        members[:] = [member for member in members
                                      if member[0] != ident]
            now, positions = self.snapshot.steady_walk(ident)
            if now is not None:  # else it ended meanwhile
                file(ident, now, stacks.ids_of(positions), positions)
        gathered: dict[GroupKey, list[tuple[int, Any]]] = {}
        same: dict[stacks.StackKey, stacks.StackKey] = {}
        for classified, heads, positions in by_stack.values():
            # Stacks at different instructions of the same lines are one
            # stack: one tuple, so that it is found by identity.
            keys = stacks.lined(positions)
            keys = same.setdefault(keys, keys)
            self.match_of[id(keys)] = (keys, classified[1])
            for head, members in heads.items():
                if not members:  # its one thread moved (filed anew)
                    continue
                group = gathered.setdefault((*head, keys), members)
                if group is not members:
                    group.extend(members)
        return gathered

    def _describer(self, key: GroupKey) -> grouping.Describe:
        """Return the describer of one group's members (what they share,
        their stack's wait frame and lock plan, read once per group)."""
        _, kind, wait_kind, keys = key
        match = self._match(keys)
        steps = len(keys) - 1 - match if match is not None else 0
        plan = self.snapshot.lock_plan(keys)
        reads_call = match is None and wait_kind != "building this report"
        main = kind == "main"
        builder = self.snapshot.builder_thread
        known = self.known
        frames = self.snapshot.frames()
        # What _native_id says, inline (once per member).
        main_ident = self.snapshot.main_thread \
            if sys.platform.startswith("linux") else None
        pid = os.getpid()
        # The wait of every member past the details read: one dict (the
        # group's factoring reads it, never changes it).
        unread_wait = {"kind": wait_kind}
        origin_attr = origins.ORIGIN_ATTR
        by_record = self.by_record
        targets = self.targets
        plain = naming.plain_types()

        def describe(index: int, member: tuple[int, Any]) -> dict[str, Any]:
            ident, frame = member
            thread = known.get(ident)
            wait = {"kind": wait_kind} if index < DETAILS_PER_GROUP \
                else unread_wait
            # The Thread's stored fields, never its properties (a subclass
            # of the application could make them run code): its __dict__,
            # read once (naming.instance_dict, inline for a plain Thread).
            stored = vars(thread) if type(thread) in plain else None
            if type(stored) is not dict:
                stored = _stored(thread) if thread is not None else _EMPTY
            name = stored.get("_name")
            native_id = None if ident not in frames else pid \
                if ident == main_ident else stored.get("_native_id")
            forked = False
            if main:
                name = name or "MainThread"
                # Forked from another thread of its parent (cotyledon's
                # supervisor thread, say): its Thread, name and origin are
                # the parent's; the fork made it the main thread.
                forked = thread is not None and \
                    type(thread).__name__ != "_MainThread"
            if thread is None:
                found: dict[str, Any] = {
                    "id": ident, "wait": wait, "name": name,
                    "native_id": native_id, "daemon": None}
            else:
                # One dict made at its size (a thousand members each grew
                # theirs, key by key: the memory churned is what a first
                # report pays for, in page faults).
                # _start's and _target's memos, inline (once per member):
                # a loop's threads share their start record, and each
                # function (and object) its name.
                record = stored.get(origin_attr)
                same = by_record.get(id(record))
                _, origin, starter = same[1] \
                    if same is not None and same[0] is record \
                    else self._start(stored)
                function: Any = stored.get("_target")
                kind: Any = type(function)
                target = targets.get(id(function)) \
                    if kind is types.FunctionType else targets.get(
                        (id(function.__func__), id(function.__self__))) \
                    if kind is types.MethodType else None
                if target is None:
                    target = self._target(thread, stored)
                found = {"id": ident, "wait": wait, "name": name,
                         "native_id": native_id,
                         "daemon": stored.get("_daemonic"),
                         "origin": origin, "started_by": starter,
                         "target": target}
                if starter is None:
                    del found["started_by"]
                if target is None:
                    del found["target"]
            if forked:  # said third, as it was (id and wait keep theirs)
                found = {"id": ident, "wait": wait, "forked_in_thread": True,
                         **found}
            if ident == builder:
                found["role"] = "building this report (df_gmr frames omitted)"
            if index >= DETAILS_PER_GROUP:
                found["unread"] = True  # the group says how many were read
                return found
            if frame is not None and plan:
                found.update(self.snapshot.locks_by_plan(plan, frame))
            if match is not None:
                found["wait"].update(waits.details(
                    wait_kind, waits.nth_back(frame, steps),
                    self.wait_readings))
            elif frame is not None and reads_call:
                found["wait"].update(self._call_details(ident, frame))
            wait = found["wait"]
            if "fd" in wait or "fds" in wait:
                self._describe_fds(wait)
            return found

        return describe

    def _start(self, stored: dict[str, Any]) -> tuple[Any, Any, Any]:
        """Return (where it started, its origin, who started it), once per
        place and starter: a loop's starts share their recorded positions
        (see origins), an executor's each have a record of their own."""
        record: Any = stored.get(origins.ORIGIN_ATTR)
        # Threads started in one loop share their record itself.
        same = self.by_record.get(id(record))
        if same is not None and same[0] is record:
            return same[1]
        recorded = type(record) is tuple and len(record) == 4
        where = record[0] if recorded else record
        try:
            key = (id(where), *record[1:]) if recorded else (id(where),)
            known = self.started.get(key)
        except TypeError:  # an odd record (unhashable): not shared
            return where, self._origin(stored), self._started_by(stored)
        if known is None or known[0] is not where:
            # The positions kept beside their id, which names them only
            # while they live.
            known = self.started[key] = (
                where, self._origin(stored), self._started_by(stored))
        self.by_record[id(record)] = (record, known)
        return known

    def _started_by(self, stored: dict[str, Any]) -> dict[str, Any] | None:
        """Say who started a thread, and whether it runs now (once per
        place and starter: see _start)."""
        starter = origins.started_by(stored)
        if starter is not None:
            # Running now: the same ident and native id as a thread of
            # this snapshot (an ident alone is reused).
            starter["running"] = starter["native_id"] is not None and \
                self._native_id(starter["ident"]) == \
                starter["native_id"]
            if not starter["running"]:
                # Ended, and its ident another live thread's now: said,
                # so that the two are never read as one.
                starter["ident_reused"] = \
                    starter["ident"] in self.snapshot.frames()
        return starter

    def _native_id(self, ident: int, stored: dict[str, Any] | None = None
                   ) -> Any:
        """Return the native id of this snapshot's thread ``ident`` (None
        if it is not one of them): its Thread's stored one, but the main
        thread's is the pid on Linux (a Thread keeps the native id it had
        before a fork)."""
        if ident not in self.snapshot.frames():
            return None
        if ident == self.snapshot.main_thread and \
                sys.platform.startswith("linux"):
            return os.getpid()
        if stored is None:
            stored = _stored(self.known.get(ident))
        return stored.get("_native_id")

    def _match(self, keys: stacks.StackKey) -> int | None:
        # The group's stack is the very tuple gathered (kept alive by the
        # gathered groups): found by identity, never hashed again.
        known = self.match_of.get(id(keys))
        if known is not None and known[0] is keys:
            return known[1]
        return waits.classify_chain(keys, waits.THREAD_WAITS,
                                    self.inside)[1]

    def _describe_fds(self, wait: dict[str, Any]) -> None:
        """Say what the descriptors a wait names are (sockets' addresses)."""
        if type(wait.get("fd")) is int and "fd_is" not in wait:
            wait["fd_is"] = self.snapshot.fds.describe(wait["fd"])
        fds = wait.get("fds")
        if type(fds) is list and fds:
            wait["watching"] = ", ".join(
                f"fd {fd} {self.snapshot.fds.describe(fd)}" for fd in fds)

    def _origin(self, stored: dict[str, Any]) -> dict[str, Any] | None:
        # Threads started from one place share their recorded positions
        # (one tuple, see origins): described once per report (500
        # identical workers, one origin), found by the tuple's identity.
        positions = origins.recorded(stored)
        known = self.origins.get(id(positions))
        if known is not None and known[0] is positions:
            return known[1]
        # Equal positions in another tuple: by its codes' identities and
        # offsets (alive while the Thread is), not by hashing code objects.
        key = callers.key(positions) if positions else ()
        origin = self.origin_by_key.get(key, _MISSING)
        if origin is _MISSING:
            origin = self.origin_by_key[key] = origins.describe(
                positions, self.wrappers)
        self.origins[id(positions)] = (positions, origin)
        return origin  # type: ignore[no-any-return]

    def _target(self, thread: Any, stored: dict[str, Any]) -> str | None:
        target = stored.get("_target")
        if target is None:
            if type(thread).__name__ == "_MainThread":
                return None  # the program's own code: it runs no run()
            return naming.type_name(thread) + ".run"
        # Each Thread(target=self.work) holds a bound method of its own:
        # those of one function and one object are named once.  The
        # target (holding both) lives as long as this report.
        key: Any = (id(target.__func__), id(target.__self__)) \
            if type(target) is types.MethodType else id(target)
        name = self.targets.get(key)
        if name is None:
            name = self.targets[key] = naming.callable_name(target)
        return name

    def _call_of(self, ident: int, frame: Any) -> ccalls.Resolved | None:
        """Decode and resolve the call the innermost frame makes, once per
        thread (see ``ccalls.call_of``)."""
        known = self.calls.get(ident)
        if known is not None and known[0] is frame:
            return known[1]
        resolved = ccalls.call_of(frame)
        self.calls[ident] = (frame, resolved)
        return resolved

    def _verdict(self, resolved: ccalls.Resolved | None) -> ccalls.Verdict:
        """Say what a call means (see ``ccalls.call_verdict``), once per
        call site and object: a hundred threads on one lock read it (and
        an RLock's owner) once."""
        if resolved is None:
            return ccalls.call_verdict(None, self.lock_types)
        verdict = self.verdicts.get(resolved)
        if verdict is _MISSING:
            verdict = ccalls.call_verdict(resolved, self.lock_types)
            self.verdicts.put(resolved, verdict)
        return verdict  # type: ignore[no-any-return]

    def _call_details(self, ident: int, frame: Any) -> dict[str, Any]:
        """Say what a C call blocks on (see ``ccalls.call_details``): once
        per call site and object (a hundred threads blocked on one lock
        read it once), but a sleep's seconds and a read's descriptor, read
        from each frame."""
        resolved = self._call_of(ident, frame)
        if resolved is None:
            return {}
        details = self.call_details.get(resolved)
        if details is _MISSING:
            details, own = ccalls.call_details(resolved, frame, self.known,
                                               self.lock_types)
            if not own:  # else the frame's own (a sleep's, a read's)
                self.call_details.put(resolved, details)
        return details  # type: ignore[no-any-return]


class PerCall:
    """What was read of C calls, kept per call site and object (one
    report's): by the ids of the call, what it is made on and what it
    calls, kept beside them (an id names its object only while it
    lives)."""

    def __init__(self) -> None:
        self.known: dict[tuple[int, bool, int, int],
                         tuple[Any, Any, Any, Any]] = {}

    def get(self, resolved: ccalls.Resolved) -> Any:
        """Return what was kept for this call (_MISSING: nothing)."""
        call, ok, target, callee = resolved
        known = self.known.get((id(call), ok, id(target), id(callee)))
        if known is not None and known[0] is call and \
                known[1] is target and known[2] is callee:
            return known[3]
        return _MISSING

    def put(self, resolved: ccalls.Resolved, value: Any) -> None:
        """Keep ``value`` for this call."""
        call, ok, target, callee = resolved
        self.known[(id(call), ok, id(target), id(callee))] = (
            call, target, callee, value)


_MISSING = object()
#: The stored fields of a thread without a Thread.
_EMPTY: dict[str, Any] = {}


def _stored(thread: Any) -> dict[str, Any]:
    """Return a Thread's own ``__dict__`` (``_EMPTY``, read only, if it
    has none)."""
    namespace = naming.instance_dict(thread)
    return namespace if namespace is not None else _EMPTY


def _ident(member: tuple[int, Any]) -> int:
    return member[0]
