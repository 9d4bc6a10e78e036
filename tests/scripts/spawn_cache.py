"""What the spawn hook's shortcuts must never change.

Prints one line per check:
1. the sites of one helper's loop, called from two callers: each names
   its own caller (a frame's shortcut never outlives its activation);
2. whether a local of a spawner that returned is still alive after the
   collector ran (the hook held the spawner's frame for its shortcut);
3. how many greenthreads could never run (spawn_after_local from a
   greenthread that ended: their timers fired and called nothing), and
   how many are still alive once the registry has doubled and the
   collector ran;
4. what a link callback of a greenthread saw (links still run).
"""
import gc
import weakref

import eventlet

eventlet.monkey_patch()

from df_gmr import greenlets  # noqa: E402

greenlets.install()


def helper(count):
    spawned = []
    for _ in range(count):
        spawned.append(eventlet.spawn(eventlet.sleep, 10))
    return spawned


def first_caller():
    return helper(3)


def second_caller():
    return helper(3)


def callers_of(spawned):
    sites = dict(greenlets.tracked_with_sites())
    names = set()
    for green in spawned:
        positions = greenlets.spawn_positions(sites[green])
        names.add(positions[2].co_name)  # helper's caller
    return sorted(names)


first = first_caller()
second = second_caller()
print(callers_of(first), callers_of(second))


class Local:
    """A spawner's local, which must not outlive it for long."""


def spawner():
    local = Local()
    for _ in range(3):
        eventlet.spawn(eventlet.sleep, 0)
    return weakref.ref(local)


reference = spawner()
gc.collect()
print(reference() is not None)


def schedule_and_end(count):
    for _ in range(count):
        last = eventlet.greenthread.spawn_after_local(0.01, print, "never")
    return last


# Their timers fire once their spawner ended, and call nothing: then only
# the registry refers to them, until it has doubled and a sweep runs.
# One the service still holds stays listed, as do the parked ones.
held = eventlet.spawn(schedule_and_end, 10_000).wait()
eventlet.sleep(0.1)
never_run = [weakref.ref(green) for green in
             greenlets.tracked_with_sites() if not green and green is not held]
parked = [eventlet.spawn(eventlet.sleep, 10) for _ in range(20_000)]
for _ in range(3):
    gc.collect()
tracked = set(greenlets.tracked())
print(len(never_run), sum(1 for probe in never_run if probe() is not None),
      held in tracked, all(green in tracked for green in parked))

seen = []
linked = eventlet.spawn(lambda: "result")
linked.link(lambda green: seen.append(green.wait()))
eventlet.sleep(0)
eventlet.sleep(0)
print(seen, linked in greenlets.tracked())
