"""Stack keys: positions, their ids and their lines agree."""

from __future__ import annotations

import greenlet

from df_gmr import stacks


def park_twice(flag: bool) -> None:
    parent = greenlet.getcurrent().parent
    return parent.switch() if flag else parent.switch(None)


def calls_it(flag: bool) -> None:
    park_twice(flag)


def parked(flag: bool) -> greenlet.greenlet:
    green = greenlet.greenlet(calls_it)
    green.switch(flag)
    return green


def test_ids_positions_and_lines_of_one_parked_stack_agree():
    green = parked(True)
    frame = green.gr_frame
    positions = stacks.frame_positions(frame)
    assert [code.co_name for code, _ in positions] == ["calls_it",
                                                       "park_twice"]
    assert stacks.frame_ids(frame) == stacks.ids_of(positions)
    assert stacks.lined(positions) == stacks.frame_keys(frame)
    # The line is the one f_lineno reads, from the recorded offset.
    lines = [line for _, line in stacks.frame_keys(frame)]
    assert lines == [frame.f_back.f_lineno, frame.f_lineno]


def test_two_instructions_of_one_line_differ_by_position_not_by_line():
    first, second = parked(True), parked(False)
    one, other = (stacks.frame_positions(green.gr_frame)
                  for green in (first, second))
    assert one != other
    assert stacks.frame_ids(first.gr_frame) != \
        stacks.frame_ids(second.gr_frame)
    assert stacks.lined(one) == stacks.lined(other)


def test_the_limit_keeps_the_innermost_frames():
    frame = parked(True).gr_frame
    assert stacks.frame_ids(frame, 1) == stacks.ids_of(
        stacks.frame_positions(frame, 1))
    assert [code.co_name for code, _ in stacks.frame_positions(
        frame, 1)] == ["park_twice"]
    assert stacks.frame_ids(None) == stacks.frame_positions(None) == ()


def test_df_gmrs_own_wrappers_say_so_in_a_stack():
    # The executors' hook and the launchers' wrappers sit in application
    # stacks: a reader must not take them for the code that waits.
    frames = [
        {"file": stacks.PACKAGE_DIR + "runtime/executors.py", "line": 80,
         "function": "stamped_run", "code": "return run(self)"},
        {"file": "/srv/app/worker.py", "line": 3, "function": "work",
         "code": "queue.get()"}]
    lines = stacks.format_stack(frames, "")
    assert lines[0].endswith("in stamped_run (df_gmr's wrapper)")
    assert lines[2] == 'File "/srv/app/worker.py", line 3, in work'
