"""A helper Python process that talks pickled messages over its stdin and stdout.

Work that must not share the GIL with the solve (HiGHS' interrupt callbacks and Python-heavy
search wait for it) runs in such a process on the second core: the whole-pool MIP beside the
neighbourhood search (:class:`~solvers.allocation.lns.PoolRace`) and half of each pricing
round's per-order searches (:class:`~solvers.allocation.master.PricingHelper`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

_ROOT = str(Path(__file__).resolve().parents[2])


class HelperProcess:
    """A running helper process: pickled messages in, pickled messages out."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self._write = threading.Lock()
        self._ended = False

    @classmethod
    def spawn(cls, entry: str) -> HelperProcess | None:
        """Start ``python -c entry`` with this package importable (None if it cannot start)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", entry],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                cwd=_ROOT,
            )
        except OSError as exc:
            log.warning("helper process not started: %s", exc)
            return None
        return cls(proc)

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
        """
        stdout = self.proc.stdout
        if stdout is None:
            return False
        try:
            ready, _, _ = select.select([stdout], [], [], wait_s)
        except (OSError, ValueError):
            return True  # closed: receive() says so
        return bool(ready)

    def end(self, grace_s: float, join_s: float) -> None:
        """Close its input, wait ``grace_s`` for it to end, then SIGTERM, then SIGKILL."""
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
            self.proc.terminate()
            try:
                self.proc.wait(join_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close_output(self) -> None:
        """Close the pipe the process wrote to (after its reader is done)."""
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Channel:
    """In the helper process: the parent's messages in, ours out (Ctrl-C is the parent's).

    File descriptor 1 is pointed at /dev/null so that HiGHS' prints keep out of the channel.
    """

    def __init__(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
        self._out: IO[bytes] = os.fdopen(os.dup(1), "wb")
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        self._in: IO[bytes] = sys.stdin.buffer
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
