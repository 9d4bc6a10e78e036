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
from df_gmr.runtime import Snapshot, greens

first, second = event.Event(), event.Event()

def wait(gate):
    gate.wait()

def wait_long(gate):
    gate.wait()

order = [first] * 3 + [second] + [first] * 3
for gate in order:
    eventlet.spawn(wait, gate)
for _ in range(BIG):
    eventlet.spawn(wait_long, first)
eventlet.sleep(0)
print(json.dumps({
    "first": f"{id(first):#x}", "second": f"{id(second):#x}",
    "groups": [group for group in greens.Greens(Snapshot()).groups()
               if group["wait_kind"] == "event"]}))
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
