"""Several API processes on one port, each listening on a socket of its own.

uvicorn's ``--workers`` hands every process the same listening socket, and the process that
wakes first accepts every pending connection: 20 keep-alive connections opened at once were
seen split 19 / 1 between two processes, so one process's clients waited for most of the
CPU. Here each worker binds its own socket with ``SO_REUSEPORT`` and the kernel spreads new
connections over them by address hash. The supervisor (uvicorn's: signals, restarts) only
holds the port with a bound socket that does not listen, so it is given no connections.
Each worker also ends a keep-alive connection now and then while it holds more than its
share of them (:mod:`api.core.balance`), so an uneven draw does not last. With
``cpu_affinity`` each worker runs on a CPU of its own (:mod:`api.core.cpus`). Linux only;
elsewhere :func:`serve_workers` is uvicorn's own ``--workers``.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any, ClassVar

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess

from api.core import balance, cpus


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

    #: CPUs to pin workers to (empty: not pinned); set by :func:`serve_workers`
    cpus: ClassVar[tuple[int, ...]] = ()
    #: the workers this supervisor started (for the CPU a new one gets)
    started: ClassVar[list[OwnSocketProcess]] = []

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        #: the CPU this worker runs on, the one the fewest running workers hold; None: any
        self.cpu: int | None = None
        if self.cpus:
            running = [p for p in OwnSocketProcess.started if p.exitcode is None]
            OwnSocketProcess.started[:] = running
            self.cpu = cpus.least_used_cpu(self.cpus, [p.cpu for p in running if p.cpu is not None])
        super().__init__(config, sockets)
        OwnSocketProcess.started.append(self)

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover
        """Serve on a fresh socket of the configured port (the supervisor's is not used)."""
        if self.cpu is not None:  # before any thread starts: they all inherit it
            cpus.pin(self.cpu)
        own = port_socket(self.config.host, self.config.port, backlog=self.config.backlog)
        port = self.config.port
        balance.BALANCER = balance.ConnectionBalancer(
            self.server.server_state.connections,
            self.config.workers,
            lambda: balance.established_on_port(port),
        )
        super().target([own])


def serve_workers(
    app: str,
    *,
    host: str,
    port: int,
    workers: int,
    cpu_affinity: bool = False,
    **options: Any,
) -> None:
    """Run ``workers`` processes of the app factory ``app`` on ``host:port`` until stopped.

    ``cpu_affinity``: each worker on a CPU of its own (round the CPUs this process may use;
    with more workers than CPUs, the least used), its job processes on all of them. A worker
    that fails at start-up stops the service with exit status 3, as ``uvicorn.run`` does.
    """
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
    allowed = cpus.allowed_cpus() if cpu_affinity else []  # empty where not supported
    if allowed:
        OwnSocketProcess.cpus = tuple(allowed)
        os.environ[cpus.SERVICE_CPUS_ENV] = ",".join(map(str, allowed))
    try:
        supervisor = multiprocess.Multiprocess(config, sockets=[holder])
        supervisor.run()
        # uvicorn's supervisor stops when a worker fails at start-up (the app, say, cannot
        # reach its database) but returns as after Ctrl-C; exit as uvicorn.run does for one.
        if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
            sys.exit(STARTUP_FAILURE)
    finally:
        multiprocess.Process = process_class  # type: ignore[misc]
        OwnSocketProcess.cpus = ()
        os.environ.pop(cpus.SERVICE_CPUS_ENV, None)
        holder.close()
