"""A plain process that never set df_gmr up, as any on the host.

Says when SIGINT reaches it ('GOT SIGINT'); SIGUSR2 and SIGKILL kill it.
Prints 'READY' and sleeps for argv[1] seconds (default 60).
"""
import signal
import sys
import time


def got(signum, frame):
    print(f"GOT {signal.Signals(signum).name}", flush=True)


signal.signal(signal.SIGINT, got)
print("READY", flush=True)
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 60)
