"""Attacks on df-gmr and on daemons across users, with real processes.

Each test plays one attack from the threat model (df_gmr/exchange.py)
with real processes of real users and real signals, and asserts that it
fails: root's ``df-gmr`` never chowns, opens, signals or prints on
someone else's behalf, and no other user stalls or redirects a daemon's
reports.  Most of them would have succeeded against the file-based
exchange that the UNIX socket replaced (request and answer files in the
run directory, chowned by path, read without checks).

They need root (tests/users.py creates the second users); the daemons of
a service account start as root and drop to it (tests/scripts/
attack_common.py): the test interpreter under /root is not theirs to run.
Run directories of the default places are used where the place matters
(root's df-gmr finds them by it); elsewhere a private DF_GMR_RUN_DIR
keeps what a test plants away from the other tests' listings.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import ctypes
import dataclasses
import json
import os
import re
import shlex
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any

import pytest

from tests.daemons import SOURCE_ROOT
from tests.daemons import Daemon
from tests.daemons import running
from tests.users import ATTACKER
from tests.users import SERVICE
from tests.users import SQUATTED
from tests.users import User
from tests.users import private_dir
from tests.users import sh
from tests.users import start_sh
from tests.users import stop
from tests.users import user

#: A window title and a screen wipe, as an attacker would print them.
EVIL = "\x1b]0;pwned\x07\x1b[2J"
#: How df-gmr shows them instead.
SHOWN = "\\x1b]0;pwned\\x07\\x1b[2J"
#: ESC, BEL and CSI (C1, as UTF-8) must never reach root's terminal raw.
RAW_CONTROLS = (b"\x1b", b"\x07", b"\xc2\x9b")
PIDS = re.compile(r"^PID: (\d+)$", re.MULTILINE)


@dataclasses.dataclass
class Run:
    """One run of df-gmr as root: exit status, raw output, duration."""

    returncode: int
    raw_out: bytes
    raw_err: bytes
    elapsed: float

    @property
    def out(self) -> str:
        return self.raw_out.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.raw_err.decode("utf-8", "replace")

    def pids(self) -> list[int]:
        """Return the PID of each report header printed."""
        return [int(pid) for pid in PIDS.findall(self.out)]

    def listed(self) -> list[dict[str, Any]]:
        """Return the entries of ``df-gmr list --format json``."""
        assert self.returncode == 0, self.err
        return list(json.loads(self.out))


def cli_env(run_dir: str | None = None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=SOURCE_ROOT, PYTHONWARNINGS="ignore")
    for name in ("DF_GMR_ENABLE", "DF_GMR_RUN_DIR", "XDG_RUNTIME_DIR"):
        env.pop(name, None)
    if run_dir:
        env["DF_GMR_RUN_DIR"] = run_dir
    return env


def df_gmr(*args: str, run_dir: str | None = None, timeout: float = 20
           ) -> Run:
    """Run df-gmr as root (bounded: a hang fails the test)."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "df_gmr.cli", *args],
                            capture_output=True, timeout=timeout,
                            env=cli_env(run_dir))
    return Run(result.returncode, result.stdout, result.stderr,
               time.monotonic() - started)


def assert_no_controls(run: Run, what: str) -> None:
    for raw in RAW_CONTROLS:
        assert raw not in run.raw_out, f"{what}: {raw!r} on stdout"
        assert raw not in run.raw_err, f"{what}: {raw!r} on stderr"


def run_dir_of(who: User) -> str:
    """Return the default (/tmp) run directory of a user without one in
    /run."""
    return f"/tmp/df_gmr-{who.uid}"


def own_run_dir(who: User) -> str:
    """Make ``who``'s default run directory as df_gmr would (0700)."""
    path = run_dir_of(who)
    sh(who, f"mkdir -p -m 700 {path} && chmod 700 {path}")
    return path


@contextlib.contextmanager
def daemon_of(who: User, *args: str, log_dir: str | None = None,
              run_dir: str | None = None) -> Iterator[Daemon]:
    """An eventlet daemon with df_gmr, running as ``who``."""
    argv = ["--user", who.name, *args]
    if log_dir:
        argv += ["--log-dir", log_dir]
    if run_dir:
        argv += ["--run-dir", run_dir]
    with running("attack_service.py", *argv, log_dir=log_dir) as daemon:
        daemon.wait_ready()
        yield daemon


