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

import _socket
import os
import re
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
from df_gmr.runtime import callsite
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
            for ident, thread in list(active.items()):
                known.setdefault(ident, thread)
    return known


class Natives:
    """The native threads of one snapshot, gathered into groups."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.known = known_threads()
        #: The C lock and RLock types, read once per report.
        self.lock_types = lock_types()
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
        self.targets: dict[int, str] = {}
        #: ident -> (its innermost frame, the C call it makes, resolved):
        #: decoded and resolved once, for its wait kind and its details.
        self.calls: dict[int, tuple[Any, Resolved | None]] = {}

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
        # A stack's hash is not cached and hashes every code object in it:
        # each thread's stack is hashed once, to find its classification
        # and its groups; members are then found by the stack's identity.
        # A stack is its frames' positions here (see
        # stacks.frame_positions), made lines once per distinct stack.
        by_stack: dict[stacks.StackKey, tuple[
            tuple[str, int | None],
            dict[tuple[str, str, str], list[tuple[int, Any]]]]] = {}
        builder = self.snapshot.builder_thread
        main = self.snapshot.main_thread
        own = self.own
        for ident, frame in self.snapshot.frames().items():
            if ident in own:
                continue
            keys = stacks.frame_positions(frame)
            if ident == builder:
                keys, _ = stacks.without_own_frames(keys)
            found = by_stack.get(keys)
            if found is None:
                classified = waits.classify_chain(keys, waits.THREAD_WAITS,
                                                  self.inside)
                found = by_stack[keys] = (classified, {})
            wait_kind, match = found[0]
            state = "waiting"
            if ident == builder:
                state, wait_kind = "running", "building this report"
            elif match is None:
                state, wait_kind = _current_call(
                    self._call_of(ident, frame), ident, self.lock_types)
                if wait_kind == RUNNING_PYTHON and self.hub_code and \
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
        gathered: dict[GroupKey, list[tuple[int, Any]]] = {}
        same: dict[stacks.StackKey, stacks.StackKey] = {}
        for positions, (classified, heads) in by_stack.items():
            # Stacks at different instructions of the same lines are one
            # stack: one tuple, so that it is found by identity.
            keys = stacks.lined(positions)
            keys = same.setdefault(keys, keys)
            self.match_of[id(keys)] = (keys, classified[1])
            for head, members in heads.items():
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

        def describe(index: int, member: tuple[int, Any]) -> dict[str, Any]:
            ident, frame = member
            thread = known.get(ident)
            found: dict[str, Any] = {"id": ident,
                                     "wait": {"kind": wait_kind}}
            # The Thread's stored fields, never its properties (a subclass
            # of the application could make them run code): its __dict__,
            # read once.
            stored = _stored(thread)
            name = stored.get("_name")
            native_id = stored.get("_native_id")
            if main:
                # Thread objects keep the native id they had before a
                # fork; on Linux the main thread's native id is the pid.
                name = name or "MainThread"
                if sys.platform.startswith("linux"):
                    native_id = os.getpid()
                if thread is not None and \
                        type(thread).__name__ != "_MainThread":
                    # Forked from another thread of its parent (cotyledon's
                    # supervisor thread, say): its Thread, name and origin
                    # are the parent's; the fork made it the main thread.
                    found["forked_in_thread"] = True
            found["name"] = name
            found["native_id"] = native_id
            found["daemon"] = stored.get("_daemonic")
            if thread is not None:
                found["origin"] = self._origin(stored)
                starter = origins.started_by(stored)
                if starter is not None:
                    found["started_by"] = starter
                target = self._target(thread, stored)
                if target is not None:
                    found["target"] = target
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
            self._describe_fds(found["wait"])
            return found

        return describe

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
        key = id(target)  # the target lives as long as this report
        if key not in self.targets:
            self.targets[key] = naming.callable_name(target)
        return self.targets[key]

    def _call_of(self, ident: int, frame: Any) -> Resolved | None:
        """Decode the call the innermost frame makes and resolve what it
        is made on, once per thread (None: no call to decode)."""
        known = self.calls.get(ident)
        if known is not None and known[0] is frame:
            return known[1]
        call = callsite.decode(frame.f_code, frame.f_lasti) \
            if frame is not None else None
        resolved: Resolved | None = None
        if call is not None:
            kind, _, chain, _ = call
            try:
                owner_chain = chain[:-1] if kind == "call" else chain
                target = callsite.resolve(frame, owner_chain) \
                    if owner_chain else None  # a plain function: no object
                callee = callsite.resolve(frame, chain) if kind == "call" \
                    else None
            except Exception:
                resolved = (call, False, None, None)
            else:
                resolved = (call, True, target, callee)
        self.calls[ident] = (frame, resolved)
        return resolved

    def _call_details(self, ident: int, frame: Any) -> dict[str, Any]:
        """Say what a C call blocks on: the lock (and its owner), the
        socket, the seconds of a sleep."""
        resolved = self._call_of(ident, frame)
        if resolved is None:
            return {}
        (kind, name, chain, arguments), ok, target, callee = resolved
        details: dict[str, Any] = {"calls": callsite.text(chain)}
        if kind == "with":
            details["calls"] = f"with {details['calls']}"
        if not ok:
            return details
        bound = _bound_builtin(callee)
        function = _module_function(callee)
        if bound is not None:  # Thread.run calling self._target, say
            target, name = bound
            details["calls"] = f"{naming.type_name(target)}.{name}"
        elif function is not None and function[0] != name:
            # a C function called by another name: real_sleep = time.sleep
            name = function[0]
            details["calls"] += f" ({function[1]})"
        locks, rlocks = self.lock_types
        if type(target) in locks or issubclass(type(target), rlocks):
            details.update(_lock(target, self.known, rlocks))
        elif target is not None and issubclass(type(target), _socket.socket):
            details["fd"] = _socket.socket.fileno(target)  # fd_is: below
        elif type(target).__module__ == "select" and \
                type(target).__name__ in POLLERS:
            details["calls"] += f" (select.{type(target).__name__}.{name})"
        elif name == "sleep" and len(arguments) == 1:
            seconds = callsite.argument(frame, arguments[0])
            if type(seconds) in (int, float):
                details["seconds"] = round(seconds, 3)
        return details


_MISSING = object()
#: A decoded call, whether resolving it worked, what it is made on (the
#: chain's owner) and the callee (for a call, not a ``with``).
Resolved = tuple[callsite.Call, bool, Any, Any]


def _stored(thread: Any) -> dict[str, Any]:
    """Return a Thread's own ``__dict__`` (empty if it has none)."""
    try:
        namespace = object.__getattribute__(thread, "__dict__")
    except Exception:  # no __dict__ (slots), or an odd descriptor
        return {}
    return namespace if type(namespace) is dict else {}


