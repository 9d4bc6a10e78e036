"""A running thread's stack is of one moment, however late it is read.

The snapshot reads every thread's innermost frame when a report begins
(its header counts them); the Threads section walks the stacks later.
A frame that has returned meanwhile still links to its caller, which has
moved on: walked from it, a stack would show a line calling a function
it does not call.  The scene reads the frames, lets a busy thread run,
then groups the threads, many times over.
"""

from __future__ import annotations

import json

from tests.daemons import outcome
from tests.daemons import run_python

SCENE = """
import json, threading, time
from df_gmr.runtime import Snapshot
from df_gmr.runtime.natives import Natives

stop = False

def inner():
    return 1

def outer():
    while not stop:
        inner()

calling_line = outer.__code__.co_firstlineno + 2  # inner()

worker = threading.Thread(target=outer, daemon=True)
worker.start()
time.sleep(0.05)
torn = seen = empty = twice = 0
for _ in range(150):
    snapshot = Snapshot(threading.get_ident())
    snapshot.frames()  # as a report's header does, at its start
    time.sleep(0.002)  # the worker runs meanwhile
    groups = Natives(snapshot).groups()
    # The worker once, however it moved (no group left behind empty).
    empty += sum(1 for group in groups if group["count"] < 1)
    twice += sum(worker.ident in group["ids"] for group in groups) != 1
    for group in groups:
        calls = [(frame["function"], frame["line"])
                 for frame in group["stack"]]
        names = [name for name, _ in calls]
        if "outer" in names and names[-1] == "inner":
            seen += 1
            torn += calls[names.index("outer")][1] != calling_line
    snapshot.release()
stop = True
worker.join(5)
print(json.dumps({"torn": torn, "seen": seen, "empty": empty,
                  "twice": twice}))
"""


def test_a_busy_threads_stack_never_joins_two_moments():
    result = run_python(SCENE, timeout=60)
    found = json.loads(result.stdout.splitlines()[-1])
    # The worker was caught inside inner() often enough to matter...
    assert found["seen"] >= 10, outcome(result)
    # ...and outer() always stood at its call of inner() then.
    assert found["torn"] == 0, outcome(result)
    assert found["empty"] == found["twice"] == 0, outcome(result)


HUB_SCENE = """
import json, threading, time
from df_gmr import greenlets
greenlets.install()
import eventlet
from df_gmr.runtime import Snapshot, greens

found = {}

def build():
    time.sleep(0.2)  # the main thread's hub is in its loop by then
    groups = greens.Greens(Snapshot(threading.get_ident())).groups()
    found["hub"] = [{"state": group["state"], "functions": [
        frame["function"] for frame in group["stack"]]}
        for group in groups if group["kind"] == "hub"]

builder = threading.Thread(target=build)  # not monkey-patched
builder.start()
eventlet.sleep(0.6)  # the hub runs: it waits for events
builder.join(5)
print(json.dumps(found))
"""


def test_a_running_hub_shows_its_threads_stack_now():
    result = run_python(HUB_SCENE, timeout=60)
    [hub] = json.loads(result.stdout.splitlines()[-1])["hub"]
    assert hub["state"] == "running", outcome(result)
    # Its loop, down to the wait for events: the main thread's stack now.
    assert "run" in hub["functions"], outcome(result)
    assert hub["functions"][-1] in ("wait", "do_poll", "poll"), \
        outcome(result)
