"""What a report learns of a code object, kept for later reports.

A report reads the same code objects again and again (a line per offset,
the ``with`` blocks of a function).  ``weakref.WeakKeyDictionary`` would
keep that without keeping the code alive, but each look-up makes a new
weak reference and hashes the code object, which is not cached: its
name, its bytecode, its constants... (about 2 us a look-up, once per
frame of every distinct stack of every report).  A ``CodeMemo`` finds a
code's entry by its id and tells it from a later code at the same
address by a weak reference, made once per code.
"""

from __future__ import annotations

from types import CodeType
from typing import Generic
from typing import TypeVar
import weakref

Value = TypeVar("Value")


class CodeMemo(Generic[Value]):
    """Values kept per code object, by identity, never keeping it alive."""

    def __init__(self) -> None:
        #: id(code) -> (a weak reference to that code, its value)
        self._entries: dict[int, tuple[weakref.ref[CodeType], Value]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, code: CodeType) -> Value | None:
        """Return what was kept for ``code``, or None."""
        entry = self._entries.get(id(code))
        if entry is not None and entry[0]() is code:
            return entry[1]
        return None

    def put(self, code: CodeType, value: Value) -> Value:
        """Keep ``value`` for ``code`` while the code lives; return it."""
        key = id(code)
        entries = self._entries

        def gone(ref: weakref.ref[CodeType]) -> None:
            # Called when the code is freed, in whichever thread frees it:
            # the id may already name a newer code with its own entry.  A
            # race with a put for that newer code costs at most that its
            # value is read again.
            entry = entries.get(key)
            if entry is not None and entry[0] is ref:
                del entries[key]

        entries[key] = (weakref.ref(code, gone), value)
        return value
