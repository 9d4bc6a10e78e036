"""Why a thread of execution waits, read from its stack: one classifier.

A wait is named by the outermost frame of a known waiting function on the
stack: ``(file name, function)`` inside a known library directory (for
greenlets: eventlet; for native threads: the standard library and the
pools' libraries).  Identical stacks are classified once: the result is
the wait kind and the index of the matching frame, whose locals then say
what is waited on (``details``), for the first members of a group only.

Details read only stored attributes of the standard library's and
eventlet's own objects (``naming.stored_attribute``): no property,
``__repr__`` or other code of the object waited on runs here.
"""

from __future__ import annotations

import _socket
import collections
from collections.abc import Container
import os
import sys
import types
from types import FrameType
from typing import Any

from df_gmr import naming
from df_gmr import redact
from df_gmr.stacks import StackKey

Table = dict[tuple[str, str], str]

#: Greenlets: (file name, function) inside eventlet -> wait kind.
EVENTLET_WAITS: Table = {
    ("greenthread.py", "sleep"): "sleep",
    ("event.py", "wait"): "event",
    ("semaphore.py", "acquire"): "semaphore",
    ("semaphore.py", "__enter__"): "semaphore",
    ("lock.py", "acquire"): "lock",
    ("queue.py", "get"): "queue get",
    ("queue.py", "put"): "queue put",
    ("greenthread.py", "wait"): "join",
    ("tpool.py", "execute"): "tpool",
    ("__init__.py", "trampoline"): "fd",
    ("greenpool.py", "spawn"): "pool slot",
    ("greenpool.py", "spawn_n"): "pool slot",
    ("greenpool.py", "waitall"): "pool waitall",
}

#: Native threads: (file name, function) in the standard library or a
#: pool library -> wait kind.  The outermost match names the wait (a
#: queue's get waits in a Condition's wait: the queue is what counts).
THREAD_WAITS: Table = {
    ("threading.py", "wait"): "condition",
    ("threading.py", "wait_for"): "condition",
    # Barrier.wait waits in _wait (or, while the barrier drains, _enter):
    # the chain must reach Barrier.wait for the barrier to name it.
    ("threading.py", "_wait"): "condition",
    ("threading.py", "_enter"): "condition",
    ("threading.py", "acquire"): "semaphore",
    ("threading.py", "join"): "join",
    ("threading.py", "_wait_for_tstate_lock"): "join",
    ("queue.py", "get"): "queue get",
    ("queue.py", "put"): "queue put",
    ("_base.py", "result"): "future",
    ("_base.py", "wait"): "futures",
    ("_base.py", "as_completed"): "futures",
    ("selectors.py", "select"): "select",
    ("socket.py", "accept"): "accept",
    ("socket.py", "readinto"): "socket read",
    ("subprocess.py", "wait"): "subprocess",
    ("subprocess.py", "communicate"): "subprocess",
    ("subprocess.py", "_wait"): "subprocess",
    ("subprocess.py", "_try_wait"): "subprocess",
    ("thread.py", "_worker"): "idle executor worker",
    ("_thread.py", "_worker"): "idle executor worker",
    ("loopingcall.py", "_sleep"): "looping call sleep",
    ("loopingcall.py", "_run_loop"): "looping call",
    # SQLAlchemy's QueuePool (oslo.db's engines): waiting for a
    # connection, in its own queue's get, in a Condition's wait.
    ("impl.py", "_do_get"): "db pool",
}

#: Where SQLAlchemy's pool waits (its pool and its own queue module).
DB_POOL_LIBRARIES = ("sqlalchemy.pool.impl", "sqlalchemy.util.queue")

#: Event.wait and Barrier.wait are Condition waits one frame out.
_EVENT_OWNERS = {"Event": "event", "Barrier": "barrier"}


def library_dirs(names: tuple[str, ...]) -> tuple[str, ...]:
    """Return the directories of the loaded modules ``names``."""
    dirs = []
    for name in names:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            dirs.append(os.path.dirname(path) + os.sep)
    return tuple(dirs)


def stdlib_dirs() -> tuple[str, ...]:
    """Return the standard library's directories (threading's and below)."""
    return library_dirs(("threading", "concurrent.futures._base",
                         "__original_module_threading"))