def _ident(member: tuple[int, Any]) -> int:
    return member[0]


#: Calls into C that mean the thread waits, by the name called.
C_WAITS = {"recv": "socket read", "recv_into": "socket read",
           "recvfrom": "socket read", "_accept": "accept",
           "connect": "connect", "sendall": "socket write",
           "send": "socket write"}
SOCKET_CALLS = frozenset(C_WAITS)
#: (module, function) calls into C that block by nature.
MODULE_WAITS = {("time", "sleep"): "sleep", ("select", "select"): "select",
                ("select", "poll"): "select", ("os", "waitpid"): "subprocess",
                ("posix", "waitpid"): "subprocess", ("os", "read"): "read",
                ("posix", "read"): "read"}
#: The select module's poller objects, whose ``poll`` (``control``) blocks.
POLLERS = frozenset({"epoll", "poll", "devpoll", "kqueue"})


#: Where the C lock types are: each copy of ``_thread`` and of
#: ``threading`` (module, lock factory, RLock type).
_LOCK_SOURCES = (("_thread", "allocate_lock", "RLock"),
                 ("__original_module__thread", "allocate_lock", "RLock"),
                 ("threading", "_allocate_lock", "_CRLock"),
                 ("__original_module_threading", "_allocate_lock", "_CRLock"))
_lock_types: list[Any] = [None, ((), ())]
#: (C lock types, C RLock types).
LockTypes = tuple[tuple[type, ...], tuple[type, ...]]


def lock_types() -> LockTypes:
    """Return the C lock and RLock types of every copy of ``_thread``.

    eventlet's patcher imports its own copy of ``_thread`` for the real
    threads (``patcher.original``), and a new copy of a C module brings
    new type objects: the module in use and every copy there is count
    (green locks, which are Python classes, never do).  Read from
    ``sys.modules`` (never importing a copy) once per report (by
    ``Natives``), again only when a copy came or went: a copy made after
    the first report counts.
    """
    modules = tuple(sys.modules.get(name) for name, _, _ in _LOCK_SOURCES)
    key = tuple(map(id, modules))
    if _lock_types[0] == key:
        return _lock_types[1]  # type: ignore[no-any-return]
    locks: list[type] = []
    rlocks: list[type] = []
    for module, (_, factory, rlock) in zip(modules, _LOCK_SOURCES,
                                           strict=True):
        make = getattr(module, factory, None)
        for kind, kinds in ((type(make()) if callable(make) else None, locks),
                            (getattr(module, rlock, None), rlocks)):
            if isinstance(kind, type) and kind.__module__ == "_thread" \
                    and kind not in kinds:
                kinds.append(kind)
    found = (tuple(locks), tuple(rlocks))
    _lock_types[:] = [key, found]
    return found


_OWNER = re.compile(r"owner=(\d+) count=(\d+)")


#: The wait kind of a thread that makes no call.
RUNNING_PYTHON = "running Python code"


