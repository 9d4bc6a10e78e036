"""Only threading's Condition.wait releases a lock while it waits: the
waits that call it (Event's, Barrier's, Semaphore's) are not read as one.
"""

from __future__ import annotations

import sys
import threading

import pytest

from df_gmr import stacks
from df_gmr.runtime import withblocks


def test_condition_wait_releases_and_the_waits_that_call_it_do_not():
    assert withblocks.releases_while_waiting(
        threading.Condition.wait.__code__)
    others = (threading.Event.wait, threading.Barrier.wait,
              threading.Thread.join, threading.Condition.wait_for)
    if sys.version_info >= (3, 11):
        for function in others:
            assert not withblocks.releases_while_waiting(
                function.__code__), function


@pytest.mark.skipif(sys.version_info < (3, 11),
                    reason="no qualified names: every wait of threading")
def test_a_wait_of_another_module_never_counts():
    def wait() -> None:
        pass

    assert not withblocks.releases_while_waiting(wait.__code__)


def test_an_event_waiter_inside_with_cond_holds_nothing():
    # Event.wait enters ``with self._cond:`` and waits in Condition.wait,
    # which released that lock: the stack holds no lock.
    event = threading.Event()
    started = threading.Event()

    def waiter() -> None:
        started.set()
        event.wait(30)

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    try:
        assert started.wait(10)
        for _ in range(200):
            frame = sys._current_frames()[thread.ident]
            if frame.f_code is threading.Condition.wait.__code__:
                break
            threading.Event().wait(0.01)
        blocks = withblocks.WithBlocks()
        assert blocks.held(frame) == []
        del frame
    finally:
        event.set()
        thread.join(10)


@pytest.mark.skipif(not withblocks.SUPPORTED,
                    reason="with-block holders are read on CPython 3.11 only")
def test_a_lock_around_a_condition_wait_is_held_and_the_condition_not():
    # ``with outer: with cond: cond.wait()``: the wait released cond's
    # lock, not outer.  Both readings (the full walk and a group's plan)
    # name outer only.
    outer = threading.Lock()
    cond = threading.Condition(threading.Lock())
    started = threading.Event()
    done = threading.Event()

    def nested() -> None:
        with outer:
            with cond:
                started.set()
                cond.wait_for(done.is_set, 30)

    thread = threading.Thread(target=nested, daemon=True)
    thread.start()
    try:
        assert started.wait(10)
        frame = None
        for _ in range(200):
            frame = sys._current_frames()[thread.ident]
            if frame.f_code is threading.Condition.wait.__code__:
                break
            threading.Event().wait(0.01)
        assert frame is not None
        blocks = withblocks.WithBlocks()
        plan = blocks.plan(stacks.lined(stacks.frame_positions(frame)))
        assert plan
        expected = f"{type(outer).__name__} {id(outer):#x}"
        for held in (blocks.held(frame), blocks.held_by_plan(frame, plan)):
            assert [entry["lock"] for entry in held] == [expected]
            assert "inside 'with outer:' in nested" in held[0]["found_by"]
        del frame
    finally:
        with cond:
            done.set()
            cond.notify_all()
        thread.join(10)
