"""Green Threads: every live greenlet, why it waits, and who spawned it.

Collected from df_gmr's greenlet registry and the hubs' timers and
listeners (never from a heap scan).  Greenlets with the same stack, state
and wait kind form one group; the text shows each group's stack once, so
10,000 identical waiters cost one stack, not 10,000.

For each greenlet: the id eventlet's green ``thread.get_ident()`` returns
(what log lines show), its kind (main, hub, greenthread, greenlet), its
state (running, parked, not started, finished), its wait reason (kind
plus details), since when it waits when a timer says so, its spawn site
(the first caller frame outside eventlet, oslo.service, futurist and
df_gmr) and its oslo.context request id.
"""

from __future__ import annotations

from collections import defaultdict
import os
import sys
import time
from typing import TYPE_CHECKING
from typing import Any

from df_gmr import greenlets
from df_gmr import redact
from df_gmr import stacks
from df_gmr import trigger
from df_gmr.sections import Section

if TYPE_CHECKING:
    from df_gmr.report import ReportContext

#: Greenlet ids listed per group in the text (the JSON lists them all).
TEXT_IDS = 12
#: Greenlets whose details are listed per group in the text.
TEXT_MEMBERS = 5
#: Members of a group whose details (wait object read from their frame's
#: locals, timer, fd, spawn site) are collected: a group of 100,000
#: identical waiters is described from its first ones, and lists all ids.
DETAILS_PER_GROUP = 1000

