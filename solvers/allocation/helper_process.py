"""A helper Python process that talks pickled messages over its stdin and stdout.

Work that must not share the GIL with the solve (HiGHS' interrupt callbacks and Python-heavy
search wait for it) runs in such a process on the second core: the whole-pool MIP beside the
neighbourhood search (:class:`~solvers.allocation.lns.PoolRace`) and half of each pricing
round's per-order searches (:class:`~solvers.allocation.master.PricingHelper`).

Such a process is a fresh interpreter (:meth:`HelperProcess.spawn`), or a copy of this one
(:meth:`HelperProcess.fork`: no interpreter start, no imports) where this process has one
thread: a job process, first thing (its modules imported by the fork server it came from).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from solvers.stop_signals import STOP_SIGNALS, stop_signals_blocked

log = logging.getLogger(__name__)

_ROOT = str(Path(__file__).resolve().parents[2])


#: seconds between checks of a forked process's exit while :meth:`ForkedProcess.wait` waits
_WAIT_POLL_S = 0.005


def fork_safe() -> bool:
    """Whether this process may fork a helper: no Python thread but the main one runs.

    A thread's locks (a logging handler's, a buffered stream's, a native library's) would be
    held for ever in the copy if it held them at the fork. Native thread pools of OpenBLAS
    (numpy, scipy) quiesce at a fork (``pthread_atfork``), as multiprocessing's fork server,
    which forks every job process with them alive, relies on too; a job process forked from
    it has a single thread of any kind until it starts one.
    """
    return (
        hasattr(os, "fork")  # not on Windows
        and threading.active_count() == 1
        and threading.current_thread() is threading.main_thread()
    )


class ForkedProcess:
    """A child forked by :meth:`HelperProcess.fork`: the part of ``subprocess.Popen`` that
    :class:`HelperProcess` uses (its pipes, ``poll``, ``wait``, ``terminate``, ``kill``)."""

    def __init__(self, pid: int, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self.pid = pid
        self.stdin: IO[bytes] | None = stdin
        self.stdout: IO[bytes] | None = stdout
        self.returncode: int | None = None
        self._reap = threading.Lock()

    def poll(self) -> int | None:
        """The exit code once the child has ended (reaped here), else None; never blocks."""
        with self._reap:
            if self.returncode is None:
                try:
                    pid, status = os.waitpid(self.pid, os.WNOHANG)
                except ChildProcessError:  # reaped already (by another waiter): it ended
                    self.returncode = 0
                else:
                    if pid == self.pid:
                        self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child's end (``subprocess.TimeoutExpired`` after ``timeout`` s)."""
        end = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if end is not None and time.monotonic() >= end:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
            time.sleep(_WAIT_POLL_S)
        return code

    def terminate(self) -> None:
        """SIGTERM (nothing once it has been reaped: its pid may be another's by then)."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL (nothing once it has been reaped)."""
        self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        with self._reap:
            if self.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, sig)


def _forked_main(entry: str, read_fd: int, write_fd: int, parent_ends: tuple[int, int]) -> None:
    """In a forked helper: the pipes as fds 0 and 1, then ``entry`` run; never returns
    (``os._exit``: the parent's exit handlers, finalizers and buffered output are the
    parent's).

    The parent's ends of this helper's pipes are closed, and those of its other helpers are
    pointed at /dev/null (their file objects here would close the fd numbers later: a
    closed number may be another file's by then), so that each of those helpers still sees
    the end of its input when its parent closes it. The other fds stay, as with
    multiprocessing's fork: its resource tracker's is used by Pyomo's import (a lock).
    """
    code = 1
    try:
        ignore_stop_signals()  # the parent stops us
        gc.freeze()  # the parent's objects out of the collector: no page of theirs copied
        for fd in parent_ends:
            os.close(fd)
        null = os.open(os.devnull, os.O_RDWR)
        for helper in list(_LIVE):
            for stream in (helper.proc.stdin, helper.proc.stdout):
                if stream is not None and not stream.closed:
                    os.dup2(null, stream.fileno())
        os.close(null)
        os.dup2(read_fd, 0)
        os.dup2(write_fd, 1)
        os.close(read_fd)
        os.close(write_fd)
        exec(compile(entry, "<helper entry>", "exec"), {"__name__": "__helper__"})
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


