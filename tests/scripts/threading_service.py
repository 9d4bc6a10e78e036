"""An oslo.service daemon on the threading backend (cotyledon).

Usage: threading_service.py fork|spawn WORKERS LOG_DIR [leave]
Prints 'READY parent <pid>' then each worker prints 'READY worker <pid>'.
With ``leave``, the first worker (only: its successor stays) prints
'LEAVING worker <pid>' and sends itself SIGUSR2 then SIGTERM at once,
and cotyledon's log (how each worker ended) goes to stdout.
"""
import logging
import os
import sys

from oslo_config import cfg
from oslo_service import backend

backend.init_backend(backend.BackendType.THREADING)

from leaving import leave_once  # noqa: E402
from oslo_service import service  # noqa: E402

from df_gmr import guru_meditation_report as gmr  # noqa: E402
from df_gmr import opts as gmr_opts  # noqa: E402


class Worker(service.Service):
    def __init__(self, leave_mark=None):
        super().__init__()
        self.leave_mark = leave_mark  # pickled along to a spawned worker

    def start(self):
        super().start()
        print(f"READY worker {os.getpid()}", flush=True)
        if self.leave_mark is not None:
            leave_once(self.leave_mark)


def main():
    method, workers, log_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    leave = sys.argv[4:5] == ["leave"]
    if leave:  # cotyledon says on stdout how each worker ended
        logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                            format="%(levelname)s %(name)s %(message)s")
    conf = cfg.ConfigOpts()
    gmr_opts.set_defaults(conf)
    conf([], project="threadsvc")
    gmr.TextGuruMeditation.setup_autorun(
        "1.0", service_name="threadsvc", log_dir=log_dir, conf=conf)
    launcher = service.ProcessLauncher(conf, start_method=method)
    mark = os.path.join(log_dir, "leave.once") if leave else None
    launcher.launch_service(Worker(mark), workers=workers)
    print(f"READY parent {os.getpid()}", flush=True)
    launcher.wait()


if __name__ == "__main__":
    main()
