"""The C spawn hook (df_gmr/_sites.c) records what the Python hook does."""

from __future__ import annotations

import pytest

from tests import compiled
from tests.daemons import child_env
from tests.daemons import run_python


def sites_with(pure: bool) -> list[str]:
    env = child_env(DF_GMR_PURE_PYTHON="1" if pure else None)
    return run_python("spawn_sites.py", env=env).stdout.splitlines()


def test_both_hooks_record_the_same_sites_and_share_them_alike():
    reason = compiled.why_not_built()
    if reason:
        pytest.skip(f"the C spawn hook: {reason}")
    c_hook, python_hook = sites_with(pure=False), sites_with(pure=True)
    assert c_hook[0] == "C (df_gmr._sites)", c_hook
    assert python_hook[0] == "pure Python (DF_GMR_PURE_PYTHON=1)"
    # The same codes at the same offsets, and the same sharing of site
    # tuples: a loop keeps one, another line of the frame its own, two
    # activations of one helper from one place the usual record.
    assert c_hook[1:-1] == python_hook[1:-1]
    loop = c_hook[1]
    assert loop.count("(0, [('<listcomp>'") == 3, loop
    assert "(1, [('loop_and_another_line'" in loop, loop
    # Two lines of one frame, one after the other: two sites.
    assert c_hook[2].startswith("two lines [(2, [('two_lines', ") and \
        "(3, [('two_lines', " in c_hook[2], c_hook
    # Spawned by library code alone: the site goes on, past the marker,
    # with where the spawning greenthread was spawned.
    [library] = [line for line in c_hook if line.startswith("library only")]
    assert "('main', " in library and \
        "('MARKER', 0), ('library_only', " in library, library
    # Each memo let go of its frame once the spawner returned.
    assert c_hook[-1] == "memos hold [False] [False]", c_hook
    assert python_hook[-1] == "memos hold [False] []", python_hook


def test_the_python_hook_runs_when_the_c_one_is_not_built():
    # A Python without the module (not built, another interpreter) gets
    # the pure-Python hook: the same one DF_GMR_PURE_PYTHON=1 forces.
    result = run_python(
        "import sys; sys.modules['df_gmr._sites'] = None\n"
        "from df_gmr import greenlets\n"
        "print(greenlets.compiled_sites(), greenlets.spawn_hook())")
    assert result.stdout == ("None pure Python (df_gmr._sites was not "
                             "built for this Python)\n"), result.stdout


def test_an_uninitialised_sites_refuses_rather_than_crashes():
    reason = compiled.why_not_built()
    if reason:
        pytest.skip(f"the C spawn hook: {reason}")
    from df_gmr import _sites  # type: ignore[attr-defined]

    bare = _sites.Sites.__new__(_sites.Sites)
    with pytest.raises(RuntimeError, match="not initialised"):
        bare.note(object())
    bare.forget_returned()  # nothing held: nothing to do
    assert bare.holds() is False
