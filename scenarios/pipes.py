"""A standard output closed by its reader (``dispatchlab ... | head``): a quiet exit.

Every command line of the project (``dispatchlab``, the benchmark scripts) ends as Rich and
Click end one, and as the Python docs advise (the note on SIGPIPE in :mod:`signal`): no
traceback and no error line, exit status :data:`EXIT_CLOSED_STDOUT`. SIGPIPE itself is not
set back to its default: that would also end the service when a client hangs up.
"""

from __future__ import annotations

import os
import sys

#: the exit status when standard output was closed early (Python's, Click's and Rich's)
EXIT_CLOSED_STDOUT = 1


def stdout_closed() -> bool:
    """Whether standard output is a pipe whose reader has gone."""
    import select

    stream = sys.__stdout__
    if stream is None or not hasattr(select, "poll"):
        return False
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def quiet_exit() -> SystemExit:
    """The exit to raise once standard output is closed: what is left to write goes nowhere
    (no second error as Python flushes it at exit)."""
    stream = sys.__stdout__
    if stream is not None:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        except (AttributeError, OSError, ValueError):
            pass
    return SystemExit(EXIT_CLOSED_STDOUT)
