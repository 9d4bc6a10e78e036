"""A thread running eventlet's hub code is not said to run the service's."""

from __future__ import annotations

import os
import threading

import eventlet.hubs

from df_gmr.runtime import Snapshot
from df_gmr.runtime.natives import Natives

TIMEOUT = 10.0
# A loop that makes no call: the thread is found "running Python code".
SPIN = """
started.set()
while not stop[0]:
    pass
"""


def spinning_in(filename: str) -> tuple[threading.Thread, list[bool]]:
    started, stop = threading.Event(), [False]
    code = compile(SPIN, filename, "exec")
    thread = threading.Thread(
        target=exec, args=(code, {"started": started, "stop": stop}),
        daemon=True)
    thread.start()
    assert started.wait(TIMEOUT)
    return thread, stop


def wait_kind_of(thread: threading.Thread) -> str:
    snapshot = Snapshot()
    try:
        for group in Natives(snapshot).groups():
            if thread.ident in group["ids"]:
                return str(group["wait_kind"])
    finally:
        snapshot.release()
    raise AssertionError("thread not listed")


def test_a_thread_running_in_eventlets_hubs_runs_hub_code():
    hubs = os.path.dirname(eventlet.hubs.__file__)
    for filename, expected in (
            (os.path.join(hubs, "spin.py"), "running eventlet's hub code"),
            (os.path.join(os.path.dirname(__file__), "spin.py"),
             "running Python code")):
        thread, stop = spinning_in(filename)
        try:
            assert wait_kind_of(thread) == expected, filename
        finally:
            stop[0] = True
            thread.join(TIMEOUT)
        assert not thread.is_alive()
