"""Green Threads of a real eventlet process, reported on a real SIGUSR2."""

from __future__ import annotations

import json
import os

import pytest

from df_gmr.sections import green_threads
from df_gmr.sections.green_threads import expand
from tests import compiled
from tests.daemons import SCRIPTS
from tests.daemons import running

SCENE = os.path.join(SCRIPTS, "green_scene.py")


def line_of(marker: str) -> int:
    with open(SCENE) as handle:
        for number, line in enumerate(handle, 1):
            if marker in line:
                return number
    raise AssertionError(marker)


def green_report(tmp_path, *args: str,
                 env: dict[str, str | None] | None = None) -> dict:
    with running("green_scene.py", str(tmp_path), *args,
                 log_dir=str(tmp_path), env=env) as daemon:
        daemon.wait_text("READY")
        daemon.signal()
        [path] = daemon.wait_reports(1)
        with open(path) as handle:
            document = json.load(handle)
    [section] = [s for s in document["sections"]
                 if s["name"] == "green_threads"]
    assert section["error"] is None, section["error"]
    return section["data"]


def groups_by_function(data: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for group in data["groups"]:
        functions = [frame["function"] for frame in group["stack"]]
        name = functions[1] if len(functions) > 1 and \
            functions[0] == "main" else (functions or ["-"])[0]
        found.setdefault(name, []).append(group)
    return found


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return green_report(tmp_path_factory.mktemp("scene"))


def test_stacks_at_two_instructions_of_one_line_are_one_group(scene):
    # Grouped by instruction, then by line: one stack, one group.
    [group] = groups_by_function(scene)["either_way"]
    assert group["count"] == 3
    assert group["stack"][1]["line"] == line_of("else never.wait(None)")


def test_thousand_event_waiters_form_one_group(scene):
    [group] = groups_by_function(scene)["event_waiter"]
    assert group["count"] == 1000
    assert len(set(group["ids"])) == 1000
    assert group["wait"]["waiters"] == 1004  # with_request's, either_way's
    assert group["members"] == []  # nothing that differs: stored once
    assert group["wait_kind"] == "event"
    assert scene["groups"][0] is group  # biggest first


@pytest.mark.parametrize(("function", "kind"), [
    ("sleeper", "sleep"),
    ("semaphore_waiter", "semaphore"),
    ("lock_waiter", "lock"),
    ("queue_getter", "queue get"),
    ("queue_putter", "queue put"),
    ("joiner", "join"),
    ("tpool_caller", "tpool"),
    ("reader", "fd"),
    ("with_request", "event"),
])
def test_each_wait_kind_is_named(scene, function, kind):
    groups = groups_by_function(scene)[function]
    assert [group["wait_kind"] for group in groups] == [kind]


def test_wait_details(scene):
    by_function = groups_by_function(scene)
    semaphore = expand(by_function["semaphore_waiter"][0])[0]["wait"]
    assert semaphore["balance"] == -1 and semaphore["waiters"] == 1
    put = expand(by_function["queue_putter"][0])[0]["wait"]
    assert (put["size"], put["maxsize"]) == (1, 1)
    reader = expand(by_function["reader"][0])[0]["wait"]
    assert reader["mode"] == "read"
    assert reader["fd_is"].startswith("tcp socket 127.0.0.1:")
    assert " -> 127.0.0.1:" in reader["fd_is"]
    sleeper = expand(by_function["sleeper"][0])[0]
    assert sleeper["wait"]["seconds"] == 3600
    assert 3500 < sleeper["wait"]["due_in"] <= 3600
    assert sleeper["waiting_seconds"] >= 0
    # Under a shorter Timeout: it wakes when the Timeout fires, and the
    # sleep it makes is still its own length (not the Timeout's).
    [timed] = expand(by_function["timed_sleeper"][0])
    assert timed["wait"]["kind"] == "sleep"
    assert timed["wait"]["seconds"] == 2700, timed
    assert 1700 < timed["wait"]["due_in"] <= 1800, timed
    join = expand(by_function["joiner"][0])[0]["wait"]
    sleeper_ids = {i for g in by_function["sleeper"] for i in g["ids"]}
    assert join["joining"] in sleeper_ids


def test_not_started_greenthread_is_listed(scene):
    [group] = [g for g in scene["groups"] if g["state"] == "not started"]
    assert expand(group)[0]["wait"]["starts_in"] > 3000


def test_spawn_sites_look_past_pool_and_thread_group(scene):
    sites = {(m["spawn_site"]["file"], m["spawn_site"]["line"])
             for g in groups_by_function(scene)["sleeper"]
             for m in expand(g) if m["spawn_site"]}
    lines = {line for file, line in sites if file == SCENE}
    assert line_of("SPAWN-SITE GreenPool") in lines
    assert line_of("SPAWN-SITE ThreadGroup") in lines


def test_request_id_is_shown(scene):
    [group] = groups_by_function(scene)["with_request"]
    assert expand(group)[0]["request_id"] == "req-1234abcd"
    others = expand(groups_by_function(scene)["event_waiter"][0])
    assert all(member["request_id"] is None for member in others)
    # The text says what it is: the last context the greenthread stored
    # (oslo.context keeps it after its request ended).
    text = "\n".join(green_threads.format_lines(scene))
    assert ": last request req-1234abcd" in text, text


def test_main_and_hub_greenlets_are_there(scene):
    kinds = {group["kind"] for group in scene["groups"]}
    assert {"main", "hub", "greenthread", "greenlet"} <= kinds


def test_greenthreads_from_before_set_up_and_freeze_are_complete(tmp_path):
    data = green_report(tmp_path, "--freeze", "--event-waiters", "10")
    by_function = groups_by_function(data)
    assert by_function["early_waiter"][0]["count"] == 50
    assert by_function["event_waiter"][0]["count"] == 10


def test_worker_report_has_its_main_greenthread(tmp_path):
    with running("service.py", "--launcher", "process", "--workers", "1",
                 "--log-dir", str(tmp_path), "--format", "json",
                 log_dir=str(tmp_path)) as daemon:
        daemon.wait_ready(count=2)
        [worker] = daemon.workers()
        daemon.signal(pid=worker)
        [path] = daemon.wait_reports(1)
        with open(path) as handle:
            document = json.load(handle)
    [section] = [s for s in document["sections"]
                 if s["name"] == "green_threads"]
    kinds = [group["kind"] for group in section["data"]["groups"]]
    assert "main" in kinds
    waiters = [g for g in section["data"]["groups"]
               if g["wait_kind"] == "event" and g["kind"] == "greenthread"]
    assert sum(g["count"] for g in waiters) >= 3


def _shape(data: dict) -> list[tuple]:
    """The groups as both gathers must make them (ids and times aside)."""
    return [(group["count"], group["state"], group["kind"],
             group["wait_kind"],
             [(frame["function"], frame["line"]) for frame in group["stack"]],
             [sorted(member) for member in group["members"]])
            for group in data["groups"]]


def test_the_c_gather_and_the_python_loop_make_the_same_groups(
        scene, tmp_path):
    # The scene's greenlets in every case the gather tells: parked ones
    # at a dozen stacks, plain greenlets (a GreenPool's, a ThreadGroup's),
    # a hub's greenlet, the main greenlet, a not-started one, a reader on a
    # descriptor.  The module fixture's report was gathered in
    # C where it was built; this one by the pure-Python loop.
    reason = compiled.why_not_built()
    if reason:
        pytest.skip(f"the C gather: {reason}")
    pure = green_report(tmp_path, env={"DF_GMR_PURE_PYTHON": "1"})
    assert _shape(scene) == _shape(pure)
    states = {(group["state"], group["kind"]) for group in scene["groups"]}
    assert {("parked", "greenthread"), ("parked", "greenlet"),
            ("not started", "greenthread")} <= states, states
    assert {"hub", "main"} <= {kind for _, kind in states}, states
    assert any(group["wait_kind"] == "fd" for group in scene["groups"])
