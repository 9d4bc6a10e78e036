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


def test_short_lines_come_out_as_textwrap_makes_them():
    import random
    import textwrap

    pieces = ["a", "fd 12", "  ", " ", "\t", "\n", "x" * 40, "caf\xe9",
              "\xa0", "-", "greenlet 140282884685888", "", "\x1b[31m"]
    chooser = random.Random(7)
    for _ in range(3000):
        text = "".join(chooser.choice(pieces)
                       for _ in range(chooser.randint(0, 5)))
        indent = chooser.choice(["", "  ", "      "])
        expected = textwrap.wrap(
            text, width=sections.WIDTH, initial_indent=indent,
            subsequent_indent=indent + "  ", break_on_hyphens=False,
            break_long_words=False) or [indent]
        assert sections.wrap(text, indent) == expected, (text, indent)
