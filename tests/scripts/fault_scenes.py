"""Scenes for the fault tests (tests/process/test_faults.py): argv[1].

Each scene sets df_gmr up and prints 'READY <pid>' (or says why not).
Every wait in a scene is bounded: a scene that times out prints TIMEOUT
and exits 1.  eventlet is monkey-patched (first) by the scenes marked (e).

  gc-fork DIR        (e) a report with a 2 s section; a plain os.fork()
                     during it: 'CHILD GC <bool>', then 'PARENT GC <bool>'
                     once the report is in DIR
  gc-launcher DIR    (e) oslo.service ProcessLauncher, 1 worker; the parent's
                     report has a 3 s section ('SLOW BEGIN/END <pid>');
                     every process prints 'GC <role> <pid> <bool>' 5 x/s
  fd2-reuse PORT     (e) started with fd 2 closed; after set-up the hub is
                     renewed (as an oslo.service worker does) and a TCP
                     connection to 127.0.0.1:PORT takes number 2
  closerange N       (plain) stderr a pipe; after set-up closerange(3, 4096)
                     then N files opened in DIR=argv[3] reuse the numbers;
                     with N = 'high', files up to the C-level dump's number
  lines              (e) 'LINE <n>' every 20 ms on stdout (shared with
                     stderr by the test); a last section 'END OF REPORT'
  exit-storm         (plain; 'eventlet' as argv[2]: (e)) atexit sleeps
                     0.3 s, then sys.exit(3); argv[2] or [3] 'ignore':
                     SIGUSR2 set to SIG_IGN after set-up
  exit-report DIR    (plain) SIGUSR2 to itself, then exits at once;
                     '--slow S' adds an S s section, '--exit-wait W' sets
                     signals.EXIT_WAIT
  replaced           (e) the application sets its own SIGUSR2 handler
                     after set-up; it prints 'APP HANDLER <n>'; 'early':
                     through a signal() imported before set-up
  full-stderr        (e) fills its stderr pipe (nobody reads it): 'FULL <n>';
                     'exit': then SIGUSR2 to itself and exits (EXIT_WAIT
                     0.5 s): 'EXITING'
  steal              (plain) closerange(3, 4096) after set-up, then TCP
                     listeners until one takes the number of df_gmr's
                     socket: 'LISTEN <fd> <port>'
  log-dir DIR        (e) reports to DIR; '--fsize N': RLIMIT_FSIZE N bytes
                     (SIGXFSZ ignored) after set-up
  plain-fork         (no eventlet, no df_gmr import: activated by
                     DF_GMR_ENABLE) 'THREADS <n>', 'HANDLER <name>', forks,
                     'FORKED <exit status>'
"""
import os
import sys

try:
    os.fstat(2)
    FD2_AT_START = True
except OSError:
    FD2_AT_START = False
scene = sys.argv[1]
options = sys.argv[2:]
GREEN = {"gc-fork", "gc-launcher", "fd2-reuse", "lines", "replaced",
         "full-stderr", "log-dir"} | (
    {"exit-storm"} if "eventlet" in options else set())

if scene in GREEN:
    import eventlet

    eventlet.monkey_patch()

import atexit  # noqa: E402
import gc  # noqa: E402
import glob  # noqa: E402
import signal  # noqa: E402
from signal import signal as early_signal  # noqa: E402
import time  # noqa: E402

if scene in GREEN:
    original_sleep = eventlet.patcher.original("time").sleep
    pause = eventlet.sleep
else:
    original_sleep = pause = time.sleep


def say(*words):
    print(*words, flush=True)


def option(name, default=None):
    if name in options:
        return options[options.index(name) + 1]
    return default


def until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            say("TIMEOUT", what)
            os._exit(1)
        pause(0.01)


def reports_in(directory):
    return [p for p in glob.glob(os.path.join(directory, "*gurumeditation*"))
            if not os.path.basename(p).startswith(".")]


def setup(log_dir=None, conf=None):
    from df_gmr import guru_meditation_report as gmr

    gmr.TextGuruMeditation.setup_autorun(
        "1.0", service_name="faults", log_dir=log_dir, conf=conf)


def section(title, function):
    from df_gmr import guru_meditation_report as gmr

    gmr.TextGuruMeditation.register_section(title, function)


def forever():
    while True:
        pause(0.05)


def gc_fork():
    log_dir = options[0]
    in_report = []

    def slow():
        in_report.append(True)
        original_sleep(2)
        return "slow"

    section("Slow", slow)
    setup(log_dir)
    say("READY", os.getpid())
    until(lambda: in_report, 20, "the report")
    pause(0.2)
    child = os.fork()
    if child == 0:
        os.write(1, f"CHILD GC {gc.isenabled()}\n".encode())
        os._exit(0)
    say("FORKED DURING REPORT", not gc.isenabled())
    _, status = os.waitpid(child, 0)
    say("CHILD EXIT", os.waitstatus_to_exitcode(status))
    until(lambda: reports_in(log_dir), 20, "the report file")
    pause(0.2)
    say("PARENT GC", gc.isenabled())
    forever()


def gc_launcher():
    import logging

    from oslo_config import cfg
    from oslo_service import service

    from df_gmr import opts as gmr_opts

    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(levelname)s %(name)s %(message)s")
    conf = cfg.ConfigOpts()
    gmr_opts.set_defaults(conf)
    conf([], project="faults")
    parent = os.getpid()

    def slow():
        if os.getpid() == parent:
            say("SLOW BEGIN", os.getpid())
            original_sleep(3)
            say("SLOW END", os.getpid())
        return "slow"

    def ticker(role):
        while True:
            say("GC", role, os.getpid(), gc.isenabled())
            eventlet.sleep(0.2)

    class Worker(service.Service):
        def start(self):
            super().start()
            eventlet.spawn(ticker, "worker")
            say("READY worker", os.getpid())

    section("Slow", slow)
    setup(options[0], conf)
    launcher = service.ProcessLauncher(conf, restart_method="mutate")
    launcher.launch_service(Worker(), workers=1)
    eventlet.spawn(ticker, "parent")
    say("READY parent", os.getpid())
    launcher.wait()


