"""An oslo.service daemon on the threading backend (cotyledon).

Usage: threading_service.py fork|spawn WORKERS LOG_DIR
Prints 'READY parent <pid>' then each worker prints 'READY worker <pid>'.
"""
import os
import sys

from oslo_config import cfg
from oslo_service import backend

backend.init_backend(backend.BackendType.THREADING)

from oslo_service import service  # noqa: E402

from df_gmr import guru_meditation_report as gmr  # noqa: E402
from df_gmr import opts as gmr_opts  # noqa: E402


class Worker(service.Service):
    def start(self):
        super().start()
        print(f"READY worker {os.getpid()}", flush=True)


def main():
    method, workers, log_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    conf = cfg.ConfigOpts()
    gmr_opts.set_defaults(conf)
    conf([], project="threadsvc")
    gmr.TextGuruMeditation.setup_autorun(
        "1.0", service_name="threadsvc", log_dir=log_dir, conf=conf)
    launcher = service.ProcessLauncher(conf, start_method=method)
    launcher.launch_service(Worker(), workers=workers)
    print(f"READY parent {os.getpid()}", flush=True)
    launcher.wait()


if __name__ == "__main__":
    main()
