"""Findings: what is wrong, first in every report, with its evidence.

Derived from the report's own plain data once every section is
collected (never from live objects): each finding has a kind, a
severity, one line in plain words and the ids (threads, greenthreads,
pools, hubs) that prove it, all of which appear in the same report.  A
healthy process says "no findings".

Kinds: ``hub_blocked`` (timers overdue past the late mark: something
keeps the hub from running), ``timers_overdue``, ``pool_full`` (a green
pool with greenthreads waiting for a slot, an executor with every worker
busy and work queued), ``lock_contention`` (threads waiting for an RLock
whose owner is known; threads or greenthreads waiting for a lock or
semaphore that another's stack holds inside a ``with`` block; lockutils
named locks), ``deadlock`` (a cycle in one wait-for graph across native
threads and greenthreads: each waits for a lock another holds),
``long_wait`` (a wait longer than ``[df_gmr]
long_wait_threshold``), ``report_limits`` (a section cut off, details
read for the first members of a group only).  Each says how it knows:
owners of RLocks are exact (the lock's own record); what is inferred
says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: Default of ``[df_gmr] long_wait_threshold``: oslo.messaging's
#: ``rpc_response_timeout`` (60 s): a wait longer than an RPC call would
#: have waited is worth a look.
LONG_WAIT_THRESHOLD = 60.0
#: Waits that are idle by design, never "long".
IDLE_WAITS = frozenset({"sleep", "looping call sleep", "hub loop",
                        "idle executor worker", "accept", "select", "fd",
                        "queue get", "event", "condition", "running",
                        "not started", "finished"})
SEVERITIES = ("critical", "warning", "info")


def idle_by_design(kind: str, wait_kind: str) -> bool:
    """Say whether a wait is idle by design: one of IDLE_WAITS, or the
    main greenlet or thread joining (every oslo.service process's main
    waits there for its services, ``launcher.wait()``, for its life)."""
    return wait_kind in IDLE_WAITS or (kind == "main" and wait_kind == "join")

#: Timers overdue by less are no finding: a report built beside the hub
#: takes the GIL from it for a few milliseconds itself.
OVERDUE_NOTICE = 0.1


def derive(sections: dict[str, Any], long_wait: float = LONG_WAIT_THRESHOLD
           ) -> list[dict[str, Any]]:
    """Return the findings of a report's sections (name -> result data)."""
    found = [
        *_hubs(sections.get("eventlet_hub")),
        *_green_pools(sections.get("green_pools")),
        *_executors(sections.get("thread_pools")),
        *_db_pools(sections.get("threads"), sections.get("green_threads")),
        *_locks(sections.get("threads")),
        *_named_locks(sections.get("threads"), sections.get("green_threads")),
        *_held_locks(sections.get("threads"), sections.get("green_threads")),
        *_long_waits(sections.get("green_threads"), long_wait),
        *_stranded(sections.get("green_threads")),
    ]
    found.sort(key=lambda finding: SEVERITIES.index(finding["severity"]))
    return found


def limits(results: list[Any]) -> list[dict[str, Any]]:
    """Return findings about df_gmr's own limits in this report."""
    found = []
    for result in results:
        if result.error and "cut off" in result.error:
            found.append(_finding(
                "report_limits", "warning",
                f"the {result.title} section was cut off: "
                f"{result.error.splitlines()[0]}", [result.name]))
        data = result.data if isinstance(result.data, dict) else {}
        groups = data.get("groups")
        for group in groups if isinstance(groups, list) else []:
            read = group.get("details_read") if isinstance(group, dict) \
                else None
            if read is not None:
                found.append(_finding(
                    "report_limits", "info",
                    f"{result.title}: details read for the first {read} "
                    f"of {group['count']} members of one group (ids all "
                    "listed)", group["ids"][:1]))
    return found


def _finding(kind: str, severity: str, text: str, evidence: list[Any]
             ) -> dict[str, Any]:
    return {"kind": kind, "severity": severity, "text": text,
            "evidence": evidence}


