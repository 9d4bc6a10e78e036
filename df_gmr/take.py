"""``df-gmr report``: ask processes for their reports, print them.

Each target (a pid, and with ``--workers`` every worker the kernel says
is its child) is checked, then asked through its own directory
(``df_gmr.ask``); the reports are printed as they come, one deadline for
all, so a hung worker delays nobody else's.  ``--watch SECONDS --count
N`` takes rounds of JSON reports and says what changed and what is
stuck between the first and the last (``df_gmr.analysis``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import json
import os
import select
import sys
import time
from typing import Any

from df_gmr import ask
from df_gmr import discovery
from df_gmr import exchange
from df_gmr import registry
from df_gmr.exchange import Refusal
from df_gmr.terminal import EXIT_FAILED
from df_gmr.terminal import EXIT_OK
from df_gmr.terminal import EXIT_USAGE
from df_gmr.terminal import printable

#: The longest pause ``report --watch`` takes between two rounds.
MAX_WATCH = 3600.0
#: After how many seconds without a report df-gmr asks for the stack.
STACK_AFTER = 3.0


def _check_signallable(pid: int, known: dict[int, discovery.Known]
                       ) -> discovery.Known:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        msg = f"pid {pid}: no such process"
        raise Refusal(msg) from None
    except PermissionError:
        msg = f"pid {pid}: {exchange.NOT_PERMITTED}"
        raise Refusal(msg) from None
    found = known.get(pid)
    if found is None:
        msg = (f"pid {pid}: has not set up df_gmr (SIGUSR2 could kill "
               "it); not signalled")
        raise Refusal(msg)
    if found.problem is not None:
        msg = f"pid {pid}: {found.problem}; not signalled"
        raise Refusal(msg)
    return found


def _targets(pids: list[int], with_workers: bool,
             known: dict[int, discovery.Known]) -> list[int]:
    targets: list[int] = []
    for pid in pids:
        targets.append(pid)
        if with_workers:
            targets.extend(
                # The kernel's parent, not the entry's word: nobody can
                # make their process a child of someone else's.
                other for other, found in sorted(known.items())
                if found.entry.get("role") == "worker"
                and registry.parent_pid(other) == pid
                and other not in targets
            )
    return targets


def command_report(args: argparse.Namespace) -> int:
    """Trigger reports and print each one to stdout."""
    if args.watch is not None or args.count is not None:
        return command_watch(args)
    documents: list[Any] = []
    printed = 0

    def print_report(pid: int, text: str) -> bool:
        nonlocal printed
        if args.format == "text":
            # Several reports (--workers), printed as they come: each
            # ends its last line, and a blank line parts it from the next.
            if printed:
                sys.stdout.write("\n")
            if not text.endswith("\n"):
                text += "\n"
        printed += 1
        _print_report(text, args.format, documents)
        return True

    status = _gather(args, "text" if args.format == "text" else "json",
                     print_report)
    if args.format == "json":  # one document: an array of the reports
        try:
            print(json.dumps(documents, indent=1))
        except (ValueError, RecursionError) as error:
            print(f"df-gmr: cannot write the reports as JSON: {error}",
                  file=sys.stderr)
            status = EXIT_FAILED
    return status


def _ask_round(args: argparse.Namespace) -> tuple[int, list[dict[str, Any]]]:
    """Ask every target once for its JSON report (one deadline for all)."""
    from df_gmr import analysis

    reports: list[dict[str, Any]] = []

    def keep_report(pid: int, text: str) -> bool:
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            document = None
        if not analysis.is_report(document):
            print(f"df-gmr: pid {pid}: the process sent invalid JSON",
                  file=sys.stderr)
            return False
        reports.append(document)
        return True

    status = _gather(args, "json", keep_report)
    return status, sorted(reports, key=lambda report: str(
        report["header"].get("pid")))


def _gather(args: argparse.Namespace, wanted: str,
            received: Callable[[int, str], bool]) -> int:
    """Ask every target for a report; hand each to ``received`` as it comes.

    One deadline for all (``--timeout``); ``received`` returns False for
    a report it refuses.  Returns the exit status.
    """
    known = discovery.known_processes()
    status = EXIT_OK
    waiting: list[ask.Asking] = []
    deadline = time.monotonic() + args.timeout
    for pid in _targets(args.pids, args.workers, known):
        try:
            found = _check_signallable(pid, known)
            waiting.append(ask.ask(pid, found.entry, found.directory,
                                   wanted, args.timeout))
        except (Refusal, OSError) as error:
            print(printable(f"df-gmr: {error}"), file=sys.stderr)
            status = EXIT_FAILED
    late = deadline - args.timeout + args.stack_after \
        if 0 < args.stack_after < args.timeout else None
    while waiting and time.monotonic() < deadline:
        if late is not None and time.monotonic() >= late:
            late = None
            for asking in waiting:
                _ask_for_stack(asking, args.stack_after)
        until = deadline if late is None else late
        readable, _, _ = select.select(
            waiting, [], [], max(until - time.monotonic(), 0))
        for asking in readable:
            try:
                text = asking.receive()
            except (Refusal, OSError) as error:
                print(printable(f"df-gmr: {error}"), file=sys.stderr)
                waiting.remove(asking)
                status = EXIT_FAILED
                continue
            if text is None:
                continue
            waiting.remove(asking)
            if not received(asking.pid, text):
                status = EXIT_FAILED
    for asking in waiting:
        asking.close()
        print(f"df-gmr: pid {asking.pid}: no report within "
              f"{args.timeout:g} s", file=sys.stderr)
        status = EXIT_FAILED
    return status


def _ask_for_stack(asking: ask.Asking, after: float) -> None:
    try:
        said = asking.ask_for_stack()
    except Refusal as error:
        print(printable(f"df-gmr: {error}"), file=sys.stderr)
        return
    except OSError as error:
        print(printable(f"df-gmr: pid {asking.pid}: cannot send the stack "
                        f"signal ({error.strerror or error})"),
              file=sys.stderr)
        return
    if said is not None:
        print(printable(f"df-gmr: pid {asking.pid}: no report after "
                        f"{after:g} s; {said}"), file=sys.stderr)


def command_watch(args: argparse.Namespace) -> int:
    """Take N reports SECONDS apart; print them, then what changed."""
    from df_gmr import analysis
    from df_gmr.analysis import compare
    from df_gmr.analysis import folded
    from df_gmr.analysis import show

    if args.watch is None or args.count is None or args.count < 2 \
            or not 0 < args.watch <= MAX_WATCH:
        print("df-gmr report: --watch SECONDS (positive, at most "
              f"{MAX_WATCH:g}) goes with --count N (N >= 2)",
              file=sys.stderr)
        return EXIT_USAGE
    status = EXIT_OK
    first: dict[tuple[Any, Any], dict[str, Any]] = {}
    last: dict[tuple[Any, Any], dict[str, Any]] = {}
    documents: list[dict[str, Any]] = []
    start = time.monotonic()
    try:
        for index in range(args.count):
            # Rounds on a fixed schedule (a slow round shortens the
            # next pause, never the count); each pause at most SECONDS.
            time.sleep(min(max(start + index * args.watch
                               - time.monotonic(), 0), args.watch))
            round_status, reports = _ask_round(args)
            status = max(status, round_status)
            for report in reports:
                head = analysis.header(report)
                who = (head.get("host"), head.get("pid"))
                first.setdefault(who, report)
                last[who] = report
                if args.format == "text" and args.all:
                    sys.stdout.write(printable(show.text(report)))
                elif args.format == "text":
                    print(printable(f"[{index + 1}/{args.count}] "
                                    + compare.summary_line(report)))
                elif args.format == "json":
                    documents.append(report)
                elif args.format == "jsonl":
                    print(json.dumps(report))
                else:
                    sys.stdout.writelines(
                        printable(line) + "\n"
                        for line in folded.lines([report]))
                sys.stdout.flush()
    except KeyboardInterrupt:
        print("df-gmr: interrupted; what changed so far:", file=sys.stderr)
        status = EXIT_FAILED
    if args.format == "json":
        print(json.dumps(documents, indent=1))
    # The diff is for people: on stdout with the text, else on stderr, so
    # that stdout stays the machine-readable format it says.
    stream = sys.stdout if args.format == "text" else sys.stderr
    for who, report in first.items():
        if last[who] is report:
            print(f"df-gmr: pid {who[1]}: one report only, nothing to "
                  "compare", file=sys.stderr)
            status = EXIT_FAILED
            continue
        stream.write("\n" + printable(compare.text(
            compare.diff(report, last[who]))))
    stream.flush()
    return status


def _print_report(text: str, fmt: str, documents: list[Any]) -> None:
    """Print one report as it comes (json: kept for the final array)."""
    if fmt == "text":
        sys.stdout.write(printable(text))
        sys.stdout.flush()
        return
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        document = {"error": "the process sent invalid JSON",
                    "text": printable(text)}
    if fmt == "json":
        documents.append(document)
        return
    if fmt == "folded":
        from df_gmr import analysis
        from df_gmr.analysis import folded

        if analysis.is_report(document):
            sys.stdout.writelines(printable(line) + "\n"
                                  for line in folded.lines([document]))
        else:
            print(printable(f"df-gmr: {document.get('error')}"),
                  file=sys.stderr)
        sys.stdout.flush()
        return
    try:  # jsonl: one report per line, strict, ASCII
        line = json.dumps(document)
    except (ValueError, RecursionError):
        line = json.dumps({"error": "the report cannot be written as JSON"})
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
