"""Worker processes on one port, each with a listening socket of its own (api.serve).

Also how a serving process ends on SIGTERM, SIGHUP or SIGQUIT: killed by the signal, with
nothing left behind; and how the supervisor of several workers stops on SIGHUP and SIGQUIT.
"""

from __future__ import annotations

import contextlib
import copy
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
import uvicorn
from uvicorn.supervisors import multiprocess as uvicorn_multiprocess

from api.core.config import Settings
from api.examples import SMALL_SCENARIO
from api.jobs.executors import FORK_SERVER_COMMAND
from api.jobs.service import SYNC_AT_STOP
from api.serve import (
    DEATH_SIGNALS,
    GUARDED_SIGNALS,
    Supervisor,
    Worker,
    exit_cleanly_on_signals,
    port_socket,
    reuse_port_supported,
)
from tests.api.server import (
    SOCKET_DIR_MAX_CHARS,
    Server,
    alive,
    descendants,
    inherited,
    socket_tmp_dir,
)

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


#: run serve_workers as where each worker cannot listen on a socket of its own (not Linux)
SHARED_SOCKET = "import api.serve; api.serve.reuse_port_supported = lambda: False; "


def serve_script(
    tmp_path: Path, module: str, source: str, *, log_level: str = "info", shared: bool = False
) -> tuple[str, dict[str, str]]:
    """``python -c`` code serving the app ``module`` (written from ``source``) on two workers,
    and its environment (``shared``: one listening socket, as off Linux)."""
    (tmp_path / f"{module}.py").write_text(source)
    code = (SHARED_SOCKET if shared else "") + (
        f"from api.serve import serve_workers; serve_workers('{module}:create_app', "
        f"factory=True, host='127.0.0.1', port=0, workers=2, log_level='{log_level}')"
    )
    path = os.pathsep.join([str(tmp_path), str(REPO), os.environ.get("PYTHONPATH", "")])
    return code, {**os.environ, "PYTHONPATH": path}


def start_logged(code: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``python -c code`` in a session of its own, its output in ``log``."""
    with log.open("w") as fh:
        return subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.mark.parametrize(
    "shared",
    # the shared socket's supervisor is the same as own_sockets' (~6 s each)
    [False, pytest.param(True, marks=pytest.mark.slow)],
    ids=["own_sockets", "shared_socket"],
)
def test_workers_failing_at_start_up_stop_the_service_with_exit_3(
    tmp_path: Path, shared: bool
) -> None:
    # uvicorn's supervisor stopped, but serve_workers returned: `serve --workers 4` with a bad
    # DATABASE_URL printed a traceback per worker and exited 0 (with one shared socket, where
    # uvicorn.run ran the workers, still so until its supervisor was ours)
    code, env = serve_script(
        tmp_path, "broken_app", BROKEN_APP, log_level="critical", shared=shared
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stderr[-2000:]


CRASHING_APP = """
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI


@asynccontextmanager
async def lifespan(app):
    os._exit(1)  # dies at start-up (a segfault, say), where uvicorn reports no failure
    yield


def create_app():
    return FastAPI(lifespan=lifespan)
"""


def test_workers_crashing_at_start_up_stop_the_service_with_exit_3(tmp_path: Path) -> None:
    # uvicorn's supervisor stops only on the start-up failure a worker reports (exit status
    # 3): workers that died at start-up were replaced every half second for ever, and the
    # service never exited for its process manager to see
    code, env = serve_script(tmp_path, "crashing_app", CRASHING_APP)
    log = tmp_path / "serve.log"
    proc = start_logged(code, env, log)
    try:
        code_ = proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still replacing its workers: {log.read_text()[-2000:]}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    text = log.read_text()
    assert code_ == 3, text[-2000:]
    assert "died before it started serving" in text, text[-2000:]


def submit_a_job(
    server: Server, time_limit_s: float, until: str, scenario: dict[str, object] | None = None
) -> str:
    """Submit a routing job to ``server`` (``scenario``, else the small example); its id once
    its status is ``until`` (it then has a fork server)."""
    body = {
        "scenario": copy.deepcopy(SMALL_SCENARIO) if scenario is None else scenario,
        "params": {"time_limit_s": time_limit_s, "seed": 1},
        "mode": "async",
    }
    before = {"queued"} if until == "running" else {"queued", "running"}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post("/v1/routes", json=body)
        assert answer.status_code == 202, answer.text
        job = str(answer.json()["job_id"])
        deadline = time.monotonic() + 60
        while (status := http.get(f"/v1/jobs/{job}").json()["status"]) != until:
            assert status in before and time.monotonic() < deadline, status
            time.sleep(0.1)
    # a job is marked running before its fork server's socket exists (a race under load)
    while not list(server.tmp_dir.glob("pymp-*/listener-*")):
        assert time.monotonic() < deadline, "the job used no fork server"
        time.sleep(0.1)
    return job


def run_a_job(server: Server) -> None:
    """Run a routing job on ``server`` to its end: its API process then has a fork server."""
    submit_a_job(server, 0.2, "done")


def workers_of(supervisor: int) -> set[int]:
    """Pids of the API processes uvicorn's supervisor ``supervisor`` started (not its others)."""
    out = set()
    for pid in alive(descendants(supervisor)):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == supervisor and b"spawn_main" in cmdline:
            out.add(pid)
    return out


OK_APP = """
import os

from fastapi import FastAPI


def create_app():
    app = FastAPI()
    app.get("/ping")(lambda: "pong")
    app.get("/pid")(os.getpid)
    return app
"""


def test_workers_on_a_free_port_log_the_port_they_serve_on(tmp_path: Path) -> None:
    # `serve --workers 2 --port 0` printed "a free port (uvicorn's log names it)", but only
    # one process's uvicorn logs its address: the supervisor of several named no port
    code, env = serve_script(tmp_path, "ok_app", OK_APP)
    log = tmp_path / "serve.log"
    proc = start_logged(code, env, log)
    try:
        assert _ping_the_logged_port(proc, log, time.monotonic() + 60).json() == "pong"
    finally:
        _stop_server(proc)


def _ping_the_logged_port(
    proc: subprocess.Popen[bytes], log: Path, deadline: float
) -> httpx.Response:
    """The answer to ``GET /ping`` on the port uvicorn's log in ``log`` names."""
    port = None
    while port is None:
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+) ", log.read_text())
        port = int(found.group(1)) if found else None
        time.sleep(0.1)
    answer = None
    while answer is None:
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1)
        time.sleep(0.1)
    return answer


def _stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL to its process group if it is not gone in 30 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.mark.parametrize("workers", [1, 2], ids=["one_process", "workers"])
def test_the_access_log_goes_to_stderr_not_stdout(tmp_path: Path, workers: int) -> None:
    """``serve --access-log`` (and ``dispatchlab demo``) is documented as a stderr line per
    request: uvicorn wrote it to stdout, among the demo key and the docs address."""
    (tmp_path / "ok_app.py").write_text(OK_APP)
    code = (
        "from api.serve import serve_workers; serve_workers('ok_app:create_app', factory=True, "
        f"host='127.0.0.1', port=0, workers={workers}, log_level='info', access_log=True)"
    )
    path = os.pathsep.join([str(tmp_path), str(REPO), os.environ.get("PYTHONPATH", "")])
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    with out.open("w") as out_fh, err.open("w") as err_fh:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONPATH": path},
            stdout=out_fh,
            stderr=err_fh,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        assert _ping_the_logged_port(proc, err, deadline).status_code == 200
        while '"GET /ping HTTP/1.1" 200' not in err.read_text():
            assert time.monotonic() < deadline, (out.read_text(), err.read_text())
            time.sleep(0.1)
    finally:
        _stop_server(proc)
    assert "GET /ping" not in out.read_text()


