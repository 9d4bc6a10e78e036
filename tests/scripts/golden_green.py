"""Print the Green Threads section of a fixed eventlet scene."""
import eventlet

eventlet.monkey_patch()

from df_gmr import greenlets  # noqa: E402
from df_gmr import guru_meditation_report as gmr  # noqa: E402

greenlets.install()
done = eventlet.event.Event()


def waiter():
    done.wait()


def sleeper():
    eventlet.sleep(300)


for _ in range(3):
    eventlet.spawn(waiter)
eventlet.spawn_n(sleeper)
eventlet.sleep(0)
text = gmr.TextGuruMeditation(None).run()
print(text.split("==== Green Threads", 1)[1].split("\n====", 2)[1]
      .split("\n", 1)[1].split("\n=====", 1)[0])
