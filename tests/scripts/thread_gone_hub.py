"""Native threads spawn a greenthread and end before their hub runs.

Held strongly, such a greenthread would keep its hub (and the hub's epoll
descriptor) for good; the registry lets go of it when it can never run
(its thread gone), at the next sweep (the next hub made, say).  Prints
how many of the 20 threads' hubs are still alive (at most the last).
"""
import gc
import weakref

import eventlet
import eventlet.hubs

eventlet.monkey_patch()

from df_gmr import greenlets  # noqa: E402

greenlets.install()
hubs = []


def worker():
    eventlet.spawn(print, "never runs")
    hubs.append(weakref.ref(eventlet.hubs.get_hub()))


for _ in range(20):
    thread = eventlet.patcher.original("threading").Thread(target=worker)
    thread.start()
    thread.join()
gc.collect()
print(sum(reference() is not None for reference in hubs))