@pytest.mark.parametrize(
    ("workers", "setup"),
    # the workers' variants (~14 s each) run the same exit path in each worker process
    # (one_process too, ~14 s: by default a pymp-* folder left by a SIGTERM is looked for by
    # test_the_job_fork_server_starts_with_the_service_and_sigterm_leaves_no_process, whose
    # fork server, started with the service, has made it before any job, and by
    # test_sigterm_to_the_whole_process_group_re_queues_the_running_job, during a job)
    [
        pytest.param(1, "", marks=pytest.mark.slow),
        pytest.param(2, "", marks=pytest.mark.slow),
        pytest.param(2, SHARED_SOCKET, marks=pytest.mark.slow),
    ],
    ids=["one_process", "own_sockets", "shared_socket"],
)
def test_a_server_stopped_by_sigterm_after_a_job_leaves_no_pymp_dir(
    tmp_path: Path, workers: int, setup: str
) -> None:
    # uvicorn ends a process it served in by raising SIGTERM again once the app has shut
    # down: Python's exit never ran, and multiprocessing's pymp-* folder with the job fork
    # server's listener-* socket stayed in the temp dir after every job (the workers on one
    # shared socket, as where SO_REUSEPORT is missing, still left it)
    env = {"DISPATCHLAB_AUTH_ENABLED": "false"}
    server = Server(tmp_path, env=env, workers=workers, setup=setup)
    try:
        run_a_job(server)
        code = server.terminate()
    finally:
        server.stop()
    log = server.log_tail()
    # a graceful stop, as after Ctrl-C: status 0 (one process ended killed by the signal, 143
    # in a shell, a failure to docker and kubernetes, while the supervisor of several ended 0)
    assert code == 0, log
    assert not list(server.tmp_dir.glob("pymp-*")), log
    assert "Traceback" not in log


def _fork_servers(pids: set[int]) -> set[int]:
    """The pids of ``pids`` that are multiprocessing fork servers."""
    out = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            if b"multiprocessing.forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.add(pid)
    return out


def test_the_job_fork_server_starts_with_the_service_and_sigterm_leaves_no_process(
    tmp_path: Path,
) -> None:
    # the job processes' fork server started with the first job, which waited for its
    # imports (seconds with Pyomo): it now starts with the service, before any job
    server = Server(tmp_path, env={"DISPATCHLAB_AUTH_ENABLED": "false"})
    try:
        deadline = time.monotonic() + 30
        while not _fork_servers(started := alive(descendants(server.process.pid))):
            assert time.monotonic() < deadline, "no fork server after start-up"
            time.sleep(0.1)
        # the fork server's socket folder (pymp-*), which a SIGTERM left behind when Python's
        # exit never ran (see test_a_server_stopped_by_sigterm_after_a_job_leaves_no_pymp_dir)
        assert list(server.tmp_dir.glob("pymp-*/listener-*")), server.log_tail()
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        code = server.terminate()
    finally:
        server.stop()
    log = server.log_tail()
    assert code == 0, log
    deadline = time.monotonic() + 30
    while alive(started):  # the fork server is stopped by the service, the rest follow it
        assert time.monotonic() < deadline, (alive(started), log)
        time.sleep(0.1)
    assert not list(server.tmp_dir.glob("pymp-*")), log
    assert "Traceback" not in log


#: Python statements that give the served app a graceful shutdown timeout of 2 s (10 s in
#: ``dispatchlab serve``)
SHORT_GRACE = (
    "import api.serve as s; _f = s.serve_workers; "
    "s.serve_workers = lambda *a, **k: _f(*a, **{**k, 'timeout_graceful_shutdown': 2}); "
)


def _long_sync_request(kind: str) -> tuple[str, dict[str, object], dict[str, str]]:
    """A synchronous request of ``kind`` with a 30 s time limit: its path, body, headers."""
    if kind == "routes":  # answered in a worker thread; with an Idempotency-Key (its claim)
        from scenarios.generate import generate_city

        scenario = generate_city(seed=1, num_orders=300, num_nodes=4, num_couriers=15)
        body: dict[str, object] = {
            "scenario": scenario.model_dump(mode="json"),
            "params": {"time_limit_s": 30.0},
            "mode": "sync",
        }
        return "/v1/routes", body, {"Idempotency-Key": "cut-by-sigterm"}
    from solvers.allocation.literature import generate_literature

    req = generate_literature(seed=0, num_orders=1000, num_nodes=10, vip_share=0.1)
    backend = kind.split("-")[1]
    params = {"mode": "batch", "backend": backend, "time_limit_s": 30.0}
    return "/v1/allocations", {"request": req.model_dump(mode="json"), "params": params}, {}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["allocations-highspy", "allocations-pyomo", "routes"])
def test_a_sync_solve_cut_by_sigterm_is_answered_503_and_the_exit_does_not_wait_for_it(
    settings: Settings, kind: str
) -> None:
    # a 30 s synchronous solve still running at the end of uvicorn's graceful timeout got a
    # 500 with a CancelledError traceback in the log, and the process's exit waited for its
    # solve thread: 26-27 s after SIGTERM for a 1,000-order pyomo allocation (its worker
    # killed at 10.2 s, the solve went on into the shadow-price LP, run to the time limit)
    # and for a 300-order route plan
    path, body, headers = _long_sync_request(kind)
    env = {"DISPATCHLAB_AUTH_ENABLED": "false"}
    server = Server(
        settings.data_dir,
        env=env,
        setup=SHORT_GRACE,
        args=("--log-level", "info"),
        database_url=settings.database_url,
    )
    answer: list[httpx.Response] = []
    try:
        call = threading.Thread(
            target=lambda: answer.append(
                httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=120)
            )
        )
        call.start()
        time.sleep(3.0)  # solving
        t0 = time.monotonic()
        code = server.terminate(timeout_s=60)
        exit_s = time.monotonic() - t0
        call.join(60)
    finally:
        server.stop()
    log = server.log.read_text()
    assert code == 0, log
    assert "Traceback" not in log
    # the 2 s of the graceful timeout, then the stop: not the solve's 27 s left
    assert exit_s < 12.0, (exit_s, log)
    response = answer[0]
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert "shutting down" in response.json()["message"]
    job_id = response.json()["message"].split("(job ")[1].split(",")[0]
    lines = [line for line in log.splitlines() if "cut by the server's shutdown" in line]
    assert len(lines) == 1 and job_id in lines[0], log
    rows = server.query("select id, status, error from jobs")
    claims = server.query("select count(*) from idempotency_keys")[0][0]
    assert rows == [(job_id, "failed", SYNC_AT_STOP)], rows
    assert claims == 0  # released: a retry with the same key solves again


