"""Every line observed, or unknown and why: a real oslo.service daemon.

tests/scripts/truthful_service.py is set up by ``DF_GMR_ENABLE=1`` at
interpreter start, as a unit's environment does it; its worker runs a
WSGI server, an RPC server, nova's periodic task and a request.  Each
test reads one thing of its reports (JSON, rendered as text by the
sections themselves) that used to be false.
"""

from __future__ import annotations

from collections.abc import Iterator
import json
import os
import re
from typing import Any

import pytest

from df_gmr.sections import eventlet_hub
from df_gmr.sections import green_pools
from df_gmr.sections import green_threads
from df_gmr.sections import thread_pools
from tests.daemons import SCRIPTS
from tests.daemons import run_python
from tests.daemons import running

SCENE = os.path.join(SCRIPTS, "truthful_service.py")
#: Where df_gmr and the wrapper libraries live: no origin may be there.
WRAPPERS = tuple(
    os.path.dirname(__import__(name).__file__) + os.sep
    for name in ("df_gmr", "eventlet", "greenlet", "oslo_service",
                 "futurist", "debtcollector", "oslo_utils"))


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    log_dir = tmp_path_factory.mktemp("truthful")
    with running("truthful_service.py", env={
            "DF_GMR_ENABLE": "1", "DF_GMR_FORMAT": "json",
            "DF_GMR_LOG_DIR": str(log_dir)}, log_dir=str(log_dir)) as daemon:
        text = daemon.wait_text("READY worker")
        worker = int(re.search(r"READY worker (\d+)", text)[1])
        daemon.signal(pid=worker)
        daemon.wait_reports(1)
        daemon.signal(pid=worker)
        daemon.wait_reports(2)
        daemon.signal()
        paths = daemon.wait_reports(3)
        facts = dict(re.findall(r"^FACT (\S+) (\S+)$", daemon.text(), re.M))
        port = re.search(r"READY worker \d+ (\d+)", daemon.text())[1]
    documents = []
    for path in paths:
        with open(path) as handle:
            documents.append(json.load(handle))
    by_pid: dict[int, list[dict]] = {}
    for document in sorted(documents, key=lambda d: d["header"]["time"]):
        by_pid.setdefault(document["header"]["pid"], []).append(document)
    yield {"worker": by_pid[worker], "parent": by_pid[daemon.pid],
           "facts": {**facts, "port": port}}


def data(document: dict, name: str) -> dict[str, Any]:
    [section] = [s for s in document["sections"] if s["name"] == name]
    assert section["error"] is None, section["error"]
    return section["data"]


def text(document: dict, section: Any) -> str:
    """Return a section's text as the report shows it, lines joined."""
    lines = section.SECTION.lines(data(document, section.SECTION.name))
    return " ".join(" ".join(lines).split())


def members(document: dict) -> list[dict]:
    found = []
    for group in data(document, "green_threads")["groups"]:
        functions = [frame["function"] for frame in group["stack"]]
        for member in green_threads.expand(group):
            found.append({**member, "functions": functions})
    return found


def test_a_dupped_listening_socket_reads_listening_everywhere(reports):
    worker = reports["worker"][0]
    listening = f"tcp socket listening on 127.0.0.1:{reports['facts']['port']}"
    client = reports["facts"]["client"]
    server = f"127.0.0.1:{reports['facts']['port']}"
    hub_text = text(worker, eventlet_hub)
    threads_text = text(worker, green_threads)
    for shown in (hub_text, threads_text):
        assert listening in shown
        assert f"tcp socket {client} -> {server} (connected)" in shown
        assert f"tcp socket {server} -> {client} (connected)" in shown
        assert "socket:[" not in shown


