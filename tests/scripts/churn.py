"""Spawn many short-lived greenthreads; print what the registry keeps."""
import gc
import weakref

import eventlet

eventlet.monkey_patch()

from df_gmr import greenlets  # noqa: E402

greenlets.install()
done = eventlet.event.Event()
keep = [eventlet.spawn(done.wait) for _ in range(10)]
for _ in range(20):
    for _ in range(1000):
        eventlet.spawn(lambda: None)
    eventlet.sleep(0)
for _ in range(5000):  # spawn_n's plain greenlets: swept once dead
    eventlet.spawn_n(lambda: None)
eventlet.sleep(0)
for _ in range(20):
    eventlet.spawn(lambda: None)
pairs = greenlets.tracked_with_sites().items()
alive = [green for green, _ in pairs if not green.dead]
print(len(greenlets._alive), len(alive),
      sum(1 for green, site in pairs if green in keep and site))


class Result:
    """A greenthread's result, which nothing may keep once it is dropped."""


# Forgotten at their own exit, not at a later sweep: finished, killed
# before they ran, killed while parked.
eventlet.sleep(0)
before = len(greenlets._alive)
results = []
for _ in range(100):
    result = Result()
    results.append(weakref.ref(result))
    eventlet.spawn(lambda value=result: value)
    del result
killed = [eventlet.spawn(eventlet.sleep, 1) for _ in range(10)]
for green in killed:
    green.kill()
parked = [eventlet.spawn(eventlet.sleep, 10) for _ in range(10)]
eventlet.sleep(0)
for green in parked:
    green.kill()
eventlet.sleep(0)
del killed, parked, green
gc.collect()
print(len(greenlets._alive) - before,
      sum(1 for reference in results if reference() is not None))


# A link callback that parks: the greenthread is still listed meanwhile.
gate = eventlet.event.Event()
linked = eventlet.spawn(lambda: None)
linked.link(lambda green: gate.wait())
eventlet.sleep(0)
eventlet.sleep(0)
print(linked.dead, linked in greenlets.tracked())
gate.send(None)
eventlet.sleep(0)
