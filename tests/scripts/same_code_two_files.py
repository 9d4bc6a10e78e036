"""Two files with the same code: each spawn site and origin names its own.

Code objects of identical functions in two files compare equal in
CPython 3.11 (co_filename is not compared): a site shared "by equality"
would name the other file.
"""
import os
import sys
import tempfile
import threading

import eventlet

eventlet.monkey_patch()

from df_gmr import greenlets  # noqa: E402
from df_gmr import origins  # noqa: E402

greenlets.install()
origins.install()
SOURCE = '''
import threading
import eventlet


def go(event):
    return eventlet.spawn(event.wait)


def start(event):
    thread = threading.Thread(target=event.wait)
    thread.start()
    return thread
'''
directory = tempfile.mkdtemp()
for name in ("copy_a", "copy_b"):
    with open(os.path.join(directory, f"{name}.py"), "w") as module:
        module.write(SOURCE)
sys.path.insert(0, directory)
import copy_a  # noqa: E402
import copy_b  # noqa: E402

done = eventlet.event.Event()
stop = threading.Event()
# From one place (one line, one instruction): only the codes differ.
greens = [module.go(done) for module in (copy_a, copy_b)]
threads = [module.start(stop) for module in (copy_a, copy_b)]
sites = dict(greenlets.tracked_with_sites())
for green in greens:
    positions = greenlets.spawn_positions(sites[green])
    print(os.path.basename(positions[0].co_filename))
for thread in threads:
    print(os.path.basename(origins.positions(thread)[0].co_filename))
stop.set()
for thread in threads:
    thread.join()
