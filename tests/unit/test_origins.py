"""The thread-start hook: which callers a start records, and when it shares.

The scene runs in a fresh interpreter (the hook wraps ``threading.Thread``
for the whole process) and prints, for each thread, the function names
of its recorded callers and whether its tuple is the previous thread's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.daemons import outcome
from tests.daemons import run_python

SCENE = """
import json, threading
from concurrent.futures import ThreadPoolExecutor
from df_gmr import origins
origins.install()

def nothing():
    pass

def start_one():
    thread = threading.Thread(target=nothing)
    thread.start()
    thread.join()
    return thread

def first_caller():
    started = []
    for _ in range(2):  # one place: the same instruction twice
        started.append(start_one())
    return started

def second_caller():
    return start_one()

def in_pool():
    # Started by concurrent.futures (its worker threads), under submit.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(nothing).result()
        return list(pool._threads)[0]

threads = [*first_caller(), second_caller(), *first_caller(), in_pool()]

def names(thread):
    found = origins.positions(thread) or ()
    return [code.co_name for code in found[::2]]

print(json.dumps({
    "names": [names(thread) for thread in threads],
    "shared": [origins.positions(later) is origins.positions(earlier)
               for earlier, later in zip(threads, threads[1:])],
}))
"""


@pytest.fixture(scope="module")
def scene() -> dict[str, Any]:
    """Run the scene once; each test reads its part."""
    result = run_python(SCENE)
    document: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    assert len(document["names"]) == 6, outcome(result)
    return document


def test_a_start_records_the_application_frame_and_its_caller(scene):
    assert scene["names"][:5] == [
        ["start_one", "first_caller"], ["start_one", "first_caller"],
        ["start_one", "second_caller"],
        ["start_one", "first_caller"], ["start_one", "first_caller"]]


def test_starts_from_one_place_share_one_tuple_and_no_other(scene):
    assert scene["shared"][:4] == [True, False, False, True]


def test_a_start_inside_a_library_is_followed_out_to_the_application(
        scene):
    names = scene["names"][5]
    # concurrent.futures' own frames first, then the application's.
    assert names[-2:] == ["in_pool", "<module>"]
    assert "submit" in names


STARTER_SCENE = """
import json, threading
from df_gmr import origins
from df_gmr.runtime import Snapshot
from df_gmr.runtime.natives import Natives
from df_gmr.sections import threads as section
origins.install()

release = threading.Event()
started = []

def worker():
    release.wait(30)

def boss(name):
    child = threading.Thread(target=worker, name=name)
    child.start()
    started.append(child)

def keeper():
    boss("kept")
    release.wait(30)

boss_thread = threading.Thread(target=boss, args=("child",), name="the-boss")
boss_thread.start()
boss_thread.join()  # its ident may now be reused: the name was kept
keeper_thread = threading.Thread(target=keeper, name="the-keeper")
keeper_thread.start()
while len(started) < 2:
    pass
snapshot = Snapshot()
try:
    groups = Natives(snapshot).groups()
    live = list(snapshot.frames())
finally:
    snapshot.release()
release.set()
for thread in (*started, keeper_thread):
    thread.join()
by_name = {m.get("name"): m for g in groups for m in g["members"]}
print(json.dumps({
    "boss": boss_thread.ident, "member": by_name["child"],
    "keeper": keeper_thread.ident, "kept": by_name["kept"],
    "boss_started_by": origins.started_by(boss_thread.__dict__),
    "main": threading.main_thread().ident, "live": live,
    "text": section.format_lines({"count": 0, "groups": groups,
                                  "df_gmr_threads": []})}))
