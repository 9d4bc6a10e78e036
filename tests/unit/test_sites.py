"""df_gmr._sites (df_gmr/_sites.c) does what its pure-Python twins do."""

from __future__ import annotations

from typing import Any

import greenlet
import pytest

from tests import compiled
from tests.daemons import child_env
from tests.daemons import run_python


def sites_with(pure: bool, *args: str) -> list[str]:
    env = child_env(DF_GMR_PURE_PYTHON="1" if pure else None)
    return run_python("spawn_sites.py", *args, env=env).stdout.splitlines()


@pytest.fixture
def sites() -> Any:
    """df_gmr._sites, the C module (the test is skipped where it was not
    built)."""
    reason = compiled.why_not_built()
    if reason:
        pytest.skip(f"df_gmr._sites: {reason}")
    from df_gmr import _sites  # type: ignore[attr-defined]

    return _sites


def test_both_hooks_record_the_same_sites_and_share_them_alike():
    reason = compiled.why_not_built()
    if reason:
        pytest.skip(f"the C spawn hook: {reason}")
    c_hook, python_hook = sites_with(pure=False), sites_with(pure=True)
    assert c_hook[0] == "{'c': ['spawn hook', 'stack walk']}", c_hook
    assert python_hook[0] == "{'c': [], 'why_not': 'DF_GMR_PURE_PYTHON=1'}"
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


def test_frames_made_already_are_found_as_sys_getframe_finds_them():
    # Under a profile function every frame has its object from its call:
    # the C hook reads the spawner's without sys._getframe (CPython 3.11)
    # and must record what the Python hook records through it.
    reason = compiled.why_not_built()
    if reason:
        pytest.skip(f"the C spawn hook: {reason}")
    c_hook = sites_with(False, "profiled")
    python_hook = sites_with(True, "profiled")
    assert c_hook[1:-1] == python_hook[1:-1]
    assert c_hook[1:-1] == sites_with(False)[1:-1]


def test_the_python_hook_runs_when_the_c_one_is_not_built():
    # A Python without the module (not built, another interpreter) gets
    # the pure-Python hook: the same one DF_GMR_PURE_PYTHON=1 forces.
    result = run_python(
        "import sys; sys.modules['df_gmr._sites'] = None\n"
        "from df_gmr import greenlets, speedups, stacks\n"
        "print(greenlets.compiled_sites(), speedups.available())\n"
        "print(stacks.frame_ids is stacks._frame_ids, "
        "speedups.used.header())")
    assert result.stdout == (
        "None pure Python (df_gmr._sites was not built for this Python)\n"
        "True {'c': [], 'why_not': 'df_gmr._sites was not built for this "
        "Python'}\n"), result.stdout


def test_an_uninitialised_sites_refuses_rather_than_crashes(sites):
    bare = sites.Sites.__new__(sites.Sites)
    with pytest.raises(RuntimeError, match="not initialised"):
        bare.note(object())
    bare.forget_returned()  # nothing held: nothing to do
    assert bare.holds() is False


def _parked(depth: int) -> greenlet.greenlet:
    def down(left: int) -> None:
        if left:
            down(left - 1)
        else:
            greenlet.getcurrent().parent.switch()

    parked = greenlet.greenlet(down)
    parked.switch(depth)
    return parked


def test_the_c_stack_walk_gives_the_python_walks_keys(sites):
    from df_gmr import stacks

    assert stacks.frame_ids is sites.frame_ids  # the one reports use
    python = stacks._frame_ids
    parked = [_parked(depth) for depth in (0, 3, 250)]
    for green in parked:
        frame = green.gr_frame
        for limit in (0, 1, 2, 200, 1000):
            assert sites.frame_ids(frame, limit) == python(frame, limit)
        assert sites.frame_ids(frame) == python(frame)
        assert sites.frame_ids(frame) == stacks.ids_of(
            stacks.frame_positions(frame))
    assert len(sites.frame_ids(parked[2].gr_frame)) == 2 * 200
    # down(250) .. down(0): 251 frames, every one past the default limit.
    assert len(sites.frame_ids(parked[2].gr_frame, 1000)) == 2 * 251

    def suspended():
        yield 1

    generator = suspended()
    next(generator)  # a suspended generator's frame: no f_back
    assert sites.frame_ids(generator.gi_frame) == \
        python(generator.gi_frame)
    assert sites.frame_ids(None) == python(None) == ()
    with pytest.raises(TypeError, match="wants a frame, not int"):
        sites.frame_ids(1)
    with pytest.raises(TypeError):
        sites.frame_ids()
    with pytest.raises(TypeError):
        sites.frame_ids(None, "many")
    for green in parked:
        green.throw(greenlet.GreenletExit)


