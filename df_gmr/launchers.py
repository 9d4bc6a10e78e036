"""oslo.service integration: every process of a service knows its role.

The signal handler and the reporting thread already follow every fork
(see ``trigger``).  This module adds identity: wrapping oslo.service's
eventlet-backend ``ProcessLauncher`` and ``ServiceLauncher`` (whenever
oslo.service is imported) so that the header of each report says parent,
worker N or single process, and the parent's report lists its workers.

The wrappers run the original methods unchanged and only record facts;
a failure in recording never reaches the launcher.  One thing more: the
start of a worker holds the signals its hub handles until its hub
exists (see ``_hold_hub_signals``), lest a SIGTERM be lost.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import contextlib
import functools
import os
import signal
import time
from types import ModuleType
from typing import Any

from df_gmr import _imports
from df_gmr import identity
from df_gmr.lifecycle import lifecycle

EVENTLET_SERVICE = "oslo_service.backend._eventlet.service"
THREADING_SERVICE = "oslo_service.backend._threading.service"
COTYLEDON_MANAGER = "cotyledon._service_manager"
BACKEND = "eventlet"



class Integration:
    """What the launcher wrappers need from the rest of df_gmr, and keep.
    """

    def __init__(self) -> None:
        #: Called after the role of this process changed (re-announce).
        self.role_listeners: list[Callable[[], None]] = []
        #: Returns the variables that activate df_gmr in a spawned worker.
        self.worker_environment: Callable[[], dict[str, str]] | None = None
        #: Runs first in a spawned worker: (target, environment, *args).
        self.worker_bootstrap: Callable[..., Any] | None = None
        #: The index the next forked worker takes; read by the child.
        self.next_index: int | None = None
        #: (service, index) -> how many times such a worker was started.
        self.starts: dict[tuple[str, int], int] = {}
        #: Called in the parent when a worker was reaped.
        self.exit_listeners: list[Callable[[], None]] = []
        #: Called in a worker that is about to leave (``os._exit``).
        self.leaving_listeners: list[Callable[[], None]] = []
        #: The greenlet in which the launcher starts a worker, meanwhile:
        #: its fork holds the hub's signals (see _hold_hub_signals).
        self.forking_in: Any = None
        #: The signals this process holds for a worker's start.
        self.held: set[int] = set()


_integration = Integration()


def install(on_role_change: Callable[[], None] | None = None,
            worker_environment: Callable[[], dict[str, str]] | None = None,
            on_worker_exit: Callable[[], None] | None = None,
            worker_bootstrap: Callable[..., Any] | None = None,
            on_worker_leaving: Callable[[], None] | None = None) -> None:
    """Wrap oslo.service's launchers once it is imported (idempotent)."""
    listeners = _integration.role_listeners
    if on_role_change is not None and on_role_change not in listeners:
        listeners.append(on_role_change)
    exits = _integration.exit_listeners
    if on_worker_exit is not None and on_worker_exit not in exits:
        exits.append(on_worker_exit)
    leaving = _integration.leaving_listeners
    if on_worker_leaving is not None and on_worker_leaving not in leaving:
        leaving.append(on_worker_leaving)
    if worker_environment is not None:
        _integration.worker_environment = worker_environment
    if worker_bootstrap is not None:
        _integration.worker_bootstrap = worker_bootstrap
    _imports.when_imported(EVENTLET_SERVICE, _wrap_eventlet_backend)
    _imports.when_imported(THREADING_SERVICE, _wrap_threading_backend)
    _imports.when_imported(COTYLEDON_MANAGER, _wrap_cotyledon)


def _notify(listeners: list[Callable[[], None]] | None = None) -> None:
    for listener in (_integration.role_listeners if listeners is None
                     else listeners):
        try:
            listener()
        except Exception:
            pass


def _worker_exited() -> None:
    _notify(_integration.exit_listeners)


def _quietly(record: Callable[..., None], *args: Any) -> None:
    try:
        record(*args)
    except Exception:
        pass


