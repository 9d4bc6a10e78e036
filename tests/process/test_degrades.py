"""Without eventlet, or without monkey patching, sections say so."""

from __future__ import annotations

import re

from tests.daemons import run_python


def report(mode: str) -> str:
    return run_python("plain.py", mode).stdout


def section(text: str, title: str) -> str:
    return text.split(f"==== {title}", 1)[1].split("\n====", 2)[1]


def test_without_eventlet_each_section_says_why():
    text = report("none")
    assert "eventlet loaded: False" in text  # df_gmr did not import it
    assert "Section failed" not in text
    assert re.search(r"not available: greenlet is not loaded",
                     section(text, "Green Threads"))
    assert "not available: eventlet is not loaded" in section(
        text, "Eventlet Hub")
    assert "not available" in section(text, "Green Pools")
    assert "MainThread" in section(text, "Threads")


def test_eventlet_imported_but_not_patched():
    text = report("unpatched")
    assert "Section failed" not in text
    # Imported, never run: one line says so, never an empty header.
    for title in ("Green Threads", "Eventlet Hub", "Green Pools"):
        assert "not available: eventlet is imported but not in use" in \
            section(text, title), title
    assert re.search(r"^Concurrency: eventlet \S+ \(monkey-patched: "
                     r"nothing; hub: none has run\)", text, re.M), text