def classify(keys: StackKey, table: Table, inside: tuple[str, ...]
             ) -> tuple[str, int | None]:
    """Name a greenlet's wait: the outermost known waiting frame among
    the library frames on top of its stack.

    A parked greenlet's innermost frames are eventlet's (the hub switch,
    then the primitive it waits in, then what called it): the outermost
    known one of that run names the wait.  Returns the wait kind and the
    index of that frame in ``keys`` (outermost first), or
    ``("unknown", None)``.
    """
    found: tuple[str, int | None] = ("unknown" if keys else "no frames",
                                     None)
    for index in range(len(keys) - 1, -1, -1):  # innermost first
        code = keys[index][0]
        if inside and not code.co_filename.startswith(inside):
            break
        kind = table.get((os.path.basename(code.co_filename), code.co_name))
        if kind is not None:
            found = (kind, index)
    return found


def classify_chain(keys: StackKey, table: Table, inside: tuple[str, ...]
                   ) -> tuple[str, int | None]:
    """Name a native thread's wait: the chain of waiting frames on top.

    Only consecutive known waiting frames from the innermost one count
    (a queue's get in a condition's wait: the get names it); a thread
    whose innermost frame is no known wait runs code, or sits in a C
    call (a busy executor worker runs its task even though the worker
    loop is on its stack).
    """
    found: tuple[str, int | None] = ("unknown" if keys else "no frames",
                                     None)
    for index in range(len(keys) - 1, -1, -1):  # innermost first
        code = keys[index][0]
        kind = table.get((os.path.basename(code.co_filename), code.co_name))
        if kind is None or (inside and
                            not code.co_filename.startswith(inside)):
            break
        found = (kind, index)
    return found


def outward(keys: StackKey, found: tuple[str, int | None], table: Table,
            inside: tuple[str, ...]) -> tuple[str, int | None]:
    """Extend a classification outward through consecutive known waits.

    A monkey-patched ``threading.Event.wait`` waits in eventlet's lock:
    the threading frames just outside name what is waited for.
    """
    kind, index = found
    if index is None:
        return found
    for outer in range(index - 1, -1, -1):
        code = keys[outer][0]
        name = table.get((os.path.basename(code.co_filename), code.co_name))
        if name is None or not code.co_filename.startswith(inside):
            break
        kind, index = name, outer
    return kind, index


def nth_back(frame: FrameType, steps: int) -> FrameType:
    """Return the frame ``steps`` calls out from ``frame``."""
    for _ in range(steps):
        if frame.f_back is None:
            break
        frame = frame.f_back
    return frame


#: Wait kinds whose reader looks at the waited-on object only (not at the
#: frame's other locals), or that have no reader (the object's name is
#: their reading): members waiting on one object share a reading.
BY_OBJECT = frozenset({"semaphore", "lock", "queue get", "queue put",
                       "event", "join", "subprocess", "accept",
                       "socket read", "db pool", "pool slot", "pool waitall",
                       "looping call", "looping call sleep"})


def details(kind: str, frame: FrameType,
            shared: dict[tuple[str, int], tuple[Any, dict[str, Any]]]
            | None = None
            ) -> dict[str, Any]:
    """Read what the waiting frame waits on from its locals.

    ``frame`` is the matching frame of ``classify``.  For a native thread
    the frame is live: only what a local refers to is read, and a value
    that changes meanwhile is at worst a moment old.  With ``shared`` (a
    dict kept for one report), a wait on an object another member waits
    on (BY_OBJECT kinds) is read once: 5,000 greenthreads waiting on one
    Event cost one reading of it.  The result is the caller's to keep;
    never change it (it may be shared).
    """
    try:
        local = frame.f_locals
        owner = local.get("self")
        key = (kind, id(owner))
        if shared is not None and owner is not None and kind in BY_OBJECT:
            known = shared.get(key)
            if known is not None and known[0] is owner:
                return known[1]
        found: dict[str, Any] = {}
        if owner is not None and kind not in ("sleep", "tpool", "fd"):
            found["object"] = f"{type(owner).__name__} {id(owner):#x}"
        reader = _READERS.get(kind)
        if reader is not None:
            found.update(reader(owner, local, frame))
        if shared is not None and owner is not None and kind in BY_OBJECT:
            shared[key] = (owner, found)  # the owner kept: ids stay unique
        return found
    except Exception as error:
        return {"details_error": naming.error_text(error)}


#: Wait kinds whose eventlet object lists the greenlets waiting on it (see
#: ``waiting_greenlets``).
LISTS_WAITERS = frozenset({"event", "semaphore", "lock", "queue get"})


