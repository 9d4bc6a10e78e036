"""eventlet's GreenThread.__init__, done by the spawn hook or called.

Usage: spawn_inline.py same|wrapped

``same``: df_gmr set up on the installed eventlet; a greenthread made by
the hook is compared with one made by eventlet's own ``__init__``.
``wrapped``: something wrapped ``__init__`` before set-up; the hook must
call the wrapper (it is not eventlet's known code).
"""
import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

from eventlet import greenthread  # noqa: E402

from df_gmr import greenlets  # noqa: E402

own_init = greenthread.GreenThread.__init__
calls = []
if sys.argv[1] == "wrapped":
    def counted(self, parent):
        calls.append(1)
        own_init(self, parent)

    greenthread.GreenThread.__init__ = counted
print(greenlets.same_code(greenthread.GreenThread.__init__,
                          greenlets._EVENTLET_INIT))
greenlets.install()
hooked = greenthread.GreenThread.__init__
print(hooked is not own_init)


def state(green):
    return (sorted((name, type(value).__name__)
                   for name, value in vars(green).items()),
            green.parent is eventlet.hubs.get_hub().greenlet,
            green.run == green.main, bool(green), green.dead)


hub = eventlet.hubs.get_hub().greenlet
made = eventlet.spawn(lambda: "result")
plain = greenthread.GreenThread.__new__(greenthread.GreenThread)
own_init(plain, hub)
print(state(made) == state(plain), state(made)[0])
print(made in greenlets.tracked_with_sites(), made.wait(), len(calls))
