"""A code object's instructions up to one offset, read cheaply.

``dis.get_instructions`` makes a full ``Instruction`` of every
instruction of a function: the ``repr`` of each constant, the source
position, the jump labels.  A report reads a few instructions just
before a frame's ``f_lasti`` (the call it makes, the expression a
``with`` entered) of a handful of functions, on the first report of a
process, where ``dis`` took about a fifth of the Threads section (2 ms
of its 1,000 threads).  On CPython 3.11, the version this reading was
checked against instruction by instruction (``SUPPORTED``; the tests
compare it with ``dis`` over whole modules), ``before`` reads the raw
bytecode itself and resolves only the names and constants the readers
use; elsewhere it asks ``dis``.
"""

from __future__ import annotations

import dis
import sys
from types import CodeType
from typing import Any
from typing import Protocol

#: The bytecode layout ``before`` reads itself: CPython 3.11's (two bytes
#: per unit, inline caches as zeroed CACHE units in ``co_code``, a
#: LOAD_GLOBAL's name index shifted by one bit).
SUPPORTED = sys.version_info[:2] == (3, 11) and \
    sys.implementation.name == "cpython"
_CACHE = dis.opmap.get("CACHE", -1)
_EXTENDED_ARG = dis.EXTENDED_ARG
_LOAD_GLOBAL = dis.opmap.get("LOAD_GLOBAL", -1)
_LOAD_CONST = dis.opmap["LOAD_CONST"]
_NAMES = frozenset(dis.hasname)
_LOCALS = frozenset(dis.haslocal) | frozenset(dis.hasfree)
_OPNAMES = dis.opname
_HAVE_ARGUMENT = dis.HAVE_ARGUMENT


class Instruction(Protocol):
    """What the readers take of an instruction (an ``Op``, or a
    ``dis.Instruction`` where ``before`` asks ``dis``)."""

    @property
    def opname(self) -> str:
        """The operation's name."""

    @property
    def opcode(self) -> int:
        """The operation's number."""

    @property
    def arg(self) -> int | None:
        """The raw argument (None: it takes none)."""

    @property
    def argval(self) -> Any:
        """The constant, name or variable name it loads, else ``arg``."""

    @property
    def argrepr(self) -> str:
        """The name it loads, as ``dis`` shows it."""

    @property
    def offset(self) -> int:
        """Its byte offset in the code."""


class Op:
    """One instruction: the fields of ``dis.Instruction`` the readers use.

    ``argval`` is that of ``dis`` for an instruction that loads a
    constant (LOAD_CONST), a name or a variable, and ``argrepr`` for a name
    or a variable (a constant's ``repr`` is never made: the readers take its
    value); for any other, ``argval`` is the raw argument and ``argrepr``
    is empty.
    """

    __slots__ = ("arg", "argrepr", "argval", "offset", "opcode", "opname")

    def __init__(self, opname: str, opcode: int, arg: int | None,
                 argval: Any, argrepr: str, offset: int) -> None:
        self.opname = opname
        self.opcode = opcode
        self.arg = arg
        self.argval = argval
        self.argrepr = argrepr
        self.offset = offset


def before(code: CodeType, stop: int) -> list[Instruction]:
    """Return the instructions of ``code`` at offsets up to ``stop``, the
    one at ``stop`` included, CACHE units left out (as ``dis`` does):
    an ``Op`` each here, a ``dis.Instruction`` where unsupported."""
    found: list[Instruction] = []
    if not SUPPORTED:
        for instruction in dis.get_instructions(code):
            if instruction.offset > stop:
                break
            found.append(instruction)
        return found
    raw = code.co_code
    names = code.co_names
    consts = code.co_consts
    extended = 0
    end = min(stop + 1, len(raw))
    for offset in range(0, end, 2):
        op = raw[offset]
        if op == _CACHE:
            continue
        arg: int | None = None
        argval: Any = None
        argrepr = ""
        if op >= _HAVE_ARGUMENT:
            arg = raw[offset + 1] | extended
            extended = arg << 8 if op == _EXTENDED_ARG else 0
            argval = arg
            if op == _LOAD_CONST:
                argval = consts[arg]
            elif op == _LOAD_GLOBAL:
                argval = names[arg >> 1]
                argrepr = f"NULL + {argval}" if arg & 1 else argval
            elif op in _NAMES:
                argval = argrepr = names[arg]
            elif op in _LOCALS:
                argval = argrepr = code._varname_from_oparg(  # type: ignore[attr-defined]
                    arg)
        else:
            extended = 0
        found.append(Op(_OPNAMES[op], op, arg, argval, argrepr, offset))
    return found


def line_of(code: CodeType, offset: int) -> int | None:
    """Return the source line of the instruction at ``offset`` (None: the
    compiler gave it none), as ``dis``'s ``positions.lineno`` says."""
    for start, end, line in code.co_lines():
        if start <= offset < end:
            return line
    return None
