"""An eventlet service at rest: its main thread waits in the hub's epoll."""

from __future__ import annotations

import re

from tests.daemons import run_python

SCENE = """
import eventlet

eventlet.monkey_patch()

from eventlet import patcher

from df_gmr.guru_meditation_report import TextGuruMeditation

threading = patcher.original("threading")
time = patcher.original("time")


class Version:
    def version_string_with_package(self):
        return "1.0"


TextGuruMeditation.setup_autorun(Version())
reports = []


def report_while_idle():
    time.sleep(0.5)  # the main thread is in eventlet.sleep by then
    reports.append(TextGuruMeditation(Version()).run())


server = eventlet.listen(("127.0.0.1", 0))
eventlet.spawn(server.accept)  # a descriptor to wait on: the hub polls it
reporter = threading.Thread(target=report_while_idle)
reporter.start()
eventlet.sleep(2)  # the hub waits in epoll, nothing else to do
reporter.join()
print(reports[0])
"""


def test_the_main_thread_of_an_idle_hub_waits_in_select():
    # Every idle eventlet worker sits there: "running: in C call
    # self.poll.poll" made each look busy (seen on cinder-api).
    text = run_python(SCENE).stdout
    threads = text.split("==== Threads")[1].split("====\n", 2)[-1]
    assert re.search(r"^1 x main, waiting: select$", threads, re.M), threads
    assert "self.poll.poll (select.epoll.poll)" in threads, threads
