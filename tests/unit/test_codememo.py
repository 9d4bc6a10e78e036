"""CodeMemo: kept per code object by identity, never keeping it alive."""

from __future__ import annotations

import gc
from types import CodeType
import weakref

from df_gmr import stacks
from df_gmr.codememo import CodeMemo


def _fresh_code(line: int) -> CodeType:
    source = "\n" * line + "def f():\n    return 1\n"
    namespace: dict[str, object] = {}
    exec(compile(source, "<memo test>", "exec"), namespace)
    function = namespace["f"]
    return function.__code__  # type: ignore[attr-defined,no-any-return]


def test_a_value_is_found_by_the_code_itself() -> None:
    memo: CodeMemo[str] = CodeMemo()
    first, second = _fresh_code(1), _fresh_code(1)
    assert first == second and first is not second  # equal, two objects
    assert memo.put(first, "first") == "first"
    assert memo.get(first) == "first"
    assert memo.get(second) is None  # by identity, never by equality


def test_the_memo_never_keeps_a_code_alive_and_forgets_it() -> None:
    memo: CodeMemo[dict[int, int]] = CodeMemo()
    code = _fresh_code(3)
    memo.put(code, {0: 4})
    watcher = weakref.ref(code)
    del code
    gc.collect()
    assert watcher() is None
    assert len(memo) == 0


def test_a_newer_code_at_a_freed_codes_address_is_not_the_old_one() -> None:
    memo: CodeMemo[str] = CodeMemo()
    old, newer = _fresh_code(5), _fresh_code(6)
    memo.put(old, "old")
    stale = memo._entries.pop(id(old))
    # As if ``newer`` had been allocated where ``old`` was, before old's
    # entry was dropped: the entry under its id names another code.
    memo._entries[id(newer)] = stale
    assert memo.get(newer) is None
    memo.put(newer, "newer")
    assert memo.get(newer) == "newer"
    # old's entry going (its weak reference's callback) leaves newer's.
    del old, stale
    gc.collect()
    assert memo.get(newer) == "newer"


def test_line_at_reads_each_offset_of_each_code_object() -> None:
    code = _fresh_code(9)
    lines = {stacks.line_at(code, start) for start, _, line in code.co_lines()
             if line is not None}
    assert lines == {line for _, _, line in code.co_lines()
                     if line is not None}
    assert stacks.line_at(_fresh_code(20), 2) != stacks.line_at(code, 2)