def _current_call(resolved: Resolved | None, ident: int,
                  lock_kinds: LockTypes) -> tuple[str, str]:
    """Return (state, wait kind) from the call the innermost frame makes.

    No call: the thread runs Python code.  A call into C: the thread is in
    it, or has just returned from it (CPython may pause a thread right
    after a C call, its last instruction still that call): so a call is
    a wait only when what it is called on blocks by nature (a real lock
    not held by this thread, a socket, a SimpleQueue, time.sleep,
    select, os.waitpid, a file read); anything else is "in C call".
    """
    if resolved is None:
        return "running", RUNNING_PYTHON
    call, ok, target, callee = resolved
    kind, name, chain, _ = call
    owner = None
    if ok:
        try:
            owner, name = _owner_and_name(kind, name, target, callee)
        except Exception:  # an odd object (an unhashable __module__...)
            owner = None
    known = _blocking_kind(owner, name, ident, lock_kinds)
    if known is not None:
        return "waiting", known
    return "running", f"in C call {callsite.text(chain)}"


def _owner_and_name(kind: str, name: str, target: Any, callee: Any
                    ) -> tuple[Any, str]:
    """Return what a call is made on (a lock, a socket, a module) and the
    name it really has (``real_sleep = time.sleep`` is ``sleep``)."""
    if kind == "with":
        return target, "__enter__"
    bound = _bound_builtin(callee)
    if bound is not None:
        return bound
    function = _module_function(callee)
    if function is not None:
        return sys.modules.get(callee.__module__ or ""), function[0]
    return target, name


def _blocking_kind(owner: Any, name: str, ident: int,
                   lock_kinds: LockTypes) -> str | None:
    kind = type(owner)
    if name in ("acquire", "__enter__"):
        locks, rlocks = lock_kinds
        if kind in locks:
            return "lock"
        if issubclass(kind, rlocks):
            holder = _rlock_owner(owner, rlocks)
            return None if holder == ident else "lock"
        return None
    if issubclass(kind, _socket.socket):
        return C_WAITS.get(name) if name in SOCKET_CALLS else None
    if kind.__name__ == "SimpleQueue" and kind.__module__ == "_queue":
        return "queue get" if name == "get" else None
    if issubclass(kind, types.ModuleType):
        return MODULE_WAITS.get((owner.__name__, name))
    if kind.__module__ == "select" and kind.__name__ in POLLERS and \
            name in ("poll", "control"):
        return "select"  # an epoll object's poll: an idle eventlet hub
    if kind.__module__ == "_io" and name in ("read", "readline",
                                             "readinto"):
        return "read"
    return None


def _bound_builtin(callee: Any) -> tuple[Any, str] | None:
    """Return (object, method name) of a C method bound to an object."""
    if type(callee) is not types.BuiltinMethodType:
        return None
    owner = callee.__self__
    if owner is None or issubclass(type(owner), types.ModuleType):
        return None
    return owner, callee.__name__


def _module_function(callee: Any) -> tuple[str, str] | None:
    """Return (name, module.name) of a C function of a module, whatever
    name it is called by (``real_sleep = time.sleep``)."""
    if type(callee) is not types.BuiltinFunctionType:
        return None
    owner = callee.__self__
    if owner is not None and not issubclass(type(owner), types.ModuleType):
        return None
    module = callee.__module__
    qualified = f"{module}.{callee.__name__}" if type(module) is str \
        else callee.__name__
    return callee.__name__, qualified


def _rlock_owner(lock: Any, rlocks: tuple[type, ...]) -> int | None:
    """Return the ident owning a real RLock, or None (free or unknown)."""
    # _thread.RLock.__repr__ is C code of the standard library, called on
    # the C slot directly: a subclass's own __repr__ never runs.
    c_type: Any = next((kind for kind in type(lock).__mro__
                        if kind in rlocks), None)
    match = _OWNER.search(c_type.__repr__(lock)) if c_type else None
    if match and match[1] != "0":
        return int(match[1])
    return None


def _lock(lock: Any, known: dict[int, Any], rlocks: tuple[type, ...]
          ) -> dict[str, Any]:
    """Describe a real lock; an RLock's owner from its C record (exact)."""
    found: dict[str, Any] = {"lock": f"{type(lock).__name__} {id(lock):#x}"}
    if issubclass(type(lock), rlocks):
        owner = _rlock_owner(lock, rlocks)
        if owner is not None:
            c_type: Any = next(kind for kind in type(lock).__mro__
                               if kind in rlocks)
            match = _OWNER.search(c_type.__repr__(lock))
            found["owner"] = owner
            found["owner_name"] = naming.stored_attribute(known.get(owner),
                                                          "_name")
            found["count"] = int(match[2]) if match else None
            found["owner_is"] = "exact (the lock's own record)"
    else:
        found["locked"] = type(lock).locked(lock)
    return found