@contextlib.contextmanager
def listener_of(who: User, *args: str) -> Iterator[Daemon]:
    """A process of ``who`` pretending to df-gmr (attack_listener.py)."""
    with running("attack_listener.py", "--user", who.name, *args) as fake:
        fake.wait_ready()
        yield fake


def start_time(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        return int(handle.read().rsplit(b")", 1)[1].split()[19])


def entry(pid: int, **fields: Any) -> dict[str, Any]:
    """An entry as df_gmr writes one, for a live process ``pid``."""
    return {"pid": pid, "ppid": 1, "start_time": start_time(pid),
            "service": "svc", "role": "single process",
            "worker_index": None, "launcher": None,
            "destination": "stderr", "signal": "SIGUSR2",
            "handler": "df_gmr", **fields}


def write_as(who: User, path: str, data: dict[str, Any]) -> None:
    """Write a JSON file as ``who`` (0600, complete when it appears)."""
    text = json.dumps(data)  # ASCII: control characters as \\u escapes
    sh(who, f"printf '%s' {shlex.quote(text)} > {path}.tmp && "
            f"chmod 600 {path}.tmp && mv -f {path}.tmp {path}")


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait(timeout=10)
    return process.pid


def remove(path: str) -> None:
    """Remove a file, link or tree (gone already is fine)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def snapshot(directory: str) -> dict[str, tuple[int, int, int]]:
    """Return each name's file type, owner and size (never followed)."""
    found = {}
    for name in os.listdir(directory):
        info = os.lstat(os.path.join(directory, name))
        found[name] = (stat.S_IFMT(info.st_mode), info.st_uid, info.st_size)
    return found


@contextlib.contextmanager
def root_only_file(text: str) -> Iterator[str]:
    """A file only root may read or change (0600, in /tmp)."""
    fd, path = tempfile.mkstemp(prefix="dfgmr-root-only-", dir="/tmp")
    try:
        os.write(fd, text.encode())
        os.close(fd)
        os.chmod(path, 0o600)
        yield path
    finally:
        os.unlink(path)


class Watch:
    """inotify on one file: did anybody open, read, change or chown it?"""

    MASK = 0x1 | 0x2 | 0x4 | 0x20  # ACCESS, MODIFY, ATTRIB, OPEN

    def __init__(self, path: str) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if libc.inotify_add_watch(self.fd, os.fsencode(path),
                                  self.MASK) < 0:
            os.close(self.fd)
            raise OSError(ctypes.get_errno(), "inotify_add_watch")

    def events(self) -> list[int]:
        """Return the masks of the events since the last call."""
        masks = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return masks
            offset = 0
            while offset < len(data):
                _, mask, _, length = struct.unpack_from("iIII", data, offset)
                masks.append(mask)
                offset += 16 + length

    def close(self) -> None:
        os.close(self.fd)


@contextlib.contextmanager
def watching(path: str) -> Iterator[Watch]:
    watch = Watch(path)
    try:
        yield watch
        # The watch itself works: reading the file is seen.
        with open(path, "rb") as handle:
            handle.read()
        assert watch.events(), "inotify saw nothing: the check is void"
    finally:
        watch.close()


@contextlib.contextmanager
def sleeper(who: User) -> Iterator[subprocess.Popen[str]]:
    """An ordinary process of ``who`` (sleep: SIGUSR2 would kill it)."""
    process = start_sh(who, "exec sleep 60")
    try:
        yield process
    finally:
        stop(process)


# 1. The chown race of the file-based exchange.

RACER = r"""
cd {run_dir} || exit 1
exec timeout 60 sh -c '
while :; do
  for f in {pid}.request.* {pid}.answer.*; do
    if [ -e "$f" ] && [ ! -L "$f" ]; then
      echo "SEEN $f"
      rm -f "$f"; ln -s {victim} "$f"
      ln -s {victim} "{pid}.answer.${{f##*.request.}}" 2>/dev/null
    fi
  done
done'
"""


def test_root_reporting_never_chowns_or_reads_through_racing_symlinks():
    # The old df-gmr created <pid>.request.<id> in the service account's
    # directory, then chowned it by path (a symlink swapped in meanwhile
    # gave root's file to the account), and read <pid>.answer.<id>
    # following links.  Now root creates, chowns and reads nothing there.
    svc = user(SERVICE)
    with root_only_file("ROOT-ONLY-SECRET\n") as victim, \
            watching(victim) as watch:
        before = os.lstat(victim)
        with daemon_of(svc) as daemon:
            run_dir = run_dir_of(svc)
            gone = dead_pid()  # what root's df-gmr removes as stale
            stale = [f"{gone}.json", f"{gone}.sock",
                     f".{gone}.json.{gone}.partial"]
            sh(svc, f"cd {run_dir} && " + " && ".join(
                f"ln -s {victim} {name}" for name in stale))
            racer = start_sh(svc, RACER.format(run_dir=run_dir,
                                               pid=daemon.pid,
                                               victim=victim))
            try:
                runs = [df_gmr("report", str(daemon.pid)) for _ in range(4)]
                runs.append(df_gmr("report", str(daemon.pid),
                                   "--format", "json"))
                runs.append(df_gmr("list"))
            finally:
                raced = stop(racer)
                for name in stale:
                    remove(os.path.join(run_dir, name))
            assert daemon.alive()
        for run in runs[:4]:
            assert run.returncode == 0, run.err
            assert run.pids() == [daemon.pid]
        [document] = json.loads(runs[4].out)
        assert document["header"]["pid"] == daemon.pid
        for run in runs:
            assert "ROOT-ONLY-SECRET" not in run.out + run.err
        assert "SEEN" not in raced, "root created a file in their directory"
        after = os.lstat(victim)
        assert (after.st_uid, after.st_gid, after.st_mode) == \
            (before.st_uid, before.st_gid, before.st_mode) == \
            (0, 0, stat.S_IFREG | 0o600)
        assert watch.events() == []  # never opened, read, chmod-ed, chowned
        with open(victim) as handle:
            assert handle.read() == "ROOT-ONLY-SECRET\n"


def test_root_gets_the_report_of_a_service_accounts_daemon():
    svc = user(SERVICE)
    with daemon_of(svc) as daemon:
        run_dir = run_dir_of(svc)
        info = os.lstat(run_dir)
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (svc.uid, 0o700)
        for name in (f"{daemon.pid}.json", f"{daemon.pid}.sock"):
            assert os.lstat(os.path.join(run_dir, name)).st_uid == svc.uid
        [listed] = [found for found in df_gmr("list", "--format",
                                              "json").listed()
                    if found["pid"] == daemon.pid]
        assert listed["ready"], listed
        text = df_gmr("report", str(daemon.pid))
        assert text.returncode == 0, text.err
        assert text.pids() == [daemon.pid]
        assert "extra text" in text.out
        as_json = df_gmr("report", str(daemon.pid), "--format", "jsonl")
        assert as_json.returncode == 0, as_json.err
        [line] = as_json.out.splitlines()
        assert json.loads(line)["header"]["pid"] == daemon.pid
        assert daemon.alive()


# 2. Forged entries.


def test_forged_entries_never_list_nor_signal_a_victim():
    # The attacker describes root's processes in directories it owns (its
    # own, a name that is no uid, and squatted names that the CLI reads
    # as root's: '00' is uid 0 too), with SIGINT or SIGKILL, as workers of
    # a real daemon.  The old df-gmr trusted any /tmp/df_gmr-*: report
    # VICTIM (or DAEMON --workers) sent the victim SIGINT.
    attacker = user(ATTACKER)
    squats = ["/tmp/df_gmr--x", "/tmp/df_gmr-00"]
    if not os.path.lexists("/tmp/df_gmr-0"):
        squats.append("/tmp/df_gmr-0")
    own = own_run_dir(attacker)
    planted = []
    with running("attack_victim.py") as victim, \
            running("service.py", "--service-name", "victim-daemon") as daemon:
        victim.wait_ready()
        daemon.wait_ready()
        try:
            for path in squats:
                remove(path)  # an earlier run's
                sh(attacker, f"mkdir -m 700 {path}")
            for directory in [own, *squats]:
                for pid, signal_name in ((victim.pid, "SIGINT"),
                                         (daemon.pid, "SIGKILL")):
                    path = f"{directory}/{pid}.json"
                    write_as(attacker, path, entry(
                        pid, ppid=daemon.pid, service="victim-daemon",
                        role="worker", worker_index=0,
                        signal=signal_name))
                    planted.append(path)
            text = df_gmr("list")
            listed = df_gmr("list", "--format", "json").listed()
            alone = df_gmr("report", str(victim.pid))
            workers = df_gmr("report", str(daemon.pid), "--workers")
            time.sleep(0.5)  # a signal sent would have landed
        finally:
            for path in planted:
                remove(path)
            for path in squats:
                remove(path)
        assert text.returncode == 0, text.err
        assert not re.search(rf"\b{victim.pid}\b", text.out + text.err)
        assert victim.pid not in [found["pid"] for found in listed]
        [real] = [found for found in listed if found["pid"] == daemon.pid]
        assert (real["ppid"], real["signal"]) == (os.getpid(), "SIGUSR2")
        assert alone.returncode == 1
        assert alone.err.strip() == (
            f"df-gmr: pid {victim.pid}: has not set up df_gmr (SIGUSR2 "
            "could kill it); not signalled")
        assert workers.returncode == 0, workers.err
        assert workers.pids() == [daemon.pid]
        assert victim.alive() and "GOT" not in victim.text()
        assert daemon.alive()


def test_another_users_process_is_never_reported_as_a_worker(tmp_path):
    attacker = user(ATTACKER)
    own = own_run_dir(attacker)
    forged = tmp_path / "forged.txt"
    forged.write_text("==== Guru Meditation ====\nFORGED REPORT\n")
    with running("service.py", "--service-name", "victim-daemon") as daemon:
        daemon.wait_ready()
        with listener_of(attacker, "--bind", f"{own}/{{pid}}.sock",
                         "--entry", own, "--ppid", str(daemon.pid),
                         "--role", "worker", "--service", "victim-daemon",
                         "--catch", "SIGUSR2",
                         "--answer-file", str(forged)) as fake:
            try:
                listed = df_gmr("list", "--format", "json").listed()
                workers = df_gmr("report", str(daemon.pid), "--workers",
                                 "--timeout", "5")
            finally:
                for suffix in (".json", ".sock"):
                    remove(f"{own}/{fake.pid}{suffix}")
            time.sleep(0.3)
            asked = fake.text()
        assert "FORGED" not in workers.out
        assert workers.pids() == [daemon.pid]
        assert "GOT SIGUSR2" not in asked
        # Nor listed as the daemon's worker: its parent is not the daemon.
        assert [found["pid"] for found in listed
                if found.get("ppid") == daemon.pid] == []


# 3. Junk planted where a daemon could look for requests.

PLANT = ("mkfifo {pid}.request.fifo1 {pid}.request.fifo2 .{pid}.request.x "
         "&& ln -s {outside}/request {pid}.request.link "
         "&& ln -s /etc/shadow {pid}.request.shadow "
         "&& ln -s {outside}/answer {pid}.answer.link "
         "&& ln -s {outside}/partial .{pid}.json.{pid}.partial "
         "&& i=0 && while [ $i -lt 200 ]; do "
         "echo text > {pid}.request.$i || exit 1; i=$((i+1)); done")


def test_junk_in_a_daemons_run_dir_never_blocks_nor_multiplies_reports():
    # The old daemon opened every <pid>.request.* (a FIFO hung its
    # reporting thread for good) and answered each with a file.  Now it
    # reads no file at all: the attacker cannot even write there, and what
    # its own user plants changes nothing.
    svc = user(SERVICE)
    attacker = user(ATTACKER)
    with private_dir(svc, "dfgmr-run-") as run_dir, \
            private_dir(svc, "dfgmr-log-") as log_dir, \
            private_dir(svc, "dfgmr-outside-") as outside, \
            daemon_of(svc, log_dir=log_dir, run_dir=run_dir) as daemon:
        plant = PLANT.format(pid=daemon.pid, outside=outside)
        alone = snapshot(run_dir)
        refused = sh(attacker, f"cd {run_dir} && {plant}", check=False)
        assert refused.returncode != 0
        assert snapshot(run_dir) == alone  # the attacker cannot write there
        sh(svc, f"cd {run_dir} && {plant}")
        planted = snapshot(run_dir)
        assert len(set(planted) - set(alone)) == 207
        for count in (1, 2, 3):
            daemon.signal()
            daemon.wait_reports(count, timeout=5)
        asked = df_gmr("report", str(daemon.pid), run_dir=run_dir)
        assert asked.returncode == 0, asked.err
        assert asked.pids() == [daemon.pid]
        daemon.wait_reports(4, timeout=5)
        time.sleep(0.5)
        assert len(daemon.reports()) == 4  # one per request, no more
        assert snapshot(run_dir) == planted
        assert os.listdir(outside) == []
        assert daemon.alive()


def test_a_run_dir_of_the_attackers_is_refused_and_left_alone():
    # DF_GMR_RUN_DIR pointing at a directory someone else owns (writable
    # even by the service): refused, never read nor written.
    svc = user(SERVICE)
    attacker = user(ATTACKER)
    with private_dir(attacker, "dfgmr-trap-") as trap, \
            private_dir(svc, "dfgmr-log-") as log_dir, \
            private_dir(svc, "dfgmr-outside-") as outside:
        os.chmod(trap, 0o777)
        sh(attacker, f"cd {trap} && " + PLANT.format(pid="1",
                                                     outside=outside))
        with daemon_of(svc, log_dir=log_dir, run_dir=trap) as daemon:
            sh(attacker, f"cd {trap} && " + PLANT.format(pid=daemon.pid,
                                                         outside=outside))
            planted = snapshot(trap)
            [complaint] = [line for line in daemon.text().splitlines()
                           if line.startswith("df_gmr:")]
            assert trap in complaint
            assert f"belongs to uid {attacker.uid}" in complaint
            for count in (1, 2):
                daemon.signal()
                daemon.wait_reports(count, timeout=5)
            time.sleep(0.3)
            assert len(daemon.reports()) == 2
            assert snapshot(trap) == planted
            assert os.listdir(outside) == []
            assert daemon.alive()


# 4. A squatted run directory.


def test_a_squatted_run_dir_is_refused_and_kill_usr2_still_works():
    squatted = user(SQUATTED)
    attacker = user(ATTACKER)
    path = run_dir_of(squatted)
    with private_dir(squatted, "dfgmr-own-") as elsewhere:
        for squat, reason in (
                (f"mkdir -m 777 {path} && chmod 777 {path}",
                 f"belongs to uid {attacker.uid}, not {squatted.uid}"),
                (f"ln -s {elsewhere} {path}", "symbolic link")):
            remove(path)  # an earlier run's
            sh(attacker, squat)
            try:
                with private_dir(squatted, "dfgmr-log-") as log_dir, \
                        daemon_of(squatted, log_dir=log_dir) as daemon:
                    complaints = [line for line in daemon.text().splitlines()
                                  if line.startswith("df_gmr:")]
                    assert len(complaints) == 1, complaints
                    assert path in complaints[0]
                    assert reason in complaints[0]
                    daemon.signal()
                    daemon.wait_reports(1, timeout=5)
                    refused = df_gmr("report", str(daemon.pid))
                    assert refused.returncode == 1
                    assert "has not set up df_gmr" in refused.err
                    daemon.signal()
                    daemon.wait_reports(2, timeout=5)
                    time.sleep(0.3)
                    assert len(daemon.reports()) == 2
                    if not os.path.islink(path):
                        assert os.listdir(path) == []  # nothing written
                    assert os.listdir(elsewhere) == []
                    assert daemon.alive()
            finally:
                remove(path)


# 5. What root's terminal gets.


def test_control_sequences_never_reach_roots_terminal():
    # A compromised service account names its service and a section with
    # terminal control sequences, and forges an entry (handler, role) for
    # one of its processes.
    svc = user(SERVICE)
    with private_dir(svc, "dfgmr-run-") as run_dir, \
            daemon_of(svc, "--service-name", "evil" + EVIL,
                      "--evil-section", run_dir=run_dir) as daemon, \
            sleeper(svc) as other:
        write_as(svc, f"{run_dir}/{other.pid}.json", entry(
            other.pid, service="evil" + EVIL, role=EVIL, handler=EVIL))
        runs = {
            "list": df_gmr("list", run_dir=run_dir),
            "list json": df_gmr("list", "--format", "json", run_dir=run_dir),
            "report": df_gmr("report", str(daemon.pid), run_dir=run_dir),
            "report json": df_gmr("report", str(daemon.pid), "--format",
                                  "json", run_dir=run_dir),
            "refusal": df_gmr("report", str(other.pid), run_dir=run_dir),
        }
        assert other.poll() is None  # never signalled
    for what, run in runs.items():
        assert_no_controls(run, what)
    assert f"evil{SHOWN}" in runs["list"].out
    assert f"df-gmr: pid {other.pid} (evil{SHOWN}, {SHOWN}): not ready" in \
        runs["list"].err
    services = {found["pid"]: found["service"]
                for found in runs["list json"].listed()}
    assert services[daemon.pid] == "evil" + EVIL  # exact, but escaped
    assert runs["report"].returncode == 0, runs["report"].err
    assert runs["report"].pids() == [daemon.pid]
    assert SHOWN + "\\x1b[31mred\\x9b0m" in runs["report"].out
    [document] = json.loads(runs["report json"].out)
    assert document["header"]["service"] == "evil" + EVIL
    assert runs["refusal"].returncode == 1
    assert SHOWN in runs["refusal"].err


def test_fifo_and_symlink_entries_never_hang_nor_read_root_files():
    svc = user(SERVICE)
    attacker = user(ATTACKER)
    me = os.getpid()  # root's, alive: a symlinked entry would describe it
    with root_only_file(json.dumps(entry(me))) as secret:
        places = {attacker: own_run_dir(attacker), svc: own_run_dir(svc)}
        names = ["123.json", "1.json", f"{me}.json"]
        try:
            for who, directory in places.items():
                sh(who, f"cd {directory} && rm -f {' '.join(names)} && "
                        f"mkfifo 123.json 1.json && ln -s {secret} {me}.json")
            with watching(secret) as watch:
                listing = df_gmr("list")
                listed = df_gmr("list", "--format", "json").listed()
                asked = df_gmr("report", "123", str(me), "--timeout", "2")
                assert watch.events() == []  # the symlinks were not opened
        finally:
            for directory in places.values():
                for name in names:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(directory, name))
    assert listing.returncode == 0, listing.err
    assert listing.elapsed < 10 and asked.elapsed < 10
    assert me not in [found["pid"] for found in listed]
    assert asked.returncode == 1
    assert f"df-gmr: pid {me}: has not set up df_gmr" in asked.err