def _available(data: Any) -> bool:
    return isinstance(data, dict) and data.get("available") is not False


def _hubs(data: Any) -> Iterator[dict[str, Any]]:
    if not _available(data):
        return
    for hub in data.get("hubs", []):
        timers = hub["timers"]
        if hub["status"] != "live" or not timers["overdue"] or \
                (timers["max_overdue"] or 0) < OVERDUE_NOTICE:
            continue
        where = hub.get("running_at")
        at = (f"; now at {where['file']}:{where['line']} in "
              f"{where['function']}" if where else "")
        who = hub.get("running_greenlet")
        if timers["late"]:
            yield _finding(
                "hub_blocked", "critical",
                f"the hub of thread {hub['thread']} is blocked: "
                f"{timers['overdue']} timers overdue by up to "
                f"{timers['max_overdue']}s ({hub['activity']}"
                + (f", greenlet {who}" if who is not None else "") + at
                + ")", [hub["thread"], *([who] if who is not None else [])])
        else:
            yield _finding(
                "timers_overdue", "info",
                f"the hub of thread {hub['thread']} has "
                f"{timers['overdue']} timers overdue by up to "
                f"{timers['max_overdue']}s", [hub["thread"]])


def _green_pools(data: Any) -> Iterator[dict[str, Any]]:
    if not _available(data):
        return
    for pool in data.get("pools", []):
        if pool["waiting"] > 0 and pool["free"] <= 0:
            yield _finding(
                "pool_full", "warning",
                f"{pool['type']} {pool['id']:#x} is full: {pool['running']} "
                f"of {pool['size']} running, {pool['waiting']} greenthreads "
                "waiting for a slot",
                [pool["id"], *pool["waiting_ids"][:10]])


def _executors(data: Any) -> Iterator[dict[str, Any]]:
    if not _available(data):
        return
    for executor in data.get("executors", []):
        size = executor.get("max_workers")
        queued = executor.get("queued") or 0
        if size is not None and executor["busy"] >= size and queued > 0 \
                and not executor.get("looping_call"):
            threads = [task["thread"] for task in executor["running"]]
            yield _finding(
                "pool_full", "warning",
                f"{executor['type']} {executor['id']:#x} is full: all "
                f"{size} workers busy, {queued} tasks queued",
                [executor["id"], *threads])


def _waiting(data: Any, what: str, kind: str
             ) -> Iterator[tuple[Node, dict[str, Any]]]:
    """Yield (member, its wait) of each member waiting in ``kind``."""
    if not _available(data):
        return
    for member in _thread_members(data, kind):
        yield (what, member["id"]), member["wait"]


def _db_pools(threads: Any, greens: Any) -> Iterator[dict[str, Any]]:
    """SQLAlchemy QueuePools with every connection out and waiters."""
    pools: dict[str, tuple[dict[str, Any], list[Node]]] = {}
    for node, wait in [*_waiting(threads, "thread", "db pool"),
                       *_waiting(greens, "greenthread", "db pool")]:
        if "object" in wait:
            pools.setdefault(wait["object"], (wait, []))[1].append(node)
    for pool, (wait, nodes) in pools.items():
        size, overflow = wait.get("pool_size"), wait.get("max_overflow")
        out = wait.get("checked_out")
        if size is None or overflow is None or out is None or \
                overflow < 0 or out < size + overflow:
            continue
        kinds = {node[0] for node in nodes}
        who = (f"{len(nodes)} {kinds.pop()}s" if len(kinds) == 1
               else f"{len(nodes)} threads and greenthreads")
        yield _finding(
            "pool_full", "warning",
            f"SQLAlchemy {pool} is full: {out} connections checked out "
            f"(pool size {size} + overflow {overflow}), {who} waiting for "
            "one (found by the stacks: waiting in QueuePool._do_get)",
            [node[1] for node in nodes[:10]])


