"""A report reads deprecated options without the service's warnings.

Usage: deprecated_opts.py DIR.  Prints the log lines (``LOG ...``)
around the markers ``REPORTED`` and ``READ``: a report in between logs
nothing, and the service's own reads afterwards still log their warnings.
"""
import json
import logging
import os
import sys

from oslo_config import cfg

from df_gmr import guru_meditation_report as gmr

directory = sys.argv[1]
logging.basicConfig(stream=sys.stdout, level=logging.WARNING,
                    format="LOG %(message)s")
path = os.path.join(directory, "service.conf")
with open(path, "w") as handle:
    handle.write("[DEFAULT]\nold_style = a\nformer = b\n"
                 "[Things]\ngone = c\n")
conf = cfg.ConfigOpts()
conf.register_opts([cfg.StrOpt("old_style", deprecated_for_removal=True),
                    cfg.StrOpt("renamed", deprecated_name="former")])
conf.register_opts([cfg.StrOpt("gone", deprecated_for_removal=True)],
                   group="things")
conf(["--config-file", path], project="deprecated")
gmr.TextGuruMeditation.setup_autorun("1", service_name="deprecated",
                                     log_dir=directory, conf=conf)
print("STARTED", flush=True)
document = json.loads(gmr.TextGuruMeditation("1").run("json"))
[section] = [s for s in document["sections"] if s["name"] == "configuration"]
shown = json.dumps(section["data"])
print("REPORTED", all(f'"{value}"' in shown for value in "abc"), flush=True)
print("READ", conf.old_style, conf.renamed, conf.things.gone, flush=True)