# the guard that cleans up on SIGHUP: test_a_signal_inside_the_guard_cleans_up_and_ends_the_process
# [SIGHUP-*] (a process with a fork server); a real server's stop during a job:
# test_sigterm_to_the_whole_process_group_re_queues_the_running_job (~9-14 s each)
@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP here")
@pytest.mark.parametrize("workers", [1, 2])
def test_an_api_process_killed_by_sighup_after_a_job_leaves_no_pymp_dir(
    tmp_path: Path, workers: int
) -> None:
    # SIGHUP (the terminal running `make run` closed) is not caught by uvicorn in a process
    # that serves: its default action killed the process at once, Python's exit never ran,
    # and the pymp-* folder of the job fork server stayed in the temp dir
    server = Server(tmp_path, env={"DISPATCHLAB_AUTH_ENABLED": "false"}, workers=workers)
    try:
        run_a_job(server)
        if workers == 1:
            server.process.send_signal(signal.SIGHUP)
            code = server.process.wait(timeout=30)
            assert code == -signal.SIGHUP, server.log_tail()  # 129 in a shell
        else:  # to each worker alone (SIGHUP to the supervisor stops the service, below)
            hung_up = workers_of(server.process.pid)
            assert len(hung_up) == workers
            for pid in hung_up:
                os.kill(pid, signal.SIGHUP)
            deadline = time.monotonic() + 30
            while alive(hung_up) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not alive(hung_up)
        left = list(server.tmp_dir.glob("pymp-*"))
    finally:
        server.stop()
    log = server.log_tail()
    assert not left, log
    assert "Traceback" not in log


def start_a_long_job(server: Server) -> str:
    """Submit a routing job of seconds to ``server``; its id once it runs (with a fork server).

    A 100-order day: the small example's four orders stalled the search within moments
    (session 66's stall stop), and the job was done before the signal came."""
    from scenarios.generate import generate_city

    day = generate_city(seed=1, num_orders=100, num_nodes=4, num_couriers=8)
    return submit_a_job(server, 20, "running", day.model_dump(mode="json"))


def job_row(server: Server, job_id: str) -> tuple[str, str]:
    """Status and events (JSON text) of a job, read from the stopped server's database."""
    rows = server.query("SELECT status, events FROM jobs WHERE id = :id", id=job_id)
    assert rows, job_id
    return str(rows[0][0]), str(rows[0][1])


def wait_gone(pids: set[int], timeout_s: float = 10.0) -> set[int]:
    """Wait until none of ``pids`` runs (at most ``timeout_s``); those still running."""
    deadline = time.monotonic() + timeout_s
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive(pids)


# ~12 s each: the supervisor's stop on SIGHUP and SIGQUIT is checked by
# test_workers_on_one_shared_socket_stop_on_sighup_or_sigquit_too and (its queued signals)
# test_no_worker_is_started_once_a_stop_signal_has_arrived; a running job re-queued at a stop
# by tests/api/test_jobs.py's recovery tests
@pytest.mark.slow
@pytest.mark.parametrize("signum", DEATH_SIGNALS, ids=lambda sig: sig.name)
def test_sighup_or_sigquit_to_the_supervisor_stops_the_workers_and_kills_it(
    settings: Settings, signum: signal.Signals
) -> None:
    # uvicorn's supervisor of `serve --workers 2` replaced its workers on SIGHUP (the service
    # outlived its terminal) and did nothing on SIGQUIT
    env = {"DISPATCHLAB_AUTH_ENABLED": "false", "DISPATCHLAB_JOB_WORKERS": "1"}
    server = Server(
        settings.data_dir,
        env=env,
        workers=2,
        core_dumps=False,
        database_url=settings.database_url,
    )
    try:
        job = start_a_long_job(server)
        tree = descendants(server.process.pid)  # workers, fork servers, the job's process
        assert len(workers_of(server.process.pid)) == 2
        server.process.send_signal(signum)
        code = server.process.wait(timeout=30)
    finally:
        server.stop()
    log = server.log_tail()
    assert code == -signum, log  # 129 / 131 in a shell
    try:
        assert not wait_gone(tree), log
    finally:
        for pid in alive(tree):
            os.kill(pid, signal.SIGKILL)
    assert not list(server.tmp_dir.glob("pymp-*")), log
    # the workers were stopped as by SIGTERM: the running job went back to the queue
    status, events = job_row(server, job)
    assert status == "queued" and "re-queued: server shut down" in events, (status, events)
    assert "Traceback" not in log


def solving_job_process(server: Server, timeout_s: float = 60.0) -> int:
    """The pid of the job process of ``server``'s one running job, once it is solving (the
    worker-process side of :mod:`api.jobs.executors` has started its watcher thread)."""
    deadline = time.monotonic() + timeout_s
    while True:
        for pid in alive(descendants(server.process.pid)):
            try:
                parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
                forked = FORK_SERVER_COMMAND in Path(f"/proc/{parent}/cmdline").read_bytes()
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            threads = int(status.split("Threads:")[1].split()[0])
            if forked and int(parent) != server.process.pid and threads >= 2:
                return pid
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.05)


# ~12 s, as the SIGTERM one: the job process and the fork server ignoring SIGINT (as every
# stop signal) is checked by tests/api/test_fork_server_stop.py's
# test_sigterm_while_the_fork_server_imports_does_not_end_it, the service's stop re-queuing a
# job whose processes got the signal by tests/api/test_jobs.py's
# test_sigterm_to_a_job_process_and_its_fork_server_leaves_the_job_to_the_stop
@pytest.mark.slow
def test_ctrl_c_to_the_whole_process_group_re_queues_the_running_job(
    settings: Settings,
) -> None:
    # Ctrl-C in the terminal of `serve` sends SIGINT to its whole foreground process group:
    # the job's process got it too, and its solve ended at once, failed ('solver error:
    # KeyboardInterrupt', written by the dispatcher before the stop came to re-queue the
    # job: a graceful stop burnt an attempt, or answered the job with the fallback plan),
    # or, an OR-Tools search, cut short and answered 'done'. A job process now leaves
    # SIGINT to its server, whose stop kills it and re-queues the job
    signal_the_group_during_a_job(settings, signal.SIGINT, "KeyboardInterrupt")


# ~15 s (a real server, its fork server's imports, a routing job of seconds): by default
# SIGTERM to the job's process and its fork server, the job left running and re-queued by the
# service's stop, is checked in-process by tests/api/test_jobs.py's
# test_sigterm_to_a_job_process_and_its_fork_server_leaves_the_job_to_the_stop, a real
# server's graceful stop on SIGTERM by
# test_the_job_fork_server_starts_with_the_service_and_sigterm_leaves_no_process
@pytest.mark.slow
def test_sigterm_to_the_whole_process_group_re_queues_the_running_job(
    settings: Settings,
) -> None:
    # systemd's default KillMode=control-group, `kill -TERM -PGID`, an init that forwards
    # `docker stop` to the group: SIGTERM reached the job's process too, which died at once
    # ('worker process died (exit code -15)', written before the stop came to re-queue it),
    # and its fork server, whose end made multiprocessing report the job's process dead
    # (exit code 255). Both now leave SIGTERM to their server: the job is re-queued
    signal_the_group_during_a_job(settings, signal.SIGTERM, "worker process died")