def _thread_members(data: Any, kind: str | None = None
                    ) -> Iterator[dict[str, Any]]:
    """Yield every member (of the groups waiting in ``kind``, if given),
    its own wait merged over its group's."""
    for group in data.get("groups", []):
        if kind is not None and group.get("wait_kind") != kind:
            continue
        shared = group["wait"]
        own = {member["id"]: member for member in group["members"]}
        for ident in group["ids"]:
            member = own.get(ident, {})
            yield {"id": ident, "name": member.get("name"),
                   "wait": {**shared, **member.get("wait", {})}}


def _locks(data: Any) -> Iterator[dict[str, Any]]:
    """Lock contention and deadlocks among native threads (RLock owners)."""
    if not isinstance(data, dict):
        return
    waiting: dict[int, dict[str, Any]] = {}
    by_lock: dict[str, list[int]] = {}
    for member in _thread_members(data):
        wait = member["wait"]
        if wait.get("kind") == "lock" and wait.get("owner") is not None \
                and wait["owner"] != member["id"]:
            waiting[member["id"]] = member
            by_lock.setdefault(wait["lock"], []).append(member["id"])
    cycles = _cycles({ident: member["wait"]["owner"]
                      for ident, member in waiting.items()})
    in_cycle = {ident for cycle in cycles for ident in cycle}
    for cycle in cycles:
        chain = "; ".join(
            f"thread {ident} ({waiting[ident]['name']}) waits for "
            f"{waiting[ident]['wait']['lock']} held by thread "
            f"{waiting[ident]['wait']['owner']}" for ident in cycle)
        yield _finding("deadlock", "critical",
                       f"deadlock of {len(cycle)} threads: {chain} (owners "
                       "exact: the locks' own records)", list(cycle))
    for lock, idents in by_lock.items():
        if set(idents) <= in_cycle:
            continue
        owner = waiting[idents[0]]["wait"]
        yield _finding(
            "lock_contention", "warning",
            f"{len(idents)} threads wait for {lock} held by thread "
            f"{owner['owner']} ({owner.get('owner_name')}) (owner exact: "
            "the lock's own record)", [owner["owner"], *idents])


def _member_locks(data: Any, what: str, field: str
                  ) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """Yield (what, member id, entry) of each member's ``field`` list."""
    if not _available(data):
        return
    for group in data.get("groups", []):
        for member in group["members"]:
            for lock in member.get(field) or []:
                if isinstance(lock, dict):
                    yield what, member["id"], lock


def _named_locks(threads: Any, greens: Any) -> Iterator[dict[str, Any]]:
    """oslo.concurrency named locks: who holds, who waits, any cycle."""
    members = [*_member_locks(threads, "thread", "named_locks"),
               *_member_locks(greens, "greenthread", "named_locks")]
    holders: dict[str, tuple[str, int, Any]] = {}
    waiters: dict[str, list[tuple[str, int, Any]]] = {}
    for what, ident, lock in members:
        if lock.get("holding"):
            holders[lock["name"]] = (what, ident, lock)
        else:
            waiters.setdefault(lock["name"], []).append((what, ident, lock))
    waits_for = {ident: holders[name][1] for name, found in waiters.items()
                 if name in holders for _, ident, _ in found}
    cycles = _cycles(waits_for)
    for cycle in cycles:
        yield _finding("deadlock", "critical",
                       f"possible deadlock of {len(cycle)} on lockutils "
                       "named locks (inferred from the stacks): "
                       + "; ".join(f"{ident} waits for a lock held by "
                                   f"{waits_for[ident]}" for ident in cycle),
                       list(cycle))
    for name, found in waiters.items():
        holder = holders.get(name)
        who = (f"held by {holder[0]} {holder[1]} for "
               f"{holder[2].get('seconds')}s in {holder[2].get('function')}"
               if holder else "holder not seen (a 'with lockutils.lock()' "
               "block, or another process for an external lock)")
        longest = max((lock.get("seconds") or 0) for _, _, lock in found)
        yield _finding(
            "lock_contention", "warning",
            f"{len(found)} waiting for lockutils lock \"{name}\" (the "
            f"longest {longest}s), {who}; found by the stacks (inside "
            "@synchronized)",
            ([holder[1]] if holder else []) + [ident for _, ident, _ in found])


