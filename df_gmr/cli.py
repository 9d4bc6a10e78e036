"""The ``df-gmr`` command: list GMR-ready processes, collect their reports.

``df-gmr report`` prints each report to stdout (text, or JSON Lines with
``--format json``: one document per line), whatever the daemon does with
its own copy.  Errors go to stderr, one line per process.

Exit codes: 0 success; 1 a report did not come (a process refused,
vanished or did not answer in time); 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Any

from df_gmr import __version__
from df_gmr import registry

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class Refusal(Exception):
    """A process that df-gmr will not (or cannot) ask for a report."""


def ready_processes() -> list[dict[str, Any]]:
    """Return the registry entries of live, GMR-ready processes."""
    ready = []
    seen = set()
    for entry in registry.entries():
        pid = entry["pid"]
        if pid in seen:
            continue
        if registry.process_start_time(pid) != entry.get("start_time"):
            continue  # dead, or the pid was reused
        signum = _signal_number(entry.get("signal"))
        if signum is None or not registry.catches_signal(pid, signum):
            continue
        seen.add(pid)
        ready.append(entry)
    return sorted(ready, key=lambda entry: entry["pid"])


def _signal_number(name: Any) -> int | None:
    try:
        return int(signal.Signals[name]) if name else None
    except KeyError:
        return None


def command_list(args: argparse.Namespace) -> int:
    """Print the GMR-ready processes of this host."""
    entries = ready_processes()
    if args.format == "json":
        print(json.dumps(entries, indent=1))
        return EXIT_OK
    if not entries:
        print("no GMR-ready process found (searched "
              f"{', '.join(registry.all_run_dirs()) or registry.run_dir()})")
        return EXIT_OK
    print(f"{'PID':>7} {'PPID':>7}  {'SERVICE':<24} {'ROLE':<15} "
          f"{'WORKER':>6}  REPORTS TO")
    for entry in entries:
        index = entry.get("worker_index")
        print(f"{entry['pid']:>7} {entry['ppid']:>7}  "
              f"{str(entry.get('service'))[:24]:<24} "
              f"{str(entry.get('role'))[:15]:<15} "
              f"{'-' if index is None else index:>6}  "
              f"{entry.get('destination')}")
    return EXIT_OK


def _entry_for(pid: int, entries: dict[int, dict[str, Any]]
               ) -> dict[str, Any]:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        msg = f"pid {pid}: no such process"
        raise Refusal(msg) from None
    except PermissionError:
        msg = f"pid {pid}: not permitted to signal it (run as its user)"
        raise Refusal(msg) from None
    entry = entries.get(pid)
    if entry is None:
        msg = (f"pid {pid}: has not set up df_gmr (SIGUSR2 could kill "
               "it); not signalled")
        raise Refusal(msg)
    return entry


def _targets(pids: list[int], with_workers: bool,
             entries: dict[int, dict[str, Any]]) -> list[int]:
    targets: list[int] = []
    for pid in pids:
        targets.append(pid)
        if with_workers:
            targets.extend(
                other for other, entry in sorted(entries.items())
                if entry.get("ppid") == pid and other not in targets
            )
    return targets


def _request(pid: int, entry: dict[str, Any], fmt: str) -> str:
    directory = entry["run_dir"]
    path = os.path.join(directory, f"{pid}.request.{os.getpid()}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                 0o600)
    try:
        os.write(fd, fmt.encode())
    finally:
        os.close(fd)
    owner = os.stat(directory).st_uid
    if owner != os.getuid():
        os.chown(path, owner, -1)  # root asking another user's process
    signum = _signal_number(entry.get("signal")) or signal.SIGUSR2
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        os.unlink(path)
        msg = f"pid {pid}: exited before it could be signalled"
        raise Refusal(msg) from None
    except PermissionError:
        os.unlink(path)
        msg = f"pid {pid}: not permitted to signal it (run as its user)"
        raise Refusal(msg) from None
    return path.replace(".request.", ".answer.")


def command_report(args: argparse.Namespace) -> int:
    """Trigger reports and print each one to stdout."""
    entries = {entry["pid"]: entry for entry in ready_processes()}
    status = EXIT_OK
    waiting: dict[int, str] = {}
    for pid in _targets(args.pids, args.workers, entries):
        try:
            entry = _entry_for(pid, entries)
            waiting[pid] = _request(pid, entry, args.format)
        except (Refusal, OSError) as error:
            print(f"df-gmr: {error}", file=sys.stderr)
            status = EXIT_FAILED
    deadline = time.monotonic() + args.timeout
    while waiting and time.monotonic() < deadline:
        for pid, answer in list(waiting.items()):
            if os.path.exists(answer):
                with open(answer, encoding="utf-8") as handle:
                    text = handle.read()
                if args.format == "json":  # JSON Lines: one per report
                    text = json.dumps(json.loads(text)) + "\n"
                sys.stdout.write(text)
                sys.stdout.flush()
                os.unlink(answer)
                del waiting[pid]
        time.sleep(0.05)
    for pid, answer in waiting.items():
        print(f"df-gmr: pid {pid}: no report within {args.timeout:g} s",
              file=sys.stderr)
        for leftover in (answer, answer.replace(".answer.", ".request.")):
            try:
                os.unlink(leftover)
            except OSError:
                pass
        status = EXIT_FAILED
    return status


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
    reporting.add_argument("--format", choices=("text", "json"),
                           default="text")
    reporting.add_argument("--timeout", type=float, default=10.0,
                           metavar="SECONDS",
                           help="how long to wait for all the reports, "
                                "from the first signal (default 10)")
    reporting.set_defaults(handler=command_report)

    running = commands.add_parser(
        "run", help="run a command with df_gmr enabled, workers included")
    running.add_argument("--service-name")
    running.add_argument("--log-dir")
    running.add_argument("command", nargs=argparse.REMAINDER)
    running.set_defaults(handler=command_run)

    demo = commands.add_parser(
        "demo", help="start a demo daemon, signal it, show its reports")
    demo.add_argument("--workers", type=int, default=2)
    demo.set_defaults(handler=command_demo)
    return main_parser


def main(argv: list[str] | None = None) -> int:
    """Run ``df-gmr``."""
    args = parser().parse_args(argv)
    if getattr(args, "timeout", 1.0) <= 0:
        print("df-gmr: --timeout must be positive", file=sys.stderr)
        return EXIT_USAGE
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
