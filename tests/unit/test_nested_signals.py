"""Another signal's handler that runs inside df_gmr's handler.

A signal that comes in while df_gmr's handler runs has its handler run
inside it (see df_gmr.trigger, "Other signals").  These scenes send one
from inside the handler itself, where a burst of signals puts it by
chance; tests/process/test_workers.py has the oslo.service worker whose
SIGTERM this is about.
"""

from __future__ import annotations

from tests.daemons import run_python

SCENE = """\
import os, signal, sys, time
from df_gmr import guru_meditation_report as gmr
from df_gmr import trigger

ran = []

def on_term(signum, frame):
    ran.append(signum)
    if sys.argv[2] == "raise":
        raise LookupError("from the nested handler")

signal.signal(signal.SIGTERM, on_term)
gmr.TextGuruMeditation.setup_autorun("1.0", service_name="nest",
                                     log_dir=sys.argv[1])
poke = trigger.trigger._poke

def sends_sigterm_first():
    os.kill(os.getpid(), signal.SIGTERM)
    poke()

trigger.trigger._poke = sends_sigterm_first
try:
    os.kill(os.getpid(), signal.SIGUSR2)
    for _ in range(100):
        time.sleep(0.01)
except LookupError as error:
    print("passed through:", error)
print("handled:", ran)
"""


def test_a_nested_handler_runs_once_and_nothing_is_raised(tmp_path):
    # Not in the hub's wait (no eventlet here): df_gmr's handler raises
    # nothing of its own; the other handler ran, inside it, once.
    done = run_python(SCENE, str(tmp_path), "quiet")
    assert done.stdout.splitlines() == ["handled: [15]"]


def test_what_a_nested_handler_raises_goes_on(tmp_path):
    # Any exception, not only a BaseException such as KeyboardInterrupt:
    # df_gmr swallows only its own failures.
    done = run_python(SCENE, str(tmp_path), "raise")
    assert done.stdout.splitlines() == [
        "passed through: from the nested handler",
        "handled: [15]"]
