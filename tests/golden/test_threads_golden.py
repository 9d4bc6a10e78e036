"""The Threads text, normalised, matches the golden file.

tests/scripts/golden_threads.py prints the Threads section of a fixed
scene (three workers on one event, an RLock held and wanted, a queue get,
a sleep, the main thread building the report).  What changes from run to
run is normalised: thread idents and other long numbers, native ids,
addresses, the standard library's directory and line numbers, this
checkout's path.

To regenerate threads.txt after an intended change of the text, run with
DF_GMR_REGOLD=1 (as for green_threads.txt) and review the diff:

    DF_GMR_REGOLD=1 .tox/py3/bin/pytest -q tests/golden/test_threads_golden.py
"""

from __future__ import annotations

import os
import pathlib
import re

from tests.daemons import run_python

GOLDEN = os.path.join(os.path.dirname(__file__), "threads.txt")


#: What changes from run to run, and what it reads as in the golden file.
NORMALISED = (
    (r"\b\d{9,}\b", "<id>"),  # thread idents (and an RLock's owner)
    (r"native id \d+", "native id <n>"),
    (r"0x[0-9a-f]+", "<addr>"),
    (r'File "[^"]*/lib/python3\.\d+/([^"/]+\.py)", line \d+',
     r'File "<stdlib>/\1", line N'),
    (r'File "[^"]*/tests/scripts/', 'File "<scripts>/'),
    (r"started at [^;\n]*/tests/scripts/", "started at <scripts>/"),
)


def normalise(text: str) -> str:
    for pattern, replacement in NORMALISED:
        text = re.sub(pattern, replacement, text)
    return text.strip() + "\n"


def test_threads_text_matches_golden():
    actual = normalise(run_python("golden_threads.py").stdout)
    golden = pathlib.Path(GOLDEN)
    if os.environ.get("DF_GMR_REGOLD"):
        golden.write_text(actual)
    assert actual == golden.read_text()
