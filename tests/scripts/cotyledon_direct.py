"""A service that uses cotyledon directly, as aodh and ceilometer do.

Usage: cotyledon_direct.py fork|spawn WORKERS [LOG_DIR [leave]]
Activation by environment only (DF_GMR_ENABLE=1), as an operator would.
Prints 'READY parent <pid>' then each worker prints 'READY worker <pid>'.
With ``leave``, the first worker (only: its successor stays) prints
'LEAVING worker <pid>' and sends itself SIGUSR2 then SIGTERM at once,
and cotyledon's log (how each worker ended) goes to stdout.
"""
import logging
import multiprocessing
import os
import sys
import threading

import cotyledon
from leaving import leave_once


class Notifier(cotyledon.Service):
    name = "notifier"

    def __init__(self, worker_id, leave_mark=None):
        super().__init__(worker_id)
        self._stop = threading.Event()
        self._leave_mark = leave_mark

    def run(self):
        print(f"READY worker {os.getpid()}", flush=True)
        if self._leave_mark is not None:
            leave_once(self._leave_mark)
        self._stop.wait()

    def terminate(self):
        self._stop.set()


def main():
    method, workers = sys.argv[1], int(sys.argv[2])
    mark = None
    if sys.argv[4:5] == ["leave"]:
        mark = os.path.join(sys.argv[3], "leave.once")
        # cotyledon says on stdout how each worker ended
        logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                            format="%(levelname)s %(name)s %(message)s")
    # As aodh's imports do: oslo.service's backend chosen (its default,
    # eventlet, imported but never run) though cotyledon alone runs this.
    from oslo_service import backend
    backend.get_backend()
    manager = cotyledon.ServiceManager(
        mp_context=multiprocessing.get_context(method))
    manager.add(Notifier, workers=workers, args=(mark,))
    print(f"READY parent {os.getpid()}", flush=True)
    manager.run()


if __name__ == "__main__":
    main()
