"""Where something was spawned or started: its callers, recorded cheaply.

The spawn hooks (``greenlets``) and the thread-start hook (``origins``)
record, at every spawn and every thread start, the code positions (code
object and ``f_lasti``, no frame kept) of the callers, innermost first:
through the wrapper libraries (``stacks.WRAPPER_LIBRARIES``: eventlet,
oslo.service, oslo.messaging, futurist, threading...) out to the
application's frame and its caller, at most MAX_CALLERS frames.  A
report names the first recorded frame outside the wrappers
(``stacks.origin``), deciding by file name again: what is recorded here
only bounds how far out a walk went, so a code misjudged here can cost
an origin ("library code only"), never name a wrong one.

This runs on every spawn: the usual case (the application's frame and
its caller, the same two codes as last time) is a straight line of
attribute reads and identity tests, and a spawn loop (a WSGI server's
requests, a pool filled in a loop) shares one tuple.  A thread start or
a spawn runs it with the caches cold; every bytecode counts there.
"""

from __future__ import annotations

from collections.abc import Callable
import gc
import inspect
import operator
import sys
from typing import Any

from df_gmr import stacks
from df_gmr.lifecycle import lifecycle

#: Callers recorded at most (libraries included), and the application's
#: frames after which a walk stops.
MAX_CALLERS = 16
APPLICATION_CALLERS = 2


class Callers:
    """Records caller positions for one hook (see the module)."""

    def __init__(self, spawner_site: Callable[[], Any] | None = None
                 ) -> None:
        #: Returns the current greenthread's own recorded site, or None
        #: (greenthread hooks only): see ``walk``.
        self.spawner_site = spawner_site
        #: id(code) -> whether the code is df_gmr's or a wrapper
        #: library's, decided when first seen (a code's file never
        #: changes).
        self.libraries: dict[int, bool] = {}
        #: The last usual record: ``(code, f_lasti, code, f_lasti)`` of an
        #: application frame and its caller (a walk stops there: a spawn
        #: from the same two places records exactly it), or ().
        self.usual: tuple[Any, ...] = ()
        #: The last walk's record: a walk equal to it is it.
        self.previous: tuple[Any, ...] = ()

    def record(self, frame: Any) -> tuple[Any, ...] | None:
        """Return ``(code, f_lasti, ...)`` of ``frame`` and its callers.

        None for no frame.  Called from hooks in any thread: the shared
        state is read once into locals, and at worst a record is not
        shared with the previous one.
        """
        if frame is None:
            return None
        code = frame.f_code
        back = frame.f_back
        if back is not None:
            back_code = back.f_code
            usual = self.usual
            same = bool(usual) and code is usual[0] and back_code is usual[2]
            if same or (self.libraries.get(id(code)) is False and
                        self.libraries.get(id(back_code)) is False):
                lasti, back_lasti = frame.f_lasti, back.f_lasti
                if same and lasti == usual[1] and back_lasti == usual[3]:
                    return usual
                recorded = self.usual = (code, lasti, back_code, back_lasti)
                return recorded
        previous = self.previous
        recorded = self.walk(frame)
        # Equal, then the codes the very same (in C): equal code objects
        # of two files (a copied module) compare equal.
        if recorded == previous and all(
                map(operator.is_, recorded[::2], previous[::2])):
            return previous
        self.previous = recorded
        if len(recorded) == 4 and not self.is_library(recorded[0]) and \
                not self.is_library(recorded[2]):
            self.usual = recorded  # two codes seen the first time
        return recorded

    def walk(self, frame: Any) -> tuple[Any, ...]:
        """Record through the wrappers to the application (any case)."""
        positions: list[Any] = []
        outside = 0
        while frame is not None and len(positions) < 2 * MAX_CALLERS:
            code = frame.f_code
            positions.append(code)
            positions.append(frame.f_lasti)
            if not self.is_library(code):
                outside += 1
                if outside == APPLICATION_CALLERS:
                    break
            frame = frame.f_back
        if frame is None and not outside and self.spawner_site is not None:
            # Library code alone, out to its greenthread's first frame (a
            # WSGI server spawning a request): where that greenthread was
            # spawned is what places this one.  Its site up to its own
            # marker: one level, a bounded tuple.
            spawner = self.spawner_site()
            if spawner:
                positions.append(stacks.SPAWNER_SPAWNED_AT)
                positions.append(0)
                for index in range(0, len(spawner), 2):
                    if spawner[index] is stacks.SPAWNER_SPAWNED_AT:
                        break
                    positions.extend(spawner[index:index + 2])
        del frame  # no reference cycle through this function's locals
        return tuple(positions)

    def is_library(self, code: Any) -> bool:
        """Say whether ``code`` is df_gmr's or a wrapper library's."""
        known = self.libraries.get(id(code))
        if known is None:
            known = self.libraries[id(code)] = code.co_filename.startswith(
                tuple(stacks.wrapper_prefixes()))
        return known


