"""What set-up leaves in a process that never asks for a report."""

from __future__ import annotations

import json

from tests.daemons import run_python

SCENE = """
import json
import sys

import eventlet

eventlet.monkey_patch()

from df_gmr.guru_meditation_report import TextGuruMeditation


class Version:
    def version_string_with_package(self):
        return "1.0"


TextGuruMeditation.setup_autorun(Version())
at_rest = "psutil" in sys.modules
text = TextGuruMeditation(Version()).run()
print(json.dumps([at_rest, "psutil" in sys.modules,
                  "Processes" in text and "command:" in text,
                  "threads (df_gmr's own included" in text]))
"""


def test_psutil_is_imported_neither_by_set_up_nor_by_a_report():
    # psutil's ~2,000 objects would be traversed by every full collection
    # of a service that never asks for a report, and its import took ~9 ms
    # of the first report: on Linux the Processes section reads /proc.
    result = run_python(SCENE)
    # and the system's thread count of the process says it counts df_gmr's
    assert json.loads(result.stdout.splitlines()[-1]) == [
        False, False, True, True]
