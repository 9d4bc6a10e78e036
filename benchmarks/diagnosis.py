"""Measurement 8, in the child: df-gmr's analysis commands on big reports.

Two kinds of child:

- ``diagnosis_reports`` (a monkey-patched eventlet service, df_gmr set
  up as in measurement 1) writes the reports the commands read, once per
  benchmark run: ``kind: "pair"`` writes two JSON reports of one process
  of the mix, ``gap`` seconds apart (``old.json``, ``new.json``);
  ``kind: "fleet"`` writes one JSON report of a smaller mix ``copies``
  times (``fleet/report-NNNN.json``), each with its own pid, parent pid,
  host and time in the header, as from a fleet of like processes.
- ``diagnosis`` (an operator's process: no eventlet, no monkey-patching)
  times one command: what ``df-gmr diff|convert|summarize`` runs
  (``df_gmr.analysis.commands``, the handler the CLI calls, with its
  output going to ``/dev/null`` or to a file), from reading the files to
  the written output, in-process; or (``cli_diff``) the whole
  ``python -m df_gmr.cli diff OLD NEW`` in a process of its own, as the
  operator sees it: interpreter start, imports, reading, diff, output.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import glob
import json
import os
import subprocess
import sys
import time
from typing import Any

OLD = "old.json"
NEW = "new.json"
FLEET = "fleet"
#: Hosts the fleet's reports are spread over.
FLEET_HOSTS = 40
COMMANDS = ("diff", "cli_diff", "folded", "speedscope", "summarize")


def measure_reports(params: dict[str, Any], set_up: Any, version: Any
                    ) -> dict[str, Any]:
    """Write the JSON reports the analysis commands read (see module)."""
    import eventlet

    report_class = set_up("df_gmr", None)
    from benchmarks import workloads

    out = params["out"]
    workload = workloads.build(params["workload"], params["size"])
    started = time.perf_counter()
    first = report_class(version).run("json")
    first_seconds = time.perf_counter() - started
    if params["kind"] == "pair":
        eventlet.sleep(params["gap"])
        second = report_class(version).run("json")
        _write(os.path.join(out, OLD), first)
        _write(os.path.join(out, NEW), second)
        return {"report_seconds": first_seconds,
                "report_bytes": len(first.encode()),
                "second_bytes": len(second.encode()),
                "counts": workload.counts}
    copies = params["copies"]
    fleet_dir = os.path.join(out, FLEET)
    os.makedirs(fleet_dir, exist_ok=True)
    document = json.loads(first)
    head = document["header"]
    moment = datetime.datetime.fromisoformat(head["time"])
    for index in range(copies):
        head["pid"] = 10_000 + index
        head["ppid"] = 1_000 + index // 8
        head["host"] = f"compute-{index % FLEET_HOSTS:03d}"
        head["time"] = (moment + datetime.timedelta(
            seconds=index)).isoformat(timespec="microseconds")
        _write(os.path.join(fleet_dir, f"report-{index:04d}.json"),
               json.dumps(document, indent=1) + "\n")
    return {"report_seconds": first_seconds,
            "report_bytes": len(first.encode()),
            "copies": copies,
            "counts": workload.counts}


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(text)


def measure_command(params: dict[str, Any]) -> dict[str, Any]:
    """Time one analysis command on the reports in ``params["dir"]``."""
    command = params["command"]
    if command not in COMMANDS:
        msg = f"command must be one of {', '.join(COMMANDS)}"
        raise ValueError(msg)
    directory = params["dir"]
    old = os.path.join(directory, OLD)
    new = os.path.join(directory, NEW)
    if command == "cli_diff":
        started = time.perf_counter()
        finished = subprocess.run(
            [sys.executable, "-m", "df_gmr.cli", "diff", old, new],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            check=False)
        seconds = time.perf_counter() - started
        if finished.returncode != 0:
            msg = (f"df-gmr diff exited {finished.returncode}: "
                   f"{finished.stderr.decode(errors='replace')[-500:]}")
            raise RuntimeError(msg)
        return {"seconds": seconds}
    from df_gmr import analysis
    from df_gmr.analysis import commands

    output = os.path.join(directory, f"converted-{os.getpid()}.out")
    inputs: list[str]
    if command == "diff":
        handler = commands.diff
        inputs = [old, new]
        args = argparse.Namespace(old=old, new=new, format="text",
                                  force=False)
    elif command == "summarize":
        handler = commands.summarize
        inputs = sorted(glob.glob(os.path.join(directory, FLEET, "*.json")))
        args = argparse.Namespace(reports=inputs, format="text", top=20)
    else:
        handler = commands.convert
        inputs = [old]
        args = argparse.Namespace(report=old, to=command, output=output)
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        started = time.perf_counter()
        status = handler(args)
        seconds = time.perf_counter() - started
    written = os.path.getsize(output) if os.path.exists(output) else None
    with contextlib.suppress(FileNotFoundError):
        os.unlink(output)
    if status != 0:
        msg = f"df-gmr {command} returned {status}"
        raise RuntimeError(msg)
    # Reading the JSON alone, after (the files are cached by now, as they
    # were for the command): how much of the command's time it is.
    started = time.perf_counter()
    for path in inputs:
        analysis.read(path)
    read_seconds = time.perf_counter() - started
    return {"seconds": seconds, "read_seconds": read_seconds,
            "files": len(inputs), "output_bytes": written,
            "input_bytes": sum(os.path.getsize(path) for path in inputs)}
