"""Stack keys: positions, their ids and their lines agree."""

from __future__ import annotations

import codecs
import io
import tokenize

import greenlet
import pytest

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


def _code_of(path, source: str):
    return compile(source.encode("latin-1"), str(path), "exec")


def test_source_lines_are_read_in_the_files_encoding_and_kept_alone(
        tmp_path):
    import linecache

    path = tmp_path / "module.py"
    text = "# -*- coding: latin-1 -*-\nx = 1\ny = 'caf\xe9'\n"
    path.write_bytes(text.encode("latin-1"))
    code = _code_of(path, text)
    described = stacks.describe(((code, 3), (code, 2), (code, 99)))
    assert [frame["code"] for frame in described] == [
        "y = 'caf\xe9'", "x = 1", ""]
    # Only the lines shown are kept; linecache holds nothing of the file.
    assert str(path) not in linecache.cache
    assert stacks.source_lines.files[str(path)][1].keys() == {2, 3}


def test_a_source_file_changed_in_place_shows_its_new_lines(tmp_path):
    import os

    path = tmp_path / "changed.py"
    path.write_text("a = 1\nb = 2\n")
    code = _code_of(path, "a = 1\n")
    assert stacks.describe(((code, 2),))[0]["code"] == "b = 2"
    path.write_text("a = 1\nb = 'upgraded'\n")
    status = path.stat()  # a new size, and a later time to be sure
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))
    assert stacks.describe(((code, 2),))[0]["code"] == "b = 'upgraded'"


def test_missing_and_frozen_sources_show_no_line(tmp_path):
    code = compile("pass\n", "<frozen runpy>", "exec")
    gone = compile("pass\n", str(tmp_path / "gone.py"), "exec")
    assert [frame["code"] for frame in stacks.describe(
        ((code, 1), (gone, 1)))] == ["", ""]


def test_source_lines_agree_with_linecache_on_real_files():
    import linecache
    import threading

    for module in (threading, stacks):
        filename = module.__file__
        assert filename is not None
        total = len(linecache.getlines(filename))
        numbers = {1, 2, total // 2, total - 1, total, total + 5}
        stacks.source_lines.files.pop(filename, None)
        held = linecache.cache.pop(filename, None)
        try:
            found = stacks.source_lines.lines(filename, numbers)
        finally:
            if held is not None:
                linecache.cache[filename] = held
        for number in numbers:
            assert found.get(number, "").strip() == \
                linecache.getline(filename, number).strip(), number


def test_crlf_bom_and_lone_cr_sources_read_as_python_reads_them(tmp_path):
    crlf = tmp_path / "crlf.py"
    crlf.write_bytes(b"\xef\xbb\xbfa = 1\r\nb = '\xc3\xa9'\r\n")
    assert stacks.source_lines.lines(str(crlf), {1, 2}) == {
        1: "a = 1\r", 2: "b = '\xe9'\r"}
    lone = tmp_path / "lone.py"
    lone.write_bytes(b"a = 1\rb = 2\r")
    assert {number: line.strip() for number, line in
            stacks.source_lines.lines(str(lone), {2}).items()} == {
        2: "b = 2"}


def test_a_report_reads_each_source_file_once(tmp_path, monkeypatch):
    import os

    path = tmp_path / "shared.py"
    path.write_text("".join(f"line_{number} = {number}\n"
                            for number in range(1, 41)))
    code = _code_of(path, "line_1 = 1\n")
    stats: list[str] = []
    heads: list[str] = []
    real_stat, real_head = os.stat, stacks._read_head
    monkeypatch.setattr(os, "stat", lambda name, *args, **kwargs: (
        stats.append(str(name)), real_stat(name, *args, **kwargs))[1])
    monkeypatch.setattr(stacks, "_read_head", lambda name, last: (
        heads.append(name), real_head(name, last))[1])
    stacks.source_lines.begin()
    try:
        # Two stacks of one report, other lines of one file each.
        first = stacks.describe(((code, 2), (code, 30)))
        second = stacks.describe(((code, 5), (code, 31)))
    finally:
        stacks.source_lines.end()
    assert [frame["code"] for frame in first + second] == [
        "line_2 = 2", "line_30 = 30", "line_5 = 5", "line_31 = 31"]
    assert stats.count(str(path)) == 1
    assert heads == [str(path)]
    # Nothing read is kept once the report ended; the next one reads the
    # file's status again (an upgrade in place shows).
    assert stacks.source_lines.heads is None
    path.write_text("line_1 = 'new'\n" * 40)
    stacks.source_lines.begin()
    try:
        assert stacks.describe(((code, 2),))[0]["code"] == "line_1 = 'new'"
    finally:
        stacks.source_lines.end()
    assert stats.count(str(path)) == 2


@pytest.mark.parametrize("source", [
    b"x = 1\ny = 2\n",
    b"# -*- coding: latin-1 -*-\nx = 1\n",
    b"#!/usr/bin/python\n# vim: set fileencoding=cp1252 :\nx = 1\n",
    b"\n\n# coding: latin-1\n",  # the third line: not a coding line
    codecs.BOM_UTF8 + b"x = 1\n",
    b"",
    b"x = 1",
    b"x = 1\n",
    b"a = 1\nb = 2  # coding: latin-1 (not a comment line)\n",
], ids=range(9))
def test_a_files_encoding_is_tokenizes(source):
    # UTF-8 at once for a file without a byte order mark or a coding line
    # in its first two; tokenize's answer for the others.
    assert stacks._encoding(source) == \
        tokenize.detect_encoding(io.BytesIO(source).readline)[0]
