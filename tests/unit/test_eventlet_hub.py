"""The Eventlet Hub section: hubs, listeners and timers of small scenes.

Each scene runs in a fresh interpreter (tests/scripts/hub_pools_scene.py)
so that monkey patching never leaks into the pytest process; the scene
forbids gc.get_objects() while the report is built.  Each scene runs once
(the ``hub_pools_scene`` fixture); each test reads its part of it.
"""

from __future__ import annotations

from typing import Any

from tests.daemons import run_python


def hubs(scene: dict[str, Any]) -> list[dict[str, Any]]:
    return scene["data"]["eventlet_hub"]["hubs"]


def text(scene: dict[str, Any]) -> str:
    """Return the section's text with wrapped lines joined by one space."""
    return " ".join(" ".join(scene["text"]["eventlet_hub"]).split())


def test_without_eventlet_the_section_says_why():
    code = (
        "import sys\n"
        "from df_gmr.report import ReportContext\n"
        "from df_gmr.sections import eventlet_hub as section\n"
        "data = section.collect(ReportContext())\n"
        "print(section.SECTION.lines(data)[0])\n"
        "print('eventlet' in sys.modules)\n"
    )
    assert run_python(code).stdout.splitlines() == [
        "not available: eventlet is not loaded in this process", "False"]


def test_main_thread_hub_is_live_and_marked_main(hub_pools_scene):
    scene = hub_pools_scene("idle")
    data = scene["data"]["eventlet_hub"]
    assert data["monkey_patched"] == {"thread": True, "socket": True,
                                      "time": True}
    [hub] = hubs(scene)
    assert hub["main_thread"] is True
    assert hub["status"] == "live"
    assert hub["class"].startswith("eventlet.hubs.")
    assert hub["running"] is True and hub["stopping"] is False
    assert hub["greenlet"]["state"] == "parked"
    assert hub["activity"] == "the main greenlet is running"
    assert hub["running_at"]["function"] == "<module>"
    assert "(main thread)" in text(scene)


def test_hubs_are_reported_without_monkey_patching(hub_pools_scene):
    scene = hub_pools_scene("timers", "--no-patch")
    data = scene["data"]["eventlet_hub"]
    assert data["monkey_patched"] == {"thread": False, "socket": False,
                                      "time": False}
    assert len(hubs(scene)) == 1
    assert "monkey-patched: thread no, socket no, time no" in text(scene)


def test_listeners_show_fd_peer_address_and_waiting_greenlet(hub_pools_scene):
    scene = hub_pools_scene("sockets")
    facts = scene["facts"]
    by_fd = {item["fd"]: item for item in hubs(scene)[0]["listeners"]}
    listening = by_fd[facts["server_fd"]]
    assert listening["mode"] == "read"
    assert listening["fd_is"] == f"tcp socket listening on {facts['server']}"
    accepted = by_fd[facts["accepted_fd"]]
    assert accepted["fd_is"] == (f"tcp socket {facts['server']} -> "
                                 f"{facts['client']} (connected)")
    assert isinstance(accepted["greenlet"], int)
    assert f"tcp socket {facts['server']} -> {facts['client']}" in \
        text(scene)


def test_timers_are_counted_canceled_and_listed_by_due_time(hub_pools_scene):
    scene = hub_pools_scene("timers")
    timers = hubs(scene)[0]["timers"]
    assert timers["count"] == timers["pending"] + timers["canceled"]
    assert timers["canceled"] >= 1
    due = [timer["due_in"] for timer in timers["next"]]
    assert due == sorted(due)
    sleeper = [timer for timer in timers["next"]
               if timer["greenlet"] == scene["facts"]["sleeper"]]
    assert len(sleeper) == 1
    assert 25 < sleeper[0]["due_in"] <= 30
    assert sleeper[0]["callback"].endswith(".switch")
    started = [timer for timer in timers["next"] if timer.get("starts")]
    assert started[0]["starts"].endswith("scene_timers.<locals>.later")
    assert 15 < started[0]["due_in"] <= 20


def test_overdue_timer_marks_the_hub_late(hub_pools_scene):
    scene = hub_pools_scene("timers")
    timers = hubs(scene)[0]["timers"]
    assert timers["overdue"] == 1
    assert timers["max_overdue"] >= 1.9
    assert timers["late"] is True
    assert timers["next"][0]["due_in"] < 0
    assert "LATE: timers overdue by up to" in text(scene)


