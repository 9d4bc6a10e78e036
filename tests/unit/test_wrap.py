"""Section text: wrapped to 78 columns, never breaking what is copied."""

from __future__ import annotations

from df_gmr import sections


def test_wrap_keeps_a_long_identifier_whole_on_its_own_line():
    path = "/usr/lib/python3/dist-packages/" + "nova_" * 12 + "conductor.py"
    said = f"waiting in {path} since 3 s, held by thread 7"
    lines = sections.wrap(said, indent="  ")
    assert [line.strip() for line in lines].count(path) == 1, lines
    assert " ".join(" ".join(lines).split()) == said, lines
    assert all(len(line) <= sections.WIDTH for line in lines
               if path not in line), lines
