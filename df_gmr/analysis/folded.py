"""Stacks for existing viewers: folded stacks and speedscope files.

Folded stacks (flamegraph.pl, inferno, speedscope): one ``frame;frame;
frame count`` line per group, outermost first, each line prefixed by the
process (``service/pid``) and the section (``threads`` or
``greenthreads``); frames read ``function (file:line)``; the count is the
group's members, so a report's lines sum to its threads plus its
greenlets.  A group with no frames (a greenthread not started yet) is
one pseudo-frame naming its wait kind in brackets.

Speedscope (https://www.speedscope.app/file-format-schema.json): one
``sampled`` profile per report, unit ``none``, one sample per group
(root first: the section, then the frames) weighted by its members.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any

from df_gmr import __version__
from df_gmr.analysis import Frame
from df_gmr.analysis import frame_name
from df_gmr.analysis import frames
from df_gmr.analysis import label
from df_gmr.analysis import stack_groups

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"


def _clean(name: str) -> str:
    # ';' separates frames and a line is one stack: neither may appear
    # inside a frame's name.
    return name.replace(";", ":").replace("\n", " ").replace("\r", " ")


def _count(group: dict[str, Any]) -> int:
    count = group.get("count")
    return count if isinstance(count, int) else len(group.get("ids") or ())


def _stack_names(group: dict[str, Any]) -> tuple[list[Frame], list[str]]:
    stack = list(frames(group))
    if stack:
        return stack, [_clean(frame_name(frame)) for frame in stack]
    return stack, [f"[{_clean(str(group.get('wait_kind')))}]"]


def lines(reports: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Yield the folded stacks of the reports, one line per group."""
    for report in reports:
        process = _clean(label(report))
        for short, group in stack_groups(report):
            _, names = _stack_names(group)
            yield f"{process};{short};{';'.join(names)} {_count(group)}"


def speedscope(reports: list[dict[str, Any]], name: str | None = None
               ) -> dict[str, Any]:
    """Return a speedscope file (plain data) of the reports."""
    index: dict[tuple[str, str | None, Any], int] = {}
    shared: list[dict[str, Any]] = []

    def frame_index(name: str, file: str | None = None,
                    line: Any = None) -> int:
        key = (name, file, line)
        found = index.get(key)
        if found is None:
            found = index[key] = len(shared)
            entry: dict[str, Any] = {"name": name}
            if file is not None:
                entry["file"] = file
            if isinstance(line, int):
                entry["line"] = line
            shared.append(entry)
        return found

    profiles = []
    for report in reports:
        samples, weights = [], []
        for short, group in stack_groups(report):
            stack, names = _stack_names(group)
            sample = [frame_index(short)]
            if stack:
                sample.extend(frame_index(text, frame[0], frame[2])
                              for text, frame in zip(names, stack,
                                                     strict=True))
            else:
                sample.append(frame_index(names[0]))
            samples.append(sample)
            weights.append(_count(group))
        profiles.append({
            "type": "sampled", "name": label(report), "unit": "none",
            "startValue": 0, "endValue": sum(weights),
            "samples": samples, "weights": weights})
    return {
        "$schema": SPEEDSCOPE_SCHEMA,
        "shared": {"frames": shared},
        "profiles": profiles,
        "name": name or ", ".join(label(report) for report in reports),
        "activeProfileIndex": 0,
        "exporter": f"df_gmr {__version__}",
    }
