"""Build an eventlet scene, then print the hub and pools sections as JSON.

Usage: hub_pools_scene.py SCENE [--text] [--no-patch] [--late-install]
SCENE: pools, sockets, timers, thread_group, executor, tpool, fork,
idle.
Builds the two sections through report.build() with gc.get_objects()
forbidden, then prints one JSON document: {"data": {section: data},
"errors": [...], "text": {section: lines}, "facts": {...}}, ``facts``
being what the scene knows to expect; with --text, prints the rendered
report instead.
"""
import sys

PATCH = "--no-patch" not in sys.argv
LATE_INSTALL = "--late-install" in sys.argv

if not LATE_INSTALL:
    from df_gmr import greenlets
    from df_gmr import pools

    greenlets.install()
    pools.install()

import eventlet  # noqa: E402

if PATCH:
    eventlet.monkey_patch()

import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402

from df_gmr import greenlets  # noqa: E402
from df_gmr import pools  # noqa: E402
from df_gmr import render  # noqa: E402
from df_gmr import report  # noqa: E402
from df_gmr.report import ReportContext  # noqa: E402
from df_gmr.sections import eventlet_hub  # noqa: E402
from df_gmr.sections import green_pools  # noqa: E402

facts = {}
release = eventlet.event.Event()


def hold():
    release.wait()


def scene_pools():
    pool = eventlet.GreenPool(2)
    for _ in range(2):
        pool.spawn(hold)
    for _ in range(3):
        eventlet.spawn(pool.spawn, hold)
    pile = eventlet.GreenPile(4)
    for _ in range(3):
        pile.spawn(hold)
    eventlet.sleep(0)
    facts["pool"] = id(pool)
    facts["pile"] = id(pile)
    facts["pile_pool"] = id(pile.pool)
    return pool, pile


def scene_sockets():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    client = socket.socket()
    client.connect(server.getsockname())
    accepted, _ = server.accept()
    eventlet.spawn(accepted.recv, 10)
    eventlet.spawn(server.accept)
    eventlet.sleep(0)
    facts["server"] = f"127.0.0.1:{server.getsockname()[1]}"
    facts["client"] = f"127.0.0.1:{client.getsockname()[1]}"
    facts["server_fd"] = server.fileno()
    facts["accepted_fd"] = accepted.fileno()
    return server, client, accepted


def scene_timers():
    def later():
        pass

    def sleeper():
        eventlet.sleep(30)

    hub = eventlet.hubs.get_hub()
    green = eventlet.spawn(sleeper)
    eventlet.sleep(0)
    eventlet.spawn_after(20, later)
    canceled = hub.schedule_call_global(40, later)
    canceled.cancel()
    # Due in the past: the hub has not had a chance to run it yet.
    hub.schedule_call_global(-2, later)
    facts["sleeper"] = id(green)
    facts["main_hub_greenlet"] = id(hub.greenlet)
    return green


def scene_thread_group():
    from oslo_service import loopingcall
    from oslo_service import threadgroup

    def tick():
        pass

    def dynamic_tick():
        return 5

    group = threadgroup.ThreadGroup(3)
    group.add_timer_args(7.5, tick, initial_delay=0)
    group.add_thread(hold)
    dynamic = loopingcall.DynamicLoopingCall(dynamic_tick)
    dynamic.start(periodic_interval_max=9)
    eventlet.sleep(0.05)
    facts["group"] = id(group)
    facts["dynamic"] = id(dynamic)
    return group, dynamic


def scene_executor():
    import futurist

    executor = futurist.GreenThreadPoolExecutor(max_workers=2)
    for _ in range(5):
        executor.submit(hold)
    eventlet.sleep(0)
    facts["executor"] = id(executor)
    return executor


def scene_tpool():
    from eventlet import tpool

    threading = eventlet.patcher.original("threading")
    started = threading.Event()
    stop = threading.Event()

    def busy():
        started.set()
        stop.wait(30)

    eventlet.spawn(tpool.execute, busy)
    for _ in range(200):
        if started.is_set():
            break
        eventlet.sleep(0.01)
    facts["stop"] = "set by the scene"
    return stop


def scene_fork():
    old_hub = eventlet.hubs.get_hub()
    eventlet.sleep(0)
    # Pending when the child leaves this hub behind: due, never fired.
    old_hub.schedule_call_global(0.05, lambda: None)
    child = os.fork()
    if child:
        _, status = os.waitpid(child, 0)
        os._exit(os.waitstatus_to_exitcode(status))
    # As oslo.service's ProcessLauncher does in each worker.
    eventlet.hubs.use_hub()
    eventlet.sleep(0.1)  # past the old hub's timer
    facts["old_hub_greenlet"] = id(old_hub.greenlet)
    facts["new_hub_greenlet"] = id(eventlet.hubs.get_hub().greenlet)
    return old_hub


SCENES = {
    "pools": scene_pools,
    "sockets": scene_sockets,
    "timers": scene_timers,
    "thread_group": scene_thread_group,
    "executor": scene_executor,
    "tpool": scene_tpool,
    "fork": scene_fork,
    "idle": lambda: eventlet.sleep(0),
}

kept = SCENES[sys.argv[1]]()
if LATE_INSTALL:
    greenlets.install()
    pools.install()


def no_heap_scan(*args, **kwargs):
    raise AssertionError("gc.get_objects() called while building a report")


gc.get_objects = no_heap_scan
built = report.build(ReportContext(), [eventlet_hub.SECTION,
                                       green_pools.SECTION])
if "--text" in sys.argv:
    print(render.as_text(built, {section.name: section for section in (
        eventlet_hub.SECTION, green_pools.SECTION)}))
else:
    print(json.dumps({
        "data": {result.name: result.data for result in built.sections},
        "errors": [result.error for result in built.sections
                   if result.error],
        "text": {section.name: section.format_lines(result.data)
                 for section, result in zip(
                     (eventlet_hub.SECTION, green_pools.SECTION),
                     built.sections, strict=True)},
        "facts": facts,
    }))
if sys.argv[1] == "tpool":
    kept.set()