"""


def test_a_thread_names_the_thread_that_started_it():
    result = run_python(STARTER_SCENE)
    found = json.loads(result.stdout.splitlines()[-1])
    ended = found["member"]["started_by"]
    assert (ended["ident"], ended["name"], ended["running"]) == (
        found["boss"], "the-boss", False), outcome(result)
    assert found["boss_started_by"]["name"] == "MainThread"
    assert found["boss_started_by"]["ident"] == found["main"]
    kept = found["kept"]["started_by"]
    assert (kept["ident"], kept["name"], kept["running"]) == (
        found["keeper"], "the-keeper", True)
    # The text never reads an ended starter's ident as a thread running
    # now (idents are reused): it says it ended, and whether its id is
    # another thread's now.
    reused = ended["ident_reused"]
    assert reused == (found["boss"] in found["live"]), found
    line = next(line for line in found["text"] if " child: " in line)
    assert line.endswith(
        f"started by thread {found['boss']} (the-boss), since ended" + (
            " (that id is another thread's now)" if reused else "")), line
    line = next(line for line in found["text"] if " kept: " in line)
    assert line.endswith(f"started by thread {found['keeper']} "
                         "(the-keeper)"), line


GREEN_SCENE = """
import json
from df_gmr import greenlets, stacks
greenlets.install()
import eventlet
eventlet.monkey_patch()
import threading

def nothing():
    eventlet.sleep(30)

def start_green():
    # Under monkey patching a Thread is a greenthread: spawned through
    # threading and eventlet, three frames and more below this one.
    thread = threading.Thread(target=nothing, daemon=True)
    thread.start()

def pool_spawn(pool):
    pool.spawn(nothing)

start_green()
pool_spawn(eventlet.GreenPool(2))
eventlet.sleep(0)
found = {}
for green, raw in greenlets.tracked_with_sites().items():
    if raw:
        site = stacks.origin(list(zip(*[iter(
            greenlets.spawn_positions(raw))] * 2)), stacks.wrapper_prefixes())
        found[site.get("function", site.get("unknown"))] = True
print(json.dumps(sorted(found)))
"""


def test_a_spawn_through_libraries_is_followed_out_to_the_application():
    result = run_python(GREEN_SCENE)
    functions = json.loads(result.stdout.splitlines()[-1])
    assert {"start_green", "pool_spawn"} <= set(functions), outcome(result)
    assert not [name for name in functions if "library code" in name]


LOOP_SCENE = """
import json, threading
from df_gmr import origins
origins.install()

def nothing():
    pass

def start_in_a_loop(count, rename_at=None):
    started = []
    for index in range(count):  # one call, one instruction: the memo's
        if index == rename_at:
            threading.current_thread().name = "renamed"
        thread = threading.Thread(target=nothing)
        thread.start()
        thread.join()
        started.append(thread)
    return started

def first_caller():
    return start_in_a_loop(3)

def second_caller():
    return start_in_a_loop(3, rename_at=2)

def origin(thread):
    found = thread.__dict__[origins.ORIGIN_ATTR]
    return [[code.co_name for code in found[0][::2]], found[2]]

first, second = first_caller(), second_caller()
print(json.dumps({
    "first": [origin(thread) for thread in first],
    "second": [origin(thread) for thread in second],
    "shared": origins.positions(first[0]) is origins.positions(first[2]),
    # the memo's hit: the whole origin reused, not only its positions
    "reused": (first[0].__dict__[origins.ORIGIN_ATTR]
               is first[2].__dict__[origins.ORIGIN_ATTR]),
    "renamed_anew": (second[1].__dict__[origins.ORIGIN_ATTR]
                     is not second[2].__dict__[origins.ORIGIN_ATTR]),
}))
"""


def test_a_loop_of_starts_shares_its_origin_yet_names_each_caller():
    # The hook's memo (callers.FrameMemo): one call's loop reuses its
    # origin; the same helper called again (another frame) records its
    # own caller; a starter renamed mid-loop is named anew.
    result = run_python(LOOP_SCENE)
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["first"] == [
        [["start_in_a_loop", "first_caller"], "MainThread"]] * 3, outcome(
            result)
    assert found["second"] == [
        [["start_in_a_loop", "second_caller"], "MainThread"]] * 2 + [
        [["start_in_a_loop", "second_caller"], "renamed"]], outcome(result)
    assert found["shared"] is True
    assert found["reused"] is True, outcome(result)
    assert found["renamed_anew"] is True, outcome(result)
