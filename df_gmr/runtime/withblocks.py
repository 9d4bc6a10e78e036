"""Locks a stack holds, read from the ``with`` blocks it is inside.

A frame stopped inside the body of ``with self._lock:`` holds that lock:
the body runs only once ``__enter__`` (the acquire) returned, and until
``__exit__`` (the release) runs.  The compiler marks that body in the
code's exception table: every range whose handler begins with
``PUSH_EXC_INFO, WITH_EXCEPT_START`` belongs to one ``with`` block, and
the span of those ranges is its body.  The object is found again by
re-reading the expression that preceded ``BEFORE_WITH``, when it is a
plain name with attributes (``lock``, ``self._lock``, ``LOCK``,
``self.pool._sem``): read from the frame's locals, its globals and the
instances' ``__dict__`` only, so no application code runs.  A call
(``with lockutils.lock(name):``, ``with self.lock_for(x):``) is not
re-evaluated and not reported.

What counts as a lock: threading's Lock, RLock, Semaphore,
BoundedSemaphore and Condition (its underlying lock), eventlet's
Semaphore family and Lock.  Each lock found says how: "the stack: inside
``with self._lock:`` in f (file:line)".  Exact as far as the stack goes,
with one exception handled: inside ``Condition.wait`` (``Event.wait``,
a queue's ``get``) the condition's lock is released while it waits.  A
lock acquired by ``acquire()`` without ``with``, or released by hand
inside the block, is not seen.
"""

from __future__ import annotations

import builtins
import dis
import os
from types import CodeType
from types import FrameType
from typing import Any
import weakref

from df_gmr import naming

#: Frames looked at from the innermost, at most.
DEPTH = 60
#: (module, class name) of the locks a ``with`` block can hold.
LOCK_CLASSES = frozenset({
    ("_thread", "lock"), ("_thread", "RLock"),
    ("threading", "_RLock"), ("threading", "Semaphore"),
    ("threading", "BoundedSemaphore"), ("threading", "Condition"),
    ("eventlet.semaphore", "Semaphore"),
    ("eventlet.semaphore", "BoundedSemaphore"),
    ("eventlet.semaphore", "CappedSemaphore"),
    ("eventlet.lock", "Lock"),
})
#: threading's Condition.wait releases the lock while it waits: a
#: ``with cond:`` block around it does not hold it then.
CONDITION_FILE = "threading.py"
_ROOTS = frozenset({"LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_DEREF",
                    "LOAD_CLASSDEREF", "LOAD_GLOBAL", "LOAD_NAME"})
_SKIPPED = frozenset({"CACHE", "EXTENDED_ARG", "NOP"})

#: One ``with`` block: its body's byte offsets, the expression (text
#: and path to read), the ``with`` line, the lines of its body.
Block = tuple[int, int, str, tuple[str, ...], int, frozenset[int]]


class WithBlocks:
    """The ``with`` blocks of code objects, each read once.

    Kept across reports, weakly: a code object that goes (a module
    unloaded, a function redefined) takes its entry with it.
    """

    def __init__(self) -> None:
        self.blocks: weakref.WeakKeyDictionary[CodeType, tuple[Block, ...]] \
            = weakref.WeakKeyDictionary()

    def of(self, code: CodeType) -> tuple[Block, ...]:
        """Return the ``with`` blocks of ``code``, outermost first."""
        blocks = self.blocks.get(code)
        if blocks is None:
            blocks = self.blocks[code] = _read_blocks(code)
        return blocks

    def on_stack(self, keys: tuple[tuple[CodeType, int], ...]) -> bool:
        """Say whether any frame of a stack stands on a line of a
        ``with`` body (else no member with that stack need be walked)."""
        return any(line in block[5] for code, line in keys
                   for block in self.of(code))

    def held(self, frame: FrameType | None) -> list[dict[str, Any]]:
        """Return the locks a stack holds by ``with``, innermost first."""
        found: list[dict[str, Any]] = []
        released: set[int] = set()
        depth = 0
        while frame is not None and depth < DEPTH:
            code = frame.f_code
            if code.co_name == "wait" and \
                    code.co_filename.endswith(CONDITION_FILE):
                released.update(_released_by_wait(frame))
            blocks = self.of(code)
            if blocks:
                found.extend(_held_in(frame, blocks, released))
            frame = frame.f_back
            depth += 1
        return found