def signal_the_group_during_a_job(settings: Settings, signum: signal.Signals, symptom: str) -> None:
    """Send ``signum`` to the whole process group of a server while its one job solves:
    the server stops gracefully, leaves no process, and the job is re-queued (its events
    without ``symptom``)."""
    env = {"DISPATCHLAB_AUTH_ENABLED": "false", "DISPATCHLAB_JOB_WORKERS": "1"}
    server = Server(settings.data_dir, env=env, database_url=settings.database_url)
    try:
        job = start_a_long_job(server)
        solving_job_process(server)
        tree = descendants(server.process.pid)  # the fork server, the job's process
        os.killpg(server.process.pid, signum)  # its session's group, as a terminal's
        code = server.process.wait(timeout=30)
    finally:
        server.stop()
    log = server.log_tail()
    assert code == 0, log
    try:
        assert not wait_gone(tree), log
    finally:
        for pid in alive(tree):
            os.kill(pid, signal.SIGKILL)
    assert not list(server.tmp_dir.glob("pymp-*")), log  # Python's exit ran
    status, events = job_row(server, job)
    assert status == "queued" and "re-queued: server shut down" in events, (status, events)
    assert symptom not in events, events


# ~12 s: SIGHUP to the supervisor of several workers, as here the whole group gets it, is
# checked by test_workers_on_one_shared_socket_stop_on_sighup_or_sigquit_too
@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP here")
def test_a_hung_up_terminal_stops_serve_with_workers(tmp_path: Path) -> None:
    # the terminal running `serve --workers 2` closed: its shell sends SIGHUP to the whole
    # process group; the workers died, and the supervisor replaced them and ran on
    server = Server(tmp_path, env={"DISPATCHLAB_AUTH_ENABLED": "false"}, workers=2)
    try:
        run_a_job(server)
        tree = descendants(server.process.pid)
        os.killpg(server.process.pid, signal.SIGHUP)
        code = server.process.wait(timeout=30)
    finally:
        server.stop()
    log = server.log_tail()
    assert code == -signal.SIGHUP, log
    try:
        assert not wait_gone(tree), log
    finally:
        for pid in alive(tree):
            os.kill(pid, signal.SIGKILL)
    assert not list(server.tmp_dir.glob("pymp-*")), log
    assert "Traceback" not in log


