"""A stand-in for an OpenStack service in threading mode, for the tests.

Usage: threading_standin.py LOG_DIR [--worker-format text|json]
       threading_standin.py LOG_DIR --eventlet

Threading mode (the default): oslo.service's threading backend, a
ProcessLauncher (cotyledon, forked) with one worker, df_gmr set up with
``setup_autorun`` (reports to LOG_DIR) before the launcher starts.  The
worker's service starts what a threading-mode service runs (an
oslo.messaging RPC server with the threading executor on the fake driver,
with one call in progress; a fixed and a dynamic looping call; a futurist
ThreadPoolExecutor of 2 workers with 2 long tasks running and 3 queued)
and one named thread waiting in each way a native thread waits (a Lock,
an RLock, a queue, an Event, a Condition, a Semaphore, a Barrier, a
Future, a join, a selector, an accept, a recv, a sleep, a subprocess).
The parent prints 'READY parent <pid>'; the worker prints 'SCENE <json>'
(what the test checks against: thread names, ports, the child's pid) and
then 'READY worker <pid>'.  ``--worker-format json`` makes the worker's
reports JSON (DF_GMR_FORMAT in the worker only; the parent's stay text).

Eventlet mode (``--eventlet``): one monkey-patched eventlet process with a
greenthread busy in ``eventlet.tpool.execute`` (its tpool native thread
blocked in a real sleep), greenthreads sleeping and waiting on an event,
and one plain native thread; prints 'SCENE <json>' and 'READY <pid>'.
"""
import sys

if "--eventlet" in sys.argv:
    import eventlet

    eventlet.monkey_patch()

import json
import os
import queue
import selectors
import socket
import subprocess
import threading
import time

from oslo_config import cfg

from df_gmr import guru_meditation_report as gmr
from df_gmr import opts as gmr_opts

LONG = 3600
#: Set at exit only: everything below waits for it, or forever.
stop = threading.Event()


def setup(log_dir, project):
    conf = cfg.CONF  # as services do (oslo.messaging registers there)
    gmr_opts.set_defaults(conf)
    conf([], project=project)
    gmr.TextGuruMeditation.setup_autorun(
        "1.0", service_name=project, log_dir=log_dir, conf=conf)
    return conf


def settle(threads, seconds=5.0):
    """Wait until each thread sits in its wait (its frame stops moving)."""
    deadline = time.monotonic() + seconds
    previous = None
    while time.monotonic() < deadline:
        frames = sys._current_frames()
        now = {t.ident: (frames[t.ident].f_code, frames[t.ident].f_lasti)
               for t in threads if t.ident in frames}
        if now == previous and len(now) == len(threads):
            return
        previous = now
        time.sleep(0.1)


# --- threading mode: what each named thread does ---------------------------

plain_lock = threading.Lock()
rlock = threading.RLock()
work_queue = queue.Queue(maxsize=10)
never = threading.Event()
either = threading.Event()
condition = threading.Condition()
semaphore = threading.Semaphore(0)
barrier = threading.Barrier(3)
held = {name: threading.Event() for name in ("lock", "rlock")}


def hold_lock():
    with plain_lock:
        held["lock"].set()
        stop.wait()


def want_lock():
    plain_lock.acquire()


def hold_rlock():
    with rlock:
        held["rlock"].set()
        stop.wait()


def want_rlock():
    with rlock:
        pass


def get_from_queue():
    work_queue.get()


def wait_for_event():
    never.wait()


def wait_either_way(flag):
    # Two calls on one line: parked at two instructions of the same line.
    return either.wait() if flag else either.wait(None)


def wait_on_condition():
    with condition:
        condition.wait()


def acquire_semaphore():
    semaphore.acquire()


def wait_at_barrier():
    barrier.wait()


def wait_for_result(future):
    future.result()


def join_thread(other):
    other.join()


def select_on_pair(pair_end):
    selector = selectors.DefaultSelector()
    selector.register(pair_end, selectors.EVENT_READ)
    selector.select()


def accept_connection(listener):
    listener.accept()


def read_socket(connection):
    connection.recv(1024)


def sleep_long():
    time.sleep(3600)


def wait_for_child(child):
    child.wait()


def sync_power_states():
    stop.wait()


def heal_instance_info_cache():
    stop.wait()


def queued_task():
    pass


def report_state():
    return None


def run_periodic_tasks():
    return 30  # seconds until the next run


class StandinEndpoint:
    """The RPC endpoint: one call stays in progress."""

    def __init__(self):
        self.called = threading.Event()

    def build_and_run_instance(self, context, instance):
        self.called.set()
        stop.wait()


def start_rpc(conf):
    import oslo_messaging

    # As nova does (nova/rpc.py): its targets leave the exchange out.
    oslo_messaging.set_transport_defaults(control_exchange="standin")
    transport = oslo_messaging.get_rpc_transport(conf, url="fake:/")
    target = oslo_messaging.Target(topic="standin", server="host-1")
    endpoint = StandinEndpoint()
    server = oslo_messaging.get_rpc_server(
        transport, target, [endpoint], executor="threading")
    server.start()
    client = oslo_messaging.get_rpc_client(
        transport, oslo_messaging.Target(topic="standin", server="host-1"))
    client.cast({}, "build_and_run_instance", instance="vm-1")
    if not endpoint.called.wait(10):
        raise RuntimeError("the RPC call never arrived")
    return server