def _wrap_eventlet_backend(module: ModuleType) -> None:
    launcher_class = module.ProcessLauncher
    if getattr(launcher_class, "_df_gmr_wrapped", False):
        return
    launcher_class._df_gmr_wrapped = True
    original_launch = launcher_class.launch_service
    original_start_child = launcher_class._start_child
    original_child_process = launcher_class._child_process
    original_wait_child = launcher_class._wait_child
    original_child_wait = launcher_class._child_wait_for_exit_or_signal
    service_launcher = module.ServiceLauncher
    original_single = service_launcher.launch_service

    @functools.wraps(original_launch)
    def launch_service(self: Any, service: Any, workers: int = 1) -> Any:
        _quietly(_became_parent)
        return original_launch(self, service, workers)

    @functools.wraps(original_start_child)
    def start_child(self: Any, wrap: Any) -> Any:
        _quietly(_choose_index, wrap)
        # Held only where the child is sure to let them in again: through
        # this module's _child_process (a subclass may have its own).
        if getattr(type(self), "_child_process", None) is child_process:
            _integration.forking_in = _current_greenlet()
        try:  # the child never returns from it (it leaves with os._exit)
            pid = original_start_child(self, wrap)
        finally:
            _integration.forking_in = None
        _quietly(_record_worker, pid, wrap)
        return pid

    @functools.wraps(original_child_process)
    def child_process(self: Any, service: Any) -> Any:
        _integration.forking_in = None
        try:
            _quietly(_became_worker)
            return original_child_process(self, service)
        finally:
            # Its handlers are set and its hub is made: a signal held
            # since the fork is handled now, on that hub.
            _release_hub_signals()

    @functools.wraps(original_child_wait)
    def child_wait(self: Any, launcher: Any) -> Any:
        # The worker stops here (its signal came, or its service ended),
        # then leaves with os._exit: no atexit function runs.
        outcome = original_child_wait(self, launcher)
        _notify(_integration.leaving_listeners)
        return outcome

    @functools.wraps(original_wait_child)
    def wait_child(self: Any, *args: Any, **kwargs: Any) -> Any:
        reaped = original_wait_child(self, *args, **kwargs)
        if reaped is not None:
            _worker_exited()
        return reaped

    @functools.wraps(original_single)
    def launch_single(self: Any, service: Any, workers: int = 1) -> Any:
        _quietly(_became_single, workers)
        return original_single(self, service, workers)

    os.register_at_fork(before=_hold_hub_signals,
                        after_in_parent=_release_hub_signals)
    launcher_class.launch_service = launch_service
    launcher_class._start_child = start_child
    launcher_class._child_process = child_process
    launcher_class._wait_child = wait_child
    launcher_class._child_wait_for_exit_or_signal = child_wait
    service_launcher.launch_service = launch_single


#: The signals that oslo.service's eventlet handlers turn into a call on
#: the hub (a worker's SignalHandler: SIGTERM, SIGHUP, SIGINT).
HUB_SIGNALS = frozenset({signal.SIGTERM, signal.SIGHUP, signal.SIGINT})


def _hold_hub_signals() -> None:
    """Hold the hub's signals across a worker's fork (run before it).

    A new worker sets its handlers, then makes a new hub (``use_hub``): a
    SIGTERM that came before that spawned its call on the hub the fork
    copied, which is then dropped, and the worker ran on with its SIGTERM
    lost (a launcher stopping a worker it just started).  Held from the
    fork, such a signal waits until the worker's hub exists.  The parent
    lets them in again as soon as the fork returned.
    """
    forking_in = _integration.forking_in
    if forking_in is None or forking_in is not _current_greenlet():
        # Another fork: not the launcher's, or another greenthread's while
        # the launcher waits (_start_child sleeps between quick restarts).
        return
    try:
        before = signal.pthread_sigmask(signal.SIG_BLOCK, HUB_SIGNALS)
    except Exception:  # never stand in a fork's way
        return
    # Only those not held already: the rest stay as they were.
    _integration.held = set(HUB_SIGNALS - before)


def _current_greenlet() -> Any:
    import greenlet  # loaded with eventlet, whose backend this is

    return greenlet.getcurrent()


def _release_hub_signals() -> None:
    held, _integration.held = _integration.held, set()
    if held:
        with contextlib.suppress(Exception):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


def _became_parent() -> None:
    identity.set_role("parent", launcher="ProcessLauncher", backend=BACKEND)
    _notify()


def _became_single(workers: int) -> None:
    current = identity.current()
    if current.role == "worker":
        return  # a worker's own Launcher: it stays a worker
    identity.set_role("single process", launcher="ServiceLauncher",
                      backend=BACKEND)
    _notify()


