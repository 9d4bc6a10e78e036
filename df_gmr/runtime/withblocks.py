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
``with self._lock:`` in f (file:line)".  Inferred from the stack: the
expression is re-read now (a body that rebinds ``self._lock`` names the
new object); inside ``Condition.wait`` (``Event.wait``, a queue's
``get``) the condition's lock is released while it waits, and that is
seen.  A lock acquired by ``acquire()`` without ``with``, or released by
hand inside the block, is not seen.  Read on CPython 3.11 only (see
``SUPPORTED``).
"""

from __future__ import annotations

import builtins
import dis
import os
import sys
from types import CodeType
from types import FrameType
from typing import Any

from df_gmr import naming
from df_gmr.codememo import CodeMemo
from df_gmr.runtime import bytecode

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

#: One ``with`` block: its body's byte offsets and the lines of its body.
Block = tuple[int, int, frozenset[int]]
#: The expression a ``with`` entered: its text, the path to read it, the
#: ``with`` statement's line.
Expression = tuple[str, tuple[str, ...], int]
#: A ``with`` block with what it entered: (body start, body end, that
#: expression or None).
Entered = tuple[int, int, "Expression | None"]
#: Where to look in a stack: (depth from the innermost frame, its code, a
#: ``Condition.wait``?, the blocks its line stands in, with what each
#: entered: read once per plan, not per member).
Plan = tuple[tuple[int, CodeType, bool, tuple[Entered, ...]], ...]
#: The bytecode layout this reading was checked against: CPython 3.11,
#: where a ``with`` body is one stretch of code covered by its handler's
#: table entries.  From 3.12 on, exception-handling code moves to the end
#: of the function, and the span of those entries is no longer the body;
#: 3.14 has no BEFORE_WITH.  Elsewhere no holder is read (none claimed).
SUPPORTED = sys.version_info[:2] == (3, 11)
_BEFORE_WITH = dis.opmap.get("BEFORE_WITH", -1)
_PUSH_EXC_INFO = dis.opmap.get("PUSH_EXC_INFO")
_WITH_EXCEPT_START = dis.opmap.get("WITH_EXCEPT_START")


class WithBlocks:
    """The ``with`` blocks of code objects, each read once.

    Kept across reports, weakly: a code object that goes (a module
    unloaded, a function redefined) takes its entry with it.
    """

    def __init__(self) -> None:
        self.blocks: CodeMemo[tuple[Block, ...]] = CodeMemo()
        #: Disassembled only for a frame found inside a block.
        self.expressions: CodeMemo[dict[int, Expression | None]] = \
            CodeMemo()

    def of(self, code: CodeType) -> tuple[Block, ...]:
        """Return the ``with`` blocks of ``code``, outermost first."""
        blocks = self.blocks.get(code)
        if blocks is None:
            blocks = self.blocks.put(code, _read_blocks(code))
        return blocks

    def expression(self, code: CodeType, start: int) -> Expression | None:
        """Return what the ``with`` whose body starts at ``start`` entered.
        """
        known = self.expressions.get(code)
        if known is None:
            known = self.expressions.put(code, {})
        if start not in known:
            known[start] = _expression_before(code, start)
        return known[start]

    def plan(self, keys: tuple[tuple[CodeType, int], ...]) -> Plan:
        """Return where, in a stack, ``held`` must look (once per group).

        The frames, counted from the innermost, that stand on a line of a
        ``with`` body, or are a ``Condition.wait`` (which released a
        lock), with their code; empty when no frame stands in a body.
        """
        steps = []
        innermost = len(keys) - 1
        for depth in range(min(len(keys), DEPTH)):
            code, line = keys[innermost - depth]
            waits = releases_while_waiting(code)
            # Only the blocks its line stands in: a frame on this line is
            # inside no other (its offset would be on one of their lines).
            entered = tuple((start, end, self.expression(code, start))
                            for start, end, lines in self.of(code)
                            if line in lines)
            if waits or entered:
                steps.append((depth, code, waits, entered))
        return tuple(steps) if any(step[3] for step in steps) else ()

    def held_by_plan(self, frame: FrameType | None, plan: Plan
                     ) -> list[dict[str, Any]]:
        """Return what ``held`` returns, looking only where ``plan`` says.

        A member of a group walks to the planned frames only; one whose
        stack is no longer the group's (a live thread moved on) is
        walked in full.
        """
        found: list[dict[str, Any]] = []
        released: set[int] = set()
        current, depth = frame, 0
        for target, code, waits, blocks in plan:
            while current is not None and depth < target:
                current = current.f_back
                depth += 1
            if current is None or current.f_code is not code:
                return self.held(frame)
            if waits:
                released.update(_released_by_wait(current))
            if blocks:
                found.extend(self._held_in(current, blocks, released))
        return found

    def held(self, frame: FrameType | None) -> list[dict[str, Any]]:
        """Return the locks a stack holds by ``with``, innermost first."""
        found: list[dict[str, Any]] = []
        released: set[int] = set()
        depth = 0
        while frame is not None and depth < DEPTH:
            code = frame.f_code
            if releases_while_waiting(code):
                released.update(_released_by_wait(frame))
            blocks = self.of(code)
            if blocks:
                lasti = frame.f_lasti
                # Disassembled only for a block the frame is inside.
                found.extend(self._held_in(frame, tuple(
                    (start, end, self.expression(code, start))
                    for start, end, _ in blocks if start <= lasti < end),
                    released))
            frame = frame.f_back
            depth += 1
        return found

    def _held_in(self, frame: FrameType, blocks: tuple[Entered, ...],
                 released: set[int]) -> list[dict[str, Any]]:
        found = []
        lasti = frame.f_lasti
        code = frame.f_code
        for start, end, entered in reversed(blocks):  # innermost first
            if entered is None or not start <= lasti < end:
                continue
            text, path, line = entered
            value = _evaluate(frame, path)
            # The Condition a wait below released (or its lock), the usual
            # case of a waiter: no need to tell what lock it is.
            if id(value) in released:
                continue
            lock = _lock(value)
            if lock is None or id(lock) in released:
                continue
            where = f"{os.path.basename(code.co_filename)}:{line}"
            found.append({
                "lock": f"{type(lock).__name__} {id(lock):#x}",
                "found_by": (f"the stack: inside 'with {text}:' in "
                             f"{code.co_name} ({where})")})
        return found


def releases_while_waiting(code: CodeType) -> bool:
    """Say whether ``code`` is threading's ``Condition.wait`` (Event's,
    Barrier's and the others' waits call it: their own frames release
    nothing).  Python 3.10 has no qualified name: any ``wait`` of
    threading counts there (its frame is read and tells)."""
    if code.co_name != "wait" or not code.co_filename.endswith(
            CONDITION_FILE):
        return False
    qualified = getattr(code, "co_qualname", None)
    return qualified is None or qualified == "Condition.wait"


def _released_by_wait(frame: FrameType) -> tuple[int, ...]:
    """Return the ids of the lock a ``Condition.wait`` frame released."""
    condition = frame.f_locals.get("self")
    if type(condition).__name__ != "Condition":
        return ()
    inner = naming.stored_attribute(condition, "_lock")
    return (id(condition), id(inner))


def _read_blocks(code: CodeType) -> tuple[Block, ...]:
    """Return the ``with`` blocks of ``code``, outermost first.

    From the exception table and the raw opcodes only (none of these
    three opcodes takes an argument or a cache entry): most code objects
    are never disassembled.
    """
    try:
        raw = code.co_code
        if not SUPPORTED or bytes((_BEFORE_WITH,)) not in raw[0::2]:
            return ()
        spans: dict[int, list[int]] = {}
        entries = dis.Bytecode(code).exception_entries  # type: ignore[attr-defined]
        for entry in entries:
            target = entry.target
            if target + 2 >= len(raw) or raw[target] != _PUSH_EXC_INFO \
                    or raw[target + 2] != _WITH_EXCEPT_START:
                continue
            span = spans.setdefault(target, [entry.start, entry.end])
            span[0] = min(span[0], entry.start)
            span[1] = max(span[1], entry.end)
        blocks = []
        for start, end in spans.values():
            # The body starts right after BEFORE_WITH.
            if start < 2 or raw[start - 2] != _BEFORE_WITH:
                continue
            lines = frozenset(
                number for first, last, number in code.co_lines()
                if number is not None and first < end and last > start)
            blocks.append((start, end, lines))
        return tuple(sorted(blocks))
    except Exception:  # an odd code object: no blocks, never a failure
        return ()


def _expression_before(code: CodeType, start: int) -> Expression | None:
    """Return the plain expression whose value BEFORE_WITH entered."""
    instructions = [instruction
                    for instruction in bytecode.before(code, start - 1)
                    if instruction.opname not in _SKIPPED]
    index = len(instructions) - 1
    if index < 1 or instructions[index].opname != "BEFORE_WITH":
        return None
    line = bytecode.line_of(code, instructions[index].offset) or 0
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
    opname = path[0]
    value: Any
    if opname in ("LOAD_GLOBAL", "LOAD_NAME"):
        value = frame.f_globals.get(path[1], _MISSING)
        if value is _MISSING:
            value = vars(builtins).get(path[1])
    else:
        value = frame.f_locals.get(path[1])
    for index in range(2, len(path)):
        if value is None:
            return None
        value = naming.stored_attribute(value, path[index])
    return value


_MISSING = object()
#: type -> what ``_lock`` makes of its instances: LOCK, CONDITION or None
#: (read once per type: a C type's module and name are new strings at
#: each read).  Types only, and only those found in ``with`` blocks.
_LOCK_KINDS: dict[type, str | None] = {}
LOCK = "lock"
CONDITION = "condition"


def _lock(value: Any) -> Any:
    """Return the lock ``value`` is (a Condition's own lock), or None."""
    kind = type(value)
    verdict = _LOCK_KINDS.get(kind, _MISSING)
    if verdict is _MISSING:
        verdict = _LOCK_KINDS[kind] = None if (
            kind.__module__, kind.__name__) not in LOCK_CLASSES else \
            CONDITION if kind.__name__ == "Condition" else LOCK
    if verdict is LOCK:
        return value
    if verdict is CONDITION:
        inner = naming.stored_attribute(value, "_lock")
        return inner if _lock(inner) is not None else None
    return None


#: The process's one cache of code objects' ``with`` blocks.
code_blocks = WithBlocks()