def test_the_c_stack_walk_with_a_memo_gives_one_tuple_per_stack(sites):
    from df_gmr import stacks

    python = stacks._frame_ids
    # Two greenlets parked at one stack, two at others (one deeper than
    # the walk's first buffer of 64 frames).
    parked = [_parked(depth) for depth in (3, 3, 4, 100)]
    memo: dict[int, tuple[int, ...]] = {}
    found = [sites.frame_ids(green.gr_frame, 200, memo) for green in parked]
    assert found[0] is found[1]  # equal stacks: the memo's tuple
    assert found[0] is not found[2]
    for green, keys in zip(parked, found, strict=True):
        assert keys == python(green.gr_frame) == \
            python(green.gr_frame, 200, memo)
        # Asked again: the memo's tuple, equal to a walk without it.
        assert sites.frame_ids(green.gr_frame, 200, memo) is keys
        assert sites.frame_ids(green.gr_frame, 200, None) == keys
    assert len(memo) == 3
    # A limit cuts the stack: another key, another tuple.
    cut = sites.frame_ids(parked[0].gr_frame, 2, memo)
    assert cut == python(parked[0].gr_frame, 2) and len(cut) == 4
    # A memo entry that is not this stack's (as a hash collision would
    # leave) is neither returned nor replaced.
    for hashed in list(memo):
        memo[hashed] = (1, 2)
    again = sites.frame_ids(parked[2].gr_frame, 200, memo)
    assert again == found[2] and again is not found[2]
    assert set(memo.values()) == {(1, 2)}
    assert sites.frame_ids(None, 200, memo) == ()
    with pytest.raises(TypeError, match="wants a dict as its memo"):
        sites.frame_ids(None, 200, [])
    for green in parked:
        green.throw(greenlet.GreenletExit)


def test_pure_python_walks_stacks_in_python():
    result = run_python(
        "from df_gmr import stacks\n"
        "print(stacks.frame_ids is stacks._frame_ids)",
        env=child_env(DF_GMR_PURE_PYTHON="1"))
    assert result.stdout == "True\n", result.stdout


HEADER_SCRIPT = """
import json
import eventlet
eventlet.monkey_patch()
from df_gmr import guru_meditation_report as gmr

class Version:
    def version_string(self):
        return "1"

gmr.TextGuruMeditation.setup_autorun(Version(), service_name="sites")
eventlet.spawn(eventlet.sleep, 30)
eventlet.sleep(0)
report = gmr.TextGuruMeditation(Version())
print(json.dumps(json.loads(report.run("json"))["header"]["df_gmr_speedups"]))
print([line for line in report.run().splitlines()
       if line.startswith("df_gmr: ")][0])
"""


def test_the_report_header_says_which_parts_ran_in_c(hook_env):
    result = run_python(HEADER_SCRIPT, env=hook_env)
    said, line = result.stdout.splitlines()[-2:]
    if hook_env.get("DF_GMR_PURE_PYTHON") == "1":
        assert said == '{"c": [], "why_not": "DF_GMR_PURE_PYTHON=1"}', said
        assert line.endswith(" (pure Python: DF_GMR_PURE_PYTHON=1)"), line
    else:
        assert said == '{"c": ["spawn hook", "stack walk", "masking"]}', \
            said
        assert line.endswith(" (in C: spawn hook, stack walk, masking)"), \
            line


