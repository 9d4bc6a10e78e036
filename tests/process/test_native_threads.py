"""Threads and Thread Pools of real threading-mode services, on SIGUSR2.

``threading_standin.py`` stands in for an OpenStack service on
oslo.service's threading backend (a ProcessLauncher, one forked worker
running an oslo.messaging RPC server, looping calls, a futurist executor
and one named thread in each kind of wait).  One real SIGUSR2 to the
worker (its report is JSON) and one to the parent (text); every test
reads those two files.  The mixed test runs the stand-in's eventlet mode:
a monkey-patched process whose tpool thread is busy in a blocking call.
"""

from __future__ import annotations

from importlib import resources
import json
import re
import types

import jsonschema
import psutil
import pytest

from df_gmr.runtime import fingerprint
from df_gmr.runtime.grouping import expand
from df_gmr.sections import eventlet_hub
from df_gmr.sections import green_pools
from df_gmr.sections import green_threads
from df_gmr.sections import processes
from df_gmr.sections import thread_pools
from df_gmr.sections import threads as threads_section
from tests.daemons import Daemon
from tests.daemons import run_python
from tests.daemons import running
from tests.daemons import wait_for

STANDIN = "threading_standin.py"
TIMEOUT = 20.0
GREEN_SECTIONS = {"Green Threads": green_threads, "Eventlet Hub":
                  eventlet_hub, "Green Pools": green_pools}


def scene_of(daemon: Daemon) -> dict:
    [line] = [line for line in daemon.text().splitlines()
              if line.startswith("SCENE ")]
    return json.loads(line.split(" ", 1)[1])


def report_of(daemon: Daemon, pid: int, extension: str) -> str:
    """Wait for the report file ``pid`` wrote; return its text."""
    def written() -> list[str]:
        return [path for path in daemon.reports()
                if path.endswith(f"_{pid}.{extension}")]
    [path] = wait_for(written, TIMEOUT, f"the report of {pid}", daemon)
    with open(path) as handle:
        return handle.read()


def settled_thread_count(pid: int, expected: int, daemon: Daemon) -> int:
    """The process's thread count once it is ``expected`` (df_gmr's
    passing threads gone), or its last value after a few seconds."""
    process = psutil.Process(pid)
    seen: list[int] = []

    def settled() -> bool:
        seen.append(process.num_threads())
        return seen[-1] == expected
    try:
        wait_for(settled, 5, f"{expected} threads in {pid}", daemon)
    except AssertionError:
        pass
    return seen[-1]


def sections_of(document: dict) -> dict[str, dict]:
    found = {section["name"]: section for section in document["sections"]}
    for section in found.values():
        assert section["error"] is None, (section["name"], section["error"])
    return found


def schema() -> dict:
    return json.loads(resources.files("df_gmr").joinpath(
        "schema/report-v1.json").read_text())


def members(threads_data: dict) -> list[dict]:
    """Every thread of the Threads section, one full dict each."""
    return [{**member, "wait_kind": group["wait_kind"],
             "stack": group["stack"]}
            for group in threads_data["groups"] for member in expand(group)]


def text_sections(text: str) -> dict[str, list[str]]:
    """Map each section title of a text report to its lines."""
    found: dict[str, list[str]] = {}
    parts = re.split(r"^={78}\n==== (.+?) +====\n={78}\n", text,
                     flags=re.MULTILINE)
    for title, body in zip(parts[1::2], parts[2::2], strict=True):
        found[title] = body.strip("\n").splitlines()
    return found


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> types.SimpleNamespace:
    """The stand-in's worker report (JSON) and parent report (text)."""
    log_dir = str(tmp_path_factory.mktemp("standin"))
    with running(STANDIN, log_dir, "--worker-format", "json",
                 log_dir=log_dir) as daemon:
        daemon.wait_ready(2, timeout=TIMEOUT)  # the parent and its worker
        scene = scene_of(daemon)
        worker = scene["pid"]
        daemon.signal(pid=worker)
        document = json.loads(report_of(daemon, worker, "json"))
        daemon.signal()
        parent_text = report_of(daemon, daemon.pid, "txt")
        data = sections_of(document)["threads"]["data"]
        expected = data["count"] + len(data["df_gmr_threads"])
        worker_threads = settled_thread_count(worker, expected, daemon)
        output = daemon.text()
    return types.SimpleNamespace(
        scene=scene, document=document, sections=sections_of(document),
        parent_text=parent_text, worker_threads=worker_threads,
        output=output, parent=daemon.pid)


