"""Turn live frames into plain, comparable stack data.

A stack is collected in steps so that 100,000 greenthreads stay cheap:
``frame_positions`` walks a frame chain into a tuple of ``(code,
f_lasti)`` pairs (hashable, so identical stacks group by dict look-up
without touching any line table or source file), ``lined`` turns one such
tuple into ``(code, line)`` pairs (``frame_keys`` does both), and
``describe`` turns those into dicts with file, line, function and source
text, once per distinct stack.  Neither keeps a
frame alive.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable
import io
import linecache
import os
import sys
import tokenize
from types import CodeType
from types import FrameType
from typing import Any

from df_gmr import _native
from df_gmr import speedups
from df_gmr.codememo import CodeMemo

FrameKey = tuple[CodeType, int]
StackKey = tuple[FrameKey, ...]

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
#: df_gmr's report machinery: frames from here on are the report being
#: built, not the application (df_gmr's launcher and spawn wrappers, which
#: sit in the middle of application stacks, are not in this list).
REPORT_MACHINERY = tuple(
    PACKAGE_DIR + name
    for name in ("guru_meditation_report.py", "report.py", "render.py",
                 "sections" + os.sep)
)


#: Libraries whose frames stand between an application and the call that
#: spawned or created something (spawn functions, pools, launchers,
#: decorators, deprecation shims): an origin (a spawn site, a creation
#: site) is the first frame outside them and outside df_gmr itself.
#: Module name -> the name a report gives it.
WRAPPER_LIBRARIES = {
    "eventlet": "eventlet",
    "greenlet": "greenlet",
    "threading": "threading",
    "concurrent.futures": "concurrent.futures",
    "multiprocessing": "multiprocessing",  # cotyledon's workers run in it
    "socketserver": "socketserver",
    "asyncio": "asyncio",
    "oslo_service": "oslo.service",
    "oslo_messaging": "oslo.messaging",
    "futurist": "futurist",
    "cotyledon": "cotyledon",
    "debtcollector": "debtcollector",
    "functools": "functools",
    "oslo_utils": "oslo.utils",
}


def wrapper_prefixes() -> dict[str, str]:
    """Map the file prefixes of df_gmr and the wrappers to their names.

    A package's prefix is its directory; a single module (``functools``)
    is its file alone, never the whole standard library beside it.
    """
    prefixes = {PACKAGE_DIR: "df_gmr"}
    for module_name, shown in WRAPPER_LIBRARIES.items():
        path = getattr(sys.modules.get(module_name), "__file__", None)
        if not path:
            continue
        if os.path.basename(path).startswith("__init__."):
            prefixes[os.path.dirname(path) + os.sep] = shown
        else:
            prefixes[path] = shown
    return prefixes


#: In a recorded spawn site, between the spawner's callers (all library
#: code, up to its greenthread's outermost frame) and that greenthread's
#: own spawn site (df_gmr.callers): a code object, so that a site stays
#: a plain run of (code, offset) pairs.
SPAWNER_SPAWNED_AT = compile("", "<df_gmr: the spawner's own spawn site>",
                             "exec")


def origin(pairs: tuple[FrameKey, ...] | list[FrameKey],
           prefixes: dict[str, str], what: str = "spawned"
           ) -> dict[str, Any]:
    """Describe the first recorded frame outside the wrappers.

    ``pairs``: recorded ``(code, lineno)`` callers, innermost first.
    When every one is df_gmr's or a wrapper's, return ``{"unknown":
    why}`` instead: the report never names a wrapper as an origin.  A
    greenthread spawned by library code alone (a WSGI server's request)
    also gets ``spawner_spawned_at``: where the greenthread that ran that
    library code was spawned, when that is known.
    """
    if not pairs:
        return {"unknown": f"nothing recorded of where it was {what}"}
    wrappers = tuple(prefixes)
    for index, (code, lineno) in enumerate(pairs):
        if code is SPAWNER_SPAWNED_AT:  # all before it were wrappers'
            found = origin(pairs[:index], prefixes, what)
            spawner = origin([pair for pair in pairs[index + 1:]
                              if pair[0] is not SPAWNER_SPAWNED_AT],
                             prefixes)
            if "unknown" not in spawner:
                found["spawner_spawned_at"] = spawner
            return found
        if not code.co_filename.startswith(wrappers):
            return describe(((code, lineno),))[0]
    libraries = []
    for code, _ in pairs:
        for prefix, shown in prefixes.items():
            if code.co_filename.startswith(prefix) and shown != "df_gmr" \
                    and shown not in libraries:
                libraries.append(shown)
    count = len(pairs)
    callers = f"{count} recorded caller" + ("" if count == 1 else "s")
    if not libraries:
        return {"unknown": f"{what} by df_gmr's own code"}
    return {"unknown": f"{what} by library code only ("
                       f"{', '.join(libraries)}): no application frame "
                       f"among its {callers}"}


#: code -> {offset: line}: a code object that goes takes its entry with
#: it.
_LINES: CodeMemo[dict[int, int]] = CodeMemo()
#: A line's look-up in C (the interpreter's own scan of the line table),
#: where df_gmr._sites was built: the same lines as the loop below.
_line_at = getattr(speedups.module(), "line_at", None)


def line_at(code: CodeType, offset: int) -> int:
    """Return the line of the instruction at byte ``offset`` (``f_lasti``).

    The spawn and thread-start hooks record ``f_lasti``, a plain read,
    rather than ``f_lineno``, which scans the line table at every call;
    the line is found here, once per place, when a report reads it.
    """
    known = _LINES.get(code)
    if known is None:
        known = _LINES.put(code, {})
    line = known.get(offset)
    if line is None and _line_at is not None:
        line = known[offset] = _line_at(code, offset)
    if line is None:
        # A loop, not next() over a generator: one left unfinished is
        # closed by an exception thrown into it.
        line = code.co_firstlineno
        for start, end, number in code.co_lines():
            if start <= offset < end and number is not None:
                line = number
                break
        known[offset] = line
    return line


def frame_positions(frame: FrameType | None, limit: int = 200) -> StackKey:
    """Return the chain of ``frame`` as ``(code, f_lasti)`` pairs,
    outermost call first: the cheap key of a stack.

    ``f_lasti`` is a plain read; ``f_lineno`` scans the code's line table
    at every read (most of a walk's time).  Positions group as lines do,
    finer; ``lined`` turns a stack's positions into lines, once per
    distinct stack.
    """
    keys: list[FrameKey] = []
    while frame is not None and len(keys) < limit:
        keys.append((frame.f_code, frame.f_lasti))
        frame = frame.f_back
    del frame  # no reference cycle through this function's locals
    keys.reverse()
    return tuple(keys)


def _frame_ids(frame: FrameType | None, limit: int = 200,
               memo: dict[int, tuple[int, ...]] | None = None
               ) -> tuple[int, ...]:
    """Return ``(id(code), f_lasti, ...)`` of the chain of ``frame``,
    innermost first: the cheapest key of a stack, for a dict look-up per
    greenlet.  ``memo`` (a dict kept for one walk of many stacks) lets
    the C walk return one tuple for equal stacks and make no ints for
    them; here it is not needed (the ints are made either way).

    Ints hash at once; a code object's hash is computed again at every
    hash (its name, constants, names...), so a tuple of positions hashes
    every code of the stack each time.  An id names its code only while
    the code lives: whoever keys by it keeps the stack's positions (and
    so its codes) beside it.
    """
    keys: list[int] = []
    append = keys.append  # once per frame of every thread: bound once
    while frame is not None and limit:
        append(id(frame.f_code))
        append(frame.f_lasti)
        frame = frame.f_back
        limit -= 1
    del frame  # no reference cycle through this function's locals
    return tuple(keys)


#: The walk of every stack of a report, in C where df_gmr._sites was
#: built (the same keys: see tests/unit/test_sites.py).
frame_ids = getattr(speedups.module(), "frame_ids", _frame_ids)
if frame_ids is not _frame_ids:
    speedups.used.note("stack walk")


def ids_of(positions: StackKey) -> tuple[int, ...]:
    """Return what ``frame_ids`` returns for a stack of these positions."""
    return tuple(number for code, offset in reversed(positions)
                 for number in (id(code), offset))


def lined(positions: StackKey) -> StackKey:
    """Return a stack of ``(code, f_lasti)`` pairs as ``(code, line)``."""
    return tuple((code, line_at(code, offset)) for code, offset in positions)


def frame_keys(frame: FrameType | None, limit: int = 200) -> StackKey:
    """Return the chain of ``frame`` as ``(code, line)`` pairs, outermost
    call first."""
    return lined(frame_positions(frame, limit))


def without_own_frames(keys: StackKey) -> tuple[StackKey, bool]:
    """Cut the stack where it enters df_gmr; say whether anything was cut.

    A report built by an application thread (``TextGuruMeditation.run()``)
    would otherwise present df_gmr's own machinery as the thread's stack.
    """
    for index, (code, _) in enumerate(keys):
        if code.co_filename.startswith(REPORT_MACHINERY):
            return keys[:index], True
    return keys, False


class SourceLines:
    """The source lines that reports show, read from their files.

    ``linecache`` keeps every line of every file it reads, for good: the
    first report of a service with deep stacks would read and keep the
    whole source of dozens of modules (the memory touched at once, and
    kept at rest).  This keeps the lines shown, per file, checked against
    the file's size and modification time when a stack is described (a
    service upgraded in place shows its files as they are now, as
    ``linecache.checkcache`` would).  A file that ``linecache`` already
    holds (a traceback the service logged) is read from there.
    """

    def __init__(self) -> None:
        #: file name -> ((size, mtime in ns), {line number: text})
        self.files: dict[str, tuple[tuple[int, int], dict[int, str]]] = {}
        #: Between ``begin`` and ``end`` (a report), the files whose status
        #: was read (True: it could be read): once per report, not once
        #: per stack shown (a file in every stack was read twenty times a
        #: report).  None outside a report: read at every call.
        self.checked: dict[str, bool] | None = None
        #: Between ``begin`` and ``end``, the bytes read of each file
        #: (``_read_head``): another stack of the report wants other lines
        #: of it.  Never kept at rest.
        self.heads: dict[str, tuple[bytes, bool]] | None = None

    def begin(self) -> None:
        """Start a report: each file's status is read once until ``end``."""
        self.checked = {}
        self.heads = {}

    def end(self) -> None:
        """End a report: let go of the bytes read (see ``heads``)."""
        self.checked = None
        self.heads = None

    def lines(self, filename: str, numbers: set[int]) -> dict[int, str]:
        """Return the lines ``numbers`` of ``filename`` (missing: none)."""
        held = linecache.cache.get(filename)
        if held is not None and len(held) == 4:  # not a lazy entry
            text = held[2]
            return {number: text[number - 1] for number in numbers
                    if 0 < number <= len(text)}
        checked = self.checked
        readable = checked.get(filename) if checked is not None else None
        if readable is None:
            readable = self._check(filename)
            if checked is not None:
                checked[filename] = readable
        if not readable:
            return {}
        found = self.files[filename][1]
        missing = {number for number in numbers if number not in found}
        if missing:
            heads = self.heads
            lines, head = _read_lines(
                filename, missing,
                heads.get(filename) if heads is not None else None)
            found.update(lines)
            if head is not None and heads is not None:
                heads[filename] = head
        return {number: found[number] for number in numbers
                if number in found}

    def _check(self, filename: str) -> bool:
        """Read a file's size and modification time; forget its lines
        if either changed (say whether it can be read)."""
        try:
            status = os.stat(filename)
        except (OSError, ValueError):  # "<frozen runpy>", gone, no access
            return False
        signature = (status.st_size, status.st_mtime_ns)
        known = self.files.get(filename)
        if known is None or known[0] != signature:
            self.files[filename] = (signature, {})
        return True


