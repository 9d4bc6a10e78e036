"""Green Threads: every live greenlet, why it waits, and who spawned it.

Collected from df_gmr's greenlet registry and the hubs' timers and
listeners; in a process where df_gmr was not set up (oslo.reports'
on-demand ``run()``), from one heap scan per report instead, and the
section says which (``found_by``).  Greenlets with the same stack, state
and wait kind form one group; the text shows each group's stack once, so
10,000 identical waiters cost one stack, not 10,000.

For each greenlet: the id eventlet's green ``thread.get_ident()`` returns
(what log lines show), its kind (main, hub, greenthread, greenlet), its
state (running, parked, not started, finished), its wait reason (kind
plus details), since when it waits when a timer says so, whether it is
stranded in a stale hub (it will never run), its spawn site (the first
recorded caller outside df_gmr and the wrapper libraries, or "unknown"
and why) and the request id of the last oslo.context it stored: the
request it serves, or the last one it served ("last request": oslo.context
keeps a context after its request ends; see ``runtime.requests`` for
which greenlets can serve one).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING
from typing import Any

from df_gmr import greenlets
from df_gmr import stacks
from df_gmr.runtime import grouping
from df_gmr.runtime.greens import Greens
from df_gmr.sections import EVENTLET_NOT_USED
from df_gmr.sections import Section
from df_gmr.sections import held_lines
from df_gmr.sections import not_available
from df_gmr.sections import wrap

if TYPE_CHECKING:
    from df_gmr.context import ReportContext

#: Greenlet ids listed per group in the text (the JSON lists them all).
TEXT_IDS = 12
#: Greenlets whose details are listed per group in the text.
TEXT_MEMBERS = 5
#: How the greenlets were found, in words.
FOUND_BY = {
    "registry": "registry (df_gmr's spawn hooks, and the hubs' timers and "
                "listeners)",
    "heap scan": "a heap scan (df_gmr was not set up)",
}


def collect(context: ReportContext) -> dict[str, Any]:
    """Return every greenlet, grouped by stack, state and wait kind."""
    reason = greenlets.available()
    if reason is not None:
        return not_available(reason, total=0, groups=[])
    if not context.runtime.hubs() and all(
            green.parent is None for green in
            context.runtime.tracked_with_sites()):
        return not_available(EVENTLET_NOT_USED if "eventlet" in sys.modules
                             else "no greenlet in use", total=0, groups=[])
    groups = Greens(context.runtime).groups()
    data: dict[str, Any] = {
        "available": True,
        "found_by": greenlets.found_by(),
        "total": sum(group["count"] for group in groups),
        "groups": groups,
    }
    scan = greenlets.last_scan()
    if scan is not None and scan.frozen:
        data["not_seen"] = (f"{scan.frozen} objects frozen by gc.freeze() "
                            "(a heap scan does not see them)")
    return data


def expand(group: dict[str, Any]) -> list[dict[str, Any]]:
    """Return one full dict per greenthread of a group (for JSON readers).

    A group stores what its members share once (``wait``,
    ``spawn_site``) and, in ``members``, only what differs.
    """
    return [{"request_id": None, "waiting_seconds": None, **member}
            for member in grouping.expand(group, "spawn_site")]


def format_lines(data: dict[str, Any]) -> list[str]:
    """Render one headline per group, its stack once, a few members."""
    lines = [f"{data['total']} greenlets in {len(data['groups'])} groups"]
    lines.append("found by: " + FOUND_BY.get(str(data.get("found_by")),
                                             "unknown"))
    if data.get("not_seen"):
        lines.extend(wrap(f"not seen: {data['not_seen']}"))
    for group in data["groups"]:
        ids = group["ids"]
        shown = ", ".join(str(ident) for ident in ids[:TEXT_IDS])
        if len(ids) > TEXT_IDS:
            shown += f", ... {len(ids) - TEXT_IDS} more"
        # A running (or finished, not started) greenlet waits on nothing:
        # its state says all.
        head = f"{group['count']} x {group['kind']}, {group['state']}"
        if group["wait_kind"] != group["state"]:
            head += f", waiting: {group['wait_kind']}"
        lines.extend(("", head))
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
            lines.extend(held_lines(member))
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
    details = [f"stranded: {value}" if key == "stranded"
               else f"{key} {value}" for key, value in wait.items()
               if key != "kind"]
    if waiting is not None:
        details.append(f"waiting {waiting}s")
    if site and "unknown" in site:
        spawner = site.get("spawner_spawned_at")
        details.append(f"spawned at: unknown ({site['unknown']})" + (
            f", in a greenthread spawned at {spawner['file']}:"
            f"{spawner['line']}" if spawner else ""))
    elif site:
        details.append(f"spawned at {site['file']}:{site['line']}")
    if request_id:
        # The last context it stored: oslo.context keeps it after the
        # request ends (a periodic task's, asleep until its next run).
        details.append(f"last request {request_id}")
    return "; ".join(details)


SECTION = Section("green_threads", "Green Threads", collect, format_lines)