# 6. Someone else's socket at a daemon's name.


def test_a_socket_of_another_process_is_refused_by_its_credentials():
    svc = user(SERVICE)
    with private_dir(svc, "dfgmr-log-") as log_dir, \
            daemon_of(svc, log_dir=log_dir) as daemon:
        socket_path = f"{run_dir_of(svc)}/{daemon.pid}.sock"
        with listener_of(svc, "--bind", socket_path) as impostor:
            refused = df_gmr("report", str(daemon.pid), "--timeout", "3")
            heard = impostor.wait_text("RECEIVED", timeout=10)
            time.sleep(0.5)  # a report would have been under way
        assert refused.returncode == 1
        assert refused.err.strip() == (
            f"df-gmr: pid {daemon.pid}: the socket in {run_dir_of(svc)} "
            f"belongs to pid {impostor.pid} uid {svc.uid}, not to it; not "
            "signalled")
        assert "RECEIVED b''" in heard  # connected, then told nothing
        assert "RECEIVED b'df_gmr" not in heard
        assert daemon.reports() == []
        assert "Guru Meditation" not in daemon.text()  # not signalled
        assert daemon.alive()


# 7. A reused pid.


def test_an_entry_of_a_reused_pid_is_not_listed_signalled_and_is_removed():
    # Everything of a ready process but the start time: a process that
    # catches SIGUSR2 and listens at its name, whose entry says it
    # started one tick later than it did (the entry's process is gone,
    # its pid reused).
    svc = user(SERVICE)
    with private_dir(svc, "dfgmr-run-") as run_dir, \
            listener_of(svc, "--bind", f"{run_dir}/{{pid}}.sock",
                        "--entry", run_dir, "--start-offset", "1",
                        "--catch", "SIGUSR2") as reused:
        entry_path = f"{run_dir}/{reused.pid}.json"
        socket_path = f"{run_dir}/{reused.pid}.sock"
        with open(entry_path, "rb") as handle:
            kept = handle.read()
        os.link(socket_path, f"{run_dir}/kept.sock")
        asked = df_gmr("report", str(reused.pid), run_dir=run_dir)
        # Put them back (as they were), for the listing.
        for name in (entry_path, socket_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        os.link(f"{run_dir}/kept.sock", socket_path)
        with open(entry_path, "wb") as handle:
            handle.write(kept)
        os.chown(entry_path, svc.uid, svc.gid)
        listed = df_gmr("list", "--format", "json", run_dir=run_dir)
        time.sleep(0.5)  # a signal sent would have been caught
        assert reused.pid not in [found["pid"] for found in listed.listed()]
        assert not os.path.lexists(entry_path)  # removed by root's list
        assert not os.path.lexists(socket_path)
        assert asked.returncode == 1
        assert asked.err.strip() == (
            f"df-gmr: pid {reused.pid}: has not set up df_gmr (SIGUSR2 "
            "could kill it); not signalled")
        heard = reused.text()
        assert "GOT SIGUSR2" not in heard
        assert "CONNECTED" not in heard
        assert reused.alive()


# Denial of service of root's df-gmr by what another user names or writes.


def df_gmr_beside(attacker: User, attack: str, *args: str) -> Run:
    """Run ``attack`` as the attacker, then df-gmr as root, both with a
    /tmp of their own (a private mount namespace): what the attacker
    leaves in /tmp then reaches no other test's df-gmr."""
    probe = subprocess.run(["unshare", "--mount", "true"],
                           capture_output=True, timeout=10)
    if probe.returncode != 0:
        pytest.skip("needs a private mount namespace (unshare --mount)")
    # What this test run needs from the real /tmp (a checkout or a venv
    # under /tmp, as CI's may be) is bound back into the private one.
    keep = sorted({os.path.join("/tmp", path.split(os.sep)[2])
                   for path in (sys.prefix, SOURCE_ROOT,
                                os.path.realpath(sys.executable))
                   if path.startswith("/tmp/")})
    rebind = "".join(
        f"mkdir -p {shlex.quote(path)} && mount --bind "
        f"\"$old\"{shlex.quote(path[len('/tmp'):])} {shlex.quote(path)} "
        "|| exit 97\n" for path in keep)
    script = (
        "old=/run/dfgmr-real-tmp; mkdir -p \"$old\" || exit 97\n"
        "mount --bind /tmp \"$old\" || exit 97\n"
        "mount -t tmpfs -o mode=1777 dfgmr-test /tmp || exit 97\n"
        + rebind +
        f"{shlex.join([*attacker.setpriv(), 'sh', '-c', attack])} "
        "|| exit 98\n"
        f"exec {shlex.join([sys.executable, '-m', 'df_gmr.cli', *args])}\n")
    started = time.monotonic()
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         script], capture_output=True, timeout=30, env=cli_env())
    assert result.returncode not in (97, 98), result.stderr
    return Run(result.returncode, result.stdout, result.stderr,
               time.monotonic() - started)


