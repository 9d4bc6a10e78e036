"""Synthetic df_gmr JSON reports, of any size, for the analysis tests.

Usage: analysis_synth.py DIR [--reports N] [--greenthreads M] [--groups G]
                             [--hosts H] [--pair]
Writes N reports (one file each, report-XXXX.json) of M greenthreads in
G groups, spread over H hosts; with --pair, two reports of one process
(old.json, new.json) 5 s apart: the even groups stuck, the odd ones
moving (new ids, waits begun since), one group appeared, one vanished.
Also importable: ``report(...)`` returns one report as plain data.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from typing import Any

START = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
WAITS = ("event", "sleep", "lock", "semaphore", "queue get")
LIB = "/usr/lib/python3/site-packages/eventlet"


def frame(file: str, line: int, function: str) -> dict[str, Any]:
    return {"file": file, "line": line, "function": function, "code": ""}


def _stack(index: int, wait: str) -> list[dict[str, Any]]:
    return [frame(f"{LIB}/greenthread.py", 272, "main"),
            frame("/opt/app/service.py", 100 + index, f"handler_{index}"),
            frame(f"{LIB}/{wait.replace(' ', '_')}.py", 50, "wait"),
            frame(f"{LIB}/hubs/hub.py", 310, "switch")]


def report(greenthreads: int = 1000, groups: int = 20, *, pid: int = 4242,
           host: str = "host-0", service: str = "nova-compute",
           seconds: float = 0.0, moved: bool = False,
           extra_group: bool = False, drop_group: bool = False,
           options: int = 0, rich: bool = False,
           findings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Return one report of ``greenthreads`` greenthreads in ``groups``.

    ``seconds``: taken that long after START (waits that many seconds
    older); ``moved``: the odd groups' members replaced and their waits
    begun since; ``extra_group``/``drop_group``: one group more / the
    last group gone; ``options``: a Configuration section of that many
    options (a real report's bulk); ``rich``: every member with its own
    details (wait age, spawn site), the worst case for readers.
    """
    green_groups = []
    per_group, rest = divmod(greenthreads, groups)
    base = 10 ** 9
    last = groups - 1 if drop_group else groups
    for index in range(last):
        count = per_group + (1 if index < rest else 0)
        wait = WAITS[index % len(WAITS)]
        odd = index % 2 == 1
        first = base + index * 10 ** 6 + (500_000 if moved and odd else 0)
        ids = list(range(first, first + count))
        shared: dict[str, Any] = {"kind": wait}
        members: list[dict[str, Any]] = []
        if wait == "sleep" or rich:
            shared["seconds"] = 3600
            age = 0.01 if moved and odd else 1.0 + seconds
            members = [{"id": ident, "waiting_seconds": round(age, 3),
                        "wait": {"due_in": round(3600 - age, 3)},
                        "spawn_site": frame("/opt/app/service.py",
                                            ident % 97, "start")}
                       for ident in ids]
        else:
            shared["object"] = f"{wait.title()} {0x7f0000 + index:#x}"
        green_groups.append({
            "count": count, "state": "parked", "kind": "greenthread",
            "wait_kind": wait, "wait": shared,
            "spawn_site": frame("/opt/app/service.py", 20, "start"),
            "stack": _stack(index, wait), "ids": ids, "members": members})
    if extra_group:
        green_groups.append({
            "count": 3, "state": "parked", "kind": "greenthread",
            "wait_kind": "fd", "wait": {"kind": "fd", "fd": 9},
            "spawn_site": None, "stack": _stack(999, "fd"),
            "ids": [7, 8, 9], "members": []})
    green_groups.append({
        "count": 1, "state": "parked", "kind": "hub", "wait_kind": "hub loop",
        "wait": {"kind": "hub loop"}, "spawn_site": None,
        "stack": [frame(f"{LIB}/hubs/hub.py", 365, "run")],
        "ids": [1], "members": []})
    thread_groups = [{
        "count": 1, "state": "running", "kind": "main",
        "wait_kind": "building this report", "wait": {"kind": "running"},
        "origin": None, "stack": [frame("/opt/app/main.py", 1, "<module>")],
        "ids": [2], "members": [{"id": 2, "name": "MainThread"}]}, {
        "count": 2, "state": "waiting", "kind": "thread",
        "wait_kind": "queue get", "wait": {"kind": "queue get"},
        "origin": None, "stack": [
            frame("/usr/lib/python3.11/threading.py", 1002, "_bootstrap"),
            frame(f"{LIB}/tpool.py", 74, "tworker"),
            frame("/usr/lib/python3.11/queue.py", 171, "get")],
        "ids": [3, 4], "members": [{"id": 3, "name": "tpool_1"},
                                   {"id": 4, "name": "tpool_2"}]}]
    when = START + datetime.timedelta(seconds=seconds)
    total = sum(group["count"] for group in green_groups)
    pools = [{"id": 0x5000, "type": "eventlet.greenpool.GreenPool",
              "size": 10, "running": 10 if seconds else 4,
              "free": 0 if seconds else 6, "waiting": 5 if seconds else 0,
              "running_ids": [], "waiting_ids": [], "created_at": None}]
    return {
        "schema_version": 1,
        "header": {
            "title": "Guru Meditation", "service": service, "pid": pid,
            "ppid": 1, "host": host, "time": when.isoformat(),
            "trigger": "api", "df_gmr_version": "0.1.0",
            "python": "3.11.7", "process": {"role": "single process"}},
        "findings": list(findings or []),
        "sections": [
            {"name": "threads", "title": "Threads", "error": None,
             "seconds": 0.01, "data": {
                 "count": 3, "groups": thread_groups,
                 "df_gmr_threads": []}},
            {"name": "green_threads", "title": "Green Threads",
             "error": None, "seconds": 0.01, "data": {
                 "available": True, "found_by": "registry", "total": total,
                 "groups": green_groups}},
            {"name": "green_pools", "title": "Green Pools", "error": None,
             "seconds": 0.001, "data": {
                 "available": True, "tracking": True,
                 "oslo_service_backend": "eventlet", "notes": [],
                 "pools": pools, "piles": [], "executors": [],
                 "thread_groups": [], "looping_calls": [],
                 "tpool": {"loaded": False}}},
            {"name": "configuration", "title": "Configuration",
             "error": None, "seconds": 0.01, "data": {
                 "available": True, "groups": {
                     f"group_{first // 50}": [
                         {"name": f"option_{number}",
                          "value": f"value {number} " * 4}
                         for number in range(first, min(first + 50,
                                                        options))]
                     for first in range(0, options, 50)}}}
            if options else
            {"name": "configuration", "title": "Configuration",
             "error": None, "seconds": 0.0, "data": {
                 "available": False, "reason": "none", "groups": {}}},
            {"name": "custom_thing", "title": "Custom Thing",
             "error": None, "seconds": 0.0, "data": {"answer": 42}},
        ],
    }


