"""What a native thread's current call into C is: a wait, or not.

A thread inside a C call shows no Python frame for it: its innermost
frame is the one making the call.  ``call_of`` decodes that call from the
frame's instruction (``callsite``) and resolves what it is made on (a
lock, a socket, a module's function); ``current_call`` says whether it
blocks by nature (a wait kind) or is just "in C call"; ``call_details``
says what it blocks on (the lock and its owner, the socket, a sleep's
seconds).  Nothing is called: objects are read, never asked.
"""

from __future__ import annotations

import _socket
import re
import sys
import types
from typing import Any

from df_gmr import naming
from df_gmr.runtime import callsite

#: A decoded call, whether resolving it worked, what it is made on (the
#: chain's owner) and the callee (for a call, not a ``with``).
Resolved = tuple[callsite.Call, bool, Any, Any]


def call_of(frame: Any) -> Resolved | None:
    """Decode the call the innermost ``frame`` makes and resolve what it
    is made on (None: no call to decode)."""
    call = callsite.decode(frame.f_code, frame.f_lasti) \
        if frame is not None else None
    if call is None:
        return None
    kind, _, chain, _ = call
    try:
        if kind == "call":
            # What it is called on (None for a plain function), and what.
            target, callee = callsite.resolve_both(frame, chain)
        else:
            target, callee = callsite.resolve(frame, chain), None
    except Exception:
        return (call, False, None, None)
    return (call, True, target, callee)


def call_details(resolved: Resolved | None, frame: Any,
                 known: dict[int, Any], lock_kinds: LockTypes
                 ) -> tuple[dict[str, Any], bool]:
    """Say what a C call blocks on: the lock (and its owner, named from
    ``known`` threads), the socket, the seconds of a sleep, the
    descriptor of a read.  Also says whether the answer was read from
    ``frame``'s own arguments (a sleep's, a read's): it is then that
    thread's alone, never one to keep for the call site and object."""
    if resolved is None:
        return {}, False
    (kind, name, chain, arguments), ok, target, callee = resolved
    details: dict[str, Any] = {"calls": callsite.text(chain)}
    if kind == "with":
        details["calls"] = f"with {details['calls']}"
    if not ok:
        return details, False
    bound = _bound_builtin(callee)
    function = _module_function(callee)
    if bound is not None:  # Thread.run calling self._target, say
        target, name = bound
        details["calls"] = f"{naming.type_name(target)}.{name}"
    elif function is not None and function[0] != name:
        # a C function called by another name: real_sleep = time.sleep
        name = function[0]
        details["calls"] += f" ({function[1]})"
    locks, rlocks = lock_kinds
    if type(target) in locks or issubclass(type(target), rlocks):
        details.update(_lock(target, known, rlocks))
    elif target is not None and issubclass(type(target), _socket.socket):
        details["fd"] = _socket.socket.fileno(target)  # fd_is: the caller's
    elif type(target).__module__ == "select" and \
            type(target).__name__ in POLLERS:
        details["calls"] += f" (select.{type(target).__name__}.{name})"
    elif name == "sleep" and len(arguments) == 1:
        seconds = callsite.argument(frame, arguments[0])
        if type(seconds) in (int, float):
            details["seconds"] = round(seconds, 3)
        return details, True
    elif function is not None and function[1] in READS and arguments:
        # os.read(fd, n): a pipe's read end, say (fd_is: the caller's).
        fd = callsite.argument(frame, arguments[0])
        if type(fd) is int:
            details["fd"] = fd
        return details, True
    return details, False


#: The module functions whose first argument is the descriptor they block
#: on (``call_details`` reads it from the frame).
READS = frozenset({"posix.read", "os.read"})


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


#: What a call says whoever makes it (``call_verdict``): (state, wait kind)
#: when the thread waits in it, the ident holding the RLock it acquires
#: (that thread does not wait: it re-enters its own lock) or None, and
#: (state, wait kind) otherwise.
Verdict = tuple[tuple[str, str], "int | None", tuple[str, str]]


