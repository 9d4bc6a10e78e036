"""Print the Threads section of a fixed scene of native threads.

Three workers wait on one event (one group), a thread holds an RLock that
another wants, one waits on an empty queue, one sleeps: a few groups,
the same on every run once normalised (tests/golden/test_threads_golden.py).
"""
import queue
import sys
import threading
import time

from df_gmr import guru_meditation_report as gmr
from df_gmr import origins

origins.install()  # as set-up does: where each thread starts is recorded
stop = threading.Event()
held = threading.Event()
rlock = threading.RLock()
jobs = queue.Queue(maxsize=4)


def worker():
    stop.wait()


def hold():
    with rlock:
        held.set()
        stop.wait()


def want():
    with rlock:
        pass


def consume():
    jobs.get()


def nap():
    time.sleep(300)


started = []
for number in range(3):
    started.append(threading.Thread(target=worker, name=f"worker-{number}",
                                    daemon=True))
started.append(threading.Thread(target=hold, name="holder", daemon=True))
for thread in started:
    thread.start()
held.wait()
for name, target in (("wanter", want), ("consumer", consume),
                     ("napper", nap)):
    started.append(threading.Thread(target=target, name=name, daemon=True))
    started[-1].start()
# Until every thread sits in its wait: its frame stops moving.
previous = None
for _ in range(100):
    frames = sys._current_frames()
    now = [(frames[t.ident].f_code, frames[t.ident].f_lasti)
           for t in started]
    if now == previous:
        break
    previous = now
    time.sleep(0.05)
text = gmr.TextGuruMeditation(None).run()
print(text.split("==== Threads", 1)[1].split("\n", 2)[2]
      .split("\n=====", 1)[0])