def test_a_socket_wait_with_a_timeout_names_its_greenlet_and_its_age(
        reports):
    # The WSGI server reads the held connection's request with a timeout
    # (trampoline's _timeout timer): the timer names the greenlet it
    # times out, and the wait's age is the timer's.
    worker = reports["worker"][0]
    client = reports["facts"]["client"]
    server = f"127.0.0.1:{reports['facts']['port']}"
    [reader] = [member for member in members(worker)
                if member["wait"].get("fd_is") ==
                f"tcp socket {server} -> {client} (connected)"]
    assert 0 <= reader["waiting_seconds"] < 60, reader
    [hub] = [hub for hub in data(worker, "eventlet_hub")["hubs"]
             if hub["status"] == "live"]
    [timer] = [timer for timer in hub["timers"]["next"]
               if timer["greenlet"] == reader["id"]]
    assert timer["callback"].endswith("trampoline.<locals>._timeout")
    assert f"time out greenlet {reader['id']}" in text(worker, eventlet_hub)


def test_origins_name_the_application_never_df_gmr_or_a_wrapper(reports):
    worker = reports["worker"][0]
    facts = reports["facts"]
    sites = [m["spawn_site"] for m in members(worker) if m["spawn_site"]]
    pools = data(worker, "green_pools")
    sites += [entry["created_at"] for kind in
              ("pools", "thread_groups", "looping_calls", "executors")
              for entry in pools[kind] if entry["created_at"]]
    named = [site["file"] for site in sites if "file" in site]
    assert named and not [f for f in named if f.startswith(WRAPPERS)]
    assert all(site["unknown"] for site in sites if "file" not in site)
    loops = [m for m in members(worker) if "_run_loop" in m["functions"]]
    assert {(m["spawn_site"]["file"], m["spawn_site"]["line"])
            for m in loops} == {(SCENE, int(facts["the_periodic_task"])),
                                (SCENE, int(facts["the_fixed_timer"]))}
    [watcher] = [m for m in members(worker)
                 if "_pipe_watcher" in m["functions"]]
    # oslo.service spawns it in the worker, under the application's
    # launch_service() (the fork happened inside it): the spawn is
    # followed out through eventlet and oslo.service to that line.
    assert (watcher["spawn_site"]["file"], watcher["spawn_site"]["line"]) \
        == (SCENE, int(facts["the_launch"]))
    [wsgi_pool] = [p for p in pools["pools"] if p["size"] == 100]
    assert (wsgi_pool["created_at"]["file"],
            wsgi_pool["created_at"]["line"]) == (
        SCENE, int(facts["the_wsgi_server"]))
    assert "debtcollector" not in text(worker, green_pools)
    # The held connection's request: eventlet's WSGI server spawned it (no
    # application frame), in the server's greenthread, which the
    # application spawned by starting the server.
    [request] = [m for m in members(worker)
                 if "process_request" in m["functions"]]
    site = request["spawn_site"]
    assert site["unknown"].startswith("spawned by library code only ("), site
    assert (site["spawner_spawned_at"]["file"],
            site["spawner_spawned_at"]["line"]) == (
        SCENE, int(facts["the_wsgi_start"])), site
    assert (f"in a greenthread spawned at {SCENE}:{facts['the_wsgi_start']}"
            in text(worker, green_threads))
    assert not re.search(r"spawned at /\S*/df_gmr/",
                         text(worker, green_threads))


def test_nova_periodic_task_interval_is_its_function_s(reports):
    worker = reports["worker"][0]
    [call] = [c for c in data(worker, "green_pools")["looping_calls"]
              if c["function"] == "__main__.periodic_tasks"]
    assert call["schedule_known"] is True
    assert call["sleeping_for"] == 37.5
    shown = text(worker, green_pools)
    assert "dynamic interval, chosen by its function at each run" in shown
    assert "started before df_gmr was set up" not in shown


def test_from_the_second_report_on_no_hub_of_df_gmr_is_listed(reports):
    second = reports["worker"][1]
    own = {thread["ident"] for thread in
           data(second, "threads")["df_gmr_threads"]}
    assert own  # the reporting thread, at least
    hubs = data(second, "eventlet_hub")["hubs"]
    assert sorted(hub["status"] for hub in hubs) == [
        "live", "stale (from before fork)"]
    assert not own & {hub["thread"] for hub in hubs}
    main_greenlets = [g for g in data(second, "green_threads")["groups"]
                      if g["kind"] == "main"]
    assert sum(group["count"] for group in main_greenlets) == 1