def current_call(resolved: Resolved | None, ident: int,
                  lock_kinds: LockTypes) -> tuple[str, str]:
    """Return (state, wait kind) from the call the innermost frame makes.

    No call: the thread runs Python code.  A call into C: the thread is in
    it, or has just returned from it (CPython may pause a thread right
    after a C call, its last instruction still that call): so a call is
    a wait only when what it is called on blocks by nature (a real lock
    not held by this thread, a socket, a SimpleQueue, time.sleep,
    select, os.waitpid, a file read); anything else is "in C call".
    """
    return settle(call_verdict(resolved, lock_kinds), ident)


def settle(verdict: Verdict, ident: int) -> tuple[str, str]:
    """Return what ``verdict`` says of the thread ``ident``."""
    waits, holder, otherwise = verdict
    if holder is not None and holder == ident:
        return otherwise
    return waits


def call_verdict(resolved: Resolved | None, lock_kinds: LockTypes
                 ) -> Verdict:
    """Say what a call means for any thread that makes it (see
    ``current_call``): read once for the threads of one call site and
    object (a hundred threads on one lock, one reading of its owner)."""
    if resolved is None:
        running = ("running", RUNNING_PYTHON)
        return running, None, running
    call, ok, target, callee = resolved
    kind, name, chain, _ = call
    owner = None
    if ok:
        try:
            owner, name = _owner_and_name(kind, name, target, callee)
        except Exception:  # an odd object (an unhashable __module__...)
            owner = None
    running = ("running", f"in C call {callsite.text(chain)}")
    known, holder = _blocking_kind(owner, name, lock_kinds)
    return (("waiting", known) if known is not None else running), \
        holder, running


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


def _blocking_kind(owner: Any, name: str, lock_kinds: LockTypes
                   ) -> tuple[str | None, int | None]:
    """Return the wait kind of a call (None: no wait), and the ident
    holding the RLock it acquires (None: no RLock, or a free one)."""
    kind = type(owner)
    if name in ("acquire", "__enter__"):
        locks, rlocks = lock_kinds
        if kind in locks:
            return "lock", None
        if issubclass(kind, rlocks):
            return "lock", _rlock_owner(owner, rlocks)
        return None, None
    if issubclass(kind, _socket.socket):
        return (C_WAITS.get(name) if name in SOCKET_CALLS else None), None
    if kind.__name__ == "SimpleQueue" and kind.__module__ == "_queue":
        return ("queue get" if name == "get" else None), None
    if issubclass(kind, types.ModuleType):
        return MODULE_WAITS.get((owner.__name__, name)), None
    if kind.__module__ == "select" and kind.__name__ in POLLERS and \
            name in ("poll", "control"):
        return "select", None  # an epoll object's poll: an idle hub
    if kind.__module__ == "_io" and name in ("read", "readline",
                                             "readinto"):
        return "read", None
    return None, None


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


def _rlock_record(lock: Any, rlocks: tuple[type, ...]
                  ) -> tuple[int, int] | None:
    """Return (owning ident, count) of a held real RLock, from one reading
    of its C record; None when it is free or unknown."""
    # _thread.RLock.__repr__ is C code of the standard library, called on
    # the C slot directly: a subclass's own __repr__ never runs.  (A loop,
    # not next() over a generator: one left unfinished is closed by an
    # exception thrown into it.)
    kind: Any
    for kind in type(lock).__mro__:
        if kind in rlocks:
            match = _OWNER.search(kind.__repr__(lock))
            if match and match[1] != "0":
                return int(match[1]), int(match[2])
            return None
    return None


def _rlock_owner(lock: Any, rlocks: tuple[type, ...]) -> int | None:
    """Return the ident owning a real RLock, or None (free or unknown)."""
    record = _rlock_record(lock, rlocks)
    return record[0] if record is not None else None


def _lock(lock: Any, known: dict[int, Any], rlocks: tuple[type, ...]
          ) -> dict[str, Any]:
    """Describe a real lock; an RLock's owner from its C record (exact)."""
    found: dict[str, Any] = {"lock": f"{type(lock).__name__} {id(lock):#x}"}
    if issubclass(type(lock), rlocks):
        record = _rlock_record(lock, rlocks)
        if record is not None:
            owner, count = record
            found["owner"] = owner
            found["owner_name"] = naming.stored_attribute(known.get(owner),
                                                          "_name")
            found["count"] = count
            found["owner_is"] = "exact (the lock's own record)"
    else:
        found["locked"] = type(lock).locked(lock)
    return found
