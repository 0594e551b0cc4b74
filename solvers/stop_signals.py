"""The signals that stop a server, and a helper process's defence against them.

SIGINT, SIGTERM, and SIGHUP and SIGQUIT where the platform has them, reach every process of
the group or cgroup (a terminal's Ctrl-C, systemd's ``KillMode=control-group``, a closed
terminal): the API's job processes, its fork server and the solvers' helper processes ignore
them and are ended by their parents instead.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

#: the stop signals whose default action kills a process at once, where the platform has
#: them: SIGHUP (the terminal closed) and SIGQUIT (Ctrl-\); a server stopped by one of them
#: ends killed by it (``api.serve``: at once after its clean-up, or once its workers stopped)
DEATH_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGHUP", "SIGQUIT") if hasattr(signal, name)
)

#: the signals job and helper processes ignore: SIGINT, SIGTERM and :data:`DEATH_SIGNALS`
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, *DEATH_SIGNALS)


@contextlib.contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """While inside, :data:`STOP_SIGNALS` are blocked in the calling thread (where the
    platform has signal masks): a process started meanwhile starts with them blocked.

    The process's handlers are left alone (a signal for it goes to another thread, or waits
    here until the block ends): setting them to ``SIG_IGN`` around the start, as a process of
    one thread may, would drop a stop meant for this multi-threaded server.
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
