"""spawn() as a greenlet's outermost frame: the work still runs."""
import eventlet

eventlet.monkey_patch()

from df_gmr import greenlets  # noqa: E402

greenlets.install()
ran = []
eventlet.spawn_n(eventlet.spawn, ran.append, "ran")
eventlet.sleep(0.1)
kept = [eventlet.spawn(eventlet.sleep, 10) for _ in range(3)]
eventlet.sleep(0)
print(ran, all(green in greenlets.tracked() for green in kept))


def sites_of_a_loop(spawn):
    """How many site tuples a loop of three spawns from one line keeps."""
    before = {id(green) for green in greenlets.tracked()}
    for _ in range(3):
        spawn(eventlet.sleep, 10)
    tracked = greenlets.tracked_with_sites()
    return len({id(site) for green, site in tracked.items()
                if id(green) not in before})


print(sites_of_a_loop(eventlet.spawn), sites_of_a_loop(eventlet.spawn_n))
