"""What changed between two reports of one process (``df-gmr diff``).

Groups (keyed as ``df_gmr.analysis`` says) that appeared, grew, shrank
or vanished; members (thread idents, greenthread ids) in the same wait
in both reports, hence stuck for at least the interval between the two
reports' header times; pool occupancy changes; findings new, resolved
and still there.

"The same wait" means: the same group key in both reports (same stack,
state and wait kind), the same wait object where the report names one
(``object``, ``lock``, ``fd``, ``joining``, ``calling``...), and, where
the report gives the wait's age (``waiting_seconds``), a wait that began
before the older report (age in the newer report at least the interval,
less a small slack for the time a report takes).  A member that left its
wait and came back to the same line between the two reports is counted
as moving, not stuck, whenever its age says so; ids are reused by
CPython once a thread or greenlet is gone, which no report can tell.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from df_gmr import findings as findings_module
from df_gmr.analysis import COUNTED
from df_gmr.analysis import MEMBER
from df_gmr.analysis import Key
from df_gmr.analysis import ReportError
from df_gmr.analysis import frame_name
from df_gmr.analysis import group_key
from df_gmr.analysis import header
from df_gmr.analysis import label
from df_gmr.analysis import moment
from df_gmr.analysis import pattern
from df_gmr.analysis import plural
from df_gmr.analysis import section
from df_gmr.analysis import stack_groups
from df_gmr.analysis import totals
from df_gmr.analysis import where

#: Wait fields that name what is waited for (not how many, nor how long).
IDENTITY = ("object", "lock", "owner", "fd", "mode", "joining", "calling",
            "since", "stranded")
#: Wait kinds that are no wait: the member building the report.
NOT_WAITS = frozenset({"building this report"})
#: Ids and members listed per group in the text.
TEXT_IDS = 8


@dataclasses.dataclass
class _Group:
    """The groups of one report that share a key, merged."""

    key: Key
    count: int = 0
    ids: list[int] = dataclasses.field(default_factory=list)
    parts: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def members(self) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
        """Return id -> (its group's wait, its own member dict)."""
        found: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        for part in self.parts:
            wait = part.get("wait")
            shared: dict[str, Any] = wait if isinstance(wait, dict) else {}
            own = {member.get("id"): member
                   for member in part.get("members") or ()
                   if isinstance(member, dict)}
            for ident in part.get("ids") or ():
                found[ident] = (shared, own.get(ident, {}))
        return found

    @property
    def wait(self) -> dict[str, Any]:
        wait = self.parts[0].get("wait") if self.parts else None
        return wait if isinstance(wait, dict) else {}


def _index(report: dict[str, Any]) -> dict[Key, _Group]:
    groups: dict[Key, _Group] = {}
    for short, group in stack_groups(report):
        key = group_key(short, group)
        merged = groups.get(key)
        if merged is None:
            merged = groups[key] = _Group(key)
        count = group.get("count")
        merged.count += count if isinstance(count, int) else len(
            group.get("ids") or ())
        merged.ids.extend(group.get("ids") or ())
        merged.parts.append(group)
    return groups


_IDENTITY = frozenset(IDENTITY)


def _identity(shared: dict[str, Any], own: dict[str, Any],
              cache: dict[int, tuple[str, ...]]) -> tuple[str, ...]:
    """Return what a member waits for (its group's, or its own)."""
    wait = own.get("wait")
    if isinstance(wait, dict) and not _IDENTITY.isdisjoint(wait):
        merged = {**shared, **wait}
        return tuple(str(merged.get(field)) for field in IDENTITY)
    # Most members wait for what their whole group does: once per group
    # (the dicts outlive the cache, so their ids are theirs).
    found = cache.get(id(shared))
    if found is None:
        found = cache[id(shared)] = tuple(str(shared.get(field))
                                          for field in IDENTITY)
    return found


def _describe(key: Key) -> dict[str, Any]:
    short, kind, state, wait_kind, stack = key
    return {"section": short, "kind": kind, "state": state,
            "wait_kind": wait_kind, "where": where(stack),
            "stack": [{"file": file, "function": function, "line": line}
                      for file, function, line in stack]}


def _stuck(key: Key, old: _Group, new: _Group, interval: float | None
           ) -> tuple[dict[str, Any] | None, int]:
    """Return the stuck members of a key (or None) and how many moved."""
    if key[3] in NOT_WAITS or (key[0], key[2]) == ("greenthreads",
                                                   "running"):
        return None, 0  # no wait to be stuck in, nor to move through
    common = set(old.ids).intersection(new.ids)
    if not common:
        return None, new.count
    old_members, new_members = old.members(), new.members()
    slack = 0.05 + 0.1 * (interval or 0)
    stuck, ages = [], []
    cache: dict[int, tuple[str, ...]] = {}
    for ident in new.ids:
        if ident not in common:
            continue
        old_shared, old_own = old_members[ident]
        new_shared, new_own = new_members[ident]
        if _identity(old_shared, old_own, cache) != _identity(
                new_shared, new_own, cache):
            continue
        age = new_own.get("waiting_seconds")
        if isinstance(age, (int, float)) and interval is not None \
                and age < interval - slack:
            continue  # left its wait and came back: moving
        stuck.append(ident)
        if isinstance(age, (int, float)):
            ages.append({"id": ident, "waiting_seconds": age})
    if not stuck:
        return None, new.count
    entry = {**_describe(key), "count": len(stuck), "of": new.count,
             "idle": findings_module.idle_by_design(key[1], key[3]),
             "wait": new.wait, "ids": stuck}
    if ages:
        seconds = [age["waiting_seconds"] for age in ages]
        entry["waiting_seconds"] = {"min": min(seconds),
                                    "max": max(seconds)}
        entry["members"] = ages
    return entry, new.count - len(stuck)


def _occupancy(report: dict[str, Any]) -> dict[tuple[str, Any],
                                                dict[str, Any]]:
    """Return every pool's occupancy: (what, id) -> description."""
    found: dict[tuple[str, Any], dict[str, Any]] = {}
    green = section(report, "green_pools") or {}
    for pool in green.get("pools") or ():
        found["green pool", pool.get("id")] = {
            "type": pool.get("type"), "size": pool.get("size"),
            "running": pool.get("running"), "waiting": pool.get("waiting")}
    for executor in green.get("executors") or ():
        found["green executor", executor.get("id")] = {
            "type": executor.get("type"),
            "size": executor.get("max_workers"),
            "queued": executor.get("queued")}
    tpool = green.get("tpool")
    if isinstance(tpool, dict) and tpool.get("loaded"):
        found["tpool", None] = {
            "type": "eventlet.tpool", "size": tpool.get("max_threads"),
            "busy": tpool.get("busy"), "queued": tpool.get("queued")}
    native = section(report, "thread_pools") or {}
    for executor in native.get("executors") or ():
        found["executor", executor.get("id")] = {
            "type": executor.get("type"), "name": executor.get("name"),
            "size": executor.get("max_workers"),
            "busy": executor.get("busy"), "queued": executor.get("queued")}
    return found


_LOAD = ("running", "waiting", "busy", "queued")


def _pools(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    before, after = _occupancy(old), _occupancy(new)
    changes = []
    for key in [*before, *(key for key in after if key not in before)]:
        was, now = before.get(key), after.get(key)
        if was is not None and now is not None and all(
                was.get(field) == now.get(field) for field in _LOAD):
            continue
        described = now or was or {}
        changes.append({
            "pool": key[0], "id": key[1], "type": described.get("type"),
            "name": described.get("name"), "size": described.get("size"),
            "change": ("appeared" if was is None else "vanished"
                       if now is None else "changed"),
            "old": None if was is None else {
                field: was[field] for field in _LOAD if field in was},
            "new": None if now is None else {
                field: now[field] for field in _LOAD if field in now}})
    return changes


def _finding_key(finding: dict[str, Any]) -> tuple[str, str]:
    return str(finding.get("kind")), pattern(str(finding.get("text")))


def _findings(old: dict[str, Any], new: dict[str, Any]
              ) -> dict[str, list[dict[str, Any]]]:
    before = {_finding_key(f): f for f in old.get("findings") or ()
              if isinstance(f, dict)}
    after = {_finding_key(f): f for f in new.get("findings") or ()
             if isinstance(f, dict)}
    severity = findings_module.SEVERITIES

    def order(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(found, key=lambda finding: severity.index(
            finding.get("severity")) if finding.get("severity") in severity
            else len(severity))

    return {
        "new": order([f for key, f in after.items() if key not in before]),
        "resolved": order([f for key, f in before.items()
                           if key not in after]),
        "still": order([f for key, f in after.items() if key in before]),
    }


def _who(report: dict[str, Any]) -> dict[str, Any]:
    head = header(report)
    return {"service": head.get("service"), "pid": head.get("pid"),
            "host": head.get("host"), "time": head.get("time"),
            "totals": totals(report)}


def diff(old: dict[str, Any], new: dict[str, Any], force: bool = False
         ) -> dict[str, Any]:
    """Return what changed from ``old`` to ``new`` (plain data)."""
    old_head, new_head = header(old), header(new)
    notes = []
    if (old_head.get("pid"), old_head.get("host")) != (
            new_head.get("pid"), new_head.get("host")):
        what = (f"{label(old)} on {old_head.get('host')} and {label(new)} "
                f"on {new_head.get('host')}")
        if not force:
            msg = (f"not two reports of one process ({what}); --force "
                   "compares them anyway")
            raise ReportError(msg)
        notes.append(f"different processes compared (--force): {what}; "
                     "nothing can be stuck across them")
    start, end = moment(old), moment(new)
    interval = (end - start).total_seconds() if start and end else None
    if interval is None:
        notes.append("a report has no readable time: stuck means in the "
                     "same wait in both, for an unknown interval")
    elif interval < 0:
        notes.append(f"NEW was taken {-interval:.3f} s before OLD")
    same_process = not notes or not notes[0].startswith("different")
    before, after = _index(old), _index(new)
    groups: dict[str, list[dict[str, Any]]] = {
        "appeared": [], "grew": [], "shrank": [], "vanished": []}
    stuck, moving = [], []
    for key in [*after, *(key for key in before if key not in after)]:
        was, now = before.get(key), after.get(key)
        old_count = was.count if was else 0
        new_count = now.count if now else 0
        entry = {**_describe(key), "old": old_count, "new": new_count,
                 "delta": new_count - old_count}
        if was is None:
            groups["appeared"].append(entry)
        elif now is None:
            groups["vanished"].append(entry)
        elif new_count > old_count:
            groups["grew"].append(entry)
        elif new_count < old_count:
            groups["shrank"].append(entry)
        if was is not None and now is not None and same_process:
            found, moved = _stuck(key, was, now, interval)
            if found is not None:
                stuck.append(found)
            if moved:
                moving.append({**_describe(key), "count": moved,
                               "of": now.count})
    for entries in groups.values():
        entries.sort(key=lambda entry: -abs(entry["delta"]))
    stuck.sort(key=lambda entry: (entry["idle"], -entry["count"]))
    moving.sort(key=lambda entry: -entry["count"])
    return {
        "old": _who(old), "new": _who(new), "interval_seconds": interval,
        "same_process": same_process,
        "notes": notes, "findings": _findings(old, new), "stuck": stuck,
        "moving": moving, "pools": _pools(old, new), "groups": groups,
    }


def _headline(entry: dict[str, Any], count: int) -> str:
    member = MEMBER.get(entry["section"], "member")
    kind = entry["kind"]
    what = plural(count, member) if kind in ("thread", "greenthread") \
        else f"{count} x {kind}"
    # A thread's state is "waiting" already: said once.
    state = "" if entry["state"] == "waiting" else f"{entry['state']}, "
    return (f"{what}, {state}waiting: {entry['wait_kind']}, at "
            f"{entry['where']}")


def _ids(ids: list[int]) -> str:
    shown = ", ".join(str(ident) for ident in ids[:TEXT_IDS])
    if len(ids) > TEXT_IDS:
        shown += f", ... {len(ids) - TEXT_IDS} more"
    return shown


def _occupancy_text(values: dict[str, Any] | None) -> str:
    if values is None:
        return "-"
    return ", ".join(f"{field} {value}" for field, value in values.items())


def text(result: dict[str, Any]) -> str:
    """Render a diff for people, the most important first."""
    old, new = result["old"], result["new"]
    interval = result["interval_seconds"]
    apart = "an unknown time" if interval is None else f"{interval:.3f} s"
    lines = [f"df-gmr diff: {old['service']}/{old['pid']} on {old['host']}",
             f"  OLD {old['time']}  NEW {new['time']}  ({apart} apart)"]
    lines.extend(f"  note: {note}" for note in result["notes"])
    changed = result["findings"]
    for finding in changed["new"]:
        lines.append(f"NEW {finding.get('severity', '?').upper()} "
                     f"{finding.get('kind')}: {finding.get('text')}")
    busy = [entry for entry in result["stuck"] if not entry["idle"]]
    idle = [entry for entry in result["stuck"] if entry["idle"]]
    at_least = "" if interval is None else f" for at least {apart}"
    for title, entries in ((f"STUCK (same wait in both reports{at_least})",
                            busy),
                           (f"Idle by design (same wait in both reports"
                            f"{at_least})", idle)):
        if not entries:
            continue
        lines.extend(("", f"{title}:"))
        for entry in entries:
            lines.append(f"  {_headline(entry, entry['count'])} "
                         f"({entry['count']} of {entry['of']})")
            ages = entry.get("waiting_seconds")
            if ages:
                lines.append(f"    waiting {ages['min']}s to {ages['max']}s"
                             if ages["min"] != ages["max"] else
                             f"    waiting {ages['max']}s")
            lines.append(f"    ids: {_ids(entry['ids'])}")
    if not result["stuck"] and result["same_process"]:
        lines.extend(("", "Stuck: nothing in the same wait in both "
                          "reports"))
    if result["pools"]:
        lines.extend(("", "Pools:"))
        for pool in result["pools"]:
            name = pool["name"] or pool["type"]
            ident = "" if pool["id"] is None else f" {pool['id']:#x}" \
                if isinstance(pool["id"], int) else f" {pool['id']}"
            lines.append(f"  {pool['pool']} {name}{ident} (size "
                         f"{pool['size']}): {pool['change']}: "
                         f"{_occupancy_text(pool['old'])} -> "
                         f"{_occupancy_text(pool['new'])}")
    groups = result["groups"]
    if any(groups.values()):
        lines.extend(("", "Groups:"))
    for change in ("appeared", "grew", "shrank", "vanished"):
        for entry in groups[change]:
            lines.append(f"  {change} {entry['old']} -> {entry['new']}: "
                         f"{_headline(entry, max(entry['new'], entry['old']))}"
                         )
    if result["moving"]:
        lines.extend(("", "Moving (same stack in both, other members or "
                          "waits begun since OLD):"))
        for entry in result["moving"]:
            lines.append(f"  {_headline(entry, entry['count'])} "
                         f"({entry['count']} of {entry['of']})")
    for finding in changed["resolved"]:
        lines.append(f"RESOLVED {finding.get('severity', '?').upper()} "
                     f"{finding.get('kind')}: {finding.get('text')}")
    if changed["still"]:
        lines.append(f"still there: {plural(len(changed['still']), 'finding')}"
                     " (" + ", ".join(str(finding.get("kind"))
                                      for finding in changed["still"]) + ")")
    before, after = old["totals"], new["totals"]
    lines.extend(("", "Totals: " + ", ".join(
        f"{COUNTED.get(short, short)} {before[short]} -> {after[short]}"
        for short in after)))
    return "\n".join(lines) + "\n"


def summary_line(report: dict[str, Any]) -> str:
    """One line saying what a report holds (for ``--watch``)."""
    head = header(report)
    counts = totals(report)
    found = [f for f in report.get("findings") or () if isinstance(f, dict)]
    worst = ""
    if found:
        worst = (f" (worst: {found[0].get('severity')} "
                 f"{found[0].get('kind')})")
    return (f"{head.get('time')} {label(report)}: "
            f"{plural(counts['threads'], 'thread')}, "
            f"{plural(counts['greenthreads'], 'greenlet')}, "
            f"{plural(len(found), 'finding')}{worst}")


__all__ = ["diff", "frame_name", "summary_line", "text"]
