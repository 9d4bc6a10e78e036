"""Greenthreads in every kind of wait, for the Green Threads tests.

Usage: green_scene.py LOG_DIR [--freeze] [--event-waiters N]
Sets df_gmr up, spawns, then prints 'READY'.  With --freeze, 50 more
greenthreads exist before set-up, and the heap is frozen (gc.freeze(), as
oslo.service's ProcessLauncher does) after everything was spawned.
"""
import eventlet

eventlet.monkey_patch()

import gc  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

from eventlet import greenpool  # noqa: E402
from eventlet import queue  # noqa: E402
from eventlet import semaphore  # noqa: E402
from eventlet import tpool  # noqa: E402
from oslo_config import cfg  # noqa: E402
from oslo_context import context  # noqa: E402
from oslo_service import threadgroup  # noqa: E402

from df_gmr import guru_meditation_report as gmr  # noqa: E402
from df_gmr import opts as gmr_opts  # noqa: E402

log_dir = sys.argv[1]
waiters = 1000
if "--event-waiters" in sys.argv:
    waiters = int(sys.argv[sys.argv.index("--event-waiters") + 1])
early = eventlet.event.Event()


def early_waiter():
    early.wait()


if "--freeze" in sys.argv:  # greenthreads that exist before set-up
    for _ in range(50):
        eventlet.spawn(early_waiter)
    eventlet.sleep(0)

conf = cfg.ConfigOpts()
gmr_opts.set_defaults(conf)
conf([], project="green")
conf.set_override("format", "json", group="df_gmr")
gmr.TextGuruMeditation.setup_autorun("1", service_name="green",
                                     log_dir=log_dir, conf=conf)

never = eventlet.event.Event()
held = semaphore.Semaphore(0)
lock = eventlet.lock.Lock()
lock.acquire()
empty = queue.Queue()
full = queue.Queue(maxsize=1)
full.put("x")


def event_waiter():
    never.wait()


def sleeper():
    eventlet.sleep(3600)


def timed_sleeper():
    # Two timers: the Timeout's (sooner, it throws) and the sleep's.
    with eventlet.Timeout(1800):
        eventlet.sleep(2700)


def semaphore_waiter():
    held.acquire()


def lock_waiter():
    lock.acquire()


def queue_getter():
    empty.get()


def queue_putter():
    full.put("y")


def joiner(other):
    other.wait()


def tpool_caller():
    tpool.execute(lambda: eventlet.patcher.original("time").sleep(3600))


def either_way(flag):
    # Two calls on one line: parked at two instructions of the same line.
    return never.wait() if flag else never.wait(None)


def with_request():
    context.RequestContext(request_id="req-1234abcd")
    never.wait()


listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
client = socket.create_connection(listener.getsockname())
server, _ = listener.accept()


def reader():
    server.recv(10)


for _ in range(waiters):
    eventlet.spawn(event_waiter)
eventlet.spawn(sleeper)
eventlet.spawn(timed_sleeper)
eventlet.spawn(semaphore_waiter)
eventlet.spawn(lock_waiter)
eventlet.spawn(queue_getter)
eventlet.spawn(queue_putter)
target = eventlet.spawn(sleeper)
eventlet.spawn(joiner, target)
eventlet.spawn(tpool_caller)
eventlet.spawn(with_request)
for flag in (True, False, True):
    eventlet.spawn(either_way, flag)
eventlet.spawn(reader)
pool = greenpool.GreenPool(4)
for _ in range(2):
    pool.spawn(sleeper)  # SPAWN-SITE GreenPool
group = threadgroup.ThreadGroup()
group.add_thread(sleeper)  # SPAWN-SITE ThreadGroup
eventlet.spawn_after(3600, sleeper)  # not started yet
eventlet.sleep(0.2)
if "--freeze" in sys.argv:
    gc.freeze()
print("READY", flush=True)
while True:
    eventlet.sleep(1)
