"""A daemon with one group of greenthreads stuck and another moving.

Usage: analysis_scene.py
Sets df_gmr up (so that ``df-gmr report`` can ask it), then spawns 5
greenthreads blocked forever on an Event (``stuck_forever``), 3 blocked
forever on a Semaphore nobody releases (``stuck_on_semaphore``), and 4
that keep cycling short sleeps (``keeps_moving``); prints 'READY <pid>'.
"""
import eventlet

eventlet.monkey_patch()

import os  # noqa: E402

from eventlet import semaphore  # noqa: E402

from df_gmr import guru_meditation_report as gmr  # noqa: E402

gmr.TextGuruMeditation.setup_autorun("1", service_name="analysis")

never = eventlet.event.Event()
held = semaphore.Semaphore(0)


def stuck_forever():
    never.wait()


def stuck_on_semaphore():
    held.acquire()


def keeps_moving():
    while True:
        eventlet.sleep(0.02)


for _ in range(5):
    eventlet.spawn(stuck_forever)
for _ in range(3):
    eventlet.spawn(stuck_on_semaphore)
for _ in range(4):
    eventlet.spawn(keeps_moving)
eventlet.sleep(0.1)
print(f"READY {os.getpid()}", flush=True)
while True:
    eventlet.sleep(0.1)
