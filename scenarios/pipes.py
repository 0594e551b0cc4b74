"""A standard output closed by its reader (``dispatchlab ... | head``): a quiet exit;
one that cannot be written (``> /dev/full``, a full disk): one error line, exit 1.

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


def quiet_exit(status: int = EXIT_CLOSED_STDOUT) -> SystemExit:
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
    return SystemExit(status)


#: the exit status when standard output could not be written (a full disk): as a reader gone
EXIT_STDOUT_UNWRITABLE = 1


def write_stdout(text: str) -> None:
    """Write ``text`` to standard output, flushed. A reader gone raises BrokenPipeError, as
    any write does (the caller ends quietly); any other OSError (``> /dev/full``, a full
    disk) is one line on stderr, ``error: standard output: <reason>``, and exit
    :data:`EXIT_STDOUT_UNWRITABLE` (a traceback until session 80)."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as err:
        reason = err.strerror or str(err) or type(err).__name__
        print(f"error: standard output: {reason}", file=sys.stderr, flush=True)
        raise quiet_exit(EXIT_STDOUT_UNWRITABLE) from None