@pytest.fixture(scope="module")
def by_name(standin) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for member in members(standin.sections["threads"]["data"]):
        assert member.get("name") not in found, member
        found[member.get("name")] = member
    return found


def test_worker_report_is_valid(standin):
    jsonschema.validate(standin.document, schema())
    assert standin.document["header"]["process"]["role"] == "worker"


@pytest.mark.parametrize(("name", "kind", "details"), [
    ("lock-waiter", "lock", {"locked": True}),
    ("rlock-waiter", "lock", {"owner": "@rlock-holder",
                              "owner_name": "rlock-holder", "count": 1}),
    ("lock-holder", "event", {}),
    ("rlock-holder", "event", {}),
    ("queue-getter", "queue get", {"size": 0, "maxsize": 10}),
    ("event-waiter", "event", {"waiters": 1}),
    ("condition-waiter", "condition", {"waiters": 1}),
    ("semaphore-waiter", "semaphore", {"value": 0, "waiters": 1}),
    ("barrier-waiter", "barrier", {"parties": 3, "arrived": 1}),
    ("future-waiter", "future", {"future_state": "PENDING"}),
    ("joiner", "join", {"joining": "@lock-holder",
                        "thread_name": "lock-holder"}),
    ("selector-waiter", "select", {"fds": ["$selector_fd"]}),
    ("acceptor", "accept", {"fd": int}),
    ("reader", "socket read", {"fd": int}),
    ("sleeper", "sleep", {"seconds": 3600, "calls": "time.sleep"}),
    ("child-waiter", "subprocess", {"child_pid": "$child_pid",
                                    "command": ["sleep", "3600"]}),
])
def test_each_wait_is_named_with_its_detail(standin, by_name, name, kind,
                                            details):
    scene = standin.scene

    def expected(value):
        if isinstance(value, list):
            return [expected(item) for item in value]
        if isinstance(value, str) and value.startswith("@"):
            return scene["threads"][value[1:]]
        if isinstance(value, str) and "$" in value:
            return re.sub(r"\$(\w+)", lambda m: str(scene[m[1]]), value) \
                if not value.startswith("$") else scene[value[1:]]
        return value

    member = by_name[name]
    assert member["id"] == scene["threads"][name]
    assert (member["state"], member["wait_kind"], member["wait"]["kind"]) \
        == ("waiting", kind, kind), member
    for key, value in details.items():
        if isinstance(value, type):
            assert type(member["wait"].get(key)) is value, (key, member)
        else:
            assert member["wait"].get(key) == expected(value), (key, member)


def test_stacks_at_two_instructions_of_one_line_are_one_group(standin):
    # Grouped by instruction, then by line: one stack, one group.
    threads = standin.scene["threads"]
    wanted = {threads["either-way-1"], threads["either-way-2"]}
    [group] = [group for group in standin.sections["threads"]["data"]
               ["groups"] if wanted & set(group["ids"])]
    assert wanted <= set(group["ids"]), group
    assert "wait_either_way" in [frame["function"]
                                 for frame in group["stack"]], group


def test_threads_started_through_libraries_name_the_application(standin):
    # A looping call's thread is started nine library frames below the
    # application (oslo.service, futurist): its origin is still the
    # application's start() call, never "library code only".
    started = sorted(member["origin"]["code"]
                     for member in members(standin.sections["threads"]
                                           ["data"])
                     if (member.get("origin") or {}).get("function") ==
                     "start_looping_calls")
    assert started == ["dynamic.start(periodic_interval_max=120)",
                       "fixed.start(interval=60)"], started


