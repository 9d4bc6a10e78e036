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
