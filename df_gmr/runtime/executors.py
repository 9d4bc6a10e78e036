"""Pools of native threads, found where the libraries keep them.

No heap scan and no hook at submit: the standard library and futurist
already list their worker threads (``concurrent.futures.thread.
_threads_queues``, ``futurist._thread._to_be_cleaned``), and each
worker's frames name its executor, its task and, for oslo.service's
threading backend, its looping call; oslo.messaging's poll threads name
their RPC server.  A task's start is stamped by a wrapper of the work
item's ``run`` (in the worker, so submitting costs nothing more): the age
of a running task is that stamp; an item started before set-up has no
stamp and its age says "unknown".

Everything is read from stored attributes and frame locals; the only
calls are the standard library's weak references and C methods of its
own C types (``SimpleQueue.qsize``).
"""

from __future__ import annotations

import functools
import os
import sys
import time
from types import FrameType
from typing import Any
import weakref

from df_gmr import _imports
from df_gmr import naming
from df_gmr import pools

STARTED_ATTR = "_df_gmr_started"
#: (module, class) of work items whose ``run`` gets the start stamp.
WORK_ITEMS = (("concurrent.futures.thread", "_WorkItem"),
              ("futurist._utils", "WorkItem"))


#: oslo.messaging servers, registered as they are created (whatever
#: their executor: a poll greenthread under eventlet has no thread frame
#: to be found by).
_servers: weakref.WeakSet[Any] = weakref.WeakSet()


def install() -> None:
    """Stamp work items' start and register oslo.messaging servers, once
    their modules load (idempotent)."""
    for module_name, class_name in WORK_ITEMS:
        _imports.when_imported(
            module_name, functools.partial(_stamp_runs, class_name))
    _imports.when_imported("oslo_messaging.server", _track_servers)


def _track_servers(module: Any) -> None:
    server_class = getattr(module, "MessageHandlingServer", None)
    if server_class is not None:
        _imports.wrap_init(server_class, "_df_gmr_tracked",
                           after=lambda self, *args, **kwargs:
                           _servers.add(self))


def _stamp_runs(class_name: str, module: Any) -> None:
    item_class = getattr(module, class_name, None)
    if item_class is None or getattr(item_class, "_df_gmr_stamped", False):
        return
    run = item_class.run
    clock = time.monotonic
    # The library's own class sets the stamp as a plain attribute (a
    # store the interpreter specializes: a task starts with the caches
    # cold, and ``self.__dict__[...]`` cost 3% of a no-op task more); a
    # subclass, which could define __setattr__, through its __dict__.
    plain = item_class if item_class.__setattr__ is object.__setattr__ \
        else None

    @functools.wraps(run)
    def stamped_run(self: Any) -> Any:
        if type(self) is plain:
            self._df_gmr_started = clock()  # STARTED_ATTR
        else:
            self.__dict__[STARTED_ATTR] = clock()
        return run(self)

    item_class.run = stamped_run
    item_class._df_gmr_stamped = True