@pytest.mark.parametrize("attack", [
    "mkdir -m 700 /tmp/df_gmr-²",
    "mkdir -m 700 /tmp/df_gmr-$(id -u) && echo '{}' > /tmp/df_gmr-$(id -u)/²."
    "json",
], ids=["run-dir-name", "entry-name"])
def test_unicode_digits_in_names_never_break_df_gmr(attack):
    attacker = user(ATTACKER)
    listing = df_gmr_beside(attacker, attack, "list")
    assert "Traceback" not in listing.err
    assert listing.returncode == 0, listing.err


def test_a_deeply_nested_entry_never_breaks_df_gmr():
    attacker = user(ATTACKER)
    listing = df_gmr_beside(
        attacker, "mkdir -m 700 /tmp/df_gmr-$(id -u) && "
                  "head -c 60000 /dev/zero | tr '\\0' '[' "
                  "> /tmp/df_gmr-$(id -u)/1.json", "list")
    assert "Traceback" not in listing.err
    assert listing.returncode == 0, listing.err


def test_a_deeply_nested_json_answer_never_breaks_df_gmr(tmp_path):
    svc = user(SERVICE)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000)
    with private_dir(svc, "dfgmr-run-") as run_dir, \
            listener_of(svc, "--bind", f"{run_dir}/{{pid}}.sock",
                        "--entry", run_dir, "--catch", "SIGUSR2",
                        "--answer-file", str(deep)) as fake:
        asked = df_gmr("report", str(fake.pid), "--format", "json",
                       "--timeout", "5", run_dir=run_dir)
    assert "Traceback" not in asked.err
    assert asked.returncode in (0, 1), asked.err