def ignore_stop_signals() -> None:
    """In a helper process: ignore SIGINT, SIGTERM, SIGHUP and SIGQUIT (:data:`STOP_SIGNALS`),
    which its parent's stop (or death, and its clean-up) handles.

    Sent to the whole process group or cgroup (a terminal's Ctrl-C, systemd's
    ``KillMode=control-group``, ``kill -TERM -PGID``) they reached the helpers of a job
    process (which ignores them, its server's graceful stop re-queueing the job) or of a
    synchronous solve: the solve lost its MIP race, pricing helper or pyomo worker, and
    answered worse or with the fallback plan before the stop came. Its parent ends it by
    closing its input, then SIGKILL (:meth:`HelperProcess.end`); it also ends when its input
    closes, as when its parent dies.
    """
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


#: the first line of a spawned helper's entry: :data:`STOP_SIGNALS` ignored, then unblocked
#: (blocked by :func:`stop_signals_blocked` in the parent's thread that started it)
IGNORE_STOP_SIGNALS_FIRST = (
    "import signal as _s; _x = [getattr(_s, _n) for _n in "
    f"{tuple(sig.name for sig in STOP_SIGNALS)!r}]; "
    "[_s.signal(_y, _s.SIG_IGN) for _y in _x]; "
    "hasattr(_s, 'pthread_sigmask') and _s.pthread_sigmask(_s.SIG_UNBLOCK, _x); del _s, _x\n"
)


#: the environment variable that gives a helper process the pid of the process that started
#: it (:func:`parent_pid`)
PARENT_ENV = "DISPATCHLAB_HELPER_PARENT"


def parent_pid() -> int:
    """In a helper process: the pid of the process that started it, as that process noted it
    (read later, ``os.getppid()`` is already another process's if that one died meanwhile:
    its orphan would take the new parent for its own)."""
    with contextlib.suppress(KeyError, ValueError):
        return int(os.environ[PARENT_ENV])
    return os.getppid()


#: the helper processes of this process (their pipes' parent ends: see :func:`_forked_main`)
_LIVE: weakref.WeakSet[HelperProcess] = weakref.WeakSet()


def _buffered(stream: IO[bytes]) -> bool:
    """Whether bytes can be read from ``stream`` at once (its buffer, or its pipe)."""
    peek = getattr(stream, "peek", None)
    if peek is None:
        return False
    try:
        fd = stream.fileno()
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    except (OSError, ValueError):
        return False
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    try:  # a buffer that holds bytes is returned without a read; else one read that won't block
        return bool(peek(1))
    except (BlockingIOError, OSError, ValueError):
        return False
    finally:
        with contextlib.suppress(OSError, ValueError):
            fcntl.fcntl(fd, fcntl.F_SETFL, flags)


