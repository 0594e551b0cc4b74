"""Worker processes on one port, each with a listening socket of its own (api.serve)."""

from __future__ import annotations

import socket

import pytest

from api.serve import port_socket, reuse_port_supported

pytestmark = pytest.mark.skipif(
    not reuse_port_supported(), reason="SO_REUSEPORT sockets are Linux only"
)


def test_connections_are_spread_over_the_listening_sockets_and_never_the_holder() -> None:
    holder = port_socket("127.0.0.1", 0)  # holds the port, does not listen
    port = holder.getsockname()[1]
    listeners = [port_socket("127.0.0.1", port, backlog=64) for _ in range(2)]
    clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(40)]
    try:
        accepted = []
        for sock in listeners:
            sock.setblocking(False)
            count = 0
            while True:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    break
                conn.close()
                count += 1
            accepted.append(count)
        assert sum(accepted) == 40
        assert min(accepted) > 0  # spread by address hash (all on one: odds ~2e-12)
        with pytest.raises(OSError):
            holder.accept()
    finally:
        for c in clients:
            c.close()
        for s in (holder, *listeners):
            s.close()
