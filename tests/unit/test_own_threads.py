"""df_gmr's threads are its own from their first frame to their last."""

from __future__ import annotations

import _thread
import threading

from df_gmr.lifecycle import lifecycle
from df_gmr.runtime import Snapshot
from df_gmr.runtime.natives import Natives
from df_gmr.sections import threads as threads_section

TIMEOUT = 10.0


def test_a_thread_out_of_the_registry_but_in_its_first_frame_is_df_gmrs():
    # As a thread is between its start and its registration, or between
    # leaving the registry and its end (the one-off thread that reads the
    # secret values, just before a report's snapshot).
    idents: list[int] = []
    ready, release = threading.Event(), threading.Event()

    def ending() -> None:
        idents.append(_thread.get_ident())
        del lifecycle.own_threads()[idents[0]]
        ready.set()
        release.wait(TIMEOUT)

    lifecycle.start_thread("test", ending)
    try:
        assert ready.wait(TIMEOUT)
        [ident] = idents
        assert ident not in lifecycle.own_threads()
        snapshot = Snapshot(_thread.get_ident())
        try:
            assert snapshot.own_threads()[ident] == \
                "thread (starting or ending)"
            natives = Natives(snapshot)
            listed = {member for group in natives.groups()
                      for member in group["ids"]}
            assert ident not in listed
            assert _thread.get_ident() in listed  # the service's are
            assert {"ident": ident, "name": None, "system_name": None,
                    "role": "df_gmr thread (starting or ending)"} in \
                natives.own_threads()
        finally:
            snapshot.release()
    finally:
        release.set()


def test_a_service_thread_is_not_taken_for_df_gmrs():
    ready, release = threading.Event(), threading.Event()
    idents: list[int] = []

    def service() -> None:
        idents.append(_thread.get_ident())
        ready.set()
        release.wait(TIMEOUT)

    _thread.start_new_thread(service, ())  # bare, as df_gmr's are
    try:
        assert ready.wait(TIMEOUT)
        snapshot = Snapshot(_thread.get_ident())
        try:
            assert idents[0] not in snapshot.own_threads()
        finally:
            snapshot.release()
    finally:
        release.set()


def test_df_gmr_threads_are_shown_by_the_name_the_system_shows():
    # They have no Thread object: the report names them as top -H does.
    ready, release = threading.Event(), threading.Event()

    def waiting() -> None:
        ready.set()
        release.wait(TIMEOUT)

    lifecycle.start_thread("watcher", waiting)
    try:
        assert ready.wait(TIMEOUT)
        own = Natives(Snapshot()).own_threads()
    finally:
        release.set()
    watcher = next(thread for thread in own
                   if thread["role"] == "df_gmr watcher")
    assert watcher["name"] is None
    assert watcher["system_name"] == "gmr-watcher"
    lines = threads_section.format_lines(
        {"count": 0, "groups": [], "df_gmr_threads": [watcher]})
    assert lines[-1] == (f"  Thread {watcher['ident']} gmr-watcher "
                         "[df_gmr watcher]")
