"""What a native thread calls right now, when its stack shows no known wait.

A thread blocked in C (``lock.acquire()``, ``with lock:``, ``time.sleep``,
a socket's ``recv``) has no Python frame for that call: its innermost
frame is the caller, stopped at the call instruction.  ``decode`` reads
that instruction (``f_lasti``) and walks back over the call's arguments
to the expression that produced the callee: a chain of names such as
``self._lock`` + ``acquire``.  ``resolve`` then finds the object from the
frame's locals, globals and builtins, and from module and instance
``__dict__``s only: no property, ``__getattr__`` or ``__repr__`` of the
application runs.  Decoding is cached per (code, instruction).

What this cannot see: a callee built by an expression (a call result, a
subscript) and arguments built as lists; those stay unnamed ("unknown").
"""

from __future__ import annotations

import builtins
import dis
from types import CodeType
from types import FrameType
from types import ModuleType
from typing import Any

_CALLS = frozenset({"CALL", "CALL_METHOD", "CALL_FUNCTION",
                    "CALL_FUNCTION_KW", "CALL_KW", "CALL_FUNCTION_EX",
                    "PRECALL"})
_WITH = frozenset({"BEFORE_WITH", "SETUP_WITH"})
_SKIP = frozenset({"PRECALL", "KW_NAMES", "CACHE", "EXTENDED_ARG", "NOP",
                   "RESUME", "PUSH_NULL"})
_ROOTS = frozenset({"LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_NAME",
                    "LOAD_GLOBAL", "LOAD_DEREF", "LOAD_CLOSURE"})
_ATTRS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
_MAX_CACHE = 4096

#: (kind, name called, chain of (load kind, name), constant arguments)
Call = tuple[str, str, tuple[tuple[str, str], ...], tuple[Any, ...]]
_cache: dict[tuple[CodeType, int], Call | None] = {}


def _name(instruction: dis.Instruction) -> str:
    shown = instruction.argrepr
    for junk in ("NULL|self + ", " + NULL|self", "NULL + ", " + NULL"):
        shown = shown.replace(junk, "")
    return shown


def _effect(instruction: dis.Instruction) -> int:
    if instruction.opcode < dis.HAVE_ARGUMENT:
        return dis.stack_effect(instruction.opcode)
    return dis.stack_effect(instruction.opcode, instruction.arg or 0,
                            jump=False)


def _chain_ending(instructions: list[dis.Instruction], end: int
                  ) -> tuple[tuple[str, str], ...] | None:
    chain: list[tuple[str, str]] = []
    for index in range(end, -1, -1):
        instruction = instructions[index]
        if instruction.opname in _SKIP:
            continue
        if instruction.opname in _ATTRS:
            chain.append(("attr", _name(instruction)))
            continue
        if instruction.opname in _ROOTS:
            chain.append((instruction.opname, _name(instruction)))
            return tuple(reversed(chain))
        return None  # a call result, a subscript: not a plain name
    return None


def decode(code: CodeType, lasti: int) -> Call | None:
    """Return the call (or ``with``) the instruction at ``lasti`` makes."""
    key = (code, lasti)
    if key in _cache:
        return _cache[key]
    if len(_cache) > _MAX_CACHE:
        _cache.clear()
    instructions = list(dis.get_instructions(code))
    index = next((n for n, instruction in enumerate(instructions)
                  if instruction.offset == lasti), None)
    found: Call | None = None
    if index is not None:
        found = _decode_at(instructions, index)
    _cache[key] = found
    return found


def _decode_at(instructions: list[dis.Instruction], index: int
               ) -> Call | None:
    current = instructions[index]
    if current.opname in _WITH:
        chain = _chain_ending(instructions, index - 1)
        return ("with", "__enter__", chain, ()) if chain else None
    if current.opname not in _CALLS:
        return None
    arguments = current.arg or 0
    if current.opname in ("CALL_FUNCTION_KW", "CALL_KW"):
        arguments += 1  # the tuple of keyword names
    if current.opname == "CALL_FUNCTION_EX":
        arguments = 1 + ((current.arg or 0) & 1)
    depth, position = 0, index - 1
    while position >= 0 and depth < arguments:
        if instructions[position].opname not in _SKIP:
            depth += _effect(instructions[position])
        position -= 1
    while position >= 0 and instructions[position].opname in _SKIP:
        position -= 1
    chain = _chain_ending(instructions, position)
    if not chain:
        return None
    constants = tuple(instruction.argval
                      for instruction in instructions[position + 1:index]
                      if instruction.opname == "LOAD_CONST")
    return "call", chain[-1][1], chain, constants


def _namespace(owner: Any) -> dict[str, Any] | None:
    if isinstance(owner, ModuleType):
        return owner.__dict__
    try:
        namespace = object.__getattribute__(owner, "__dict__")
    except Exception:
        return None
    return namespace if type(namespace) is dict else None


def resolve(frame: FrameType, chain: tuple[tuple[str, str], ...]) -> Any:
    """Find the object a chain names, without running application code.

    Returns None when a link is a slot, a property or a class attribute.
    """
    kind, root = chain[0]
    try:
        if kind in ("LOAD_GLOBAL", "LOAD_NAME"):
            space = frame.f_globals
            owner = space[root] if root in space else vars(builtins)[root]
        else:
            owner = frame.f_locals[root]
    except KeyError:
        return None
    for _, attribute in chain[1:]:
        namespace = _namespace(owner)
        if namespace is None or attribute not in namespace:
            return None
        owner = namespace[attribute]
    return owner


def text(chain: tuple[tuple[str, str], ...]) -> str:
    """Return the chain as it reads in the source: ``self._lock.acquire``."""
    return ".".join(name for _, name in chain)
