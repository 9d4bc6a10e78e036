"""The results table, the machine it ran on, and RESULTS.md."""

from __future__ import annotations

import dataclasses
import datetime
from importlib import metadata
import os
import platform
import subprocess
import sys

from benchmarks.runner import ROOT

HEADER = ("measurement", "workload", "df_gmr", "oslo.reports", "ratio",
          "goal", "df_gmr meets it?", "runs (df_gmr / oslo.reports)")


@dataclasses.dataclass
class Row:
    """One line of the table."""

    measurement: str
    workload: str
    df_gmr: str
    oslo_reports: str
    ratio: str = ""
    goal: str = ""
    verdict: str = ""
    runs: str = ""

    def cells(self) -> tuple[str, ...]:
        """Return the cells, in header order."""
        return (self.measurement, self.workload, self.df_gmr,
                self.oslo_reports, self.ratio, self.goal, self.verdict,
                self.runs)


def verdict(met: bool | None, detail: str = "") -> str:
    """Say whether a goal is met (with by how much)."""
    if met is None:
        return "n/a"
    word = "yes" if met else "**NO**"
    return f"{word} ({detail})" if detail else word


def markdown(rows: list[Row]) -> str:
    """Return the rows as a markdown table."""
    lines = ["| " + " | ".join(HEADER) + " |",
             "|" + "|".join("---" for _ in HEADER) + "|"]
    for row in rows:
        cells = (cell.replace("|", "\\|") for cell in row.cells())
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    kib = int(line.split()[1])
                    return f"{kib / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _git(*arguments: str) -> str:
    try:
        finished = subprocess.run(
            ["git", "-C", ROOT, *arguments],
            capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return finished.stdout.strip() if finished.returncode == 0 else ""


def df_gmr_revision(revision: str | None) -> str:
    """Describe the df_gmr measured: a commit, and local changes if any."""
    described = _git("log", "-1", "--format=%h %s", revision or "HEAD")
    if not described:
        return "unknown revision"
    if revision is not None:
        return f"commit {described}"
    changed = _git("status", "--porcelain", "--", "df_gmr").splitlines()
    if not changed:
        return f"commit {described}"
    files = ", ".join(line.split(None, 1)[-1] for line in changed)
    return f"working tree on {described}, with local changes to {files}"


def machine(revision: str | None = None, speedups: str = "?"
            ) -> list[tuple[str, str]]:
    """Describe the machine and the software the run measured."""
    from benchmarks.runner import pinned_cpu
    import df_gmr

    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(
        os, "sched_getaffinity") else cores
    cpu = pinned_cpu()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        ("date", datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC")),
        ("CPU", _cpu_model()),
        ("cores", f"{cores} ({usable} usable)"),
        ("report cost and native report children (1, 6)",
         "unpinned (one CPU, or no affinity here)" if cpu is None else
         f"each pinned to CPU {cpu}, both tools (its threads with it)"),
        ("memory", _memory()),
        ("load average at start", load),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", sys.version.split()[0]),
        ("eventlet", _version("eventlet")),
        ("greenlet", _version("greenlet")),
        ("oslo.reports", _version("oslo.reports")),
        ("df_gmr", f"{df_gmr.__version__}, {df_gmr_revision(revision)}"),
        ("df_gmr's C module", speedups),
    ]


def machine_lines(description: list[tuple[str, str]]) -> list[str]:
    """Return the machine description as markdown list lines."""
    return [f"- {key}: {value}" for key, value in description]
