"""An eventlet daemon full of credentials, for the masking tests.

Usage: secrets_scene.py LOG_DIR [--format text|json] [--hanging-repr]
                        [--odd-sections]
                        [any other arguments: shown in its command line]
Sets df_gmr up (reports to LOG_DIR, section_timeout 3 s), then: secret
options in several groups (one reached through ``${database.password}``),
non-secret options named as credentials, registered sections that return
credentials and count hub objects (and, with --odd-sections, a
5000-digit integer and NaN), a greenthread in tpool calling
``functools.partial(blocking, password=...)``, a unix socket whose path
holds a secret, a native thread whose name does, and a child process whose
command line does.  With --hanging-repr, another greenthread is in tpool
calling an object whose ``__repr__`` never returns.  Prints 'READY <pid>'.
"""
import eventlet

eventlet.monkey_patch()

import functools  # noqa: E402
import gc  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

from eventlet import tpool  # noqa: E402
from oslo_config import cfg  # noqa: E402

from df_gmr import guru_meditation_report as gmr  # noqa: E402
from df_gmr import opts as gmr_opts  # noqa: E402

log_dir = sys.argv[1]
report_format = "text"
if "--format" in sys.argv:
    report_format = sys.argv[sys.argv.index("--format") + 1]
original_sleep = eventlet.patcher.original("time").sleep
native_threading = eventlet.patcher.original("threading")

DB_SECRET = "Db5 ecret,1"
CONF = cfg.ConfigOpts()
CONF.register_opts([cfg.StrOpt("password", secret=True, default=DB_SECRET)],
                   group="database")
CONF.register_opts([
    cfg.StrOpt("transport_url",
               default="rabbit://user:pa,ss word@rabbit-host:5672/"),
    cfg.StrOpt("db_note", default="uses ${database.password} inside"),
    cfg.StrOpt("api_key", default="ApiKeyValue7"),
    cfg.ListOpt("secret_list", secret=True,
                default=["ListSecretOne", "ListSecretTwo"]),
    cfg.StrOpt("socket_secret", secret=True, default="SockSecret42"),
])
CONF.register_opts([
    cfg.StrOpt("admin_password", default="AdminPassword9"),
    cfg.StrOpt("memcache_secret_key", secret=True, default="MemcacheKey5"),
    cfg.StrOpt("auth_url", default="http://keystone:5000/v3"),
], group="keystone_authtoken")
CONF.register_opts([
    cfg.StrOpt("backend", default="barbican"),
    cfg.StrOpt("fixed_key", secret=True, default="FixedKey123"),
], group="key_manager")
gmr_opts.set_defaults(CONF)
CONF([], project="secrets")
CONF.set_override("format", report_format, group="df_gmr")
CONF.set_override("section_timeout", 3, group="df_gmr")


def leaky():
    return {
        "note": f"connecting with {DB_SECRET} now",
        "password": "PlainPw77",
        "headers": "Authorization: Bearer BearerTok88\nX-Auth-Token: "
                   "XAuthTok99",
        "nested": {"auth_token": "NestedTok11", "user": "alice"},
        "url": "mysql://nova:pa,ss word@db/nova",
        "listed": "ListSecretTwo is here",
    }


def hub_objects():
    # Every eventlet hub of the process, df_gmr's threads' included.
    from eventlet.hubs import hub

    return len([o for o in gc.get_objects() if isinstance(o, hub.BaseHub)])


gmr.TextGuruMeditation.register_section("Leaky", leaky)
if "--odd-sections" in sys.argv:
    gmr.TextGuruMeditation.register_section("Huge", lambda: 10 ** 5000)
    gmr.TextGuruMeditation.register_section(
        "Odd Numbers", lambda: {"nan": float("nan"), "inf": float("-inf"),
                                "fine": 1.5})
gmr.TextGuruMeditation.register_section("Hub Objects", hub_objects)
gmr.TextGuruMeditation.setup_autorun("1.0", service_name="secrets",
                                     log_dir=log_dir, conf=CONF)


def blocking(password=None):
    original_sleep(600)


class HangingRepr:
    def __call__(self):
        original_sleep(600)

    def __repr__(self):
        original_sleep(3600)
        return "never"


eventlet.spawn(tpool.execute, functools.partial(blocking,
                                                password="TpoolPw55"))
if "--hanging-repr" in sys.argv:
    eventlet.spawn(tpool.execute, HangingRepr())

socket_dir = tempfile.mkdtemp(prefix="df-gmr-")
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(os.path.join(socket_dir, "SockSecret42.sock"))
listener.listen(1)
eventlet.spawn(listener.accept)

native_threading.Thread(target=original_sleep, args=(600,),
                        name="worker-FixedKey123", daemon=True).start()
child = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(600)", "--db",
     DB_SECRET, "MemcacheKey5"])

eventlet.sleep(0.2)  # the greenthreads reach their waits
print(f"READY {os.getpid()}", flush=True)
while True:
    eventlet.sleep(0.1)
