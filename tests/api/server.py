"""Run the real service in a uvicorn subprocess on a free loopback port (for the tests)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

CLI = [sys.executable, "-c", "from dispatchlab.cli import main; main()"]


def cli(setup: str = "") -> list[str]:
    """The command line of :data:`CLI`, with the Python statements ``setup`` run first."""
    return [sys.executable, "-c", setup + "from dispatchlab.cli import main; main()"]


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: a Unix socket path must stay under 108 bytes on Linux, and multiprocessing's fork server
#: binds ``<TMPDIR>/pymp-XXXXXXXX/listener-XXXXXXXX`` (32 more characters)
SOCKET_DIR_MAX_CHARS = 70


def socket_tmp_dir(preferred: Path) -> tuple[Path, bool]:
    """A ``TMPDIR`` for a process with a fork server: ``preferred`` if short enough, else a
    fresh short one under ``/tmp`` (True: the caller removes it).

    pytest's temp paths under xdist (``.../popen-gw1/<test name>/tmp``) left no room for the
    socket: the fork server failed with "AF_UNIX path too long".
    """
    if len(str(preferred)) <= SOCKET_DIR_MAX_CHARS:
        preferred.mkdir(parents=True, exist_ok=True)
        return preferred, False
    base = "/tmp" if os.path.isdir("/tmp") else None
    return Path(tempfile.mkdtemp(prefix="dl-", dir=base)), True


def database_env(database_url: str | None) -> dict[str, str]:
    """The environment that points a server (or the command line) at ``database_url``: its
    SQLite file under ``--data-dir`` when None (a ``DATABASE_URL`` of the caller's shell
    ignored), else that database (the ``settings`` fixture's PostgreSQL one)."""
    return {"DATABASE_URL": database_url or ""}


def make_key(data_dir: Path, role: str, *, database_url: str | None = None) -> str:
    """An API key from ``dispatchlab keys create`` (its last line), in the database of
    ``data_dir`` or ``database_url`` (see :func:`database_env`)."""
    out = subprocess.run(
        [*CLI, "keys", "create", "--role", role, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, **database_env(database_url)},
    )
    return out.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def inherited(ignored: tuple[signal.Signals, ...], *, core_dumps: bool = True) -> Iterator[None]:
    """While inside, a process started inherits ``ignored`` as ignored (as under ``nohup``)
    and, unless ``core_dumps``, a core file size limit of 0 (SIGQUIT then writes no core)."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in ignored}
    limits = None
    if not core_dumps:
        import resource  # Unix only

        limits = resource.getrlimit(resource.RLIMIT_CORE)
        resource.setrlimit(resource.RLIMIT_CORE, (0, limits[1]))
    try:
        yield
    finally:
        if limits is not None:
            resource.setrlimit(resource.RLIMIT_CORE, limits)
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


class Server:
    """``dispatchlab serve`` on 127.0.0.1; ``kill()`` sends SIGKILL like a crash.

    ``ignored``: signals the server starts with ignored (SIGHUP as under ``nohup``);
    ``core_dumps=False``: it starts with a core file size limit of 0; ``setup``: Python
    statements run before the command line (a patch, say); ``database_url``: its database
    (None: the SQLite file in ``data_dir``; see :func:`database_env`).

    Its temporary files go to ``data_dir/tmp`` (its ``TMPDIR``; a short folder of its own
    where that path is too long for a socket, see :func:`socket_tmp_dir`), not the system's: a
    killed server cannot remove the socket directory of its job processes' fork server
    (``pymp-*``).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        env: dict[str, str] | None = None,
        workers: int = 1,
        args: tuple[str, ...] = (),
        ignored: tuple[signal.Signals, ...] = (),
        core_dumps: bool = True,
        setup: str = "",
        database_url: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / f"server-{self.port}.log"
        self.tmp_dir, short = socket_tmp_dir(data_dir / "tmp")
        if short:  # removed with this object (after the test looked into it)
            weakref.finalize(self, shutil.rmtree, self.tmp_dir, True)
        full_env = {
            **os.environ,
            "DISPATCHLAB_JOB_POLL_S": "0.2",
            "TMPDIR": str(self.tmp_dir),
            **database_env(database_url),
            **(env or {}),
        }
        with self.log.open("w") as fh, inherited(ignored, core_dumps=core_dumps):
            self.process = subprocess.Popen(
                [
                    *cli(setup),
                    "serve",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(data_dir),
                    "--log-level",
                    "warning",
                    "--workers",
                    str(workers),
                    *args,
                ],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=full_env,
                start_new_session=True,
            )
        try:
            self.wait_ready()
        except BaseException:  # not ready in time: nothing of it may outlive the test
            self.kill_group()
            raise

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Block until ``/readyz`` answers 200."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the server (no shutdown hooks run)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def kill_group(self) -> None:
        """SIGKILL the server's whole process group (its job processes and fork server,
        which ignore the stop signals, included): a server that never got ready, whose test
        fails before it can stop it, left them running (found 45 minutes later)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM the server and wait for its exit status (fails after ``timeout_s``)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """The rows of ``sql`` read from the server's database (SQLite file or PostgreSQL)."""
        from sqlalchemy import text

        from api.core.config import Settings
        from api.db.session import make_engine

        settings = Settings(data_dir=self.data_dir, database_url=self.database_url)
        engine = make_engine(settings.resolved_database_url())
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(text(sql), params)]
        finally:
            engine.dispose()

    def log_tail(self) -> str:
        """The end of the server's log (for assertion messages)."""
        return self.log.read_text()[-2000:]

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), or kill after 15 s."""
        if self.process.poll() is not None:
            return
        try:
            self.terminate(15)
        except subprocess.TimeoutExpired:
            self.kill()


def descendants(pid: int) -> set[int]:
    """Pids of every live process below ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            out.add(child)
            stack.append(child)
    return out


def alive(pids: set[int]) -> set[int]:
    """The pids of ``pids`` still running (zombies count as gone)."""
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out
