"""Worker processes on one port, each with a listening socket of its own (api.serve)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from api.serve import port_socket, reuse_port_supported

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