#: Locks only one holder at a time can hold (a cycle through them is a
#: deadlock; a semaphore may have holders the stacks do not show).
EXCLUSIVE = frozenset({"lock", "Lock", "RLock", "_RLock"})
#: Locks their own holder cannot take again (threading's and eventlet's).
NOT_REENTRANT = frozenset({"lock", "Lock"})

Node = tuple[str, int]  # ("thread" or "greenthread", id)
#: How an edge of the wait-for graph was found, when not by a ``with``.
EXACT = "its own record (exact)"
NAMED_BY = "the stacks (inside @synchronized)"


def _lock_waits(data: Any, what: str, held: dict[str, Any]
                ) -> Iterator[tuple[Node, str]]:
    """Yield (member, lock waited on) of a section, for the locks in
    ``held`` only (100,000 waiters on one Event cost nothing)."""
    if not _available(data):
        return
    for group in data.get("groups", []):
        shared = group["wait"]
        target = shared.get("lock") or shared.get("object")
        if target and group.get("wait_kind") != "running":
            if target in held:
                for ident in group["ids"]:  # the whole group waits on it
                    yield (what, ident), target
            continue
        for member in group["members"]:
            wait = member.get("wait", {})
            target = wait.get("lock") or wait.get("object")
            if target in held and wait.get("kind") != "running":
                yield (what, member["id"]), target


def _held_locks(threads: Any, greens: Any) -> Iterator[dict[str, Any]]:
    """Locks held inside ``with`` blocks: who waits for them, any cycle.

    One wait-for graph across native threads and greenthreads: an edge
    from a thread waiting for an RLock to its recorded owner (exact),
    from each member that waits on a lock to the member whose stack is
    inside a ``with`` block of that lock, and from each member waiting
    for a lockutils named lock to its holder.  A cycle is reported here
    unless it is made of RLock owners alone or of named locks alone
    (``_locks`` and ``_named_locks`` say those).
    """
    holders: dict[str, list[tuple[Node, dict[str, Any]]]] = {}
    for what, ident, held in [
            *_member_locks(threads, "thread", "held_locks"),
            *_member_locks(greens, "greenthread", "held_locks")]:
        holders.setdefault(held["lock"], []).append(((what, ident), held))
    # RLock owners first: exact, and their contention is said by _locks.
    waits_for: dict[Node, tuple[Node, str, str]] = {}
    for member in _thread_members(threads) if _available(threads) else []:
        wait = member["wait"]
        if wait.get("kind") == "lock" and wait.get("owner") is not None \
                and wait["owner"] != member["id"]:
            waits_for[("thread", member["id"])] = (
                ("thread", wait["owner"]), wait["lock"], EXACT)
    waiters: dict[str, list[Node]] = {}
    for node, lock in [*_lock_waits(threads, "thread", holders),
                       *_lock_waits(greens, "greenthread", holders)]:
        found = [holder for holder in holders.get(lock, [])
                 if holder[0] != node]
        own = [held for holder, held in holders.get(lock, [])
               if holder == node]
        if own and lock.split(" ")[0] in NOT_REENTRANT:
            yield _finding(
                "deadlock", "critical",
                f"deadlock of 1: {node[0]} {node[1]} waits for {lock}, "
                f"which it holds itself (found by {own[0]['found_by']})",
                [node[1]])
            continue
        if not found or node in waits_for:
            continue
        waiters.setdefault(lock, []).append(node)
        if len(found) == 1 and lock.split(" ")[0] in EXCLUSIVE:
            waits_for[node] = (found[0][0], lock, found[0][1]["found_by"])
    named = [((what, ident), entry) for what, ident, entry in [
        *_member_locks(threads, "thread", "named_locks"),
        *_member_locks(greens, "greenthread", "named_locks")]]
    named_holders = {entry["name"]: node for node, entry in named
                     if entry.get("holding")}
    for node, entry in named:
        holder = named_holders.get(entry["name"])
        if holder is not None and holder != node and \
                not entry.get("holding") and node not in waits_for:
            waits_for[node] = (holder, f'lockutils lock "{entry["name"]}"',
                               NAMED_BY)
    reported = set()
    for cycle in _cycles({node: edge[0] for node, edge in waits_for.items()}):
        if len({waits_for[node][2] for node in cycle} & {EXACT, NAMED_BY}) \
                == 1 and all(waits_for[node][2] in (EXACT, NAMED_BY)
                             for node in cycle):
            continue  # one kind alone: said by _locks or _named_locks
        reported.update(cycle)
        chain = "; ".join(
            f"{node[0]} {node[1]} waits for {waits_for[node][1]} held by "
            f"{waits_for[node][0][0]} {waits_for[node][0][1]} (found by "
            f"{waits_for[node][2]})" for node in cycle)
        yield _finding("deadlock", "critical",
                       f"deadlock of {len(cycle)}: {chain}",
                       [node[1] for node in cycle])
    for lock, nodes in waiters.items():
        if set(nodes) <= reported:
            continue
        holding = holders[lock]
        who = ", ".join(f"{node[0]} {node[1]}" for node, _ in holding[:5])
        how = holding[0][1]["found_by"]
        kinds = {node[0] for node in nodes}
        waiting = (f"{len(nodes)} {kinds.pop()}s" if len(kinds) == 1
                   else f"{len(nodes)} threads and greenthreads")
        yield _finding(
            "lock_contention", "warning",
            f"{waiting} wait for {lock} held by {who} (found by {how})",
            [node[1] for node, _ in holding[:5]]
            + [node[1] for node in nodes[:10]])


