"""Grouping: members with one stack told once, what differs kept per member.

The scene runs real eventlet greenthreads in a fresh interpreter; the
groups come from ``df_gmr.runtime.greens`` with the registry installed.
Members identical to the one before them are passed through the grouping
without a dict of their own (``grouping.SAME``); these tests pin down that
they still say all they should.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from df_gmr.runtime import grouping
from tests.daemons import outcome
from tests.daemons import run_python

SCENE = """
import json
from df_gmr import greenlets
greenlets.install()
import eventlet
from eventlet import event
from eventlet import greenpool
from eventlet import queue
from eventlet import semaphore
from df_gmr.runtime import Snapshot, greens, waits

first, second, third = event.Event(), event.Event(), event.Event()
pools = [greenpool.GreenPool(1), greenpool.GreenPool(1)]

def hold(gate):
    gate.wait()

def want_slot(pool):
    pool.spawn(hold, third)

def wait(gate):
    gate.wait()

def wait_long(gate):
    gate.wait()

order = [first] * 3 + [second] + [first] * 3
for gate in order:
    eventlet.spawn(wait, gate)
for _ in range(BIG):
    eventlet.spawn(wait_long, first)
for pool in pools:
    pool.spawn(hold, third)  # the pool's one slot, taken
for index in (0, 0, 1, 0, 1, 1):
    eventlet.spawn(want_slot, pools[index])
# Objects that list their waiters (waits.waiting_greenlets), in runs.
listing = {"semaphore": [semaphore.Semaphore(0), semaphore.Semaphore(0)],
           "queue get": [queue.LightQueue(), queue.Queue()]}

def acquire(sem):
    sem.acquire()

def get(line):
    line.get()

RUNS = (0, 0, 0, 1, 0, 1, 1, 1, 1, 0)
for index in RUNS:
    eventlet.spawn(acquire, listing["semaphore"][index])
    eventlet.spawn(get, listing["queue get"][index])
eventlet.sleep(0)
listed_calls, lists_read = [], []
waiting_greenlets = waits.waiting_greenlets
listed_waiters = waits._listed_waiters

def counted(kind, owner, *more):
    listed_calls.append(kind)
    return waiting_greenlets(kind, owner, *more)

def read(kind, owner):
    lists_read.append(kind)
    return listed_waiters(kind, owner)

waits.waiting_greenlets, waits._listed_waiters = counted, read
groups = greens.Greens(Snapshot()).groups()
waits.waiting_greenlets, waits._listed_waiters = \
    waiting_greenlets, listed_waiters
LISTS = waits.LISTS_WAITERS
waits.LISTS_WAITERS = frozenset()  # each member's own frame read
unlisted = greens.Greens(Snapshot()).groups()
waits.LISTS_WAITERS = LISTS
print(json.dumps({
    "listing": {kind: [f"{id(owner):#x}" for owner in owners]
                for kind, owners in listing.items()},
    "runs": RUNS,
    "listed": [group for group in groups
               if group["wait_kind"] in listing],
    "listed_calls": listed_calls,
    "lists_read": lists_read,
    # Parked ones (the main greenlet, running this, has moved on).
    "same_unlisted": json.dumps(
        [group for group in groups if group["state"] == "parked"])
    == json.dumps(
        [group for group in unlisted if group["state"] == "parked"]),
    "first": f"{id(first):#x}", "second": f"{id(second):#x}",
    "pools": [f"{id(pool):#x}" for pool in pools],
    "slots": [group for group in groups
              if group["wait_kind"] == "pool slot"],
    "groups": [group for group in groups
               if group["wait_kind"] == "event"
               and group["stack"][-3]["function"] != "hold"]}))
"""


@pytest.fixture(scope="module")
def scene() -> dict[str, Any]:
    """Run the scene once; each test reads its part."""
    big = grouping.DETAILS_PER_GROUP + 2
    result = run_python(SCENE.replace("BIG", str(big)))
    document: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    assert len(document["groups"]) == 2, outcome(result)
    return document


def by_count(document: dict[str, Any], count: int) -> dict[str, Any]:
    [group] = [group for group in document["groups"]
               if group["count"] == count]
    return group


def test_members_waiting_on_different_objects_each_say_theirs(scene):
    document = scene
    group = by_count(document, 7)
    # The common wait is the kind only: the objects differ.
    assert "object" not in group["wait"]
    assert "details_read" not in group
    members = group["members"]
    assert [member["id"] for member in members] == group["ids"]
    objects = [member["wait"]["object"].split()[-1] for member in members]
    first, second = document["first"], document["second"]
    assert objects == [first] * 3 + [second] + [first] * 3
    # Each says how many wait on its own object, the same members as the
    # others on that object.
    assert {member["wait"]["waiters"] for member in members
            if member["wait"]["object"].endswith(first)} == {
        6 + grouping.DETAILS_PER_GROUP + 2}


def test_identical_members_have_nothing_of_their_own_and_count_as_read(
        scene):
    group = by_count(scene, grouping.DETAILS_PER_GROUP + 2)
    assert group["members"] == []
    assert group["wait"]["object"].endswith(scene["first"])
    assert group["details_read"] == grouping.DETAILS_PER_GROUP
    assert len(group["ids"]) == group["count"]


def test_members_waiting_for_slots_of_different_pools_each_say_theirs(
        scene):
    # A slot waiter's reading is its pool's name alone, shared by the
    # members waiting on that pool (waits.BY_OBJECT): each still names
    # its own pool, in order.
    [group] = scene["slots"]
    assert group["count"] == 6
    assert "object" not in group["wait"]
    objects = [member["wait"]["object"].split()[-1]
               for member in group["members"]]
    first, second = scene["pools"]
    assert objects == [first, first, second, first, second, second]
    assert [member["id"] for member in group["members"]] == group["ids"]


@pytest.mark.parametrize("kind", ["semaphore", "queue get"])
def test_members_listed_by_their_object_each_say_theirs(scene, kind):
    # eventlet's Semaphore and queues list their waiters: a member listed
    # by the object the member before it waits on shares its reading
    # (its frame's locals unread); another object's member is read.
    [group] = [group for group in scene["listed"]
               if group["wait_kind"] == kind]
    owners = scene["listing"][kind]
    objects = [member["wait"]["object"].split()[-1]
               for member in group["members"]]
    assert objects == [owners[index] for index in scene["runs"]]
    assert [member["id"] for member in group["members"]] == group["ids"]
    # One reading of the frame per run of one object, not one per member.
    runs = 1 + sum(1 for before, after in zip(
        scene["runs"], scene["runs"][1:], strict=False) if before != after)
    assert scene["listed_calls"].count(kind) == runs
    # Each object's list read once (a semaphore's is copied), not once
    # per run.
    assert scene["lists_read"].count(kind) == len(owners) < runs


def test_listed_members_read_as_each_members_frame_says(scene):
    # The same groups, each member's frame read (nothing listed).
    assert scene["same_unlisted"]
    assert scene["listed"]
