"""Run devstack/plugin.sh phases in bash against fake_devstack.sh.

Each phase runs in a fresh ``bash`` the way DevStack runs it: with
``errexit`` and ``nounset`` (stack.sh's NOUNSET mode) and an ERR trap,
after local.conf's variables (the environment given here), the stand-in
DevStack functions and the plugin's ``settings``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
import shlex
import subprocess

REPO = Path(__file__).resolve().parents[2]
PLUGIN_DIR = REPO / "devstack"
FAKE_DEVSTACK = Path(__file__).resolve().parent / "fake_devstack.sh"
#: A bound, generous: the install phase builds df_gmr for real.
PHASE_TIMEOUT = 90.0

_RUN_PHASE = """\
set -o errexit -o nounset
trap 'echo "ERR: line $LINENO: $BASH_COMMAND" >&2' ERR
source "$FAKE_DEVSTACK"
source "$PLUGIN_DIR/settings"
source "$PLUGIN_DIR/plugin.sh" "$@"
"""


@dataclasses.dataclass
class Devstack:
    """A scratch DevStack: directories, local.conf variables, a call log."""

    root: Path
    variables: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def dest(self) -> Path:
        return self.root / "opt" / "stack"

    @property
    def systemd_dir(self) -> Path:
        return self.root / "etc" / "systemd" / "system"

    @property
    def venv(self) -> Path:
        """DevStack's virtualenv, where setup_develop installs."""
        return self.dest / "data" / "venv"

    @property
    def call_log(self) -> Path:
        return self.root / "calls.log"

    def environment(self) -> dict[str, str]:
        """Return the environment of a phase: local.conf plus harness."""
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root),
            "LC_ALL": "C",
            "FAKE_DEVSTACK": str(FAKE_DEVSTACK),
            "FAKE_DEVSTACK_ROOT": str(self.root),
            "FAKE_DEVSTACK_LOG": str(self.call_log),
            "PLUGIN_DIR": str(PLUGIN_DIR),
            "DEST": str(self.dest),
            "DEVSTACK_VENV": str(self.venv),
            "SYSTEMD_DIR": str(self.systemd_dir),
        }
        environment.update(self.variables)
        return environment

    def run(self, *phase: str, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        """Source plugin.sh with ``phase`` as its arguments."""
        result = subprocess.run(
            ["bash", "-c", _RUN_PHASE, "plugin.sh", *phase],
            env=self.environment(), capture_output=True, text=True,
            timeout=PHASE_TIMEOUT, check=False)
        if check and result.returncode != 0:
            raise AssertionError(
                f"plugin.sh {' '.join(phase)} exited {result.returncode}\n"
                f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}")
        return result

    def shell(self, script: str) -> subprocess.CompletedProcess[str]:
        """Run ``script`` in bash after sourcing fake_devstack.sh."""
        return subprocess.run(
            ["bash", "-c",
             'set -o errexit -o nounset\nsource "$FAKE_DEVSTACK"\n' + script],
            env=self.environment(), capture_output=True, text=True,
            timeout=PHASE_TIMEOUT, check=False)

    def python(self, code: str, **variables: str
               ) -> subprocess.CompletedProcess[str]:
        """Run ``code`` in DevStack's virtualenv, as a service there runs.

        Its environment has nothing of the test's Python (no PYTHONPATH),
        only PATH, HOME and ``variables``; it runs in the scratch root.
        """
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                       "HOME": str(self.root), **variables}
        result = subprocess.run(
            [str(self.venv / "bin" / "python"), "-c", code],
            env=environment, cwd=self.root, capture_output=True, text=True,
            timeout=PHASE_TIMEOUT, check=False)
        if result.returncode != 0:
            raise AssertionError(
                f"python in {self.venv} exited {result.returncode}\n"
                f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}")
        return result

    def calls(self, name: str | None = None) -> list[list[str]]:
        """Return the recorded calls (each: name, arguments...)."""
        if not self.call_log.exists():
            return []
        calls = [line.split("\t") for line in
                 self.call_log.read_text().splitlines()]
        return [call for call in calls if name is None or call[0] == name]

    def dropin(self, unit: str) -> Path:
        """Return the path of the plugin's drop-in for ``unit``."""
        return (self.systemd_dir / f"devstack@{unit}.service.d"
                / "df-gmr.conf")

    def config_file(self, name: str, text: str) -> Path:
        """Create a service config file under etc/ and return its path."""
        path = self.root / "etc" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def snapshot(self) -> dict[str, bytes]:
        """Return every file under the root (but the call log) by path."""
        return {str(path.relative_to(self.root)): path.read_bytes()
                for path in sorted(self.root.rglob("*"))
                if path.is_file() and path != self.call_log}


def environment_lines(dropin: Path) -> dict[str, str]:
    """Return the variables a systemd drop-in sets with ``Environment=``."""
    variables: dict[str, str] = {}
    for line in dropin.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "Environment":
            for assignment in shlex.split(value):
                name, _, setting = assignment.partition("=")
                variables[name] = setting.replace("%%", "%")
    return variables
