"""A service written for oslo.reports (as nova or neutron are).

Usage: oslo_reports_service.py LOG_DIR
"""
import eventlet

eventlet.monkey_patch()

import os  # noqa: E402
import sys  # noqa: E402

from oslo_config import cfg  # noqa: E402
from oslo_reports import guru_meditation_report as gmr  # noqa: E402
from oslo_reports import opts as gmr_opts  # noqa: E402

conf = cfg.ConfigOpts()
gmr_opts.set_defaults(conf)
conf([], project="legacy")
gmr.TextGuruMeditation.register_section("Legacy Section", lambda: "legacy")
gmr.TextGuruMeditation.setup_autorun("7.7", service_name="legacy",
                                     log_dir=sys.argv[1], conf=conf)
print(f"READY {os.getpid()}", flush=True)
while True:
    eventlet.sleep(0.1)