#: Bytes read at a time from a source file, up to the last line wanted.
READ_CHUNK = 16384


def _read_head(filename: str, last: int) -> tuple[bytes, bool]:
    """Read a source file's bytes up to its line ``last`` (say whether
    that is the whole file): a first report reads a dozen modules, most
    of whose bytes it never shows."""
    return _native.read_head(filename, READ_CHUNK, last)


def _read_lines(filename: str, numbers: set[int],
                head: tuple[bytes, bool] | None = None
                ) -> tuple[dict[int, str], tuple[bytes, bool] | None]:
    """Read the lines ``numbers`` of a source file (its own encoding);
    return them, and the bytes read (``_read_head``) for the next call.

    The file's bytes are split up to the last line wanted (in C) and only
    the lines wanted are decoded: no str is made for the thousand lines
    before them.  ``head`` is what an earlier call of this report read: a
    line it holds is not read again.  A file with a lone carriage return
    (an old Mac line end, which Python reads as a line end too) is read
    as text instead.
    """
    found: dict[int, str] = {}
    last = max(numbers)
    try:
        if head is None or (not head[1] and head[0].count(b"\n") < last):
            head = _read_head(filename, last)
        data = head[0]
        encoding = _encoding(data)
        if b"\r" in data and b"\r" in data.replace(b"\r\n", b""):
            with tokenize.open(filename) as text:
                return {number: line for number, line in enumerate(text, 1)
                        if number in numbers}, None
        lines = data.split(b"\n", last)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return found, None  # unreadable or not text: not shown
    for number in numbers:
        if number <= len(lines):  # lines[last] is the rest of the file
            try:
                found[number] = lines[number - 1].decode(encoding)
            except (UnicodeDecodeError, LookupError):
                continue  # that line is not shown
    return found, head


