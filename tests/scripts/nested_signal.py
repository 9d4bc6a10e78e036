"""An idle oslo.service worker that gets SIGTERM while df_gmr's handler runs.

Usage: nested_signal.py LOG_DIR start|poke|entry

oslo.service's eventlet handler wakes the hub only when it interrupts the
hub's wait itself; a signal that comes in while another handler runs has
its handler run inside that one.  The worker sends itself SIGTERM from
inside df_gmr's handler, at the point named (``start``: as the handler
starts the reporting thread, the first request's race; ``poke``: as it
wakes a running one; ``entry``: as it begins, before it holds other
signals off), as a burst of signals from outside does by chance.
Its hub has nothing to do: without a wake-up it sleeps a minute.
"""
import eventlet

eventlet.monkey_patch()

import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

from oslo_config import cfg  # noqa: E402
from oslo_service import service  # noqa: E402

from df_gmr import guru_meditation_report as gmr  # noqa: E402
from df_gmr import trigger  # noqa: E402
from df_gmr.lifecycle import lifecycle  # noqa: E402

log_dir, point = sys.argv[1], sys.argv[2]
# oslo.service says on stdout how each worker ended: the test reads it.
logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                    format="%(levelname)s %(name)s %(message)s")
CONF = cfg.ConfigOpts()
CONF([], project="nested")
gmr.TextGuruMeditation.setup_autorun("1.0", service_name="nested",
                                     log_dir=log_dir, conf=CONF)


def inject(owner, name):
    original = getattr(owner, name)

    def sends_sigterm_first(*args, **kwargs):
        if os.environ.get("NESTED_ARMED") == str(os.getpid()):
            os.environ.pop("NESTED_ARMED")
            os.kill(os.getpid(), signal.SIGTERM)
        return original(*args, **kwargs)

    setattr(owner, name, sends_sigterm_first)


class Worker(service.Service):
    def start(self):
        super().start()
        if point == "poke":  # the reporting thread runs before the SIGTERM
            os.kill(os.getpid(), signal.SIGUSR2)
            eventlet.sleep(1)
        os.environ["NESTED_ARMED"] = str(os.getpid())
        print(f"READY worker {os.getpid()}", flush=True)


if point == "start":
    inject(lifecycle, "start_thread")
elif point == "entry":  # before the handler holds other signals off
    inject(trigger, "_hold_signals")
else:
    inject(trigger.trigger, "_poke")
launcher = service.ProcessLauncher(CONF, restart_method="mutate")
launcher.launch_service(Worker(), workers=1)
print(f"READY parent {os.getpid()}", flush=True)
launcher.wait()
