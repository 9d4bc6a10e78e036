"""Which forks hold the hub's signals (SIGTERM, SIGHUP, SIGINT).

Usage: fork_hold.py plain|other|subclass|worker
Prints 'MASK <who> <held signal numbers>' from each process concerned.
  plain     a fork of the service's own (a subprocess, say): held nowhere
  other     a fork in another greenthread while the launcher starts a
            worker (it sleeps between quick restarts): held nowhere
  subclass  a ProcessLauncher whose _child_process is its own: not held
            (df_gmr could not let them in again)
  worker    a plain ProcessLauncher worker, once it runs: let in again
"""
import eventlet

eventlet.monkey_patch()

import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

from oslo_config import cfg  # noqa: E402
from oslo_service import service  # noqa: E402

from df_gmr import guru_meditation_report as gmr  # noqa: E402

HUB = {signal.SIGTERM, signal.SIGHUP, signal.SIGINT}


def held(who):
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    numbers = sorted(int(number) for number in HUB & set(mask))
    print(f"MASK {who} {numbers}", flush=True)


class Once(service.Service):
    def start(self):
        held("worker")
        os._exit(0)


class OwnChild(service.ProcessLauncher):
    def _child_process(self, service):
        held("child")
        os._exit(0)


gmr.TextGuruMeditation.setup_autorun(None, service_name="forkhold")
mode = sys.argv[1]
conf = cfg.ConfigOpts()
conf([], project="forkhold")
if mode in ("plain", "other"):
    launcher = service.ProcessLauncher(conf)  # wrapped, unused
    if mode == "other":
        import greenlet

        from df_gmr import launchers

        # As while _start_child sleeps in the launcher's greenthread.
        launchers._integration.forking_in = greenlet.greenlet(lambda: None)
    pid = os.fork()
    if pid == 0:
        held("child")
        os._exit(0)
    held("parent")
    os.waitpid(pid, 0)
else:
    kind = OwnChild if mode == "subclass" else service.ProcessLauncher
    launcher = kind(conf, restart_method="mutate")
    launcher.launch_service(Once(), workers=1)
    held("parent")
    for child in list(launcher.children):
        os.waitpid(child, 0)
print("DONE", flush=True)