@pytest.mark.parametrize(
    "signum",
    # one signal is enough by default: both take the same path (~3 s each)
    [
        *DEATH_SIGNALS[:1],
        *(pytest.param(sig, marks=pytest.mark.slow) for sig in DEATH_SIGNALS[1:]),
    ],
    ids=lambda sig: sig.name,
)
def test_workers_on_one_shared_socket_stop_on_sighup_or_sigquit_too(
    tmp_path: Path, signum: signal.Signals
) -> None:
    # where a worker cannot listen on a socket of its own (not Linux), uvicorn.run ran uvicorn's
    # own supervisor: SIGHUP replaced the workers, SIGQUIT did nothing
    script, env = serve_script(tmp_path, "ok_app", OK_APP, shared=True)
    log = tmp_path / "serve.log"
    with log.open("w") as fh, inherited((), core_dumps=False):
        proc = subprocess.Popen(
            [sys.executable, "-c", script],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        started = "Application startup complete"  # logged by each worker
        while len(workers := workers_of(proc.pid)) < 2 or log.read_text().count(started) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        proc.send_signal(signum)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert code == -signum, log.read_text()[-2000:]
    assert not wait_gone(workers), log.read_text()[-2000:]


def ignored_signals(pid: int) -> set[int]:
    """The signals process ``pid`` ignores (``SigIgn`` of /proc/PID/status)."""
    status = Path(f"/proc/{pid}/status").read_text()
    mask = int(re.search(r"^SigIgn:\s*([0-9a-f]+)$", status, re.M).group(1), 16)  # type: ignore[union-attr]
    return {bit + 1 for bit in range(mask.bit_length()) if mask >> bit & 1}


# ~11 s: an ignored SIGHUP stays ignored by the guard:
# test_the_guard_keeps_a_handler_set_by_someone_else[ignored-SIGHUP]
@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGTTOU"), reason="no SIGHUP, SIGTTOU here")
def test_serve_with_workers_under_nohup_keeps_ignoring_sighup(tmp_path: Path) -> None:
    # uvicorn's supervisor caught SIGHUP even when it started ignored: under `nohup` it
    # replaced its workers, which no longer ignored it and died by it
    server = Server(tmp_path, workers=2, ignored=(signal.SIGHUP,))
    try:
        supervisor = server.process.pid
        workers = workers_of(supervisor)
        assert len(workers) == 2
        for pid in (supervisor, *workers):
            assert signal.SIGHUP in ignored_signals(pid), pid
        os.killpg(supervisor, signal.SIGHUP)
        # SIGTTOU (one worker fewer) is acted on after a SIGHUP the supervisor caught: once
        # one worker is left, a SIGHUP acted on would have replaced both first
        os.kill(supervisor, signal.SIGTTOU)
        deadline = time.monotonic() + 60
        while len(now := workers_of(supervisor)) > 1:
            assert time.monotonic() < deadline and server.process.poll() is None, now
            time.sleep(0.05)
        assert len(now) == 1 and now < workers, (workers, now)
        assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200
        assert server.terminate() == 0
    finally:
        server.stop()


SIGNAL_SCRIPT = textwrap.dedent(
    """
    import multiprocessing, resource, signal, sys, time
    from api.serve import exit_cleanly_on_signals

    if __name__ == "__main__":
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGQUIT: no core file
        signum = getattr(signal, sys.argv[1])
        ctx = multiprocessing.get_context(sys.argv[2])
        done = ctx.Process(target=print)
        done.start()
        done.join()
        running = ctx.Process(target=time.sleep, args=(60,), daemon=True)
        running.start()
        print(running.pid, flush=True)
        with exit_cleanly_on_signals():
            signal.raise_signal(signum)
        print("not killed", flush=True)
    """
)


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
@pytest.mark.parametrize("signum", GUARDED_SIGNALS, ids=lambda sig: sig.name)
def test_a_signal_inside_the_guard_cleans_up_and_ends_the_process(
    tmp_path: Path, signum: signal.Signals, method: str
) -> None:
    # SIGHUP and SIGQUIT, which uvicorn does not catch, killed the process as SIGTERM did
    # before it was guarded: the fork server's pymp-* folder stayed in the temp dir; the
    # clean-up does not depend on the start method (spawn: where there is no fork server).
    # SIGTERM (raised again by uvicorn once the app has shut down) now ends it with status 0
    script = tmp_path / "die.py"
    script.write_text(SIGNAL_SCRIPT)
    temp, short = socket_tmp_dir(tmp_path / "tmp")
    out, err = tmp_path / "out", tmp_path / "err"
    try:
        with out.open("w") as stdout, err.open("w") as stderr:  # files: the child inherits
            code = subprocess.run(
                [sys.executable, str(script), signum.name, method],
                env={**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(REPO)},
                cwd=tmp_path,
                stdout=stdout,
                stderr=stderr,
                timeout=60,
            ).returncode
        left = list(temp.iterdir())
    finally:
        if short:
            shutil.rmtree(temp, ignore_errors=True)
    assert code == (0 if signum == signal.SIGTERM else -signum), err.read_text()[-2000:]
    assert "Traceback" not in err.read_text(), err.read_text()[-2000:]
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


HELPERS_SCRIPT = textwrap.dedent(
    """
    import resource, signal, sys, time
    from api.jobs.executors import LocalExecutor, fork_server_pid
    from api.serve import exit_cleanly_on_signals
    from solvers.allocation import pyomo_worker

    if __name__ == "__main__":
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGQUIT: no core file
        signum = getattr(signal, sys.argv[1])
        # a pyomo worker still importing Pyomo, as the service starts one
        pyomo_worker.WORKER_ENTRY = "import time; time.sleep(120)"
        assert pyomo_worker.start_worker()
        with pyomo_worker._lock:
            [worker] = pyomo_worker._pool()
        executor = LocalExecutor(1, preload=["slow_preload_probe"])
        executor.warm_up()  # the fork server imports for two minutes
        print(fork_server_pid(), worker.pid, flush=True)
        time.sleep(0.5)
        with exit_cleanly_on_signals():
            signal.raise_signal(signum)
        print("not killed", flush=True)
    """
)


@pytest.mark.parametrize(
    "signum",
    # one signal is enough by default: both take the same path (api.serve's _die_by_signal,
    # ~3 s each); SIGQUIT, which a run under nohup does not skip as it skips SIGHUP
    [
        *(pytest.param(sig, marks=pytest.mark.slow) for sig in DEATH_SIGNALS[:-1]),
        *DEATH_SIGNALS[-1:],
    ],
    ids=lambda sig: sig.name,
)
def test_a_signal_death_during_the_fork_servers_imports_leaves_no_helper_running(
    tmp_path: Path, signum: signal.Signals
) -> None:
    # SIGHUP or SIGQUIT to an API process while its job fork server was still importing
    # its preload modules (seconds after the start, with Pyomo): the process died, and the
    # fork server imported on, an orphan, until it found its "alive" pipe closed (2.5-6 s
    # after a real service's death), as did the pyomo worker still importing Pyomo
    if "forkserver" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork server here")
    script = tmp_path / "die_importing.py"
    script.write_text(HELPERS_SCRIPT)
    (tmp_path / "slow_preload_probe.py").write_text("import time\ntime.sleep(120)\n")
    temp, short = socket_tmp_dir(tmp_path / "tmp")
    out, err = tmp_path / "out", tmp_path / "err"
    helpers: set[int] = set()
    try:
        with out.open("w") as stdout, err.open("w") as stderr:
            code = subprocess.run(
                [sys.executable, str(script), signum.name],
                env={**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(REPO)},
                cwd=tmp_path,
                stdout=stdout,
                stderr=stderr,
                timeout=120,
            ).returncode
        lines = out.read_text().split()
        helpers = {int(pid) for pid in lines[:2]}
        assert code == -signum, err.read_text()[-2000:]
        assert "Traceback" not in err.read_text(), err.read_text()[-2000:]
        assert len(helpers) == 2 and "not" not in lines, lines
        assert not wait_gone(helpers, 5.0), "a helper process outlived the API process"
        assert not list(temp.iterdir()), "multiprocessing's temp dir was left"
    finally:
        for pid in alive(helpers):
            os.kill(pid, signal.SIGKILL)
        if short:
            shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.parametrize("signum", GUARDED_SIGNALS, ids=lambda sig: sig.name)
@pytest.mark.parametrize(
    "kept", [signal.SIG_IGN, signal.default_int_handler], ids=["ignored", "a_handler"]
)
def test_the_guard_keeps_a_handler_set_by_someone_else(
    signum: signal.Signals, kept: object
) -> None:
    # e.g. SIGHUP ignored under nohup stays ignored, while the signals left at their default
    # action are guarded
    others = [sig for sig in GUARDED_SIGNALS if sig != signum]
    previous = {sig: signal.getsignal(sig) for sig in GUARDED_SIGNALS}
    signal.signal(signum, kept)  # type: ignore[arg-type]
    for sig in others:
        signal.signal(sig, signal.SIG_DFL)
    try:
        with exit_cleanly_on_signals():
            assert signal.getsignal(signum) is kept
            for sig in others:
                assert signal.getsignal(sig) not in {signal.SIG_DFL, kept}, sig.name
        assert signal.getsignal(signum) is kept
        assert all(signal.getsignal(sig) is signal.SIG_DFL for sig in others)
        signal.signal(signum, signal.SIG_DFL)
        with exit_cleanly_on_signals():
            assert signal.getsignal(signum) not in {signal.SIG_DFL, kept}
        assert signal.getsignal(signum) is signal.SIG_DFL
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(sig, handler)


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


class DiedWithTheGroup:
    """A worker found dead by the health check while a stop signal reaches the supervisor.

    Ctrl-C reaches every process of the group: the worker stops on it, and the supervisor is
    told while it is still checking its workers (the signal is raised from the check).
    """

    pid = 4242
    exitcode = 0

    def __init__(self, signum: signal.Signals) -> None:
        self.signum = signum

    def is_alive(self, timeout: float = 5) -> bool:
        signal.raise_signal(self.signum)
        return False

    def kill(self) -> None:
        """Nothing to kill: it died."""

    def join(self) -> None:
        """Nothing to wait for."""

    def terminate(self) -> None:
        """Nothing to stop."""


class NewWorker:
    """A worker the supervisor makes (in ``started``); starting it does nothing."""

    def __init__(self, started: list[NewWorker]) -> None:
        started.append(self)

    def start(self) -> None:
        """Nothing to start."""


@pytest.fixture
def supervisor_signals() -> Iterator[None]:
    """Put back the handlers of the signals a :class:`Supervisor` made in the test takes over."""
    previous = {sig: signal.getsignal(sig) for sig in uvicorn_multiprocess.SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


@pytest.mark.usefixtures("supervisor_signals")
@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, *DEATH_SIGNALS], ids=lambda s: s.name
)
def test_no_worker_is_started_once_a_stop_signal_has_arrived(
    monkeypatch: pytest.MonkeyPatch, signum: signal.Signals
) -> None:
    # uvicorn's supervisor queues a signal and acts on it at its next round: a worker that
    # died of the Ctrl-C that reached the whole group was replaced in the meantime, and the
    # replacement started up (database, crash recovery) only to be stopped at once
    started: list[NewWorker] = []
    monkeypatch.setattr(uvicorn_multiprocess, "Process", lambda *args: NewWorker(started))
    config = uvicorn.Config("ok_app:create_app", factory=True, workers=2)
    supervisor = Supervisor(config, sockets=[])
    supervisor.processes = [DiedWithTheGroup(signum)]  # type: ignore[list-item]
    supervisor.keep_subprocess_alive()
    assert not started
    os.kill(os.getpid(), signal.SIGTTIN)  # one worker more, asked after the stop: not started
    supervisor.handle_signals()
    assert not started
    assert supervisor.should_exit.is_set()
    expected = signum if signum in DEATH_SIGNALS else None
    assert supervisor.stopped_by == expected


