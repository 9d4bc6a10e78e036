"""A service that uses cotyledon directly, as aodh and ceilometer do.

Usage: cotyledon_direct.py fork|spawn WORKERS LOG_DIR
Activation by environment only (DF_GMR_ENABLE=1), as an operator would.
Prints 'READY parent <pid>' then each worker prints 'READY worker <pid>'.
"""
import multiprocessing
import os
import sys
import threading

import cotyledon


class Notifier(cotyledon.Service):
    name = "notifier"

    def __init__(self, worker_id):
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self):
        print(f"READY worker {os.getpid()}", flush=True)
        self._stop.wait()

    def terminate(self):
        self._stop.set()


def main():
    method, workers = sys.argv[1], int(sys.argv[2])
    manager = cotyledon.ServiceManager(
        mp_context=multiprocessing.get_context(method))
    manager.add(Notifier, workers=workers)
    print(f"READY parent {os.getpid()}", flush=True)
    manager.run()


if __name__ == "__main__":
    main()
