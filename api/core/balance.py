"""Even out keep-alive connections over the worker processes of ``serve --workers N``.

Each worker listens on a ``SO_REUSEPORT`` socket of its own (:mod:`api.serve`), and the
kernel hands a new connection to one of them by a hash of its addresses. An OMS keeps its
connections open, so an uneven draw lasts. Of 20 connections over two workers, 13 / 7 or
worse happens in about a quarter of draws, and the clients of the busier worker wait
longer. A worker that holds more than its share, ``ceil(total / workers)``, therefore ends
one of its connections after an answer (``Connection: close``). It then waits
``quiet_s`` before it ends another. The client reconnects, and the kernel draws again.
``total`` is what the kernel reports for the port: established connections
(``/proc/net/tcp``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sized
from pathlib import Path

#: The worker's balancer, set by :mod:`api.serve` in each worker it starts; None elsewhere.
BALANCER: ConnectionBalancer | None = None

_ESTABLISHED = "01"


def established_on_port(port: int, tables: tuple[Path, ...] | None = None) -> int:
    """Established TCP connections whose local port is ``port`` (the server's ends)."""
    paths = tables or (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
    count = 0
    for path in paths:
        try:
            lines = path.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == _ESTABLISHED:
                local_port = fields[1].rsplit(":", 1)[-1]
                if int(local_port, 16) == port:
                    count += 1
    return count


class ConnectionBalancer:
    """Says when this worker should end a keep-alive connection (it holds too many)."""

    def __init__(
        self,
        own: Sized,
        workers: int,
        total: Callable[[], int],
        *,
        quiet_s: float = 0.01,
        refresh_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._own = own
        self._workers = workers
        self._total = total
        self._quiet_s = quiet_s
        self._refresh_s = refresh_s
        self._clock = clock
        self._quiet_until = -math.inf
        self._counted_at = -math.inf
        self._counted = 0
        self.closed = 0

    def should_close(self) -> bool:
        """True when this answer should end its connection (at most once per ``quiet_s``).

        The kernel's count is read again when it is ``refresh_s`` old, or when this worker
        seems to hold more than its share by the count it has: a balanced worker reads it
        about once a second.
        """
        now = self._clock()
        if now < self._quiet_until:
            return False
        own = len(self._own)
        if own <= 1:
            return False
        share = math.ceil(self._counted / self._workers)
        if own > share or now >= self._counted_at + self._refresh_s:
            self._counted, self._counted_at = self._total(), now
            share = math.ceil(self._counted / self._workers)
        if own <= share:
            return False
        self._quiet_until = now + self._quiet_s
        self.closed += 1
        return True
