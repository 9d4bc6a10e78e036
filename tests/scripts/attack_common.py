"""Become another user inside a script that root started.

The test interpreter lives under /root (mode 0700): another user cannot
start it.  So a script that must run as another user is started by root,
imports everything it needs, then calls ``become`` before doing anything
that names its user (listen() takes the SO_PEERCRED credentials, files
get their owner).  Nothing may be imported after ``become``.
"""
import ctypes
import os
import pwd

PR_SET_DUMPABLE = 4


def become(name: str) -> None:
    """Drop every privilege for good: groups, gid, uid (root's too)."""
    entry = pwd.getpwnam(name)
    os.setgroups([])
    os.setresgid(entry.pw_gid, entry.pw_gid, entry.pw_gid)
    os.setresuid(entry.pw_uid, entry.pw_uid, entry.pw_uid)
    if os.getresuid() != (entry.pw_uid,) * 3 or os.getgroups():
        raise SystemExit(f"could not become {name}")
    # As a service started by systemd with User=: an ordinary process of
    # its user (setuid made it non-dumpable, its /proc files root's).
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    os.environ.update(HOME="/", USER=name, LOGNAME=name)
    os.chdir("/")