def pairs(recorded: tuple[Any, ...]) -> list[tuple[Any, int]]:
    """Return a record's ``(code, line)`` pairs, innermost first."""
    return [(code, stacks.line_at(code, offset))
            for code, offset in zip(recorded[::2], recorded[1::2],
                                    strict=True)]


def key(recorded: tuple[Any, ...]) -> tuple[int, ...]:
    """Return a cheap key of a record: its codes' ids and its offsets.

    Valid while the record (which holds the codes) is alive; two records
    of different lengths never share a key.
    """
    return (*map(id, recorded[::2]), *recorded[1::2])


#: A memo's entry when it holds no frame.
NOTHING: tuple[Any, ...] = (None, -1)
#: Codes whose frame is resumed (generators, coroutines): the same frame
#: at the same instruction may have another caller, greenlet or thread
#: each time, so a memo never holds one.
RESUMABLE = (inspect.CO_GENERATOR | inspect.CO_COROUTINE
             | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE)


class FrameMemo:
    """What a hook made of a frame at an instruction, while that frame runs.

    A loop of spawns or thread starts calls a hook from one frame at one
    instruction, over and over: the hook keeps ``(frame, f_lasti,
    *what it made)`` in ``entry`` and, seeing the very frame object at
    the same ``f_lasti``, reuses what it made (one frame read, where
    recording the callers reads several).  A frame object held is never
    given to another call, so the same object is the same call, with
    the same callers, in the same thread, unless the frame is a
    generator's or a coroutine's (RESUMABLE): a hook never keeps one.

    Holding the frame keeps its locals alive once it returns: after each
    run of the cyclic collector, a frame that only its memo holds any
    more (it returned) is let go (``_after_collection``).  Limit: a
    process that allocates nothing more keeps them meanwhile.  A forked
    child lets go of every memo's frame (its thread may be gone).
    """

    __slots__ = ("entry",)

    def __init__(self) -> None:
        self.entry: tuple[Any, ...] = NOTHING
        _MEMOS.append(self)
        _watch()


def keep_compiled(memo: Any) -> None:
    """Let go of a compiled memo's frame as a FrameMemo's is.

    ``memo`` is a ``df_gmr._sites.Sites``: its ``forget_returned()`` is
    called after each collection, its ``forget()`` in a forked child.
    """
    _COMPILED.append(memo)
    _watch()


_MEMOS: list[FrameMemo] = []
_COMPILED: list[Any] = []


def _watch() -> None:
    if len(_MEMOS) + len(_COMPILED) == 1:  # the first memo
        # Any thread, at any allocation: a few reads, no lock.
        gc.callbacks.append(_after_collection)
        lifecycle.reset_after_fork(_forget_all)


def _after_collection(phase: str, info: dict[str, Any]) -> None:
    if phase != "stop":
        return
    for memo in _MEMOS:
        # A running frame is held by its call too: more than the entry.
        if sys.getrefcount(memo.entry[0]) <= _ONLY_IN_ENTRY:
            memo.entry = NOTHING
    for compiled in _COMPILED:
        compiled.forget_returned()


def _forget_all() -> None:
    for memo in _MEMOS:
        memo.entry = NOTHING
    for compiled in _COMPILED:
        compiled.forget()


def _references_when_only_in_entry() -> int:
    # What sys.getrefcount says, in _after_collection, of a frame that only
    # an entry holds: the tuple's item and the call's argument.
    probe = object()
    holder = [(probe, 0)]
    del probe
    return sys.getrefcount(holder[0][0])


_ONLY_IN_ENTRY = _references_when_only_in_entry()
