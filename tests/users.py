"""Second users for the cross-user tests, and running things as them.

The process tests run as root in CI.  A cross-user test needs a user that
is not root: ``user(name)`` creates it once (``useradd --system``, no home,
no login shell; safe when two test workers ask at the same time) and skips
the test, saying why, when the suite does not run as root.

The test interpreter lives under /root (mode 0700): another user cannot
run it.  So attacker actions are shell tools run through ``setpriv`` (see
``sh``), and Python processes that must run as another user start as root
and drop their privileges themselves (tests/scripts/attack_common.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import grp
import os
import pwd
import shutil
import subprocess
import tempfile
import time

import pytest

#: The unprivileged local user who attacks.
ATTACKER = "dfgmr-attacker"
#: A service account (as 'nova') whose daemons root asks for reports.
SERVICE = "dfgmr-service"
#: A service account whose /tmp run directory the attacker squats first
#: (its own user, so that squatting it never disturbs other tests).
SQUATTED = "dfgmr-squatted"


@dataclasses.dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int

    def setpriv(self) -> list[str]:
        """Return the command prefix that runs a program as this user."""
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}",
                "--clear-groups", "--inh-caps=-all"]


def user(name: str) -> User:
    """Return the system user ``name``, created if missing (root only)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a second user")
    if shutil.which("setpriv") is None or shutil.which("useradd") is None:
        pytest.skip("needs setpriv and useradd to act as a second user")
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return User(name, entry.pw_uid, entry.pw_gid)
        try:
            grp.getgrnam(name)
            group = ["--gid", name]  # left by an earlier, interrupted run
        except KeyError:
            group = ["--user-group"]
        result = subprocess.run(
            ["useradd", "--system", "--no-create-home", *group,
             "--shell", "/usr/sbin/nologin", name],
            capture_output=True, text=True, timeout=30)
        # 9: made meanwhile by another test worker; 1 and 10: the password
        # or group file locked by it.  Then look again.
        if result.returncode not in (0, 1, 9, 10) or \
                time.monotonic() > deadline:
            pytest.fail(f"useradd {name}: exit {result.returncode}: "
                        f"{result.stderr.strip()}")
        if result.returncode != 0:
            time.sleep(0.2)


def sh(who: User, script: str, timeout: float = 20, check: bool = True
       ) -> subprocess.CompletedProcess[str]:
    """Run a shell script as ``who``; bounded; fail with its output."""
    result = subprocess.run([*who.setpriv(), "sh", "-c", script],
                            capture_output=True, text=True, timeout=timeout,
                            cwd="/", env=_plain_env())
    if check and result.returncode != 0:
        pytest.fail(f"as {who.name}: {script!r} exited "
                    f"{result.returncode}: {result.stderr.strip()}")
    return result


def start_sh(who: User, script: str) -> subprocess.Popen[str]:
    """Start a shell script as ``who`` (the caller stops and reaps it)."""
    return subprocess.Popen([*who.setpriv(), "sh", "-c", script],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd="/", env=_plain_env(),
                            start_new_session=True)


def stop(process: subprocess.Popen[str]) -> str:
    """Kill a process started by ``start_sh`` (its whole group); reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, 9)
    output, _ = process.communicate(timeout=15)
    return output or ""


@contextlib.contextmanager
def private_dir(who: User, prefix: str):
    """A new directory in /tmp owned by ``who``, mode 0700; removed after.

    Made in /tmp itself: pytest's tmp_path is under a 0700 directory of
    root's that another user cannot cross.
    """
    path = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    try:
        os.chown(path, who.uid, who.gid)
        os.chmod(path, 0o700)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _plain_env() -> dict[str, str]:
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
