"""The heap scan (df_gmr not set up) keeps df_gmr's own threads apart."""

from __future__ import annotations

import json

from tests.daemons import run_python

SCENE = """
import json
import threading

import eventlet
import eventlet.hubs

from df_gmr.heapscan import scanner
from df_gmr.lifecycle import lifecycle

box = {}
ready, stop = threading.Event(), threading.Event()


def section_like():  # a registered section that makes a green call
    eventlet.sleep(0)
    box["hub"] = eventlet.hubs.get_hub()
    lifecycle.note_own_hub()
    ready.set()
    stop.wait(30)


lifecycle.start_thread("section", section_like)
ready.wait(30)
eventlet.sleep(0)  # the service's hub, in the main thread
scanner.scan()
hub = box["hub"]
found = {id(green) for green in scanner.greenlets()}
print(json.dumps([
    any(known is hub for known, _ in scanner.hubs()),
    id(hub.greenlet) in found,
    id(hub.greenlet.parent) in found,
    len(scanner.hubs()),
]))
stop.set()
"""


def test_own_threads_hubs_and_their_greenlets_are_not_the_services():
    result = run_python(SCENE)
    assert json.loads(result.stdout.splitlines()[-1]) == [
        False, False, False, 1]
