"""An eventlet daemon with pools, sockets and timers, for USR2 tests.

Usage: hub_pools.py [--log-dir DIR] [--format text|json]
                    [--block-until FILE] [--launcher none|process]
Sets up df_gmr (setup_autorun, then pools.install()), then builds:
a GreenPool(2) with 2 long-running greenthreads and 3 blocked spawners,
a listening socket with a connected client (both ends waiting to read),
and a ThreadGroup running ``heartbeat`` every 0.25s.  Prints
'READY single <pid>' (or 'READY parent'/'READY worker' with --launcher
process) and 'SOCKETS <server address> <client address>'.  With
--block-until, a greenthread then prints 'BLOCKING' and blocks the hub
with the original time.sleep until FILE exists (at most 30s).
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

from oslo_config import cfg  # noqa: E402
from oslo_service import service  # noqa: E402
from oslo_service import threadgroup  # noqa: E402

from df_gmr import guru_meditation_report as gmr  # noqa: E402
from df_gmr import opts as gmr_opts  # noqa: E402
from df_gmr import pools  # noqa: E402
from df_gmr import sections  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--log-dir")
parser.add_argument("--format")
parser.add_argument("--block-until")
parser.add_argument("--launcher", default="none")
args = parser.parse_args()

# Until the core lists these sections in sections.BUILTIN, add them here;
# once it does, this is a no-op.
missing = tuple(name for name in ("eventlet_hub", "green_pools")
                if name not in sections.BUILTIN)
if missing:
    position = sections.BUILTIN.index("green_threads") + 1
    sections.BUILTIN = (*sections.BUILTIN[:position], *missing,
                        *sections.BUILTIN[position:])

CONF = cfg.ConfigOpts()
gmr_opts.set_defaults(CONF)
CONF([], project="hubpools")
if args.format:
    CONF.set_override("format", args.format, group="df_gmr")
gmr.TextGuruMeditation.setup_autorun(
    "1.0", service_name="hubpools", log_dir=args.log_dir, conf=CONF)
pools.install()

release = eventlet.event.Event()
kept = []


def hold():
    release.wait()


def heartbeat():
    pass


def crowd_a_pool():
    pool = eventlet.GreenPool(2)
    for _ in range(2):
        pool.spawn(hold)
    for _ in range(3):
        eventlet.spawn(pool.spawn, hold)
    kept.append(pool)


def connect_sockets():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    client = socket.socket()
    client.connect(server.getsockname())
    accepted, _ = server.accept()
    eventlet.spawn(accepted.recv, 10)
    eventlet.spawn(client.recv, 10)
    kept.extend((server, client, accepted))
    host, port = server.getsockname()
    client_host, client_port = client.getsockname()
    print(f"SOCKETS {host}:{port} {client_host}:{client_port}", flush=True)


def start_thread_group():
    group = threadgroup.ThreadGroup(5)
    group.add_timer_args(0.25, heartbeat)
    group.add_thread(hold)
    kept.append(group)


def block_the_hub(flag):
    eventlet.sleep(0.5)
    original_time = eventlet.patcher.original("time")
    print("BLOCKING", flush=True)
    deadline = original_time.monotonic() + 30
    while not os.path.exists(flag) and original_time.monotonic() < deadline:
        original_time.sleep(0.05)
    print("UNBLOCKED", flush=True)


def build_scene(role):
    crowd_a_pool()
    connect_sockets()
    start_thread_group()
    eventlet.sleep(0.05)
    print(f"READY {role} {os.getpid()}", flush=True)
    if args.block_until:
        eventlet.spawn(block_the_hub, args.block_until)


class Worker(service.Service):
    def start(self):
        super().start()
        build_scene("worker")


if args.launcher == "process":
    launcher = service.ProcessLauncher(CONF, restart_method="mutate")
    launcher.launch_service(Worker(), workers=1)
    print(f"READY parent {os.getpid()}", flush=True)
    launcher.wait()
else:
    build_scene("single")
    try:
        while True:
            eventlet.sleep(0.1)
    except KeyboardInterrupt:
        sys.exit(0)
