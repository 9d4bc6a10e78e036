"""Descriptors named by what they are, whichever descriptor of a socket.

Real sockets of this process (no eventlet needed): ``FdTable`` finds a
socket's inode by ``fstat`` and a file's path through /proc/self/fd.
"""

from __future__ import annotations

from collections.abc import Iterator
import os
import socket

import pytest

from df_gmr.runtime.fds import FdTable
from df_gmr.runtime.fds import ask_socket


@pytest.fixture
def closing() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def listening(family: int, host: str, closing: list) -> socket.socket:
    server = socket.socket(family)
    closing.append(server)
    server.bind((host, 0))
    server.listen()
    return server


def connected_pair(server: socket.socket, closing: list
                   ) -> tuple[socket.socket, socket.socket]:
    client = socket.create_connection(server.getsockname()[:2])
    accepted, _ = server.accept()
    closing.extend((client, accepted))
    return client, accepted


def test_every_duplicate_of_a_listening_socket_reads_listening(closing):
    server = listening(socket.AF_INET, "127.0.0.1", closing)
    duplicate = os.dup(server.fileno())  # as oslo.service's Server does
    try:
        port = server.getsockname()[1]
        table = FdTable()
        expected = f"tcp socket listening on 127.0.0.1:{port}"
        assert table.describe(server.fileno()) == expected
        assert table.describe(duplicate) == expected
    finally:
        os.close(duplicate)


def test_connected_tcp_sockets_name_both_ends(closing):
    server = listening(socket.AF_INET, "127.0.0.1", closing)
    client, accepted = connected_pair(server, closing)
    near = f"127.0.0.1:{client.getsockname()[1]}"
    far = f"127.0.0.1:{server.getsockname()[1]}"
    table = FdTable()
    assert table.describe(client.fileno()) == \
        f"tcp socket {near} -> {far} (connected)"
    assert table.describe(accepted.fileno()) == \
        f"tcp socket {far} -> {near} (connected)"


def test_tcp6_sockets_read_the_same(closing):
    if not socket.has_ipv6 or not os.path.exists("/proc/net/if_inet6"):
        pytest.skip("no IPv6 here")
    try:
        server = listening(socket.AF_INET6, "::1", closing)
    except OSError as error:
        pytest.skip(f"no IPv6 loopback: {error}")
    client, _ = connected_pair(server, closing)
    port = server.getsockname()[1]
    table = FdTable()
    assert table.describe(server.fileno()) == \
        f"tcp6 socket listening on [::1]:{port}"
    assert table.describe(client.fileno()) == (
        f"tcp6 socket [::1]:{client.getsockname()[1]} -> [::1]:{port} "
        "(connected)")


def test_unix_sockets_by_path_or_unnamed(closing, tmp_path):
    path = str(tmp_path / "service.sock")
    server = socket.socket(socket.AF_UNIX)
    closing.append(server)
    server.bind(path)
    server.listen()
    duplicate = os.dup(server.fileno())
    left, right = socket.socketpair()
    closing.extend((left, right))
    try:
        table = FdTable()
        assert table.describe(server.fileno()) == \
            f"unix socket listening on {path}"
        assert table.describe(duplicate) == f"unix socket listening on {path}"
        assert table.describe(left.fileno()) == \
            "unix socket unnamed (connected)"
    finally:
        os.close(duplicate)


def test_a_bound_udp_socket_and_a_closed_descriptor(closing):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closing.append(udp)
    udp.bind(("127.0.0.1", 0))
    table = FdTable()
    assert table.describe(udp.fileno()) == \
        f"udp socket bound to 127.0.0.1:{udp.getsockname()[1]}"
    read_end, write_end = os.pipe()
    os.close(write_end)
    os.close(read_end)
    assert table.describe(read_end) == "not open now (closed since)"
    assert "socket:[" not in " ".join(table.sockets().values())


def flags(sock: socket.socket) -> int:
    import fcntl

    return fcntl.fcntl(sock.fileno(), fcntl.F_GETFL)


@pytest.mark.parametrize("default_timeout", [None, 5.0],
                         ids=["asked", "tables"])
def test_asked_or_read_from_the_tables_the_socket_is_untouched(
        closing, default_timeout):
    # Asked through the descriptor when no default timeout is set (a
    # socket object would then make the descriptor non-blocking), else
    # read from /proc's tables: the same words either way.
    server = listening(socket.AF_INET, "127.0.0.1", closing)
    client, accepted = connected_pair(server, closing)
    abstract = socket.socket(socket.AF_UNIX)
    closing.append(abstract)
    abstract.bind(f"\0df-gmr-test-{os.getpid()}")
    abstract.listen()
    before = [flags(sock) for sock in (server, accepted, abstract)]
    client.close()  # the accepted end: close wait
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(default_timeout)
    try:
        asked = ask_socket(accepted.fileno())
        assert (asked is None) == (default_timeout is not None)
        table = FdTable()
        port = server.getsockname()[1]
        peer = accepted.getpeername()[1]
        assert table.describe(accepted.fileno()) == \
            f"tcp socket 127.0.0.1:{port} -> 127.0.0.1:{peer} (close wait)"
        assert table.describe(abstract.fileno()) == \
            f"unix socket listening on @df-gmr-test-{os.getpid()}"
    finally:
        socket.setdefaulttimeout(previous)
    assert [flags(sock) for sock in (server, accepted, abstract)] == before
    server.settimeout(0.5)  # still open and usable
    with pytest.raises(TimeoutError):
        server.accept()


def test_a_file_without_proc_is_unknown_and_a_socket_still_named(
        closing, monkeypatch, tmp_path):
    # A container without /proc: the links cannot be read.  A descriptor
    # that fstat finds open is never said to be closed.
    server = listening(socket.AF_INET, "127.0.0.1", closing)
    path = tmp_path / "data"
    path.write_text("x")
    with open(path) as handle:
        table = FdTable()
        assert table.describe(handle.fileno()) == str(path)

        def no_proc(name: str) -> str:
            raise FileNotFoundError(2, "No such file or directory", name)

        monkeypatch.setattr(os, "readlink", no_proc)
        table = FdTable()
        assert table.describe(handle.fileno()) == "unknown (no /proc)"
        assert table.describe(server.fileno()) == \
            f"tcp socket listening on 127.0.0.1:{server.getsockname()[1]}"


def test_one_report_says_one_thing_of_a_descriptor(closing):
    # Asked twice in one report (Eventlet Hub's listener, Green Threads'
    # reader): one reading, even if the number is reused in between.
    left, right = socket.socketpair()
    closing.extend((left, right))
    table = FdTable()
    number = left.fileno()
    first = table.describe(number)
    assert first == "unix socket unnamed (connected)"
    left.close()
    assert table.describe(number) == first
    assert FdTable().describe(number) == "not open now (closed since)"