#: a session leader whose controlling terminal is argv[1]; it runs argv[2:] as a background
#: job of that terminal (a process group of its own, the terminal for its standard streams),
#: prints its pid, and once it ends its return code
BACKGROUND_JOB = """
import fcntl, os, subprocess, sys, termios

tty = os.open(sys.argv[1], os.O_RDWR)
fcntl.ioctl(tty, termios.TIOCSCTTY, 0)
job = subprocess.Popen(sys.argv[2:], stdin=tty, stdout=tty, stderr=tty, process_group=0)
print(job.pid, flush=True)
print(job.wait(), flush=True)
"""


class Terminal:
    """A pseudo-terminal; what is written to it is read into :attr:`output` as it comes."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.name = os.ttyname(self.slave)
        self.output = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        """Read what the terminal shows until every process has closed it."""
        with contextlib.suppress(OSError):  # EIO: closed
            while data := os.read(self.master, 65536):
                self.output.extend(data)

    def text(self) -> str:
        """What was written so far."""
        return bytes(self.output).decode(errors="replace")

    def tostop(self) -> None:
        """``stty tostop``: a background process that writes to it gets SIGTTOU."""
        attrs = termios.tcgetattr(self.slave)
        attrs[3] |= termios.TOSTOP
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)

    def close(self) -> None:
        """Close both ends, once the processes that had it open are gone."""
        os.close(self.slave)
        self.reader.join(timeout=10)  # ends on EIO once no process has the terminal open
        os.close(self.master)


def states(supervisor: int) -> dict[int, str]:
    """The state letter (T: stopped) of ``supervisor`` and each of its workers, by pid."""
    out = {}
    for pid in (supervisor, *workers_of(supervisor)):
        with contextlib.suppress(OSError):  # gone
            out[pid] = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return out


@pytest.mark.skipif(not hasattr(signal, "SIGTTOU"), reason="no terminal job control here")
def test_workers_in_the_background_of_a_tostop_terminal_write_and_stay(tmp_path: Path) -> None:
    # `stty tostop`: a background process that writes to its terminal gets SIGTTOU, which
    # stopped a worker at its first log line, and reached the supervisor too (whose handler
    # took it for "one worker fewer" and then waited for the stopped worker for ever); the
    # supervisor's own log lines sent it SIGTTOU again at every retry of the write
    code, env = serve_script(tmp_path, "ok_app", OK_APP)
    terminal = Terminal()
    shell = subprocess.Popen(
        [sys.executable, "-c", BACKGROUND_JOB, terminal.name, sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert shell.stdout is not None
    supervisor = int(shell.stdout.readline())
    try:
        deadline = time.monotonic() + 60
        started = "Application startup complete"  # logged by each worker
        while (port := re.search(r"http://127\.0\.0\.1:(\d+) ", terminal.text())) is None or (
            terminal.text().count(started) < 2
        ):
            assert shell.poll() is None and time.monotonic() < deadline, terminal.text()
            time.sleep(0.1)
        workers = workers_of(supervisor)
        assert len(workers) == 2
        terminal.tostop()  # from now on a log line is a write in the background
        answered: set[int] = set()
        while answered != workers:  # each writes an access log line per request
            assert time.monotonic() < deadline, (answered, terminal.text()[-2000:])
            url = f"http://127.0.0.1:{port.group(1)}/pid"
            try:
                answered.add(httpx.get(url, timeout=30).json())
            except httpx.HTTPError as err:  # its worker stopped at the access log line
                pytest.fail(f"{err!r}; states {states(supervisor)}: {terminal.text()[-2000:]}")
        assert workers_of(supervisor) == workers
        assert "T" not in states(supervisor).values()  # none stopped
        os.kill(supervisor, signal.SIGTERM)  # its lines: Received SIGTERM, ... Stopping
        try:
            out, _ = shell.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # its write to the terminal retried for ever
            pytest.fail(f"not stopped; states {states(supervisor)}: {terminal.text()[-2000:]}")
    finally:
        if shell.poll() is None:
            os.killpg(supervisor, signal.SIGKILL)
            shell.kill()
            shell.wait(timeout=10)
        terminal.close()
    text = terminal.text()
    assert out.split() == ["0"], text[-2000:]
    assert "died" not in text and "decreasing" not in text, text[-2000:]
    assert "Stopping parent process" in text, text[-2000:]


#: the command that runs the command after it as PID 1 of a new PID namespace, unprivileged
PID_1 = ["unshare", "--user", "--map-root-user", "--pid", "--fork"]


def pid_namespaces() -> bool:
    """True where ``unshare`` can start a process as PID 1 of a new PID namespace."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run([*PID_1, "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


PID_1_SCRIPT = textwrap.dedent(
    """
    import os, resource, signal, sys
    from api.serve import exit_cleanly_on_signals

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGQUIT: no core file
    assert os.getpid() == 1, os.getpid()
    with exit_cleanly_on_signals():
        signal.raise_signal(getattr(signal, sys.argv[1]))
    print("not killed", flush=True)
    """
)


