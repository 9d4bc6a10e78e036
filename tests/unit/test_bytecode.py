"""The lean instruction reader says what ``dis`` says, instruction by
instruction, over whole modules; and the decoders read the same calls
and ``with`` expressions from it as from ``dis``."""

from __future__ import annotations

import concurrent.futures.thread
import dis
import logging
import pathlib
import queue
import socket
import subprocess
import threading
from types import CodeType
import typing
from typing import Any

import pytest

import df_gmr.report
from df_gmr.runtime import bytecode
from df_gmr.runtime import callsite
from df_gmr.runtime import withblocks
import df_gmr.runtime.natives

MODULES = (threading, queue, socket, subprocess, concurrent.futures.thread,
           logging, typing,
           df_gmr.report, df_gmr.runtime.natives, callsite, withblocks)
NAMED = frozenset(dis.hasname) | frozenset(dis.haslocal) | \
    frozenset(dis.hasfree)
LOADED = NAMED | {dis.opmap["LOAD_CONST"]}

needs_311 = pytest.mark.skipif(
    not bytecode.SUPPORTED,
    reason="read without dis on CPython 3.11 only (dis elsewhere)")


def _codes() -> list[CodeType]:
    """Every code object of the modules, nested ones included."""
    found: list[CodeType] = []
    pending = [compile(pathlib.Path(module.__file__).read_text("utf-8"),
                       module.__file__, "exec") for module in MODULES]
    while pending:
        code = pending.pop()
        found.append(code)
        pending.extend(const for const in code.co_consts
                       if isinstance(const, CodeType))
    return found


CODES = _codes()


def _fields(instruction: Any) -> tuple[Any, ...]:
    opcode = instruction.opcode
    return (instruction.offset, instruction.opname, opcode, instruction.arg,
            instruction.argval if opcode in LOADED else None,
            instruction.argrepr if opcode in NAMED else None)


@needs_311
def test_every_instruction_of_whole_modules_is_read_as_dis_reads_it():
    assert len(CODES) > 500  # whole modules, not a sample
    for code in CODES:
        expected = [_fields(instruction)
                    for instruction in dis.get_instructions(code)]
        last = expected[-1][0]
        assert [_fields(op) for op in bytecode.before(code, last)] == \
            expected, code


@needs_311
def test_reading_stops_at_the_offset_asked_for():
    code = threading.Condition.wait.__code__
    offsets = [instruction.offset
               for instruction in dis.get_instructions(code)]
    for stop in offsets:
        read = bytecode.before(code, stop)
        assert read[-1].offset == stop
        assert [op.offset for op in read] == \
            [offset for offset in offsets if offset <= stop]
        # An odd offset reads what comes before it.
        assert [op.offset for op in bytecode.before(code, stop - 1)] == \
            [offset for offset in offsets if offset < stop]


def test_where_unsupported_it_is_dis_that_reads(monkeypatch):
    monkeypatch.setattr(bytecode, "SUPPORTED", False)
    code = queue.Queue.get.__code__
    stop = [instruction.offset
            for instruction in dis.get_instructions(code)][10]
    read = bytecode.before(code, stop)
    assert all(isinstance(op, dis.Instruction) for op in read)
    assert [op.offset for op in read][-1] == stop


def test_a_with_statement_line_is_the_one_dis_gives():
    with_op = dis.opmap.get("BEFORE_WITH")
    if with_op is None:
        pytest.skip("no BEFORE_WITH in this Python")
    seen = 0
    for code in CODES:
        for instruction in dis.get_instructions(code):
            if instruction.opcode == with_op:
                seen += 1
                assert bytecode.line_of(code, instruction.offset) == \
                    instruction.positions.lineno
    assert seen > 20


def test_the_calls_decoded_are_those_dis_decodes(monkeypatch):
    # callsite.decode over every call and with of the modules, once from
    # the lean reading and once from dis's: the same chains, names and
    # arguments.
    calls = frozenset(callsite._CALLS | callsite._WITH)

    def decode_all() -> list[Any]:
        callsite._cache.clear()
        return [(code.co_name, instruction.offset,
                 callsite.decode(code, instruction.offset))
                for code in CODES
                for instruction in dis.get_instructions(code)
                if instruction.opname in calls]

    lean = decode_all()
    monkeypatch.setattr(bytecode, "SUPPORTED", False)
    assert lean == decode_all()
    assert sum(1 for *_, call in lean if call) > 500
    callsite._cache.clear()


def test_the_with_expressions_read_are_those_dis_reads(monkeypatch):
    starts = [(code, start) for code in CODES
              for start, _, _ in withblocks._read_blocks(code)]
    if not starts:
        pytest.skip("with blocks are read on CPython 3.11 only")
    lean = [withblocks._expression_before(code, start)
            for code, start in starts]
    monkeypatch.setattr(bytecode, "SUPPORTED", False)
    assert lean == [withblocks._expression_before(code, start)
                    for code, start in starts]
    assert sum(1 for found in lean if found) > 20