def _choose_index(wrap: Any) -> None:
    taken = {
        record.index
        for pid, record in identity.current().workers.items()
        if pid in wrap.children
    }  # wrap.children: this service's live workers only
    index = 0
    while index in taken:
        index += 1
    _integration.next_index = index


def _record_worker(pid: int, wrap: Any) -> None:
    # One launcher may run several services (an API and an RPC service):
    # a worker is its service's worker N.
    index = _integration.next_index or 0
    _replace_worker(pid, f"{type(wrap.service).__name__} {id(wrap):#x}",
                    type(wrap.service).__name__, index)


def _replace_worker(pid: int, key: str, service: str, index: int) -> None:
    workers = identity.current().workers
    for old_pid in [p for p, r in workers.items()
                    if r.index == index and r.key == key]:
        del workers[old_pid]
    starts = _integration.starts
    starts[(key, index)] = starts.get((key, index), 0) + 1
    workers[pid] = identity.WorkerRecord(
        pid=pid, index=index, service=service, started_at=time.time(),
        restarts=starts[(key, index)] - 1, key=key)


def _became_worker() -> None:
    identity.set_role("worker", worker_index=_integration.next_index,
                      launcher="ProcessLauncher", backend=BACKEND,
                      parent_pid=os.getppid())
    _resume()


def _resume() -> None:
    # A forked worker starts its file watchers and watchdog now (a plain
    # fork only resets them), then says who it is.
    lifecycle.resume_in_worker()
    _notify()


# oslo.service's threading backend runs its workers with cotyledon, as do
# services that use cotyledon directly (aodh, ceilometer); cotyledon forks
# or spawns (a fresh interpreter) through multiprocessing.

COTYLEDON_WORKER = "cotyledon._service_worker"
#: oslo.service's threading backend: its ServiceLauncher and its
#: ProcessLauncher both run a cotyledon ServiceManager, which is what
#: df_gmr sees (it does not tell the two apart).
THREADING_LAUNCHER = ("oslo.service threading backend "
                      "(cotyledon ServiceManager)")
#: Set on a class whose ``__init__`` df_gmr wrapped.
WRAPPED = "_df_gmr_wrapped"
THREADING_WRAPPER = "ServiceWrapper"


def _wrap_threading_backend(module: ModuleType) -> None:
    def before(self: Any, worker_id: int, *args: Any, **kwargs: Any
               ) -> None:
        # Runs in the worker, forked or spawned: cotyledon builds the
        # service object there.
        _quietly(_became_cotyledon_worker, worker_id, "threading",
                 THREADING_LAUNCHER)

    _imports.wrap_init(module.ServiceWrapper, WRAPPED, before=before)


def _wrap_cotyledon(module: ModuleType) -> None:
    _imports.when_imported(COTYLEDON_WORKER, _wrap_cotyledon_worker)
    manager_class = module.ServiceManager
    if getattr(manager_class, "_df_gmr_wrapped", False):
        return
    manager_class._df_gmr_wrapped = True
    original_start_worker = manager_class._start_worker
    utils = module._utils

    @functools.wraps(original_start_worker)
    def start_worker(self: Any, service_id: Any, worker_id: int) -> Any:
        _quietly(_became_cotyledon_parent, self)
        # A spawned worker is a fresh interpreter: until df_gmr is set up
        # in it, SIGUSR2's default action would kill it.  Blocked signals
        # stay blocked across fork and exec, so the worker starts with the
        # signal pending instead; its set-up unblocks it (install_signal,
        # or the after-fork hook in a forked worker).
        blocked = _block_report_signals()
        original_spawn = utils.spawn_process
        if _start_method(self) != "fork":
            utils.spawn_process = functools.partial(_spawn_with_activation,
                                                    original_spawn)
        try:
            result = original_start_worker(self, service_id, worker_id)
        finally:
            utils.spawn_process = original_spawn
            _unblock(blocked)
        _quietly(_record_cotyledon_worker, self, service_id, worker_id)
        return result

    manager_class._start_worker = start_worker
    original_last_died = manager_class._get_last_worker_died

    @functools.wraps(original_last_died)
    def last_worker_died(self: Any) -> Any:
        died = original_last_died(self)
        if died is not None:
            _worker_exited()
        return died

    manager_class._get_last_worker_died = last_worker_died


