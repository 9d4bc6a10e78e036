"""The greenthreads a benchmark child creates before it measures.

Imported only by a child process, after ``eventlet.monkey_patch()``.  A
*mix* looks like a busy eventlet service: most greenthreads wait on the
same few lines (identical Event waiters, sleepers), some read sockets
whose peer is alive, a saturated GreenPool has both its workers and the
callers waiting for a slot, and a tenth wait at one of eight distinct
stacks (different call depths, queue or semaphore).
"""

from __future__ import annotations

import dataclasses
import resource
from typing import Any

import eventlet
from eventlet import event
from eventlet import greenpool
from eventlet import queue
from eventlet import semaphore
from eventlet.green import socket

#: Socket readers are capped at 1% of the mix (each costs 2 or 3 fds).
SOCKET_SHARE = 100
#: The number of distinct stack shapes in the mix.
DISTINCT_SHAPES = 8


@dataclasses.dataclass
class Workload:
    """Everything that keeps the greenthreads alive and parked."""

    size: int
    keep: list[Any] = dataclasses.field(default_factory=list)
    counts: dict[str, int] = dataclasses.field(default_factory=dict)


def raise_fd_limit() -> None:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def wait_for_event(gate: event.Event) -> None:
    """Park until ``gate`` is sent (the identical waiters)."""
    gate.wait()


def sleep_long() -> None:
    """Park in one long sleep."""
    eventlet.sleep(3600)


def periodic_task(interval: float) -> None:
    """Run a periodic task that does nothing, forever."""
    while True:
        eventlet.sleep(interval)


def read_socket(connection: Any) -> None:
    """Park reading a socket whose peer never writes."""
    connection.recv(1)


def pool_worker(gate: event.Event) -> None:
    """Hold a GreenPool slot until ``gate`` is sent."""
    gate.wait()


def wait_for_pool_slot(pool: greenpool.GreenPool, gate: event.Event
                       ) -> None:
    """Park in ``pool.spawn`` until a slot frees up."""
    pool.spawn(pool_worker, gate)


def nested_wait(depth: int, channel: Any) -> None:
    """Recurse ``depth`` calls deep, then park on ``channel``."""
    if depth > 0:
        nested_wait(depth - 1, channel)
        return
    if isinstance(channel, semaphore.Semaphore):
        channel.acquire()
    else:
        channel.get()


def settle() -> None:
    """Let every new greenthread run until it parks."""
    for _ in range(5):
        eventlet.sleep(0)


def socket_pairs(count: int, keep: list[Any]) -> list[tuple[Any, Any]]:
    """Return connected socket pairs: half unix, half loopback TCP.

    The TCP listener stays open (appended to ``keep``), as a server's.
    """
    pairs: list[tuple[Any, Any]] = []
    tcp = count // 2
    if tcp:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        keep.append(listener)
        address = listener.getsockname()
        for _ in range(tcp):
            client = socket.create_connection(address)
            server, _ = listener.accept()
            pairs.append((server, client))
    for _ in range(count - tcp):
        pairs.append(socket.socketpair())
    return pairs


def mix(size: int) -> Workload:
    """Spawn ``size`` greenthreads in a realistic mix and let them park."""
    workload = Workload(size)
    readers = max(1, size // SOCKET_SHARE)
    pool_size = size // 10
    pool_waiters = size // 20
    distinct = size // 10
    sleepers = size // 4
    events = size - readers - pool_size - pool_waiters - distinct - sleepers

    gate = event.Event()
    workload.keep.append(gate)
    for _ in range(events):
        eventlet.spawn(wait_for_event, gate)
    for index in range(sleepers):
        if index % 2:
            eventlet.spawn_n(sleep_long)
        else:
            eventlet.spawn(periodic_task, 600 + index % 7)
    pairs = socket_pairs(readers, workload.keep)
    workload.keep.append(pairs)
    for server, _ in pairs:
        eventlet.spawn(read_socket, server)
    pool = greenpool.GreenPool(max(1, pool_size))
    workload.keep.append(pool)
    for _ in range(pool_size):
        pool.spawn(pool_worker, gate)
    for _ in range(pool_waiters):
        eventlet.spawn(wait_for_pool_slot, pool, gate)
    channels = [
        semaphore.Semaphore(0) if shape % 2 else queue.LightQueue()
        for shape in range(DISTINCT_SHAPES)
    ]
    workload.keep.append(channels)
    for index in range(distinct):
        shape = index % DISTINCT_SHAPES
        eventlet.spawn(nested_wait, shape + 1, channels[shape])
    settle()
    workload.counts = {
        "event waiters": events,
        "sleepers": sleepers,
        "socket readers": readers,
        "pool workers": pool_size,
        "pool slot waiters": pool_waiters,
        "distinct stacks": distinct,
    }
    return workload


def identical(size: int) -> Workload:
    """Spawn ``size`` identical Event waiters and let them park."""
    workload = Workload(size)
    gate = event.Event()
    workload.keep.append(gate)
    for _ in range(size):
        eventlet.spawn(wait_for_event, gate)
    settle()
    workload.counts = {"event waiters": size}
    return workload


def build(kind: str, size: int) -> Workload:
    """Return the workload ``kind`` (``mix`` or ``identical``)."""
    if kind == "identical":
        return identical(size)
    return mix(size)
