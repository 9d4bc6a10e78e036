"""``df-gmr doctor``: is a process, or a Python interpreter, ready for GMR?

Each check says what it saw and, when something is wrong, what to do.
Checks of an interpreter run it (``PATH [FLAGS] -c PROBE``) with
``DF_GMR_ENABLE=1``, exactly as a service would start, and read what it
says of itself; checks of a process read ``/proc`` and the run directory
(nothing is signalled, no socket is connected).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
from typing import Any

from df_gmr import discovery
from df_gmr import registry

PROBE_TIMEOUT = 30.0

# Runs in the interpreter under test: what it can import, which .pth it
# has, and whether DF_GMR_ENABLE=1 activated df_gmr at its start.
PROBE = r"""
import json, os, signal, sys
found = {"python": sys.version.split()[0], "no_site": bool(sys.flags.no_site),
         "activated": "df_gmr.autostart" in sys.modules, "pth": None}
import site
dirs = list(getattr(site, "getsitepackages", lambda: [])())
if site.ENABLE_USER_SITE:
    dirs.append(site.getusersitepackages())
for entry in dirs:  # only site directories read .pth files
    path = os.path.join(entry, "df_gmr_autostart.pth")
    if os.path.isfile(path):
        found["pth"] = path
        break
try:
    import df_gmr
    found["df_gmr"] = df_gmr.__version__
    found["df_gmr_path"] = os.path.dirname(df_gmr.__file__)
    from df_gmr import speedups
    found["speedups"] = speedups.available()
except Exception as error:
    found["df_gmr"] = None
    found["import_error"] = repr(error)