def long_wait(count: int, worst: float) -> dict[str, Any]:
    return {"kind": "long_wait", "severity": "warning",
            "text": f"{count} greenthreads wait (lock) for more than 60s, "
                    f"the longest {worst}s", "evidence": [1000000001]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--reports", type=int, default=1)
    parser.add_argument("--greenthreads", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--pair", action="store_true")
    parser.add_argument("--options", type=int, default=0)
    parser.add_argument("--rich", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.directory, exist_ok=True)
    started = time.monotonic()
    if args.pair:
        for name, data in (
                ("old.json", report(args.greenthreads, args.groups,
                                    rich=args.rich, options=args.options)),
                ("new.json", report(args.greenthreads, args.groups,
                                    rich=args.rich, options=args.options,
                                    seconds=5.0, moved=True,
                                    extra_group=True, drop_group=True))):
            with open(os.path.join(args.directory, name), "w") as stream:
                json.dump(data, stream, indent=1)
    for number in range(args.reports if not args.pair else 0):
        data = report(args.greenthreads, args.groups, pid=1000 + number,
                      host=f"host-{number % args.hosts}",
                      service=("nova-compute", "nova-conductor")[number % 2],
                      options=args.options, rich=args.rich,
                      findings=[long_wait(number % 7 + 1, 61.5 + number)])
        with open(os.path.join(args.directory, f"report-{number:04d}.json"),
                  "w") as stream:
            json.dump(data, stream, indent=1)
    print(f"written in {time.monotonic() - started:.2f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
