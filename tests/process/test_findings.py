"""Findings first in every report: each kind from a real scene."""

from __future__ import annotations

import json
import os

import pytest

from df_gmr.runtime import withblocks
from tests.daemons import SCRIPTS
from tests.daemons import run_python

#: Holders inside 'with' blocks are read on CPython 3.11 only.
WITH_BLOCKS = pytest.mark.skipif(
    not withblocks.SUPPORTED,
    reason="with-block holders are read on CPython 3.11 only")


def findings(scene: str) -> tuple[list[dict], list[str]]:
    result = json.loads(run_python("findings_scene.py", scene).stdout)
    return result["findings"], result["text"]


def scene_line(text: str) -> int:
    """Return the number of the scene's line that is ``text``."""
    path = os.path.join(SCRIPTS, "findings_scene.py")
    with open(path) as handle:
        [number] = [index for index, line in enumerate(handle, 1)
                    if line.rstrip("\n") == text]
    return number


def test_healthy_service_says_no_findings():
    found, text = findings("healthy")
    assert found == []
    assert text == ["no findings"]


def test_two_threads_on_two_rlocks_are_a_deadlock():
    found, text = findings("deadlock")
    [deadlock] = [f for f in found if f["kind"] == "deadlock"]
    assert deadlock["severity"] == "critical"
    assert len(deadlock["evidence"]) == 2
    assert "alpha" in deadlock["text"] and "beta" in deadlock["text"]
    assert text[0].startswith("CRITICAL deadlock: deadlock of 2 threads")
    assert not [f for f in found if f["kind"] == "lock_contention"]


def test_lock_chain_names_the_holder():
    found, _ = findings("contention")
    [contention] = [f for f in found if f["kind"] == "lock_contention"]
    assert contention["text"].startswith("3 threads wait for RLock")
    assert "(holder)" in contention["text"]
    assert len(contention["evidence"]) == 4  # the holder, then the waiters


def test_saturated_futurist_executor():
    found, _ = findings("full-executor")
    [full] = [f for f in found if f["kind"] == "pool_full"]
    assert "all 2 workers busy, 3 tasks queued" in full["text"]


def test_saturated_green_pool():
    found, _ = findings("full-green-pool")
    [full] = [f for f in found if f["kind"] == "pool_full"]
    assert "2 of 2 running, 3 greenthreads waiting for a slot" in full["text"]


def test_greenthreads_waiting_for_a_named_lock_name_its_holder():
    found, _ = findings("named-lock")
    [contention] = [f for f in found if f["kind"] == "lock_contention"]
    assert contention["text"].startswith(
        '20 waiting for lockutils lock "compute_resources"')
    assert "held by greenthread" in contention["text"]
    assert "in __main__.update" in contention["text"]
    assert len(contention["evidence"]) == 21  # the holder, then the waiters


def test_two_greenthreads_on_two_named_locks_are_a_deadlock():
    found, _ = findings("green-deadlock")
    [deadlock] = [f for f in found if f["kind"] == "deadlock"]
    assert "lockutils named locks (inferred from the stacks)" in \
        deadlock["text"]
    assert len(deadlock["evidence"]) == 2


def test_the_first_lines_say_who_holds_what_and_what_is_deadlocked():
    # The "done when": a greenthread holds a named lock twenty
    # others wait for, and two threads are deadlocked.
    _, text = findings("done-when")
    head = " ".join(" ".join(text[:8]).split())
    assert text[0].startswith("CRITICAL deadlock: deadlock of 2 threads")
    assert "alpha" in head and "beta" in head
    assert '20 waiting for lockutils lock "compute_resources"' in head
    assert "held by greenthread" in head and "in __main__.update" in head


def test_locks_of_a_threading_copy_made_after_the_first_report_count():
    found, _ = findings("late-copy")
    [deadlock] = [f for f in found if f["kind"] == "deadlock"]
    assert deadlock["text"].startswith("deadlock of 2 threads: thread "), \
        deadlock
    assert "(alpha)" in deadlock["text"] and "(beta)" in deadlock["text"]


