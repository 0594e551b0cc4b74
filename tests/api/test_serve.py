"""Worker processes on one port, each with a listening socket of its own (api.serve).

Also how a serving process ends on SIGTERM: killed by the signal, with nothing left behind.
"""

from __future__ import annotations

import copy
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from api.examples import SMALL_SCENARIO
from api.serve import exit_cleanly_on_sigterm, port_socket, reuse_port_supported
from tests.api.server import SOCKET_DIR_MAX_CHARS, Server, alive, socket_tmp_dir

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not reuse_port_supported(), reason="SO_REUSEPORT sockets are Linux only"
)


def test_connections_are_spread_over_the_listening_sockets_and_never_the_holder() -> None:
    holder = port_socket("127.0.0.1", 0)  # holds the port, does not listen
    port = holder.getsockname()[1]
    listeners = [port_socket("127.0.0.1", port, backlog=64) for _ in range(2)]
    clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(40)]
    try:
        accepted = []
        for sock in listeners:
            sock.setblocking(False)
            count = 0
            while True:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    break
                conn.close()
                count += 1
            accepted.append(count)
        assert sum(accepted) == 40
        assert min(accepted) > 0  # spread by address hash (all on one: odds ~2e-12)
        with pytest.raises(OSError):
            holder.accept()
    finally:
        for c in clients:
            c.close()
        for s in (holder, *listeners):
            s.close()


BROKEN_APP = """
from contextlib import asynccontextmanager

from fastapi import FastAPI


@asynccontextmanager
async def lifespan(app):
    raise RuntimeError("cannot reach the database")
    yield


def create_app():
    return FastAPI(lifespan=lifespan)
"""


def test_workers_failing_at_start_up_stop_the_service_with_exit_3(tmp_path: Path) -> None:
    # uvicorn's supervisor stopped, but serve_workers returned: `serve --workers 4` with a bad
    # DATABASE_URL printed a traceback per worker and exited 0
    (tmp_path / "broken_app.py").write_text(BROKEN_APP)
    code = (
        "from api.serve import serve_workers; serve_workers('broken_app:create_app', "
        "factory=True, host='127.0.0.1', port=0, workers=2, log_level='critical')"
    )
    path = os.pathsep.join([str(tmp_path), str(REPO), os.environ.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stderr[-2000:]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_server_stopped_by_sigterm_after_a_job_leaves_no_pymp_dir(
    tmp_path: Path, workers: int
) -> None:
    # uvicorn ends a process it served in by raising SIGTERM again once the app has shut
    # down: Python's exit never ran, and multiprocessing's pymp-* folder with the job fork
    # server's listener-* socket stayed in the temp dir after every job
    server = Server(tmp_path, env={"DISPATCHLAB_AUTH_ENABLED": "false"}, workers=workers)
    try:
        body = {
            "scenario": copy.deepcopy(SMALL_SCENARIO),
            "params": {"time_limit_s": 0.2, "seed": 1},
            "mode": "async",
        }
        with httpx.Client(base_url=server.url, timeout=30) as http:
            answer = http.post("/v1/routes", json=body)
            assert answer.status_code == 202, answer.text
            job = answer.json()["job_id"]
            deadline = time.monotonic() + 60
            while (status := http.get(f"/v1/jobs/{job}").json()["status"]) != "done":
                assert status in {"queued", "running"} and time.monotonic() < deadline, status
                time.sleep(0.1)
        assert list(server.tmp_dir.glob("pymp-*/listener-*")), "the job used no fork server"
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(timeout=30)
    finally:
        server.stop()
    log = server.log.read_text()[-2000:]
    # one process dies by the signal, as before (143 in a shell); uvicorn's supervisor of
    # several stops its workers with SIGTERM and returns
    assert code == (-signal.SIGTERM if workers == 1 else 0), log
    assert not list(server.tmp_dir.glob("pymp-*")), log
    assert "Traceback" not in log


SIGTERM_SCRIPT = textwrap.dedent(
    """
    import multiprocessing, signal, sys, time
    from api.serve import exit_cleanly_on_sigterm

    if __name__ == "__main__":
        ctx = multiprocessing.get_context("forkserver")
        done = ctx.Process(target=print)
        done.start()
        done.join()
        running = ctx.Process(target=time.sleep, args=(60,), daemon=True)
        running.start()
        print(running.pid, flush=True)
        with exit_cleanly_on_sigterm():
            signal.raise_signal(signal.SIGTERM)
        print("not killed", flush=True)
    """
)


def test_sigterm_inside_the_guard_cleans_up_and_still_kills_the_process(tmp_path: Path) -> None:
    script = tmp_path / "sigterm.py"
    script.write_text(SIGTERM_SCRIPT)
    temp, short = socket_tmp_dir(tmp_path / "tmp")
    out, err = tmp_path / "out", tmp_path / "err"
    try:
        with out.open("w") as stdout, err.open("w") as stderr:  # files: the child inherits
            code = subprocess.run(
                [sys.executable, str(script)],
                env={**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(REPO)},
                stdout=stdout,
                stderr=stderr,
                timeout=60,
            ).returncode
        left = list(temp.iterdir())
    finally:
        if short:
            shutil.rmtree(temp, ignore_errors=True)
    assert code == -signal.SIGTERM, err.read_text()[-2000:]
    lines = out.read_text().split()
    assert "not" not in lines, lines
    child = {int(lines[-1])}
    try:
        assert not left, "multiprocessing's temp dir was left"
        # the daemonic child still running was terminated, as Python's exit would have done
        deadline = time.monotonic() + 5
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child)
    finally:
        for pid in alive(child):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("kept", [signal.SIG_IGN, signal.default_int_handler])
def test_the_guard_keeps_a_sigterm_handler_set_by_someone_else(kept: object) -> None:
    previous = signal.signal(signal.SIGTERM, kept)  # type: ignore[arg-type]
    try:
        with exit_cleanly_on_sigterm():
            assert signal.getsignal(signal.SIGTERM) is kept
        assert signal.getsignal(signal.SIGTERM) is kept
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with exit_cleanly_on_sigterm():
            assert signal.getsignal(signal.SIGTERM) not in {signal.SIG_DFL, kept}
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_path_too_long_for_a_fork_server_socket_gets_a_short_temp_dir(tmp_path: Path) -> None:
    # under xdist pytest's paths (".../popen-gw1/<test>/tmp") left no room for the fork
    # server's "<TMPDIR>/pymp-XXXXXXXX/listener-XXXXXXXX": "AF_UNIX path too long"
    short, made = socket_tmp_dir(tmp_path / ("x" * SOCKET_DIR_MAX_CHARS))
    try:
        assert made and short.is_dir() and len(str(short)) <= SOCKET_DIR_MAX_CHARS
        assert len(str(short / "pymp-abcdefgh" / "listener-abcdefgh")) < 108
    finally:
        shutil.rmtree(short, ignore_errors=True)
    base = Path(tempfile.mkdtemp(prefix="dl-", dir="/tmp"))
    try:
        kept, made = socket_tmp_dir(base / "tmp")  # short enough: used as it is
        assert kept == base / "tmp" and kept.is_dir() and not made
    finally:
        shutil.rmtree(base, ignore_errors=True)
