"""A forked child renews its hub: the parent's old hub can be freed.

The parent spawns greenthreads that have not run yet when it forks (as
a launcher's parent may); the child renews its hub as oslo.service's
workers do.  Prints, from the child: whether the old hub is still alive
after a collection, and whether the registry still lists the parent's
greenthreads (it may, while they exist).
"""
import gc
import os
import weakref

import eventlet

eventlet.monkey_patch()

from df_gmr import greenlets  # noqa: E402

greenlets.install()
waiting = [eventlet.spawn(eventlet.sleep, 10) for _ in range(5)]
old_hub = weakref.ref(eventlet.hubs.get_hub())
pid = os.fork()
if pid == 0:
    del waiting
    eventlet.hubs.use_hub()
    gc.collect()
    print("old hub alive", old_hub() is not None, flush=True)
    os._exit(0)
os.waitpid(pid, 0)