def test_sockets_are_described(standin, by_name):
    # The listening socket: 'listening on 127.0.0.1:PORT' or psutil's
    # '127.0.0.1:PORT (LISTEN)'; the connected one by both its ends.
    port = standin.scene["listen_port"]
    accept = by_name["acceptor"]["wait"]["fd_is"]
    assert accept.startswith("tcp socket ") and re.search(
        rf"listening on 127\.0\.0\.1:{port}\b|127\.0\.0\.1:{port} "
        r"\(LISTEN\)", accept), accept
    read = by_name["reader"]["wait"]["fd_is"]
    assert f"127.0.0.1:{port} -> 127.0.0.1:" \
        f"{standin.scene['reader_peer_port']}" in read, read


def test_waits_of_the_service_threads(by_name, standin):
    selector = by_name["selector-waiter"]["wait"]
    assert "unix socket" in selector["watching"], selector
    running_tasks = {task["function"]: task["thread"] for executor in
                     standin.sections["thread_pools"]["data"]["executors"]
                     for task in executor["running"]}
    for function in ("sync_power_states", "heal_instance_info_cache"):
        worker = next(member for member in by_name.values()
                      if member["id"] == running_tasks[f"__main__.{function}"])
        assert worker["wait_kind"] == "event", worker
        assert function in [frame["function"] for frame in worker["stack"]]
    rpc = standin.sections["thread_pools"]["data"]["rpc_servers"][0]
    poller = next(member for member in by_name.values()
                  if member["id"] == rpc["poll_thread"])
    assert poller["wait_kind"] == "sleep" and \
        poller["wait"]["seconds"] == 0.05, poller  # the fake driver's poll


def test_every_thread_once_and_df_gmr_apart(standin):
    data = standin.sections["threads"]["data"]
    ids = [ident for group in data["groups"] for ident in group["ids"]]
    assert len(ids) == len(set(ids)) == data["count"]
    assert sum(group["count"] for group in data["groups"]) == data["count"]
    own = [thread["ident"] for thread in data["df_gmr_threads"]]
    assert own and not set(own) & set(ids)
    assert all(thread["role"].startswith("df_gmr ")
               for thread in data["df_gmr_threads"])
    for name, ident in standin.scene["threads"].items():
        assert ids.count(ident) == 1, name
    # 16 named, 2 executor workers, 1 RPC worker, 2 looping calls, the RPC
    # poller, cotyledon's parent watcher and the main thread.
    assert data["count"] == 26
    header = standin.document["header"]["concurrency"]
    assert (header["native_threads"], header["df_gmr_threads"]) == \
        (data["count"], len(own))
    # Every thread of the process: the service's and df_gmr's, no other.
    assert standin.worker_threads == data["count"] + len(own)
    # The Processes section's system count says how many are df_gmr's:
    # its lasting ones and the one collecting the sections, which the
    # Threads section leaves out.
    process = standin.sections["processes"]["data"]["process"]
    assert (process["threads"], process["df_gmr_threads"]) == (
        data["count"] + len(own) + 1, len(own) + 1), (
        process["threads"], process["df_gmr_threads"], data["count"], own)
    shown = " ".join(" ".join(processes.SECTION.lines(
        standin.sections["processes"]["data"])).split())
    assert f"{data['count'] + len(own) + 1} threads ({len(own) + 1} of " \
        "them df_gmr's, this section's among them)" in shown, shown


