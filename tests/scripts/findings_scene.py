"""Scenes for the findings: a deadlock, contention, full pools, health.

Usage: findings_scene.py healthy|deadlock|contention|full-executor|
       full-green-pool
Builds the scene, then prints the report's JSON (run() in this thread).
"""
import json
import os
import sys
import threading
import time

from df_gmr import guru_meditation_report as gmr
from df_gmr import render
from df_gmr.reporter import reporter

scene = sys.argv[1]
if scene == "late-copy":  # the Threads section's module, before patching
    from df_gmr.runtime import natives  # noqa: F401
if scene in ("full-green-pool", "named-lock", "green-deadlock",
             "done-when", "with-contention", "with-deadlock",
             "green-db-pool", "named-and-with-deadlock", "late-copy"):
    import eventlet

    eventlet.monkey_patch()
gmr.TextGuruMeditation.setup_autorun("1", service_name="findings")


def deadlock_on_rlocks(module):
    """Start alpha and beta, deadlocked on two RLocks of ``module``."""
    first, second = module.RLock(), module.RLock()
    both_hold = module.Barrier(2)

    def cross(mine, theirs):
        with mine:
            both_hold.wait()
            with theirs:
                pass

    module.Thread(target=cross, args=(first, second), name="alpha",
                  daemon=True).start()
    module.Thread(target=cross, args=(second, first), name="beta",
                  daemon=True).start()


keep = []

if scene == "deadlock":
    deadlock_on_rlocks(threading)
elif scene == "contention":
    lock = threading.RLock()
    held = threading.Event()

    def hold():
        with lock:
            held.set()
            time.sleep(60)

    def want():
        held.wait()
        with lock:
            pass

    keep.append(threading.Thread(target=hold, name="holder", daemon=True))
    keep.extend(threading.Thread(target=want, name=f"wanter-{n}",
                                 daemon=True) for n in range(3))
elif scene == "named-lock":
    # Twenty greenthreads wait for the lockutils lock one of them holds,
    # as nova's compute_resources.
    import eventlet
    from oslo_concurrency import lockutils

    @lockutils.synchronized("compute_resources")
    def update(seconds):
        eventlet.sleep(seconds)

    eventlet.spawn(update, 60)
    eventlet.sleep(0.1)
    for _ in range(20):
        eventlet.spawn(update, 0)
    eventlet.sleep(0.3)
elif scene == "green-deadlock":
    # Two greenthreads, each inside one lockutils lock, wanting the other.
    import eventlet
    from oslo_concurrency import lockutils

    @lockutils.synchronized("b")
    def second():
        pass

    @lockutils.synchronized("a")
    def first_a():
        eventlet.sleep(0.1)
        second()

    @lockutils.synchronized("a")
    def inner_a():
        pass

    @lockutils.synchronized("b")
    def first_b():
        eventlet.sleep(0.1)
        inner_a()

    eventlet.spawn(first_a)
    eventlet.spawn(first_b)
    eventlet.sleep(0.4)
elif scene == "done-when":
    # The scene: a greenthread holds a named lock twenty others
    # wait for, and two native threads are deadlocked on two RLocks.
    import eventlet
    from oslo_concurrency import lockutils

    real = eventlet.patcher.original("threading")
    deadlock_on_rlocks(real)

    @lockutils.synchronized("compute_resources")
    def update(seconds):
        eventlet.sleep(seconds)

    eventlet.spawn(update, 60)
    eventlet.sleep(0.1)
    for _ in range(20):
        eventlet.spawn(update, 0)
    eventlet.sleep(0.3)
elif scene == "late-copy":
    # Two native threads deadlocked on RLocks of a copy of threading that
    # eventlet's patcher made after df_gmr's Threads module was imported
    # (before monkey patching) and after a first report: the copy's C
    # lock types are new type objects, and still locks.
    import eventlet

    reporter.build("first")
    real = eventlet.patcher.original("threading")
    deadlock_on_rlocks(real)
    time.sleep(0.3)
elif scene == "with-contention":
    # One greenthread sleeps inside 'with STORE.lock:', twenty wait.
    import eventlet

    class Store:
        def __init__(self):
            self.lock = threading.Lock()  # eventlet's, once patched

        def update(self, seconds):
            with self.lock:
                eventlet.sleep(seconds)

    STORE = Store()
    eventlet.spawn(STORE.update, 60)
    eventlet.sleep(0.1)
    for _ in range(20):
        eventlet.spawn(STORE.update, 0)
    eventlet.sleep(0.3)
