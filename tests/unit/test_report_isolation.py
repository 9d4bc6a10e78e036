"""What a section returns or raises is dealt with in that section's place."""

from __future__ import annotations

import json
import threading
from typing import Any

from df_gmr import render
from df_gmr import report
from df_gmr.sections import Section
from df_gmr.sections import generator_section

#: Seconds a test waits for a whole report (a hang fails, never blocks).
DEADLINE = 20.0


def build(*sections: Section, timeout: float = 5.0) -> report.Report:
    """Build in a thread of its own: a build that hangs fails the test."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        context = report.ReportContext(section_timeout=timeout)
        outcome["report"] = report.build(context, list(sections))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(DEADLINE)
    assert "report" in outcome, "the report was never built"
    return outcome["report"]


def both(built: report.Report, sections: tuple[Section, ...]
         ) -> tuple[str, str]:
    text = render.as_text(built, {s.name: s for s in sections})
    return text, render.as_json(built)


def refuse_constant(name: str) -> None:
    raise AssertionError(f"not strict JSON: {name}")


def test_a_5000_digit_integer_fails_only_its_section():
    sections = (generator_section("Huge", lambda: 10 ** 5000),
                generator_section("Nested", lambda: {"n": [10 ** 5000]}),
                generator_section("Fine", lambda: {"ok": 1}))
    built = build(*sections)
    text, document = both(built, sections)
    huge, nested, fine = json.loads(document)["sections"]
    assert huge["data"] is None and "digits" in huge["error"]
    assert nested["data"] is None and "digits" in nested["error"]
    assert fine == {**fine, "data": {"ok": 1}, "error": None}
    assert "Section failed: Huge" in text and "ok = 1" in text


def test_nan_and_infinity_become_strings_and_json_stays_strict():
    sections = (generator_section(
        "Odd", lambda: {"nan": float("nan"), "values": [float("inf"),
                                                        -float("inf"), 2.5]}),)
    built = build(*sections)
    text, document = both(built, sections)
    [odd] = json.loads(document, parse_constant=refuse_constant)["sections"]
    assert odd["data"] == {"nan": "NaN",
                           "values": ["Infinity", "-Infinity", 2.5]}
    assert odd["notes"] == ["3 numbers that JSON cannot hold (NaN, "
                            "Infinity) are shown as strings"]
    assert "note: 3 numbers that JSON cannot hold" in text


def test_data_nested_too_deep_fails_only_its_section():
    deep: list[Any] = []
    for _ in range(500):
        deep = [deep]
    built = build(generator_section("Deep", lambda: deep),
                  generator_section("Fine", lambda: "fine"))
    assert "nested deeper than" in built.sections[0].error
    assert built.sections[1].data == "fine"


class HangingMessage(Exception):
    def __str__(self) -> str:
        threading.Event().wait()  # never returns
        return "never"


def test_an_exception_that_cannot_print_itself_fails_only_its_section():
    def generator() -> None:
        raise HangingMessage

    built = build(generator_section("Hangs", generator),
                  generator_section("Fine", lambda: "fine"), timeout=0.5)
    assert "cut off" in built.sections[0].error
    assert built.sections[1].data == "fine"


def test_built_in_sections_name_unknown_objects_by_type():
    class Secretive:
        def __str__(self) -> str:
            raise AssertionError("str() was called")

    section = Section("odd", "Odd", lambda context: {"x": Secretive()},
                      lambda data: [])
    built = build(section)
    assert built.sections[0].error is None
    assert built.sections[0].data == {"x": (
        f"{__name__}.test_built_in_sections_name_unknown_objects_by_type"
        ".<locals>.Secretive")}


def test_built_in_strings_are_cut_and_the_section_says_so():
    limit = report.MAX_TEXT
    section = Section("long", "Long", lambda context: ["x" * (limit * 3),
                                                       "short"],
                      lambda data: data)
    built = build(section)
    cut, short = built.sections[0].data
    assert cut.endswith(f"... [cut at {limit} characters]")
    assert len(cut) < limit + 40 and short == "short"
    assert built.sections[0].notes == [
        f"1 strings longer than {limit} characters are cut"]


def test_a_renderer_that_fails_falls_back_to_the_data():
    def broken(data: Any) -> list[str]:
        raise KeyError("renderer bug")

    section = Section("b", "Broken renderer", lambda context: {"k": "v"},
                      broken)
    text, _ = both(build(section), (section,))
    assert "Could not render this section as text: KeyError" in text
    assert "k = v" in text


def own_threads() -> set[int]:
    from df_gmr.lifecycle import lifecycle

    return set(lifecycle.own_threads())


def wait_until(condition: Any, what: str) -> None:
    import time

    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_pieces_share_one_thread_and_an_overrun_one_is_left_behind():
    from df_gmr.isolation import Isolation

    release = threading.Event()
    isolation = Isolation(repr)
    try:
        first, second, stuck, skipped, third, failed = isolation.run_all([
            ("a", threading.get_ident, "section"),
            ("b", threading.get_ident, "section"),
            ("stuck", lambda: release.wait(DEADLINE), "section"),
            ("stuck", lambda: 1, "section"),
            ("c", threading.get_ident, "section"),
            ("d", lambda: 1 / 0, "reading"),
        ], 0.3)
    finally:
        release.set()
    assert first.error is None and first.result == second.result  # one
    assert stuck.error == "section cut off: it took more than 0.3 s"
    assert 0.3 <= stuck.seconds < DEADLINE
    # skipped while still stuck, in this report and the next
    assert skipped.error is not None and "still stuck" in skipped.error
    assert third.error is None and third.result != first.result  # a new one
    assert failed.error == "ZeroDivisionError('division by zero')"
    # no thread of the isolation outlives it, the stuck one included
    wait_until(lambda: not own_threads() & {first.result, third.result},
               "the threads did not end")
    # it ended: no longer stuck
    assert isolation.run("stuck", lambda: 2, 5, "section").result == 2


def test_a_piece_the_thread_never_began_is_not_marked_stuck(monkeypatch):
    from df_gmr.isolation import Isolation
    from df_gmr.lifecycle import lifecycle

    start_thread = lifecycle.start_thread

    def late_start(role: str, function: Any, args: tuple = ()) -> None:
        def late(*arguments: Any) -> None:
            threading.Event().wait(0.2)  # a starved or stopped thread
            function(*arguments)
        start_thread(role, late, args)

    before = own_threads()
    monkeypatch.setattr(lifecycle, "start_thread", late_start)
    isolation = Isolation(repr)
    first, second = isolation.run_all(
        [("a", lambda: 1, "section"), ("b", lambda: 2, "section")], 0.05)
    assert first.error == second.error == (
        "section not run: df_gmr's thread did not get to it within 0.05 s")
    monkeypatch.undo()
    wait_until(lambda: own_threads() <= before, "the late threads did not end")
    assert isolation.stuck == {}  # so the next report runs them
    assert [o.result for o in isolation.run_all(
        [("a", lambda: 1, "section"), ("b", lambda: 2, "section")], 5)] \
        == [1, 2]


def test_an_interrupted_wait_abandons_the_rest():
    # A report built in the main thread (TextGuruMeditation.run()) whose
    # wait a signal handler interrupts, as Ctrl-C or oslo.service's
    # SignalExit do.
    import signal

    from df_gmr.isolation import Isolation

    class Interrupted(Exception):
        pass

    def interrupt(signum: int, frame: Any) -> None:
        raise Interrupted

    assert threading.current_thread() is threading.main_thread()
    ran: list[str] = []
    release = threading.Event()
    isolation = Isolation(repr)
    before = own_threads()
    previous = signal.signal(signal.SIGUSR1, interrupt)
    timer = threading.Timer(0.1, signal.pthread_kill,
                            (threading.main_thread().ident, signal.SIGUSR1))
    timer.start()
    try:
        isolation.run_all([
            ("a", lambda: release.wait(2), "section"),
            ("b", lambda: ran.append("b"), "section")], 5)
    except Interrupted:
        pass
    else:
        raise AssertionError("the interrupt did not reach run_all")
    finally:
        timer.join()
        signal.signal(signal.SIGUSR1, previous)
        release.set()
    wait_until(lambda: own_threads() <= before, "the thread did not end")
    assert ran == []  # nothing ran after the report gave up


def test_budgets_that_are_not_numbers_or_infinite_are_bounded():
    from df_gmr.isolation import MAX_TIMEOUT
    from df_gmr.isolation import Isolation

    isolation = Isolation(repr)
    for budget in (float("nan"), float("inf"), -5.0, 0.0):
        [outcome] = isolation.run_all([("a", lambda: 1, "section")], budget)
        assert outcome.result == 1, budget
    release = threading.Event()
    [outcome] = isolation.run_all(
        [("b", lambda: release.wait(DEADLINE), "section")], -1.0)
    release.set()
    assert outcome.error == "section cut off: it took more than 0.01 s"
    assert MAX_TIMEOUT < float("inf")