def test_thread_pools(standin):
    data = standin.sections["thread_pools"]["data"]
    assert data["available"] is True
    [server] = data["rpc_servers"]
    assert (server["topic"], server["server"], server["type"]) == (
        "standin", "host-1", "oslo_messaging.rpc.server.RPCServer")
    # No exchange in the target: the transport's control exchange, named.
    assert (server["exchange"], server["default_exchange"]) == (
        None, "standin")
    [full] = [executor for executor in data["executors"]
              if executor["max_workers"] == 2]
    assert (full["library"], full["busy"], full["workers"],
            full["queued"], full["name"]) == (
        "futurist", 2, 2, 3, "MainProcess.cell_worker")
    assert sorted(task["function"] for task in full["running"]) == [
        "__main__.heal_instance_info_cache", "__main__.sync_power_states"]
    for task in full["running"]:
        assert 0 < task["running_seconds"] < 60, task
    [rpc_pool] = [executor for executor in data["executors"]
                  if executor["max_workers"] == 64]
    assert [task["function"] for task in rpc_pool["running"]] == [
        "oslo_messaging.rpc.server.RPCServer._process_incoming"]
    calls = {call["function"]: call for call in data["looping_calls"]}
    fixed = calls["__main__.report_state"]
    dynamic = calls["__main__.run_periodic_tasks"]
    assert fixed["type"].endswith(".FixedIntervalLoopingCall")
    assert dynamic["type"].endswith(".DynamicLoopingCall")
    # The schedule, and the sleep it is in (the interval less the last
    # run's time; what the dynamic call's function chose).
    assert (fixed["interval"], fixed["schedule"]) == (60, {"interval": 60})
    assert (dynamic["interval"], dynamic["schedule"]) == (
        None, {"periodic_interval_max": 120})
    assert 59 < fixed["sleeping_for"] <= 60 and dynamic["sleeping_for"] == 30
    for call in (fixed, dynamic):
        assert call["state"] == "sleeping"
        assert call["sleeping_for"] - 30 < call["next_run_in"] <= \
            call["sleeping_for"], call
    # the text, its wrapped lines joined
    text = " ".join(" ".join(thread_pools.SECTION.lines(data)).split())
    assert "RPC server topic standin, server host-1, exchange standin " \
        "(the transport's control exchange)" in text, text
    assert "ThreadPoolExecutor MainProcess.cell_worker: 2 busy of 2 " \
        "(FULL), 2 workers started, 3 queued" in text, text
    for function in ("sync_power_states", "heal_instance_info_cache"):
        assert re.search(rf"running __main__\.{function} for [\d.]+s in "
                         r"thread \d+", text), text
    assert re.search(r"FixedIntervalLoopingCall __main__\.report_state in "
                     r"thread \d+: every 60s, sleeping, this sleep [\d.]+s, "
                     r"last run took [\d.]+s, next run in [\d.]+s", text), text
    assert re.search(r"DynamicLoopingCall __main__\.run_periodic_tasks in "
                     r"thread \d+: dynamic interval, at most 120s, sleeping, "
                     r"this sleep 30s", text), text


def test_worker_header_and_eventlet_sections(standin):
    header = standin.document["header"]
    concurrency = header["concurrency"]
    assert concurrency["oslo_service_backend"] == "threading"
    # futurist imports eventlet when installed: imported, never used.
    assert concurrency["monkey_patched"] == [] and concurrency["hubs"] == []
    line = fingerprint.text(concurrency)
    assert "monkey-patched: nothing; hub: none has run" in line, line
    assert "oslo.service backend threading" in line, line
    assert header["process"]["backend"] == "threading"
    for title, module in GREEN_SECTIONS.items():
        data = standin.sections[module.SECTION.name]["data"]
        assert data["available"] is False, title
        [line] = module.SECTION.lines(data)
        assert line.startswith("not available: eventlet is imported but "
                               "not in use"), (title, line)
    lines = threads_section.SECTION.lines(
        standin.sections["threads"]["data"])
    assert lines[0] == ("26 native threads in 24 groups (and 1 of "
                        "df_gmr's own, listed last)"), lines[0]