@WITH_BLOCKS
def test_greenthreads_waiting_for_a_with_lock_name_its_holder():
    found, text = findings("with-contention")
    [contention] = [f for f in found if f["kind"] == "lock_contention"]
    assert contention["text"].startswith("20 greenthreads wait for Lock 0x")
    line = scene_line("            with self.lock:")
    assert contention["text"].endswith(
        "(found by the stack: inside 'with self.lock:' in update "
        f"(findings_scene.py:{line}))")
    assert len(contention["evidence"]) == 11  # the holder, ten waiters
    assert text[0].startswith("WARNING lock_contention: 20 greenthreads")


@WITH_BLOCKS
def test_two_greenthreads_inside_with_blocks_are_a_deadlock():
    found, _ = findings("with-deadlock")
    [deadlock] = [f for f in found if f["kind"] == "deadlock"]
    assert deadlock["text"].startswith("deadlock of 2: greenthread ")
    assert deadlock["text"].count("inside 'with mine:' in cross") == 2
    assert len(deadlock["evidence"]) == 2
    assert not [f for f in found if f["kind"] == "lock_contention"]


@WITH_BLOCKS
def test_a_cycle_through_a_with_lock_and_an_rlock_is_a_deadlock():
    found, _ = findings("mixed-deadlock")
    [deadlock] = [f for f in found if f["kind"] == "deadlock"]
    text = deadlock["text"]
    assert text.startswith("deadlock of 2: thread ")
    assert "(found by its own record (exact))" in text  # the RLock
    assert "(found by the stack: inside 'with plain:' in gamma" in text
    assert len(deadlock["evidence"]) == 2


@pytest.mark.parametrize(("scene", "who"), [("db-pool", "threads"),
                                           ("green-db-pool", "greenthreads")])
def test_a_full_sqlalchemy_pool_names_its_waiters(scene, who):
    found, _ = findings(scene)
    [full] = [f for f in found if f["kind"] == "pool_full"]
    assert full["text"].startswith("SQLAlchemy QueuePool 0x")
    assert full["text"].endswith(
        "is full: 3 connections checked out (pool size 2 + overflow 1), "
        f"4 {who} waiting for one (found by the stacks: waiting in "
        "QueuePool._do_get)")
    assert len(full["evidence"]) == 4


@WITH_BLOCKS
def test_a_cycle_through_a_named_lock_and_a_with_lock_is_a_deadlock():
    found, _ = findings("named-and-with-deadlock")
    [deadlock] = [f for f in found if f["kind"] == "deadlock"]
    text = deadlock["text"]
    assert text.startswith("deadlock of 2: greenthread ")
    assert 'waits for lockutils lock "resources" held by greenthread' in text
    assert "(found by the stacks (inside @synchronized))" in text
    assert "(found by the stack: inside 'with plain:' in plain_then_named" \
        in text
    assert len(deadlock["evidence"]) == 2


@WITH_BLOCKS
def test_a_lock_held_around_a_condition_wait_is_held_the_condition_not():
    found, _ = findings("hold-while-waiting")
    [contention] = [f for f in found if f["kind"] == "lock_contention"]
    assert contention["text"].startswith("3 threads wait for lock 0x")
    assert "(found by the stack: inside 'with held_lock:' in holder" in \
        contention["text"]
    # The idle threads' 'with idle: idle.wait()' holds nothing.
    assert len(found) == 1, found


@WITH_BLOCKS
def test_a_thread_taking_again_the_lock_it_holds_is_a_deadlock():
    found, _ = findings("self-deadlock")
    [deadlock] = [f for f in found if f["kind"] == "deadlock"]
    assert deadlock["text"].startswith("deadlock of 1: thread ")
    assert "which it holds itself (found by the stack: inside 'with " \
        "plain:' in again" in deadlock["text"]
    # The thread past its 'with after_block:' holds nothing.
    assert len(found) == 1, found