def _released_by_wait(frame: FrameType) -> tuple[int, ...]:
    """Return the ids of the lock a ``Condition.wait`` frame released."""
    condition = frame.f_locals.get("self")
    if type(condition).__name__ != "Condition":
        return ()
    inner = naming.stored_attribute(condition, "_lock")
    return (id(condition), id(inner))


def _held_in(frame: FrameType, blocks: tuple[Block, ...],
             released: set[int]) -> list[dict[str, Any]]:
    found = []
    lasti = frame.f_lasti
    for start, end, text, path, line, _ in reversed(blocks):  # innermost
        if not start <= lasti < end:
            continue
        lock = _lock(_evaluate(frame, path))
        if lock is None or id(lock) in released:
            continue
        code = frame.f_code
        where = f"{os.path.basename(code.co_filename)}:{line}"
        found.append({
            "lock": f"{type(lock).__name__} {id(lock):#x}",
            "found_by": (f"the stack: inside 'with {text}:' in "
                         f"{code.co_name} ({where})")})
    return found


def _read_blocks(code: CodeType) -> tuple[Block, ...]:
    """Return the ``with`` blocks of ``code``, outermost first."""
    try:
        if not _has_with(code):
            return ()
        bytecode = dis.Bytecode(code)
        instructions = [instruction for instruction in bytecode
                        if instruction.opname not in _SKIPPED]
        by_offset = {instruction.offset: index
                     for index, instruction in enumerate(instructions)}
        spans: dict[int, list[int]] = {}
        for entry in bytecode.exception_entries:  # type: ignore[attr-defined]
            index = by_offset.get(entry.target)
            if index is None or index + 1 >= len(instructions) or \
                    instructions[index].opname != "PUSH_EXC_INFO" or \
                    instructions[index + 1].opname != "WITH_EXCEPT_START":
                continue
            span = spans.setdefault(entry.target, [entry.start, entry.end])
            span[0] = min(span[0], entry.start)
            span[1] = max(span[1], entry.end)
        blocks = []
        for start, end in spans.values():
            block = _expression_before(instructions, by_offset, start)
            if block is not None:
                text, path, line = block
                lines = frozenset(
                    number for first, last, number in code.co_lines()
                    if number is not None and first < end and last > start)
                blocks.append((start, end, text, path, line, lines))
        return tuple(sorted(blocks))
    except Exception:  # an odd code object: no blocks, never a failure
        return ()


def _has_with(code: CodeType) -> bool:
    # BEFORE_WITH's opcode, looked for in the raw bytes: most code objects
    # have no with block and are never disassembled.
    opcode = dis.opmap.get("BEFORE_WITH")  # none since Python 3.14
    return opcode is not None and bytes((opcode,)) in code.co_code[0::2]


def _expression_before(instructions: list[Any], by_offset: dict[int, int],
                       start: int) -> tuple[str, tuple[str, ...], int] | None:
    """Return the plain expression whose value BEFORE_WITH entered."""
    index = by_offset.get(start)
    if index is None:
        return None
    index -= 1  # the body starts right after BEFORE_WITH
    if index < 1 or instructions[index].opname != "BEFORE_WITH":
        return None
    line = instructions[index].positions.lineno or 0
    attributes: list[str] = []
    index -= 1
    while index >= 0 and instructions[index].opname == "LOAD_ATTR":
        attributes.append(str(instructions[index].argval))
        index -= 1
    if index < 0 or instructions[index].opname not in _ROOTS:
        return None
    root = instructions[index]
    path = (root.opname, str(root.argval), *reversed(attributes))
    return ".".join(path[1:]), path, line


def _evaluate(frame: FrameType, path: tuple[str, ...]) -> Any:
    """Read ``path`` in ``frame`` without running application code."""
    opname, name, *attributes = path
    value: Any
    if opname in ("LOAD_GLOBAL", "LOAD_NAME"):
        value = frame.f_globals.get(name, _MISSING)
        if value is _MISSING:
            value = vars(builtins).get(name)
    else:
        value = frame.f_locals.get(name)
    for attribute in attributes:
        if value is None:
            return None
        value = naming.stored_attribute(value, attribute)
    return value


_MISSING = object()


def _lock(value: Any) -> Any:
    """Return the lock ``value`` is (a Condition's own lock), or None."""
    kind = type(value)
    if (kind.__module__, kind.__name__) not in LOCK_CLASSES:
        return None
    if kind.__name__ == "Condition":
        inner = naming.stored_attribute(value, "_lock")
        return inner if _lock(inner) is not None else None
    return value


#: The process's one cache of code objects' ``with`` blocks.
code_blocks = WithBlocks()