class HelperProcess:
    """A running helper process: pickled messages in, pickled messages out."""

    def __init__(self, proc: subprocess.Popen[bytes] | ForkedProcess) -> None:
        self.proc = proc
        #: whether it is a copy of this process (:meth:`fork`), not a fresh interpreter
        self.forked = isinstance(proc, ForkedProcess)
        self._write = threading.Lock()
        self._ended = False
        _LIVE.add(self)

    @classmethod
    def spawn(cls, entry: str) -> HelperProcess | None:
        """Start ``python -c entry`` with this package importable (None if it cannot start).

        The new interpreter ignores SIGINT and SIGTERM from its first instant: they are
        blocked in this thread while it starts (a signal mask is inherited through the fork
        and the exec; the process's handlers, other threads' masks are untouched), and its
        entry first ignores them, then unblocks them (one that came meanwhile is dropped).
        It set them only in :class:`Channel`, after its imports (~0.5 s; seconds for Pyomo):
        SIGTERM to the whole group then killed a synchronous solve's helper.
        """
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
        env[PARENT_ENV] = str(os.getpid())
        try:
            with stop_signals_blocked():
                proc = subprocess.Popen(
                    [sys.executable, "-c", IGNORE_STOP_SIGNALS_FIRST + entry],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    env=env,
                    cwd=_ROOT,
                )
        except OSError as exc:
            log.warning("helper process not started: %s", exc)
            return None
        return cls(proc)

    @classmethod
    def fork(cls, entry: str) -> HelperProcess | None:
        """Fork this process to run ``entry`` (Python source, as :meth:`spawn`'s) in the copy:
        in milliseconds, with this process's modules imported. Only where :func:`fork_safe`
        (None otherwise, or if no process can be forked). The copy must not use a native
        library whose threads ran here: it has none of them (HiGHS: the caller checks
        :func:`~solvers.allocation.highs_model.highs_used`)."""
        if not fork_safe():
            return None
        child_in, parent_out = os.pipe()
        parent_in, child_out = os.pipe()
        fds = (child_in, parent_out, parent_in, child_out)
        if min(fds) < 3:  # fd 0, 1 or 2 was closed: the pipes would be moved onto themselves
            for fd in fds:
                os.close(fd)
            return None
        # what the parent has buffered would be written twice (the copy flushes at its exit)
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        parent = os.getpid()
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            log.warning("helper process not forked: %s", exc)
            return None
        if pid == 0:
            os.environ[PARENT_ENV] = str(parent)
            _forked_main(entry, child_in, child_out, (parent_out, parent_in))  # no return
        os.close(child_in)
        os.close(child_out)
        return cls(ForkedProcess(pid, os.fdopen(parent_out, "wb"), os.fdopen(parent_in, "rb")))

    def send(self, message: tuple[Any, ...] | bytes) -> bool:
        """Send one message (or its pickle); False once the process is gone."""
        stdin = self.proc.stdin
        if stdin is None:
            return False
        data = (
            message
            if isinstance(message, bytes)
            else pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        )
        with self._write:
            try:
                stdin.write(data)
                stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                return False
        return True

    def receive(self) -> tuple[Any, ...] | None:
        """The next message from the process (blocks, the GIL released); None at its end."""
        stdout = self.proc.stdout
        if stdout is None:
            return None
        try:
            message: tuple[Any, ...] = pickle.load(stdout)
        except (EOFError, OSError, pickle.UnpicklingError, ValueError):
            return None
        return message

    def readable(self, wait_s: float) -> bool:
        """Whether a message from the process can be read within ``wait_s`` seconds.

        Only between messages (nothing of the next one read yet), as the callers use it.
        A message already in the reader's buffer counts: reading one message can take the
        next one's bytes into it too, where ``select`` no longer sees them.
        """
        stdout = self.proc.stdout
        if stdout is None:
            return False
        if _buffered(stdout):
            return True
        try:
            ready, _, _ = select.select([stdout], [], [], wait_s)
        except (OSError, ValueError):
            return True  # closed: receive() says so
        return bool(ready)

    def end(self, grace_s: float) -> None:
        """Close its input, wait ``grace_s`` for it to end, then SIGKILL (it ignores SIGTERM:
        :func:`ignore_stop_signals`; with SIGTERM's default action it died as abruptly).

        ``grace_s <= 0``: SIGKILL first, so that a message still being written to it (a
        problem sent while it starts) fails at once instead of waiting for it to read.
        """
        if grace_s <= 0.0:
            self.proc.kill()  # (nothing once it has been reaped)
        with self._write:
            if self._ended:
                return
            self._ended = True
            if self.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def close_output(self) -> None:
        """Close the pipe the process wrote to (after its reader is done)."""
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Channel:
    """In the helper process: the parent's messages in, ours out (Ctrl-C and SIGTERM are the
    parent's: :func:`ignore_stop_signals`).

    File descriptor 1 is pointed at /dev/null so that HiGHS' prints keep out of the channel.
    """

    def __init__(self) -> None:
        ignore_stop_signals()  # the parent stops us
        self._out: IO[bytes] = os.fdopen(os.dup(1), "wb")
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        # fd 0, not sys.stdin: a forked helper's sys.stdin is its parent's (a job process's
        # is /dev/null, opened by multiprocessing)
        self._in: IO[bytes] = os.fdopen(0, "rb", closefd=False)
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def send(self, message: tuple[Any, ...]) -> bool:
        """Send one message to the parent; False once it is gone."""
        with self._lock:
            try:
                pickle.dump(message, self._out, protocol=pickle.HIGHEST_PROTOCOL)
                self._out.flush()
            except (BrokenPipeError, OSError, ValueError):
                return False
        return True

    def receive(self) -> tuple[Any, ...] | None:
        """The parent's next message (blocks); None once its end of the pipe is closed."""
        try:
            message: tuple[Any, ...] = pickle.load(self._in)
        except (EOFError, OSError, pickle.UnpicklingError, ValueError):
            return None
        return message

    def on_stop(self, stop: Callable[[], None]) -> None:
        """Call ``stop`` (in a thread) at the parent's next message or the end of its input."""

        def read() -> None:
            self.receive()
            stop()

        self._reader = threading.Thread(target=read, name="helper-input", daemon=True)
        self._reader.start()

    def close(self) -> None:
        """Close the output (the parent's reader sees the end), then wait for the parent.

        A process that ended while its input thread still reads would die at interpreter
        shutdown ("could not acquire lock for stdin"): it waits for the parent's stop (or
        the end of its input) instead.
        """
        with self._lock, contextlib.suppress(OSError):
            self._out.close()
        if self._reader is not None:
            self._reader.join()