def test_hub_from_before_fork_is_stale_and_the_new_one_live(hub_pools_scene):
    scene = hub_pools_scene("fork")
    facts = scene["facts"]
    by_greenlet = {hub["greenlet"]["id"]: hub for hub in hubs(scene)}
    live = by_greenlet[facts["new_hub_greenlet"]]
    stale = by_greenlet[facts["old_hub_greenlet"]]
    assert live["status"] == "live" and live["main_thread"]
    assert stale["status"] == "stale (from before fork)"
    assert stale["created_by_pid"] != live["created_by_pid"]
    assert hubs(scene)[0] == live  # the live hub comes first
    # Its timer is past its time, but the stale hub never runs again: it
    # is never due, not overdue (nothing blocks that hub), in JSON too.
    timers = stale["timers"]
    assert timers["pending"] == 1 and timers["overdue"] == 0
    assert timers["max_overdue"] == 0.0 and timers["late"] is False
    assert timers["next"][0]["due_in"] is None
    assert "never due (1 of 1): never " in text(scene)


def test_text_fits_in_80_columns(hub_pools_scene):
    for name in ("sockets", "timers", "fork"):
        for line in hub_pools_scene(name)["text"]["eventlet_hub"]:
            assert len(line) <= 80, line


def test_a_timer_due_this_instant_is_due_in_zero_never_minus_zero():
    # A hub clock read a hair after the timer's due time rounds to -0.0,
    # which the report would print as "in -0.000s" (seen on nova).
    output = run_python(
        "import greenlet\n"
        "from df_gmr.runtime import hubs\n"
        "class Timer:\n"
        "    def __init__(self, callback):\n"
        "        self.called = False\n"
        "        self.seconds = 0.01\n"
        "        self.tpl = (callback, (), {})\n"
        "class Hub:\n"
        "    def clock(self):\n"
        "        return 100.0001\n"
        "hub = Hub()\n"
        "green = greenlet.greenlet(lambda: None)\n"
        "hub.timers = [(100.0, Timer(green.switch))]\n"
        "hub.next_timers = []\n"
        "[timer] = hubs._read_hub(hub, 1, 'live').timers\n"
        "print(repr(timer.due_in), timer.greenlet is green)\n").stdout
    assert output.split() == ["0.0", "True"]


HUB_READING = """
import gc, json
from df_gmr import greenlets
greenlets.install()
import eventlet
from eventlet.hubs import get_hub
from eventlet.hubs import timer as timer_module
from df_gmr.runtime import Snapshot

class OwnTimer(timer_module.Timer):
    pass

def sleeper(seconds):
    eventlet.sleep(seconds)

for seconds in (30, 40):
    eventlet.spawn(sleeper, seconds)
local = eventlet.greenthread.spawn_after_local(50, sleeper, 1)
hub = get_hub()
own = OwnTimer(60, print, "own")
hub.add_timer(own)
canceled = hub.schedule_call_global(70, print, "canceled")
canceled.cancel()
eventlet.sleep(0)
[reading] = Snapshot().hubs()
ours = (timer_module.Timer, timer_module.LocalTimer)
print(json.dumps({
    "seconds": sorted(timer.seconds for timer in reading.timers),
    "callbacks": sorted(getattr(timer.callback, "__name__", "?")
                        for timer in reading.timers),
    # A timer whose __dict__ was read holds a dict of its own (Python
    # 3.11 keeps instance attributes inline until then).
    "with_dicts": sorted(type(timer).__name__ for _, timer in
                         [*hub.timers, *hub.next_timers]
                         if any(type(referent) is dict for referent in
                                gc.get_referents(timer))),
}))
"""


def test_hub_timers_are_read_without_making_their_dicts():
    import json

    result = run_python(HUB_READING)
    found = json.loads(result.stdout.splitlines()[-1])
    # The canceled timer is not pending; the others all are, read right.
    assert found["seconds"] == [30, 40, 50, 60], result.stdout
    assert found["callbacks"] == ["print", "switch", "switch", "switch"]
    # eventlet's own timers are read by attribute; only the subclass,
    # which may hold anything, through its __dict__.
    assert found["with_dicts"] == ["OwnTimer"], result.stdout
