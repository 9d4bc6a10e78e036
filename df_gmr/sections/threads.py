"""Threads: every native thread, grouped, with what it waits on.

Only real threads are listed (those with a Python thread state), never
greenlets dressed up as threads.  Threads with the same stack, state and
wait kind form one group, shown once with the ids, names and details of
its members: 500 identical executor workers cost one stack.  A thread's
wait is read from its stack (a queue's get, a condition, event, barrier
or semaphore, a future's result, a join, a selector and its descriptors,
an accept or read with the socket's addresses, a subprocess with its pid
and command, an idle executor worker, a looping call's sleep), or from
the C call its innermost frame makes (a lock's acquire with an RLock's
owner, a socket's recv, a sleep with its seconds); ``running`` with ``in
C call X`` says that neither shows a known wait.

df_gmr's own threads (reporting, sections, watchers) are listed apart,
never counted among the service's.  The thread that builds the report is
marked, and its df_gmr frames are left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from df_gmr import stacks
from df_gmr.runtime.natives import Natives
from df_gmr.sections import Section
from df_gmr.sections import held_lines
from df_gmr.sections import plural

if TYPE_CHECKING:
    from df_gmr.context import ReportContext

#: Thread ids listed per group in the text (the JSON lists them all).
TEXT_IDS = 8
#: Threads whose details are listed per group in the text.
TEXT_MEMBERS = 5


def collect(context: ReportContext) -> dict[str, Any]:
    """Return the service's threads grouped, and df_gmr's own apart."""
    natives = Natives(context.runtime)
    groups = natives.groups()
    return {
        "count": sum(group["count"] for group in groups),
        "groups": groups,
        "df_gmr_threads": natives.own_threads(),
    }


def format_lines(data: dict[str, Any]) -> list[str]:
    """Render one headline per group, its stack once, a few members."""
    own = data.get("df_gmr_threads", [])
    lines = [f"{plural(data['count'], 'native thread')} in "
             f"{plural(len(data['groups']), 'group')} (and {len(own)} of "
             "df_gmr's own, listed last)"]
    # Who started a thread is shown when it is not the main thread (most
    # are started by it; the JSON says so for every thread).
    main = next((group["ids"][0] for group in data["groups"]
                 if group["kind"] == "main" and group["ids"]), None)
    for group in data["groups"]:
        lines.extend(_group_lines(group, main))
    if own:
        lines.extend(("", "df_gmr's own threads:"))
        lines.extend(f"  Thread {thread['ident']} {_own_name(thread)} "
                     f"[{thread['role']}]" for thread in own)
    return lines


def _own_name(thread: dict[str, Any]) -> str:
    # df_gmr's threads have no Thread object: the name they gave
    # themselves for the system's tools (older reports: unnamed).
    return thread["name"] or thread.get("system_name") or "(unnamed)"


def _group_lines(group: dict[str, Any], main: int | None = None
                 ) -> list[str]:
    ids = group["ids"]
    names = {member["id"]: member.get("name") for member in group["members"]}
    shown = ", ".join(
        f"{ident} ({names[ident]})" if names.get(ident) else str(ident)
        for ident in ids[:TEXT_IDS])
    if len(ids) > TEXT_IDS:
        shown += f", ... {len(ids) - TEXT_IDS} more"
    lines = ["", f"{group['count']} x {group['kind']}, {group['state']}: "
                 f"{group['wait_kind']}"]
    common = _details(group["wait"])
    if common:
        sampled = group.get("details_read")
        lines.append(f"  {'first ' + str(sampled) if sampled else 'all'}: "
                     f"{common}")
    lines.append("  " + _origin(group))
    lines.append(f"  threads: {shown}")
    for member in group["members"][:TEXT_MEMBERS]:
        flags = [f"native id {member['native_id']}"
                 if member.get("native_id") is not None else None,
                 "daemon" if member.get("daemon") else None,
                 member.get("role"),
                 "the parent's thread that forked this process, its main "
                 "thread since" if member.get("forked_in_thread") else None,
                 _details(member.get("wait", {})),
                 f"runs {member['target']}" if member.get("target")
                 else None,
                 _site("started at", member["origin"])
                 if member.get("origin") else None,
                 None if member.get("forked_in_thread")  # the parent's
                 else _starter(member.get("started_by"), main)]
        lines.append(f"  - {member['id']} {member.get('name') or ''}: "
                     + "; ".join(flag for flag in flags if flag))
        lines.extend(held_lines(member))
    if len(group["members"]) > TEXT_MEMBERS:
        lines.append(f"  ... {len(group['members']) - TEXT_MEMBERS} more "
                     "in the JSON report")
    if group["stack"]:
        lines.append("  stack (most recent call last):")
        lines.extend(stacks.format_stack(group["stack"], "    "))
    else:
        lines.append("  (no Python frames)")
    return lines


def _origin(group: dict[str, Any]) -> str:
    if group.get("origin"):
        forked = any(member.get("forked_in_thread")
                     for member in group["members"])
        return _site("all started at", group["origin"]) + (
            " (in the parent, which forked this process from it)"
            if forked else "")
    if any(member.get("origin") for member in group["members"]):
        return "started at: see each thread"
    if group["kind"] == "main":
        return "the main thread: started with the process"
    return ("started at: unknown (before df_gmr was set up, or not through "
            "threading.Thread.start)")


def _starter(starter: dict[str, Any] | None, main: int | None
             ) -> str | None:
    if not starter:
        return None
    running = starter.get("running", True)
    if running and starter["ident"] == main:
        return None  # most threads: said in the JSON only
    name = f" ({starter['name']})" if starter.get("name") else ""
    if running:
        return f"started by thread {starter['ident']}{name}"
    # Its ident may be another thread's now: never read as that one.
    if starter.get("ident_reused"):
        return (f"started by thread {starter['ident']}{name}, since ended "
                "(that id is another thread's now)")
    return f"started by thread {starter['ident']}{name}, since ended"


def _site(label: str, frame: dict[str, Any]) -> str:
    if "unknown" in frame:
        return f"{label}: unknown ({frame['unknown']})"
    return f"{label} {frame['file']}:{frame['line']} in {frame['function']}"


def _details(wait: dict[str, Any]) -> str:
    return "; ".join(f"{key} {value}" for key, value in wait.items()
                     if key != "kind")


SECTION = Section("threads", "Threads", collect, format_lines)
