"""df_gmr's threads never take a signal sent to the process."""

from __future__ import annotations

import json
import signal

from tests.daemons import run_python

SCENE = """
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import eventlet

eventlet.monkey_patch()

from df_gmr.guru_meditation_report import TextGuruMeditation


class Version:
    def version_string_with_package(self):
        return "1.0"


def blocked(status):
    for line in status.splitlines():
        if line.startswith("SigBlk:"):
            return int(line.split()[1], 16)


def child_mask():  # what a program started by a registered section gets
    return blocked(subprocess.run(["cat", "/proc/self/status"],
                                  capture_output=True, text=True).stdout)


real_thread = eventlet.patcher.original("_thread")
real_time = eventlet.patcher.original("time")
app_threads = []


def start_app_thread():  # a registered section that starts a native thread
    def run():
        app_threads.append(real_thread.get_native_id())
        real_time.sleep(60)

    real_thread.start_new_thread(run, ())
    deadline = time.monotonic() + 10
    while not app_threads and time.monotonic() < deadline:
        real_time.sleep(0.01)
    return "started"


log_dir = tempfile.mkdtemp()
TextGuruMeditation.register_section("Child", lambda: child_mask())
TextGuruMeditation.register_section("Starter", start_app_thread)
TextGuruMeditation.setup_autorun(Version(), log_dir=log_dir)
os.kill(os.getpid(), signal.SIGUSR2)
deadline = time.monotonic() + 30
while not os.listdir(log_dir) and time.monotonic() < deadline:
    eventlet.sleep(0.05)
report = open(os.path.join(log_dir, os.listdir(log_dir)[0])).read()
masks, names = {}, {}
for task in os.listdir("/proc/self/task"):
    with open(f"/proc/self/task/{task}/status") as handle:
        masks[int(task)] = blocked(handle.read())
    with open(f"/proc/self/task/{task}/comm") as handle:
        names[int(task)] = handle.read().strip()
main = masks.pop(os.getpid())
main_name = names.pop(os.getpid())
app_names = [names.pop(task) for task in app_threads]
del masks[app_threads[0]]
child = int(re.search(r"==== Child +====\\n=+\\n(\\d+)", report)[1])
print(json.dumps({"main": main, "others": list(masks.values()),
                  "child": child, "main_name": main_name,
                  "app_names": app_names, "names": sorted(names.values())}))
"""


def bit(signum: int) -> int:
    return 1 << (signum - 1)


def test_df_gmr_threads_block_process_signals_programs_they_start_do_not():
    found = json.loads(run_python(SCENE).stdout.splitlines()[-1])
    process_signals = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
                       signal.SIGCHLD, signal.SIGQUIT, signal.SIGUSR1]
    assert found["others"], "no df_gmr thread in the process"
    for mask in found["others"]:  # the reporting thread, after its report
        for signum in process_signals:
            assert mask & bit(signum), (signum.name, hex(mask))
        for signum in (signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE,
                       signal.SIGPIPE):  # its own faults stay its own
            assert not mask & bit(signum), (signum.name, hex(mask))
    for signum in process_signals:
        assert not found["main"] & bit(signum), signum.name
        # a registered section's program is not born with them blocked
        assert not found["child"] & bit(signum), (signum.name,
                                                  hex(found["child"]))


def test_df_gmr_threads_are_named_for_the_systems_tools():
    # top -H, ps -L: df_gmr's threads are told from the service's.
    found = json.loads(run_python(SCENE).stdout.splitlines()[-1])
    assert "gmr-reporting" in found["names"], found["names"]
    assert all(name.startswith("gmr-") for name in found["names"]), found
    assert not found["main_name"].startswith("gmr-")


def test_a_thread_a_registered_section_starts_is_named_as_the_services():
    # The OS gives a new thread its creator's name: one that the
    # application starts from a registered section (in df_gmr's sections
    # thread) must not pass for df_gmr's in top -H.
    found = json.loads(run_python(SCENE).stdout.splitlines()[-1])
    assert found["app_names"] == [found["main_name"]], found
