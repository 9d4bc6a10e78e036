"""An eventlet oslo.service daemon as nova runs one, for the truth tests.

Usage: truthful_service.py, with DF_GMR_ENABLE=1 (activation at
interpreter start), DF_GMR_LOG_DIR and DF_GMR_FORMAT=json in its
environment.

The parent keeps a request context from start-up on its main greenlet
and has a greenthread asleep when it forks its one worker.  The worker
runs an oslo.service WSGI server (which dups its listening socket) with
a client connected to it, an oslo.messaging RPC server (eventlet
executor), nova's periodic task (a dynamic timer without maximum), a
fixed interval timer and a greenthread serving a request.

Prints 'READY parent PID' and 'READY worker PID PORT', and the lines
(FACT name value) a test compares with a report.
"""
import eventlet

eventlet.monkey_patch()

import os  # noqa: E402
import sys  # noqa: E402

from oslo_config import cfg  # noqa: E402
from oslo_context import context  # noqa: E402
from oslo_service import service  # noqa: E402
from oslo_service import wsgi  # noqa: E402

CONF = cfg.ConfigOpts()
CONF([], project="truthful")
# As a service's start-up does (an admin context, say): the main
# greenlet keeps it for the rest of its life, and every worker too.
context.RequestContext(request_id="req-startup-leftover")
never = eventlet.event.Event()


def say(*words):
    print(*words, flush=True)


def line_of(marker):
    with open(__file__) as source:
        for number, line in enumerate(source, 1):
            if marker in line and "line_of(" not in line:
                return number
    raise LookupError(marker)


def asleep_at_fork():
    while True:
        eventlet.sleep(3.4)


def app(environ, start_response):
    start_response("200 OK", [])
    return [b"ok"]


def periodic_tasks():
    return 37.5  # what run_periodic_tasks returns: the next idle time


def report_state():
    pass


def serve_request():
    context.RequestContext(request_id="req-being-served")
    never.wait()


def hold_connection(port):
    client = eventlet.connect(("127.0.0.1", port))
    say("FACT client", f"127.0.0.1:{client.getsockname()[1]}")
    client.recv(1)


class Endpoint:
    def ping(self, ctxt):
        return "pong"


def start_rpc():
    import oslo_messaging

    transport = oslo_messaging.get_rpc_transport(CONF, url="fake:/")
    target = oslo_messaging.Target(topic="truthful", server="host-1")
    server = oslo_messaging.get_rpc_server(  # the rpc server
        transport, target, [Endpoint()], executor="eventlet")
    server.start()
    notifications = oslo_messaging.get_notification_transport(
        CONF, url="fake:/")
    listener = oslo_messaging.get_notification_listener(  # aodh's kind
        notifications, [oslo_messaging.Target(topic="alarms")],
        [Endpoint()], executor="eventlet", pool="truthful-pool")
    listener.start()
    return server, listener


class Worker(service.Service):
    def start(self):
        super().start()
        self.server = wsgi.Server(  # the wsgi server
            CONF, "truthful", app, host="127.0.0.1", port=0)
        self.server.start()  # the wsgi start
        self.tg.add_dynamic_timer(  # the periodic task
            periodic_tasks, initial_delay=None, periodic_interval_max=None)
        self.tg.add_timer(60, report_state)  # the fixed timer
        self.rpc = start_rpc()
        eventlet.spawn(serve_request)
        eventlet.spawn(hold_connection, self.server.port)
        eventlet.sleep(0.3)
        say(f"READY worker {os.getpid()} {self.server.port}")


for marker in ("the wsgi server", "the wsgi start", "the periodic task",
               "the fixed timer", "the rpc server", "the launch"):
    say("FACT", marker.replace(" ", "_"), line_of(f"# {marker}"))
eventlet.spawn(asleep_at_fork)
eventlet.sleep(0)
launcher = service.ProcessLauncher(CONF, restart_method="mutate")
launcher.launch_service(Worker(), workers=1)  # the launch
say(f"READY parent {os.getpid()}")
try:
    launcher.wait()
except KeyboardInterrupt:
    sys.exit(0)
