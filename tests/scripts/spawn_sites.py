"""Spawn from every kind of place; print the C parts used and each site.

Run once with each spawn hook (tests/unit/test_sites.py): the two must
print the same sites, the same offsets, and share site tuples alike.
"""
import gc
import sys
import threading

import eventlet

eventlet.monkey_patch()

from eventlet import greenpool  # noqa: E402

from df_gmr import callers  # noqa: E402
from df_gmr import greenlets  # noqa: E402
from df_gmr import speedups  # noqa: E402
from df_gmr import stacks  # noqa: E402

greenlets.install()
print(speedups.used.header())  # what a report's header says
done = eventlet.event.Event()


def waiter():
    done.wait()


def loop_and_another_line():
    spawned = [eventlet.spawn(waiter) for _ in range(3)]
    spawned.append(eventlet.spawn(waiter))  # same frame, another line
    return spawned


def two_lines():
    first = eventlet.spawn(waiter)
    second = eventlet.spawn(waiter)  # the same frame, the next line
    return [first, second]


def helper():
    return eventlet.spawn(waiter)


def first_caller():
    return [helper(), helper()]


def second_caller():
    return [helper()]


pool = greenpool.GreenPool(20)


def pooled():
    return [pool.spawn(waiter) for _ in range(3)]


def in_a_thread(into):
    into.extend(loop_and_another_line())


def library_only():
    # GreenPool.spawn as a greenthread's first frame: library code alone
    # spawns the inner one; its site goes on with the outer one's.
    outer = eventlet.spawn(pool.spawn, waiter)  # the outer spawn
    return [outer.wait()]


if "profiled" in sys.argv[1:]:
    # Every frame gets its frame object at its call (a profile function
    # is handed it): the C hook then finds the spawner's frame object
    # made already, without sys._getframe, and must find the same one.
    sys.setprofile(lambda frame, event, arg: None)
groups = {
    "loop": loop_and_another_line(),
    "two lines": two_lines(),
    "first": first_caller(),
    "first again": first_caller(),
    "second": second_caller(),
    "pool": pooled(),
    "library only": library_only(),
}
native = []
thread = threading.Thread(target=in_a_thread, args=(native,))
thread.start()
thread.join()
groups["thread"] = native
sites = greenlets.tracked_with_sites()
seen = {}
for name, spawned in groups.items():
    shown = []
    for green in spawned:
        site = sites[green]
        # which earlier site tuple this one is (shared by identity)
        same = seen.setdefault(id(site), len(seen))
        shown.append((same, [
            ("MARKER" if code is stacks.SPAWNER_SPAWNED_AT else code.co_name,
             offset) for code, offset in
            zip(site[::2], site[1::2], strict=True)]))
    print(name, shown)
# The memos' frames (the last spawner's, returned) are let go once the
# collector ran.
gc.collect()
sys.setprofile(None)
print("memos hold", [memo.entry[0] is not None for memo in callers._MEMOS],
      [memo.holds() for memo in callers._COMPILED])
sys.stdout.flush()
