"""An eventlet daemon with df_gmr, running as another user (a 'nova').

Usage: attack_service.py --user NAME [--log-dir DIR] [--run-dir DIR]
                         [--service-name NAME] [--evil-section]
Started by root; imports everything, becomes NAME (see attack_common),
then sets df_gmr up: its run directory, entry and socket are NAME's.
--evil-section registers a section whose text is terminal control
sequences.  Prints 'READY single <pid>' once set up.
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from attack_common import become  # noqa: E402

from df_gmr import guru_meditation_report as gmr  # noqa: E402

EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x9b0m"

parser = argparse.ArgumentParser()
parser.add_argument("--user", required=True)
parser.add_argument("--log-dir")
parser.add_argument("--run-dir")
parser.add_argument("--service-name", default="attacksvc")
parser.add_argument("--evil-section", action="store_true")
args = parser.parse_args()

gmr.TextGuruMeditation.register_section("Extra", lambda: "extra text")
if args.evil_section:
    gmr.TextGuruMeditation.register_section("Evil", lambda: EVIL)
# Everything a report needs, loaded while the files under /root can be
# read: one report built and thrown away.
gmr.TextGuruMeditation("1.0").run()

os.environ.pop("XDG_RUNTIME_DIR", None)
os.environ.pop("DF_GMR_RUN_DIR", None)
if args.run_dir:
    os.environ["DF_GMR_RUN_DIR"] = args.run_dir
become(args.user)

gmr.TextGuruMeditation.setup_autorun(
    "1.0", service_name=args.service_name, log_dir=args.log_dir)
print(f"READY single {os.getpid()} uid {os.geteuid()}", flush=True)
try:
    while True:
        eventlet.sleep(0.1)
except KeyboardInterrupt:
    sys.exit(0)