def _start_method(manager: Any) -> str:
    context = getattr(manager, "mp_context", None)
    return str(getattr(context, "get_start_method", lambda: "fork")())


def _spawn_with_activation(original_spawn: Callable[..., Any],
                           target: Callable[..., Any], context: Any,
                           *args: Any, **kwargs: Any) -> Any:
    """Spawn a worker whose own bootstrap sets df_gmr up first.

    The target travels to the new interpreter by reference, wrapped in
    the bootstrap the Reporter gave (``install``): unpickling it imports
    df_gmr, which sets itself up before the worker runs, with or without
    the .pth file, and without putting ``DF_GMR_ENABLE`` into the
    worker's environment (its own children stay as they are).
    """
    provider = _integration.worker_environment
    bootstrap = _integration.worker_bootstrap
    environment = provider() if provider is not None else {}
    if not environment or bootstrap is None:
        return original_spawn(target, context, *args, **kwargs)
    return original_spawn(bootstrap, context, target, environment,
                          *args, **kwargs)


def _wrap_cotyledon_worker(module: ModuleType) -> None:
    def before(self: Any, config: Any, service_id: Any, worker_id: int,
               *args: Any, **kwargs: Any) -> None:
        # Runs in every cotyledon worker, forked or spawned, before the
        # service is built; oslo.service's wrapper (above) refines it.
        threading_backend = getattr(getattr(config, "service", None),
                                    "__name__", "") == THREADING_WRAPPER
        if not threading_backend:
            _quietly(_became_cotyledon_worker, worker_id, None,
                     "cotyledon ServiceManager")

    _imports.wrap_init(module.ServiceWorker, WRAPPED, before=before)
    _wrap_cotyledon_exit(module)


def _wrap_cotyledon_exit(module: ModuleType) -> None:
    """Finish a requested report before a cotyledon worker's os._exit.

    ``exit_on_exception`` guards what a worker runs in its threads (its
    service's run, terminate and reload) and turns what they raise into
    ``os._exit``, so no atexit function runs: a SIGTERM ends with the
    ``sys.exit(0)`` after the service's terminate, a few milliseconds
    after the signal; a report asked for just before it would be lost.
    The leaving listeners run in that thread, after terminate and before
    the exit (bounded, see ``signals.worker_leaving``); cotyledon's main
    thread still answers SIGALRM (its graceful-shutdown timeout) and
    SIGINT meanwhile.  Only cotyledon's worker uses the function.
    """
    utils = module._utils  # the module the worker looks it up in, each time
    original = utils.exit_on_exception
    if getattr(original, WRAPPED, False):
        return

    @contextlib.contextmanager
    def exit_on_exception() -> Iterator[None]:
        with original():
            try:
                yield
            except BaseException:
                # Whatever it is, the original's os._exit follows.
                _notify(_integration.leaving_listeners)
                raise

    setattr(exit_on_exception, WRAPPED, True)
    utils.exit_on_exception = exit_on_exception


def _block_report_signals() -> set[int]:
    from df_gmr import trigger

    signals = trigger.report_signals()
    if signals:
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    return signals


def _unblock(signals: set[int]) -> None:
    if signals:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)


def _became_cotyledon_parent(manager: Any) -> None:
    current = identity.current()
    if current.role == "parent":
        return
    services = getattr(manager, "_services", {}).values()
    if any(getattr(config.service, "__name__", "") == THREADING_WRAPPER
           for config in services):
        identity.set_role("parent",
                          launcher=THREADING_LAUNCHER,
                          backend="threading")
    else:  # a service that uses cotyledon directly, without oslo.service
        identity.set_role("parent", launcher="cotyledon ServiceManager")
    _notify()


def _became_cotyledon_worker(worker_id: int, backend: str | None,
                             launcher: str) -> None:
    identity.set_role("worker", worker_index=worker_id, launcher=launcher,
                      backend=backend, parent_pid=os.getppid())
    _resume()


def _record_cotyledon_worker(manager: Any, service_id: Any,
                             worker_id: int) -> None:
    processes = manager._running_services[service_id]
    process = list(processes)[-1]
    service = getattr(manager._services.get(service_id), "service",
                      service_id)
    name = getattr(service, "__name__", str(service))
    _replace_worker(process.pid, f"cotyledon {service_id}", name, worker_id)
