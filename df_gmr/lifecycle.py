"""df_gmr's life in a process: fork hooks, per-pid guards, its own threads.

A thread does not survive ``fork()``, locks may be copied in any state,
and a child is a different process with its own identity: whatever
df_gmr keeps per process is reset in the child, from one at-fork hook
registered once.  That hook runs inside every fork of the service,
including the fork of a subprocess about to exec, so what it calls must
be tiny (reset a value, close a descriptor).  What a *worker* needs
(threads, entries in the run directory) starts later, when the launcher
integration says the child became a worker (``resume_in_worker``).

df_gmr's own threads are started here and remembered per process, so
that every section can keep them apart from the service's threads.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import contextlib
import functools
import os
import signal
import sys
from types import FrameType
from typing import Any
import weakref

from df_gmr import _native
from df_gmr.streams import complain

Callback = Callable[[], None]

#: Signals a thread gets for what it does itself (a fault, a write to a
#: closed pipe, abort()), left unblocked in df_gmr's threads; and the two
#: no thread can block.
_SYNCHRONOUS = {int(getattr(signal, name)) for name in (
    "SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGSYS", "SIGABRT",
    "SIGPIPE", "SIGXFSZ", "SIGKILL", "SIGSTOP") if hasattr(signal, name)}


@functools.cache
def process_signals() -> frozenset[int]:
    """Return the signals sent to the process as a whole (SIGTERM, SIGINT,
    SIGHUP, SIGCHLD...): what df_gmr's own threads block, and what its
    signal handler holds off while it runs (see ``trigger``)."""
    if not hasattr(signal, "pthread_sigmask"):
        return frozenset()
    return frozenset(signum for signum in _native.valid_signals()
                     if signum not in _SYNCHRONOUS)


#: The role of a df_gmr thread caught starting or ending, out of the
#: registry (``Lifecycle.is_own_thread``): it may not bear its name yet.
UNREGISTERED_ROLE = "thread (starting or ending)"


def os_thread_name(role: str) -> str:
    """Return the OS-level name of a df_gmr thread of ``role``."""
    return ("gmr-" + role.replace(" ", "-"))[:15]


class Lifecycle:
    """The fork hooks and own threads of df_gmr in this process."""

    def __init__(self) -> None:
        self._resets: list[Callback] = []
        self._worker_starts: list[Callback] = []
        self._registered = False
        self._resumed_pid = 0
        #: ident -> role ("reporting", "watchdog", ...), for _threads_pid.
        self._threads: dict[int, str] = {}
        self._threads_pid = os.getpid()
        self._main_ident: int | None = None
        self._main_pid = 0
        #: eventlet hubs that df_gmr's own threads got (a green call in a
        #: registered section, say): never the service's.
        self.own_hubs: weakref.WeakSet[Any] = weakref.WeakSet()

    def reset_after_fork(self, callback: Callback) -> None:
        """Call ``callback`` in every forked child, inside fork (tiny)."""
        self._register()
        if callback not in self._resets:
            self._resets.append(callback)

    def on_worker_start(self, callback: Callback) -> None:
        """Call ``callback`` once when a forked child becomes a worker."""
        self._register()
        if callback not in self._worker_starts:
            self._worker_starts.append(callback)

    def resume_in_worker(self) -> None:
        """Run the worker start-up callbacks, once per process."""
        if self._resumed_pid == os.getpid():
            return
        self._resumed_pid = os.getpid()
        run_each(self._worker_starts, "worker start-up hook")

    def remember_main_thread(self) -> None:
        """Record the calling thread as this process's main thread."""
        self._main_ident = _native.get_ident()
        self._main_pid = os.getpid()

    def main_thread_ident(self) -> int | None:
        """Return the OS ident of the main thread (after forks too)."""
        if self._main_pid == os.getpid():
            return self._main_ident
        return None

    def start_thread(self, role: str, function: Callable[..., Any],
                     args: tuple[Any, ...] = ()) -> None:
        """Start a real OS thread of df_gmr's, known as ``role``."""
        run = functools.partial(self._run_own, role, function, args)
        # Born with the process's signals blocked (the mask is inherited
        # at creation, so there is no moment without it): the kernel gives
        # a signal sent to the process to a thread that does not block it,
        # and one that a df_gmr thread took would wait for the main
        # thread's next wake-up (an idle eventlet hub sleeps up to 60 s in
        # epoll) before its Python handler ran.  A SIGTERM during a burst
        # of SIGUSR2 did (the main thread had a signal pending already).
        blocked = process_signals()
        previous = _native.signal_mask(signal.SIG_BLOCK, blocked) \
            if blocked else None
        try:
            _native.start_thread(run)
        finally:
            if previous is not None:
                _native.signal_mask(signal.SIG_SETMASK, previous)

    def _run_own(self, role: str, function: Callable[..., Any],
                 args: tuple[Any, ...]) -> None:
        # The outermost frame of every df_gmr thread (see is_own_thread):
        # the thread is in the registry only from this frame's first line
        # to its last, and a report may look in between.
        ident = _native.get_ident()
        # Named for the system's tools too: an operator's `top -H` tells
        # df_gmr's threads from the service's.  Before it is registered:
        # a report names a registered thread so.
        _native.name_thread(os_thread_name(role))
        self.own_threads()[ident] = role
        try:
            function(*args)
        finally:
            self.note_own_hub()
            with contextlib.suppress(KeyError):
                if self._threads_pid == os.getpid():
                    del self._threads[ident]

    @staticmethod
    def is_own_thread(frame: FrameType | None) -> bool:
        """Say whether a thread whose current frame is ``frame`` is one of
        df_gmr's, by its outermost frame: also while it is starting or
        ending (not in ``own_threads()``)."""
        outermost = frame
        while frame is not None:
            outermost, frame = frame, frame.f_back
        return outermost is not None and \
            outermost.f_code is _RUN_OWN_CODE

    @contextlib.contextmanager
    def as_application(self, keep: set[int]) -> Iterator[None]:
        """Let the application's own code (a registered section) run in
        this df_gmr thread as in one of its own.

        The process's signals are unblocked: a program it starts must not
        inherit them blocked (``keep``, the report signals and the stack
        signal, stay as they were).  The thread bears the process's name
        meanwhile: a thread it starts inherits its creator's name from
        the system, and would pass for df_gmr's in ``top -H``.
        """
        unblocked = process_signals() - keep
        previous = _native.signal_mask(signal.SIG_UNBLOCK, unblocked) \
            if unblocked else None
        own_name = _native.thread_name()
        service_name = _native.thread_name("/proc/self/comm")
        if own_name is not None and service_name is not None:
            _native.name_thread(service_name)
        try:
            yield
        finally:
            if own_name is not None and service_name is not None:
                _native.name_thread(own_name)
            if previous is not None:
                _native.signal_mask(signal.SIG_SETMASK, previous)

    def note_own_hub(self) -> None:
        """Remember the calling df_gmr thread's eventlet hub, if it has one.

        Where df_gmr was not set up, no hook sees hubs made: a heap scan
        would take a hub of a df_gmr thread, alive or just gone, for one
        of the service's.
        """
        hubs = sys.modules.get("eventlet.hubs")
        hub = getattr(getattr(hubs, "_threadlocal", None), "hub", None)
        if hub is not None:
            with contextlib.suppress(TypeError):  # not weak-referenceable
                self.own_hubs.add(hub)

    def own_hub_ids(self) -> set[int]:
        """Return the ids of the live hubs of df_gmr's threads."""
        for _ in range(20):
            try:
                return {id(hub) for hub in list(self.own_hubs)}
            except RuntimeError:  # another df_gmr thread added one meanwhile
                continue
        return set()

    def own_threads(self) -> dict[int, str]:
        """Return df_gmr's threads in this process: ident -> role."""
        if self._threads_pid != os.getpid():
            self._threads = {}
            self._threads_pid = os.getpid()
        return self._threads

    def _register(self) -> None:
        if not self._registered:
            os.register_at_fork(after_in_child=self._after_fork_in_child)
            self._registered = True

    def _after_fork_in_child(self) -> None:
        # The thread that forked is the child's only thread.
        self._main_ident = _native.get_ident()
        self._main_pid = os.getpid()
        self._threads = {}
        self._threads_pid = os.getpid()
        run_each(self._resets, "after-fork reset")


def run_each(callbacks: list[Callback], what: str) -> None:
    """Call each callback; a failure is said on stderr, never raised."""
    for callback in callbacks:
        try:
            callback()
        except Exception as error:  # never break a fork or a worker
            complain(f"{what} failed: {error!r}")


_RUN_OWN_CODE = Lifecycle._run_own.__code__
lifecycle = Lifecycle()
