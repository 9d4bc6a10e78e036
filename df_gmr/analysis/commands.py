"""The df-gmr commands that read JSON reports: diff, convert, show,
summarize (``df-gmr report --watch`` ends with a diff too)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
import json
import sys
from typing import Any

from df_gmr.analysis import ReportError
from df_gmr.analysis import compare
from df_gmr.analysis import fleet
from df_gmr.analysis import folded
from df_gmr.analysis import read
from df_gmr.analysis import show as rendering
from df_gmr.terminal import EXIT_FAILED
from df_gmr.terminal import EXIT_OK
from df_gmr.terminal import printable


def _read_one(path: str) -> dict[str, Any]:
    """Return the one report a file holds (else say why and raise)."""

    reports = read(path)
    if len(reports) != 1:
        msg = (f"{path}: holds {len(reports)} reports; give a file of one "
               "report")
        raise ReportError(msg)
    return reports[0]


def diff(args: argparse.Namespace) -> int:
    """Say what changed between two reports of one process."""
    try:
        result = compare.diff(_read_one(args.old), _read_one(args.new),
                              force=args.force)
    except ReportError as error:
        print(printable(f"df-gmr diff: {error}"), file=sys.stderr)
        return EXIT_FAILED
    if args.format == "json":
        print(json.dumps(result, indent=1))
    else:
        sys.stdout.write(printable(compare.text(result)))
    return EXIT_OK


def _read_saying(path: str, command: str) -> list[dict[str, Any]] | None:
    """Read reports, saying on stderr what was skipped; None: unreadable."""
    skipped: list[str] = []
    try:
        reports = read(path, skipped)
    except ReportError as error:
        print(printable(f"df-gmr {command}: {error}"), file=sys.stderr)
        return None
    for problem in skipped:
        print(printable(f"df-gmr {command}: skipped {problem}"),
              file=sys.stderr)
    return reports


def convert(args: argparse.Namespace) -> int:
    """Write reports as folded stacks or a speedscope file."""
    reports = _read_saying(args.report, "convert")
    if reports is None:
        return EXIT_FAILED
    if args.to == "folded":
        output = "".join(line + "\n" for line in folded.lines(reports))
    else:
        output = json.dumps(folded.speedscope(reports), indent=1) + "\n"
    if args.output in (None, "-"):
        sys.stdout.write(output)
        return EXIT_OK
    try:
        with open(args.output, "w", encoding="utf-8") as stream:
            stream.write(output)
    except OSError as error:
        print(printable(f"df-gmr convert: cannot write {args.output}: "
                        f"{error.strerror or error}"), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def show(args: argparse.Namespace) -> int:
    """Render JSON reports as text."""
    reports = _read_saying(args.report, "show")
    if reports is None:
        return EXIT_FAILED
    for document in reports:
        sys.stdout.write(printable(rendering.text(document)))
    return EXIT_OK


def summarize(args: argparse.Namespace) -> int:
    """Summarize many JSON reports: shared stacks, merged findings."""
    failed: list[str] = []

    def reports() -> Iterator[dict[str, Any]]:
        # One file at a time: 1,000 reports never all in memory at once.
        for path in args.reports:
            skipped: list[str] = []
            try:
                yield from read(path, skipped)
            except ReportError as error:
                failed.append(str(error))
            failed.extend(f"skipped {problem}" for problem in skipped)

    result = fleet.summarize(reports())
    for problem in failed:
        print(printable(f"df-gmr summarize: {problem}"), file=sys.stderr)
    status = EXIT_FAILED if any(not problem.startswith("skipped ")
                                for problem in failed) else EXIT_OK
    if not result["reports"]:
        return EXIT_FAILED
    if args.format == "json":
        print(json.dumps(result, indent=1))
    else:
        sys.stdout.write(printable(fleet.text(result, args.top)))
    return status