@pytest.mark.parametrize("signum", DEATH_SIGNALS, ids=lambda sig: sig.name)
def test_pid_1_of_a_container_ends_on_sighup_or_sigquit_too(
    tmp_path: Path, signum: signal.Signals
) -> None:
    # the kernel does not deliver to PID 1 of a PID namespace (a container's first process) a
    # signal whose action is the default: raised again after the clean-up, SIGHUP and SIGQUIT
    # were dropped, and the process carried on serving with its job processes stopped
    if not pid_namespaces():
        pytest.skip("no unprivileged PID namespaces here")
    script = tmp_path / "pid1.py"
    script.write_text(PID_1_SCRIPT)
    run = subprocess.run(
        [*PID_1, "--mount-proc", sys.executable, str(script), signum.name],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "not killed" not in run.stdout, run.stderr[-2000:]
    assert run.returncode == 128 + signum, run.stderr[-2000:]  # as a shell reports a death by it


class DeadWorker(Worker):
    """A worker found dead by the health check, ``ready`` (it had served) or not."""

    pid = 4243
    exitcode = 1

    def __init__(self, *, ready: bool, replaces_unready: bool) -> None:  # no process
        self.ready = ready
        self.replaces_unready = replaces_unready

    def is_alive(self, timeout: float = 5) -> bool:
        return False

    def kill(self) -> None:
        """Nothing to kill: it died."""

    def join(self) -> None:
        """Nothing to wait for."""


class StartedWorker(Worker):
    """A worker the supervisor makes in its place (in ``made``); starting it does nothing."""

    made: ClassVar[list[StartedWorker]] = []

    def __init__(self, *args: object) -> None:  # no process
        self.ready = False
        self.replaces_unready = False
        StartedWorker.made.append(self)

    def start(self) -> None:
        """Nothing to start."""


@pytest.mark.usefixtures("supervisor_signals")
@pytest.mark.parametrize(
    ("ready", "replaces_unready", "replaced"),
    [(True, True, True), (True, False, True), (False, False, True), (False, True, False)],
    ids=["served", "served_first", "crashed_at_start_up_once", "crashed_at_start_up_twice"],
)
def test_a_worker_is_replaced_unless_it_and_the_one_before_died_at_start_up(
    monkeypatch: pytest.MonkeyPatch, ready: bool, replaces_unready: bool, replaced: bool
) -> None:
    # a worker that died before it served was replaced every half second for ever; one that
    # had served, or the first to die at start-up (killed under memory pressure, say), is
    monkeypatch.setattr(StartedWorker, "made", [])
    monkeypatch.setattr(uvicorn_multiprocess, "Process", StartedWorker)
    config = uvicorn.Config("ok_app:create_app", factory=True, workers=1)
    supervisor = Supervisor(config, sockets=[])
    dead = DeadWorker(ready=ready, replaces_unready=replaces_unready)
    supervisor.processes = [dead]
    supervisor.keep_subprocess_alive()
    assert len(StartedWorker.made) == int(replaced)
    assert supervisor.processes == (StartedWorker.made if replaced else [dead])
    if replaced:  # the next to die at start-up stops the service
        assert StartedWorker.made[0].replaces_unready is not ready
    assert supervisor.crashed_at_start_up is not replaced
    assert supervisor.should_exit.is_set() is not replaced


#: a supervisor with SIGTTIN and SIGTTOU blocked, as while it runs, in a background job of a
#: terminal under `stty tostop`; a child of it (SIGTTOU at its default action) writes a line
#: to the terminal, which sends SIGTTOU to the whole process group; the supervisor's
#: handle_ttou runs only for the SIGTTOU sent with kill() afterwards
KERNEL_SIGTTOU_SCRIPT = """
import os, signal, uvicorn
from api.serve import TERMINAL_SIGNALS, Supervisor

supervisor = Supervisor(uvicorn.Config("ok_app:create_app", workers=2), sockets=[])
asked = []
supervisor.handle_ttou = lambda: asked.append("ttou")
signal.pthread_sigmask(signal.SIG_BLOCK, TERMINAL_SIGNALS)
child = os.fork()
if child == 0:
    signal.signal(signal.SIGTTOU, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, TERMINAL_SIGNALS)
    os.write(2, b"a line in the background")
    os._exit(0)
_, status = os.waitpid(child, os.WUNTRACED)  # stopped by its SIGTTOU
assert os.WIFSTOPPED(status), status
supervisor.handle_signals()
print("after the terminal's:", asked, flush=True)
os.kill(os.getpid(), signal.SIGTTOU)
supervisor.handle_signals()
print("after kill:", asked, flush=True)
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)
"""


@pytest.mark.skipif(not hasattr(signal, "sigtimedwait"), reason="SIGTTOU is not polled here")
def test_the_supervisor_drops_a_sigttou_the_terminal_sent(tmp_path: Path) -> None:
    # uvicorn's supervisor took every SIGTTOU for "one worker fewer": a write to the
    # terminal by any process of the background job (under `stty tostop`) removed a worker
    terminal = Terminal()
    terminal.tostop()
    job = [sys.executable, "-c", KERNEL_SIGTTOU_SCRIPT]
    shell = subprocess.Popen(
        [sys.executable, "-c", BACKGROUND_JOB, terminal.name, *job],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = shell.communicate(timeout=60)
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.wait(timeout=10)
        terminal.close()
    text = terminal.text()
    assert out.split()[-1] == "0", text[-2000:]
    assert "after the terminal's: []" in text, text[-2000:]
    assert "after kill: ['ttou']" in text, text[-2000:]


def signal_death_of_the_group_during_a_job(
    settings: Settings, signum: signal.Signals
) -> tuple[str, str]:
    """Send ``signum`` (SIGHUP or SIGQUIT) to the whole process group of a one-process
    server while its one job solves; the job's status and events once every process ended
    (the server dead by the signal, nothing left running)."""
    env = {"DISPATCHLAB_AUTH_ENABLED": "false", "DISPATCHLAB_JOB_WORKERS": "1"}
    server = Server(
        settings.data_dir, env=env, core_dumps=False, database_url=settings.database_url
    )
    try:
        job = start_a_long_job(server)
        job_process = solving_job_process(server)
        tree = descendants(server.process.pid)  # the fork server, the job's process
        assert job_process in tree
        os.killpg(server.process.pid, signum)  # as a closed terminal's shell, or Ctrl-\
        code = server.process.wait(timeout=30)
    finally:
        server.stop()
    log = server.log_tail()
    assert code == -signum, log  # 129 / 131 in a shell
    try:
        assert not wait_gone(tree), log
    finally:
        for pid in alive(tree):
            os.kill(pid, signal.SIGKILL)
    assert not list(server.tmp_dir.glob("pymp-*")), log
    return job_row(server, job)


@pytest.mark.parametrize(
    "signum",
    # ~12-20 s each: the job process, the fork server and the helpers leaving SIGHUP and
    # SIGQUIT to their server is checked by tests/api/test_fork_server_stop.py's
    # test_sigterm_while_the_fork_server_imports_does_not_end_it and
    # tests/solvers/allocation/test_helper_process_signals.py, a job left running by an API
    # process's death by tests/api/test_jobs.py's
    # test_a_process_dying_by_a_signal_writes_no_end_of_the_runs_it_kills
    [pytest.param(sig, marks=pytest.mark.slow) for sig in DEATH_SIGNALS],
    ids=lambda sig: sig.name,
)
def test_sighup_or_sigquit_to_the_whole_group_leaves_the_running_job_to_recovery(
    settings: Settings, signum: signal.Signals
) -> None:
    # a closed terminal (its shell sends SIGHUP to the job's process group) or Ctrl-\ reaches
    # the job's process and the fork server too: the job's process died at once, and the
    # dispatcher recorded the job failed ('worker process died (exit code -1)' / -3), an
    # attempt burnt, before the server's own death; now the job's process, the fork server
    # and the helpers leave these signals to the server, whose death leaves the job running
    # for the next start's crash recovery to re-queue
    status, events = signal_death_of_the_group_during_a_job(settings, signum)
    assert status == "running", (status, events)
    assert "worker process died" not in events, events


#: run in the server before it starts: its synchronous solves answer only once the process
#: has decided to die by a signal, and its clean-up takes a second (as a fork server or a
#: pyomo worker being stopped does): the solve's end comes during the clean-up
_SOLVE_ENDS_AS_THE_SERVER_DIES = """
import time
import api.serve, api.solve
from api.jobs import service
_call, _stop = api.solve._call, api.serve.stop_helper_processes
def _ends_at_the_death(*args, **kwargs):
    while not service._DYING.is_set():
        time.sleep(0.01)
    return _call(*args, **kwargs)
def _slow_stop():
    time.sleep(1.0)
    _stop()
api.solve._call = _ends_at_the_death
api.serve.stop_helper_processes = _slow_stop
"""

#: added to :data:`_SOLVE_ENDS_AS_THE_SERVER_DIES`: the request's Idempotency-Key is not
#: released before the process dies (its release waits for ever): the claim stays pending
_KEY_NOT_RELEASED = """
import threading
import api.idempotency
api.idempotency.abandon = lambda session, slot: threading.Event().wait()
"""


def _sighup_during_post(
    server: Server,
    body: Mapping[str, object],
    headers: dict[str, str],
    ready: Callable[[], bool],
) -> None:
    """POST ``body`` to ``server``'s ``/v1/routes`` from a thread, send SIGHUP once
    ``ready()`` (within 30 s), stop the server, and check that it died of the signal with no
    answer out."""
    answered: list[object] = []

    def send() -> None:
        try:
            answered.append(httpx.post(f"{server.url}/v1/routes", json=body, headers=headers))
        except httpx.HTTPError as err:
            answered.append(err)

    sender = threading.Thread(target=send)
    try:
        sender.start()
        deadline = time.monotonic() + 30
        while not ready():
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.05)
        server.process.send_signal(signal.SIGHUP)
        code = server.process.wait(timeout=30)
        sender.join(30)
    finally:
        server.stop()
    assert code == -signal.SIGHUP, server.log_tail()
    [lost] = answered
    assert isinstance(lost, httpx.HTTPError), lost  # no answer left the dying server


# ~15 s each (two servers): the parts are checked in-process by tests/api/test_solve.py's
# test_a_synchronous_solve_ending_once_its_process_dies_stores_no_outcome and
# tests/api/test_infra.py's test_a_pending_idempotency_claim_of_a_replica_gone_is_taken_over_at_once
@pytest.mark.slow
@pytest.mark.parametrize("released", [True, False], ids=["key_released", "key_left_claimed"])
def test_a_retry_after_a_death_by_sighup_during_a_synchronous_solve_solves_again(
    settings: Settings, released: bool
) -> None:
    # a synchronous solve that ended while its server was dying of SIGHUP (its clean-up
    # under way) was stored done, with its Idempotency-Key's answer, though no answer left
    # the process: the OMS's retry after the restart was replayed an answer it never had
    # (or, the key's answer not stored in time, got 409 for 92 s and then a fresh solve
    # beside a done job). Now the first solve is failed by the next server's recovery and
    # the retry with the same key solves again at once, also when the dying request could
    # not release its key (its claim, of a replica gone, is taken over: it was a 409 for 92 s)
    env = {"DISPATCHLAB_AUTH_ENABLED": "false"}
    body = {"scenario": copy.deepcopy(SMALL_SCENARIO), "params": {"time_limit_s": 0.3}}
    headers = {"Idempotency-Key": "order-batch-17"}
    first = Server(
        settings.data_dir,
        env=env,
        core_dumps=False,
        setup=_SOLVE_ENDS_AS_THE_SERVER_DIES + ("" if released else _KEY_NOT_RELEASED),
        database_url=settings.database_url,
    )
    running = "SELECT id FROM jobs WHERE mode = 'sync' AND status = 'running'"
    _sighup_during_post(first, body, headers, lambda: bool(first.query(running)))
    [(job_id, status)] = first.query("SELECT id, status FROM jobs")
    assert status == "running", first.log_tail()  # nothing stored after the death decided
    claims = first.query("SELECT state FROM idempotency_keys")
    assert claims == ([] if released else [("pending",)]), claims
    second = Server(settings.data_dir, env=env, database_url=settings.database_url)
    try:
        retry = httpx.post(f"{second.url}/v1/routes", json=body, headers=headers, timeout=60)
        assert retry.status_code == 200, retry.text
        assert "idempotent-replayed" not in retry.headers  # solved again, not replayed
        assert retry.json()["job_id"] != job_id
        with httpx.Client(base_url=second.url, timeout=30) as http:
            failed = http.get(f"/v1/jobs/{job_id}").json()
            again = http.post("/v1/routes", json=body, headers=headers)
    finally:
        second.stop()
    assert failed["status"] == "failed", failed
    assert "stopped unexpectedly during this synchronous request" in failed["error"], failed
    assert again.headers["idempotent-replayed"] == "true"  # the retry's answer is the key's
    assert again.json() == retry.json()


#: run in the server before it starts: its async submits reach their commit only once the
#: process has decided to die by a signal (their route's thread carries on during the
#: clean-up, made to take a second as a fork server's stop may)
_SUBMIT_COMMITS_AS_THE_SERVER_DIES = """
import os, time
import api.serve
from api.jobs import service
_submit, _stop = service.JobService.submit, api.serve.stop_helper_processes
def _at_the_death(self, *args, **kwargs):
    open(os.environ["SUBMIT_MARKER"], "w").close()  # the test sends SIGHUP once it is there
    while not service._DYING.is_set():
        time.sleep(0.01)
    return _submit(self, *args, **kwargs)
def _slow_stop():
    time.sleep(1.0)
    _stop()
service.JobService.submit = _at_the_death
api.serve.stop_helper_processes = _slow_stop
"""


# ~15 s (two servers): the parts are checked in-process by tests/api/test_solve.py's
# test_an_async_submit_once_its_process_dies_queues_no_job_and_frees_its_key
@pytest.mark.slow
def test_a_retry_after_a_death_by_sighup_during_an_async_submit_queues_the_job_once(
    settings: Settings,
) -> None:
    # an async submit whose commit came once its server was dying of SIGHUP (its clean-up
    # under way) queued its job and stored its Idempotency-Key's 202, though no answer left
    # the process. Now nothing is queued: the retry with the same key queues the job on the
    # next server, once
    marker = settings.data_dir / "submitting"
    env = {"DISPATCHLAB_AUTH_ENABLED": "false", "SUBMIT_MARKER": str(marker)}
    body = {
        "scenario": copy.deepcopy(SMALL_SCENARIO),
        "params": {"time_limit_s": 0.2, "seed": 1},
        "mode": "async",
    }
    headers = {"Idempotency-Key": "order-batch-18"}
    first = Server(
        settings.data_dir,
        env=env,
        core_dumps=False,
        setup=_SUBMIT_COMMITS_AS_THE_SERVER_DIES,
        database_url=settings.database_url,
    )
    # the submit waits in the hook for the death
    _sighup_during_post(first, body, headers, marker.exists)
    assert first.query("SELECT id, status FROM jobs") == [], first.log_tail()  # none queued
    assert first.query("SELECT state FROM idempotency_keys") == []  # released
    second = Server(settings.data_dir, env=env, database_url=settings.database_url)
    try:
        with httpx.Client(base_url=second.url, timeout=60) as http:
            retry = http.post("/v1/routes", json=body, headers=headers)
            assert retry.status_code == 202, retry.text
            assert "idempotent-replayed" not in retry.headers  # queued now, not replayed
            job_id = retry.json()["job_id"]
            deadline = time.monotonic() + 60
            while (status := http.get(f"/v1/jobs/{job_id}").json()["status"]) != "done":
                assert status in {"queued", "running"} and time.monotonic() < deadline, status
                time.sleep(0.1)
            again = http.post("/v1/routes", json=body, headers=headers)
    finally:
        second.stop()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["job_id"] == job_id
    assert [row[0] for row in second.query("SELECT id FROM jobs")] == [job_id]  # once
