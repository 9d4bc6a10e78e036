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

The call's arguments are read only when each is a constant or a variable
(``time.sleep(5)``, ``time.sleep(pause)``): an expression's constants are
not its value.

What this cannot see: a callee built by an expression (a call result, a
subscript) and arguments built as lists; those stay unnamed ("unknown").
"""

from __future__ import annotations

import builtins
import dataclasses
import dis
from types import CodeType
from types import FrameType
from types import ModuleType
from typing import Any

from df_gmr import naming
from df_gmr.runtime import bytecode

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

#: (kind, name called, chain of (load kind, name), arguments: each a
#: constant, a ``Local`` or a ``Global``; none when one is an expression)
Call = tuple[str, str, tuple[tuple[str, str], ...], tuple[Any, ...]]
#: (id(code), offset) -> (that code, its call): code objects found by
#: identity (hashing one hashes its bytecode, constants and names).
_cache: dict[tuple[int, int], tuple[CodeType, Call | None]] = {}


def _name(instruction: bytecode.Instruction) -> str:
    shown = instruction.argrepr
    for junk in ("NULL|self + ", " + NULL|self", "NULL + ", " + NULL"):
        shown = shown.replace(junk, "")
    return shown


def _effect(instruction: bytecode.Instruction) -> int:
    if instruction.opcode < dis.HAVE_ARGUMENT:
        return dis.stack_effect(instruction.opcode)
    return dis.stack_effect(instruction.opcode, instruction.arg or 0,
                            jump=False)


def _chain_ending(instructions: list[bytecode.Instruction], end: int
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
    key = (id(code), lasti)
    known = _cache.get(key)
    if known is not None and known[0] is code:
        return known[1]
    if len(_cache) > _MAX_CACHE:
        _cache.clear()
    # Only the instructions up to the call: it is decoded backwards.
    instructions = bytecode.before(code, lasti)
    found: Call | None = None
    if instructions and instructions[-1].offset == lasti:
        found = _decode_at(instructions, len(instructions) - 1)
    _cache[key] = (code, found)  # the code kept: its id stays its own
    return found


def _decode_at(instructions: list[bytecode.Instruction], index: int
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
    return "call", chain[-1][1], chain, _simple_arguments(
        instructions[position + 1:index], current.opname)


@dataclasses.dataclass(frozen=True)
class Local:
    """A call's argument that is a local variable of the calling frame."""

    name: str


@dataclasses.dataclass(frozen=True)
class Global:
    """A call's argument that is a global name of the calling frame."""

    name: str


def _simple_arguments(region: list[bytecode.Instruction], opname: str
                      ) -> tuple[Any, ...]:
    """Return the call's positional arguments when each is one constant
    or one variable (``time.sleep(5)``, ``time.sleep(pause)``); else
    nothing: an expression's constants are not its value."""
    loads = [instruction for instruction in region
             if instruction.opname not in _SKIP]
    if opname in ("CALL_FUNCTION_KW", "CALL_KW", "CALL_FUNCTION_EX") or \
            any(instruction.opname == "KW_NAMES" for instruction in region):
        return ()
    found: list[Any] = []
    for instruction in loads:
        if instruction.opname == "LOAD_CONST":
            found.append(instruction.argval)
        elif instruction.opname in ("LOAD_FAST", "LOAD_FAST_CHECK",
                                    "LOAD_DEREF"):
            found.append(Local(str(instruction.argval)))
        elif instruction.opname == "LOAD_GLOBAL":
            found.append(Global(_name(instruction)))
        else:
            return ()
    return tuple(found)


def argument(frame: FrameType, value: Any) -> Any:
    """Return an argument's value: the constant, or the frame's local or
    global variable (read from the namespace's dict; no code runs)."""
    if isinstance(value, Local):
        return frame.f_locals.get(value.name)
    if isinstance(value, Global):
        return frame.f_globals.get(value.name)
    return value


def _namespace(owner: Any) -> dict[str, Any] | None:
    if isinstance(owner, ModuleType):
        return owner.__dict__
    return naming.instance_dict(owner)


def resolve(frame: FrameType, chain: tuple[tuple[str, str], ...]) -> Any:
    """Find the object a chain names, without running application code.

    Returns None when a link is a slot, a property or a class attribute.
    """
    return resolve_both(frame, chain)[1]


def resolve_both(frame: FrameType, chain: tuple[tuple[str, str], ...]
                 ) -> tuple[Any, Any]:
    """Return what ``resolve`` finds for the chain but its last link (None
    for a chain of one name), and for the whole chain: one walk (one
    reading of the frame's locals, a sync of them all on 3.11)."""
    kind, root = chain[0]
    try:
        if kind in ("LOAD_GLOBAL", "LOAD_NAME"):
            space = frame.f_globals
            value = space[root] if root in space else vars(builtins)[root]
        else:
            value = frame.f_locals[root]
    except KeyError:
        return None, None
    owner = None
    last = len(chain) - 1
    for index, (_, attribute) in enumerate(chain[1:], 1):
        owner = value
        namespace = _namespace(owner)
        if namespace is None or attribute not in namespace:
            # Lost at the last link: only the whole chain is unknown.
            return (owner if index == last else None), None
        value = namespace[attribute]
    return owner, value


def text(chain: tuple[tuple[str, str], ...]) -> str:
    """Return the chain as it reads in the source: ``self._lock.acquire``."""
    return ".".join(name for _, name in chain)