elif scene == "with-deadlock":
    # Two greenthreads, each inside 'with' one lock, wanting the other.
    import eventlet

    first_lock, second_lock = threading.Lock(), threading.Lock()

    def cross(mine, theirs):
        with mine:
            eventlet.sleep(0.1)
            with theirs:
                pass

    eventlet.spawn(cross, first_lock, second_lock)
    eventlet.spawn(cross, second_lock, first_lock)
    eventlet.sleep(0.4)
elif scene == "named-and-with-deadlock":
    # One greenthread inside a lockutils lock wants a plain lock; the
    # plain lock's holder (inside 'with') wants the lockutils lock.
    import eventlet
    from oslo_concurrency import lockutils

    plain = threading.Lock()

    @lockutils.synchronized("resources")
    def named_then_plain():
        eventlet.sleep(0.1)
        with plain:
            pass

    @lockutils.synchronized("resources")
    def named_only():
        pass

    def plain_then_named():
        with plain:
            eventlet.sleep(0.1)
            named_only()

    eventlet.spawn(named_then_plain)
    eventlet.spawn(plain_then_named)
    eventlet.sleep(0.4)
elif scene == "hold-while-waiting":
    # One thread holds a Lock while it waits on another condition (the
    # condition's own lock is released by its wait, the Lock is not);
    # three threads want the Lock; others wait in 'with cond: cond.wait()'.
    held_lock, other, idle = (threading.Lock(), threading.Condition(),
                              threading.Condition())
    entered = threading.Event()

    def holder():
        with held_lock:
            with other:
                entered.set()
                other.wait()

    def wanter():
        entered.wait()
        with held_lock:
            pass

    def idler():
        with idle:
            idle.wait()

    keep.append(threading.Thread(target=holder, daemon=True))
    keep.extend(threading.Thread(target=wanter, daemon=True)
                for _ in range(3))
    keep.extend(threading.Thread(target=idler, daemon=True)
                for _ in range(5))
elif scene == "self-deadlock":
    # A thread inside 'with' a plain Lock takes it again; after the
    # block, another thread's frame stands past a finished 'with'.
    plain = threading.Lock()
    after_block = threading.Lock()
    done_with = threading.Event()

    def again():
        with plain:
            plain.acquire()

    def past():
        with after_block:
            pass
        done_with.wait()  # past the block: it holds nothing

    keep.append(threading.Thread(target=again, name="again", daemon=True))
    keep.append(threading.Thread(target=past, name="past", daemon=True))
elif scene == "mixed-deadlock":
    # Native threads: one inside 'with' a plain Lock wants an RLock, the
    # RLock's owner (exact) wants the plain Lock.
    plain, reentrant = threading.Lock(), threading.RLock()
    both_hold = threading.Barrier(2)

    def gamma():
        with plain:
            both_hold.wait()
            reentrant.acquire()

    def delta():
        with reentrant:
            both_hold.wait()
            with plain:
                pass

    keep.append(threading.Thread(target=gamma, name="gamma", daemon=True))
    keep.append(threading.Thread(target=delta, name="delta", daemon=True))
elif scene in ("db-pool", "green-db-pool"):
    # oslo.db's engines use SQLAlchemy's QueuePool: three connections
    # (2 + 1 overflow) held, four callers waiting for one.
    import tempfile

    import sqlalchemy
    from sqlalchemy.pool import QueuePool

    directory = tempfile.mkdtemp()
    engine = sqlalchemy.create_engine(
        f"sqlite:///{directory}/scene.db", poolclass=QueuePool,
        pool_size=2, max_overflow=1, pool_timeout=60)

    def hold():
        with engine.connect():
            time.sleep(60)

    def want():
        with engine.connect():
            pass

    if scene == "green-db-pool":
        for _ in range(3):
            eventlet.spawn(hold)
        eventlet.sleep(0.2)
        for _ in range(4):
            eventlet.spawn(want)
        eventlet.sleep(0.2)
    else:
        keep.extend(threading.Thread(target=hold, daemon=True)
                    for _ in range(3))
        for thread in keep:
            thread.start()
        time.sleep(0.2)
        keep[:] = [threading.Thread(target=want, daemon=True)
                   for _ in range(4)]
elif scene == "full-executor":
    import futurist

    executor = futurist.ThreadPoolExecutor(max_workers=2)
    for _ in range(5):
        executor.submit(time.sleep, 60)
elif scene == "full-green-pool":
    pool = eventlet.GreenPool(2)
    for _ in range(2):
        pool.spawn_n(eventlet.sleep, 60)
    for _ in range(3):
        eventlet.spawn(pool.spawn, eventlet.sleep, 60)
    eventlet.sleep(0.2)
for thread in keep:
    thread.start()
time.sleep(0.5)
built = reporter.build("test")
print(json.dumps({"findings": built.findings,
                  "text": render.finding_lines(built.findings)}), flush=True)
os._exit(0)  # the scene's threads block for good: no clean shutdown