def test_parent_report(standin):
    text = standin.parent_text
    concurrency = re.search(r"^Concurrency: (.*)$", text, re.M)
    assert concurrency, text
    assert re.match(r"eventlet \S+ \(monkey-patched: nothing; hub: none has "
                    r"run\); oslo\.service backend threading;",
                    concurrency[1]), concurrency[1]
    assert re.search(r"^Role: parent$", text, re.M), text
    assert re.search(r"^Backend: threading$", text, re.M), text
    sections = text_sections(text)
    for title in GREEN_SECTIONS:
        assert len(sections[title]) == 1, (title, sections[title])
        assert sections[title][0].startswith("not available: "), title
    lines = sections["Threads"]
    headline = re.match(r"(\d+) native threads in (\d+) groups \(and (\d+) "
                        r"of df_gmr's own, listed last\)$", lines[0])
    assert headline, lines[0]
    ids = [int(ident) for line in lines if line.startswith("  threads: ")
           for ident in re.findall(r"(?:^  threads: |, )(\d+)", line)]
    own = [int(ident) for ident in re.findall(
        r"^  Thread (\d+) .*\[df_gmr ", "\n".join(lines), re.M)]
    assert len(ids) == len(set(ids)) == int(headline[1]), lines
    assert len(own) == int(headline[3]) >= 1 and not set(own) & set(ids)
    # The main thread waits in cotyledon's loop: in its select, or, woken
    # by the very signal that asked for this report (Python's wakeup fd),
    # draining its signal pipe (the report thread may read it there).
    shown = "\n".join(lines)
    assert re.search(r"^1 x main, waiting: select$", shown, re.M) or \
        re.search(r"^1 x main, waiting: read\n  all: calls os\.read$",
                  shown, re.M), shown


# --- a mixed process: eventlet with native threads --------------------------

@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> types.SimpleNamespace:
    log_dir = str(tmp_path_factory.mktemp("mixed"))
    with running(STANDIN, log_dir, "--eventlet", log_dir=log_dir,
                 env={"DF_GMR_FORMAT": "json"}) as daemon:
        daemon.wait_ready(timeout=TIMEOUT)
        scene = scene_of(daemon)
        daemon.signal()
        document = json.loads(report_of(daemon, daemon.pid, "json"))
        data = sections_of(document)["threads"]["data"]
        expected = data["count"] + len(data["df_gmr_threads"])
        count = settled_thread_count(daemon.pid, expected, daemon)
    return types.SimpleNamespace(scene=scene, document=document,
                                 sections=sections_of(document),
                                 process_threads=count)


def test_mixed_tpool_thread_once_greenthreads_apart(mixed):
    # This test's sections follow the schema (the others have theirs).
    jsonschema.validate({**mixed.document, "sections": [
        mixed.sections[name] for name in ("threads", "thread_pools")]},
        schema())
    data = mixed.sections["threads"]["data"]
    everyone = members(data)
    ids = [member["id"] for member in everyone]
    assert len(ids) == len(set(ids)) == data["count"]
    busy = [member for member in everyone
            if "blocking_call" in [frame["function"]
                                   for frame in member["stack"]]]
    assert len(busy) == 1, busy
    [tpool_thread] = busy
    assert tpool_thread["name"].startswith("tpool_thread_"), tpool_thread
    assert (tpool_thread["wait_kind"], tpool_thread["wait"]["seconds"]) == (
        "sleep", 3600), tpool_thread
    tpool = [member for member in everyone
             if (member.get("name") or "").startswith("tpool_thread_")]
    assert len(tpool) == 20  # eventlet's default pool, each once
    assert ids.count(mixed.scene["native"]) == 1
    own = [thread["ident"] for thread in data["df_gmr_threads"]]
    assert own and not set(own) & set(ids)
    # the tpool threads, the plain native thread and the main thread
    assert data["count"] == 22
    concurrency = mixed.document["header"]["concurrency"]
    assert (concurrency["native_threads"], concurrency["df_gmr_threads"]) \
        == (22, len(own))
    assert mixed.process_threads == 22 + len(own)

    green = mixed.sections["green_threads"]["data"]
    kinds: dict[str, int] = {}
    for group in green["groups"]:
        kinds[group["wait_kind"]] = kinds.get(group["wait_kind"], 0) + \
            group["count"]
    [offload] = [group for group in green["groups"]
                 if group["wait_kind"] == "tpool"]
    assert offload["wait"]["calling"].endswith(".blocking_call"), offload
    assert kinds["event"] == 3 and kinds["sleep"] >= 1, kinds
    # main, hub, 3 waiters, a sleeper, the tpool caller and eventlet's
    # tpool trampoline: no greenlet of df_gmr's threads among them.
    assert green["total"] == 8, green
    green_ids = {ident for group in green["groups"]
                 for ident in group["ids"]}
    assert not green_ids & set(ids)