def _frame_named(frame: FrameType | None, filename: str, function: str
                 ) -> FrameType | None:
    """Return the innermost frame of ``function`` in a file so named."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == function and os.path.basename(
                code.co_filename) == filename:
            return frame
        frame = frame.f_back
    return None


def _worker_threads(module_name: str, registry_name: str) -> list[Any]:
    registry = getattr(sys.modules.get(module_name), registry_name, None)
    data = getattr(registry, "data", None)  # a WeakKeyDictionary's refs
    if not isinstance(data, dict):
        return []
    threads = []
    for reference in list(data):
        thread = reference()
        if thread is not None:
            threads.append(thread)
    return threads


def read(frames: dict[int, FrameType]) -> dict[str, list[dict[str, Any]]]:
    """Return the executors, looping calls and RPC servers of the process."""
    executors: dict[int, dict[str, Any]] = {}
    looping: list[dict[str, Any]] = []
    now = time.monotonic()
    workers = ([("concurrent.futures", t) for t in _worker_threads(
        "concurrent.futures.thread", "_threads_queues")]
        + [("futurist", t) for t in _worker_threads(
            "futurist._thread", "_to_be_cleaned")])
    for library, thread in workers:
        ident = naming.stored_attribute(thread, "_ident")
        frame = frames.get(ident) if type(ident) is int else None
        if frame is None:
            continue  # listed, but not running here (a parent's, before fork)
        executor = _executor_of(library, thread, frame)
        if executor is None:
            continue
        entry = executors.setdefault(id(executor), _describe_executor(
            library, executor))
        task = _running_task(library, frame, now)
        if task is not None:
            task["thread"] = ident
            task["thread_name"] = naming.stored_attribute(thread, "_name")
            entry["running"].append(task)
            call = _looping_call(frame, now)
            if call is not None:
                call["thread"] = ident
                looping.append(call)
                entry["looping_call"] = True
    for entry in executors.values():
        entry["busy"] = len(entry["running"])
    return {"executors": sorted(executors.values(),
                                key=lambda entry: entry["id"]),
            "looping_calls": looping,
            "rpc_servers": _rpc_servers(frames, now)}


def _executor_of(library: str, thread: Any, frame: FrameType | None
                 ) -> Any:
    if library == "futurist":
        reference = naming.stored_attribute(thread, "executor_ref")
    else:  # the worker function's local holds the weak reference
        worker = _frame_named(frame, "thread.py", "_worker")
        reference = worker.f_locals.get("executor_reference") \
            if worker is not None else None
    return reference() if type(reference).__name__ in (
        "ReferenceType", "KeyedRef") else None


def _describe_executor(library: str, executor: Any) -> dict[str, Any]:
    threads = naming.stored_attribute(executor, "_threads")
    if threads is None:
        threads = naming.stored_attribute(executor, "_workers")
    queue = naming.stored_attribute(executor, "_work_queue")
    queued: int | None = None
    if type(queue).__name__ == "SimpleQueue" and \
            type(queue).__module__ == "_queue":
        queued = type(queue).qsize(queue)  # C, of the standard library
    else:
        queued = naming.stored_length(naming.stored_attribute(queue,
                                                              "queue"))
    return {
        "id": id(executor),
        "library": library,
        "type": naming.type_name(executor),
        "name": _name(executor),
        "max_workers": naming.stored_attribute(executor, "_max_workers"),
        "workers": naming.stored_length(threads),
        "queued": queued,
        "shut_down": bool(naming.stored_attribute(executor, "_shutdown")),
        "running": [],
        "busy": 0,
        # oslo.service runs each looping call in an executor of its own,
        # busy for the call's whole life: never "full" in any useful sense.
        "looping_call": False,
    }


def _running_task(library: str, frame: FrameType | None, now: float
                  ) -> dict[str, Any] | None:
    filename = "_utils.py" if library == "futurist" else "thread.py"
    item_frame = _frame_named(frame, filename, "run")
    item = item_frame.f_locals.get("self") if item_frame is not None \
        else None
    if item is None:
        return None  # idle: waiting for work
    function = naming.stored_attribute(item, "fn")
    started = naming.stored_attribute(item, STARTED_ATTR)
    return {
        "function": naming.callable_name(function) if function is not None
        else None,
        "running_seconds": round(now - started, 3)
        if type(started) is float else None,
    }


def _looping_call(frame: FrameType | None, now: float
                  ) -> dict[str, Any] | None:
    """Read an oslo.service threading-backend looping call's frame."""
    loop = _frame_named(frame, "loopingcall.py", "_run_loop")
    if loop is None or "oslo_service" not in loop.f_code.co_filename:
        return None
    local = loop.f_locals
    call = local.get("self")
    watch = local.get("watch")
    sleeping = _frame_named(frame, "loopingcall.py", "_sleep") is not None
    # The schedule is the closure _run_loop asks for each sleep: a fixed
    # interval call's holds its interval; "idle" is this sleep only (the
    # interval less the last run's time, or what a dynamic call chose).
    schedule = pools.schedule_numbers(local.get("idle_for_func"))
    idle: Any = local.get("idle")
    entry: dict[str, Any] = {
        "type": naming.type_name(call),
        "function": local.get("func_name") if type(local.get(
            "func_name")) is str else None,
        "state": "sleeping" if sleeping else "running its function",
        "interval": schedule.get("interval"),
        "schedule": schedule,
        "sleeping_for": round(idle, 3)
        if sleeping and type(idle) in (int, float) else None,
        "next_run_in": None,
        "last_run_seconds": None,
    }
    started = naming.stored_attribute(watch, "_started_at")
    stopped = naming.stored_attribute(watch, "_stopped_at")
    if type(started) is float and type(stopped) is float:
        entry["last_run_seconds"] = round(stopped - started, 3)
        if entry["sleeping_for"] is not None:
            entry["next_run_in"] = round(stopped + idle - now, 3)
    if not sleeping and type(started) is float:
        entry["running_seconds"] = round(now - started, 3)
    return entry


