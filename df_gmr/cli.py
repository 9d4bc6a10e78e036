"""The ``df-gmr`` command: list GMR-ready processes, collect their reports.

``df-gmr report`` prints each report to stdout (text; ``--format json``:
one JSON array of every report; ``--format jsonl``: one JSON report per
line), whatever the daemon does with its own copy.  Errors go to stderr,
one line per process.  ``df-gmr doctor`` says whether a process or an
interpreter is ready, and what to do if not.  ``df-gmr run`` starts a
command with df_gmr activated, after checking that activation works.

On JSON reports already taken (files, or what ``report --format json``
printed), see ``df_gmr.analysis``: ``df-gmr diff OLD NEW`` says what
changed and what is stuck (``report PID --watch SECONDS --count N``
takes the reports and says it), ``df-gmr convert`` writes folded stacks
or a speedscope file (``report --format folded`` too), ``df-gmr show``
renders a JSON report as text, ``df-gmr summarize`` sums up many.

Exit codes: 0 success; 1 a report did not come (a process refused,
vanished or did not answer in time), or doctor found a problem, or run
found that activation cannot work; 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from df_gmr import __version__
from df_gmr import discovery
from df_gmr import doctor
from df_gmr import registry
from df_gmr import take
from df_gmr.analysis import commands as reading
from df_gmr.terminal import EXIT_BROKEN_PIPE
from df_gmr.terminal import EXIT_FAILED
from df_gmr.terminal import EXIT_OK
from df_gmr.terminal import EXIT_USAGE
from df_gmr.terminal import printable


def command_list(args: argparse.Namespace) -> int:
    """Print the GMR-ready processes of this host."""
    known = sorted(discovery.known_processes().values(),
                   key=lambda k: k.pid)
    ready = [k.entry for k in known if k.problem is None]
    if args.format == "json":
        print(json.dumps([dict(k.entry, ready=k.problem is None,
                               problem=k.problem) for k in known],
                         indent=1))
        return EXIT_OK
    if not ready:
        searched = ", ".join(path for path, _ in
                             registry.candidate_run_dirs())
        print(f"no GMR-ready process found (searched {searched})")
    else:
        print(f"{'PID':>7} {'PPID':>7}  {'SERVICE':<24} {'ROLE':<15} "
              f"{'WORKER':>6}  REPORTS TO")
    for entry in ready:
        index = entry.get("worker_index")
        print(printable(
            f"{entry['pid']:>7} {entry.get('ppid')!s:>7}  "
            f"{str(entry.get('service'))[:24]:<24} "
            f"{str(entry.get('role'))[:15]:<15} "
            f"{'-' if index is None else index!s:>6}  "
            f"{entry.get('destination')}"))
    for other in known:  # on stderr: stdout stays one table
        if other.problem is not None:
            print(printable(f"df-gmr: pid {other.pid} "
                            f"({other.entry.get('service')}, "
                            f"{other.entry.get('role')}): not ready: "
                            f"{other.problem}"), file=sys.stderr)
    return EXIT_OK


def command_run(args: argparse.Namespace) -> int:
    """Run a command with df_gmr activated in it (and its workers)."""
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("df-gmr run: a command is required, as in "
              "'df-gmr run -- nova-compute --config-file nova.conf'",
              file=sys.stderr)
        return EXIT_USAGE
    interpreter = doctor.interpreter_of(command[0])
    if interpreter is None:
        print(f"df-gmr run: {command[0]} is not a Python program df-gmr "
              "can see (no python #! line): activation not checked",
              file=sys.stderr)
    else:
        flags = [arg for arg in command[1:] if arg in ("-S", "-I")] \
            if os.path.basename(interpreter[0]) == os.path.basename(
                command[0]) else []
        problems = [check for check in
                    doctor.check_interpreter([*interpreter, *flags])
                    if not check.ok]
        if problems:
            print(f"df-gmr run: df_gmr cannot be activated in "
                  f"{command[0]}; not started (SIGUSR2 would kill it):",
                  file=sys.stderr)
            for check in problems:
                print(check.line(), file=sys.stderr)
            return EXIT_FAILED
    os.environ["DF_GMR_ENABLE"] = "1"
    if args.service_name:
        os.environ["DF_GMR_SERVICE_NAME"] = args.service_name
    if args.log_dir:
        os.environ["DF_GMR_LOG_DIR"] = args.log_dir
    try:
        os.execvp(command[0], command)
    except OSError as error:
        print(f"df-gmr run: cannot run {command[0]}: {error.strerror}",
              file=sys.stderr)
        return 127
    return EXIT_FAILED  # pragma: no cover - exec does not return


def command_doctor(args: argparse.Namespace) -> int:
    """Say whether a process or an interpreter is ready, and what to do."""
    if args.pid is not None and args.python:
        print("df-gmr doctor: give a PID or --python, not both",
              file=sys.stderr)
        return EXIT_USAGE
    if args.pid is not None:
        checks = doctor.check_process(args.pid)
        what = f"pid {args.pid}"
    else:
        python = args.python or sys.executable
        checks = doctor.check_interpreter([python])
        what = python
    for check in checks:
        print(printable(check.line()))
    ready = all(check.ok for check in checks)
    print(f"{what}: {'ready' if ready else 'NOT ready'} for Guru "
          "Meditation Reports")
    return EXIT_OK if ready else EXIT_FAILED


def command_demo(args: argparse.Namespace) -> int:
    """Run the demo tour."""
    from df_gmr import demo

    return demo.tour(args.workers)


def parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``df-gmr``."""
    main_parser = argparse.ArgumentParser(
        prog="df-gmr",
        description="Guru Meditation Reports for eventlet and oslo.service "
                    "daemons.")
    main_parser.add_argument("--version", action="version",
                             version=f"df-gmr {__version__}")
    commands = main_parser.add_subparsers(dest="command", required=True,
                                          metavar="COMMAND")

    listing = commands.add_parser(
        "list", help="list the GMR-ready processes of this host")
    listing.add_argument("--format", choices=("text", "json"),
                         default="text")
    listing.set_defaults(handler=command_list)

    reporting = commands.add_parser(
        "report", help="trigger reports and print them to stdout")
    reporting.add_argument("pids", metavar="PID", type=int, nargs="+")
    reporting.add_argument("--workers", action="store_true",
                           help="also every worker of each PID")
    reporting.add_argument(
        "--format", choices=("text", "json", "jsonl", "folded"),
        default="text",
        help="text (default); json: one JSON array of all the reports; "
             "jsonl: one JSON report per line, as each arrives; folded: "
             "folded stacks (flamegraph.pl, inferno, speedscope)")
    reporting.add_argument("--timeout", type=float, default=10.0,
                           metavar="SECONDS",
                           help="how long to wait for all the reports, "
                                "from the first signal (default 10)")
    reporting.add_argument(
        "--stack-after", type=float, default=take.STACK_AFTER,
        metavar="SECONDS",
        help="when a report is this late, ask the process for its main "
             "thread's stack, written at once to its own stderr even "
             f"while the GIL is held (SIGURG; default {take.STACK_AFTER:g}, "
             "0: never)")
    reporting.add_argument(
        "--watch", type=float, metavar="SECONDS",
        help="take --count reports SECONDS apart, then say what changed "
             "between the first and the last (df-gmr diff)")
    reporting.add_argument("--count", type=int, metavar="N",
                           help="with --watch: how many rounds (N >= 2)")
    reporting.add_argument(
        "--all", action="store_true",
        help="with --watch and the text format: every report in full, "
             "not one line each")
    reporting.set_defaults(handler=take.command_report)

    running = commands.add_parser(
        "run", help="run a command with df_gmr enabled, workers included")
    running.add_argument("--service-name")
    running.add_argument("--log-dir")
    running.add_argument("command", nargs=argparse.REMAINDER)
    running.set_defaults(handler=command_run)

    doctoring = commands.add_parser(
        "doctor", help="is a process or an interpreter ready for reports?")
    doctoring.add_argument("pid", metavar="PID", type=int, nargs="?")
    doctoring.add_argument("--python", metavar="PATH",
                           help="check this interpreter (default: the one "
                                "running df-gmr)")
    doctoring.set_defaults(handler=command_doctor)

    diffing = commands.add_parser(
        "diff", help="what changed between two JSON reports of a process")
    diffing.add_argument("old", metavar="OLD",
                         help="the older report (a JSON file; - for stdin)")
    diffing.add_argument("new", metavar="NEW", help="the newer report")
    diffing.add_argument("--format", choices=("text", "json"),
                         default="text")
    diffing.add_argument("--force", action="store_true",
                         help="compare reports of different processes")
    diffing.set_defaults(handler=reading.diff)

    converting = commands.add_parser(
        "convert", help="JSON reports as folded stacks or a speedscope file")
    converting.add_argument("report", metavar="REPORT",
                            help="a JSON report file (one, an array or "
                                 "JSON Lines; - for stdin)")
    converting.add_argument("--to", choices=("folded", "speedscope"),
                            required=True)
    converting.add_argument("-o", "--output", metavar="FILE",
                            help="write there instead of stdout")
    converting.set_defaults(handler=reading.convert)

    showing = commands.add_parser(
        "show", help="render JSON reports as text")
    showing.add_argument("report", metavar="REPORT",
                         help="a JSON report file (- for stdin)")
    showing.set_defaults(handler=reading.show)

    summarizing = commands.add_parser(
        "summarize", help="many JSON reports at once: shared stacks, "
                          "findings merged")
    summarizing.add_argument("reports", metavar="REPORT", nargs="+",
                             help="JSON report files (each one report, an "
                                  "array or JSON Lines)")
    summarizing.add_argument("--format", choices=("text", "json"),
                             default="text")
    summarizing.add_argument("--top", type=int, default=20, metavar="N",
                             help="stacks shown in the text (default 20)")
    summarizing.set_defaults(handler=reading.summarize)

    demo = commands.add_parser(
        "demo", help="start a demo daemon, signal it, show its reports")
    demo.add_argument("--workers", type=int, default=2)
    demo.set_defaults(handler=command_demo)
    return main_parser


def main(argv: list[str] | None = None) -> int:
    """Run ``df-gmr``."""
    args = parser().parse_args(argv)
    if getattr(args, "stack_after", 0.0) < 0:
        print("df-gmr: --stack-after must not be negative", file=sys.stderr)
        return EXIT_USAGE
    if getattr(args, "timeout", 1.0) <= 0:
        print("df-gmr: --timeout must be positive", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except BrokenPipeError:
        # The reader went away (``df-gmr report ... | head``): stop
        # quietly, as a shell tool does, and keep Python from complaining
        # again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