def _encoding(data: bytes) -> str:
    """Return the encoding of a source file whose first bytes are ``data``.

    Most files have neither a byte order mark nor a coding line (PEP 263
    wants "coding" in one of the first two lines): UTF-8 then, as
    ``tokenize`` says, without its reader (~10 us a file of a first
    report).  Lines that are not UTF-8 are left out one by one.
    """
    second_end = data.find(b"\n", data.find(b"\n") + 1)  # -1: no 2 lines
    if not data.startswith(codecs.BOM_UTF8) and data.find(
            b"coding", 0, second_end if second_end >= 0 else len(data)) < 0:
        return "utf-8"
    encoding, _ = tokenize.detect_encoding(
        io.BytesIO(data[:READ_CHUNK]).readline)
    return encoding


#: The process's source lines, as reports show them.
source_lines = SourceLines()


def read_ahead(stacks: Iterable[StackKey]) -> None:
    """Read the source lines of several stacks, each file once (the
    stacks of one report share files; each would read it again for the
    lines new to it)."""
    _lines_of(stacks)


def _lines_of(stacks: Iterable[StackKey]) -> dict[str, dict[int, str]]:
    """Return the source lines of these stacks, by file."""
    wanted: dict[str, set[int]] = {}
    for keys in stacks:
        for code, lineno in keys:
            wanted.setdefault(code.co_filename, set()).add(lineno)
    return {filename: source_lines.lines(filename, numbers)
            for filename, numbers in wanted.items()}


def describe(keys: StackKey) -> list[dict[str, Any]]:
    """Return one dict per frame: file, line, function and source line."""
    text = _lines_of((keys,))
    return [
        {
            "file": code.co_filename,
            "line": lineno,
            "function": code.co_name,
            "code": text[code.co_filename].get(lineno, "").strip(),
        }
        for code, lineno in keys
    ]


def format_stack(frames: list[dict[str, Any]], indent: str = "  "
                 ) -> list[str]:
    """Return traceback-style lines for described frames, most recent last.

    df_gmr's own wrappers (launchers, the executors' hook) sit in the
    middle of application stacks: they say so, lest a reader blame df_gmr
    for what the code they call does.
    """
    lines: list[str] = []
    for frame in frames:
        own = " (df_gmr's wrapper)" if frame["file"].startswith(
            PACKAGE_DIR) else ""
        lines.append(
            f'{indent}File "{frame["file"]}", line {frame["line"]}, '
            f"in {frame['function']}{own}"
        )
        if frame["code"]:
            lines.append(f"{indent}  {frame['code']}")
    return lines
