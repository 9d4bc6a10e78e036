"""Many reports at once (``df-gmr summarize``): a service, a fleet.

Over JSON reports gathered however the operator gathers them (Ansible,
ssh, a log shipper): identical stacks across processes, keyed by section
(``threads``/``greenthreads``), wait kind and frames (file, function,
line), with their total count and counts per host and per service, the
biggest first; findings merged (the same kind and the same text once
ids, addresses and numbers are left out) into one line with the
processes that have it, the worst first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
import dataclasses
from typing import Any

from df_gmr import findings as findings_module
from df_gmr.analysis import MEMBER
from df_gmr.analysis import Frame
from df_gmr.analysis import frame_name
from df_gmr.analysis import frames
from df_gmr.analysis import header
from df_gmr.analysis import pattern
from df_gmr.analysis import plural
from df_gmr.analysis import stack_groups
from df_gmr.analysis import totals
from df_gmr.analysis import where

#: Stacks shown in the text by default (the JSON has them all).
TEXT_STACKS = 20
#: Processes named per merged finding in the text.
TEXT_PROCESSES = 6


@dataclasses.dataclass
class _Stack:
    count: int = 0
    processes: int = 0
    hosts: Counter[str] = dataclasses.field(default_factory=Counter)
    services: Counter[str] = dataclasses.field(default_factory=Counter)


@dataclasses.dataclass
class _Finding:
    severity: str
    example: str
    processes: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def summarize(reports: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Return the summary of many reports (plain data)."""
    stacks: dict[tuple[str, str, tuple[Frame, ...]], _Stack] = {}
    merged: dict[tuple[str, str], _Finding] = {}
    hosts: Counter[str] = Counter()
    services: Counter[str] = Counter()
    overall: Counter[str] = Counter()
    processes = 0
    for report in reports:
        processes += 1
        head = header(report)
        host, service = str(head.get("host")), str(head.get("service"))
        hosts[host] += 1
        services[service] += 1
        overall.update(totals(report))
        seen: set[tuple[str, str, tuple[Frame, ...]]] = set()
        for short, group in stack_groups(report):
            key = (short, str(group.get("wait_kind")), frames(group))
            count = group.get("count")
            count = count if isinstance(count, int) else len(
                group.get("ids") or ())
            entry = stacks.get(key)
            if entry is None:
                entry = stacks[key] = _Stack()
            entry.count += count
            entry.hosts[host] += count
            entry.services[service] += count
            if key not in seen:
                seen.add(key)
                entry.processes += 1
        for finding in report.get("findings") or ():
            if not isinstance(finding, dict):
                continue
            text = str(finding.get("text"))
            fkey = (str(finding.get("kind")), pattern(text))
            known = merged.get(fkey)
            if known is None:
                known = merged[fkey] = _Finding(
                    str(finding.get("severity")), text)
            known.processes.append({
                "host": host, "service": service, "pid": head.get("pid"),
                "text": text})
    severity = findings_module.SEVERITIES
    ordered = sorted(merged.items(), key=lambda item: (
        severity.index(item[1].severity) if item[1].severity in severity
        else len(severity), -len(item[1].processes)))
    return {
        "reports": processes,
        "hosts": dict(hosts.most_common()),
        "services": dict(services.most_common()),
        "totals": dict(overall),
        "findings": [{
            "kind": kind, "severity": found.severity, "pattern": text,
            "example": found.example,
            "count": len(found.processes),
            "processes": found.processes}
            for (kind, text), found in ordered],
        "stacks": [{
            "section": short, "wait_kind": wait_kind, "count": entry.count,
            "processes": entry.processes, "where": where(stack),
            "hosts": dict(entry.hosts.most_common()),
            "services": dict(entry.services.most_common()),
            "stack": [{"file": file, "function": function, "line": line}
                      for file, function, line in stack]}
            for (short, wait_kind, stack), entry in sorted(
                stacks.items(), key=lambda item: -item[1].count)],
    }


def _counts(counter: dict[str, int], limit: int = 4) -> str:
    items = list(counter.items())
    shown = ", ".join(f"{name} {count}" for name, count in items[:limit])
    if len(items) > limit:
        shown += f", ... {len(items) - limit} more"
    return shown


def text(result: dict[str, Any], top: int = TEXT_STACKS) -> str:
    """Render a summary for people: findings first, then the stacks."""
    totals_ = result["totals"]
    lines = [
        f"{plural(result['reports'], 'report')} from "
        f"{plural(len(result['hosts']), 'host')} ("
        f"{_counts(result['hosts'])}); services: "
        f"{_counts(result['services'])}",
        f"{totals_.get('threads', 0)} threads, "
        f"{totals_.get('greenthreads', 0)} greenlets in all", ""]
    if not result["findings"]:
        lines.append("no findings in any report")
    else:
        lines.append(f"Findings ({len(result['findings'])} merged, the "
                     "worst first):")
    for finding in result["findings"]:
        processes = finding["processes"]
        named = ", ".join(f"{p['host']}:{p['service']}/{p['pid']}"
                          for p in processes[:TEXT_PROCESSES])
        if len(processes) > TEXT_PROCESSES:
            named += f", ... {len(processes) - TEXT_PROCESSES} more"
        lines.append(f"  {finding['severity'].upper()} {finding['kind']} "
                     f"in {plural(finding['count'], 'process')}: "
                     f"{finding['pattern']}")
        lines.append(f"    e.g. {finding['example']}")
        lines.append(f"    in {named}")
    stacks = result["stacks"]
    lines.extend(("", f"Stacks ({len(stacks)} distinct, the biggest first"
                      + (f"; the first {top}" if len(stacks) > top else "")
                      + "):"))
    for entry in stacks[:top]:
        member = MEMBER.get(entry["section"], "member")
        lines.append(f"  {plural(entry['count'], member)} waiting: "
                     f"{entry['wait_kind']} in "
                     f"{plural(entry['processes'], 'process')}, at "
                     f"{entry['where']}")
        lines.append(f"    hosts: {_counts(entry['hosts'])}; services: "
                     f"{_counts(entry['services'])}")
        for frame in entry["stack"][-4:]:
            lines.append("      " + frame_name(
                (frame["file"], frame["function"], frame["line"])))
    if len(stacks) > top:
        lines.append(f"  ... {len(stacks) - top} more stacks in --format "
                     "json")
    return "\n".join(lines) + "\n"
