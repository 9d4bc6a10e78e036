"""A tiny eventlet oslo.service daemon with no df_gmr code in it.

Usage: gmr_daemon.py --config-file FILE [--workers N]

Like an OpenStack service under DevStack: it parses its configuration
into the global ``cfg.CONF`` and runs a ProcessLauncher with N workers
(2 by default).  Guru Meditation Reports come only from the environment
(``DF_GMR_ENABLE=1``, the .pth hook).  Prints 'READY <role> <pid>' once
each process is up.
"""
import eventlet

eventlet.monkey_patch()

import os  # noqa: E402
import sys  # noqa: E402

from oslo_config import cfg  # noqa: E402
from oslo_service import service  # noqa: E402

CONF = cfg.CONF
CONF.register_cli_opt(cfg.IntOpt("workers", default=2))


class Worker(service.Service):
    def start(self) -> None:
        super().start()
        self.tg.add_timer(1.0, lambda: None)
        print(f"READY worker {os.getpid()}", flush=True)


def main() -> None:
    CONF(sys.argv[1:], project="gmr-daemon")
    launcher = service.ProcessLauncher(CONF, restart_method="mutate")
    launcher.launch_service(Worker(), workers=CONF.workers)
    print(f"READY parent {os.getpid()}", flush=True)
    launcher.wait()


if __name__ == "__main__":
    main()