def _cycles(waits_for: dict[Any, Any]) -> list[list[Any]]:
    """Return each cycle of a waiter -> holder graph once."""
    cycles, seen = [], set()
    for start in waits_for:
        path: list[Any] = []
        node: Any = start
        while node is not None and node not in seen and node not in path:
            path.append(node)
            node = waits_for.get(node)
        if node is not None and node in path:
            cycle = path[path.index(node):]
            cycles.append(cycle)
        seen.update(path)
    return cycles


def _stranded(data: Any) -> Iterator[dict[str, Any]]:
    """Greenlets in a hub copied from the parent at fork: never to run."""
    if not _available(data):
        return
    ids = [ident for group in data.get("groups", [])
           if group["wait"].get("stranded") and group["kind"] != "hub"
           for ident in group["ids"]]
    if ids:
        yield _finding(
            "stranded", "info",
            f"{len(ids)} greenlet{'s are' if len(ids) > 1 else ' is'} "
            "stranded in a hub from before fork (copied from the parent): "
            f"{'they' if len(ids) > 1 else 'it'} will never run", ids[:10])


def _long_waits(data: Any, threshold: float) -> Iterator[dict[str, Any]]:
    if not _available(data) or threshold <= 0:
        return
    for group in data.get("groups", []):
        if idle_by_design(group["kind"], group["wait_kind"]) or \
                group["wait"].get("stranded"):
            continue
        long = [member for member in group["members"]
                if (member.get("waiting_seconds") or 0) > threshold]
        if long:
            worst = max(member["waiting_seconds"] for member in long)
            yield _finding(
                "long_wait", "warning",
                f"{len(long)} greenthreads wait ({group['wait_kind']}) for "
                f"more than {threshold:g}s, the longest {worst}s",
                [member["id"] for member in long[:10]])
