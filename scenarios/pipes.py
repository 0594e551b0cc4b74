"""A standard output closed by its reader (``dispatchlab ... | head``): a quiet exit;
one that cannot be written (``> /dev/full``, a full disk): one error line, exit 1.

Every command line of the project (``dispatchlab``, the benchmark scripts) ends as Rich and
Click end one, and as the Python docs advise (the note on SIGPIPE in :mod:`signal`): no
traceback and no error line, exit status :data:`EXIT_CLOSED_STDOUT`. SIGPIPE itself is not
set back to its default: that would also end the service when a client hangs up.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO, cast

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


class StdoutUnwritable(OSError):
    """Standard output could not be written for another reason than its reader gone
    (``> /dev/full``, a full disk): raised by :func:`guarded_stdout`'s stream."""


def unwritable_exit(err: OSError) -> SystemExit:
    """Say ``error: standard output: <reason>`` on stderr; the exit to raise (status
    :data:`EXIT_STDOUT_UNWRITABLE`, what is left to write goes nowhere)."""
    reason = err.strerror or str(err) or type(err).__name__
    print(f"error: standard output: {reason}", file=sys.stderr, flush=True)
    return quiet_exit(EXIT_STDOUT_UNWRITABLE)


def write_all_stdout(text: str) -> None:
    """Write the whole of ``text`` to standard output, flushed, or raise: a reader gone
    raises BrokenPipeError even when it went in the middle of the write.

    A text stream's ``write`` takes a large text in one write to the pipe; when the reader
    stops during it (``| head`` on a scenario of megabytes), that write returns the bytes
    the pipe took, and the text stream reports the whole text written: the rest was lost
    without a word and the command exited 0 (until session 81). The bytes the pipe did not
    take are written again here, and that write fails as any write to a reader gone does.
    """
    stream = sys.stdout
    binary = getattr(stream, "buffer", None)
    if stream is None or binary is None:  # a text-only stream (a test's capture): no pipe
        if stream is not None:
            stream.write(text)
            stream.flush()
        return
    stream.flush()  # what the text stream holds goes first, in order
    data = memoryview(text.encode(stream.encoding or "utf-8", stream.errors or "strict"))
    while data:
        written = binary.write(data)
        if not written:  # nothing taken by a blocking stream: not a state to loop in
            raise OSError(errno.EIO, "standard output took no bytes")
        data = data[written:]
    binary.flush()


def write_stdout(text: str) -> None:
    """Write ``text`` to standard output, flushed. A reader gone raises BrokenPipeError, as
    any write does (the caller ends quietly), also when it went during the write
    (:func:`write_all_stdout`); any other OSError (``> /dev/full``, a full disk) is one line
    on stderr, ``error: standard output: <reason>``, and exit :data:`EXIT_STDOUT_UNWRITABLE`
    (a traceback until session 80)."""
    try:
        write_all_stdout(text)
    except BrokenPipeError:
        raise
    except OSError as err:
        raise unwritable_exit(err) from None


class _Guarded:
    """A stream (standard output, or its binary buffer) whose failed writes, but for a reader
    gone, raise :class:`StdoutUnwritable`; everything else is the stream's own. The first
    failure is kept (:attr:`failure`, shared with the buffer's guard), for a caller that
    swallows it (argparse's ``--help`` does)."""

    def __init__(self, stream: Any, failures: list[OSError] | None = None) -> None:
        self._stream = stream
        self._failures: list[OSError] = [] if failures is None else failures

    @property
    def failure(self) -> OSError | None:
        """The first write or flush that failed (None: none did)."""
        return self._failures[0] if self._failures else None

    def _tagged(self, err: OSError) -> OSError:
        if not isinstance(err, BrokenPipeError):  # a reader gone: as before (a quiet exit)
            err = StdoutUnwritable(err.errno, err.strerror or str(err))
        self._failures.append(err)
        return err

    def write(self, data: Any) -> Any:
        """Write ``data`` to the stream."""
        try:
            return self._stream.write(data)
        except OSError as err:
            raise self._tagged(err) from err

    def writelines(self, lines: Iterable[Any]) -> None:
        """Write each of ``lines`` to the stream."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Flush the stream."""
        try:
            self._stream.flush()
        except OSError as err:
            raise self._tagged(err) from err

    @property
    def buffer(self) -> _Guarded:
        """The stream's binary buffer, guarded as well."""
        return _Guarded(self._stream.buffer, self._failures)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class StdoutGuard:
    """What :func:`guarded_stdout` yields: the first failed write to standard output while it
    lasted, raised or not."""

    def __init__(self, guard: _Guarded | None) -> None:
        self._guard = guard

    @property
    def failure(self) -> OSError | None:
        """The first write or flush of standard output that failed (None: none did)."""
        return None if self._guard is None else self._guard.failure


@contextmanager
def guarded_stdout() -> Iterator[StdoutGuard]:
    """While it lasts, a write to standard output (``print``, Click, Rich) that fails for
    another reason than its reader gone raises :class:`StdoutUnwritable`, which a command
    line's entry point turns into :func:`unwritable_exit` (one error line, exit 1), told
    apart from the OSError of a file it reads or writes. The yielded :class:`StdoutGuard`
    keeps the first failure, which a caller may have swallowed (argparse's ``--help``)."""
    stream = sys.stdout
    if stream is None:
        yield StdoutGuard(None)
        return
    guarded = _Guarded(stream)
    guard = cast(TextIO, guarded)
    sys.stdout = guard
    try:
        yield StdoutGuard(guarded)
    finally:
        if sys.stdout is guard:
            sys.stdout = stream
