"""The Thread Pools section's lines say what an executor can still do."""

from __future__ import annotations

from typing import Any

from df_gmr.sections import thread_pools


def text(found: dict[str, Any]) -> str:
    return " ".join(line.strip()
                    for line in thread_pools._executor_lines(found))


def executor(**changes: Any) -> dict[str, Any]:
    found = {"type": "futurist._futures.ThreadPoolExecutor", "name": "cell",
             "busy": 0, "max_workers": 5, "workers": 2, "queued": 0,
             "shut_down": False, "running": []}
    found.update(changes)
    return found


def test_a_shut_down_executor_is_not_called_full_or_not_full():
    line = text(executor(shut_down=True))
    assert "(shut down)" in line and "full" not in line, line


def test_a_live_executor_says_whether_it_is_full():
    assert "(not full)" in text(executor())
    assert "(FULL)" in text(executor(busy=5, queued=3))


def test_a_looping_calls_executor_keeps_saying_it_is_shut_down():
    line = text(executor(shut_down=True, looping_call=True))
    assert "(a looping call's own executor, shut down)" in line, line