#: (file name, function) inside eventlet -> wait kind.  The outermost
#: such frame of the eventlet frames on top of a stack names the wait.
WAIT_FUNCTIONS = {
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


def _package_dir(name: str) -> str | None:
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    return os.path.dirname(path) + os.sep if path else None


def collect(context: ReportContext) -> dict[str, Any]:
    """Return every greenlet, grouped by stack, state and wait kind."""
    reason = greenlets.available()
    if reason is not None:
        return {"available": False, "reason": reason, "total": 0,
                "groups": []}
    import greenlet

    eventlet_dir = _package_dir("eventlet")
    wrappers = stacks.wrapper_dirs()
    hub_info = _hub_waits()
    everything: dict[int, Any] = {}
    spawn_sites: dict[int, Any] = {}
    for green, site in greenlets.tracked_with_sites():
        everything[id(green)] = green
        if site:
            spawn_sites[id(green)] = site
    for green in hub_info.greenlets:
        everything.setdefault(id(green), green)
    for hub, _ in greenlets.hubs():
        hub_greenlet = getattr(hub, "greenlet", None)
        if hub_greenlet is not None:
            everything.setdefault(id(hub_greenlet), hub_greenlet)
            main = hub_greenlet.parent
            if main is not None:
                everything.setdefault(id(main), main)
    hub_greenlets = {
        id(getattr(hub, "greenlet", None)) for hub, _ in greenlets.hubs()
    }
    running_frames = _running_frames()
    request_ids = _request_ids()

    # Pass 1, per greenlet, kept to the minimum (100,000 greenthreads):
    # its stack as hashable keys, its state and kind, and the wait kind,
    # which identical stacks share (classified once).
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    classified: dict[stacks.StackKey, tuple[str, int | None]] = {}
    fd_waits = {ident for ident, wait in hub_info.waits.items()
                if "fd" in wait}
    for ident, green in everything.items():
        state = greenlets.state(green)
        frame = green.gr_frame
        if state == "running":
            frame = running_frames.get(ident)
        keys = stacks.frame_keys(frame)
        del frame
        if state == "running":
            keys, _ = stacks.without_own_frames(keys)
        kind = _kind(green, ident, hub_greenlets, greenlet)
        if keys not in classified:
            classified[keys] = _classify(keys, eventlet_dir)
        wait_kind = _wait_kind(state, kind, classified[keys][0],
                               ident in fd_waits)
        groups[(state, kind, wait_kind, keys)].append(green)
    everything.clear()

    # Pass 2, per group: what each member waits on, since when, its spawn
    # site and request id, read for the first DETAILS_PER_GROUP members.
    sites: dict[Any, dict[str, Any] | None] = {}
    now = time.monotonic()
    built = []
    for (state, kind, wait_kind, keys), members in groups.items():
        match = classified[keys][1]
        detailed = []
        for index, green in enumerate(members):
            ident = id(green)
            if index >= DETAILS_PER_GROUP:
                if ident in request_ids:
                    detailed.append({"id": ident, "wait": {"kind": wait_kind},
                                     "request_id": request_ids[ident],
                                     "unread": True})
                continue
            wait = _wait(state, kind, wait_kind, hub_info.waits.get(ident))
            if match is not None and state == "parked" and kind != "hub":
                frame = green.gr_frame
                if frame is not None:
                    wait.update(_wait_details(
                        wait_kind, _nth_back(frame, len(keys) - 1 - match)))
                del frame
            member: dict[str, Any] = {"id": ident, "wait": wait}
            positions = spawn_sites.get(ident)
            if positions:
                if positions not in sites:
                    sites[positions] = _spawn_site(positions, wrappers)
                member["spawn_site"] = sites[positions]
            if ident in request_ids:
                member["request_id"] = request_ids[ident]
            if "since" in wait:
                member["waiting_seconds"] = round(now - wait.pop("since"), 3)
            detailed.append(member)
        group = _group(state, kind, stacks.describe(keys), detailed,
                       [id(green) for green in members])
        built.append(((state, kind, wait_kind, keys), group))
    groups.clear()

    # Biggest group first; ties in a stable, readable order.
    built.sort(key=lambda item: (
        -item[1]["count"], item[0][:3],
        [(code.co_filename, line) for code, line in item[0][3]]))
    return {
        "available": True,
        "total": sum(group["count"] for _, group in built),
        "groups": [group for _, group in built],
    }


def _group(state: str, kind: str, stack: list[dict[str, Any]],
           members: list[dict[str, Any]], ids: list[int]
           ) -> dict[str, Any]:
    """Factor out what all members share; members keep only their own.

    ``members`` are the detailed ones (the first DETAILS_PER_GROUP, and
    any later one with a request id); ``ids`` lists every member.
    """
    read = [m for m in members if not m.get("unread")]
    wait = dict((read or members)[0]["wait"])
    for member in read[1:]:
        other = member["wait"]
        for key in list(wait):
            if other.get(key, _MISSING) != wait[key]:
                del wait[key]
        if len(wait) == 1:  # only the kind is common
            break
    first_site = members[0].get("spawn_site")
    common_site = first_site if all(
        m.get("spawn_site") == first_site for m in members) else None
    own_members = []
    for member in members:
        own: dict[str, Any] = {}
        own_wait = {k: v for k, v in member["wait"].items() if k not in wait}
        if own_wait:
            own["wait"] = own_wait
        site = member.get("spawn_site")
        if site is not None and common_site is None:
            own["spawn_site"] = site
        for key in ("request_id", "waiting_seconds"):
            if key in member:
                own[key] = member[key]
        if own:
            own_members.append({"id": member["id"], **own})
    group: dict[str, Any] = {
        "count": len(ids),
        "state": state,
        "kind": kind,
        "wait_kind": wait["kind"],
        "wait": wait,
        "spawn_site": common_site,
        "stack": stack,
        "ids": ids,
        "members": own_members,
    }
    if len(read) < len(ids):
        group["details_read"] = len(read)
    return group


_MISSING = object()


def expand(group: dict[str, Any]) -> list[dict[str, Any]]:
    """Return one full dict per greenthread of a group (for JSON readers).

    A group stores what its members share once (``wait``,
    ``spawn_site``) and, in ``members``, only what differs.
    """
    own = {member["id"]: member for member in group["members"]}
    expanded = []
    for ident in group["ids"]:
        member = own.get(ident, {})
        expanded.append({
            "id": ident,
            "kind": group["kind"],
            "state": group["state"],
            "wait": {**group["wait"], **member.get("wait", {})},
            "spawn_site": member.get("spawn_site", group["spawn_site"]),
            "request_id": member.get("request_id"),
            "waiting_seconds": member.get("waiting_seconds"),
        })
    return expanded


def _kind(green: Any, ident: int, hub_greenlets: set[int], greenlet: Any
          ) -> str:
    if ident in hub_greenlets:
        return "hub"
    if green.parent is None:
        return "main"
    if type(green) is greenlet.greenlet:
        return "greenlet"
    return "greenthread"


def _running_frames() -> dict[int, Any]:
    # A running greenlet has no gr_frame: its stack is its thread's stack.
    # greenlet.getcurrent() only answers for the calling thread, so the
    # running greenlet (there is one per thread that runs greenlets, and
    # eventlet services run them on the main thread) gets the main
    # thread's current frames.
    frames = sys._current_frames()
    ident = trigger.main_thread_ident()
    running: dict[int, Any] = {}
    if ident is not None and ident in frames:
        for green in greenlets.tracked():
            if not green.dead and green.gr_frame is None and bool(green):
                running[id(green)] = frames[ident]
    del frames
    return running


class _HubWaits:
    def __init__(self) -> None:
        self.waits: dict[int, dict[str, Any]] = {}
        self.greenlets: list[Any] = []


def _hub_waits() -> _HubWaits:
    """Map greenlets to the hub timer or listener they wait on."""
    found = _HubWaits()
    sockets: dict[int, str] | None = None
    for hub, _ in greenlets.hubs():
        if sockets is None and (hub.listeners["read"] or hub.listeners[
                "write"]):
            sockets = socket_descriptions()
        clock = getattr(hub, "clock", time.monotonic)
        try:
            hub_now = clock()
        except Exception:
            hub_now = time.monotonic()
        offset = time.monotonic() - hub_now
        for due, timer in list(hub.timers) + list(hub.next_timers):
            call = getattr(timer, "tpl", None)
            green = greenlets.bound_greenlet(call[0] if call else None)
            if green is None:
                continue
            if getattr(timer, "called", False):
                continue
            seconds = getattr(timer, "seconds", None)
            entry: dict[str, Any] = {"timer": True}
            entry["due_in"] = round(due - hub_now, 3)
            if isinstance(seconds, (int, float)):
                entry["since"] = due - seconds + offset
            found.waits.setdefault(id(green), entry)
            found.greenlets.append(green)
        for evtype, bucket in hub.listeners.items():
            for fileno, listener in list(bucket.items()):
                _add_listener(found, evtype, fileno, listener, sockets or {})
        for evtype, bucket in hub.secondaries.items():
            for fileno, listeners in list(bucket.items()):
                for listener in listeners:
                    _add_listener(found, evtype, fileno, listener,
                                  sockets or {})
    return found


def _add_listener(found: _HubWaits, evtype: str, fileno: int,
                  listener: Any, sockets: dict[int, str]) -> None:
    green = getattr(listener, "greenlet", None)
    if green is None:
        return
    found.waits[id(green)] = {"fd": fileno, "mode": evtype,
                              "fd_is": describe_fd(fileno, sockets)}
    found.greenlets.append(green)


def describe_fd(fd: int, sockets: dict[int, str]) -> str:
    """Say what a file descriptor is: socket addresses, path, pipe."""
    if fd in sockets:
        return sockets[fd]
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "unknown"


def socket_descriptions() -> dict[int, str]:
    """Map this process's socket fds to ``kind local -> peer``.

    Read from /proc through psutil: creating socket objects here would go
    through eventlet's green socket, which sets the shared fd non-blocking.
    Reading every connection costs tens of milliseconds, so the sections
    of one report share one reading (kept for a second).
    """
    global _sockets_read
    now = time.monotonic()
    if _sockets_read is not None and now - _sockets_read[0] < 1.0 \
            and _sockets_read[1] == os.getpid():
        return _sockets_read[2]
    described = _read_sockets()
    _sockets_read = (now, os.getpid(), described)
    return described


_sockets_read: tuple[float, int, dict[int, str]] | None = None


def _read_sockets() -> dict[int, str]:
    try:
        import psutil

        connections = psutil.Process().net_connections(kind="all")
    except Exception:
        return {}
    described = {}
    for connection in connections:
        kind = {1: "unix", 2: "tcp", 10: "tcp6"}.get(
            int(connection.family), "socket")
        if int(connection.type) == 2 and kind != "unix":
            kind = kind.replace("tcp", "udp")
        local = _address(connection.laddr) or "(unnamed)"
        peer = _address(connection.raddr)
        described[connection.fd] = (
            f"{kind} socket {local} -> {peer}" if peer
            else f"{kind} socket {local} "
            f"({connection.status or 'unconnected'})"
        )
    return described


def _address(address: Any) -> str | None:
    if not address:
        return None
    if isinstance(address, tuple):
        return f"{address[0]}:{address[1]}"
    return str(address)


def _classify(keys: stacks.StackKey, eventlet_dir: str | None
              ) -> tuple[str, int | None]:
    """Name the wait of a parked stack: the app's call into eventlet."""
    if eventlet_dir:
        for index, (code, _) in enumerate(keys):  # outermost first
            if not code.co_filename.startswith(eventlet_dir):
                continue
            found = WAIT_FUNCTIONS.get(
                (os.path.basename(code.co_filename), code.co_name)
            )
            if found is not None:
                return found, index
    return ("unknown" if keys else "no frames"), None


def _wait_kind(state: str, kind: str, by_stack: str, on_fd: bool) -> str:
    """Return the wait kind that groups a greenlet."""
    if state == "running":
        return "running"
    if state in ("not started", "finished"):
        return state
    if kind == "hub":
        return "hub loop"
    if on_fd and by_stack in ("unknown", "no frames"):
        return "fd"
    return by_stack


def _wait(state: str, kind: str, wait_kind: str,
          hub_wait: dict[str, Any] | None) -> dict[str, Any]:
    if state == "running":
        return {"kind": "running"}
    if state == "not started":
        wait: dict[str, Any] = {"kind": "not started"}
        if hub_wait and "due_in" in hub_wait:
            wait["starts_in"] = hub_wait["due_in"]
        return wait
    if state == "finished":
        return {"kind": "finished"}
    if kind == "hub":
        return {"kind": "hub loop"}
    wait = {"kind": wait_kind}
    if hub_wait:
        if "fd" in hub_wait:
            if wait_kind in ("unknown", "no frames"):
                wait["kind"] = "fd"
            wait["fd"] = hub_wait["fd"]
            wait["mode"] = hub_wait["mode"]
            wait["fd_is"] = hub_wait["fd_is"]
        elif hub_wait.get("timer"):
            wait["due_in"] = hub_wait.get("due_in")
            if "since" in hub_wait:
                wait["since"] = hub_wait["since"]
    return wait


def _nth_back(frame: Any, steps: int) -> Any:
    for _ in range(steps):
        if frame.f_back is None:
            break
        frame = frame.f_back
    return frame


def _wait_details(kind: str, frame: Any) -> dict[str, Any]:
    """Read what a parked greenthread waits on from its eventlet frame.

    The frame is suspended (its greenlet is parked), so reading its locals
    from this thread sees a consistent state.  Only stored attributes are
    read and callables are named (``redact``): no code of the object
    waited on, nor of a tpool call's function, runs here.
    """
    try:
        local = frame.f_locals
        owner = local.get("self")
        details: dict[str, Any] = {}
        if owner is not None and kind not in ("sleep", "tpool", "fd"):
            details["object"] = f"{type(owner).__name__} {id(owner):#x}"
        if kind == "semaphore":
            if type(owner).__name__ == "Lock":
                details["kind"] = "lock"
            waiters = redact.stored_length(
                redact.stored_attribute(owner, "_waiters"))
            counter = redact.stored_attribute(owner, "counter")
            if type(counter) is int and waiters is not None:
                details["balance"] = counter - waiters  # Semaphore.balance
            details["waiters"] = waiters
        elif kind in ("queue get", "queue put"):
            details["size"] = redact.stored_length(
                redact.stored_attribute(owner, "queue"))
            maxsize = redact.stored_attribute(owner, "maxsize")
            details["maxsize"] = maxsize if type(maxsize) is int else None
        elif kind == "event":
            details["waiters"] = redact.stored_length(
                redact.stored_attribute(owner, "_waiters"))
        elif kind == "join":
            details["joining"] = id(owner)
        elif kind == "tpool":
            details["calling"] = redact.callable_name(local.get("meth"))
        elif kind == "sleep" and type(local.get("seconds")) in (int, float):
            details["seconds"] = local["seconds"]
        return details
    except Exception as error:
        return {"details_error": redact.error_text(error)}


def _spawn_site(positions: tuple[Any, ...], wrappers: tuple[str, ...]
                ) -> dict[str, Any] | None:
    """Describe the first spawning frame outside eventlet and friends."""
    pairs = list(zip(positions[::2], positions[1::2], strict=True))
    for code, lineno in pairs:
        if not code.co_filename.startswith(wrappers):
            return stacks.describe(((code, lineno),))[0]
    return stacks.describe((pairs[-1],))[0]


def _request_ids() -> dict[int, str]:
    """Map greenlet ids to the oslo.context request id bound to them."""
    context_module = sys.modules.get("oslo_context.context")
    store = getattr(context_module, "_request_store", None)
    if store is None:
        return {}
    try:
        greens = object.__getattribute__(store, "_local__greens")
    except AttributeError:
        return {}  # a native threading.local: no per-greenlet storage
    found = {}
    # The main thread adds contexts while this runs: copy the underlying
    # dict of weak references with snapshot(), never iterate it live.
    for reference, values in greenlets.snapshot(greens.data.items):
        green = reference()
        if green is None:
            continue
        context = values.get("context") if type(values) is dict else None
        request_id = redact.stored_attribute(context, "request_id")
        if type(request_id) is str and request_id:
            found[id(green)] = request_id
    return found


def format_lines(data: dict[str, Any]) -> list[str]:
    """Render one headline per group, its stack once, a few members."""
    if not data.get("available", True):
        return [f"not available: {data['reason']}"]
    lines = [f"{data['total']} greenlets in {len(data['groups'])} groups"]
    for group in data["groups"]:
        ids = group["ids"]
        shown = ", ".join(str(ident) for ident in ids[:TEXT_IDS])
        if len(ids) > TEXT_IDS:
            shown += f", ... {len(ids) - TEXT_IDS} more"
        lines.extend(("", f"{group['count']} x {group['kind']}, "
                          f"{group['state']}, waiting: {group['wait_kind']}"))
        common = _details(group["wait"], group["spawn_site"])
        if common:
            sampled = group.get("details_read")
            scope = f"first {sampled}" if sampled else "all"
            lines.append(f"  {scope}: {common}")
        lines.append(f"  ids: {shown}")
        members = group["members"]
        for member in members[:TEXT_MEMBERS]:
            lines.append(f"  - {member['id']}: " + _details(
                member.get("wait", {}), member.get("spawn_site"),
                member.get("waiting_seconds"), member.get("request_id")))
        if len(members) > TEXT_MEMBERS:
            lines.append(f"  ... details of {len(members) - TEXT_MEMBERS} "
                         "more in the JSON report")
        if group["stack"]:
            lines.append("  stack (most recent call last):")
            lines.extend(stacks.format_stack(group["stack"], "    "))
    return lines


def _details(wait: dict[str, Any], site: dict[str, Any] | None,
             waiting: float | None = None, request_id: str | None = None
             ) -> str:
    details = [f"{key} {value}" for key, value in wait.items()
               if key != "kind"]
    if waiting is not None:
        details.append(f"waiting {waiting}s")
    if site:
        details.append(f"spawned at {site['file']}:{site['line']}")
    if request_id:
        details.append(f"request {request_id}")
    return "; ".join(details)


SECTION = Section("green_threads", "Green Threads", collect, format_lines)
