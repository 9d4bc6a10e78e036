"""Eventlet scenes for the hardening tests: one per argv[1].

Every scene sets df_gmr up, prints 'READY <pid>' and then does its thing.
  sleep-block  a greenthread blocks the hub in the original time.sleep(8)
  gil-block    the main greenthread holds the GIL in one long C call
  ticker       a 10 ms ticker prints 'TICK <max gap ms>' every second
  hang         a registered section that hangs (section_timeout 0.5)
  huge         a registered section returning 20 MB of text
  file-block   file trigger (argv[2]); a greenthread blocks the hub
  watchdog     watchdog_interval 1; a greenthread blocks the hub for 4 s
  no-stderr    stderr closed before set-up
  full-stderr  stderr is a pipe nobody drains, full before set-up
  exit-report  asks for a report from an atexit hook, then exits
Options after the scene: --log-dir DIR
"""
import eventlet

eventlet.monkey_patch()

import atexit  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from oslo_config import cfg  # noqa: E402

from df_gmr import guru_meditation_report as gmr  # noqa: E402
from df_gmr import opts as gmr_opts  # noqa: E402
from df_gmr import trigger  # noqa: E402

scene = sys.argv[1]
log_dir = None
if "--log-dir" in sys.argv:
    log_dir = sys.argv[sys.argv.index("--log-dir") + 1]
original_sleep = eventlet.patcher.original("time").sleep

CONF = cfg.ConfigOpts()
gmr_opts.set_defaults(CONF)
CONF([], project="scenes")
if scene == "hang":
    CONF.set_override("section_timeout", 0.5, group="df_gmr")
if scene == "file-block":
    CONF.set_override("file_event_handler", sys.argv[2],
                      group="oslo_reports")
    CONF.set_override("file_event_handler_interval", 1,
                      group="oslo_reports")
if scene == "watchdog":
    CONF.set_override("watchdog_interval", 1, group="df_gmr")
    CONF.set_override("watchdog_min_gap", 60, group="df_gmr")
if scene == "no-stderr":
    os.close(2)
if scene == "full-stderr":  # a stderr pipe that nobody drains, now full
    import posix  # the unpatched write: eventlet's would wait for room

    filler = os.open("/proc/self/fd/2", os.O_WRONLY | os.O_NONBLOCK)
    try:
        while True:
            posix.write(filler, b"x" * 4096)
    except BlockingIOError:
        os.close(filler)
if scene == "hang":
    gmr.TextGuruMeditation.register_section(
        "Hangs", lambda: original_sleep(3600))
if scene == "huge":
    gmr.TextGuruMeditation.register_section("Huge", lambda: "x" * 20_000_000)
gmr.TextGuruMeditation.setup_autorun("1.0", service_name="scenes",
                                     log_dir=log_dir, conf=CONF)


def blocker(seconds):
    print("BLOCKING", flush=True)
    original_sleep(seconds)  # the line that hangs the hub
    print("UNBLOCKED", flush=True)


def ticker():
    last = time.monotonic()
    worst = 0.0
    reported = last
    while True:
        eventlet.sleep(0.01)
        now = time.monotonic()
        worst = max(worst, now - last)
        last = now
        if now - reported >= 1.0:
            print(f"TICK {worst * 1000:.0f}", flush=True)
            worst = 0.0
            reported = now


print(f"READY {os.getpid()}", flush=True)
if scene in ("sleep-block", "file-block"):
    eventlet.sleep(0.5)
    eventlet.spawn(blocker, 8)
elif scene == "watchdog":
    eventlet.sleep(1.5)
    eventlet.spawn(blocker, 4)
elif scene == "gil-block":
    eventlet.sleep(0.5)
    print("BUSY", flush=True)
    sum(range(250_000_000))  # one C call holding the GIL for seconds
    print("DONE", flush=True)
elif scene == "exit-report":
    atexit.register(trigger.request, "atexit")
    sys.exit(0)
eventlet.spawn(ticker)
while True:
    eventlet.sleep(1)