def test_standin_output_is_clean(standin):
    # No traceback, no worker restarted: the scene is the one reported.
    assert "Traceback" not in standin.output, standin.output
    assert standin.output.count("READY worker") == 1, standin.output


FORKED_IN_A_THREAD = """\
import json, os, threading
from df_gmr.context import ReportContext
from df_gmr.runtime import Snapshot
from df_gmr.sections import threads

def fork_here():
    pid = os.fork()
    if pid == 0:  # the child: this thread is its main thread now
        ident = threading.get_ident()
        context = ReportContext(builder_thread=None, runtime=Snapshot(None))
        data = threads.collect(context)
        main = [member for group in data["groups"] if group["kind"] == "main"
                for member in group["members"]]
        print(json.dumps([list(member) for member in main]), flush=True)
        os._exit(0)
    os.waitpid(pid, 0)

thread = threading.Thread(target=fork_here, name="supervisor")
thread.start()
thread.join()
"""


def test_a_process_forked_in_a_thread_says_its_main_thread_was_one():
    # cotyledon's supervisor thread forks the workers: in the child, the
    # forking Thread (its name, its origin) is the main thread.
    done = run_python(FORKED_IN_A_THREAD)
    members = json.loads(done.stdout.strip().splitlines()[-1])
    assert members and members[0][:3] == ["id", "forked_in_thread", "name"], \
        done.stdout


#: The end of a scene's set-up: once each started thread said it is
#: ready (``ready``) and parked, the Threads section's data (``data``).
PARKED_THEN_COLLECTED = """\
while len(ready) < len(threading.enumerate()) - 1:
    time.sleep(0.01)
time.sleep(0.2)
context = ReportContext(builder_thread=threading.get_ident(),
                        runtime=Snapshot(threading.get_ident()))
data = threads.collect(context)"""

SLEEPS_BY_ANOTHER_NAME = """\
import json, threading, time
from df_gmr.context import ReportContext
from df_gmr.runtime import Snapshot
from df_gmr.runtime.grouping import expand
from df_gmr.sections import threads

nap = time.sleep  # a C function called by another name
ready = []

def sleeper(seconds):
    ready.append(1)
    nap(seconds)

for seconds in (100, 200, 300):
    threading.Thread(target=sleeper, args=(seconds,), daemon=True).start()
""" + PARKED_THEN_COLLECTED + """
print(json.dumps(sorted(member["wait"].get("seconds")
                        for group in data["groups"]
                        if group["wait_kind"] == "sleep"
                        for member in expand(group))))
"""


def test_threads_sleeping_at_one_call_each_show_their_own_seconds():
    # What a C call blocks on is read once per call site and object, but
    # a sleep's seconds are each frame's own.
    done = run_python(SLEEPS_BY_ANOTHER_NAME)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == \
        [100, 200, 300], done.stdout


READS_OF_TWO_PIPES = """\
import json, os, threading, time
from df_gmr.context import ReportContext
from df_gmr.runtime import Snapshot
from df_gmr.runtime.grouping import expand
from df_gmr.sections import threads

pipes = [os.pipe(), os.pipe()]
ready = []

def reader(fd):
    ready.append(1)
    os.read(fd, 1)  # one call site, a descriptor of each thread's own

for read_end, _ in pipes:
    threading.Thread(target=reader, args=(read_end,), daemon=True).start()
""" + PARKED_THEN_COLLECTED + """
print(json.dumps({
    "pipes": [read_end for read_end, _ in pipes],
    "waits": sorted(([member["wait"].get("fd"), member["wait"].get("fd_is")]
                     for group in data["groups"]
                     if group["wait_kind"] == "read"
                     for member in expand(group)), key=str)}))
"""


def test_threads_reading_at_one_call_each_name_their_own_descriptor():
    # os.read's descriptor is each frame's own (like a sleep's seconds):
    # never the first thread's told for both.
    done = run_python(READS_OF_TWO_PIPES)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert [fd for fd, _ in found["waits"]] == sorted(found["pipes"]), \
        done.stdout
    assert all(str(fd_is).startswith("pipe:[") for _, fd_is in
               found["waits"]), done.stdout