def _rpc_servers(frames: dict[int, FrameType], now: float
                 ) -> list[dict[str, Any]]:
    """Name oslo.messaging's servers by the threads that poll for them."""
    servers: dict[int, dict[str, Any]] = {}
    for ident, frame in frames.items():
        runner = _frame_named(frame, "base.py", "_runner")
        if runner is None or "oslo_messaging" not in \
                runner.f_code.co_filename:
            continue
        listener = runner.f_locals.get("self")
        callback = naming.stored_attribute(listener, "on_incoming_callback")
        server = getattr(callback, "__self__", None) \
            if type(callback).__name__ == "method" else None
        if server is not None:
            servers.setdefault(id(server), _describe_server(server, ident))
    for server in list(_servers):  # the others: polled by greenthreads,
        servers.setdefault(id(server), _describe_server(server, None))
    return sorted(servers.values(), key=lambda entry: entry["id"])


def _describe_server(server: Any, poll_thread: int | None
                     ) -> dict[str, Any]:
    """Name a server by its target, its executor and how it is polled."""
    target = naming.stored_attribute(server, "_target")
    topics: list[str] = []
    role = "RPC server"
    if target is None:  # a notification listener: its targets
        role = "notification listener"
        targets = naming.stored_attribute(server, "targets")
        targets = list(targets) if type(targets) in (list, tuple) else []
        target = targets[0] if targets else None
        topics = [topic for topic in (naming.stored_attribute(
            each, "topic") for each in targets) if type(topic) is str]
    exchange = naming.stored_attribute(target, "exchange")
    executor = naming.stored_attribute(server, "_work_executor")
    kind = naming.stored_attribute(server, "executor_type")
    found = {
        "id": id(server),
        "type": naming.type_name(server),
        "role": role,
        "topic": naming.stored_attribute(target, "topic"),
        "server": naming.stored_attribute(target, "server"),
        # None: the transport's control_exchange (the service's name)
        "exchange": exchange,
        "default_exchange": _default_exchange(server),
        "executor": naming.type_name(executor) if executor is not None
        else f"{kind or 'unknown'} executor (none made yet)",
        "started": bool(naming.stored_attribute(server, "_started")),
        "poll_thread": poll_thread,
        "poll_greenlet": None if poll_thread is not None
        else _poll_greenlet(server),
    }
    if role == "notification listener":
        found["topics"] = topics
        pool = naming.stored_attribute(server, "_pool")
        found["pool"] = pool if type(pool) is str else None
    return found


def _default_exchange(server: Any) -> str | None:
    """Return the exchange a target without one uses: the transport's
    control_exchange, as its driver keeps it (stored fields only: a
    ConfigOpts lookup would run oslo.config's code), or None."""
    transport = naming.stored_attribute(server, "transport")
    driver = naming.stored_attribute(transport, "_driver")
    found = naming.stored_attribute(driver, "_default_exchange")
    return found if type(found) is str else None


def _poll_greenlet(server: Any) -> int | None:
    """Return the greenlet polling for a server under eventlet, if any.

    oslo.messaging polls in a ``threading.Thread`` of its listener; under
    monkey patching that thread is a greenthread, and its stored ident is
    its greenlet's id (eventlet's ``get_ident``), as the Green Threads
    section lists it.
    """
    patched = naming.stored_attribute(sys.modules.get("eventlet.patcher"),
                                      "already_patched")
    if not isinstance(patched, dict) or "thread" not in patched:
        return None  # native threads: a poller is found by its frames
    listener = naming.stored_attribute(server, "listener")
    thread = naming.stored_attribute(listener, "_listen_thread")
    ident = naming.stored_attribute(thread, "_ident")
    started = naming.stored_attribute(
        naming.stored_attribute(thread, "_started"), "_flag")
    if type(ident) is not int or started is not True or \
            naming.stored_attribute(thread, "_is_stopped") is True:
        return None
    return ident


def _name(executor: Any) -> str | None:
    """An executor's name: one set on it (nova names its pools after
    creation, ``executor.name``), else its threads' name prefix."""
    for attribute in ("name", "_thread_name_prefix"):
        name = naming.stored_attribute(executor, attribute)
        if isinstance(name, str) and name:
            return name
    return None