def test_request_ids_only_for_the_greenthread_serving_one(reports):
    for document in (reports["parent"][0], reports["worker"][0]):
        found = {m["request_id"] for m in members(document)
                 if m["request_id"]}
        assert "req-startup-leftover" not in found
        assert not [m for m in members(document)
                    if m["kind"] == "main" and m["request_id"]]
    [serving] = [m for m in members(reports["worker"][0])
                 if "serve_request" in m["functions"]]
    assert serving["request_id"] == "req-being-served"


def test_a_greenlet_copied_at_fork_is_stranded_not_due(reports):
    [copy] = [m for m in members(reports["worker"][0])
              if "asleep_at_fork" in m["functions"]]
    assert copy["wait"]["stranded"] == (
        "its timer is in a hub from before fork, it will never run")
    assert "due_in" not in copy["wait"]
    assert "stranded: its timer is in a hub from before fork" in text(
        reports["worker"][0], green_threads)
    [original] = [m for m in members(reports["parent"][0])
                  if "asleep_at_fork" in m["functions"]]
    assert "stranded" not in original["wait"]
    assert original["wait"]["due_in"] <= 3.4
    [finding] = [found for found in reports["worker"][0]["findings"]
                 if found["kind"] == "stranded"]
    count = int(finding["text"].split()[0])
    assert finding["text"].startswith(
        "1 greenlet is stranded" if count == 1
        else f"{count} greenlets are stranded"), finding["text"]


ON_DEMAND = """
import eventlet
eventlet.monkey_patch()
from df_gmr import guru_meditation_report as gmr
never = eventlet.event.Event()
for _ in range(10000):
    eventlet.spawn(never.wait)
eventlet.sleep(0)


def green_section():
    eventlet.sleep(0)  # a hub in the section's thread
    return "slept"


gmr.TextGuruMeditation.register_section("Green", green_section)
for _ in range(3):
    text = gmr.TextGuruMeditation("1.0").run()
print(text)
"""


def test_run_without_set_up_finds_every_greenlet_by_a_heap_scan():
    shown = run_python(ON_DEMAND).stdout
    found = re.search(r"^(\d+) greenlets in \d+ groups$", shown, re.M)
    assert found and int(found[1]) >= 10001, shown[:3000]
    assert "found by: a heap scan (df_gmr was not set up)" in shown
    assert "10000 x greenthread, parked, waiting: event" in shown
    # The hubs of earlier reports' section threads are not the service's.
    assert "1 hub known, 1 live" in shown


def test_eventlet_servers_are_named_with_the_greenthreads_that_poll(
        reports):
    [document] = reports["worker"][-1:]
    roles = {entry["role"]: entry
             for entry in data(document, "thread_pools")["rpc_servers"]}
    server, listener = roles["RPC server"], roles["notification listener"]
    assert (server["role"], server["topic"], server["server"],
            server["started"], server["poll_thread"]) == (
        "RPC server", "truthful", "host-1", True, None)
    assert (listener["role"], listener["topics"], listener["pool"]) == (
        "notification listener", ["alarms"], "truthful-pool")
    # Each polled by a greenthread the Green Threads section lists, in
    # oslo.messaging's poll loop.
    for polled in (server, listener):
        ident = polled["poll_greenlet"]
        [group] = [group for group in data(document, "green_threads")[
            "groups"] if ident in group["ids"]]
        assert "_runner" in [frame["function"] for frame in group["stack"]]
    shown = " ".join(text(document, thread_pools).split())
    # oslo.messaging's own default control exchange: the service set none.
    assert "RPC server topic truthful, server host-1, exchange openstack " \
        "(the transport's control exchange)" in shown, shown
    assert f"polled by greenthread {server['poll_greenlet']}" in shown
    assert "notification listener topics alarms, pool truthful-pool" in \
        shown, shown
    assert "polled by thread" not in shown, shown
