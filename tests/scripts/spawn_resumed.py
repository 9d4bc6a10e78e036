"""Spawns from a generator that several callers resume, in turn.

A generator's frame is one object however many callers resume it: the
spawn hooks' memo (the same frame at the same instruction) must not
give one caller's site to another's spawn.  The generator counts as
library code (its file is under eventlet's directory), as a library's
would.
"""
import os

import eventlet

eventlet.monkey_patch()

from df_gmr import callers  # noqa: E402
from df_gmr import greenlets  # noqa: E402
from df_gmr import stacks  # noqa: E402

greenlets.install()
SOURCE = "def gen(spawn, f):\n    while True:\n        yield spawn(f)\n"
library = {}
exec(compile(SOURCE, os.path.join(os.path.dirname(eventlet.__file__),
                                  "df_gmr_test_library.py"), "exec"),
     library)
done = eventlet.event.Event()
resumed = library["gen"](eventlet.spawn, done.wait)
prefixes = stacks.wrapper_prefixes()


def origin(green):
    return stacks.origin(callers.pairs(greenlets.tracked_with_sites()[green]),
                         prefixes)


def caller_x():
    return next(resumed)


def caller_y():
    return next(resumed)


# From two application functions, one after the other.
x, y = caller_x(), caller_y()
print(origin(x)["function"], origin(y)["function"])
# From two greenthreads whose first frame resumes it: library code alone
# spawns, in each of them.
first = eventlet.spawn(next, resumed)
second = eventlet.spawn(next, resumed)
lines = [origin(green.wait())["spawner_spawned_at"]["line"]
         for green in (first, second)]
print(lines[1] - lines[0])

# The thread-start hook's memo, the same way: threads started by a
# library generator that two functions resume.
import threading  # noqa: E402

from df_gmr import origins  # noqa: E402

origins.install()
STARTER = ("def starter():\n    thread = yield\n    while True:\n"
           "        thread.start()\n        thread = yield thread\n")
exec(compile(STARTER, os.path.join(os.path.dirname(eventlet.__file__),
                                   "df_gmr_test_starter.py"), "exec"),
     library)
starts = library["starter"]()
next(starts)


def start_from_x(thread):
    return starts.send(thread)


def start_from_y(thread):
    return starts.send(thread)


started = [start_from_x(threading.Thread(target=done.wait)),
           start_from_y(threading.Thread(target=done.wait))]
print(*[origins.origin(thread, prefixes)["function"] for thread in started])
done.send()
for thread in started:
    thread.join(10)