def start_looping_calls():
    from oslo_service import loopingcall

    fixed = loopingcall.FixedIntervalLoopingCall(report_state)
    fixed.start(interval=60)
    dynamic = loopingcall.DynamicLoopingCall(run_periodic_tasks)
    dynamic.start(periodic_interval_max=120)
    return fixed, dynamic


def start_executor():
    import futurist

    executor = futurist.ThreadPoolExecutor(max_workers=2)
    executor.name = "MainProcess.cell_worker"  # nova names it afterwards
    running = [executor.submit(sync_power_states),
               executor.submit(heal_instance_info_cache)]
    deadline = time.monotonic() + 10
    while sum(f.running() for f in running) < 2:
        if time.monotonic() > deadline:
            raise RuntimeError("the executor's tasks never started")
        time.sleep(0.01)
    queued = [executor.submit(queued_task) for _ in range(3)]
    return executor, queued


def start_named(name, target, *args):
    thread = threading.Thread(target=target, args=args, name=name,
                              daemon=True)
    thread.start()
    return thread


def build_threading_scene(conf):
    scene = {"pid": os.getpid()}
    server = start_rpc(conf)
    calls = start_looping_calls()
    executor, queued = start_executor()
    threads = [start_named("lock-holder", hold_lock),
               start_named("rlock-holder", hold_rlock)]
    for event in held.values():
        event.wait(10)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    pair = socket.socketpair()
    child = subprocess.Popen(["sleep", str(LONG)])
    threads += [
        start_named("lock-waiter", want_lock),
        start_named("rlock-waiter", want_rlock),
        start_named("queue-getter", get_from_queue),
        start_named("event-waiter", wait_for_event),
        start_named("either-way-1", wait_either_way, True),
        start_named("either-way-2", wait_either_way, False),
        start_named("condition-waiter", wait_on_condition),
        start_named("semaphore-waiter", acquire_semaphore),
        start_named("barrier-waiter", wait_at_barrier),
        start_named("future-waiter", wait_for_result, queued[0]),
        start_named("joiner", join_thread, threads[0]),
        start_named("selector-waiter", select_on_pair, pair[0]),
        start_named("acceptor", accept_connection, listener),
        start_named("reader", read_socket, accepted),
        start_named("sleeper", sleep_long),
        start_named("child-waiter", wait_for_child, child),
    ]
    settle(threads)
    scene.update({
        "threads": {t.name: t.ident for t in threads},
        "listen_port": listener.getsockname()[1],
        "reader_peer_port": client.getsockname()[1],
        "child_pid": child.pid,
        "selector_fd": pair[0].fileno(),
    })
    # Kept referenced: nothing here may be collected while reports run.
    scene_objects.extend([server, calls, executor, queued, listener,
                          client, accepted, pair, child])
    return scene


scene_objects = []


def main_threading(log_dir, worker_format):
    from oslo_service import backend

    backend.init_backend(backend.BackendType.THREADING)
    from oslo_service import service

    class StandinService(service.Service):
        def __init__(self, conf):
            super().__init__()
            self.conf = conf

        def start(self):
            super().start()
            if worker_format:
                os.environ["DF_GMR_FORMAT"] = worker_format
            scene = build_threading_scene(self.conf)
            print("SCENE " + json.dumps(scene), flush=True)
            print(f"READY worker {os.getpid()}", flush=True)

    conf = setup(log_dir, "standin")
    launcher = service.ProcessLauncher(conf)
    launcher.launch_service(StandinService(conf), workers=1)
    print(f"READY parent {os.getpid()}", flush=True)
    launcher.wait()


# --- eventlet mode ----------------------------------------------------------

def main_eventlet(log_dir):
    from eventlet import patcher
    from eventlet import tpool

    setup(log_dir, "mixed")
    real_sleep = patcher.original("time").sleep
    event = eventlet.event.Event()

    def blocking_call():
        real_sleep(LONG)

    def offload():
        tpool.execute(blocking_call)

    def green_sleeper():
        eventlet.sleep(LONG)

    def green_waiter():
        event.wait()

    eventlet.spawn(offload)
    for _ in range(3):
        eventlet.spawn(green_waiter)
    eventlet.spawn(green_sleeper)
    native = patcher.original("threading").Thread(
        target=real_sleep, args=(LONG,), name="native-sleeper", daemon=True)
    native.start()
    eventlet.sleep(0.3)
    print("SCENE " + json.dumps({"pid": os.getpid(),
                                 "native": native.ident}), flush=True)
    print(f"READY {os.getpid()}", flush=True)
    while True:
        eventlet.sleep(1)


if __name__ == "__main__":
    if "--eventlet" in sys.argv:
        main_eventlet(sys.argv[1])
    else:
        chosen = None
        if "--worker-format" in sys.argv:
            chosen = sys.argv[sys.argv.index("--worker-format") + 1]
        main_threading(sys.argv[1], chosen)
