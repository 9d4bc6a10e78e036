"""The reporting thread's state across fork, and what an exit waits for."""

from __future__ import annotations

from tests.daemons import run_python

FORK_WHILE_BUILDING = """\
import os, sys, time
from df_gmr import trigger

def producer(label):
    print(os.getpid() == parent and "parent" or "child", "built", label,
          flush=True)
    if os.getpid() == parent:
        time.sleep(1.0)

parent = os.getpid()
trigger.set_producer(producer)
trigger.request("parent request")
time.sleep(0.2)  # the parent's reporting thread is inside the producer
print("building in the parent:", trigger.trigger.building.locked(),
      flush=True)
child = os.fork()
if child == 0:
    trigger.request("child request")
    deadline = time.monotonic() + 5
    while trigger.trigger.answered < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    os._exit(0)
os.waitpid(child, 0)
"""


def test_a_child_forked_while_its_parent_builds_a_report_builds_its_own():
    # The child inherited the lock held while a report is built; no
    # thread of its own would ever release it.
    lines = run_python(FORK_WHILE_BUILDING).stdout.splitlines()
    assert lines == ["parent built parent request",
                     "building in the parent: True",
                     "child built child request"], lines


STORM_AT_EXIT = """\
import threading, time
from df_gmr import signals, trigger

built = []

def producer(label):
    built.append(label)
    time.sleep(0.2)

trigger.set_producer(producer)
storm_ends = time.monotonic() + 4

def storm():
    while time.monotonic() < storm_ends:
        trigger.request("storm")
        time.sleep(0.01)

threading.Thread(target=storm, daemon=True).start()
time.sleep(0.1)
started = time.monotonic()
signals.worker_leaving()
waited = time.monotonic() - started
print(waited < 1.5, round(waited, 1), len(built) >= 1)
"""


def test_leaving_waits_for_the_reports_asked_before_not_for_a_storm():
    # A worker leaving during a storm of requests finishes what was asked
    # before it left (two reports at most: one being built, one asked
    # meanwhile), not every report the storm keeps asking for.
    done = run_python(STORM_AT_EXIT)
    fast, _waited, built = done.stdout.split()
    assert fast == "True" and built == "True", done.stdout
