"""Several API processes on one port, each listening on a socket of its own.

uvicorn's ``--workers`` hands every process the same listening socket, and the process that
wakes first accepts every pending connection: 20 keep-alive connections opened at once were
seen split 19 / 1 between two processes, so one process's clients waited for most of the
CPU. Here each worker binds its own socket with ``SO_REUSEPORT`` and the kernel spreads new
connections over them by address hash. The supervisor (uvicorn's: signals, restarts) only
holds the port with a bound socket that does not listen, so it is given no connections.
Each worker also ends a keep-alive connection now and then while it holds more than its
share of them (:mod:`api.core.balance`), so an uneven draw does not last. Linux only;
elsewhere :func:`serve_workers` is uvicorn's own ``--workers``.
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.supervisors import multiprocess

from api.core import balance


def reuse_port_supported() -> bool:
    """True where each worker can listen on its own socket of the same port (Linux)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def port_socket(host: str, port: int, *, backlog: int | None = None) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT``; listening if ``backlog``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if backlog is not None:
        sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


class OwnSocketProcess(multiprocess.Process):
    """A uvicorn worker process that listens on a ``SO_REUSEPORT`` socket of its own."""

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover
        """Serve on a fresh socket of the configured port (the supervisor's is not used)."""
        own = port_socket(self.config.host, self.config.port, backlog=self.config.backlog)
        port = self.config.port
        balance.BALANCER = balance.ConnectionBalancer(
            self.server.server_state.connections,
            self.config.workers,
            lambda: balance.established_on_port(port),
        )
        super().target([own])


def serve_workers(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """Run ``workers`` processes of the app factory ``app`` on ``host:port`` until stopped."""
    if workers <= 1 or not reuse_port_supported():
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    config = uvicorn.Config(app, host=host, port=port, workers=workers, **options)
    try:
        holder = port_socket(host, port)  # holds the port; never listens
    except OSError as err:  # as uvicorn says it for one process
        logging.getLogger("uvicorn.error").error(
            "%s while attempting to bind on address (%s, %d)", err, host, port
        )
        sys.exit(1)
    config.port = holder.getsockname()[1]
    # uvicorn's supervisor makes its workers from this module-level class
    process_class = multiprocess.Process
    multiprocess.Process = OwnSocketProcess  # type: ignore[misc]
    try:
        multiprocess.Multiprocess(config, sockets=[holder]).run()
    finally:
        multiprocess.Process = process_class  # type: ignore[misc]
        holder.close()
