"""The Green Pools section and df_gmr.pools' registries, on small scenes.

Each scene runs in a fresh interpreter (tests/scripts/hub_pools_scene.py)
so that monkey patching never leaks into the pytest process; the scene
forbids gc.get_objects() while the report is built.  Each scene runs once
(the ``hub_pools_scene`` fixture); each test reads its part of it.
"""

from __future__ import annotations

from typing import Any

from tests.daemons import run_python


def pools(scene: dict[str, Any]) -> dict[str, Any]:
    return scene["data"]["green_pools"]


def by_id(entries: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {entry["id"]: entry for entry in entries}


def text(scene: dict[str, Any]) -> str:
    """Return the section's text with wrapped lines joined by one space."""
    return " ".join(" ".join(scene["text"]["green_pools"]).split())


def test_without_eventlet_the_section_says_why():
    output = run_python(
        "import sys\n"
        "from df_gmr.report import ReportContext\n"
        "from df_gmr.sections import green_pools as section\n"
        "print(section.SECTION.lines(section.collect(ReportContext()))[0])\n"
        "print('eventlet' in sys.modules)\n").stdout
    assert output.splitlines() == [
        "not available: eventlet is not loaded in this process", "False"]


def test_install_waits_for_eventlet_and_wraps_once():
    output = run_python(
        "import sys\n"
        "from df_gmr import pools\n"
        "pools.install(); pools.install()\n"
        "print('eventlet' in sys.modules)\n"
        "import eventlet\n"
        "pool = eventlet.GreenPool(3)\n"
        "print(pools.tracked()['pools'] == [pool])\n"
        "init = eventlet.GreenPool.__init__\n"
        "print(hasattr(init.__wrapped__, '__wrapped__'))\n").stdout
    assert output.splitlines() == ["False", "True", "False"]


def test_pool_counts_running_free_and_waiting_spawners(hub_pools_scene):
    scene = hub_pools_scene("pools")
    pool = by_id(pools(scene)["pools"])[scene["facts"]["pool"]]
    assert (pool["size"], pool["running"], pool["free"], pool["waiting"]) \
        == (2, 2, 0, 3)
    assert len(pool["running_ids"]) == 2
    assert len(pool["waiting_ids"]) == 3
    assert pool["created_at"]["function"] == "scene_pools"
    assert pool["created_at"]["file"].endswith("hub_pools_scene.py")
    assert "size 2, running 2, free 0, waiting 3" in text(scene)


def test_pile_is_listed_with_its_own_pool(hub_pools_scene):
    scene = hub_pools_scene("pools")
    facts = scene["facts"]
    pile = by_id(pools(scene)["piles"])[facts["pile"]]
    assert pile["pool"] == facts["pile_pool"]
    assert (pile["pending"], pile["unfinished"]) == (3, 3)
    pool = by_id(pools(scene)["pools"])[facts["pile_pool"]]
    assert (pool["size"], pool["running"]) == (4, 3)
    assert pile["created_at"]["function"] == "scene_pools"


def test_thread_group_shows_pool_threads_and_fixed_interval_timer(
        hub_pools_scene):
    scene = hub_pools_scene("thread_group")
    data = pools(scene)
    assert data["oslo_service_backend"] == "eventlet"
    group = by_id(data["thread_groups"])[scene["facts"]["group"]]
    assert (group["pool_size"], group["threads"], group["alive"]) == (3, 1, 1)
    assert by_id(data["pools"])[group["pool"]]["running"] == 1
    [timer_id] = group["looping_calls"]
    timer = by_id(data["looping_calls"])[timer_id]
    assert timer["type"].endswith("FixedIntervalLoopingCall")
    assert timer["function"].endswith("scene_thread_group.<locals>.tick")
    assert timer["interval"] == 7.5
    assert timer["state"] == "sleeping" and timer["running"] is True
    assert 0 < timer["next_run_in"] <= 7.5
    assert timer["thread_group"] == group["id"]
    assert "tick: every 7.5s" in text(scene)


def test_dynamic_looping_call_outside_a_group(hub_pools_scene):
    scene = hub_pools_scene("thread_group")
    call = by_id(pools(scene)["looping_calls"])[scene["facts"]["dynamic"]]
    assert call["thread_group"] is None
    assert call["interval"] is None
    assert call["schedule"] == {"periodic_interval_max": 9}
    assert 0 < call["next_run_in"] <= 5
    assert "dynamic interval, at most 9s" in text(scene)


def test_pool_created_before_install_is_found_by_its_seed(hub_pools_scene):
    scene = hub_pools_scene("pools", "--late-install")
    pool = by_id(pools(scene)["pools"])[scene["facts"]["pool"]]
    assert pool["waiting"] == 3
    assert pool["created_at"] is None


def test_looping_calls_started_before_install_are_found_by_its_seed(
        hub_pools_scene):
    scene = hub_pools_scene("thread_group", "--late-install")
    calls = pools(scene)["looping_calls"]
    assert len(calls) == 2
    assert all(call["interval"] is None for call in calls)
    assert "interval unknown (started before df_gmr was set up)" in \
        text(scene)


def test_executor_shows_backlog_and_pool(hub_pools_scene):
    scene = hub_pools_scene("executor")
    data = pools(scene)
    executor = by_id(data["executors"])[scene["facts"]["executor"]]
    assert (executor["max_workers"], executor["queued"]) == (2, 3)
    assert executor["shut_down"] is False
    assert by_id(data["pools"])[executor["pool"]]["running"] == 2
    assert "max workers 2, 3 queued, alive" in text(scene)


def test_tpool_counts_threads_and_the_busy_one(hub_pools_scene):
    tpool = pools(hub_pools_scene("tpool"))["tpool"]
    assert tpool["started"] is True
    assert tpool["threads"] == tpool["max_threads"] > 0
    assert tpool["busy"] == 1
    assert tpool["busy_in"][0].endswith("scene_tpool.<locals>.busy")
    assert tpool["queued"] == 0


def test_threading_backend_is_said_not_to_apply():
    output = run_python(
        "from oslo_service import backend\n"
        "backend.init_backend(backend.BackendType.THREADING)\n"
        "from df_gmr.report import ReportContext\n"
        "from df_gmr.sections import green_pools as section\n"
        "print('\\n'.join(section.SECTION.lines(\n"
        "    section.collect(ReportContext()))))\n").stdout
    joined = " ".join(output.split())
    assert joined.startswith("not available: eventlet is imported but not "
                             "in use"), output
    assert "looping calls are native threads (see Threads)" in joined


def test_text_fits_in_80_columns(hub_pools_scene):
    for name in ("pools", "thread_group", "executor", "tpool"):
        for line in hub_pools_scene(name)["text"]["green_pools"]:
            assert len(line) <= 80, line
