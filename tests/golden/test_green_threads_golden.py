"""The Green Threads text, normalised, matches the golden file."""

from __future__ import annotations

import os
import re

from tests.daemons import run_python

GOLDEN = os.path.join(os.path.dirname(__file__), "green_threads.txt")


def normalise(text: str) -> str:
    text = re.sub(r"\b\d{9,}\b", "<id>", text)
    text = re.sub(r"0x[0-9a-f]+", "<addr>", text)
    text = re.sub(r'File "[^"]*/eventlet/([^"]+)", line \d+',
                  r'File "<eventlet>/\1", line N', text)
    text = re.sub(r'File "[^"]*/tests/scripts/', 'File "<scripts>/', text)
    text = re.sub(r"spawned at [^;\n]*/tests/scripts/",
                  "spawned at <scripts>/", text)
    text = re.sub(r"due_in [\d.]+", "due_in <s>", text)
    text = re.sub(r"waiting [\d.]+s", "waiting <s>", text)
    return text.strip() + "\n"


def test_green_threads_text_matches_golden():
    actual = normalise(run_python("golden_green.py").stdout)
    if os.environ.get("DF_GMR_REGOLD"):
        with open(GOLDEN, "w") as handle:
            handle.write(actual)
    with open(GOLDEN) as handle:
        assert actual == handle.read()
