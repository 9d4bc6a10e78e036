"""Spawn many short-lived greenthreads; print the registry's size."""
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
pairs = greenlets.tracked_with_sites()
alive = [green for green, _ in pairs if not green.dead]
print(len(greenlets._refs), len(greenlets._codes) // greenlets.SITE_SLOTS,
      len(alive),
      sum(1 for green, site in pairs if green in keep and site))
