"""A configurable eventlet oslo.service daemon for the process tests.

Usage: service.py [--workers N] [--launcher process|service|none]
                  [--log-dir DIR] [--format text|json] [--config-file F]
                  [--broken-section] [--no-gmr] [--event-waiters N]
Prints 'READY <role> <pid>' once each process is set up.
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from oslo_config import cfg  # noqa: E402
from oslo_service import service  # noqa: E402

from df_gmr import guru_meditation_report as gmr  # noqa: E402
from df_gmr import opts as gmr_opts  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--workers", type=int, default=0)
parser.add_argument("--launcher", default="none")
parser.add_argument("--log-dir")
parser.add_argument("--format")
parser.add_argument("--config-file", action="append", default=[])
parser.add_argument("--broken-section", action="store_true")
parser.add_argument("--no-gmr", action="store_true")
parser.add_argument("--event-waiters", type=int, default=3)
parser.add_argument("--service-name", default="testsvc")
parser.add_argument("--two-services", action="store_true")
args = parser.parse_args()
# oslo.service says on stdout how each worker ended ("Child N killed by
# signal S"): the tests read it.
logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                    format="%(levelname)s %(name)s %(message)s")

CONF = cfg.ConfigOpts()
CONF.register_opts([
    cfg.StrOpt("connection",
               default="mysql+pymysql://nova:SUPERSECRET@db/nova"),
    cfg.StrOpt("admin_password", secret=True, default="HUNTER2"),
    cfg.IntOpt("bad_number", default=1),
])
gmr_opts.set_defaults(CONF)
CONF([f"--config-file={path}" for path in args.config_file],
     project="testsvc")
if args.format:
    CONF.set_override("format", args.format, group="df_gmr")

done = eventlet.event.Event()


def park_waiters():
    for _ in range(args.event_waiters):
        eventlet.spawn(done.wait)


def broken():
    raise RuntimeError("this section is broken on purpose")


if not args.no_gmr:
    gmr.TextGuruMeditation.register_section("Extra", lambda: "extra text")
    if args.broken_section:
        gmr.TextGuruMeditation.register_section("Broken", broken)
    gmr.TextGuruMeditation.setup_autorun(
        "9.9.9", service_name=args.service_name, log_dir=args.log_dir,
        conf=CONF)
    print(f"SET UP {os.getpid()}", flush=True)


class Worker(service.Service):
    def start(self):
        super().start()
        if args.launcher == "service":
            # ServiceLauncher acts on SIGTERM in a greenthread that runs
            # only when the hub wakes up: with nothing ever due (as here,
            # but no real service) it would sleep through SIGTERM for a
            # minute.  A periodic task, as services have, wakes it.
            self.tg.add_timer(0.2, lambda: None)
        park_waiters()
        print(f"READY worker {os.getpid()}", flush=True)


if args.launcher == "none":
    park_waiters()
    print(f"READY single {os.getpid()}", flush=True)
    try:
        while True:
            eventlet.sleep(0.1)
    except KeyboardInterrupt:
        sys.exit(0)
elif args.launcher == "process":
    launcher = service.ProcessLauncher(CONF, restart_method="mutate")
    launcher.launch_service(Worker(), workers=args.workers)
    if args.two_services:  # as neutron-server runs API and RPC workers

        class OtherWorker(Worker):
            pass

        launcher.launch_service(OtherWorker(), workers=args.workers)
    print(f"READY parent {os.getpid()}", flush=True)
    launcher.wait()
else:
    launcher = service.launch(CONF, Worker(), workers=args.workers or 1)
    print(f"READY launch {os.getpid()}", flush=True)
    launcher.wait()
