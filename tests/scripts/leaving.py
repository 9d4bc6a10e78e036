"""A worker that asks for a report, then stops (the scenes' ``leave``)."""
import os
import signal


def leave_once(mark):
    """Ask for a report, then stop, in the first worker that gets here."""
    try:
        os.close(os.open(mark, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    print(f"LEAVING worker {os.getpid()}", flush=True)
    os.kill(os.getpid(), signal.SIGUSR2)
    os.kill(os.getpid(), signal.SIGTERM)