NATIVE_HEADER_SCRIPT = """
import json
import sys
from df_gmr import guru_meditation_report as gmr

class Version:
    def version_string(self):
        return "1"

gmr.TextGuruMeditation.setup_autorun(Version(), service_name="native")
header = json.loads(gmr.TextGuruMeditation(Version()).run("json"))["header"]
print("eventlet" in sys.modules, json.dumps(header["df_gmr_speedups"]))
"""


def test_a_service_without_eventlet_says_no_spawn_hook_ran_in_c():
    # nova-conductor 34: native threads, eventlet never imported; there is
    # no spawn hook to run, in C or otherwise.
    reason = compiled.why_not_built()
    if reason:
        pytest.skip(f"the C spawn hook: {reason}")
    result = run_python(NATIVE_HEADER_SCRIPT,
                        env=child_env(DF_GMR_PURE_PYTHON=None))
    assert result.stdout.splitlines()[-1] == \
        'False {"c": ["stack walk", "masking"]}', result.stdout


def test_the_c_gather_files_the_common_case_and_hands_on_the_rest(sites):
    parked = [_parked(2) for _ in range(4)] + [_parked(5), _parked(2)]
    hub, on_fd = parked[2], parked[5]
    by_stack: dict = {}
    memo: dict = {}
    handed = []

    def slow(green: greenlet.greenlet) -> None:
        # What greens.py's loop does on a miss: the stack's entry, with
        # the list of the greenlet's kind.
        handed.append(green)
        key = sites.frame_ids(green.gr_frame, 200, memo)
        by_stack.setdefault(key, ("fd", {}, None, (), {"greenlet": []}))

    done = greenlet.greenlet(lambda: None)
    done.switch()  # dead: no frame
    sites.gather([*parked, done], by_stack, memo, {hub}, {on_fd},
                  frozenset({"fd"}), greenlet.greenlet, slow)
    # The first of each stack, the hub's, the one on a descriptor whose
    # stack's kind says so, the dead one: handed on, in turn.
    assert handed == [parked[0], hub, parked[4], on_fd, done]
    lists = [entry[4]["greenlet"] for entry in by_stack.values()]
    assert lists == [[parked[1], parked[3]], [], []]  # the dead: no stack
    # A failure in slow() goes on; the arguments are checked.

    def failing(green: greenlet.greenlet) -> None:
        raise LookupError("slow")

    with pytest.raises(LookupError, match="slow"):
        sites.gather(parked, {}, {}, set(), set(), frozenset(),
                      greenlet.greenlet, failing)
    with pytest.raises(TypeError, match="dicts"):
        sites.gather(parked, [], {}, set(), set(), frozenset(),
                      greenlet.greenlet, slow)
    with pytest.raises(TypeError, match="8 arguments"):
        sites.gather(parked)
    for green in parked:
        green.throw(greenlet.GreenletExit)


def test_the_c_line_look_up_gives_the_python_loops_lines(sites):
    import json
    import types

    from df_gmr import stacks
    from df_gmr.runtime import grouping

    def python(code: types.CodeType, offset: int) -> int:
        for start, end, number in code.co_lines():
            if start <= offset < end and number is not None:
                return number
        return code.co_firstlineno

    codes = []

    def walk(code: types.CodeType) -> None:
        codes.append(code)
        for constant in code.co_consts:
            if isinstance(constant, types.CodeType):
                walk(constant)

    # Functions of every shape: loops, try blocks, comprehensions, lines
    # without an instruction of their own, generators.
    for module in (json.decoder, json.encoder, stacks, grouping):
        for value in vars(module).values():
            for function in (value, *vars(value).values()) \
                    if isinstance(value, type) else (value,):
                code = getattr(function, "__code__", None)
                if isinstance(code, types.CodeType):
                    walk(code)
    assert len(codes) > 60
    for code in codes:
        # Every instruction, and before and past the code.
        for offset in (-2, *range(0, len(code.co_code) + 4, 2), 10 ** 30):
            assert sites.line_at(code, offset) == python(code, offset), \
                (code, offset)
    with pytest.raises(TypeError, match="a code object and an offset"):
        sites.line_at(codes[0], "0")
