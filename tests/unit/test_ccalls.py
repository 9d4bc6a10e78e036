"""What a C call means is read once for every thread that makes it; each
thread is then told apart (an RLock's owner re-enters, the rest wait)."""

from __future__ import annotations

import threading

from df_gmr.runtime import ccalls

CHAIN = (("LOAD_FAST", "lock"), ("attr", "acquire"))
OTHER_THREAD = -1  # no thread has this ident


def _acquire_call(lock):
    return (("call", "acquire", CHAIN, ()), True, lock, lock.acquire)


def test_one_reading_of_a_held_rlock_tells_its_owner_from_the_waiters():
    lock = threading.RLock()
    lock.acquire()
    try:
        verdict = ccalls.call_verdict(_acquire_call(lock),
                                      ccalls.lock_types())
        me = threading.get_ident()
        # The owner, paused on its own acquire, does not wait for it.
        assert ccalls.settle(verdict, me) == (
            "running", "in C call lock.acquire")
        assert ccalls.settle(verdict, OTHER_THREAD) == ("waiting", "lock")
        # As current_call says, reading it for each thread.
        for ident in (me, OTHER_THREAD):
            assert ccalls.settle(verdict, ident) == ccalls.current_call(
                _acquire_call(lock), ident, ccalls.lock_types())
    finally:
        lock.release()


def test_a_free_rlock_and_a_plain_lock_are_waits_for_every_thread():
    for lock in (threading.RLock(), threading.Lock()):
        verdict = ccalls.call_verdict(_acquire_call(lock),
                                      ccalls.lock_types())
        for ident in (threading.get_ident(), OTHER_THREAD):
            assert ccalls.settle(verdict, ident) == ("waiting", "lock")


def test_no_call_is_python_code_running():
    assert ccalls.settle(ccalls.call_verdict(None, ccalls.lock_types()),
                         threading.get_ident()) == (
        "running", ccalls.RUNNING_PYTHON)