def waiting_greenlets(kind: str, owner: Any,
                      listed: dict[int, tuple[Any, Container[Any] | None]]
                      | None = None) -> Container[Any] | None:
    """Return the greenlets that eventlet's ``owner`` lists as waiting on
    it, for a wait of ``kind`` (``LISTS_WAITERS``), or None.  With
    ``listed`` (a dict kept for one group), an object's list is read
    once: members alternating between two semaphores copy each one's
    waiters once, not at every turn.

    Each is listed from its wait's start to its end, in a ``finally``
    (``Event.wait``'s ``_waiters``, ``Semaphore.acquire``'s, the
    ``Waiter`` that ``LightQueue.get`` keeps in ``getters``): a greenlet
    listed there is in that wait on that very object.  So the members of
    a group (one stack, one wait frame) listed by the object that the
    member before them waits on wait on it too, and are described
    without their frame's locals (which Python 3.11 copies into a dict,
    kept on the frame).  Only stored attributes of eventlet's exact types
    are read; a copy is made where the list is not a set.
    """
    if listed is not None:
        known = listed.get(id(owner))
        if known is not None and known[0] is owner:
            return known[1]
    found = _listed_waiters(kind, owner)
    if listed is not None:
        listed[id(owner)] = (owner, found)  # the owner kept: ids unique
    return found


def _listed_waiters(kind: str, owner: Any) -> Container[Any] | None:
    try:
        if kind == "event":
            waiters = naming.stored_attribute(owner, "_waiters")
            return waiters if type(waiters) is set else None
        if kind in ("semaphore", "lock"):
            waiters = naming.stored_attribute(owner, "_waiters")
            return set(waiters) if type(waiters) is collections.deque \
                else None
        if kind == "queue get":
            getters = naming.stored_attribute(owner, "getters")
            waiter = getattr(sys.modules.get("eventlet.queue"), "Waiter",
                             None)
            # Its one slot, read through the class's own descriptor.
            slot: Any = vars(waiter).get("greenlet") \
                if isinstance(waiter, type) else None
            if type(getters) is not set or \
                    type(slot) is not types.MemberDescriptorType:
                return None
            return {slot.__get__(getter) for getter in list(getters)
                    if type(getter) is waiter}
    except Exception:  # changed meanwhile, or a greenlet's own __hash__
        return None
    return None


def _semaphore(owner: Any, local: dict[str, Any], frame: Any
               ) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if type(owner).__name__ == "Lock":
        found["kind"] = "lock"
    value = naming.stored_attribute(owner, "_value")
    if type(value) is int:  # threading's Semaphore: waits in its Condition
        found["value"] = value
        initial = naming.stored_attribute(owner, "_initial_value")
        if type(initial) is int:  # a BoundedSemaphore
            found["bound"] = initial
        found["waiters"] = naming.stored_length(naming.stored_attribute(
            naming.stored_attribute(owner, "_cond"), "_waiters"))
        return found
    if type(naming.stored_attribute(owner, "_block")).__name__ == "lock":
        # threading's pure-Python RLock (_PyRLock): a lock, owner recorded
        found["kind"] = "lock"
        holder = naming.stored_attribute(owner, "_owner")
        if type(holder) is int:
            found["owner"] = holder
            found["count"] = naming.stored_attribute(owner, "_count")
        return found
    waiters = naming.stored_length(naming.stored_attribute(owner, "_waiters"))
    counter = naming.stored_attribute(owner, "counter")
    if type(counter) is int and waiters is not None:
        found["balance"] = counter - waiters  # as Semaphore.balance
    found["waiters"] = waiters
    return found


def _queue(owner: Any, local: dict[str, Any], frame: Any
           ) -> dict[str, Any]:
    maxsize = naming.stored_attribute(owner, "maxsize")
    return {"size": naming.stored_length(
                naming.stored_attribute(owner, "queue")),
            "maxsize": maxsize if type(maxsize) is int else None}


def _waiters(owner: Any, local: dict[str, Any], frame: Any
             ) -> dict[str, Any]:
    return {"waiters": naming.stored_length(
        naming.stored_attribute(owner, "_waiters"))}


def _join(owner: Any, local: dict[str, Any], frame: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"joining": id(owner)}
    ident = naming.stored_attribute(owner, "_ident")
    if type(ident) is int:
        found["joining"] = ident
        name = naming.stored_attribute(owner, "_name")
        if type(name) is str:
            found["thread_name"] = name
    return found


def _tpool(owner: Any, local: dict[str, Any], frame: Any
           ) -> dict[str, Any]:
    return {"calling": naming.callable_name(local.get("meth"))}


def _sleep(owner: Any, local: dict[str, Any], frame: Any) -> dict[str, Any]:
    seconds: Any = local.get("seconds")
    if type(seconds) not in (int, float):
        return {}
    return {"seconds": round(seconds, 3)}


