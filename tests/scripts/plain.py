"""A process without eventlet monkey patching; argv[1] says how far it goes.

  none          no eventlet at all
  unpatched     eventlet imported, not monkey-patched
Prints the text report of TextGuruMeditation.run() and exits.
"""
import sys

if sys.argv[1] == "unpatched":
    import eventlet  # noqa: F401

from df_gmr import guru_meditation_report as gmr

gmr.TextGuruMeditation.setup_autorun("1.0", service_name="plain")
print(gmr.TextGuruMeditation("1.0").run())
print("eventlet loaded:", "eventlet" in sys.modules)