def fd2_reuse():
    socket = eventlet.patcher.original("socket")
    if FD2_AT_START:
        say("FD2 OPEN AT START: the test must start this scene without it")
        sys.exit(1)
    setup()
    # What an oslo.service worker does first: a fresh hub (the old one's
    # epoll descriptor is closed) ...
    eventlet.hubs.use_hub()
    gc.collect()
    # ... then its first connection (a database, the message bus) takes
    # the lowest free number.
    connection = socket.create_connection(("127.0.0.1", int(options[0])))
    say("FD2", os.readlink("/proc/self/fd/2"),
        f"socket:[{os.fstat(connection.fileno()).st_ino}]",
        connection.fileno())
    say("READY", os.getpid())
    while True:
        eventlet.sleep(0.05)
        connection.getpeername()  # keep it referenced and open


def closerange():
    count, directory = options[0], options[1]
    setup()
    # The C-level dump's descriptor: another opening of the stderr pipe.
    stderr = os.readlink("/proc/self/fd/2")
    dump = max((int(fd) for fd in os.listdir("/proc/self/fd")
                if fd != "2" and os.path.exists(f"/proc/self/fd/{fd}")
                and os.readlink(f"/proc/self/fd/{fd}") == stderr),
               default=3)
    os.closerange(3, 4096)
    files = []
    while True:
        index = len(files)
        fd = os.open(os.path.join(directory, f"reused-{index}"),
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        files.append(fd)
        if (count == "high" and fd >= dump) or \
                (count != "high" and len(files) >= int(count)):
            break
    say("DUMP FD", dump, "FILES", files[0], "..", files[-1])
    say("READY", os.getpid())
    while True:
        time.sleep(0.05)


def lines():
    section("End", lambda: "END OF REPORT")
    setup()
    say("READY", os.getpid())
    number = 0
    while True:
        number += 1
        say("LINE", number)
        eventlet.sleep(0.02)


def exit_storm():
    setup()
    if "ignore" in options:
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)

    def linger():
        say("AT EXIT")
        time.sleep(0.3)

    atexit.register(linger)
    say("READY", os.getpid())
    time.sleep(0.2)
    sys.exit(3)


def exit_report():
    from df_gmr import signals

    log_dir = options[0]
    slow = float(option("--slow", 0))
    if slow:
        section("Slow", lambda: original_sleep(slow) or "slow")
    setup(log_dir)
    if option("--exit-wait"):
        signals.EXIT_WAIT = float(option("--exit-wait"))
    os.kill(os.getpid(), signal.SIGUSR2)
    say("EXITING")


def replaced():
    calls = []

    def handler(signum, frame):
        calls.append(signum)
        say("APP HANDLER", len(calls))

    setup()
    set_handler = early_signal if "early" in options else signal.signal
    set_handler(signal.SIGUSR2, handler)
    say("READY", os.getpid())
    forever()


def full_stderr():
    import posix  # the unpatched write: eventlet's would wait for room

    setup()
    filler = os.open("/proc/self/fd/2", os.O_WRONLY | os.O_NONBLOCK)
    written = 0
    for line in (b"service log line\n" * 256, b"x"):  # then to the brim
        try:
            for _ in range(1 << 20):  # bounded: a pipe holds 1 MiB at most
                written += posix.write(filler, line)
        except BlockingIOError:
            pass
    os.close(filler)
    say("FULL", written)
    say("READY", os.getpid())
    if "exit" in options:
        from df_gmr import signals

        signals.EXIT_WAIT = 0.5
        os.kill(os.getpid(), signal.SIGUSR2)
        pause(0.3)
        say("EXITING")
        sys.exit(0)
    forever()


def steal():
    import socket

    setup()
    ours = [fd for fd in map(int, os.listdir("/proc/self/fd")) if fd > 2
            and os.path.exists(f"/proc/self/fd/{fd}")
            and os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")]
    os.closerange(3, 8192)
    # The application's listener gets df_gmr's number (dup2 puts it right
    # there: whatever number df_gmr chose, a busy service may reach it).
    server = socket.create_server(("127.0.0.1", 0))
    os.dup2(server.fileno(), max(ours))
    last = socket.socket(fileno=max(ours))
    say("LISTEN", last.fileno(), last.getsockname()[1])
    say("READY", os.getpid())
    while True:
        time.sleep(0.05)


def log_dir():
    import resource

    setup(options[0])
    size = option("--fsize")
    if size:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(size), hard))
    say("READY", os.getpid())
    forever()


def plain_fork():
    with open("/proc/self/status") as status:
        threads = [line.split()[1] for line in status
                   if line.startswith("Threads:")]
    say("THREADS", *threads)
    handler = signal.getsignal(signal.SIGUSR2)
    say("HANDLER", getattr(handler, "__module__", handler))
    child = os.fork()
    if child == 0:
        os._exit(7)
    _, status = os.waitpid(child, 0)
    say("FORKED", os.waitstatus_to_exitcode(status))


SCENES = {
    "gc-fork": gc_fork, "gc-launcher": gc_launcher, "fd2-reuse": fd2_reuse,
    "closerange": closerange, "lines": lines, "exit-storm": exit_storm,
    "exit-report": exit_report, "replaced": replaced,
    "full-stderr": full_stderr, "log-dir": log_dir, "plain-fork": plain_fork,
    "steal": steal,
}
SCENES[scene]()
