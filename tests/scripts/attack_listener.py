"""A process of another user that pretends to df-gmr (standard library).

Usage: attack_listener.py --user NAME [--bind PATH] [--entry DIR]
           [--ppid N] [--signal SIG] [--start-offset K] [--service S]
           [--role R] [--catch SIG] [--answer-file F] [--seconds S]

Started by root, it becomes NAME (attack_common), then as NAME:
--bind        removes PATH and listens there ('{pid}' is its own pid);
--entry       writes DIR/<pid>.json, an entry as df_gmr writes one, with
              its start time plus --start-offset (a reused pid);
--catch       catches SIG and prints 'GOT SIG' when it comes;
--answer-file answers each connection with that file's text as a report.
It prints 'READY <pid>', then for each connection 'CONNECTED <pid> <uid>'
and 'RECEIVED <bytes>' (what the peer sent).  Ends after --seconds.
"""
import argparse
import json
import os
import signal
import socket
import struct
import sys
import time

from attack_common import become

parser = argparse.ArgumentParser()
parser.add_argument("--user", required=True)
parser.add_argument("--bind")
parser.add_argument("--entry")
parser.add_argument("--ppid", type=int, default=1)
parser.add_argument("--signal", default="SIGUSR2")
parser.add_argument("--start-offset", type=int, default=0)
parser.add_argument("--service", default="attacksvc")
parser.add_argument("--role", default="single process")
parser.add_argument("--catch")
parser.add_argument("--answer-file")
parser.add_argument("--seconds", type=float, default=60)
args = parser.parse_args()
answer = None
if args.answer_file:
    with open(args.answer_file, "rb") as handle:
        answer = handle.read()
signal.alarm(int(args.seconds))  # never outlives a test that forgot it
pid = os.getpid()
become(args.user)


def got(signum, frame):
    print(f"GOT {signal.Signals(signum).name}", flush=True)


if args.catch:
    signal.signal(getattr(signal, args.catch), got)
listening = None
if args.bind:
    path = args.bind.replace("{pid}", str(pid))
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(path)
    listening.listen(8)
    listening.settimeout(0.2)
if args.entry:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        start = int(handle.read().rsplit(b")", 1)[1].split()[19])
    entry = {"pid": pid, "ppid": args.ppid,
             "start_time": start + args.start_offset,
             "service": args.service, "role": args.role,
             "worker_index": 0 if args.role == "worker" else None,
             "launcher": "ProcessLauncher", "destination": "stderr",
             "signal": args.signal, "handler": "df_gmr"}
    partial = os.path.join(args.entry, f".{pid}.partial")
    with open(partial, "w") as handle:
        json.dump(entry, handle)
    os.chmod(partial, 0o600)
    os.rename(partial, os.path.join(args.entry, f"{pid}.json"))
print(f"READY {pid}", flush=True)
deadline = time.monotonic() + args.seconds
while time.monotonic() < deadline:
    if listening is None:
        time.sleep(0.2)
        continue
    try:
        connection, _ = listening.accept()
    except TimeoutError:
        continue
    peer = struct.unpack("3i", connection.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    print(f"CONNECTED {peer[0]} {peer[1]}", flush=True)
    connection.settimeout(2)
    received = b""
    try:
        while not received.endswith(b"\n"):
            chunk = connection.recv(128)
            if not chunk:
                break
            received += chunk
    except OSError:
        pass
    print(f"RECEIVED {received!r}", flush=True)
    if answer is not None and received:
        # Whatever df-gmr asks, once it has signalled us.
        time.sleep(0.3)
        connection.sendall(b"df_gmr/1 ok %d\n" % len(answer) + answer)
    connection.close()
sys.exit(0)