handler = signal.getsignal(signal.SIGUSR2)
found["handler"] = getattr(handler, "__qualname__", str(handler))
print(json.dumps(found))
"""


@dataclasses.dataclass
class Check:
    """One thing looked at: fine or not, what was seen, what to do."""

    ok: bool
    seen: str
    advice: str = ""

    def line(self) -> str:
        """Return the check as one or two lines for people."""
        text = f"{'ok' if self.ok else 'PROBLEM'}: {self.seen}"
        if self.advice:
            text += f"\n    do: {self.advice}"
        return text


def check_interpreter(command: list[str]) -> list[Check]:
    """Check that ``command`` (an interpreter and its flags) activates."""
    refusal = _unsafe_for_root(command[0])
    if refusal is not None:
        return [refusal]
    environment = dict(os.environ, DF_GMR_ENABLE="1",
                       PYTHONWARNINGS="ignore")
    try:
        result = subprocess.run(
            [*command, "-c", PROBE], capture_output=True, text=True,
            timeout=PROBE_TIMEOUT, env=environment, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        return [Check(False, f"cannot run {shlex.join(command)}: {error}",
                      "give the interpreter the service runs with")]
    try:
        found: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    except (IndexError, ValueError):
        return [Check(False, f"{shlex.join(command)} is not a Python that "
                      f"answered the probe (exit {result.returncode}): "
                      f"{result.stderr.strip()[-300:]}")]
    return _interpreter_checks(shlex.join(command), found)


def _unsafe_for_root(program: str) -> Check | None:
    """Refuse to run, as root, a program another user could have changed."""
    if os.geteuid() != 0:
        return None
    path = shutil.which(program) or program
    try:
        info = os.stat(os.path.realpath(path))
    except OSError as error:
        return Check(False, f"cannot run {program}: {error.strerror}")
    if info.st_uid != 0 or info.st_mode & 0o022:
        return Check(False, f"{path} is not root's alone (owner uid "
                     f"{info.st_uid}, mode {stat.S_IMODE(info.st_mode):o}):"
                     " not run as root", "run df-gmr doctor --python as "
                     "the user who owns it")
    return None


def _interpreter_checks(name: str, found: dict[str, Any]) -> list[Check]:
    checks = []
    if found.get("df_gmr"):
        checks.append(Check(True, f"{name} (Python {found['python']}) "
                            f"imports df_gmr {found['df_gmr']} from "
                            f"{found.get('df_gmr_path')}"))
        if found.get("speedups"):
            # Read in this probe: DF_GMR_PURE_PYTHON=1 in the service's
            # own environment (a unit file) would still choose Python.
            checks.append(Check(True, f"speedups: {found['speedups']}"
                                + (", unless the service's environment sets "
                                   "DF_GMR_PURE_PYTHON=1" if
                                   found["speedups"].startswith("C ")
                                   else "")))
    else:
        checks.append(Check(False, f"{name} cannot import df_gmr "
                            f"({found.get('import_error')})",
                            f"install it into that environment: {name} "
                            "-m pip install df-gmr"))
    if found.get("no_site"):
        checks.append(Check(False, f"{name} runs without site (-S): no "
                            ".pth file is read, DF_GMR_ENABLE does nothing",
                            "drop -S, or call setup_autorun in the code"))
    elif found.get("pth"):
        checks.append(Check(True, f"activation file {found['pth']}"))
    else:
        checks.append(Check(False, "activation file df_gmr_autostart.pth "
                            "is missing from every site directory",
                            f"reinstall: {name} -m pip install "
                            "--force-reinstall df-gmr (editable installs "
                            "need setuptools >= 64)"))
    if found.get("activated") and found.get("handler") == "Trigger.on_signal":
        checks.append(Check(True, "DF_GMR_ENABLE=1 activates df_gmr at "
                            "interpreter start (SIGUSR2 handled)"))
    else:
        checks.append(Check(False, "DF_GMR_ENABLE=1 did not activate df_gmr "
                            f"(SIGUSR2 handler: {found.get('handler')})",
                            "fix the problems above"))
    return checks


def interpreter_of(command: str) -> list[str] | None:
    """Return the interpreter (and flags) that runs ``command``, if Python.

    A Python executable is its own interpreter; a script names its own in
    its ``#!`` line.  None: not a Python program, or not found.
    """
    path = shutil.which(command)
    if path is None:
        return None
    if os.path.basename(path).startswith("python"):
        return [path]
    try:
        with open(path, "rb") as handle:
            first = handle.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!") or b"python" not in first:
        return None
    words = first[2:].decode("utf-8", "replace").split()
    if os.path.basename(words[0]) == "env":
        words = [word for word in words[1:] if not word.startswith("-")]
    return words or None


def check_process(pid: int) -> list[Check]:
    """Check that ``pid`` is ready for ``df-gmr report`` and SIGUSR2."""
    status = registry.process_status(pid)
    if not status:
        return [Check(False, f"pid {pid}: no such process")]
    checks = [_signal_check(status)]
    checks.extend(_entry_checks(pid, status))
    if not all(check.ok for check in checks):
        checks.append(Check(False, "for the next start, check its "
                            "interpreter as its own user (uid "
                            f"{registry.effective_uid(status)}): df-gmr "
                            f"doctor --python {_executable(pid) or 'PATH'}"))
    return checks


def _signal_check(status: dict[str, str]) -> Check:
    usr2 = 1 << (signal.SIGUSR2 - 1)
    masks = {name: int(status.get(name, "0"), 16)
             for name in ("SigCgt", "SigIgn", "SigBlk")}
    if masks["SigIgn"] & usr2:
        return Check(False, "SIGUSR2 is ignored: kill -USR2 does nothing",
                     "the application set SIG_IGN; set df_gmr up after it")
    if not masks["SigCgt"] & usr2:
        return Check(False, "SIGUSR2 is not caught: kill -USR2 would KILL "
                     "this process", "enable df_gmr (DF_GMR_ENABLE=1 or "
                     "setup_autorun) and restart the service")
    if masks["SigBlk"] & usr2:
        return Check(False, "SIGUSR2 is caught but blocked in the main "
                     "thread: reports wait until it is unblocked")
    return Check(True, "SIGUSR2 is caught")


def _entry_checks(pid: int, status: dict[str, str]) -> list[Check]:
    found = discovery.known_processes().get(pid)
    uid = registry.effective_uid(status)
    if found is None:
        return [Check(False, f"no df_gmr entry for pid {pid} in a run "
                      f"directory trusted for uid {uid}",
                      "df_gmr is not set up there, or its run directory "
                      "was refused: see the service's stderr "
                      "('df-gmr cannot reach this process')")]
    info = found.directory.lstat(f"{pid}{registry.SOCKET_SUFFIX}")
    checks = [Check(True, f"entry in {found.directory.path}: "
                    f"{found.entry.get('service')}, {found.entry.get('role')}"
                    f", reports to {found.entry.get('destination')}")]
    if info is None or not stat.S_ISSOCK(info.st_mode):
        checks.append(Check(False, "its df-gmr socket is missing",
                            "restart the service; kill -USR2 still works"))
    if found.problem is not None:
        checks.append(Check(False, f"not ready: {found.problem}"))
    return checks


def _executable(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