def _condition(owner: Any, local: dict[str, Any], frame: Any
               ) -> dict[str, Any]:
    # Event.wait and Barrier.wait are named "wait" in threading.py too:
    # the object whose wait it is says which.
    found: dict[str, Any] = {}
    timeout: Any = local.get("timeout")
    if type(timeout) in (int, float):
        found["timeout"] = round(timeout, 3)
    kind = _EVENT_OWNERS.get(type(owner).__name__)
    if kind is not None:
        found["kind"] = kind
    if kind == "barrier":
        parties = naming.stored_attribute(owner, "_parties")
        count = naming.stored_attribute(owner, "_count")
        if type(parties) is int and type(count) is int:
            found["parties"] = parties
            found["arrived"] = count  # waiting at it, this thread included
        return found
    condition = naming.stored_attribute(owner, "_cond") \
        if kind == "event" else owner
    waiters = naming.stored_length(naming.stored_attribute(condition,
                                                           "_waiters"))
    if waiters is not None:
        found["waiters"] = waiters
    return found


def _future(owner: Any, local: dict[str, Any], frame: Any
            ) -> dict[str, Any]:
    state = naming.stored_attribute(owner, "_state")
    found: dict[str, Any] = {}
    if type(state) is str:
        found["future_state"] = state
    timeout: Any = local.get("timeout")
    if type(timeout) in (int, float):
        found["timeout"] = round(timeout, 3)
    return found


def _subprocess(owner: Any, local: dict[str, Any], frame: Any
                ) -> dict[str, Any]:
    found: dict[str, Any] = {}
    pid = naming.stored_attribute(owner, "pid")
    if type(pid) is int:
        found["child_pid"] = pid
    arguments = naming.stored_attribute(owner, "args")
    if type(arguments) in (list, tuple) and all(
            type(arg) is str for arg in arguments):
        found["command"] = redact.mask_command_line(list(arguments))
    elif type(arguments) is str:
        found["command"] = redact.mask_text(arguments)
    return found


#: Descriptors listed per selector wait.
MAX_FDS = 16


def _socket_fd(owner: Any, local: dict[str, Any], frame: Any
               ) -> dict[str, Any]:
    # socket.accept's self is the socket; SocketIO.readinto's holds it.
    sock = owner if issubclass(type(owner), _socket.socket) else \
        naming.stored_attribute(owner, "_sock")
    if not issubclass(type(sock), _socket.socket):
        return {}
    fd = _socket.socket.fileno(sock)  # C, of the standard library
    return {"fd": fd} if fd >= 0 else {}


def _selector(owner: Any, local: dict[str, Any], frame: Any
              ) -> dict[str, Any]:
    registered = naming.stored_attribute(owner, "_fd_to_key")
    if type(registered) is not dict:
        return {}
    fds = sorted(fd for fd in list(registered) if type(fd) is int)
    found: dict[str, Any] = {"fds": fds[:MAX_FDS]}
    if len(fds) > MAX_FDS:
        found["fds_more"] = len(fds) - MAX_FDS
    timeout = local.get("timeout")  # selectors make None -1: forever
    if isinstance(timeout, (int, float)) and type(timeout) is not bool \
            and timeout >= 0:
        found["timeout"] = round(timeout, 3)
    return found


def _db_pool(owner: Any, local: dict[str, Any], frame: Any
             ) -> dict[str, Any]:
    """A QueuePool's occupancy, as its ``checkedout()`` computes it."""
    queue = naming.stored_attribute(owner, "_pool")
    size = naming.stored_attribute(queue, "maxsize")
    idle = naming.stored_length(naming.stored_attribute(queue, "queue"))
    overflow = naming.stored_attribute(owner, "_overflow")
    found: dict[str, Any] = {}
    if type(size) is int and type(idle) is int and type(overflow) is int:
        found["checked_out"] = size - idle + overflow
        found["pool_size"] = size
    max_overflow = naming.stored_attribute(owner, "_max_overflow")
    if type(max_overflow) is int:
        found["max_overflow"] = max_overflow
    timeout = naming.stored_attribute(owner, "_timeout")
    if type(timeout) in (int, float):
        found["timeout"] = round(timeout, 3)
    return found


_READERS = {
    "semaphore": _semaphore,
    "lock": _semaphore,
    "queue get": _queue,
    "queue put": _queue,
    "event": _waiters,
    "join": _join,
    "tpool": _tpool,
    "sleep": _sleep,
    "condition": _condition,
    "future": _future,
    "subprocess": _subprocess,
    "accept": _socket_fd,
    "socket read": _socket_fd,
    "select": _selector,
    "db pool": _db_pool,
}
